package course

import (
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/server"
	"github.com/pythonide/pyide/pkg/servertest"
	"github.com/pythonide/pyide/pkg/store"
	"github.com/pythonide/pyide/pkg/store/storetest"
	"github.com/pythonide/pyide/pkg/workspace"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// t0 is the start of every scenario.
var t0 = time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC)

var quiet = servertest.Quiet()

type env struct {
	*servertest.Server
	t  testing.TB
	db *store.DB
	// clock is the course's time. Sessions use the real clock, so moving
	// the course a week ahead does not log anyone out.
	clock *servertest.Clock
	svc   *Service
	ws    *workspace.Workspace
	dir   string
	// changes records what OnChange was told.
	changes *changeLog
	users   map[string]*client
}

// newEnv is a real server (auth, the workspace file API and the course
// API) on a fresh database and data folder, with users prof (professor),
// admin, and students alice, bob and carol.
func newEnv(t testing.TB) *env {
	t.Helper()
	db := storetest.New(t)
	dir := t.TempDir()
	// Snapshots are sealed read-only: give them back to the test's cleanup
	// (which runs before TempDir's).
	t.Cleanup(func() {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(p, 0o755)
			}
			return nil
		})
	})
	ck := servertest.NewClock(t0)
	st, err := NewState(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := workspace.New(workspace.Options{DataPath: dir, DB: db, Logger: quiet, Clock: ck.Now, Course: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	changes := &changeLog{}
	svc, err := New(context.Background(), Options{DB: db, State: st, Files: ws, DataPath: dir, Logger: quiet, Clock: ck.Now,
		OnChange: changes.add})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	s := servertest.New(t, servertest.Options{DB: db,
		Auth: func(o *auth.Options) { o.MaxFailures = 100 },
		HTTP: func(_ *servertest.Server, o *server.Options) { o.Routes = []server.Routes{ws, svc} }})
	e := &env{Server: s, t: t, db: db, clock: ck, svc: svc, ws: ws, dir: dir, users: map[string]*client{}, changes: changes}
	for _, u := range []struct{ name, display, role string }{
		{"prof", "Professor P", auth.RoleProfessor},
		{"admin", "Admin A", auth.RoleAdmin},
		{"tina", "Tina T", auth.RoleTA},
		{"alice", "Alice A", auth.RoleStudent},
		{"bob", "Bob B", auth.RoleStudent},
		{"carol", "=HYPERLINK(\"http://evil\")", auth.RoleStudent},
	} {
		s.AddUser(store.User{Username: u.name, DisplayName: u.display, Role: u.role}, "pw-"+u.name)
		if err := ws.EnsureUserDirs(u.name); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// changeLog records the users OnChange was told about ("" = everyone).
type changeLog struct {
	mu    sync.Mutex
	users []string
}

func (l *changeLog) add(user string) { l.mu.Lock(); l.users = append(l.users, user); l.mu.Unlock() }

// take returns what was recorded since the last take.
func (l *changeLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.users
	l.users = nil
	return out
}

// client is one logged-in user.
type client struct {
	*servertest.Client
	e    *env
	name string
}

// as logs name in (once) and returns their client.
func (e *env) as(name string) *client {
	e.t.Helper()
	if c, ok := e.users[name]; ok {
		return c
	}
	c := &client{Client: e.Login(name, "pw-"+name), e: e, name: name}
	e.users[name] = c
	return c
}

type reply struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

// do sends body as JSON (a string or []byte is sent as it is, and to the
// file API without a JSON content type: it is a file's bytes).
func (c *client) do(method, path string, body any) reply {
	c.e.t.Helper()
	var s string
	switch b := body.(type) {
	case nil:
	case string:
		s = b
	case []byte:
		s = string(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.e.t.Fatal(err)
		}
		s = string(j)
	}
	var hdr []string
	if strings.HasPrefix(path, "/api/files/content") {
		hdr = []string{"Content-Type", ""}
	}
	r := c.Do(method, path, s, hdr...)
	return reply{status: r.Status, header: r.Header, raw: r.Raw, body: r.Body}
}

// must fails the test unless the reply has status want.
func (r reply) must(t testing.TB, want int) reply {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d: %s", r.status, want, r.raw)
	}
	return r
}

// obj digs into a JSON reply: obj("assignment", "open").
func (r reply) get(keys ...string) any {
	var v any = r.body
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func (r reply) list(key string) []any {
	l, _ := r.body[key].([]any)
	return l
}

// writeFile saves a file through the file API, as the editor would.
func (c *client) writeFile(p, content string) reply {
	c.e.t.Helper()
	return c.do("PUT", "/api/files/content?path="+url.QueryEscape(p), content)
}

func (c *client) readFile(p string) reply {
	c.e.t.Helper()
	return c.do("GET", "/api/files/content?path="+url.QueryEscape(p), nil)
}

// disk writes a file behind the API's back, as a sandbox would.
func (e *env) disk(rel, content string) {
	e.t.Helper()
	p := filepath.Join(e.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) read(rel string) string {
	b, err := os.ReadFile(filepath.Join(e.dir, rel))
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// assignment creates an assignment as prof.
func (e *env) assignment(slug string, publish, due time.Time, cutoff *time.Time) {
	e.t.Helper()
	body := map[string]any{"slug": slug, "title": "Homework " + slug, "description_md": "Do it.",
		"publish_at": ts(publish), "due_at": ts(due)}
	if cutoff != nil {
		body["late_policy"] = "cutoff"
		body["late_cutoff_at"] = ts(*cutoff)
	}
	e.as("prof").do("POST", "/api/course/assignments", body).must(e.t, 201)
}

// test creates a test as prof.
func (e *env) test(slug string, start, end time.Time, duration int, restrict bool) {
	e.t.Helper()
	body := map[string]any{"slug": slug, "title": "Test " + slug, "publish_at": ts(t0.Add(-time.Hour)),
		"starts_at": ts(start), "ends_at": ts(end), "restrict_workspace": restrict, "restrict_repl": restrict}
	if duration > 0 {
		body["duration_minutes"] = duration
	}
	e.as("prof").do("POST", "/api/course/tests", body).must(e.t, 201)
}

func (e *env) auditActions(prefix string) map[string]int {
	e.t.Helper()
	entries, err := e.db.AuditLog(context.Background(), prefix, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]int{}
	for _, a := range entries {
		out[a.Action]++
	}
	return out
}
