// Package admin serves the administration endpoints under /api/admin: live
// sandboxes (list, stop, reap idle), users (list, add, import a roster,
// disable, change a role, delete, reset a password), the audit log and the
// server's status. Disabling, deleting or changing the role of a user ends
// their sessions and reaps their sandboxes. It owns no state: it
// calls the sandbox manager, the auth service and the store through small
// interfaces, and it never returns a stored password hash.
package admin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/httpapi"
	"github.com/pythonide/pyide/pkg/roster"
	"github.com/pythonide/pyide/pkg/store"
)

// Sandbox describes one live sandbox for the dashboard.
type Sandbox struct {
	Session     string    `json:"id"`
	User        string    `json:"user"`
	File        string    `json:"file"`
	Spare       bool      `json:"spare"`
	State       string    `json:"state"`
	Started     time.Time `json:"started"`
	IdleSeconds float64   `json:"idle_seconds"`
	CPUSeconds  float64   `json:"cpu_seconds"`
	MemoryBytes int64     `json:"memory_bytes"`
}

// SandboxStats is the manager's load.
type SandboxStats struct {
	Running int `json:"running"`
	Queued  int `json:"queued"`
	Spares  int `json:"spares"`
	Cap     int `json:"cap"`
}

// Sandboxes is what the dashboard needs from the sandbox manager.
type Sandboxes interface {
	List(ctx context.Context) ([]Sandbox, error)
	Stop(ctx context.Context, session string) error // ErrNotFound when unknown
	// Reap ends sandboxes idle for at least idle, or all of user's, or all.
	Reap(ctx context.Context, idle time.Duration, user string, all bool) (int, error)
	Stats() SandboxStats
	Ping(ctx context.Context) error
}

// ErrNotFound is returned by Sandboxes.Stop for an unknown session.
var ErrNotFound = errors.New("no such sandbox")

// Options configure the handler.
type Options struct {
	DB   *store.DB
	Auth *auth.Service
	// Sandboxes returns the manager, or nil while Docker is unavailable.
	Sandboxes func() Sandboxes
	// EnsureUserDirs creates a new user's workspace folder.
	EnsureUserDirs func(usernames ...string) error
	DataPath       string
	Logger         *slog.Logger
}

// Handler serves /api/admin.
type Handler struct{ opts Options }

// New returns the handler.
func New(opts Options) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Handler{opts: opts}
}

// Register adds the routes to the logged-in /api group: sandboxes and
// status for staff, user management for admins only.
func (h *Handler) Register(g *echo.Group) {
	staff := g.Group("/admin", auth.RequireStaff)
	staff.GET("/status", h.status)
	staff.GET("/sandboxes", h.listSandboxes)
	staff.DELETE("/sandboxes/:id", h.stopSandbox)
	staff.POST("/sandboxes/reap", h.reap)

	admins := g.Group("/admin", auth.RequireRole(auth.RoleAdmin))
	admins.GET("/users", h.listUsers)
	admins.POST("/users", h.addUser)
	admins.POST("/users/import", h.importRoster)
	admins.POST("/users/:name/disable", h.setDisabled(true))
	admins.POST("/users/:name/enable", h.setDisabled(false))
	admins.POST("/users/:name/reset-password", h.resetPassword)
	admins.POST("/users/:name/role", h.setRole)
	admins.DELETE("/users/:name", h.deleteUser)
	admins.GET("/audit", h.audit)
}

func (h *Handler) sandboxes() (Sandboxes, error) {
	if h.opts.Sandboxes != nil {
		if s := h.opts.Sandboxes(); s != nil {
			return s, nil
		}
	}
	return nil, echo.NewHTTPError(http.StatusServiceUnavailable, "execution is unavailable: no Docker engine answers")
}

// auditPage is how many entries one answer of the audit log holds.
const auditPage = 200

// audit answers the audit log, newest first, filtered by ?actor= (exactly),
// ?action= (a prefix: "user." is every user action; ?prefix= is the old
// name) and ?target= (a part of it, in any case); ?before=ID pages back.
func (h *Handler) audit(c *echo.Context) error {
	f := store.AuditFilter{Actor: c.QueryParam("actor"), Action: c.QueryParam("action"), Target: c.QueryParam("target"), Limit: auditPage}
	if f.Action == "" {
		f.Action = c.QueryParam("prefix")
	}
	if b := c.QueryParam("before"); b != "" {
		id, err := strconv.ParseInt(b, 10, 64)
		if err != nil || id <= 0 {
			return echo.NewHTTPError(http.StatusBadRequest, "before: an entry id, a positive whole number")
		}
		f.Before = id
	}
	entries, err := h.opts.DB.AuditSearch(c.Request().Context(), f)
	if err != nil {
		return err
	}
	more := len(entries) == auditPage
	return c.JSON(http.StatusOK, map[string]any{"entries": entries, "more": more})
}

func (h *Handler) listSandboxes(c *echo.Context) error {
	s, err := h.sandboxes()
	if err != nil {
		return err
	}
	list, err := s.List(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"sandboxes": list, "stats": s.Stats()})
}

func (h *Handler) stopSandbox(c *echo.Context) error {
	s, err := h.sandboxes()
	if err != nil {
		return err
	}
	u, _ := auth.CurrentUser(c)
	id := c.Param("id")
	err = s.Stop(c.Request().Context(), id)
	if errors.Is(err, ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, "no such sandbox")
	}
	if err != nil {
		return err
	}
	_ = h.opts.DB.Audit(c.Request().Context(), u.Username, "sandbox.reap", id, nil)
	return c.NoContent(http.StatusNoContent)
}

type reapRequest struct {
	IdleSeconds int    `json:"idle_seconds"`
	User        string `json:"user"`
	All         bool   `json:"all"`
}

func (h *Handler) reap(c *echo.Context) error {
	s, err := h.sandboxes()
	if err != nil {
		return err
	}
	var req reapRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	if req.IdleSeconds < 0 || req.IdleSeconds > 7*24*3600 {
		return echo.NewHTTPError(http.StatusBadRequest, "idle_seconds must be between 0 and one week")
	}
	idle := time.Duration(req.IdleSeconds) * time.Second
	if idle == 0 && req.User == "" && !req.All {
		return echo.NewHTTPError(http.StatusBadRequest, "say which sandboxes: idle_seconds, user or all")
	}
	n, err := s.Reap(c.Request().Context(), idle, req.User, req.All)
	if err != nil {
		return err
	}
	u, _ := auth.CurrentUser(c)
	_ = h.opts.DB.Audit(c.Request().Context(), u.Username, "sandbox.reap", req.User, map[string]any{"idle_seconds": req.IdleSeconds, "all": req.All, "reaped": n})
	return c.JSON(http.StatusOK, map[string]int{"reaped": n})
}

func (h *Handler) status(c *echo.Context) error {
	ctx := c.Request().Context()
	out := map[string]any{"time": time.Now().UTC()}
	if err := h.opts.DB.Ping(ctx); err != nil {
		out["database"] = map[string]string{"status": "down", "error": err.Error()}
	} else {
		out["database"] = map[string]string{"status": "ok"}
	}
	if s, err := h.sandboxes(); err != nil {
		out["docker"] = map[string]string{"status": "down", "error": "no Docker engine answers"}
	} else if err := s.Ping(ctx); err != nil {
		out["docker"] = map[string]string{"status": "down", "error": err.Error()}
	} else {
		out["docker"] = map[string]string{"status": "ok"}
		out["sandboxes"] = s.Stats()
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(h.opts.DataPath, &st); err == nil {
		total := st.Blocks * uint64(st.Bsize)
		free := st.Bavail * uint64(st.Bsize)
		out["disk"] = map[string]any{"path": h.opts.DataPath, "total_bytes": total, "free_bytes": free}
	}
	return c.JSON(http.StatusOK, out)
}

type userView struct {
	Username    string     `json:"username"`
	DisplayName string     `json:"display_name"`
	Email       string     `json:"email"`
	Role        string     `json:"role"`
	Disabled    bool       `json:"disabled"`
	Created     time.Time  `json:"created"`
	LastLogin   *time.Time `json:"last_login"` // null: never signed in
}

func (h *Handler) listUsers(c *echo.Context) error {
	users, err := h.opts.DB.ListUsers(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]userView, len(users))
	for i, u := range users {
		out[i] = userView{u.Username, u.DisplayName, u.Email, u.Role, u.Disabled, u.CreatedAt, u.LastLoginAt}
	}
	return c.JSON(http.StatusOK, map[string]any{"users": out})
}

type addUserRequest struct {
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
	Email       string `json:"email"`
	Role        string `json:"role"`
}

// addUser creates one user through the roster path, so the rules are the
// same as for an import; the one-time password is in the reply only.
func (h *Handler) addUser(c *echo.Context) error {
	var req addUserRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	line := strings.Join([]string{csvField(req.Username), csvField(req.DisplayName), csvField(req.Role), csvField(req.Email)}, ",")
	entries, err := roster.Parse(strings.NewReader(line))
	if err != nil || len(entries) != 1 {
		msg := "username, display_name and role are required"
		if err != nil {
			msg = strings.TrimPrefix(err.Error(), "roster line 1: ")
		}
		return echo.NewHTTPError(http.StatusBadRequest, msg)
	}
	if _, err := h.opts.DB.UserByName(c.Request().Context(), entries[0].Username); err == nil {
		return echo.NewHTTPError(http.StatusConflict, "user "+entries[0].Username+" already exists")
	}
	return h.applyRoster(c, entries)
}

func csvField(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// importRoster takes the roster CSV as the request body (text/csv).
func (h *Handler) importRoster(c *echo.Context) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "roster too large")
		}
		return err
	}
	entries, err := roster.Parse(strings.NewReader(string(body)))
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, err.Error())
	}
	if len(entries) == 0 {
		return echo.NewHTTPError(http.StatusBadRequest, "the roster has no rows")
	}
	return h.applyRoster(c, entries)
}

func (h *Handler) applyRoster(c *echo.Context, entries []roster.Entry) error {
	ctx := c.Request().Context()
	res, err := roster.Import(ctx, h.opts.DB, h.opts.Auth.Hasher(), entries)
	if err != nil {
		return err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Username
	}
	if h.opts.EnsureUserDirs != nil {
		if err := h.opts.EnsureUserDirs(names...); err != nil {
			return err
		}
	}
	u, _ := auth.CurrentUser(c)
	_ = h.opts.DB.Audit(ctx, u.Username, "user.import", "", map[string]any{"created": res.Created, "updated": res.Updated})
	return c.JSON(http.StatusOK, map[string]any{
		"created": nonNil(res.Created), "updated": nonNil(res.Updated), "unchanged": nonNil(res.Unchanged),
		// Shown once to the admin who created them; never stored in clear.
		"passwords": res.Passwords,
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (h *Handler) setDisabled(disabled bool) echo.HandlerFunc {
	return func(c *echo.Context) error {
		u, _ := auth.CurrentUser(c)
		name := c.Param("name")
		if disabled && name == u.Username {
			return echo.NewHTTPError(http.StatusBadRequest, "you cannot disable your own account")
		}
		err := h.opts.Auth.SetDisabled(c.Request().Context(), name, disabled)
		if errors.Is(err, store.ErrNotFound) {
			return echo.NewHTTPError(http.StatusNotFound, "no such user")
		}
		if err != nil {
			return err
		}
		action := "user.enable"
		if disabled {
			action = "user.disable"
		}
		_ = h.opts.DB.Audit(c.Request().Context(), u.Username, action, name, nil)
		if disabled {
			if err := h.endSandboxes(c, name, "is disabled"); err != nil {
				return err
			}
		}
		return c.NoContent(http.StatusNoContent)
	}
}

// endSandboxes ends what a user still runs (or a spare waiting) after their
// sessions ended: their sockets closed with the session, their programs
// must not run on. done says what happened to them, for the error.
func (h *Handler) endSandboxes(c *echo.Context, name, done string) error {
	s, err := h.sandboxes()
	if err != nil {
		return nil // no Docker: nothing runs
	}
	if _, err := s.Reap(c.Request().Context(), 0, name, false); err != nil {
		return echo.NewHTTPError(http.StatusInternalServerError,
			name+" "+done+", but ending their sandboxes failed ("+err.Error()+"); try again with `pyide sandbox reap --user "+name+"`")
	}
	return nil
}

type roleRequest struct {
	Role string `json:"role"`
}

// setRole gives a user another role; their sessions end, so they sign in
// again with it. An admin cannot change their own role (they could lock
// themselves out), nor leave the server without an enabled admin.
func (h *Handler) setRole(c *echo.Context) error {
	u, _ := auth.CurrentUser(c)
	name := c.Param("name")
	var req roleRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	if !auth.ValidRole(req.Role) {
		return echo.NewHTTPError(http.StatusBadRequest, "role: student, professor or admin")
	}
	if name == u.Username {
		return echo.NewHTTPError(http.StatusBadRequest, "you cannot change your own role; ask another admin")
	}
	ctx := c.Request().Context()
	target, err := h.opts.DB.UserByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, "no such user")
	}
	if err != nil {
		return err
	}
	err = h.opts.Auth.SetRole(ctx, name, req.Role)
	if errors.Is(err, store.ErrLastAdmin) {
		return echo.NewHTTPError(http.StatusConflict, name+" is the last enabled admin; make another admin first")
	}
	if err != nil {
		return err
	}
	if target.Role != req.Role {
		_ = h.opts.DB.Audit(ctx, u.Username, "user.role", name, map[string]any{"from": target.Role, "to": req.Role})
		if err := h.endSandboxes(c, name, "has the role "+req.Role); err != nil {
			return err
		}
	}
	return c.NoContent(http.StatusNoContent)
}

// deleteUser removes an account. Their files stay where they are (Local/
// <name>, their submission folders), for staff to keep or move: an account
// made later under the same name would find them. A user with submissions
// or grades is refused: disable them instead, which keeps the records.
func (h *Handler) deleteUser(c *echo.Context) error {
	u, _ := auth.CurrentUser(c)
	name := c.Param("name")
	if name == u.Username {
		return echo.NewHTTPError(http.StatusBadRequest, "you cannot delete your own account")
	}
	ctx := c.Request().Context()
	err := h.opts.Auth.DeleteUser(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return echo.NewHTTPError(http.StatusNotFound, "no such user")
	case errors.Is(err, store.ErrHasCourseWork):
		return echo.NewHTTPError(http.StatusConflict, name+" has submissions or grades, which deleting would lose; disable the account instead")
	case errors.Is(err, store.ErrLastAdmin):
		return echo.NewHTTPError(http.StatusConflict, name+" is the last enabled admin; make another admin first")
	case err != nil:
		return err
	}
	_ = h.opts.DB.Audit(ctx, u.Username, "user.delete", name, nil)
	if err := h.endSandboxes(c, name, "is deleted"); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

type resetRequest struct {
	// Password is the one-time password to set; empty: one is generated.
	Password string `json:"password"`
}

func (h *Handler) resetPassword(c *echo.Context) error {
	ctx := c.Request().Context()
	name := c.Param("name")
	var req resetRequest
	if c.Request().ContentLength != 0 {
		if err := httpapi.Bind(c, &req); err != nil {
			return err
		}
	}
	pw := req.Password
	if pw == "" {
		pw = auth.GeneratePassword()
	} else if err := auth.CheckPasswordPolicy(pw); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, err.Error())
	}
	target, err := h.opts.DB.UserByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, "no such user")
	}
	if err != nil {
		return err
	}
	if err := h.opts.Auth.ResetPassword(ctx, target, pw); err != nil {
		return err
	}
	u, _ := auth.CurrentUser(c)
	_ = h.opts.DB.Audit(ctx, u.Username, "user.reset_password", name, nil)
	return c.JSON(http.StatusOK, map[string]string{"username": name, "password": pw})
}
