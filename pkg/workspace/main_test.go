package workspace

import (
	"os"
	"testing"

	"github.com/pythonide/pyide/pkg/store/storetest"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashEnv); dir != "" {
		crashWriter(dir)
	}
	storetest.Main(m)
}
