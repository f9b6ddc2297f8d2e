package course

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"syscall"
)

// The file work of this package. pkg/workspace keeps its own safe tree
// unexported, so the same rules are applied here through os.Root: every
// folder is opened one name at a time and checked not to be a symbolic
// link (os.Root alone would follow a link that stays inside the data
// folder, e.g. Local/alice/x → Local/bob), regular files only, writes to a
// temporary name then renamed.

var (
	errSymlink    = errors.New("path goes through a symbolic link")
	errNotRegular = errors.New("not a regular file")
	errTooLarge   = errors.New("file too large")
)

// tempPrefix is the workspace's prefix for files being written: the tree
// API never shows or addresses them.
const tempPrefix = ".pyide-tmp-"

// disk is the data folder.
type disk struct {
	root *os.Root
	// chown gives what is written into the course tree to the sandbox user,
	// when the server runs as root, so a student's container can change
	// their own copies. Snapshots stay the server's.
	chown    bool
	uid, gid int
}

func splitRel(rel string) []string {
	if rel == "" {
		return nil
	}
	return strings.Split(rel, "/")
}

// child opens folder name in r without following a link, even one swapped
// in between the check and the open.
func child(r *os.Root, name string) (*os.Root, error) {
	fi, err := r.Lstat(name)
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, errSymlink
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
		return nil, errSymlink
	}
	return c, nil
}

// dir opens the folder rel of the data folder ("" is the data folder).
func (d *disk) dir(rel string) (*os.Root, error) {
	cur, err := d.root.OpenRoot(".")
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

// mkdirAll makes rel and its missing parents in the data folder and opens
// it; see mkdirAllIn.
func (d *disk) mkdirAll(rel string, perm fs.FileMode, own bool) (*os.Root, error) {
	return d.mkdirAllIn(d.root, rel, perm, own)
}

// mkdirAllIn makes rel and its missing parents under r (mode perm, owned
// by the sandbox user when own) and opens it. An existing name on the way
// must be a real folder.
func (d *disk) mkdirAllIn(r *os.Root, rel string, perm fs.FileMode, own bool) (*os.Root, error) {
	cur, err := r.OpenRoot(".")
	if err != nil {
		return nil, err
	}
	for _, seg := range splitRel(rel) {
		if err := cur.Mkdir(seg, perm); err == nil {
			if own && d.chown {
				if err := cur.Lchown(seg, d.uid, d.gid); err != nil {
					cur.Close()
					return nil, err
				}
			}
		} else if !errors.Is(err, fs.ErrExist) {
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

// openRegular opens name in r for reading: a regular file, not a link.
func openRegular(r *os.Root, name string) (*os.File, fs.FileInfo, error) {
	fi, err := r.Lstat(name)
	if err != nil {
		return nil, nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, nil, errSymlink
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, errNotRegular
	}
	// O_NONBLOCK: a FIFO swapped in after the check must not hang us.
	f, err := r.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	got, err := f.Stat()
	if err != nil || !os.SameFile(fi, got) {
		f.Close()
		return nil, nil, errSymlink
	}
	return f, got, nil
}

// open opens the regular file rel of the data folder.
func (d *disk) open(rel string) (*os.File, fs.FileInfo, error) {
	dir, name := path.Split(rel)
	r, err := d.dir(strings.TrimSuffix(dir, "/"))
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	return openRegular(r, name)
}

// lstat describes rel without following a link at its end.
func (d *disk) lstat(rel string) (fs.FileInfo, error) {
	dir, name := path.Split(rel)
	r, err := d.dir(strings.TrimSuffix(dir, "/"))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if name == "" {
		return r.Stat(".")
	}
	return r.Lstat(name)
}

// fileEntry is a regular file found by a walk: its path relative to the
// folder walked, and its size.
type fileEntry struct {
	Rel  string
	Size int64
}

// files lists the regular files under the folder rel, sorted; links,
// devices and the temporary files of writes in progress are left out.
func (d *disk) files(rel string) ([]fileEntry, error) {
	r, err := d.dir(rel)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []fileEntry
	err = walk(r, "", func(p string, fi fs.FileInfo) {
		if fi.Mode().IsRegular() {
			out = append(out, fileEntry{Rel: p, Size: fi.Size()})
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Rel < out[j].Rel })
	return out, err
}

func walk(r *os.Root, rel string, fn func(rel string, fi fs.FileInfo)) error {
	f, err := r.Open(".")
	if err != nil {
		return err
	}
	ents, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return err
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		fi, err := e.Info() // lstat: a link is described, never entered
		if err != nil {
			continue
		}
		p := path.Join(rel, e.Name())
		fn(p, fi)
		if !fi.IsDir() {
			continue
		}
		c, err := child(r, e.Name())
		if err != nil {
			continue // replaced meanwhile: skip rather than follow
		}
		err = walk(c, p, fn)
		c.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func tempName() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return tempPrefix + hex.EncodeToString(b[:])
}

// writeFile writes what src yields (at most limit bytes) into dir/name:
// a synced temporary file renamed over name, or, with exclusive, created
// only when name does not exist (fs.ErrExist otherwise). It returns the
// size and SHA-256.
func (d *disk) writeFile(dir *os.Root, name string, src io.Reader, limit int64, perm fs.FileMode, own, exclusive bool) (int64, string, error) {
	tmp := name
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if !exclusive {
		tmp = tempName()
	}
	f, err := dir.OpenFile(tmp, flags, perm)
	if err != nil {
		return 0, "", err
	}
	fail := func(err error) (int64, string, error) {
		f.Close()
		_ = dir.Remove(tmp)
		return 0, "", err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(src, limit+1))
	if err != nil {
		return fail(err)
	}
	if n > limit {
		return fail(errTooLarge)
	}
	if own && d.chown {
		if err := f.Chown(d.uid, d.gid); err != nil {
			return fail(err)
		}
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		_ = dir.Remove(tmp)
		return 0, "", err
	}
	if !exclusive {
		if fi, err := dir.Lstat(name); err == nil && fi.IsDir() {
			_ = dir.Remove(tmp)
			return 0, "", errNotRegular
		}
		// rename replaces a link at name, never follows it.
		if err := dir.Rename(tmp, name); err != nil {
			_ = dir.Remove(tmp)
			return 0, "", err
		}
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// copyResult says what a copy did, by path relative to its destination.
type copyResult struct {
	Copied  []string `json:"copied"`
	Skipped []string `json:"skipped"`
}

// copyTree copies the regular files under the folder from (or the single
// file from) to the folder to, creating folders as needed (owned by the
// sandbox user). With overwrite unset, existing names are skipped, never
// replaced. A file's own name is kept when from is a file.
func (d *disk) copyTree(from, to string, overwrite bool, limit int64) (copyResult, error) {
	res := copyResult{Copied: []string{}, Skipped: []string{}}
	fi, err := d.lstat(from)
	if err != nil {
		return res, err
	}
	var entries []fileEntry
	srcDir := from
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return res, errSymlink
	case fi.Mode().IsRegular():
		srcDir = path.Dir(from)
		entries = []fileEntry{{Rel: path.Base(from), Size: fi.Size()}}
	case fi.IsDir():
		if entries, err = d.files(from); err != nil {
			return res, err
		}
	default:
		return res, errNotRegular
	}
	var total int64
	for _, e := range entries {
		total += e.Size
	}
	if total > limit {
		return res, errTooLarge
	}
	for _, e := range entries {
		dst := path.Join(to, e.Rel)
		dir, name := path.Split(dst)
		r, err := d.mkdirAll(strings.TrimSuffix(dir, "/"), 0o755, true)
		if err != nil {
			return res, err
		}
		if _, err := r.Lstat(name); err == nil && !overwrite {
			r.Close()
			res.Skipped = append(res.Skipped, e.Rel)
			continue
		}
		src, _, err := d.open(path.Join(srcDir, e.Rel))
		if err != nil {
			r.Close()
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed meanwhile
			}
			return res, err
		}
		_, _, err = d.writeFile(r, name, src, limit, 0o644, true, !overwrite)
		src.Close()
		r.Close()
		if errors.Is(err, fs.ErrExist) {
			res.Skipped = append(res.Skipped, e.Rel)
			continue
		}
		if err != nil {
			return res, err
		}
		res.Copied = append(res.Copied, e.Rel)
	}
	return res, nil
}

// removeContents empties the folder rel without following links.
func (d *disk) removeContents(rel string) error {
	r, err := d.dir(rel)
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := r.Open(".")
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		errs = append(errs, r.RemoveAll(n))
	}
	return errors.Join(errs...)
}

// setModes walks the folder rel and gives folders dirMode and regular files
// fileMode; snapshots are sealed with it.
func (d *disk) setModes(rel string, dirMode, fileMode fs.FileMode) error {
	r, err := d.dir(rel)
	if err != nil {
		return err
	}
	defer r.Close()
	var errs []error
	_ = walk(r, "", func(p string, fi fs.FileInfo) {
		switch {
		case fi.IsDir():
			errs = append(errs, r.Chmod(p, dirMode))
		case fi.Mode().IsRegular():
			errs = append(errs, r.Chmod(p, fileMode))
		}
	})
	errs = append(errs, r.Chmod(".", dirMode))
	return errors.Join(errs...)
}
