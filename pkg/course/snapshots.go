package course

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/pythonide/pyide/pkg/fstree"
	"github.com/pythonide/pyide/pkg/store"
)

// snapshots is the folder of sealed submissions, DATA/.snapshots: outside
// the files tree, the one place the course writes itself. Only the server
// reads it (0700); the file API cannot name it and no sandbox mounts it.
// Snapshot paths in the database keep their historical form,
// ".snapshots/<item>/<user>/<n>-<time>".
type snapshots struct {
	tree *fstree.Tree
}

func openSnapshots(dataPath string) (*snapshots, error) {
	dir := filepath.Join(dataPath, snapshotsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	t, err := fstree.Open(dir, false, 0)
	if err != nil {
		return nil, err
	}
	return &snapshots{tree: t}, nil
}

func (s *snapshots) close() error { return s.tree.Close() }

// rel is a snapshot path of the database, relative to the folder.
func rel(snapshot string) string {
	return strings.TrimPrefix(strings.TrimPrefix(snapshot, snapshotsDir), "/")
}

// write copies srcs (opened through open) into a new snapshot dir, then
// seals it: folders 0555, files 0444, owned by the server. It is built
// under a temporary name and renamed into place, so a snapshot is never
// seen half written.
func (s *snapshots) write(dir string, srcs []source, open func(rel string) (*os.File, fs.FileInfo, error), maxFile, maxAll int64) ([]store.SubmissionFile, error) {
	parent, err := s.tree.MkdirAll(path.Dir(rel(dir)), 0o755)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	tmp := fstree.TempName()
	if err := parent.Mkdir(tmp, 0o755); err != nil {
		return nil, err
	}
	files, err := s.fill(parent, tmp, srcs, open, maxFile, maxAll)
	tmpRel := path.Join(path.Dir(rel(dir)), tmp)
	if err == nil {
		err = s.setModes(tmpRel, 0o555, 0o444)
	}
	if err == nil {
		err = parent.Rename(tmp, path.Base(dir))
	}
	if err != nil {
		_ = s.setModes(tmpRel, 0o755, 0o644)
		_ = parent.RemoveAll(tmp)
		return nil, err
	}
	return files, nil
}

func (s *snapshots) fill(parent *os.Root, tmp string, srcs []source, open func(rel string) (*os.File, fs.FileInfo, error), maxFile, maxAll int64) ([]store.SubmissionFile, error) {
	snap, err := parent.OpenRoot(tmp)
	if err != nil {
		return nil, err
	}
	defer snap.Close()
	files := make([]store.SubmissionFile, 0, len(srcs))
	var total int64
	for _, src := range srcs {
		f, _, err := open(src.rel)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src.name, err)
		}
		dir, name := path.Split(src.name)
		d, err := s.tree.MkdirAllIn(snap, strings.TrimSuffix(dir, "/"), 0o755)
		if err != nil {
			f.Close()
			return nil, err
		}
		w, err := s.tree.CreateIn(d, name, f, min(maxFile, maxAll-total), 0o444)
		d.Close()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src.name, err)
		}
		total += w.Size
		files = append(files, store.SubmissionFile{Name: src.name, Size: w.Size, SHA256: w.Hash})
	}
	return files, nil
}

// open opens one file of a snapshot.
func (s *snapshots) open(snapshot, name string) (*os.File, fs.FileInfo, error) {
	return s.tree.OpenFile(path.Join(rel(snapshot), name))
}

// drop removes a snapshot whose submission was not recorded.
func (s *snapshots) drop(dir string) error {
	_ = s.setModes(rel(dir), 0o755, 0o644)
	parent, err := s.tree.Dir(path.Dir(rel(dir)))
	if err != nil {
		return err
	}
	defer parent.Close()
	return parent.RemoveAll(path.Base(dir))
}

// setModes walks the folder rel and gives folders dirMode and regular files
// fileMode; snapshots are sealed with it.
func (s *snapshots) setModes(rel string, dirMode, fileMode fs.FileMode) error {
	r, err := s.tree.Dir(rel)
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
