package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pythonide/pyide/pkg/admin"
	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/server"
	"github.com/pythonide/pyide/pkg/servertest"
	"github.com/pythonide/pyide/pkg/store"
	"github.com/pythonide/pyide/pkg/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

type env struct {
	*servertest.Server
	t *testing.T
}

var hasher = auth.NewHasher(10, 2)

func newEnv(t *testing.T) *env { return newEnvWith(t, nil) }

// newEnvWith serves the handler with sb as the sandbox manager (nil: Docker
// is away).
func newEnvWith(t *testing.T, sb admin.Sandboxes) *env {
	var sandboxes func() admin.Sandboxes
	if sb != nil {
		sandboxes = func() admin.Sandboxes { return sb }
	}
	s := servertest.New(t, servertest.Options{Hasher: hasher,
		Auth: func(o *auth.Options) { o.AbsoluteTimeout = time.Hour },
		HTTP: func(s *servertest.Server, o *server.Options) {
			o.Routes = []server.Routes{admin.New(admin.Options{DB: s.DB, Auth: s.Auth, DataPath: t.TempDir(), Sandboxes: sandboxes,
				EnsureUserDirs: func(...string) error { return nil }})}
		}})
	for _, u := range []struct{ name, role string }{{"root", "admin"}, {"prof", "professor"}, {"alice", "student"}} {
		s.AddUser(store.User{Username: u.name, Role: u.role}, "password "+u.name)
	}
	return &env{Server: s, t: t}
}

func (e *env) as(name string) *servertest.Client { return e.Login(name, "password "+name) }

func (e *env) do(c *servertest.Client, method, path, ctype, body string) (int, map[string]any) {
	e.t.Helper()
	r := c.Do(method, path, body, "Content-Type", ctype)
	return r.Status, r.Body
}

func TestRoleChecks(t *testing.T) {
	e := newEnv(t)
	student, prof, root := e.as("alice"), e.as("prof"), e.as("root")
	routes := []struct{ method, path, body string }{
		{"GET", "/api/admin/users", ""},
		{"POST", "/api/admin/users", `{"username":"x","display_name":"X","role":"student"}`},
		{"POST", "/api/admin/users/import", "x,X,student\n"},
		{"POST", "/api/admin/users/alice/disable", ""},
		{"POST", "/api/admin/users/alice/reset-password", ""},
		{"GET", "/api/admin/audit", ""},
		{"GET", "/api/admin/status", ""},
		{"GET", "/api/admin/sandboxes", ""},
		{"DELETE", "/api/admin/sandboxes/abc", ""},
		{"POST", "/api/admin/sandboxes/reap", `{"idle_seconds":60}`},
	}
	for _, r := range routes {
		if code, _ := e.do(student, r.method, r.path, "application/json", r.body); code != 403 {
			t.Errorf("student %s %s: %d, want 403", r.method, r.path, code)
		}
		if code, _ := e.do(e.Client(), r.method, r.path, "application/json", r.body); code != 401 {
			t.Errorf("anonymous %s %s: %d, want 401", r.method, r.path, code)
		}
	}
	// Professors see status and sandboxes, not user management.
	if code, _ := e.do(prof, "GET", "/api/admin/users", "", ""); code != 403 {
		t.Errorf("professor listing users: %d", code)
	}
	if code, body := e.do(prof, "GET", "/api/admin/status", "", ""); code != 200 || body["database"] == nil {
		t.Errorf("professor status: %d %v", code, body)
	}
	// Without Docker the sandbox endpoints say so plainly.
	if code, body := e.do(root, "GET", "/api/admin/sandboxes", "", ""); code != 503 || !strings.Contains(body["error"].(string), "unavailable") {
		t.Errorf("sandboxes without Docker: %d %v", code, body)
	}
}

func TestUserManagement(t *testing.T) {
	e := newEnv(t)
	root := e.as("root")
	code, body := e.do(root, "POST", "/api/admin/users", "application/json", `{"username":"bob","display_name":"Bob, Jr.","role":"student","email":"bob@example.edu"}`)
	if code != 200 {
		t.Fatalf("add: %d %v", code, body)
	}
	pw := body["passwords"].(map[string]any)["bob"].(string)
	if len(pw) < 12 {
		t.Fatalf("one-time password %q", pw)
	}
	if code, _ := e.do(root, "POST", "/api/admin/users", "application/json", `{"username":"bob","display_name":"B","role":"student"}`); code != 409 {
		t.Fatalf("duplicate add: %d", code)
	}
	for _, bad := range []string{
		`{"username":"Bad Name!","display_name":"B","role":"student"}`,
		`{"username":"carl","display_name":"C","role":"wizard"}`,
		`{"username":"carl","role":"student","extra":1}`,
		`{"username":`,
	} {
		if code, body := e.do(root, "POST", "/api/admin/users", "application/json", bad); code != 400 {
			t.Errorf("%s: %d %v", bad, code, body)
		}
	}
	code, body = e.do(root, "POST", "/api/admin/users/import", "text/csv", "username,display_name,role\ncarl,Carl,student\ndana,Dana,professor\nbob,Bob Renamed,student\n")
	if code != 200 || len(body["created"].([]any)) != 2 || len(body["updated"].([]any)) != 1 {
		t.Fatalf("import: %d %v", code, body)
	}
	if code, body := e.do(root, "POST", "/api/admin/users/import", "text/csv", "erin,Erin,student\nbad line\n"); code != 400 || !strings.Contains(body["error"].(string), "line 2") {
		t.Fatalf("bad roster: %d %v", code, body)
	}
	if _, err := e.DB.UserByName(context.Background(), "erin"); err == nil {
		t.Fatal("a failed roster import created a user")
	}
	// Reset: the old password stops working, the one-time one works.
	code, body = e.do(root, "POST", "/api/admin/users/alice/reset-password", "", "")
	if code != 200 {
		t.Fatalf("reset: %d %v", code, body)
	}
	newPW := body["password"].(string)
	resp, _ := http.Post(e.URL+"/api/auth/login", "application/json", strings.NewReader(`{"username":"alice","password":"password alice"}`))
	if resp.StatusCode != 401 {
		t.Fatalf("old password after reset: %d", resp.StatusCode)
	}
	resp.Body.Close()
	resp, _ = http.Post(e.URL+"/api/auth/login", "application/json", strings.NewReader(`{"username":"alice","password":"`+newPW+`"}`))
	if resp.StatusCode != 200 {
		t.Fatalf("one-time password: %d", resp.StatusCode)
	}
	resp.Body.Close()
	// Disable: sessions end, login refused; own account protected.
	if code, _ := e.do(root, "POST", "/api/admin/users/root/disable", "", ""); code != 400 {
		t.Fatalf("disabling yourself: %d", code)
	}
	if code, _ := e.do(root, "POST", "/api/admin/users/nobody/disable", "", ""); code != 404 {
		t.Fatalf("disabling nobody: %d", code)
	}
	code, body = e.do(root, "GET", "/api/admin/users", "", "")
	if code != 200 || strings.Contains(strings.ToLower(jsonString(body)), "hash") {
		t.Fatalf("list users: %d %v", code, body)
	}
	code, body = e.do(root, "GET", "/api/admin/audit?prefix=user.", "", "")
	if code != 200 || len(body["entries"].([]any)) < 3 {
		t.Fatalf("audit: %d %v", code, body)
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// fakeSandboxes records reaps; the real manager is tested in cmd/pyide
// with Docker.
type fakeSandboxes struct {
	mu    sync.Mutex
	reaps []string
}

func (f *fakeSandboxes) List(context.Context) ([]admin.Sandbox, error) { return nil, nil }
func (f *fakeSandboxes) Stop(context.Context, string) error            { return admin.ErrNotFound }
func (f *fakeSandboxes) Reap(_ context.Context, idle time.Duration, user string, all bool) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reaps = append(f.reaps, fmt.Sprintf("idle=%v user=%s all=%v", idle, user, all))
	return 1, nil
}
func (f *fakeSandboxes) Stats() admin.SandboxStats  { return admin.SandboxStats{} }
func (f *fakeSandboxes) Ping(context.Context) error { return nil }

// TestDisableEndsEverything: disabling a user ends their login sessions
// (listeners close their sockets) and reaps every sandbox of theirs, so a
// program already running stops at once; enabling touches nothing.
func TestDisableEndsEverything(t *testing.T) {
	sb := &fakeSandboxes{}
	e := newEnvWith(t, sb)
	var events []auth.Event
	e.Auth.OnSessionEnd(func(ev auth.Event) { events = append(events, ev) })
	root := e.as("root")
	if code, body := e.do(root, "POST", "/api/admin/users/alice/disable", "", ""); code != 204 {
		t.Fatalf("disable: %d %v", code, body)
	}
	if len(events) != 1 || events[0].Username != "alice" || events[0].Reason != "disabled" {
		t.Errorf("session events: %+v", events)
	}
	if want := []string{"idle=0s user=alice all=false"}; !slices.Equal(sb.reaps, want) {
		t.Errorf("reaps: %v, want %v", sb.reaps, want)
	}
	if code, _ := e.do(root, "POST", "/api/admin/users/alice/enable", "", ""); code != 204 {
		t.Fatalf("enable: %d", code)
	}
	if len(sb.reaps) != 1 {
		t.Errorf("enabling reaped: %v", sb.reaps)
	}
	// Without Docker, disabling still works: there is nothing to reap.
	e = newEnv(t)
	if code, body := e.do(e.as("root"), "POST", "/api/admin/users/alice/disable", "", ""); code != 204 {
		t.Fatalf("disable without Docker: %d %v", code, body)
	}
}

// TestResetPasswordGiven: the CLI may name the one-time password (read
// from its stdin); the policy still applies.
func TestResetPasswordGiven(t *testing.T) {
	e := newEnv(t)
	root := e.as("root")
	code, body := e.do(root, "POST", "/api/admin/users/alice/reset-password", "application/json", `{"password":"a chosen password"}`)
	if code != 200 || body["password"] != "a chosen password" {
		t.Fatalf("reset with a password: %d %v", code, body)
	}
	resp, err := http.Post(e.URL+"/api/auth/login", "application/json", strings.NewReader(`{"username":"alice","password":"a chosen password"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("login with the chosen password: %v %v", resp, err)
	}
	resp.Body.Close()
	if code, body := e.do(root, "POST", "/api/admin/users/alice/reset-password", "application/json", `{"password":"short"}`); code != 400 {
		t.Errorf("a password against the policy: %d %v", code, body)
	}
}

// TestChangeRole: an admin gives a user another role; their sessions end
// (they sign in again with it) and their sandboxes go. Nobody changes their
// own role, and the last enabled admin keeps theirs.
func TestChangeRole(t *testing.T) {
	sb := &fakeSandboxes{}
	e := newEnvWith(t, sb)
	var events []auth.Event
	e.Auth.OnSessionEnd(func(ev auth.Event) { events = append(events, ev) })
	root, alice := e.as("root"), e.as("alice")
	for _, tc := range []struct {
		name, path, body string
		code             int
	}{
		{"an unknown role", "/api/admin/users/alice/role", `{"role":"wizard"}`, 400},
		{"nobody", "/api/admin/users/nobody/role", `{"role":"student"}`, 404},
		{"your own role", "/api/admin/users/root/role", `{"role":"student"}`, 400},
		{"a student becomes a professor", "/api/admin/users/alice/role", `{"role":"professor"}`, 204},
	} {
		if code, body := e.do(root, "POST", tc.path, "application/json", tc.body); code != tc.code {
			t.Errorf("%s: %d %v, want %d", tc.name, code, body, tc.code)
		}
	}
	if u, _ := e.DB.UserByName(context.Background(), "alice"); u.Role != auth.RoleProfessor {
		t.Errorf("alice is a %s", u.Role)
	}
	if len(events) != 1 || events[0].Username != "alice" || events[0].Reason != "role" {
		t.Errorf("session events: %+v", events)
	}
	if code, _ := e.do(alice, "GET", "/api/admin/status", "", ""); code != 401 {
		t.Errorf("alice's old session still works: %d", code)
	}
	if want := []string{"idle=0s user=alice all=false"}; !slices.Equal(sb.reaps, want) {
		t.Errorf("reaps: %v, want %v", sb.reaps, want)
	}
	// The last enabled admin keeps the role, whoever asks.
	e.AddUser(store.User{Username: "root2", Role: auth.RoleAdmin}, "password root2")
	root2 := e.as("root2")
	if code, body := e.do(root2, "POST", "/api/admin/users/root/role", "application/json", `{"role":"professor"}`); code != 204 {
		t.Fatalf("demoting one of two admins: %d %v", code, body)
	}
	if code, body := e.do(e.as("root2"), "POST", "/api/admin/users/root2/role", "application/json", `{"role":"student"}`); code != 400 {
		t.Errorf("demoting yourself: %d %v", code, body)
	}
	if n := auditCount(t, e, "user.role"); n != 2 {
		t.Errorf("%d role changes audited, want 2", n)
	}
}

// TestDeleteUser: an account without course work can be deleted; its
// sessions end and it cannot sign in; one with submissions or grades is
// refused (disable it instead), as are your own and the last admin.
func TestDeleteUser(t *testing.T) {
	e := newEnv(t)
	root := e.as("root")
	e.AddUser(store.User{Username: "typo", Role: auth.RoleStudent}, "password typo")
	e.as("typo")
	if code, body := e.do(root, "DELETE", "/api/admin/users/typo", "", ""); code != 204 {
		t.Fatalf("delete: %d %v", code, body)
	}
	if _, err := e.DB.UserByName(context.Background(), "typo"); err == nil {
		t.Error("the user is still there")
	}
	if r := e.Client().Login("typo", "password typo"); r.Status != 401 {
		t.Errorf("a deleted user signs in: %d", r.Status)
	}
	if code, _ := e.do(root, "DELETE", "/api/admin/users/typo", "", ""); code != 404 {
		t.Errorf("deleting twice: %d", code)
	}
	if code, _ := e.do(root, "DELETE", "/api/admin/users/root", "", ""); code != 400 {
		t.Errorf("deleting yourself: %d", code)
	}
	// A student with a grade keeps it: delete is refused.
	ctx := context.Background()
	if _, err := e.DB.CreateAssignment(ctx, store.Assignment{Slug: "hw1", Title: "HW", DueAt: time.Now().Add(time.Hour), LatePolicy: "none", CreatedBy: "prof"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.DB.SetGrade(ctx, store.Grade{Item: "hw1", Username: "alice", MaxScore: 10, GradedBy: "prof", GradedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	code, body := e.do(root, "DELETE", "/api/admin/users/alice", "", "")
	if code != 409 || !strings.Contains(body["error"].(string), "disable") {
		t.Errorf("deleting a student with a grade: %d %v", code, body)
	}
	if n := auditCount(t, e, "user.delete"); n != 1 {
		t.Errorf("%d deletions audited, want 1", n)
	}
}

// TestLastLoginAndAuditFilters: the users list says when each one last
// signed in; the audit log filters by actor, action and target.
func TestLastLoginAndAuditFilters(t *testing.T) {
	e := newEnv(t)
	root := e.as("root")
	_, body := e.do(root, "GET", "/api/admin/users", "", "")
	last := map[string]any{}
	for _, x := range body["users"].([]any) {
		u := x.(map[string]any)
		last[u["username"].(string)] = u["last_login"]
	}
	if last["root"] == nil || last["alice"] != nil {
		t.Errorf("last logins: %v", last)
	}
	for _, p := range []string{"/api/admin/users/alice/disable", "/api/admin/users/alice/enable", "/api/admin/users/prof/disable"} {
		e.do(root, "POST", p, "", "")
	}
	for _, tc := range []struct {
		query string
		want  int
	}{
		{"", 3},
		{"?action=user.disable", 2},
		{"?prefix=user.enable", 1},
		{"?target=ALI", 2},
		{"?actor=root&action=user.&target=prof", 1},
		{"?actor=prof", 0},
		{"?action=user._isable", 0}, // _ is a letter here, not a wildcard
	} {
		code, body := e.do(root, "GET", "/api/admin/audit"+tc.query, "", "")
		if got := len(body["entries"].([]any)); code != 200 || got != tc.want {
			t.Errorf("audit%s: %d, %d entries, want %d", tc.query, code, got, tc.want)
		}
	}
	if code, _ := e.do(root, "GET", "/api/admin/audit?before=x", "", ""); code != 400 {
		t.Errorf("a bad page: %d", code)
	}
}

func auditCount(t *testing.T, e *env, action string) int {
	t.Helper()
	entries, err := e.DB.AuditSearch(context.Background(), store.AuditFilter{Action: action, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}
