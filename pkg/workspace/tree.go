package workspace

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Errors of the tree. The API turns them into statuses.
var (
	// ErrSymlink: a path goes through a symbolic link; the workspace never
	// follows one, whether it points inside the tree or out of it.
	ErrSymlink = errors.New("path goes through a symbolic link")
	// ErrNotRegular: not a regular file (a device, a socket, a folder).
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge: a write went past the size limit.
	ErrTooLarge = errors.New("file too large")
)

// tree is the data folder, reached only through os.Root. Every path is
// opened one folder at a time, each folder checked (Lstat, then the opened
// handle compared to it) not to be a symbolic link, so neither a link a
// student's program made nor one swapped in during the walk can take the
// server anywhere else — not out of the data folder, and not into another
// user's folder inside it. The tree knows nothing of users or policy.
type tree struct {
	root *os.Root
	// chown, when set, gives new files and folders to the sandbox user so
	// the (non-root) container can change them.
	chown    bool
	uid, gid int
	// afterTemp runs between writing the temporary file and renaming it
	// over the target; the crash test stops the process there.
	afterTemp func()
}

func openTree(dataPath string, chown bool, uid int) (*tree, error) {
	if err := os.MkdirAll(dataPath, 0o755); err != nil {
		return nil, err
	}
	r, err := os.OpenRoot(dataPath)
	if err != nil {
		return nil, err
	}
	return &tree{root: r, chown: chown, uid: uid, gid: uid}, nil
}

func (t *tree) close() error { return t.root.Close() }

func splitRel(rel string) []string {
	if rel == "" {
		return nil
	}
	return strings.Split(rel, "/")
}

// child opens the folder name in r, refusing a symbolic link even if one is
// swapped in between the check and the open.
func child(r *os.Root, name string) (*os.Root, fs.FileInfo, error) {
	fi, err := r.Lstat(name)
	if err != nil {
		return nil, nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, nil, ErrSymlink
	}
	if !fi.IsDir() {
		return nil, nil, syscall.ENOTDIR
	}
	c, err := r.OpenRoot(name)
	if err != nil {
		return nil, nil, err
	}
	got, err := c.Stat(".")
	if err != nil || !os.SameFile(fi, got) {
		c.Close()
		return nil, nil, ErrSymlink
	}
	return c, fi, nil
}

// dir opens the folder rel ("" is the data folder). The caller closes it.
func (t *tree) dir(rel string) (*os.Root, error) {
	cur, err := t.root.OpenRoot(".")
	if err != nil {
		return nil, err
	}
	for _, seg := range splitRel(rel) {
		next, _, err := child(cur, seg)
		cur.Close()
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: rel, Err: err}
		}
		cur = next
	}
	return cur, nil
}

// parent opens the folder holding rel and returns rel's last name.
func (t *tree) parent(rel string) (*os.Root, string, error) {
	if rel == "" {
		return nil, "", syscall.EINVAL
	}
	dir := path.Dir(rel)
	if dir == "." {
		dir = ""
	}
	d, err := t.dir(dir)
	if err != nil {
		return nil, "", err
	}
	return d, path.Base(rel), nil
}

// lstat describes rel without following a link at its end.
func (t *tree) lstat(rel string) (fs.FileInfo, error) {
	if rel == "" {
		return t.root.Stat(".")
	}
	d, name, err := t.parent(rel)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Lstat(name)
}

// readDir lists rel without following links; temporary files of writes in
// progress are left out.
func (t *tree) readDir(rel string) ([]fs.FileInfo, error) {
	d, err := t.dir(rel)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return readRoot(d)
}

func readRoot(d *os.Root) ([]fs.FileInfo, error) {
	f, err := d.Open(".")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	out := make([]fs.FileInfo, 0, len(ents))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		fi, err := e.Info() // lstat: links are described, not followed
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, fi)
	}
	return out, nil
}

// openFile opens the regular file rel for reading.
func (t *tree) openFile(rel string) (*os.File, fs.FileInfo, error) {
	d, name, err := t.parent(rel)
	if err != nil {
		return nil, nil, err
	}
	defer d.Close()
	return openRegular(d, name)
}

func openRegular(d *os.Root, name string) (*os.File, fs.FileInfo, error) {
	fi, err := d.Lstat(name)
	if err != nil {
		return nil, nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, nil, ErrSymlink
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, ErrNotRegular
	}
	// O_NONBLOCK: a FIFO swapped in after the check must not hang us.
	f, err := d.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	got, err := f.Stat()
	if err != nil || !os.SameFile(fi, got) {
		f.Close()
		return nil, nil, ErrSymlink
	}
	return f, got, nil
}

// hashReader is the hex SHA-256 of a file from its start; it leaves f at
// its start again.
func hashReader(f io.ReadSeeker) (string, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func tempName() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return tempPrefix + hex.EncodeToString(b[:])
}

// written is the result of a write.
type written struct {
	Size int64
	Hash string
}

// writeAtomic replaces (or creates) the file rel with what r yields, at most
// limit bytes: a temporary file in the same folder is written, synced, and
// renamed over the target, and the folder is synced, so a crash leaves
// either the old file or the new one, never a mix.
func (t *tree) writeAtomic(rel string, r io.Reader, limit int64) (written, error) {
	dir, name := splitParent(rel)
	tmp, w, err := t.writeTemp(dir, name, r, limit)
	if err != nil {
		return written{}, err
	}
	if err := t.commitTemp(dir, tmp, name); err != nil {
		t.removeTemp(dir, tmp)
		return written{}, err
	}
	return w, nil
}

func splitParent(rel string) (string, string) {
	dir, name := path.Split(rel)
	return strings.TrimSuffix(dir, "/"), name
}

// writeTemp writes a synced temporary file in the folder dir, to become
// name later: it takes name's permissions and refuses when name is
// something other than a regular file or a link (a link is replaced, never
// followed: rename does not follow its last name).
func (t *tree) writeTemp(dir, name string, r io.Reader, limit int64) (string, written, error) {
	d, err := t.dir(dir)
	if err != nil {
		return "", written{}, err
	}
	defer d.Close()
	perm := fs.FileMode(0o644)
	if fi, err := d.Lstat(name); err == nil {
		if !fi.Mode().IsRegular() && fi.Mode()&fs.ModeSymlink == 0 {
			return "", written{}, ErrNotRegular
		}
		if fi.Mode().IsRegular() {
			perm = fi.Mode().Perm()
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", written{}, err
	}
	tmp := tempName()
	f, err := d.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return "", written{}, err
	}
	fail := func(err error) (string, written, error) {
		f.Close()
		_ = d.Remove(tmp)
		return "", written{}, err
	}
	h := sha256.New()
	n, err := copyLimited(io.MultiWriter(f, h), r, limit)
	if err != nil {
		return fail(err)
	}
	if err := t.own(f); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		_ = d.Remove(tmp)
		return "", written{}, err
	}
	return tmp, written{Size: n, Hash: hex.EncodeToString(h.Sum(nil))}, nil
}

// commitTemp renames a temporary file of writeTemp over name and syncs the
// folder.
func (t *tree) commitTemp(dir, tmp, name string) error {
	if t.afterTemp != nil {
		t.afterTemp()
	}
	d, err := t.dir(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if fi, err := d.Lstat(name); err == nil && !fi.Mode().IsRegular() && fi.Mode()&fs.ModeSymlink == 0 {
		return ErrNotRegular // became a folder meanwhile
	}
	if err := d.Rename(tmp, name); err != nil {
		return err
	}
	syncDir(d)
	return nil
}

// removeTemp drops a temporary file that will not be committed.
func (t *tree) removeTemp(dir, tmp string) {
	if d, err := t.dir(dir); err == nil {
		_ = d.Remove(tmp)
		d.Close()
	}
}

// copyLimited copies at most limit bytes and fails with ErrTooLarge if
// there is more.
func copyLimited(w io.Writer, r io.Reader, limit int64) (int64, error) {
	n, err := io.Copy(w, io.LimitReader(r, limit+1))
	if err != nil {
		return n, err
	}
	if n > limit {
		return n, ErrTooLarge
	}
	return n, nil
}

func syncDir(d *os.Root) {
	if f, err := d.Open("."); err == nil {
		_ = f.Sync() // best effort: the rename itself already happened
		f.Close()
	}
}

func (t *tree) own(f *os.File) error {
	if !t.chown {
		return nil
	}
	return f.Chown(t.uid, t.gid)
}

// createFile makes an empty file; fs.ErrExist if anything is there.
func (t *tree) createFile(rel string) error {
	d, name, err := t.parent(rel)
	if err != nil {
		return err
	}
	defer d.Close()
	f, err := d.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := t.own(f); err != nil {
		return err
	}
	syncDir(d)
	return nil
}

// mkdir makes a folder; fs.ErrExist if anything is there.
func (t *tree) mkdir(rel string) error {
	d, name, err := t.parent(rel)
	if err != nil {
		return err
	}
	defer d.Close()
	return t.mkdirIn(d, name)
}

func (t *tree) mkdirIn(d *os.Root, name string) error {
	if err := d.Mkdir(name, 0o755); err != nil {
		return err
	}
	if t.chown {
		// Lchown: never follows a link swapped in meanwhile.
		if err := d.Lchown(name, t.uid, t.gid); err != nil {
			return err
		}
	}
	return nil
}

// mkdirAll makes rel and its missing parents; existing folders are fine.
func (t *tree) mkdirAll(rel string) error {
	cur, err := t.root.OpenRoot(".")
	if err != nil {
		return err
	}
	defer func() { cur.Close() }()
	for _, seg := range splitRel(rel) {
		if err := t.mkdirIn(cur, seg); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		next, _, err := child(cur, seg)
		if err != nil {
			return &fs.PathError{Op: "mkdir", Path: rel, Err: err}
		}
		cur.Close()
		cur = next
	}
	return nil
}

// rename moves from to to; fs.ErrExist if to exists. Both folders are
// opened without following links and the move is one renameat2 between
// them, so neither end can be redirected.
func (t *tree) rename(from, to string) error {
	fd, fname, err := t.parent(from)
	if err != nil {
		return err
	}
	defer fd.Close()
	td, tname, err := t.parent(to)
	if err != nil {
		return err
	}
	defer td.Close()
	ff, err := fd.Open(".")
	if err != nil {
		return err
	}
	defer ff.Close()
	tf, err := td.Open(".")
	if err != nil {
		return err
	}
	defer tf.Close()
	err = unix.Renameat2(int(ff.Fd()), fname, int(tf.Fd()), tname, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// Some file systems lack RENAME_NOREPLACE; check, then rename.
		if _, lerr := td.Lstat(tname); lerr == nil {
			return fs.ErrExist
		}
		if _, lerr := fd.Lstat(fname); lerr != nil {
			return lerr
		}
		err = unix.Renameat(int(ff.Fd()), fname, int(tf.Fd()), tname)
	}
	if errors.Is(err, unix.EEXIST) {
		return fs.ErrExist
	}
	if err != nil {
		return &fs.PathError{Op: "rename", Path: from, Err: err}
	}
	syncDir(fd)
	syncDir(td)
	return nil
}

// removeAll deletes rel and everything under it, never following a link.
func (t *tree) removeAll(rel string) error {
	d, name, err := t.parent(rel)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.RemoveAll(name)
}

// walkFunc sees every entry under a folder walk, by its path relative to
// the data folder. Links are reported, never entered.
type walkFunc func(rel string, fi fs.FileInfo) error

// errSkipDir, returned by a walkFunc for a folder, skips its contents.
var errSkipDir = fs.SkipDir

// walk visits rel's contents depth first (rel itself is not reported).
func (t *tree) walk(rel string, fn walkFunc) error {
	d, err := t.dir(rel)
	if err != nil {
		return err
	}
	defer d.Close()
	return walkRoot(d, rel, fn)
}

func walkRoot(d *os.Root, rel string, fn walkFunc) error {
	ents, err := readRoot(d)
	if err != nil {
		return err
	}
	for _, fi := range ents {
		p := path.Join(rel, fi.Name())
		err := fn(p, fi)
		if errors.Is(err, errSkipDir) {
			continue
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			continue
		}
		c, _, err := child(d, fi.Name())
		if err != nil {
			continue // replaced meanwhile: skip rather than follow
		}
		err = walkRoot(c, p, fn)
		c.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// copyTree copies the file or folder from to to (which must not exist),
// skipping links, anything that is not a regular file or folder, and what
// keep (if set) refuses. It returns the bytes copied.
func (t *tree) copyTree(from, to string, limit int64, keep walkFunc) (int64, error) {
	fi, err := t.lstat(from)
	if err != nil {
		return 0, err
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return 0, ErrSymlink
	case fi.Mode().IsRegular():
		if _, err := t.lstat(to); err == nil {
			return 0, fs.ErrExist
		}
		return t.copyFile(from, to, limit)
	case !fi.IsDir():
		return 0, ErrNotRegular
	}
	if err := t.mkdir(to); err != nil {
		return 0, err
	}
	var total int64
	err = t.walk(from, func(rel string, fi fs.FileInfo) error {
		dst := to + strings.TrimPrefix(rel, from)
		if keep != nil {
			if err := keep(rel, fi); err != nil {
				return err
			}
		}
		switch {
		case fi.IsDir():
			return t.mkdir(dst)
		case fi.Mode().IsRegular():
			n, err := t.copyFile(rel, dst, limit)
			total += n
			return err
		}
		return nil
	})
	return total, err
}

func (t *tree) copyFile(from, to string, limit int64) (int64, error) {
	f, _, err := t.openFile(from)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w, err := t.writeAtomic(to, f, limit)
	return w.Size, err
}

// hashOf hashes a byte slice the same way files are hashed.
func hashOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// sweepTemps removes temporary files under rel last changed before cutoff:
// what a crashed write left behind. It returns how many it removed.
func (t *tree) sweepTemps(rel string, cutoff time.Time) int {
	n := 0
	var sweep func(d *os.Root)
	sweep = func(d *os.Root) {
		f, err := d.Open(".")
		if err != nil {
			return
		}
		ents, err := f.ReadDir(-1)
		f.Close()
		if err != nil {
			return
		}
		for _, e := range ents {
			switch {
			case strings.HasPrefix(e.Name(), tempPrefix) && e.Type().IsRegular():
				if fi, err := e.Info(); err == nil && fi.ModTime().Before(cutoff) && d.Remove(e.Name()) == nil {
					n++
				}
			case e.IsDir():
				if c, _, err := child(d, e.Name()); err == nil {
					sweep(c)
					c.Close()
				}
			}
		}
	}
	if d, err := t.dir(rel); err == nil {
		sweep(d)
		d.Close()
	}
	return n
}
