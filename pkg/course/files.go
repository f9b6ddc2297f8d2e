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

// disk is the data folder, as two views of one tree: what the server
// creates through srv stays the server's (snapshots); through owned it goes
// to the sandbox user when the server runs as root, so a student's
// container can change their own copies.
type disk struct {
	srv, owned *fstree.Tree
}

func newDisk(root *os.Root, uid int) *disk {
	chown := os.Geteuid() == 0
	return &disk{srv: fstree.New(root, false, uid, uid), owned: fstree.New(root, chown, uid, uid)}
}

// tree is the view for one write: with own, what it creates goes to the
// sandbox user.
func (d *disk) tree(own bool) *fstree.Tree {
	if own {
		return d.owned
	}
	return d.srv
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
	r, err := d.srv.Dir(rel)
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
	fi, err := d.srv.Lstat(from)
	if err != nil {
		return res, err
	}
	var entries []fileEntry
	srcDir := from
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return res, fstree.ErrSymlink
	case fi.Mode().IsRegular():
		srcDir = path.Dir(from)
		entries = []fileEntry{{Rel: path.Base(from), Size: fi.Size()}}
	case fi.IsDir():
		if entries, err = d.files(from); err != nil {
			return res, err
		}
	default:
		return res, fstree.ErrNotRegular
	}
	var total int64
	for _, e := range entries {
		total += e.Size
	}
	if total > limit {
		return res, fstree.ErrTooLarge
	}
	for _, e := range entries {
		dst := path.Join(to, e.Rel)
		dir, name := path.Split(dst)
		r, err := d.tree(true).MkdirAll(strings.TrimSuffix(dir, "/"), 0o755)
		if err != nil {
			return res, err
		}
		if _, err := r.Lstat(name); err == nil && !overwrite {
			r.Close()
			res.Skipped = append(res.Skipped, e.Rel)
			continue
		}
		src, _, err := d.srv.OpenFile(path.Join(srcDir, e.Rel))
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
	r, err := d.srv.Dir(rel)
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
	r, err := d.srv.Dir(rel)
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
