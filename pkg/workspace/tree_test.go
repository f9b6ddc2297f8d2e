package workspace

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func newTestTree(t *testing.T) (*tree, string) {
	t.Helper()
	dir := t.TempDir()
	tr, err := openTree(dir, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.close() })
	for _, d := range []string{"Local/alice/sub", "Local/bob", "Lecture Notes"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite(t, filepath.Join(dir, "Local/bob/secret.py"), "bob's secret")
	mustWrite(t, filepath.Join(dir, "Local/alice/hello.py"), "print('hi')")
	return tr, dir
}

func mustWrite(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// plantLinks makes, in alice's folder, every kind of link a student's
// program could make.
func plantLinks(t *testing.T, dir string) map[string]string {
	t.Helper()
	links := map[string]string{
		"tobob":     "../bob",
		"tobobfile": "../bob/secret.py",
		"passwd":    "/etc/passwd",
		"etc":       "/etc",
		"dataroot":  dir,
		"updots":    "../../../../../../..",
		"self":      "hello.py", // even a link inside her own folder is not followed
		"subdir":    "sub",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, "Local/alice", name)); err != nil {
			t.Fatal(err)
		}
	}
	return links
}

func TestTreeRefusesLinks(t *testing.T) {
	t.Parallel()
	tr, dir := newTestTree(t)
	links := plantLinks(t, dir)
	for name := range links {
		rel := "Local/alice/" + name
		t.Run(name, func(t *testing.T) {
			if f, _, err := tr.openFile(rel); err == nil {
				f.Close()
				t.Error("read through a link")
			}
			if _, err := tr.readDir(rel); err == nil {
				t.Error("listed through a link")
			}
			if _, _, err := tr.openFile(rel + "/secret.py"); err == nil {
				t.Error("read below a link")
			}
			if _, err := tr.writeAtomic(rel+"/x.py", strings.NewReader("x"), 100); err == nil {
				t.Error("wrote below a link")
			}
			if err := tr.createFile(rel + "/new.py"); err == nil {
				t.Error("created below a link")
			}
			if err := tr.mkdir(rel + "/d"); err == nil {
				t.Error("made a folder below a link")
			}
			if err := tr.rename("Local/alice/hello.py", rel+"/moved.py"); err == nil {
				t.Error("moved into a link")
			}
			if err := tr.rename(rel+"/secret.py", "Local/alice/stolen.py"); err == nil {
				t.Error("moved out from below a link")
			}
			if _, err := tr.copyTree(rel, "Local/alice/copy-"+name, 1<<20, nil); err == nil {
				t.Error("copied a link")
			}
			if err := tr.walk(rel, func(string, fs.FileInfo) error { return nil }); err == nil {
				t.Error("walked into a link")
			}
		})
	}
	// Writing at a link's own name replaces the link, never its target.
	if _, err := tr.writeAtomic("Local/alice/tobobfile", strings.NewReader("mine"), 100); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "Local/bob/secret.py")); string(b) != "bob's secret" {
		t.Fatalf("bob's file changed: %q", b)
	}
	// A walk reports links and does not enter them.
	var seen []string
	if err := tr.walk("Local/alice", func(rel string, fi fs.FileInfo) error {
		seen = append(seen, rel)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, s := range seen {
		if strings.Count(s, "/") > 2 && !strings.HasPrefix(s, "Local/alice/sub/") {
			t.Errorf("walk entered %s", s)
		}
	}
	for _, f := range []string{"/etc/passwd"} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%s vanished", f)
		}
	}
}

func TestTreeRenameNoReplace(t *testing.T) {
	t.Parallel()
	tr, dir := newTestTree(t)
	mustWrite(t, filepath.Join(dir, "Local/alice/other.py"), "other")
	if err := tr.rename("Local/alice/hello.py", "Local/alice/other.py"); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("rename over an existing file: %v, want ErrExist", err)
	}
	if err := tr.rename("Local/alice/hello.py", "Local/alice/sub/hello.py"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "Local/alice/sub/hello.py")); string(b) != "print('hi')" {
		t.Fatalf("moved file reads %q", b)
	}
	if err := tr.rename("Local/alice/sub", "Local/alice/sub/inner"); err == nil {
		t.Fatal("moved a folder into itself")
	}
}

func TestTreeWriteLimitLeavesOldFile(t *testing.T) {
	t.Parallel()
	tr, dir := newTestTree(t)
	_, err := tr.writeAtomic("Local/alice/hello.py", bytes.NewReader(make([]byte, 101)), 100)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize write: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "Local/alice/hello.py")); string(b) != "print('hi')" {
		t.Fatalf("old file damaged: %q", b)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "Local/alice"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func TestTreeRefusesSpecialFiles(t *testing.T) {
	t.Parallel()
	tr, dir := newTestTree(t)
	if err := syscall.Mkfifo(filepath.Join(dir, "Local/alice/fifo"), 0o644); err != nil {
		t.Skipf("cannot make a FIFO here: %v", err)
	}
	if _, _, err := tr.openFile("Local/alice/fifo"); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("opening a FIFO: %v", err)
	}
	if _, err := tr.writeAtomic("Local/alice/fifo", strings.NewReader("x"), 10); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("writing a FIFO: %v", err)
	}
}

const crashEnv = "PYIDE_WORKSPACE_CRASH_WRITER"

// crashWriter runs in a child process: it writes a new version of a file,
// says "ready" once the temporary file is synced, and waits to be killed
// before the rename.
func crashWriter(dir string) {
	tr, err := openTree(dir, false, 0)
	if err != nil {
		os.Exit(2)
	}
	tr.afterTemp = func() {
		os.Stdout.WriteString("ready\n")
		select {} // killed here
	}
	_, _ = tr.writeAtomic("Local/alice/hello.py", strings.NewReader(strings.Repeat("NEW ", 100000)), 10<<20)
	os.Exit(3) // not reached
}

func TestCrashBetweenTempAndRename(t *testing.T) {
	t.Parallel()
	_, dir := newTestTree(t)
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
	tr, err := openTree(dir, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.close()
	ents, err := tr.readDir("Local/alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			t.Fatalf("listing shows the temporary file %s", e.Name())
		}
	}
	// ...and the sweep removes it once it is old enough.
	if n := tr.sweepTemps("Local", time.Now().Add(-time.Hour)); n != 0 {
		t.Fatalf("swept %d fresh temporary files", n)
	}
	if n := tr.sweepTemps("Local", time.Now().Add(time.Hour)); n != 1 {
		t.Fatalf("swept %d temporary files, want 1", n)
	}
	raw, _ := os.ReadDir(filepath.Join(dir, "Local/alice"))
	for _, e := range raw {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			t.Fatalf("temporary file %s survived the sweep", e.Name())
		}
	}
}
