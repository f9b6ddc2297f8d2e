package fstree

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const crashEnv = "PYIDE_FSTREE_CRASH_WRITER"

// crashWriter runs in a child process: it writes a new version of a file,
// says "ready" once the temporary file is synced, and waits to be killed
// before the rename.
func crashWriter(dir string) {
	tr, err := Open(dir, false, 0)
	if err != nil {
		os.Exit(2)
	}
	tr.AfterTemp = func() {
		os.Stdout.WriteString("ready\n")
		select {} // killed here
	}
	_, _ = tr.WriteAtomic("Local/alice/hello.py", strings.NewReader(strings.Repeat("NEW ", 100000)), 10<<20)
	os.Exit(3) // not reached
}

// A real crash between the temporary file and the rename leaves the old
// file whole; listings hide the leftover and the sweep removes it.
func TestCrashBetweenTempAndRename(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "Local/alice"), 0o755); err != nil {
		t.Fatal(err)
	}
	old := strings.Repeat("old line\n", 5000)
	mustWrite(t, filepath.Join(dir, "Local/alice/hello.py"), old)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("writer did not reach the rename: %q %v", line, err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	b, err := os.ReadFile(filepath.Join(dir, "Local/alice/hello.py"))
	if err != nil || string(b) != old {
		t.Fatalf("after the crash the file has %d bytes (%v), want the old %d", len(b), err, len(old))
	}
	// The leftover temporary file is invisible to listings...
	tr, err := Open(dir, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ents, err := tr.ReadDir("Local/alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), TempPrefix) {
			t.Fatalf("listing shows the temporary file %s", e.Name())
		}
	}
	// ...and the sweep removes it once it is old enough.
	if n := tr.SweepTemps("Local", time.Now().Add(-time.Hour)); n != 0 {
		t.Fatalf("swept %d fresh temporary files", n)
	}
	if n := tr.SweepTemps("Local", time.Now().Add(time.Hour)); n != 1 {
		t.Fatalf("swept %d temporary files, want 1", n)
	}
	raw, _ := os.ReadDir(filepath.Join(dir, "Local/alice"))
	for _, e := range raw {
		if strings.HasPrefix(e.Name(), TempPrefix) {
			t.Fatalf("temporary file %s survived the sweep", e.Name())
		}
	}
}
