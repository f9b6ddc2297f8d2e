package workspace

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/httpapi"
)

// Register adds the file endpoints to g, the /api group behind login. Each
// handler decodes the request, calls the service and maps its error.
func (w *Workspace) Register(g *echo.Group) {
	g.GET("/files", w.handleList)
	g.POST("/files", w.handleCreate)
	g.DELETE("/files", w.handleDelete)
	g.GET("/files/content", w.handleRead)
	// The same, with the file's name as the last segment of the address: a
	// browser's PDF viewer titles a document by it (the path query still
	// says which file; the name is only for show).
	g.GET("/files/content/:name", w.handleRead)
	g.PUT("/files/content", w.handleWrite)
	g.POST("/files/move", w.handleMove)
	g.POST("/files/copy", w.handleCopy)
	g.POST("/files/upload", w.handleUpload)
	g.GET("/files/download", w.handleDownload)
	g.GET("/files/revisions", w.handleRevisions)
	g.GET("/files/revisions/content", w.handleRevisionContent)
	g.POST("/files/restore", w.handleRestore)
	g.GET("/files/trash", w.handleTrash)
	g.POST("/files/trash/restore", w.handleTrashRestore)
	g.DELETE("/files/trash", w.handleTrashPurge)
}

// HTTPError turns an error of the service into an answer: the status of
// its kind and its words. Other errors pass through (500, logged). A stale
// save is answered by saveError, which adds the version.
func HTTPError(err error) error {
	var e *Error
	var qe *QuotaError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrBadPath), errors.Is(err, ErrInvalid):
		return echo.NewHTTPError(http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrNotFound):
		return echo.NewHTTPError(http.StatusNotFound, err.Error())
	case errors.Is(err, ErrForbidden):
		return echo.NewHTTPError(http.StatusForbidden, err.Error())
	case errors.Is(err, ErrConflict), errors.Is(err, ErrStale):
		return echo.NewHTTPError(http.StatusConflict, err.Error())
	case errors.Is(err, ErrTooLarge):
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, err.Error())
	case errors.Is(err, ErrNoSpace):
		return echo.NewHTTPError(http.StatusInsufficientStorage, err.Error())
	case errors.As(err, &e), errors.As(err, &qe):
		return echo.NewHTTPError(http.StatusBadRequest, err.Error())
	}
	return err
}

func (w *Workspace) handleList(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	out, err := w.List(c.Request().Context(), u, c.QueryParam("path"))
	if err != nil {
		return HTTPError(err)
	}
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

func (w *Workspace) handleRead(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	f, err := w.Open(c.Request().Context(), u, c.QueryParam("path"))
	if err != nil {
		return HTTPError(err)
	}
	defer f.Close()
	c.Response().Header().Set("ETag", etag(f.Version))
	return ServeFile(c, f.Name, f.Info.ModTime(), f)
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

func (w *Workspace) handleWrite(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	raw := c.QueryParam("path")
	content, err := io.ReadAll(io.LimitReader(c.Request().Body, w.opts.MaxFileBytes+1))
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) || int64(len(content)) > w.opts.MaxFileBytes {
		return HTTPError(tooLarge(path.Base(raw), w.opts.MaxFileBytes))
	}
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "reading the request body: "+err.Error())
	}
	res, err := w.Save(c.Request().Context(), u, raw, content, c.Request().Header.Get("If-Match"))
	if err != nil {
		return saveError(c, err)
	}
	c.Response().Header().Set("ETag", etag(res.Version))
	return c.JSON(http.StatusOK, res)
}

// saveError answers a failed save; a stale one gets 409 with the version
// on disk, so the editor can offer to reload.
func saveError(c *echo.Context, err error) error {
	var se *StaleError
	if errors.As(err, &se) {
		return c.JSON(http.StatusConflict, map[string]string{"error": se.Error(), "version": se.Current})
	}
	return HTTPError(err)
}

func (w *Workspace) handleCreate(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	var req struct {
		Path string `json:"path"`
		Type string `json:"type"`
	}
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	if req.Type != "file" && req.Type != "dir" {
		return echo.NewHTTPError(http.StatusBadRequest, `type must be "file" or "dir"`)
	}
	if err := w.Create(c.Request().Context(), u, req.Path, req.Type == "dir"); err != nil {
		return HTTPError(err)
	}
	return c.JSON(http.StatusCreated, map[string]string{"path": req.Path, "type": req.Type})
}

type moveRequest struct {
	From string `json:"from"`
	To   string `json:"to"`
}

func (w *Workspace) handleMove(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	var req moveRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	to, err := w.Move(c.Request().Context(), u, req.From, req.To)
	if err != nil {
		return HTTPError(err)
	}
	return c.JSON(http.StatusOK, map[string]string{"path": to})
}

func (w *Workspace) handleCopy(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	var req moveRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	to, err := w.Copy(c.Request().Context(), u, req.From, req.To)
	if err != nil {
		return HTTPError(err)
	}
	return c.JSON(http.StatusCreated, map[string]string{"path": to})
}

func (w *Workspace) handleDelete(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	raw := c.QueryParam("path")
	id, err := w.Trash(c.Request().Context(), u, raw)
	if err != nil {
		return HTTPError(err)
	}
	return c.JSON(http.StatusOK, map[string]any{"path": raw, "trash_id": id})
}

func (w *Workspace) handleTrash(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	out, err := w.TrashOf(c.Request().Context(), u)
	if err != nil {
		return err
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
	p, err := w.RestoreTrash(c.Request().Context(), u, id)
	if err != nil {
		return HTTPError(err)
	}
	return c.JSON(http.StatusOK, map[string]string{"path": p})
}

// handleTrashPurge deletes one trash entry (?id=N) for good, or, without
// an id, empties the user's trash.
func (w *Workspace) handleTrashPurge(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	var id int64
	if raw := c.QueryParam("id"); raw != "" {
		if id, err = parseID(json.Number(raw)); err != nil {
			return err
		}
	}
	n, err := w.PurgeTrash(c.Request().Context(), u, id)
	if err != nil {
		return HTTPError(err)
	}
	return c.JSON(http.StatusOK, map[string]any{"deleted": n})
}

func (w *Workspace) handleUpload(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	up, err := w.BeginUpload(u, c.QueryParam("path"))
	if err != nil {
		return HTTPError(err)
	}
	mr, err := c.Request().MultipartReader()
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "send the files as multipart/form-data, field \"files\"")
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			up.Abort()
			return echo.NewHTTPError(http.StatusBadRequest, "malformed multipart body")
		}
		if part.FormName() != "files" {
			part.Close()
			continue
		}
		err = up.Add(part.FileName(), part)
		part.Close()
		if err != nil {
			return HTTPError(err)
		}
	}
	results, err := up.Commit(c.Request().Context())
	if err != nil {
		return HTTPError(err)
	}
	return c.JSON(http.StatusCreated, map[string]any{"path": up.dir.String(), "files": results})
}

func (w *Workspace) handleDownload(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	p, fi, err := w.Stat(ctx, u, c.QueryParam("path"))
	if err != nil {
		return HTTPError(err)
	}
	h := c.Response().Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "private, no-cache")
	if !fi.IsDir() {
		f, fi, err := w.OpenDownload(p)
		if err != nil {
			return HTTPError(err)
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
	return w.WriteZip(ctx, u, p, c.Response())
}

func (w *Workspace) handleRevisions(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	revs, err := w.Revisions(c.Request().Context(), u, c.QueryParam("path"))
	if err != nil {
		return HTTPError(err)
	}
	return c.JSON(http.StatusOK, map[string]any{"revisions": revs})
}

// handleRevisionContent serves the bytes of one revision (?path=P&revision=N),
// as inert as the file itself: what Restore would bring back, to compare
// before restoring.
func (w *Workspace) handleRevisionContent(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	id, err := parseID(json.Number(c.QueryParam("revision")))
	if err != nil {
		return err
	}
	raw := c.QueryParam("path")
	rev, err := w.RevisionContent(c.Request().Context(), u, raw, id)
	if err != nil {
		return HTTPError(err)
	}
	return ServeFile(c, path.Base(raw), rev.Created, bytes.NewReader(rev.Content))
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
	res, err := w.RestoreRevision(c.Request().Context(), u, req.Path, id)
	if err != nil {
		return HTTPError(err)
	}
	c.Response().Header().Set("ETag", etag(res.Version))
	return c.JSON(http.StatusOK, res)
}
