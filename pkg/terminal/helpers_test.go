package terminal_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v5"
	"github.com/moby/moby/client"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/sandbox"
	"github.com/pythonide/pyide/pkg/sandbox/sandboxtest"
	"github.com/pythonide/pyide/pkg/server"
	"github.com/pythonide/pyide/pkg/store"
	"github.com/pythonide/pyide/pkg/store/storetest"
	"github.com/pythonide/pyide/pkg/terminal"
	"github.com/pythonide/pyide/pkg/terminal/terminaltest"
	"github.com/pythonide/pyide/pkg/workspace"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// Named bounds: generous, because CI runs every package at once on 2 cores.
const (
	waitShort = 30 * time.Second
	waitLong  = 90 * time.Second
)

var hasher = auth.NewHasher(4, 4)

// Passwords of the test users.
var passwords = map[string]string{"alice": "alice password", "bob": "bob password", "prof": "prof password"}

type envOptions struct {
	docker  bool // a real sandbox manager (the test skips without Docker)
	sandbox sandbox.Options
	// sandboxes, when set (and docker is not), runs the programs: a fake
	// at the terminal's seam.
	sandboxes terminal.Sandboxes
	hub       terminal.Options // Auth, Sandboxes and Files are filled in
	files     map[string]string
	idle      time.Duration // the login idle limit; default an hour
	course    workspace.CourseState
	quota     int64 // a student's disk quota, enforced from inside sandboxes too; 0: the default, not watched
}

type env struct {
	t    testing.TB
	db   *store.DB
	auth *auth.Service
	ws   *workspace.Workspace
	data string
	mgr  *sandbox.Manager
	cli  *client.Client
	hub  *terminal.Hub
	srv  *httptest.Server
}

// newEnv builds a real server: PostgreSQL, auth, workspace, and, when asked,
// the real sandbox manager on the real image.
func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	e := &env{t: t}
	if o.docker {
		e.cli = sandboxtest.RequireDocker(t)
	}
	e.db = storetest.New(t)
	if o.idle == 0 {
		o.idle = time.Hour
	}
	e.auth = auth.New(auth.Options{
		DB: e.db, Hasher: hasher, IdleTimeout: o.idle, AbsoluteTimeout: 8 * time.Hour,
		MaxFailures: 100, Window: time.Minute,
	})
	e.data = t.TempDir()
	var err error
	e.ws, err = workspace.New(workspace.Options{DataPath: e.data, DB: e.db, Logger: quietLogger(), Course: o.course,
		QuotaBytes: o.quota, MaxFileBytes: min(o.quota, workspace.DefaultMaxFileBytes)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.ws.Close() })
	for _, name := range []string{"alice", "bob", "prof"} {
		role := auth.RoleStudent
		if name == "prof" {
			role = auth.RoleProfessor
		}
		h, err := hasher.Hash(context.Background(), passwords[name])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.CreateUser(context.Background(), store.User{Username: name, Role: role, PasswordHash: h}); err != nil {
			t.Fatal(err)
		}
		if err := e.ws.EnsureUserDirs(name); err != nil {
			t.Fatal(err)
		}
	}
	for p, body := range o.files {
		e.writeFile(p, body)
	}
	opts := o.hub
	opts.Auth = e.auth
	opts.Files = terminal.WorkspaceFiles{W: e.ws}
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	if o.docker {
		if o.quota > 0 {
			o.sandbox.OverQuota = func(spec sandbox.Spec) bool {
				return e.ws.OverQuota(context.Background(), auth.User{Username: spec.User, Role: spec.Role})
			}
		}
		e.mgr = sandboxtest.NewManager(t, o.sandbox)
		opts.Sandboxes = managed{e.mgr}
	} else if o.sandboxes != nil {
		opts.Sandboxes = o.sandboxes
	}
	e.hub = terminal.New(opts)
	srv := server.New(server.Options{
		Auth: e.auth, Logger: quietLogger(), MaxBodyBytes: 1 << 20,
		Raw:    map[string]echo.HandlerFunc{"/ws": e.hub.Handler()},
		Routes: []server.Routes{e.ws, e.hub},
	})
	e.srv = httptest.NewServer(srv.Handler())
	t.Cleanup(e.srv.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		if err := e.hub.Close(ctx); err != nil {
			t.Errorf("hub.Close: %v", err)
		}
	})
	return e
}

// managed is the real manager at the terminal's seam, as cmd/pyide wires
// it while the engine answers.
type managed struct{ *sandbox.Manager }

func (m managed) Start(ctx context.Context, spec sandbox.Spec, onQueue func(int)) (terminal.Session, error) {
	s, err := m.Manager.Start(ctx, spec, onQueue)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (managed) Available() error { return nil }

// quietLogger logs only when PYIDE_TEST_LOG is set.
func quietLogger() *slog.Logger {
	if os.Getenv("PYIDE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// writeFile puts a file in the tree (a tree path such as Local/alice/a.py),
// owned by the sandbox user.
func (e *env) writeFile(treePath, body string) {
	e.t.Helper()
	p := filepath.Join(e.data, filepath.FromSlash(treePath))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := sandboxtest.GiveToSandbox(p); err != nil {
		e.t.Fatal(err)
	}
}

// request calls the HTTP API as the browser would and returns the status.
func (e *env) request(ck *http.Cookie, method, path string) int {
	return e.send(ck, method, path, nil)
}

// put saves a file through the file API.
func (e *env) put(ck *http.Cookie, treePath, body string) int {
	return e.send(ck, http.MethodPut, "/api/files/content?path="+url.QueryEscape(treePath), strings.NewReader(body))
}

func (e *env) send(ck *http.Cookie, method, path string, body io.Reader) int {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, body)
	req.AddCookie(ck)
	req.Header.Set("Origin", e.srv.URL)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// login returns the session cookie of user.
func (e *env) login(user string) *http.Cookie {
	e.t.Helper()
	b, _ := json.Marshal(map[string]string{"username": user, "password": passwords[user]})
	resp, err := http.Post(e.srv.URL+"/api/auth/login", "application/json", bytes.NewReader(b))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		e.t.Fatalf("login %s: %d %s", user, resp.StatusCode, body)
	}
	for _, c := range resp.Cookies() {
		if c.Name == auth.CookieName {
			return c
		}
	}
	e.t.Fatal("login set no session cookie")
	return nil
}

func (e *env) logout(ck *http.Cookie) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/api/auth/logout", nil)
	req.AddCookie(ck)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		e.t.Fatalf("logout: %d", resp.StatusCode)
	}
}

func (e *env) wsURL(tab string) string {
	u := "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/api/ws"
	if tab != "" {
		u += "?tab=" + tab
	}
	return u
}

// dialRaw opens /api/ws with the given cookie (nil: none) and Origin ("":
// none), returning the handshake's status.
func (e *env) dialRaw(ck *http.Cookie, origin, tab string) (*websocket.Conn, int, error) {
	h := http.Header{}
	if ck != nil {
		h.Set("Cookie", ck.String())
	}
	if origin != "" {
		h.Set("Origin", origin)
	}
	d := websocket.Dialer{HandshakeTimeout: waitShort}
	ws, resp, err := d.Dial(e.wsURL(tab), h)
	status := 0
	if resp != nil {
		status = resp.StatusCode
		resp.Body.Close()
	}
	return ws, status, err
}

// dial connects as user from the server's own origin, like the browser.
func (e *env) dial(ck *http.Cookie, tab string) *wsClient {
	e.t.Helper()
	ws, status, err := e.dialRaw(ck, e.srv.URL, tab)
	if err != nil {
		e.t.Fatalf("dial: %v (status %d)", err, status)
	}
	cl := terminaltest.New(ws, terminaltest.Options{})
	e.t.Cleanup(func() { _ = ws.Close() })
	return &wsClient{Client: cl, t: e.t, ws: ws, closed: cl.Done()}
}

// containers lists the managed containers of this test's server with the
// given label value (e.g. pyide.session=<id>).
func (e *env) containers(label, value string) []string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	f := make(client.Filters).Add("label", sandbox.LabelServer+"="+e.mgr.Options().ServerID).Add("label", label+"="+value)
	res, err := e.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		e.t.Fatalf("listing containers: %v", err)
	}
	var names []string
	for _, c := range res.Items {
		names = append(names, strings.Join(c.Names, ","))
	}
	return names
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not a wait for the condition
	}
}

// wsClient is the browser (terminaltest's client) with the test's own
// ways to fail.
type wsClient struct {
	*terminaltest.Client
	t      testing.TB
	ws     *websocket.Conn
	closed <-chan struct{}
}

// trySend is send for goroutines other than the test's own.
func (c *wsClient) trySend(v any) error { return c.Send(v) }

// wait runs check under the client's lock whenever something arrives,
// until it reports done or d passes.
func (c *wsClient) wait(d time.Duration, what string, check func(v *terminaltest.View) bool) {
	c.t.Helper()
	if err := c.tryWait(d, what, check); err != nil {
		c.t.Fatalf("%v; output:\n%s\nevents: %v", err, c.Output(), c.Events())
	}
}

// tryWait is wait for goroutines other than the test's own.
func (c *wsClient) tryWait(d time.Duration, what string, check func(v *terminaltest.View) bool) error {
	if err := c.Wait(context.Background(), d, check); err != nil {
		return fmt.Errorf("waiting for %s: %w", what, err)
	}
	return nil
}

// waitOutput waits for s in the output not yet consumed and consumes up to
// its end.
func (c *wsClient) waitOutput(s string, d time.Duration) {
	c.t.Helper()
	c.wait(d, fmt.Sprintf("output %q", s), c.consume(s))
}

func (c *wsClient) consume(s string) func(v *terminaltest.View) bool {
	return func(v *terminaltest.View) bool { return v.Consume(s) }
}

// waitEvent waits for the next event of the given type (skipping others)
// and consumes it.
func (c *wsClient) waitEvent(typ string, d time.Duration) terminaltest.Event {
	c.t.Helper()
	var got terminaltest.Event
	c.wait(d, "event "+typ, func(v *terminaltest.View) bool {
		ev, ok := v.Next(typ)
		got = ev
		return ok
	})
	return got
}

// waitClosed waits for the server to close the connection and returns the
// close error.
func (c *wsClient) waitClosed(d time.Duration) error {
	c.t.Helper()
	select {
	case <-c.closed:
	case <-time.After(d):
		c.t.Fatalf("the connection was not closed within %s", d)
	}
	return c.Err()
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	if err := c.Send(v); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

func (c *wsClient) run(path string) { c.check(c.Run(path)) }
func (c *wsClient) stdin(s string)  { c.check(c.Stdin(s)) }

func (c *wsClient) check(err error) {
	c.t.Helper()
	if err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// started waits for the started event and returns the session id.
func (c *wsClient) started(path string) string {
	c.t.Helper()
	ev := c.waitEvent("started", waitLong)
	if ev["path"] != path {
		c.t.Errorf("started path = %v, want %q", ev["path"], path)
	}
	id, _ := ev["session"].(string)
	if id == "" {
		c.t.Fatalf("started without a session id: %v", ev)
	}
	return id
}

// roundTrip types a line at the prompt and waits for want.
func (c *wsClient) roundTrip(line, want string) {
	c.t.Helper()
	c.stdin(line + "\r")
	c.waitOutput(want, waitShort)
}

func closeCode(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}
