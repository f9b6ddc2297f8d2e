package workspace

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/fstree"
	"github.com/pythonide/pyide/pkg/httpapi"
	"github.com/pythonide/pyide/pkg/store"
)

// maxUploadFiles bounds one upload request.
const maxUploadFiles = 100

// Register adds the file endpoints to g, the /api group behind login.
func (w *Workspace) Register(g *echo.Group) {
	g.GET("/files", w.handleList)
	g.POST("/files", w.handleCreate)
	g.DELETE("/files", w.handleDelete)
	g.GET("/files/content", w.handleRead)
	g.PUT("/files/content", w.handleWrite)
	g.POST("/files/move", w.handleMove)
	g.POST("/files/copy", w.handleCopy)
	g.POST("/files/upload", w.handleUpload)
	g.GET("/files/download", w.handleDownload)
	g.GET("/files/revisions", w.handleRevisions)
	g.POST("/files/restore", w.handleRestore)
	g.GET("/files/trash", w.handleTrash)
	g.POST("/files/trash/restore", w.handleTrashRestore)
}

func notFound(p string) error {
	return echo.NewHTTPError(http.StatusNotFound, fmt.Sprintf("no such file or folder: %s", p))
}

// resolve parses a path and checks the user may at least reach need on it.
// A path the user may not even see is 404, so its existence does not leak.
func (w *Workspace) resolve(u auth.User, raw string, need Level) (Path, error) {
	p, err := ParsePath(raw)
	if err != nil {
		return Path{}, echo.NewHTTPError(http.StatusBadRequest, err.Error())
	}
	switch lvl := w.access(u, p); {
	case lvl == None:
		return Path{}, notFound(raw)
	case lvl < need:
		return Path{}, echo.NewHTTPError(http.StatusForbidden, fmt.Sprintf("%s is read-only for you", raw))
	}
	return p, nil
}

// fsError turns a tree error about p into an answer.
func fsError(err error, p Path) error {
	var qe *quotaError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &qe):
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, qe.Error())
	case errors.Is(err, fstree.ErrSymlink):
		return echo.NewHTTPError(http.StatusForbidden, fmt.Sprintf("%s goes through a symbolic link, which the IDE does not follow", p))
	case errors.Is(err, fs.ErrNotExist):
		return notFound(p.String())
	case errors.Is(err, fs.ErrExist), errors.Is(err, syscall.ENOTEMPTY):
		return echo.NewHTTPError(http.StatusConflict, fmt.Sprintf("%s already exists", p))
	case errors.Is(err, fstree.ErrNotRegular), errors.Is(err, syscall.EISDIR):
		return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("%s is not a regular file", p))
	case errors.Is(err, syscall.ENOTDIR):
		return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("%s: a part of the path is not a folder", p))
	case errors.Is(err, syscall.EINVAL):
		return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("cannot move %s into itself", p))
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		// The write went to a temporary file; the old version is intact.
		return echo.NewHTTPError(http.StatusInsufficientStorage,
			fmt.Sprintf("the server's disk is full: %s was not saved (the previous version is unchanged); tell your professor", p))
	}
	return err
}

func tooLarge(name string, limit int64) error {
	return echo.NewHTTPError(http.StatusRequestEntityTooLarge,
		fmt.Sprintf("%s is larger than the %s limit per file", name, humanBytes(limit)))
}

// checkPlace refuses files where only folders belong (Local/<file>,
// Assignments/<file>, Submissions/<x>/<file>…).
func checkPlace(p Path, isDir bool) error {
	if !isDir && p.Parent().FoldersOnly() {
		return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("%s may only contain folders", p.Parent()))
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

// Listing is the answer of GET /api/files.
type Listing struct {
	Path    string  `json:"path"`
	Entries []Entry `json:"entries"`
	Quota   *Quota  `json:"quota,omitempty"`
}

func (w *Workspace) handleList(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	p, err := w.resolve(u, c.QueryParam("path"), Read)
	if err != nil {
		return err
	}
	infos, err := w.tree.ReadDir(p.String())
	if err != nil {
		return fsError(err, p)
	}
	out := Listing{Path: p.String(), Entries: []Entry{}}
	for _, fi := range infos {
		if CheckName(fi.Name()) != nil {
			continue // a name the API cannot address (made by a program)
		}
		cp := p.Child(fi.Name())
		if p.IsTop() && !isRoot(fi.Name()) {
			continue
		}
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
		used, err := w.opts.DB.QuotaUsed(ctx, u.Username)
		if err != nil {
			return err
		}
		out.Quota = &Quota{Used: used, Limit: w.opts.QuotaBytes}
	}
	w.auditStaffRead(ctx, u, "file.list", p)
	return c.JSON(http.StatusOK, out)
}

// contentTypes maps extensions to what the browser gets. Anything that a
// browser would run (HTML, SVG, JS) is served as plain text: a student's
// file must never execute in a professor's session.
var contentTypes = map[string]string{
	".py":   "text/x-python; charset=utf-8",
	".txt":  "text/plain; charset=utf-8",
	".md":   "text/markdown; charset=utf-8",
	".csv":  "text/csv; charset=utf-8",
	".json": "application/json",
	".pdf":  "application/pdf",
	".png":  "image/png",
	".jpg":  "image/jpeg",
	".jpeg": "image/jpeg",
	".gif":  "image/gif",
	".webp": "image/webp",
	".zip":  "application/zip",
}

func contentType(name string, head []byte) string {
	if ct, ok := contentTypes[strings.ToLower(path.Ext(name))]; ok {
		return ct
	}
	if isText(head) {
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

func etag(version string) string { return `"` + version + `"` }

// parseETag accepts a version with or without quotes (and a weak W/ prefix).
func parseETag(s string) string {
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "W/"))
	return strings.Trim(s, `"`)
}

// versionOf is the file's content hash, from the metadata when size and
// time still match, else computed (and recorded).
func (w *Workspace) versionOf(c *echo.Context, p Path, f io.ReadSeeker, fi fs.FileInfo) (string, error) {
	ctx := c.Request().Context()
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

func (w *Workspace) handleRead(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	p, err := w.resolve(u, c.QueryParam("path"), Read)
	if err != nil {
		return err
	}
	f, fi, err := w.tree.OpenFile(p.String())
	if err != nil {
		return fsError(err, p)
	}
	defer f.Close()
	version, err := w.versionOf(c, p, f, fi)
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", etag(version))
	w.auditStaffRead(c.Request().Context(), u, "file.read", p)
	return ServeFile(c, p.Name(), fi.ModTime(), f)
}

// ServeFile sends a user's file with headers that keep it inert: a type
// from its extension (never one a browser would run), nosniff, and a
// sandboxing CSP, so a student's file never executes in anyone's session.
// Every endpoint that serves user files goes through it.
//
// PDFs get no exception: Chromium shows a PDF under this very CSP, in a
// frame and at the top level (frontend/e2e checks it), and an exception by
// type would let HTML merely named .pdf run on our origin.
func ServeFile(c *echo.Context, name string, modTime time.Time, f io.ReadSeeker) error {
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Content-Type", contentType(name, head[:n]))
	h.Set("Cache-Control", "private, no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	h.Set("X-Frame-Options", "SAMEORIGIN")
	http.ServeContent(c.Response(), c.Request(), name, modTime, f)
	return nil
}

// saveResult is the answer of a write.
type saveResult struct {
	Path    string `json:"path"`
	Version string `json:"version"`
	Size    int64  `json:"size"`
}

// save writes content at p for u: quota, the overwritten version kept,
// atomic write, metadata, revision, audit. ifMatch, when not empty, must
// be the current version. It answers 409 itself when stale.
func (w *Workspace) save(c *echo.Context, u auth.User, p Path, content []byte, ifMatch, action string) (saveResult, bool, error) {
	ctx := c.Request().Context()
	if err := checkPlace(p, false); err != nil {
		return saveResult{}, false, err
	}
	unlock := w.lock(p.String())
	defer unlock()
	old, current, oldSize, err := w.current(p)
	if err != nil {
		return saveResult{}, false, fsError(err, p)
	}
	if ifMatch != "" && ifMatch != "*" && parseETag(ifMatch) != current {
		msg := "the file changed since you opened it; reload it or save under another name"
		if current == "" {
			msg = "the file was deleted since you opened it"
		}
		return saveResult{}, true, c.JSON(http.StatusConflict, map[string]string{"error": msg, "version": current})
	}
	if err := w.quotaCheck(ctx, u, int64(len(content))-oldSize); err != nil {
		return saveResult{}, false, fsError(err, p)
	}
	if err := w.keepOverwritten(ctx, p, old, current); err != nil {
		return saveResult{}, false, err
	}
	wr, err := w.tree.WriteAtomic(p.String(), bytes.NewReader(content), w.opts.MaxFileBytes)
	if errors.Is(err, fstree.ErrTooLarge) {
		return saveResult{}, false, tooLarge(p.Name(), w.opts.MaxFileBytes)
	}
	if err != nil {
		return saveResult{}, false, fsError(err, p)
	}
	w.record(ctx, p, wr, u.Username)
	if isText(content) {
		if err := w.addRevision(ctx, p, content, wr.Hash, u.Username); err != nil {
			w.opts.Logger.Error("workspace: recording a revision", "path", p.String(), "error", err)
		}
	}
	w.auditWrite(ctx, u, action, p, map[string]any{"size": wr.Size, "hash": wr.Hash})
	return saveResult{Path: p.String(), Version: wr.Hash, Size: wr.Size}, false, nil
}

func (w *Workspace) handleWrite(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	p, err := w.resolve(u, c.QueryParam("path"), Write)
	if err != nil {
		return err
	}
	content, err := io.ReadAll(io.LimitReader(c.Request().Body, w.opts.MaxFileBytes+1))
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) || int64(len(content)) > w.opts.MaxFileBytes {
		return tooLarge(p.Name(), w.opts.MaxFileBytes)
	}
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "reading the request body: "+err.Error())
	}
	res, answered, err := w.save(c, u, p, content, c.Request().Header.Get("If-Match"), "file.write")
	if answered || err != nil {
		return err
	}
	c.Response().Header().Set("ETag", etag(res.Version))
	return c.JSON(http.StatusOK, res)
}

type createRequest struct {
	Path string `json:"path"`
	Type string `json:"type"`
}

func (w *Workspace) handleCreate(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	var req createRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	if req.Type != "file" && req.Type != "dir" {
		return echo.NewHTTPError(http.StatusBadRequest, `type must be "file" or "dir"`)
	}
	p, err := w.resolve(u, req.Path, Write)
	if err != nil {
		return err
	}
	if p.Depth() <= 1 {
		return echo.NewHTTPError(http.StatusForbidden, "the top folders are fixed")
	}
	if err := checkPlace(p, req.Type == "dir"); err != nil {
		return err
	}
	ctx := c.Request().Context()
	if req.Type == "dir" {
		err = w.tree.Mkdir(p.String())
	} else {
		err = w.tree.CreateFile(p.String())
	}
	if err != nil {
		return fsError(err, p)
	}
	if req.Type == "file" {
		w.record(ctx, p, fstree.Written{Hash: fstree.HashOf(nil)}, u.Username)
	}
	w.auditWrite(ctx, u, "file.create", p, map[string]any{"type": req.Type})
	return c.JSON(http.StatusCreated, map[string]string{"path": p.String(), "type": req.Type})
}

type moveRequest struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// twoPaths binds {from, to} and checks both against the policy: from needs
// fromLevel, to needs write; neither may be the other's ancestor.
func (w *Workspace) twoPaths(c *echo.Context, u auth.User, fromLevel Level) (Path, Path, fs.FileInfo, error) {
	var req moveRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return Path{}, Path{}, nil, err
	}
	from, err := w.resolve(u, req.From, fromLevel)
	if err != nil {
		return Path{}, Path{}, nil, err
	}
	to, err := w.resolve(u, req.To, Write)
	if err != nil {
		return Path{}, Path{}, nil, err
	}
	if to.Protected() || (fromLevel == Write && from.Protected()) {
		return Path{}, Path{}, nil, echo.NewHTTPError(http.StatusForbidden, "the top folders and home folders cannot be moved or replaced")
	}
	if to.Within(from) {
		return Path{}, Path{}, nil, echo.NewHTTPError(http.StatusBadRequest, "cannot put a folder inside itself")
	}
	fi, err := w.tree.Lstat(from.String())
	if err != nil {
		return Path{}, Path{}, nil, fsError(err, from)
	}
	if fi.Mode()&fs.ModeSymlink != 0 && fromLevel == Read {
		return Path{}, Path{}, nil, fsError(fstree.ErrSymlink, from)
	}
	if err := checkPlace(to, fi.IsDir()); err != nil {
		return Path{}, Path{}, nil, err
	}
	return from, to, fi, nil
}

func (w *Workspace) handleMove(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	from, to, _, err := w.twoPaths(c, u, Write)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if from.Owner() != to.Owner() {
		size, err := w.sizeOf(from.String())
		if err != nil {
			return fsError(err, from)
		}
		if to.Owner() == u.Username {
			if err := w.quotaCheck(ctx, u, size); err != nil {
				return fsError(err, to)
			}
		}
	}
	if err := w.tree.Rename(from.String(), to.String()); err != nil {
		return fsError(err, to)
	}
	if err := w.opts.DB.MoveFiles(ctx, from.String(), to.String(), func(s string) string { return MustPath(s).Owner() }); err != nil {
		w.opts.Logger.Error("workspace: moving file metadata", "from", from.String(), "to", to.String(), "error", err)
	}
	if from.Seg(0) != RootLocal || from.Seg(1) != u.Username {
		w.audit(ctx, u, "file.move", from, map[string]any{"to": to.String()})
	} else {
		w.auditWrite(ctx, u, "file.move", to, map[string]any{"from": from.String()})
	}
	return c.JSON(http.StatusOK, map[string]string{"path": to.String()})
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

func (w *Workspace) handleCopy(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	from, to, fi, err := w.twoPaths(c, u, Read)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if fi.IsDir() && from.Depth() <= 1 {
		return echo.NewHTTPError(http.StatusBadRequest, "copy a folder inside it, not the whole top folder")
	}
	size, err := w.sizeOf(from.String())
	if err != nil {
		return fsError(err, from)
	}
	if err := w.quotaCheck(ctx, u, size); err != nil {
		return fsError(err, to)
	}
	_, err = w.tree.CopyTree(from.String(), to.String(), w.opts.MaxFileBytes, w.readable(u))
	if err != nil {
		// A half-made copy is removed rather than left looking complete.
		if !errors.Is(err, fs.ErrExist) {
			_ = w.tree.RemoveAll(to.String())
		}
		if errors.Is(err, fstree.ErrTooLarge) {
			return tooLarge(from.Name(), w.opts.MaxFileBytes)
		}
		return fsError(err, to)
	}
	if err := w.syncTree(ctx, to); err != nil {
		w.opts.Logger.Warn("workspace: reconciling a copy", "path", to.String(), "error", err)
	}
	w.auditStaffRead(ctx, u, "file.read", from)
	w.auditWrite(ctx, u, "file.copy", to, map[string]any{"from": from.String()})
	return c.JSON(http.StatusCreated, map[string]string{"path": to.String()})
}

func (w *Workspace) handleDelete(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	p, err := w.resolve(u, c.QueryParam("path"), Write)
	if err != nil {
		return err
	}
	if p.Protected() {
		return echo.NewHTTPError(http.StatusForbidden, "the top folders and home folders cannot be deleted")
	}
	ctx := c.Request().Context()
	fi, err := w.tree.Lstat(p.String())
	if err != nil {
		return fsError(err, p)
	}
	size, err := w.sizeOf(p.String())
	if err != nil {
		return fsError(err, p)
	}
	userTrash := trashDir + "/" + u.Username
	if err := w.mkdirAll(userTrash); err != nil {
		return err
	}
	name := fmt.Sprintf("%d-%s", w.now().UnixNano(), strings.TrimPrefix(fstree.TempName(), fstree.TempPrefix))
	if err := w.tree.Rename(p.String(), userTrash+"/"+name); err != nil {
		return fsError(err, p)
	}
	e, err := w.opts.DB.AddTrash(ctx, store.TrashEntry{Username: u.Username, OriginalPath: p.String(), TrashName: name,
		IsDir: fi.IsDir(), Size: size, DeletedAt: w.now()})
	if err != nil {
		// Put it back: a deletion nobody can restore must not happen.
		if rerr := w.tree.Rename(userTrash+"/"+name, p.String()); rerr != nil {
			w.opts.Logger.Error("workspace: could not undo a failed delete", "path", p.String(), "trash", name, "error", rerr)
		}
		return err
	}
	w.auditWrite(ctx, u, "file.delete", p, map[string]any{"trash_id": e.ID, "size": size})
	return c.JSON(http.StatusOK, map[string]any{"path": p.String(), "trash_id": e.ID})
}

// TrashItem is one entry of GET /api/files/trash.
type TrashItem struct {
	ID      int64     `json:"id"`
	Path    string    `json:"path"`
	Type    string    `json:"type"`
	Size    int64     `json:"size"`
	Deleted time.Time `json:"deleted"`
	Expires time.Time `json:"expires"`
}

func (w *Workspace) handleTrash(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	list, err := w.opts.DB.TrashOf(c.Request().Context(), u.Username)
	if err != nil {
		return err
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
	return c.JSON(http.StatusOK, map[string]any{"entries": out})
}

// parseID accepts a JSON number or a string of digits.
func parseID(n json.Number) (int64, error) {
	id, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil || id <= 0 {
		return 0, echo.NewHTTPError(http.StatusBadRequest, "a revision or trash id is a positive whole number")
	}
	return id, nil
}

func (w *Workspace) handleTrashRestore(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	var req struct {
		ID json.Number `json:"id"`
	}
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	id, err := parseID(req.ID)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	e, err := w.opts.DB.TrashByID(ctx, u.Username, id)
	if errors.Is(err, store.ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, "no such item in your trash")
	}
	if err != nil {
		return err
	}
	p, err := w.resolve(u, e.OriginalPath, Write)
	if err != nil {
		return err
	}
	if err := w.tree.Rename(trashDir+"/"+u.Username+"/"+e.TrashName, p.String()); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return echo.NewHTTPError(http.StatusConflict, fmt.Sprintf("the folder %s no longer exists; recreate it first", p.Parent()))
		}
		return fsError(err, p)
	}
	if err := w.opts.DB.DeleteTrash(ctx, e.ID); err != nil {
		return err
	}
	if err := w.syncTree(ctx, p); err != nil {
		w.opts.Logger.Warn("workspace: reconciling a restored item", "path", p.String(), "error", err)
	}
	w.auditWrite(ctx, u, "file.restore_trash", p, map[string]any{"trash_id": e.ID})
	return c.JSON(http.StatusOK, map[string]string{"path": p.String()})
}

func (w *Workspace) handleUpload(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	dir, err := w.resolve(u, c.QueryParam("path"), Write)
	if err != nil {
		return err
	}
	if dir.FoldersOnly() {
		return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("%s may only contain folders", dir))
	}
	if fi, err := w.tree.Lstat(dir.String()); err != nil || !fi.IsDir() {
		if err == nil {
			err = syscall.ENOTDIR
		}
		return fsError(err, dir)
	}
	mr, err := c.Request().MultipartReader()
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "send the files as multipart/form-data, field \"files\"")
	}
	ctx := c.Request().Context()
	type staged struct {
		p   Path
		tmp string
		wr  fstree.Written
	}
	var files []staged
	cleanup := func() {
		for _, s := range files {
			w.tree.RemoveTemp(dir.String(), s.tmp)
		}
	}
	seen := map[string]bool{}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			cleanup()
			return echo.NewHTTPError(http.StatusBadRequest, "malformed multipart body")
		}
		if part.FormName() != "files" {
			part.Close()
			continue
		}
		name := part.FileName()
		if err := CheckName(name); err != nil {
			cleanup()
			return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("file name %q: %v", name, err))
		}
		if len(files) >= maxUploadFiles {
			cleanup()
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("at most %d files per upload", maxUploadFiles))
		}
		if seen[name] {
			cleanup()
			return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("%s is in the upload twice", name))
		}
		seen[name] = true
		p := dir.Child(name)
		if _, err := w.resolve(u, p.String(), Write); err != nil {
			cleanup()
			return err
		}
		tmp, wr, err := w.tree.WriteTemp(dir.String(), name, part, w.opts.MaxFileBytes)
		part.Close()
		if errors.Is(err, fstree.ErrTooLarge) {
			cleanup()
			return tooLarge(name, w.opts.MaxFileBytes)
		}
		if err != nil {
			cleanup()
			return fsError(err, p)
		}
		files = append(files, staged{p: p, tmp: tmp, wr: wr})
	}
	if len(files) == 0 {
		return echo.NewHTTPError(http.StatusBadRequest, "no files in the upload (field \"files\")")
	}
	var grow int64
	for _, s := range files {
		grow += s.wr.Size
		if fi, err := w.tree.Lstat(s.p.String()); err == nil && fi.Mode().IsRegular() {
			grow -= fi.Size()
		}
	}
	if err := w.quotaCheck(ctx, u, grow); err != nil {
		cleanup()
		return fsError(err, dir)
	}
	results := make([]saveResult, 0, len(files))
	for i, s := range files {
		unlock := w.lock(s.p.String())
		if old, h, _, err := w.current(s.p); err == nil {
			if err := w.keepOverwritten(ctx, s.p, old, h); err != nil {
				w.opts.Logger.Warn("workspace: keeping an overwritten version", "path", s.p.String(), "error", err)
			}
		}
		err := w.tree.CommitTemp(dir.String(), s.tmp, s.p.Name())
		unlock()
		if err != nil {
			for _, r := range files[i:] {
				w.tree.RemoveTemp(dir.String(), r.tmp)
			}
			return fsError(err, s.p)
		}
		w.record(ctx, s.p, s.wr, u.Username)
		results = append(results, saveResult{Path: s.p.String(), Version: s.wr.Hash, Size: s.wr.Size})
		if s.wr.Size <= RevisionContentBytes {
			w.reviseFromDisk(ctx, s.p, s.wr, u.Username)
		}
	}
	names := make([]string, 0, len(results))
	for _, r := range results {
		names = append(names, r.Path)
	}
	w.auditWrite(ctx, u, "file.upload", dir, map[string]any{"files": names, "bytes": grow})
	return c.JSON(http.StatusCreated, map[string]any{"path": dir.String(), "files": results})
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

func (w *Workspace) handleDownload(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	p, err := w.resolve(u, c.QueryParam("path"), Read)
	if err != nil {
		return err
	}
	fi, err := w.tree.Lstat(p.String())
	if err != nil {
		return fsError(err, p)
	}
	ctx := c.Request().Context()
	w.auditStaffRead(ctx, u, "file.download", p)
	h := c.Response().Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "private, no-cache")
	if !fi.IsDir() {
		f, fi, err := w.tree.OpenFile(p.String())
		if err != nil {
			return fsError(err, p)
		}
		defer f.Close()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": p.Name()}))
		http.ServeContent(c.Response(), c.Request(), p.Name(), fi.ModTime(), f)
		return nil
	}
	name := p.Name()
	if p.IsTop() {
		name = "files"
	}
	h.Set("Content-Type", "application/zip")
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name + ".zip"}))
	c.Response().WriteHeader(http.StatusOK)
	zw := zip.NewWriter(c.Response())
	keep := w.readable(u)
	base := p.String()
	err = w.tree.Walk(base, func(rel string, fi fs.FileInfo) error {
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
		// The status is sent; a truncated zip is what the client sees.
		w.opts.Logger.Warn("workspace: zip download stopped", "path", base, "error", err)
		return nil
	}
	return zw.Close()
}

func (w *Workspace) handleRevisions(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	p, err := w.resolve(u, c.QueryParam("path"), Read)
	if err != nil {
		return err
	}
	revs, err := w.opts.DB.Revisions(c.Request().Context(), p.String())
	if err != nil {
		return err
	}
	if revs == nil {
		revs = []store.Revision{}
	}
	return c.JSON(http.StatusOK, map[string]any{"revisions": revs})
}

func (w *Workspace) handleRestore(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	var req struct {
		Path     string      `json:"path"`
		Revision json.Number `json:"revision"`
	}
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	id, err := parseID(req.Revision)
	if err != nil {
		return err
	}
	p, err := w.resolve(u, req.Path, Write)
	if err != nil {
		return err
	}
	rev, err := w.opts.DB.RevisionByID(c.Request().Context(), p.String(), id)
	if errors.Is(err, store.ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, "no such revision of this file")
	}
	if err != nil {
		return err
	}
	if rev.Content == nil && rev.Size > 0 {
		return echo.NewHTTPError(http.StatusConflict, "this version was larger than 1 MB; only its hash was kept")
	}
	res, answered, err := w.save(c, u, p, rev.Content, "", "file.restore")
	if answered || err != nil {
		return err
	}
	c.Response().Header().Set("ETag", etag(res.Version))
	return c.JSON(http.StatusOK, res)
}
