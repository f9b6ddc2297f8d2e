package course

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/server"
	"github.com/pythonide/pyide/pkg/store"
	"github.com/pythonide/pyide/pkg/store/storetest"
	"github.com/pythonide/pyide/pkg/workspace"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// clock is the course's settable time. Sessions use the real clock, so
// moving the course a week ahead does not log anyone out.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// t0 is the start of every scenario.
var t0 = time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC)

var hasher = auth.NewHasher(4, 4)

var quiet = slog.New(slog.DiscardHandler)

type env struct {
	t     testing.TB
	db    *store.DB
	clock *clock
	svc   *Service
	ws    *workspace.Workspace
	dir   string
	// changes records what OnChange was told.
	changes *changeLog
	srv     *httptest.Server
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
	ck := &clock{now: t0}
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
	authSvc := auth.New(auth.Options{DB: db, Hasher: hasher, IdleTimeout: time.Hour, AbsoluteTimeout: 8 * time.Hour,
		MaxFailures: 100, Window: time.Minute, Logger: quiet})
	s := server.New(server.Options{Logger: quiet, Auth: authSvc, MaxBodyBytes: 1 << 20,
		Routes: []server.Routes{ws, svc}})
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	e := &env{t: t, db: db, clock: ck, svc: svc, ws: ws, dir: dir, srv: ts, users: map[string]*client{}, changes: changes}
	for _, u := range []struct{ name, display, role string }{
		{"prof", "Professor P", auth.RoleProfessor},
		{"admin", "Admin A", auth.RoleAdmin},
		{"alice", "Alice A", auth.RoleStudent},
		{"bob", "Bob B", auth.RoleStudent},
		{"carol", "=HYPERLINK(\"http://evil\")", auth.RoleStudent},
	} {
		h, err := hasher.Hash(context.Background(), "pw-"+u.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.CreateUser(context.Background(), store.User{Username: u.name, DisplayName: u.display, Role: u.role, PasswordHash: h}); err != nil {
			t.Fatal(err)
		}
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
	e    *env
	name string
	http *http.Client
}

// as logs name in (once) and returns their client.
func (e *env) as(name string) *client {
	e.t.Helper()
	if c, ok := e.users[name]; ok {
		return c
	}
	jar, _ := cookiejar.New(nil)
	c := &client{e: e, name: name, http: &http.Client{Jar: jar}}
	if r := c.do("POST", "/api/auth/login", map[string]string{"username": name, "password": "pw-" + name}); r.status != 200 {
		e.t.Fatalf("login %s: %d %s", name, r.status, r.raw)
	}
	e.users[name] = c
	return c
}

type reply struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

// do sends body as JSON (a string is sent as it is).
func (c *client) do(method, path string, body any) reply {
	c.e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = strings.NewReader(string(b))
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.e.t.Fatal(err)
		}
		rd = strings.NewReader(string(j))
	}
	req, err := http.NewRequest(method, c.e.srv.URL+path, rd)
	if err != nil {
		c.e.t.Fatal(err)
	}
	if rd != nil && !strings.HasPrefix(path, "/api/files/content") {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
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
