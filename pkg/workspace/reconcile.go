package workspace

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"github.com/pythonide/pyide/pkg/fstree"
	"github.com/pythonide/pyide/pkg/store"
)

// sameTime compares a disk time with one that went through PostgreSQL,
// which keeps microseconds.
func sameTime(a, b time.Time) bool {
	return a.Truncate(time.Microsecond).Equal(b.Truncate(time.Microsecond))
}

// syncFiles brings the metadata of the given files (on disk now) in line:
// files whose size or time differ from what is known are hashed again.
// known is what the database has for the same scope; rows for files not on
// disk are deleted.
func (w *Workspace) syncFiles(ctx context.Context, onDisk map[string]fs.FileInfo, known []store.FileMeta) error {
	byPath := make(map[string]store.FileMeta, len(known))
	var gone []string
	for _, m := range known {
		byPath[m.Path] = m
		if _, ok := onDisk[m.Path]; !ok {
			gone = append(gone, m.Path)
		}
	}
	for rel, fi := range onDisk {
		if m, ok := byPath[rel]; ok && m.Size == fi.Size() && sameTime(m.Modified, fi.ModTime()) {
			continue
		}
		p, err := ParsePath(rel)
		if err != nil {
			continue
		}
		f, got, err := w.tree.OpenFile(rel)
		if err != nil {
			continue // changed meanwhile; the next pass sees it
		}
		h, err := fstree.HashReader(f)
		f.Close()
		if err != nil {
			continue
		}
		if err := w.opts.DB.UpsertFile(ctx, store.FileMeta{Path: rel, Parent: p.Parent().String(), Owner: p.Owner(),
			Size: got.Size(), Hash: h, Modified: got.ModTime()}); err != nil {
			return err
		}
	}
	return w.opts.DB.DeleteFiles(ctx, gone)
}

// syncFolder reconciles the files directly in one folder, given its listing.
func (w *Workspace) syncFolder(ctx context.Context, p Path, infos []fs.FileInfo) error {
	onDisk := map[string]fs.FileInfo{}
	for _, fi := range infos {
		if fi.Mode().IsRegular() && CheckName(fi.Name()) == nil {
			onDisk[p.Child(fi.Name()).String()] = fi
		}
	}
	known, err := w.opts.DB.FilesIn(ctx, p.String())
	if err != nil {
		return err
	}
	return w.syncFiles(ctx, onDisk, known)
}

// syncTree reconciles every file at or under p.
func (w *Workspace) syncTree(ctx context.Context, p Path) error {
	onDisk := map[string]fs.FileInfo{}
	rel := p.String()
	fi, err := w.tree.Lstat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	case fi.Mode().IsRegular():
		onDisk[rel] = fi
	case fi.IsDir():
		err := w.tree.Walk(rel, func(r string, fi fs.FileInfo) error {
			if _, err := ParsePath(r); err != nil {
				return fs.SkipDir // unreachable through the API
			}
			if fi.Mode().IsRegular() {
				onDisk[r] = fi
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	known, err := w.opts.DB.FilesUnder(ctx, rel)
	if err != nil {
		return err
	}
	return w.syncFiles(ctx, onDisk, known)
}

// Reconcile makes the database agree with the disk (sandboxes change files
// behind the API), removes temporary files of crashed writes and empties
// trash past its retention. The server calls it on a timer.
func (w *Workspace) Reconcile(ctx context.Context) error {
	var errs []error
	for _, r := range Roots {
		if err := w.syncTree(ctx, MustPath(r)); err != nil {
			errs = append(errs, err)
		}
		w.tree.SweepTemps(r, w.now().Add(-tempMaxAge))
	}
	if err := w.purgeTrash(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (w *Workspace) purgeTrash(ctx context.Context) error {
	expired, err := w.opts.DB.ExpiredTrash(ctx, w.now().Add(-w.opts.TrashRetention))
	if err != nil {
		return err
	}
	for _, e := range expired {
		if err := w.tree.RemoveAll(trashDir + "/" + e.Username + "/" + e.TrashName); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := w.opts.DB.DeleteTrash(ctx, e.ID); err != nil {
			return err
		}
	}
	return nil
}
