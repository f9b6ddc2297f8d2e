// Package fstree is a directory tree opened with os.Root that never follows
// a symbolic link, with atomic writes. pkg/workspace (the file API) and
// pkg/course (starter copies, snapshots, mirrors) both reach the data folder
// only through it.
//
// Every path is opened one folder at a time, each folder checked (Lstat,
// then the opened handle compared to it) not to be a symbolic link, so
// neither a link a student's program made nor one swapped in during the walk
// can take the server anywhere else — not out of the tree, and not into
// another user's folder inside it (os.Root alone would follow a link that
// stays inside the root, e.g. Local/alice/x → Local/bob). It must never
// follow a link, never write a file in place except a new one created
// exclusively, and it knows nothing of users or policy.
package fstree

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

// Errors of the tree. The APIs turn them into statuses.
var (
	// ErrSymlink: a path goes through a symbolic link; the tree never
	// follows one, whether it points inside the tree or out of it.
	ErrSymlink = errors.New("path goes through a symbolic link")
	// ErrNotRegular: not a regular file (a device, a socket, a folder).
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge: a write went past the size limit.
	ErrTooLarge = errors.New("file too large")
)

// TempPrefix names the temporary files of atomic writes: listings and
// walks leave them out, and callers must not let a client name them.
const TempPrefix = ".pyide-tmp-"

// Tree is a folder reached only through os.Root.
type Tree struct {
	root *os.Root
	// chown, when set, gives new files and folders to uid:gid (the sandbox
	// user) so the non-root container can change them.
	chown    bool
	uid, gid int
	// AfterTemp, when set, runs between writing a temporary file and
	// renaming it over the target; the crash test stops the process there.
	AfterTemp func()
}

// Open makes dataPath if it is missing and opens it; see New for chown.
func Open(dataPath string, chown bool, uid int) (*Tree, error) {
	if err := os.MkdirAll(dataPath, 0o755); err != nil {
		return nil, err
	}
	r, err := os.OpenRoot(dataPath)
	if err != nil {
		return nil, err
	}
	return New(r, chown, uid, uid), nil
}

// New is the tree of an open root, which stays the caller's to close. With
// chown, what the tree creates is given to uid:gid.
func New(root *os.Root, chown bool, uid, gid int) *Tree {
	return &Tree{root: root, chown: chown, uid: uid, gid: gid}
}

// Root is the open root, for set-up of its top folders.
func (t *Tree) Root() *os.Root { return t.root }

// Close closes the root.
func (t *Tree) Close() error { return t.root.Close() }

func splitRel(rel string) []string {
	if rel == "" {
		return nil
	}
	return strings.Split(rel, "/")
}

func splitParent(rel string) (string, string) {
	dir, name := path.Split(rel)
	return strings.TrimSuffix(dir, "/"), name
}

// child opens the folder name in r, refusing a symbolic link even if one is
// swapped in between the check and the open.
func child(r *os.Root, name string) (*os.Root, error) {
	fi, err := r.Lstat(name)
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, ErrSymlink
	}
	if !fi.IsDir() {
		return nil, syscall.ENOTDIR
	}
	c, err := r.OpenRoot(name)
	if err != nil {
		return nil, err
	}
	got, err := c.Stat(".")
	if err != nil || !os.SameFile(fi, got) {
		c.Close()
		return nil, ErrSymlink
	}
	return c, nil
}

// Dir opens the folder rel ("" is the tree's own folder). The caller
// closes it.
func (t *Tree) Dir(rel string) (*os.Root, error) {
	cur, err := t.root.OpenRoot(".")
	if err != nil {
		return nil, err
	}
	for _, seg := range splitRel(rel) {
		next, err := child(cur, seg)
		cur.Close()
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: rel, Err: err}
		}
		cur = next
	}
	return cur, nil
}

// parent opens the folder holding rel and returns rel's last name.
func (t *Tree) parent(rel string) (*os.Root, string, error) {
	if rel == "" {
		return nil, "", syscall.EINVAL
	}
	dir, name := splitParent(rel)
	d, err := t.Dir(dir)
	if err != nil {
		return nil, "", err
	}
	return d, name, nil
}

// ParentDir opens the folder holding rel and returns rel's last name; the
// caller closes it.
func (t *Tree) ParentDir(rel string) (*os.Root, string, error) { return t.parent(rel) }

// Lstat describes rel without following a link at its end.
func (t *Tree) Lstat(rel string) (fs.FileInfo, error) {
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

// ReadDir lists rel without following links; temporary files of writes in
// progress are left out.
func (t *Tree) ReadDir(rel string) ([]fs.FileInfo, error) {
	d, err := t.Dir(rel)
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
		if strings.HasPrefix(e.Name(), TempPrefix) {
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

// OpenFile opens the regular file rel for reading.
func (t *Tree) OpenFile(rel string) (*os.File, fs.FileInfo, error) {
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

// HashReader is the hex SHA-256 of a file from its start, as Written.Hash;
// it leaves f at its start again.
func HashReader(f io.ReadSeeker) (string, error) {
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

// HashOf hashes a byte slice the same way files are hashed.
func HashOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TempName is a fresh name for a temporary file.
func TempName() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return TempPrefix + hex.EncodeToString(b[:])
}

// Written is the result of a write: its size and hex SHA-256.
type Written struct {
	Size int64
	Hash string
}

// WriteAtomic replaces (or creates) the file rel with what r yields, at most
// limit bytes, keeping the permissions of the file it replaces; see WriteIn.
func (t *Tree) WriteAtomic(rel string, r io.Reader, limit int64) (Written, error) {
	dir, name := splitParent(rel)
	d, err := t.Dir(dir)
	if err != nil {
		return Written{}, err
	}
	defer d.Close()
	return t.WriteIn(d, name, r, limit, 0)
}

// WriteIn replaces (or creates) name in the folder d with what r yields, at
// most limit bytes: a temporary file in the same folder is written, synced,
// and renamed over the target, and the folder is synced, so a crash leaves
// either the old file or the new one, never a mix. The file gets perm, or
// with perm 0 the permissions of the file it replaces (0644 for a new one).
// A link at name is replaced, never followed; anything else that is not a
// regular file is refused.
func (t *Tree) WriteIn(d *os.Root, name string, r io.Reader, limit int64, perm fs.FileMode) (Written, error) {
	tmp, w, err := t.writeTempIn(d, name, r, limit, perm)
	if err != nil {
		return Written{}, err
	}
	if err := t.commitTempIn(d, tmp, name); err != nil {
		_ = d.Remove(tmp)
		return Written{}, err
	}
	return w, nil
}

// WriteTemp writes a synced temporary file in the folder dir, to become
// name later by CommitTemp (or dropped by RemoveTemp), so that many files
// can be written before any is replaced.
func (t *Tree) WriteTemp(dir, name string, r io.Reader, limit int64) (string, Written, error) {
	d, err := t.Dir(dir)
	if err != nil {
		return "", Written{}, err
	}
	defer d.Close()
	return t.writeTempIn(d, name, r, limit, 0)
}

// replaceable: a write may rename over a regular file or a link (rename
// does not follow its last name), nothing else.
func replaceable(fi fs.FileInfo) bool {
	return fi.Mode().IsRegular() || fi.Mode()&fs.ModeSymlink != 0
}

func (t *Tree) writeTempIn(d *os.Root, name string, r io.Reader, limit int64, perm fs.FileMode) (string, Written, error) {
	keepPerm := perm == 0
	if keepPerm {
		perm = 0o644
	}
	if fi, err := d.Lstat(name); err == nil {
		if !replaceable(fi) {
			return "", Written{}, ErrNotRegular
		}
		if keepPerm && fi.Mode().IsRegular() {
			perm = fi.Mode().Perm()
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", Written{}, err
	}
	tmp := TempName()
	w, err := t.CreateIn(d, tmp, r, limit, perm)
	if err != nil {
		return "", Written{}, err
	}
	return tmp, w, nil
}

// CreateIn writes a new file name in the folder d (fs.ErrExist if anything
// is there) with what r yields, at most limit bytes, gives it to the
// sandbox user (see New) and syncs it; on failure it removes it again.
// Unlike WriteIn it writes in place and does not sync the folder: it is
// for temporary files and for folders not yet visible (snapshots) or whose
// files must never be replaced.
func (t *Tree) CreateIn(d *os.Root, name string, r io.Reader, limit int64, perm fs.FileMode) (Written, error) {
	f, err := d.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return Written{}, err
	}
	fail := func(err error) (Written, error) {
		f.Close()
		_ = d.Remove(name)
		return Written{}, err
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
		_ = d.Remove(name)
		return Written{}, err
	}
	return Written{Size: n, Hash: hex.EncodeToString(h.Sum(nil))}, nil
}

// CommitTemp renames a temporary file of WriteTemp over name and syncs the
// folder.
func (t *Tree) CommitTemp(dir, tmp, name string) error {
	d, err := t.Dir(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return t.commitTempIn(d, tmp, name)
}

func (t *Tree) commitTempIn(d *os.Root, tmp, name string) error {
	if t.AfterTemp != nil {
		t.AfterTemp()
	}
	if fi, err := d.Lstat(name); err == nil && !replaceable(fi) {
		return ErrNotRegular // became a folder meanwhile
	}
	if err := d.Rename(tmp, name); err != nil {
		return err
	}
	syncDir(d)
	return nil
}

// RemoveTemp drops a temporary file that will not be committed.
func (t *Tree) RemoveTemp(dir, tmp string) {
	if d, err := t.Dir(dir); err == nil {
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

func (t *Tree) own(f *os.File) error {
	if !t.chown {
		return nil
	}
	return f.Chown(t.uid, t.gid)
}

// CreateFile makes an empty file; fs.ErrExist if anything is there.
func (t *Tree) CreateFile(rel string) error {
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

// Mkdir makes a folder (0755); fs.ErrExist if anything is there.
func (t *Tree) Mkdir(rel string) error {
	d, name, err := t.parent(rel)
	if err != nil {
		return err
	}
	defer d.Close()
	return t.mkdirIn(d, name, 0o755)
}

func (t *Tree) mkdirIn(d *os.Root, name string, perm fs.FileMode) error {
	if err := d.Mkdir(name, perm); err != nil {
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

// MkdirAll makes rel and its missing parents and opens it; see MkdirAllIn.
func (t *Tree) MkdirAll(rel string, perm fs.FileMode) (*os.Root, error) {
	return t.MkdirAllIn(t.root, rel, perm)
}

// MkdirAllIn makes rel and its missing parents under r (mode perm, given
// to the sandbox user, see New) and opens it; the caller closes it. An
// existing name on the way must be a real folder and is left as it is.
func (t *Tree) MkdirAllIn(r *os.Root, rel string, perm fs.FileMode) (*os.Root, error) {
	cur, err := r.OpenRoot(".")
	if err != nil {
		return nil, err
	}
	for _, seg := range splitRel(rel) {
		if err := t.mkdirIn(cur, seg, perm); err != nil && !errors.Is(err, fs.ErrExist) {
			cur.Close()
			return nil, err
		}
		next, err := child(cur, seg)
		cur.Close()
		if err != nil {
			return nil, &fs.PathError{Op: "mkdir", Path: rel, Err: err}
		}
		cur = next
	}
	return cur, nil
}

// Rename moves from to to; fs.ErrExist if to exists. Both folders are
// opened without following links and the move is one renameat2 between
// them, so neither end can be redirected.
func (t *Tree) Rename(from, to string) error {
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

// RemoveAll deletes rel and everything under it, never following a link.
func (t *Tree) RemoveAll(rel string) error {
	d, name, err := t.parent(rel)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.RemoveAll(name)
}

// WalkFunc sees every entry of a walk, by its path (the walk's prefix
// joined with the names below it). Links are reported, never entered.
// fs.SkipDir, returned for a folder, skips its contents.
type WalkFunc func(rel string, fi fs.FileInfo) error

// Walk visits rel's contents depth first (rel itself is not reported),
// naming them by their paths in the tree.
func (t *Tree) Walk(rel string, fn WalkFunc) error {
	d, err := t.Dir(rel)
	if err != nil {
		return err
	}
	defer d.Close()
	return WalkIn(d, rel, fn)
}

// WalkIn visits the contents of the open folder d depth first, naming them
// by prefix joined with their path below d ("" names them from d).
func WalkIn(d *os.Root, prefix string, fn WalkFunc) error {
	ents, err := readRoot(d)
	if err != nil {
		return err
	}
	for _, fi := range ents {
		p := path.Join(prefix, fi.Name())
		err := fn(p, fi)
		if errors.Is(err, fs.SkipDir) {
			continue
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			continue
		}
		c, err := child(d, fi.Name())
		if err != nil {
			continue // replaced meanwhile: skip rather than follow
		}
		err = WalkIn(c, p, fn)
		c.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// CopyTree copies the file or folder from to to (which must not exist),
// skipping links, anything that is not a regular file or folder, and what
// keep (if set) refuses; limit bounds each file. It returns the bytes
// copied.
func (t *Tree) CopyTree(from, to string, limit int64, keep WalkFunc) (int64, error) {
	fi, err := t.Lstat(from)
	if err != nil {
		return 0, err
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return 0, ErrSymlink
	case fi.Mode().IsRegular():
		if _, err := t.Lstat(to); err == nil {
			return 0, fs.ErrExist
		}
		return t.copyFile(from, to, limit)
	case !fi.IsDir():
		return 0, ErrNotRegular
	}
	if err := t.Mkdir(to); err != nil {
		return 0, err
	}
	var total int64
	err = t.Walk(from, func(rel string, fi fs.FileInfo) error {
		dst := to + strings.TrimPrefix(rel, from)
		if keep != nil {
			if err := keep(rel, fi); err != nil {
				return err
			}
		}
		switch {
		case fi.IsDir():
			return t.Mkdir(dst)
		case fi.Mode().IsRegular():
			n, err := t.copyFile(rel, dst, limit)
			total += n
			return err
		}
		return nil
	})
	return total, err
}

func (t *Tree) copyFile(from, to string, limit int64) (int64, error) {
	f, _, err := t.OpenFile(from)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w, err := t.WriteAtomic(to, f, limit)
	return w.Size, err
}

// SweepTemps removes temporary files under rel last changed before cutoff:
// what a crashed write left behind. It returns how many it removed.
func (t *Tree) SweepTemps(rel string, cutoff time.Time) int {
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
			case strings.HasPrefix(e.Name(), TempPrefix) && e.Type().IsRegular():
				if fi, err := e.Info(); err == nil && fi.ModTime().Before(cutoff) && d.Remove(e.Name()) == nil {
					n++
				}
			case e.IsDir():
				if c, err := child(d, e.Name()); err == nil {
					sweep(c)
					c.Close()
				}
			}
		}
	}
	if d, err := t.Dir(rel); err == nil {
		sweep(d)
		d.Close()
	}
	return n
}

// MayChown reports whether this process may give files to another user:
// it runs as root, or holds CAP_CHOWN (a dedicated server user granted it,
// see deploy/).
func MayChown() bool {
	if os.Geteuid() == 0 {
		return true
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[unix.CAP_CHOWN/32].Effective&(1<<(unix.CAP_CHOWN%32)) != 0
}
