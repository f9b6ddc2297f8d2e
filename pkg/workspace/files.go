package workspace

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/fstree"
	"github.com/pythonide/pyide/pkg/store"
)

// The file operations of users: each parses the path once, asks the
// policy, and goes through the tree (never a link), with quota, revisions,
// metadata and audit. None knows of HTTP; http.go is their thin front.

// resolve parses a path and checks the user may at least reach need on it.
// A path the user may not even see is not found, so its existence does not
// leak.
func (w *Workspace) resolve(u auth.User, raw string, need Level) (Path, error) {
	p, err := ParsePath(raw)
	if err != nil {
		return Path{}, err
	}
	switch lvl := w.access(u, p); {
	case lvl == None:
		return Path{}, notFound(raw)
	case lvl < need:
		return Path{}, fail(ErrForbidden, "%s is read-only for you", raw)
	}
	return p, nil
}

// checkPlace refuses files where only folders belong (Local/<file>,
// Assignments/<file>, Submissions/<x>/<file>…) and, for anyone, the
// folders there: the server makes those.
func checkPlace(p Path, isDir bool) error {
	if !isDir && p.Parent().FoldersOnly() {
		return fail(ErrInvalid, "%s may only contain folders", p.Parent())
	}
	if p.Managed() {
		return managedError(p)
	}
	return nil
}

// Entry is one item of a listing.
type Entry struct {
	Name     string    `json:"name"`
	Path     string    `json:"path"`
	Type     string    `json:"type"` // "file" or "dir"
	Size     int64     `json:"size"`
	Modified time.Time `json:"modified"`
	Writable bool      `json:"writable"`
	// Link marks a symbolic link (made by a program): listed so the user
	// sees it and can delete it, never followed.
	Link bool `json:"link,omitempty"`
}

// Quota is a student's storage use.
type Quota struct {
	Used  int64 `json:"used"`
	Limit int64 `json:"limit"`
}

// Listing is a folder as u sees it.
type Listing struct {
	Path    string  `json:"path"`
	Entries []Entry `json:"entries"`
	Quota   *Quota  `json:"quota,omitempty"`
}

// List lists the folder at raw as u may see it.
func (w *Workspace) List(ctx context.Context, u auth.User, raw string) (Listing, error) {
	p, err := w.resolve(u, raw, Read)
	if err != nil {
		return Listing{}, err
	}
	infos, err := w.tree.ReadDir(p.String())
	if err != nil {
		return Listing{}, fsError(err, p)
	}
	out := Listing{Path: p.String(), Entries: []Entry{}}
	for _, fi := range infos {
		if CheckName(fi.Name()) != nil {
			continue // a name the API cannot address (made by a program)
		}
		if p.IsTop() && !isRoot(fi.Name()) {
			continue
		}
		cp := p.Child(fi.Name())
		if _, err := ParsePath(cp.String()); err != nil {
			continue
		}
		lvl := w.access(u, cp)
		if lvl == None {
			continue
		}
		e := Entry{Name: fi.Name(), Path: cp.String(), Modified: fi.ModTime().UTC(), Writable: lvl == Write}
		switch {
		case fi.IsDir():
			e.Type = "dir"
		case fi.Mode().IsRegular():
			e.Type, e.Size = "file", fi.Size()
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Type, e.Link, e.Writable = "file", true, false
		default:
			continue // devices, sockets, FIFOs
		}
		out.Entries = append(out.Entries, e)
	}
	if p.IsTop() {
		order := map[string]int{}
		for i, r := range Roots {
			order[r] = i
		}
		sort.Slice(out.Entries, func(i, j int) bool { return order[out.Entries[i].Name] < order[out.Entries[j].Name] })
	} else {
		sort.Slice(out.Entries, func(i, j int) bool { return out.Entries[i].Name < out.Entries[j].Name })
		if !p.FoldersOnly() {
			if err := w.syncFolder(ctx, p, infos); err != nil {
				w.opts.Logger.Warn("workspace: reconciling a folder", "path", p.String(), "error", err)
			}
		}
	}
	if u.Role == auth.RoleStudent {
		used, err := w.DiskUsage(u.Username)
		if err != nil {
			return Listing{}, err
		}
		out.Quota = &Quota{Used: used, Limit: w.opts.QuotaBytes}
	}
	w.auditStaffRead(ctx, u, "file.list", p)
	return out, nil
}

// File is an open regular file of the tree; the caller closes it.
type File struct {
	*os.File
	Name    string
	Path    string
	Info    fs.FileInfo
	Version string // the content's hash (the ETag)
}

// Open opens the regular file at raw for u to read, with its version.
func (w *Workspace) Open(ctx context.Context, u auth.User, raw string) (*File, error) {
	p, err := w.resolve(u, raw, Read)
	if err != nil {
		return nil, err
	}
	f, fi, err := w.tree.OpenFile(p.String())
	if err != nil {
		return nil, fsError(err, p)
	}
	version, err := w.versionOf(ctx, p, f, fi)
	if err != nil {
		f.Close()
		return nil, err
	}
	w.auditStaffRead(ctx, u, "file.read", p)
	return &File{File: f, Name: p.Name(), Path: p.String(), Info: fi, Version: version}, nil
}

// versionOf is the file's content hash, from the metadata when size and
// time still match, else computed (and recorded).
func (w *Workspace) versionOf(ctx context.Context, p Path, f io.ReadSeeker, fi fs.FileInfo) (string, error) {
	if m, err := w.opts.DB.FileByPath(ctx, p.String()); err == nil && m.Size == fi.Size() && sameTime(m.Modified, fi.ModTime()) {
		return m.Hash, nil
	}
	h, err := fstree.HashReader(f)
	if err != nil {
		return "", err
	}
	if err := w.opts.DB.UpsertFile(ctx, store.FileMeta{Path: p.String(), Parent: p.Parent().String(), Owner: p.Owner(),
		Size: fi.Size(), Hash: h, Modified: fi.ModTime()}); err != nil {
		w.opts.Logger.Warn("workspace: recording file metadata", "path", p.String(), "error", err)
	}
	return h, nil
}

// Saved is the result of a write.
type Saved struct {
	Path    string `json:"path"`
	Version string `json:"version"`
	Size    int64  `json:"size"`
}

// Save writes content at raw for u. ifMatch, when not empty or "*", must be
// the current version, else the error is a *StaleError.
func (w *Workspace) Save(ctx context.Context, u auth.User, raw string, content []byte, ifMatch string) (Saved, error) {
	p, err := w.resolve(u, raw, Write)
	if err != nil {
		return Saved{}, err
	}
	if int64(len(content)) > w.opts.MaxFileBytes {
		return Saved{}, tooLarge(p.Name(), w.opts.MaxFileBytes)
	}
	return w.save(ctx, u, p, content, ifMatch, "file.write")
}

// save writes content at p for u: quota, the overwritten version kept,
// atomic write, metadata, revision, audit.
func (w *Workspace) save(ctx context.Context, u auth.User, p Path, content []byte, ifMatch, action string) (Saved, error) {
	if err := checkPlace(p, false); err != nil {
		return Saved{}, err
	}
	unlock := w.lock(p.String())
	defer unlock()
	old, current, oldSize, err := w.current(p)
	if err != nil {
		return Saved{}, fsError(err, p)
	}
	if ifMatch != "" && ifMatch != "*" && parseETag(ifMatch) != current {
		return Saved{}, &StaleError{Current: current}
	}
	if err := w.quotaCheck(u, int64(len(content))-oldSize); err != nil {
		return Saved{}, err
	}
	if err := w.keepOverwritten(ctx, p, old, current); err != nil {
		return Saved{}, err
	}
	wr, err := w.tree.WriteAtomic(p.String(), bytes.NewReader(content), w.opts.MaxFileBytes)
	if errors.Is(err, fstree.ErrTooLarge) {
		return Saved{}, tooLarge(p.Name(), w.opts.MaxFileBytes)
	}
	if err != nil {
		return Saved{}, fsError(err, p)
	}
	w.record(ctx, p, wr, u.Username)
	if isText(content) {
		if err := w.addRevision(ctx, p, content, wr.Hash, u.Username); err != nil {
			w.opts.Logger.Error("workspace: recording a revision", "path", p.String(), "error", err)
		}
	}
	w.auditWrite(ctx, u, action, p, map[string]any{"size": wr.Size, "hash": wr.Hash})
	return Saved{Path: p.String(), Version: wr.Hash, Size: wr.Size}, nil
}

// parseETag accepts a version with or without quotes (and a weak W/ prefix).
func parseETag(s string) string {
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "W/"))
	return strings.Trim(s, `"`)
}

// Create makes an empty file, or a folder with dir, at raw for u.
func (w *Workspace) Create(ctx context.Context, u auth.User, raw string, dir bool) error {
	p, err := w.resolve(u, raw, Write)
	if err != nil {
		return err
	}
	if err := checkPlace(p, dir); err != nil {
		return err
	}
	if dir {
		err = w.tree.Mkdir(p.String())
	} else {
		err = w.tree.CreateFile(p.String())
	}
	if err != nil {
		return fsError(err, p)
	}
	typ := "dir"
	if !dir {
		typ = "file"
		w.record(ctx, p, fstree.Written{Hash: fstree.HashOf(nil)}, u.Username)
	}
	w.auditWrite(ctx, u, "file.create", p, map[string]any{"type": typ})
	return nil
}

// twoPaths checks {from, to} against the policy: from needs fromLevel, to
// needs write; neither may be a folder the server keeps, nor a link, and to
// may not lie in from.
func (w *Workspace) twoPaths(u auth.User, rawFrom, rawTo string, fromLevel Level) (Path, Path, fs.FileInfo, error) {
	from, err := w.resolve(u, rawFrom, fromLevel)
	if err != nil {
		return Path{}, Path{}, nil, err
	}
	to, err := w.resolve(u, rawTo, Write)
	if err != nil {
		return Path{}, Path{}, nil, err
	}
	if to.Managed() {
		return Path{}, Path{}, nil, managedError(to)
	}
	if fromLevel == Write && from.Managed() {
		return Path{}, Path{}, nil, managedError(from)
	}
	if to.Within(from) {
		return Path{}, Path{}, nil, fail(ErrInvalid, "cannot put a folder inside itself")
	}
	fi, err := w.tree.Lstat(from.String())
	if err != nil {
		return Path{}, Path{}, nil, fsError(err, from)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return Path{}, Path{}, nil, linkError(from)
	}
	if err := checkPlace(to, fi.IsDir()); err != nil {
		return Path{}, Path{}, nil, err
	}
	return from, to, fi, nil
}

func linkError(p Path) error {
	return fail(ErrForbidden, "%s is a symbolic link (made by a program); the IDE does not move, copy or restore links — delete it instead", p)
}

// Move moves or renames from to to for u.
func (w *Workspace) Move(ctx context.Context, u auth.User, rawFrom, rawTo string) (string, error) {
	from, to, _, err := w.twoPaths(u, rawFrom, rawTo, Write)
	if err != nil {
		return "", err
	}
	if from.Owner() != to.Owner() {
		size, err := w.sizeOf(from.String())
		if err != nil {
			return "", fsError(err, from)
		}
		if to.Owner() == u.Username {
			if err := w.quotaCheck(u, size); err != nil {
				return "", err
			}
		}
	}
	if err := w.rename(from, to); err != nil {
		return "", err
	}
	if err := w.opts.DB.MoveFiles(ctx, from.String(), to.String(), func(s string) string { return MustPath(s).Owner() }); err != nil {
		w.opts.Logger.Error("workspace: moving file metadata", "from", from.String(), "to", to.String(), "error", err)
	}
	if from.Seg(0) != RootLocal || from.Seg(1) != u.Username {
		w.audit(ctx, u, "file.move", from, map[string]any{"to": to.String()})
	} else {
		w.auditWrite(ctx, u, "file.move", to, map[string]any{"from": from.String()})
	}
	return to.String(), nil
}

// rename moves a file or folder in the tree, never a link. A program in a
// sandbox can swap the source for a link between any check and the move,
// so the move goes through a folder no sandbox reaches: the source is
// renamed there first, looked at there (where nothing else can change it),
// and only then renamed to its destination; a link goes back where it was.
// A note of where each staged item came from lets a restart put back what
// a crash left between the two renames.
func (w *Workspace) rename(from, to Path) error {
	if err := w.mkdirAll(movingDir); err != nil {
		return err
	}
	// Not a temporary file's name: listings and the sweep of crashed
	// writes leave those out.
	staged := movingDir + "/" + strings.TrimPrefix(fstree.TempName(), fstree.TempPrefix)
	note := staged + movingNote
	if _, err := w.tree.WriteAtomic(note, strings.NewReader(from.String()), MaxPathBytes); err != nil {
		return err
	}
	defer func() { _ = w.tree.RemoveAll(note) }()
	if err := w.tree.Rename(from.String(), staged); err != nil {
		return fsError(err, from)
	}
	putBack := func() {
		if err := w.tree.Rename(staged, from.String()); err != nil {
			w.opts.Logger.Error("workspace: could not put back a staged move", "path", from.String(), "staged", staged, "error", err)
		}
	}
	fi, err := w.tree.Lstat(staged)
	if err != nil {
		putBack()
		return fsError(err, from)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		putBack()
		return linkError(from)
	}
	if err := w.tree.Rename(staged, to.String()); err != nil {
		putBack()
		return fsError(err, to)
	}
	return nil
}

// recoverMoves puts back what a crash left between the two renames of a
// move (see rename).
func (w *Workspace) recoverMoves() {
	infos, err := w.tree.ReadDir(movingDir)
	if err != nil {
		return
	}
	for _, fi := range infos {
		note := movingDir + "/" + fi.Name()
		staged, ok := strings.CutSuffix(note, movingNote)
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(w.absData, note))
		p, perr := ParsePath(string(b))
		if err != nil || perr != nil {
			continue
		}
		if _, err := w.tree.Lstat(staged); err == nil {
			if err := w.tree.Rename(staged, p.String()); err != nil {
				w.opts.Logger.Error("workspace: a move interrupted by a crash could not be put back; the item is kept", "path", p.String(), "kept_at", staged, "error", err)
				continue
			}
			w.opts.Logger.Warn("workspace: put back a move interrupted by a crash", "path", p.String())
		}
		_ = w.tree.RemoveAll(note)
	}
}

// readable is a walk filter: it skips what u may not read, links and
// anything that is not a file or folder.
func (w *Workspace) readable(u auth.User) fstree.WalkFunc {
	return func(rel string, fi fs.FileInfo) error {
		p, err := ParsePath(rel)
		if err != nil || w.access(u, p) == None || (!fi.IsDir() && !fi.Mode().IsRegular()) {
			return fs.SkipDir
		}
		return nil
	}
}

// Copy copies from to to for u.
func (w *Workspace) Copy(ctx context.Context, u auth.User, rawFrom, rawTo string) (string, error) {
	from, to, fi, err := w.twoPaths(u, rawFrom, rawTo, Read)
	if err != nil {
		return "", err
	}
	if fi.IsDir() && from.Depth() <= 1 {
		return "", fail(ErrInvalid, "copy a folder inside it, not the whole top folder")
	}
	size, err := w.sizeOf(from.String())
	if err != nil {
		return "", fsError(err, from)
	}
	if err := w.quotaCheck(u, size); err != nil {
		return "", err
	}
	if _, err := w.tree.CopyTree(from.String(), to.String(), w.opts.MaxFileBytes, w.readable(u)); err != nil {
		// A half-made copy is removed rather than left looking complete.
		if !errors.Is(err, fs.ErrExist) {
			_ = w.tree.RemoveAll(to.String())
		}
		if errors.Is(err, fstree.ErrTooLarge) {
			return "", tooLarge(from.Name(), w.opts.MaxFileBytes)
		}
		return "", fsError(err, to)
	}
	if err := w.syncTree(ctx, to); err != nil {
		w.opts.Logger.Warn("workspace: reconciling a copy", "path", to.String(), "error", err)
	}
	w.auditStaffRead(ctx, u, "file.read", from)
	w.auditWrite(ctx, u, "file.copy", to, map[string]any{"from": from.String()})
	return to.String(), nil
}

// Trash moves the file or folder at raw to u's trash and returns the trash
// entry's id.
func (w *Workspace) Trash(ctx context.Context, u auth.User, raw string) (int64, error) {
	p, err := w.resolve(u, raw, Write)
	if err != nil {
		return 0, err
	}
	if p.Managed() {
		return 0, managedError(p)
	}
	if _, err := w.tree.Lstat(p.String()); err != nil {
		return 0, fsError(err, p)
	}
	userTrash := trashDir + "/" + u.Username
	if err := w.mkdirAll(userTrash); err != nil {
		return 0, err
	}
	name := fmt.Sprintf("%d-%s", w.now().UnixNano(), strings.TrimPrefix(fstree.TempName(), fstree.TempPrefix))
	if err := w.tree.Rename(p.String(), userTrash+"/"+name); err != nil {
		return 0, fsError(err, p)
	}
	// What it is and how big is read from the trash, which only the
	// server writes: a program may swap what is at p until the rename.
	fi, err := w.tree.Lstat(userTrash + "/" + name)
	var size int64
	if err == nil {
		size, err = w.sizeOf(userTrash + "/" + name)
	}
	var e store.TrashEntry
	if err == nil {
		e, err = w.opts.DB.AddTrash(ctx, store.TrashEntry{Username: u.Username, OriginalPath: p.String(), TrashName: name,
			IsDir: fi.IsDir(), Size: size, DeletedAt: w.now()})
	}
	if err != nil {
		// Put it back: a deletion nobody can restore must not happen.
		if rerr := w.tree.Rename(userTrash+"/"+name, p.String()); rerr != nil {
			w.opts.Logger.Error("workspace: could not undo a failed delete", "path", p.String(), "trash", name, "error", rerr)
		}
		return 0, err
	}
	w.auditWrite(ctx, u, "file.delete", p, map[string]any{"trash_id": e.ID, "size": size})
	return e.ID, nil
}

// TrashItem is one entry of a user's trash.
type TrashItem struct {
	ID      int64     `json:"id"`
	Path    string    `json:"path"`
	Type    string    `json:"type"`
	Size    int64     `json:"size"`
	Deleted time.Time `json:"deleted"`
	Expires time.Time `json:"expires"`
}

// TrashOf lists u's trash.
func (w *Workspace) TrashOf(ctx context.Context, u auth.User) ([]TrashItem, error) {
	list, err := w.opts.DB.TrashOf(ctx, u.Username)
	if err != nil {
		return nil, err
	}
	out := make([]TrashItem, 0, len(list))
	for _, e := range list {
		typ := "file"
		if e.IsDir {
			typ = "dir"
		}
		out = append(out, TrashItem{ID: e.ID, Path: e.OriginalPath, Type: typ, Size: e.Size,
			Deleted: e.DeletedAt.UTC(), Expires: e.DeletedAt.Add(w.opts.TrashRetention).UTC()})
	}
	return out, nil
}

// RestoreTrash puts u's trash entry id back where it was.
func (w *Workspace) RestoreTrash(ctx context.Context, u auth.User, id int64) (string, error) {
	e, err := w.opts.DB.TrashByID(ctx, u.Username, id)
	if errors.Is(err, store.ErrNotFound) {
		return "", fail(ErrNotFound, "no such item in your trash")
	}
	if err != nil {
		return "", err
	}
	p, err := w.resolve(u, e.OriginalPath, Write)
	if err != nil {
		return "", err
	}
	if p.Managed() {
		// Trash from before folders were kept by the server.
		return "", managedError(p)
	}
	from := trashDir + "/" + u.Username + "/" + e.TrashName
	if fi, err := w.tree.Lstat(from); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return "", linkError(p)
	}
	if err := w.tree.Rename(from, p.String()); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fail(ErrConflict, "the folder %s no longer exists; recreate it first", p.Parent())
		}
		return "", fsError(err, p)
	}
	if err := w.opts.DB.DeleteTrash(ctx, e.ID); err != nil {
		return "", err
	}
	if err := w.syncTree(ctx, p); err != nil {
		w.opts.Logger.Warn("workspace: reconciling a restored item", "path", p.String(), "error", err)
	}
	w.auditWrite(ctx, u, "file.restore_trash", p, map[string]any{"trash_id": e.ID})
	return p.String(), nil
}

// PurgeTrash deletes u's trash entry id for good, or with id 0 everything
// in u's trash: the way to get back under the quota, which the trash counts.
func (w *Workspace) PurgeTrash(ctx context.Context, u auth.User, id int64) (int, error) {
	list, err := w.opts.DB.TrashOf(ctx, u.Username)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range list {
		if id != 0 && e.ID != id {
			continue
		}
		if err := w.tree.RemoveAll(trashDir + "/" + u.Username + "/" + e.TrashName); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, err
		}
		if err := w.opts.DB.DeleteTrash(ctx, e.ID); err != nil {
			return n, err
		}
		n++
	}
	if id != 0 && n == 0 {
		return 0, fail(ErrNotFound, "no such item in your trash")
	}
	w.audit(ctx, u, "file.purge_trash", Path{}, map[string]any{"entries": n})
	return n, nil
}

// maxUploadFiles bounds one upload.
const maxUploadFiles = 100

// Upload is files being uploaded into one folder: each is written to a
// temporary file as it arrives, and all are put in place by Commit, or
// none (Abort).
type Upload struct {
	w     *Workspace
	u     auth.User
	dir   Path
	files []staged
	seen  map[string]bool
}

type staged struct {
	p   Path
	tmp string
	wr  fstree.Written
}

// BeginUpload starts an upload into the folder at raw for u.
func (w *Workspace) BeginUpload(u auth.User, raw string) (*Upload, error) {
	dir, err := w.resolve(u, raw, Write)
	if err != nil {
		return nil, err
	}
	if dir.FoldersOnly() {
		return nil, fail(ErrInvalid, "%s may only contain folders", dir)
	}
	if fi, err := w.tree.Lstat(dir.String()); err != nil || !fi.IsDir() {
		if err == nil {
			err = syscall.ENOTDIR
		}
		return nil, fsError(err, dir)
	}
	return &Upload{w: w, u: u, dir: dir, seen: map[string]bool{}}, nil
}

// Add writes one file of the upload; on error the whole upload is dropped.
func (up *Upload) Add(name string, r io.Reader) error {
	err := up.add(name, r)
	if err != nil {
		up.Abort()
	}
	return err
}

func (up *Upload) add(name string, r io.Reader) error {
	w := up.w
	if err := CheckName(name); err != nil {
		return fail(ErrInvalid, "file name %q: %v", name, err)
	}
	if len(up.files) >= maxUploadFiles {
		return fail(ErrTooLarge, "at most %d files per upload", maxUploadFiles)
	}
	if up.seen[name] {
		return fail(ErrInvalid, "%s is in the upload twice", name)
	}
	up.seen[name] = true
	p := up.dir.Child(name)
	if _, err := w.resolve(up.u, p.String(), Write); err != nil {
		return err
	}
	tmp, wr, err := w.tree.WriteTemp(up.dir.String(), name, r, w.opts.MaxFileBytes)
	if errors.Is(err, fstree.ErrTooLarge) {
		return tooLarge(name, w.opts.MaxFileBytes)
	}
	if err != nil {
		return fsError(err, p)
	}
	up.files = append(up.files, staged{p: p, tmp: tmp, wr: wr})
	return nil
}

// Abort drops what was written.
func (up *Upload) Abort() {
	for _, s := range up.files {
		up.w.tree.RemoveTemp(up.dir.String(), s.tmp)
	}
	up.files = nil
}

// Commit puts every file in place (quota checked for all of them first).
func (up *Upload) Commit(ctx context.Context) ([]Saved, error) {
	w := up.w
	if len(up.files) == 0 {
		return nil, fail(ErrInvalid, "no files in the upload (field \"files\")")
	}
	var grow int64
	for _, s := range up.files {
		grow += s.wr.Size
		if fi, err := w.tree.Lstat(s.p.String()); err == nil && fi.Mode().IsRegular() {
			grow -= fi.Size()
		}
	}
	if err := w.quotaCheck(up.u, grow); err != nil {
		up.Abort()
		return nil, err
	}
	results := make([]Saved, 0, len(up.files))
	for i, s := range up.files {
		unlock := w.lock(s.p.String())
		if old, h, _, err := w.current(s.p); err == nil {
			if err := w.keepOverwritten(ctx, s.p, old, h); err != nil {
				w.opts.Logger.Warn("workspace: keeping an overwritten version", "path", s.p.String(), "error", err)
			}
		}
		err := w.tree.CommitTemp(up.dir.String(), s.tmp, s.p.Name())
		unlock()
		if err != nil {
			up.files = up.files[i:]
			up.Abort()
			return nil, fsError(err, s.p)
		}
		w.record(ctx, s.p, s.wr, up.u.Username)
		results = append(results, Saved{Path: s.p.String(), Version: s.wr.Hash, Size: s.wr.Size})
		if s.wr.Size <= RevisionContentBytes {
			w.reviseFromDisk(ctx, s.p, s.wr, up.u.Username)
		}
	}
	up.files = nil
	names := make([]string, 0, len(results))
	for _, r := range results {
		names = append(names, r.Path)
	}
	w.auditWrite(ctx, up.u, "file.upload", up.dir, map[string]any{"files": names, "bytes": grow})
	return results, nil
}

// reviseFromDisk records a revision of a just-written small file if it is
// text.
func (w *Workspace) reviseFromDisk(ctx context.Context, p Path, wr fstree.Written, author string) {
	f, _, err := w.tree.OpenFile(p.String())
	if err != nil {
		return
	}
	b, err := io.ReadAll(io.LimitReader(f, RevisionContentBytes+1))
	f.Close()
	if err != nil || fstree.HashOf(b) != wr.Hash || !isText(b) {
		return
	}
	if err := w.addRevision(ctx, p, b, wr.Hash, author); err != nil {
		w.opts.Logger.Error("workspace: recording a revision", "path", p.String(), "error", err)
	}
}

// Stat describes the file or folder at raw for u (for a download).
func (w *Workspace) Stat(ctx context.Context, u auth.User, raw string) (Path, fs.FileInfo, error) {
	p, err := w.resolve(u, raw, Read)
	if err != nil {
		return Path{}, nil, err
	}
	fi, err := w.tree.Lstat(p.String())
	if err != nil {
		return Path{}, nil, fsError(err, p)
	}
	w.auditStaffRead(ctx, u, "file.download", p)
	return p, fi, nil
}

// WriteZip writes the folder p (from Stat) as a zip of what u may read. A
// failure after the first byte leaves a truncated zip; it is logged.
func (w *Workspace) WriteZip(ctx context.Context, u auth.User, p Path, out io.Writer) error {
	zw := zip.NewWriter(out)
	keep := w.readable(u)
	base := p.String()
	err := w.tree.Walk(base, func(rel string, fi fs.FileInfo) error {
		if err := keep(rel, fi); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		inZip := strings.TrimPrefix(strings.TrimPrefix(rel, base), "/")
		if p.IsTop() {
			inZip = rel
		}
		if fi.IsDir() {
			_, err := zw.CreateHeader(&zip.FileHeader{Name: inZip + "/", Modified: fi.ModTime()})
			return err
		}
		f, _, err := w.tree.OpenFile(rel)
		if err != nil {
			return nil // changed meanwhile
		}
		defer f.Close()
		zf, err := zw.CreateHeader(&zip.FileHeader{Name: inZip, Method: zip.Deflate, Modified: fi.ModTime()})
		if err != nil {
			return err
		}
		_, err = io.Copy(zf, f)
		return err
	})
	if err != nil {
		w.opts.Logger.Warn("workspace: zip download stopped", "path", base, "error", err)
		return nil
	}
	return zw.Close()
}

// OpenDownload opens the regular file at p (from Stat) for a download.
func (w *Workspace) OpenDownload(p Path) (*os.File, fs.FileInfo, error) {
	f, fi, err := w.tree.OpenFile(p.String())
	if err != nil {
		return nil, nil, fsError(err, p)
	}
	return f, fi, nil
}

// Revisions lists the kept versions of the text file at raw.
func (w *Workspace) Revisions(ctx context.Context, u auth.User, raw string) ([]store.Revision, error) {
	p, err := w.resolve(u, raw, Read)
	if err != nil {
		return nil, err
	}
	revs, err := w.opts.DB.Revisions(ctx, p.String())
	if revs == nil {
		revs = []store.Revision{}
	}
	return revs, err
}

// RevisionContent is one revision of raw with its bytes, for a user who
// may read the file: what RestoreRevision would bring back.
func (w *Workspace) RevisionContent(ctx context.Context, u auth.User, raw string, id int64) (store.Revision, error) {
	p, err := w.resolve(u, raw, Read)
	if err != nil {
		return store.Revision{}, err
	}
	rev, err := w.opts.DB.RevisionByID(ctx, p.String(), id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Revision{}, fail(ErrNotFound, "no such revision of this file")
	}
	if err != nil {
		return store.Revision{}, err
	}
	if rev.Content == nil && rev.Size > 0 {
		return store.Revision{}, fail(ErrConflict, "this version was larger than 1 MB; only its hash was kept")
	}
	return rev, nil
}

// RestoreRevision writes a kept version back over the file at raw.
func (w *Workspace) RestoreRevision(ctx context.Context, u auth.User, raw string, id int64) (Saved, error) {
	p, err := w.resolve(u, raw, Write)
	if err != nil {
		return Saved{}, err
	}
	rev, err := w.opts.DB.RevisionByID(ctx, p.String(), id)
	if errors.Is(err, store.ErrNotFound) {
		return Saved{}, fail(ErrNotFound, "no such revision of this file")
	}
	if err != nil {
		return Saved{}, err
	}
	if rev.Content == nil && rev.Size > 0 {
		return Saved{}, fail(ErrConflict, "this version was larger than 1 MB; only its hash was kept")
	}
	return w.save(ctx, u, p, rev.Content, "", "file.restore")
}
