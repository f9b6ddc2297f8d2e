package course

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/pythonide/pyide/pkg/fstree"
)

// The file work of this package goes through pkg/fstree, as the
// workspace's does: every folder is opened one name at a time and checked
// not to be a symbolic link, regular files only, replacing writes go to a
// temporary name then are renamed.

var (
	errSymlink    = fstree.ErrSymlink
	errNotRegular = fstree.ErrNotRegular
	errTooLarge   = fstree.ErrTooLarge
)

func tempName() string { return fstree.TempName() }

// disk is the data folder.
type disk struct {
	root *os.Root
	// chown gives what is written into the course tree to the sandbox user,
	// when the server runs as root, so a student's container can change
	// their own copies. Snapshots stay the server's.
	chown    bool
	uid, gid int
}

// tree is the data folder for one write: with own, what it creates goes
// to the sandbox user (when chown is set).
func (d *disk) tree(own bool) *fstree.Tree {
	return fstree.New(d.root, own && d.chown, d.uid, d.gid)
}

// dir opens the folder rel of the data folder ("" is the data folder).
func (d *disk) dir(rel string) (*os.Root, error) { return d.tree(false).Dir(rel) }

// mkdirAll makes rel and its missing parents in the data folder and opens
// it; see mkdirAllIn.
func (d *disk) mkdirAll(rel string, perm fs.FileMode, own bool) (*os.Root, error) {
	return d.tree(own).MkdirAll(rel, perm)
}

// mkdirAllIn makes rel and its missing parents under r (mode perm, owned
// by the sandbox user when own) and opens it. An existing name on the way
// must be a real folder.
func (d *disk) mkdirAllIn(r *os.Root, rel string, perm fs.FileMode, own bool) (*os.Root, error) {
	return d.tree(own).MkdirAllIn(r, rel, perm)
}

// open opens the regular file rel of the data folder.
func (d *disk) open(rel string) (*os.File, fs.FileInfo, error) { return d.tree(false).OpenFile(rel) }

// lstat describes rel without following a link at its end.
func (d *disk) lstat(rel string) (fs.FileInfo, error) { return d.tree(false).Lstat(rel) }

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
	err = fstree.WalkIn(r, "", func(p string, fi fs.FileInfo) error {
		if fi.Mode().IsRegular() {
			out = append(out, fileEntry{Rel: p, Size: fi.Size()})
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Rel < out[j].Rel })
	return out, err
}

// writeFile writes what src yields (at most limit bytes) into dir/name:
// a synced temporary file renamed over name, or, with exclusive, created
// only when name does not exist (fs.ErrExist otherwise). It returns the
// size and SHA-256.
func (d *disk) writeFile(dir *os.Root, name string, src io.Reader, limit int64, perm fs.FileMode, own, exclusive bool) (int64, string, error) {
	t := d.tree(own)
	write := t.WriteIn
	if exclusive {
		write = t.CreateIn
	}
	w, err := write(dir, name, src, limit, perm)
	return w.Size, w.Hash, err
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
	_ = fstree.WalkIn(r, "", func(p string, fi fs.FileInfo) error {
		switch {
		case fi.IsDir():
			errs = append(errs, r.Chmod(p, dirMode))
		case fi.Mode().IsRegular():
			errs = append(errs, r.Chmod(p, fileMode))
		}
		return nil
	})
	errs = append(errs, r.Chmod(".", dirMode))
	return errors.Join(errs...)
}
