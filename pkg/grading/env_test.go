package grading

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/course"
	"github.com/pythonide/pyide/pkg/sandbox"
	"github.com/pythonide/pyide/pkg/sandbox/sandboxtest"
	"github.com/pythonide/pyide/pkg/server"
	"github.com/pythonide/pyide/pkg/servertest"
	"github.com/pythonide/pyide/pkg/store"
	"github.com/pythonide/pyide/pkg/store/storetest"
	"github.com/pythonide/pyide/pkg/workspace"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// Named waits: generous, since CI runs every package at once on 2 cores.
const (
	waitLong = 3 * time.Minute
)

// t0 is the start of every scenario.
var t0 = time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC)

type env struct {
	*servertest.Server
	t     testing.TB
	db    *store.DB
	clock *servertest.Clock
	crs   *course.Service
	svc   *Service
	ws    *workspace.Workspace
	dir   string
	users map[string]*servertest.Client
	// With Docker: the manager, and the check and grading containers.
	m            *sandbox.Manager
	check, grade *sandbox.Batches
}

// batches adapts sandbox.Batches to Runner, as cmd/pyide does.
type batches struct{ b *sandbox.Batches }

func (r batches) Run(ctx context.Context, input []byte, maxOutput int, timeout time.Duration) (RunResult, error) {
	res, err := r.b.Run(ctx, input, maxOutput, timeout)
	if errors.Is(err, sandbox.ErrUnavailable) {
		err = ErrUnavailable
	}
	return RunResult{Stdout: res.Stdout, Truncated: res.Truncated, Stderr: res.Stderr, ExitCode: res.ExitCode,
		OOM: res.OOM, TimedOut: res.TimedOut}, err
}

// newEnv is a real server (auth, files, course and grading) on a fresh
// database and data folder, with prof, and students alice and bob. With
// docker, grading runs in real containers of the sandbox image; without,
// it is unavailable.
func newEnv(t testing.TB, docker bool) *env {
	t.Helper()
	db := storetest.New(t)
	dir := t.TempDir()
	t.Cleanup(func() {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(p, 0o755)
			}
			return nil
		})
	})
	ck := servertest.NewClock(t0)
	st, err := course.NewState(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := workspace.New(workspace.Options{DataPath: dir, DB: db, Logger: servertest.Quiet(), Clock: ck.Now, Course: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	e := &env{t: t, db: db, clock: ck, ws: ws, dir: dir, users: map[string]*servertest.Client{}}
	e.crs, err = course.New(context.Background(), course.Options{DB: db, State: st, Files: ws, DataPath: dir,
		Logger: servertest.Quiet(), Clock: ck.Now, OnSubmit: func(sub store.Submission) { e.svc.Submitted(sub) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.crs.Close() })
	opts := Options{DB: db, Course: e.crs, Policy: st, Files: ws, Logger: servertest.Quiet(), Clock: ck.Now,
		TestSeconds: 3, Concurrency: 2}
	if docker {
		m := sandboxtest.NewManager(t, sandbox.Options{MountRoot: dir, SpareEnabled: true, MaxConcurrent: 150})
		e.m = m
		mk := func(name string, warm int) *sandbox.Batches {
			b, err := m.NewBatches(sandbox.BatchOptions{Name: name, Cmd: []string{"python3", "/opt/pyide/grader.py"},
				Env: []string{"PYIDE_GRADER=1"}, MemoryMB: 256, Warm: warm})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(b.Close)
			return b
		}
		e.check, e.grade = mk("check", 1), mk("grader", 2)
		opts.Check, opts.Grade = batches{e.check}, batches{e.grade}
		opts.Busy = func() bool { return m.Stats().Queued > 0 }
	}
	e.svc, err = New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.svc.Close)
	e.Server = servertest.New(t, servertest.Options{DB: db,
		Auth: func(o *auth.Options) { o.MaxFailures = 100 },
		HTTP: func(_ *servertest.Server, o *server.Options) { o.Routes = []server.Routes{ws, e.crs, e.svc} }})
	for _, u := range []struct{ name, role string }{
		{"prof", auth.RoleProfessor}, {"tina", auth.RoleTA}, {"alice", auth.RoleStudent}, {"bob", auth.RoleStudent},
	} {
		e.AddUser(store.User{Username: u.name, DisplayName: strings.ToUpper(u.name[:1]) + u.name[1:], Role: u.role}, "pw-"+u.name)
		if err := ws.EnsureUserDirs(u.name); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *env) as(name string) *servertest.Client {
	e.t.Helper()
	if c, ok := e.users[name]; ok {
		return c
	}
	c := e.Login(name, "pw-"+name)
	e.users[name] = c
	return c
}

// do sends body (marshalled to JSON unless a string) as name.
func (e *env) do(name, method, path string, body any) servertest.Reply {
	e.t.Helper()
	s, ok := body.(string)
	if !ok && body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		s = string(b)
	}
	var hdr []string
	if strings.HasPrefix(path, "/api/files/content") {
		hdr = []string{"Content-Type", ""}
	}
	return e.as(name).Do(method, path, s, hdr...)
}

func (e *env) must(r servertest.Reply, want int) servertest.Reply {
	e.t.Helper()
	if r.Status != want {
		e.t.Fatalf("status %d, want %d: %s", r.Status, want, r.Raw)
	}
	return r
}

// write saves files through the file API as name.
func (e *env) write(name string, files map[string]string) {
	e.t.Helper()
	for p, content := range files {
		dir := path.Dir(p)
		for _, d := range []string{path.Dir(dir), dir} {
			if strings.Count(d, "/") >= 2 {
				_ = e.do(name, "POST", "/api/files", map[string]any{"path": d, "type": "dir"})
			}
		}
		e.must(e.do(name, "PUT", "/api/files/content?path="+url.QueryEscape(p), content), 200)
	}
}

// assignment creates a published assignment due in a week.
func (e *env) assignment(slug string) {
	e.t.Helper()
	e.must(e.do("prof", "POST", "/api/course/assignments", map[string]any{"slug": slug, "title": "Homework " + slug,
		"publish_at": t0.Add(-time.Hour).Format(time.RFC3339), "due_at": t0.Add(7 * 24 * time.Hour).Format(time.RFC3339)}), 201)
}

// addTest creates a test of slug as prof and returns its id.
func (e *env) addTest(slug string, in map[string]any) int64 {
	e.t.Helper()
	r := e.must(e.do("prof", "POST", "/api/course/items/"+slug+"/grading/tests", in), 201)
	return int64(r.Body["test"].(map[string]any)["id"].(float64))
}

// decode turns a reply's field into v.
func decode[T any](t testing.TB, r servertest.Reply, key string) T {
	t.Helper()
	var out T
	b, _ := json.Marshal(r.Body[key])
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: %v in %s", key, err, r.Raw)
	}
	return out
}

// byName is the results of a check or run by test name.
func byName(tests []TestResult) map[string]TestResult {
	out := map[string]TestResult{}
	for _, t := range tests {
		out[t.Name] = t
	}
	return out
}

// waitRun waits until user's latest submission of slug has a run with at
// least n runs in all, and returns the staff's view of the result.
func (e *env) waitRun(slug, user string, runs int) Result {
	e.t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		r := e.must(e.do("prof", "GET", "/api/course/items/"+slug+"/grading/results/"+user, nil), 200)
		res := decode[Result](e.t, r, "result")
		if res.Run != nil && len(res.Runs) >= runs && !res.Pending {
			return res
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no grading run for %s/%s: %s", slug, user, r.Raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
