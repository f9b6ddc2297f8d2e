package server_test

import (
	"context"
	"testing"

	"github.com/labstack/echo/v5"

	"github.com/pythonide/pyide/pkg/server"
	"github.com/pythonide/pyide/pkg/servertest"
	"github.com/pythonide/pyide/pkg/store"
)

// anyone is an area any logged-in user may use.
type anyone struct{}

func (anyone) Register(g *echo.Group) {
	g.GET("/anyone", func(c *echo.Context) error { return c.JSON(200, map[string]bool{"ok": true}) })
	g.POST("/anyone", func(c *echo.Context) error { return c.NoContent(204) })
}

// A user whose password was handed out (roster import, `pyide user add`
// without one, an admin's reset) can do nothing but change it, log out and
// ask who they are, until they have chosen their own.
func TestFirstLoginMustChangePassword(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(o *server.Options) { o.Routes = append(o.Routes, anyone{}) })
	ctx := context.Background()
	h, err := hasher.Hash(ctx, "from the roster")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.DB.CreateUser(ctx, store.User{Username: "newbie", Role: "student", PasswordHash: h, MustChangePassword: true}); err != nil {
		t.Fatal(err)
	}
	c := e.Client()
	r := c.Login("newbie", "from the roster")
	if r.Status != 200 {
		t.Fatalf("login: %d %s", r.Status, r.Raw)
	}
	flagged := func(r servertest.Reply) bool {
		u, _ := r.Body["user"].(map[string]any)
		return r.Body["must_change_password"] == true && u["must_change_password"] == true
	}
	if !flagged(r) {
		t.Fatalf("the login must say the password has to be changed: %s", r.Raw)
	}
	if r := c.Do("GET", "/api/auth/me", ""); r.Status != 200 || !flagged(r) {
		t.Fatalf("me: %d %s", r.Status, r.Raw)
	}
	for _, tc := range []struct{ name, method, path, body string }{
		{"a read", "GET", "/api/anyone", ""},
		{"a write", "POST", "/api/anyone", ""},
		{"a staff route", "GET", "/api/staff-only", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.Do(tc.method, tc.path, tc.body)
			if r.Status != 403 || r.Body["code"] != "password_change_required" {
				t.Fatalf("%s %s: %d %s, want 403 with code password_change_required", tc.method, tc.path, r.Status, r.Raw)
			}
			if msg, _ := r.Body["error"].(string); len(msg) < 20 {
				t.Fatalf("the refusal must say in words what to do: %s", r.Raw)
			}
		})
	}
	for _, tc := range []struct {
		name, body string
		want       int
	}{
		{"wrong current password", `{"current_password":"nope","new_password":"my own secret"}`, 403},
		{"the handed-out password again", `{"current_password":"from the roster","new_password":"from the roster"}`, 400},
		{"too short", `{"current_password":"from the roster","new_password":"short"}`, 400},
		{"ok", `{"current_password":"from the roster","new_password":"my own secret"}`, 204},
	} {
		if r := c.Do("POST", "/api/auth/password", tc.body); r.Status != tc.want {
			t.Fatalf("%s: %d %s, want %d", tc.name, r.Status, r.Raw, tc.want)
		}
	}
	if r := c.Do("GET", "/api/auth/me", ""); r.Status != 200 || r.Body["must_change_password"] != false {
		t.Fatalf("me after the change: %d %s", r.Status, r.Raw)
	}
	if r := c.Do("GET", "/api/anyone", ""); r.Status != 200 {
		t.Fatalf("after the change the API is open: %d %s", r.Status, r.Raw)
	}
	u, err := e.DB.UserByName(ctx, "newbie")
	if err != nil || u.MustChangePassword {
		t.Fatalf("the flag is still stored: %+v %v", u, err)
	}
	// Logging out is allowed before the change too.
	other := e.Client()
	other.Login("newbie", "my own secret")
	if err := e.DB.SetPassword(ctx, u.ID, h, true, nil); err != nil {
		t.Fatal(err)
	}
	other.Login("newbie", "from the roster")
	if r := other.Do("POST", "/api/auth/logout", ""); r.Status != 204 {
		t.Fatalf("logout while the change is required: %d %s", r.Status, r.Raw)
	}
}
