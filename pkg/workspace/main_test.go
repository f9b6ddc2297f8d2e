package workspace

import (
	"testing"

	"github.com/pythonide/pyide/pkg/store/storetest"
)

func TestMain(m *testing.M) {
	storetest.Main(m)
}
