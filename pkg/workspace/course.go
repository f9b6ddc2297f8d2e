package workspace

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/fstree"
)

// What pkg/course asks of the tree. The course keeps its sealed snapshots
// itself; every file it reads or writes in the tree goes through here, so
// the folders the server keeps stay the server's, and quota, metadata and
// audit apply.

// EnsureItemFolders makes the folders of a new assignment or test: its
// material folder <root>/<slug> and Submissions/<slug>. They are kept by
// the server (see Path.Managed).
func (w *Workspace) EnsureItemFolders(root, slug string) error {
	for _, rel := range []string{root + "/" + slug, RootSubmissions + "/" + slug} {
		p, err := ParsePath(rel)
		if err != nil || p.Depth() != 2 || (root != RootAssignments && root != RootTests) {
			return fail(ErrInvalid, "%s is not an item folder", rel)
		}
		if err := w.mkdirAll(rel); err != nil {
			return fsError(err, p)
		}
	}
	return nil
}

// EnsureSubmissionFolder makes Submissions/<item>/<user>, where a student
// works during a test.
func (w *Workspace) EnsureSubmissionFolder(item, user string) error {
	p, err := ParsePath(RootSubmissions + "/" + item + "/" + user)
	if err != nil || p.Depth() != 3 {
		return fail(ErrInvalid, "%s/%s is not a submission folder", item, user)
	}
	return fsError(w.mkdirAll(p.String()), p)
}

// FileEntry is a regular file found under a folder: its path relative to
// that folder, and its size.
type FileEntry struct {
	Rel  string
	Size int64
}

// FilesUnder lists the regular files under the folder at the tree path
// rel, sorted; links, devices and temporary files are left out. The caller
// has checked the policy.
func (w *Workspace) FilesUnder(rel string) ([]FileEntry, error) {
	d, err := w.tree.Dir(rel)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	var out []FileEntry
	err = fstree.WalkIn(d, "", func(p string, fi fs.FileInfo) error {
		if fi.Mode().IsRegular() {
			out = append(out, FileEntry{Rel: p, Size: fi.Size()})
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Rel < out[j].Rel })
	return out, err
}

// OpenRegular opens the regular file at the tree path rel for reading,
// never through a link. The caller has checked the policy.
func (w *Workspace) OpenRegular(rel string) (*os.File, fs.FileInfo, error) {
	return w.tree.OpenFile(rel)
}

// Lstat describes the tree path rel without following a link.
func (w *Workspace) Lstat(rel string) (fs.FileInfo, error) { return w.tree.Lstat(rel) }

// Folders lists the real folders directly in the tree path rel whose names
// the API can address.
func (w *Workspace) Folders(rel string) []string { return w.folders(rel) }

// CopyResult says what a copy did, by path relative to its destination.
type CopyResult struct {
	Copied  []string `json:"copied"`
	Skipped []string `json:"skipped"`
}

// CopyInto copies the file at from, or the regular files under the folder
// from, into the folder to (made as needed, even when it is a folder the
// server keeps), for u: u must read from and write to. With overwrite,
// files of the same name are replaced (their old version kept as a
// revision); without, they are skipped. limit bounds the whole copy.
func (w *Workspace) CopyInto(ctx context.Context, u auth.User, rawFrom, rawTo string, overwrite bool, limit int64) (CopyResult, error) {
	res := CopyResult{Copied: []string{}, Skipped: []string{}}
	from, err := w.resolve(u, rawFrom, Read)
	if err != nil {
		return res, err
	}
	to, err := w.resolve(u, rawTo, Write)
	if err != nil {
		return res, err
	}
	if to.Within(from) || from.Within(to) {
		return res, fail(ErrInvalid, "%s and %s overlap", from, to)
	}
	if to.Depth() < 2 {
		return res, fail(ErrInvalid, "copy into a folder, not the whole top folder")
	}
	fi, err := w.tree.Lstat(from.String())
	if err != nil {
		return res, fsError(err, from)
	}
	var entries []FileEntry
	srcDir := from.String()
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return res, linkError(from)
	case fi.Mode().IsRegular():
		srcDir = from.Parent().String()
		entries = []FileEntry{{Rel: from.Name(), Size: fi.Size()}}
	case fi.IsDir():
		if entries, err = w.FilesUnder(from.String()); err != nil {
			return res, fsError(err, from)
		}
	default:
		return res, fsError(fstree.ErrNotRegular, from)
	}
	var total int64
	for _, e := range entries {
		total += e.Size
		if _, err := ParsePath(path.Join(to.String(), e.Rel)); err != nil {
			return res, fail(ErrInvalid, "%s: a name the IDE cannot show (%v)", e.Rel, err)
		}
	}
	if total > limit {
		return res, fail(ErrTooLarge, "%s is larger than %s in all; copy less at once", from, humanBytes(limit))
	}
	if err := w.quotaCheck(u, total); err != nil {
		return res, err
	}
	for _, e := range entries {
		copied, err := w.copyOne(ctx, u, path.Join(srcDir, e.Rel), to, e.Rel, overwrite)
		if err != nil {
			return res, err
		}
		if copied {
			res.Copied = append(res.Copied, e.Rel)
		} else {
			res.Skipped = append(res.Skipped, e.Rel)
		}
	}
	if err := w.syncTree(ctx, to); err != nil {
		w.opts.Logger.Warn("workspace: reconciling a copy", "path", to.String(), "error", err)
	}
	w.auditWrite(ctx, u, "file.copy", to, map[string]any{"from": from.String(), "copied": len(res.Copied), "skipped": len(res.Skipped)})
	return res, nil
}

// copyOne copies the file src to to/rel; false when it was kept as it was.
func (w *Workspace) copyOne(ctx context.Context, u auth.User, src string, to Path, rel string, overwrite bool) (bool, error) {
	dst := MustPath(path.Join(to.String(), rel))
	dir, name := path.Split(dst.String())
	d, err := w.tree.MkdirAll(strings.TrimSuffix(dir, "/"), 0o755)
	if err != nil {
		return false, fsError(err, dst)
	}
	defer d.Close()
	if _, err := d.Lstat(name); err == nil && !overwrite {
		return false, nil
	}
	f, _, err := w.tree.OpenFile(src)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // removed meanwhile
	}
	if err != nil {
		return false, fsError(err, dst)
	}
	defer f.Close()
	unlock := w.lock(dst.String())
	defer unlock()
	if overwrite {
		if old, h, _, err := w.current(dst); err == nil {
			if err := w.keepOverwritten(ctx, dst, old, h); err != nil {
				w.opts.Logger.Warn("workspace: keeping an overwritten version", "path", dst.String(), "error", err)
			}
		}
		_, err = w.tree.WriteIn(d, name, f, w.opts.MaxFileBytes, 0o644)
	} else {
		_, err = w.tree.CreateIn(d, name, f, w.opts.MaxFileBytes, 0o644)
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
	}
	if errors.Is(err, fstree.ErrTooLarge) {
		return false, tooLarge(dst.Name(), w.opts.MaxFileBytes)
	}
	if err != nil {
		return false, fsError(err, dst)
	}
	return true, nil
}

// SourceFile is one file to put in a folder: its name there and how to
// read it.
type SourceFile struct {
	Name string
	Open func() (io.ReadCloser, error)
}

// ReplaceSubmission makes Submissions/<item>/<user> hold exactly files:
// the copy of a submission that the student and staff see in the tree. The
// folder is the server's to write (it is kept by the server), so no user's
// policy applies; metadata and audit do.
func (w *Workspace) ReplaceSubmission(ctx context.Context, item, user string, files []SourceFile) error {
	dir, err := ParsePath(RootSubmissions + "/" + item + "/" + user)
	if err != nil || dir.Depth() != 3 {
		return fail(ErrInvalid, "%s/%s is not a submission folder", item, user)
	}
	for _, f := range files {
		if _, err := ParsePath(path.Join(dir.String(), f.Name)); err != nil {
			return fail(ErrInvalid, "%s: %v", f.Name, err)
		}
	}
	unlock := w.lock(dir.String())
	defer unlock()
	d, err := w.tree.MkdirAll(dir.String(), 0o755)
	if err != nil {
		return fsError(err, dir)
	}
	err = emptyFolder(d)
	d.Close()
	if err != nil {
		return fsError(err, dir)
	}
	for _, f := range files {
		if err := w.putFile(dir, f); err != nil {
			return err
		}
	}
	if err := w.syncTree(ctx, dir); err != nil {
		w.opts.Logger.Warn("workspace: reconciling a submission copy", "path", dir.String(), "error", err)
	}
	w.audit(ctx, auth.User{Username: "(server)"}, "file.submission_copy", dir, map[string]any{"files": len(files)})
	return nil
}

func (w *Workspace) putFile(dir Path, f SourceFile) error {
	dst := MustPath(path.Join(dir.String(), f.Name))
	parent, name := path.Split(dst.String())
	d, err := w.tree.MkdirAll(strings.TrimSuffix(parent, "/"), 0o755)
	if err != nil {
		return fsError(err, dst)
	}
	defer d.Close()
	r, err := f.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = w.tree.WriteIn(d, name, r, w.opts.MaxFileBytes, 0o644)
	return fsError(err, dst)
}

// emptyFolder removes everything in the open folder d, never following a
// link.
func emptyFolder(d *os.Root) error {
	f, err := d.Open(".")
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
		errs = append(errs, d.RemoveAll(n))
	}
	return errors.Join(errs...)
}
