package fstree

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// The crash test re-runs this binary as the writer it kills.
	if dir := os.Getenv(crashEnv); dir != "" {
		crashWriter(dir)
	}
	os.Exit(m.Run())
}
