package fstree

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

func newTestTree(t *testing.T) (*Tree, string) {
	t.Helper()
	dir := t.TempDir()
	tr, err := Open(dir, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
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
			if f, _, err := tr.OpenFile(rel); err == nil {
				f.Close()
				t.Error("read through a link")
			}
			if _, err := tr.ReadDir(rel); err == nil {
				t.Error("listed through a link")
			}
			if _, _, err := tr.OpenFile(rel + "/secret.py"); err == nil {
				t.Error("read below a link")
			}
			if _, err := tr.WriteAtomic(rel+"/x.py", strings.NewReader("x"), 100); err == nil {
				t.Error("wrote below a link")
			}
			if err := tr.CreateFile(rel + "/new.py"); err == nil {
				t.Error("created below a link")
			}
			if err := tr.Mkdir(rel + "/d"); err == nil {
				t.Error("made a folder below a link")
			}
			if err := tr.Rename("Local/alice/hello.py", rel+"/moved.py"); err == nil {
				t.Error("moved into a link")
			}
			if err := tr.Rename(rel+"/secret.py", "Local/alice/stolen.py"); err == nil {
				t.Error("moved out from below a link")
			}
			if _, err := tr.CopyTree(rel, "Local/alice/copy-"+name, 1<<20, nil); err == nil {
				t.Error("copied a link")
			}
			if err := tr.Walk(rel, func(string, fs.FileInfo) error { return nil }); err == nil {
				t.Error("walked into a link")
			}
		})
	}
	// Writing at a link's own name replaces the link, never its target.
	if _, err := tr.WriteAtomic("Local/alice/tobobfile", strings.NewReader("mine"), 100); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "Local/bob/secret.py")); string(b) != "bob's secret" {
		t.Fatalf("bob's file changed: %q", b)
	}
	// A walk reports links and does not enter them.
	var seen []string
	if err := tr.Walk("Local/alice", func(rel string, fi fs.FileInfo) error {
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
	if err := tr.Rename("Local/alice/hello.py", "Local/alice/other.py"); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("rename over an existing file: %v, want ErrExist", err)
	}
	if err := tr.Rename("Local/alice/hello.py", "Local/alice/sub/hello.py"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "Local/alice/sub/hello.py")); string(b) != "print('hi')" {
		t.Fatalf("moved file reads %q", b)
	}
	if err := tr.Rename("Local/alice/sub", "Local/alice/sub/inner"); err == nil {
		t.Fatal("moved a folder into itself")
	}
}

func TestTreeWriteLimitLeavesOldFile(t *testing.T) {
	t.Parallel()
	tr, dir := newTestTree(t)
	_, err := tr.WriteAtomic("Local/alice/hello.py", bytes.NewReader(make([]byte, 101)), 100)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize write: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "Local/alice/hello.py")); string(b) != "print('hi')" {
		t.Fatalf("old file damaged: %q", b)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "Local/alice"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), TempPrefix) {
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
	if _, _, err := tr.OpenFile("Local/alice/fifo"); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("opening a FIFO: %v", err)
	}
	if _, err := tr.WriteAtomic("Local/alice/fifo", strings.NewReader("x"), 10); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("writing a FIFO: %v", err)
	}
}

// What course writes in folders it opened itself: exclusive creates never
// replace, replacing writes take the mode asked for or keep the old one.
func TestWriteInAndCreateIn(t *testing.T) {
	t.Parallel()
	tr, dir := newTestTree(t)
	d, err := tr.Dir("Local/alice")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	if _, err := tr.CreateIn(d, "hello.py", strings.NewReader("new"), 100, 0o644); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("exclusive create over a file: %v, want ErrExist", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "Local/alice/hello.py")); string(b) != "print('hi')" {
		t.Fatalf("exclusive create changed the file: %q", b)
	}
	w, err := tr.CreateIn(d, "ro.py", strings.NewReader("sealed"), 100, 0o444)
	if err != nil || w.Size != 6 || w.Hash != HashOf([]byte("sealed")) {
		t.Fatalf("create: %+v %v", w, err)
	}
	if _, err := tr.CreateIn(d, "big.py", bytes.NewReader(make([]byte, 11)), 10, 0o644); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize create: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "Local/alice/big.py")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("an oversize create left its file: %v", err)
	}

	if err := os.Chmod(filepath.Join(dir, "Local/alice/hello.py"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.WriteIn(d, "hello.py", strings.NewReader("kept"), 100, 0); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "Local/alice/hello.py")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("perm 0 gave %v, want the old 0600", fi.Mode().Perm())
	}
	if _, err := tr.WriteIn(d, "hello.py", strings.NewReader("reset"), 100, 0o644); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(filepath.Join(dir, "Local/alice/hello.py"))
	if b, _ := os.ReadFile(filepath.Join(dir, "Local/alice/hello.py")); string(b) != "reset" || fi.Mode().Perm() != 0o644 {
		t.Fatalf("replaced file: %q %v", b, fi.Mode().Perm())
	}
	if _, err := tr.WriteIn(d, "sub", strings.NewReader("x"), 100, 0o644); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("writing over a folder: %v", err)
	}
}

func TestMkdirAllIn(t *testing.T) {
	t.Parallel()
	tr, dir := newTestTree(t)
	plantLinks(t, dir)
	d, err := tr.MkdirAll("Local/alice/a/b", 0o700)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.CreateIn(d, "f", strings.NewReader("x"), 10, 0o644); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if b, _ := os.ReadFile(filepath.Join(dir, "Local/alice/a/b/f")); string(b) != "x" {
		t.Fatalf("the opened folder is not the one made: %q", b)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "Local/alice/a")); fi.Mode().Perm() != 0o700 {
		t.Fatalf("made with %v, want 0700", fi.Mode().Perm())
	}
	// Existing folders stay as they are.
	if d, err := tr.MkdirAll("Local/alice", 0o700); err != nil {
		t.Fatal(err)
	} else {
		d.Close()
	}
	if fi, _ := os.Stat(filepath.Join(dir, "Local/alice")); fi.Mode().Perm() != 0o755 {
		t.Fatalf("an existing folder changed to %v", fi.Mode().Perm())
	}
	for _, rel := range []string{"Local/alice/tobob", "Local/alice/tobob/new", "Local/alice/etc/x", "Local/alice/hello.py/x"} {
		if d, err := tr.MkdirAll(rel, 0o755); err == nil {
			d.Close()
			t.Errorf("made %s through a link or a file", rel)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "Local/bob/new")); err == nil {
		t.Fatal("made a folder in bob's through a link")
	}
}

// With chown, what the tree creates goes to the sandbox user; without,
// it stays the server's.
func TestOwnership(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to another user")
	}
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, c := range []struct {
		name  string
		chown bool
		want  int
	}{{"owned", true, 4242}, {"server", false, 0}} {
		t.Run(c.name, func(t *testing.T) {
			tr := New(root, c.chown, 4242, 4242)
			d, err := tr.MkdirAll(c.name+"/sub", 0o755)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if _, err := tr.WriteIn(d, "w", strings.NewReader("x"), 10, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := tr.CreateIn(d, "c", strings.NewReader("x"), 10, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := tr.CreateFile(c.name + "/e"); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{c.name, c.name + "/sub", c.name + "/sub/w", c.name + "/sub/c", c.name + "/e"} {
				fi, err := os.Lstat(filepath.Join(dir, p))
				if err != nil {
					t.Fatal(err)
				}
				if uid := int(fi.Sys().(*syscall.Stat_t).Uid); uid != c.want {
					t.Errorf("%s owned by %d, want %d", p, uid, c.want)
				}
			}
		})
	}
}

// WalkIn names entries from the folder it was given, with or without a
// prefix, and reports a link without entering it.
func TestWalkInPrefix(t *testing.T) {
	t.Parallel()
	tr, dir := newTestTree(t)
	mustWrite(t, filepath.Join(dir, "Local/alice/sub/deep.py"), "d")
	if err := os.Symlink("../bob", filepath.Join(dir, "Local/alice/tobob")); err != nil {
		t.Fatal(err)
	}
	d, err := tr.Dir("Local/alice")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, prefix := range []string{"", "x/y"} {
		var got []string
		if err := WalkIn(d, prefix, func(rel string, _ fs.FileInfo) error {
			got = append(got, rel)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		sort.Strings(got) // directory order
		want := []string{"hello.py", "sub", "sub/deep.py", "tobob"}
		for i := range want {
			want[i] = filepath.ToSlash(filepath.Join(prefix, want[i]))
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("prefix %q: walked %v, want %v", prefix, got, want)
		}
	}
}
