package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pythonide/pyide/pkg/backup"
)

// reachableTempDir is a temporary folder the embedded cluster's
// unprivileged user can enter when the tests run as root.
func reachableTempDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	for _, p := range []string{filepath.Dir(d), d} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// TestBackupRestoreCLI runs `pyide backup` and `pyide restore` with the
// embedded database, as an operator would on a fresh machine.
func TestBackupRestoreCLI(t *testing.T) {
	c := &cli{t: t}
	first, second := filepath.Join(reachableTempDir(t), "data"), filepath.Join(reachableTempDir(t), "data")
	out := filepath.Join(t.TempDir(), "backups")
	t.Setenv("DATABASE_URL", "")
	t.Setenv("BCRYPT_COST", "10")
	t.Setenv("IDE_DATA_PATH", first)

	if _, err := c.run("a fine password\n", "user", "add", "alice"); err != nil {
		t.Fatal(err)
	}
	program := []byte("name = input('name? ')\nprint('hi', name)\n")
	if err := os.WriteFile(filepath.Join(first, "Local", "alice", "hello.py"), program, 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, err := c.run("", "backup", "--out", out)
	if err != nil {
		t.Fatal(err)
	}
	archive := strings.TrimSpace(strings.SplitN(stdout, "\n", 2)[0])
	if filepath.Dir(archive) != out || !strings.HasSuffix(archive, ".tar.gz") {
		t.Fatalf("backup printed %q", stdout)
	}

	t.Setenv("IDE_DATA_PATH", second)
	if stdout, err = c.run("", "restore", archive); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "restored") {
		t.Errorf("restore printed %q", stdout)
	}
	got, err := os.ReadFile(filepath.Join(second, "Local", "alice", "hello.py"))
	if err != nil || string(got) != string(program) {
		t.Fatalf("restored file: %q %v", got, err)
	}
	if stdout, err = c.run("", "user", "ls"); err != nil || !strings.Contains(stdout, "alice") {
		t.Fatalf("users after restore: %q %v", stdout, err)
	}

	// A second restore into the now full folder is refused.
	_, err = c.run("", "restore", archive)
	if !errors.Is(err, backup.ErrNotEmpty) {
		t.Fatalf("restore into a full data folder: %v", err)
	}
	if _, err := c.run("", "restore"); err == nil {
		t.Error("restore without an archive succeeded")
	}
}
