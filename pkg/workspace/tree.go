package workspace

import (
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/pythonide/pyide/pkg/fstree"
)

// Errors of the tree (pkg/fstree's, so errors.Is matches either name). The
// API turns them into statuses.
var (
	// ErrSymlink: a path goes through a symbolic link; the workspace never
	// follows one, whether it points inside the tree or out of it.
	ErrSymlink = fstree.ErrSymlink
	// ErrNotRegular: not a regular file (a device, a socket, a folder).
	ErrNotRegular = fstree.ErrNotRegular
	// ErrTooLarge: a write went past the size limit.
	ErrTooLarge = fstree.ErrTooLarge
)

// tree is the data folder as pkg/fstree opens it: no path ever goes
// through a symbolic link and writes are atomic. The methods name the
// fstree ones the workspace uses; the fields are the workspace's own set-up
// of the top folders.
type tree struct {
	ft       *fstree.Tree
	root     *os.Root
	chown    bool // new files and folders go to the sandbox user
	uid, gid int
}

func openTree(dataPath string, chown bool, uid int) (*tree, error) {
	ft, err := fstree.Open(dataPath, chown, uid)
	if err != nil {
		return nil, err
	}
	return &tree{ft: ft, root: ft.Root(), chown: chown, uid: uid, gid: uid}, nil
}

func (t *tree) close() error { return t.root.Close() }

func (t *tree) lstat(rel string) (fs.FileInfo, error)     { return t.ft.Lstat(rel) }
func (t *tree) readDir(rel string) ([]fs.FileInfo, error) { return t.ft.ReadDir(rel) }
func (t *tree) createFile(rel string) error               { return t.ft.CreateFile(rel) }
func (t *tree) mkdir(rel string) error                    { return t.ft.Mkdir(rel) }
func (t *tree) rename(from, to string) error              { return t.ft.Rename(from, to) }
func (t *tree) removeAll(rel string) error                { return t.ft.RemoveAll(rel) }
func (t *tree) walk(rel string, fn walkFunc) error        { return t.ft.Walk(rel, fn) }

func (t *tree) openFile(rel string) (*os.File, fs.FileInfo, error) { return t.ft.OpenFile(rel) }

func (t *tree) writeAtomic(rel string, r io.Reader, limit int64) (written, error) {
	return t.ft.WriteAtomic(rel, r, limit)
}

func (t *tree) writeTemp(dir, name string, r io.Reader, limit int64) (string, written, error) {
	return t.ft.WriteTemp(dir, name, r, limit)
}

func (t *tree) commitTemp(dir, tmp, name string) error { return t.ft.CommitTemp(dir, tmp, name) }
func (t *tree) removeTemp(dir, tmp string)             { t.ft.RemoveTemp(dir, tmp) }

// mkdirAll makes rel and its missing parents; existing folders are fine.
func (t *tree) mkdirAll(rel string) error {
	d, err := t.ft.MkdirAll(rel, 0o755)
	if err != nil {
		return err
	}
	return d.Close()
}

func (t *tree) copyTree(from, to string, limit int64, keep walkFunc) (int64, error) {
	return t.ft.CopyTree(from, to, limit, keep)
}

func (t *tree) sweepTemps(rel string, cutoff time.Time) int { return t.ft.SweepTemps(rel, cutoff) }

// written is the result of a write.
type written = fstree.Written

// walkFunc sees every entry under a folder walk, by its path relative to
// the data folder. Links are reported, never entered.
type walkFunc = fstree.WalkFunc

// errSkipDir, returned by a walkFunc for a folder, skips its contents.
var errSkipDir = fs.SkipDir

func hashReader(f io.ReadSeeker) (string, error) { return fstree.HashReader(f) }
func hashOf(b []byte) string                     { return fstree.HashOf(b) }
func tempName() string                           { return fstree.TempName() }
