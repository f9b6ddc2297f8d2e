package sandbox_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/pythonide/pyide/pkg/sandbox"
	"github.com/pythonide/pyide/pkg/sandbox/sandboxtest"
)

// Named bounds: generous, because CI runs every package at once on 2 cores.
const (
	waitShort = 20 * time.Second
	waitLong  = 60 * time.Second
	// waitCPU bounds tests that must burn CPU time before a limit fires:
	// on a loaded 2-core machine a capped container gets a small share.
	waitCPU = 3 * time.Minute
)

// tty collects a session's output in the background.
type tty struct {
	s     *sandbox.Session
	mu    sync.Mutex
	buf   []byte
	total int64
	eof   chan struct{}
}

const ttyKeep = 1 << 20

func attach(t testing.TB, s *sandbox.Session) *tty {
	c := &tty{s: s, eof: make(chan struct{})}
	go func() {
		defer close(c.eof)
		p := make([]byte, 32<<10)
		for {
			n, err := s.Read(p)
			c.mu.Lock()
			c.total += int64(n)
			c.buf = append(c.buf, p[:n]...)
			if len(c.buf) > ttyKeep { // keep the tail: floods must not grow the test either
				c.buf = append(c.buf[:0], c.buf[len(c.buf)-ttyKeep/2:]...)
			}
			c.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return c
}

func (c *tty) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.buf)
}

func (c *tty) Total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// waitFor polls the output until it contains want.
func (c *tty) waitFor(t testing.TB, want string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if strings.Contains(c.String(), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in output within %v; output:\n%s", want, d, tail(c.String()))
		}
		select {
		case <-c.eof:
			if !strings.Contains(c.String(), want) {
				t.Fatalf("stream ended without %q; output:\n%s", want, tail(c.String()))
			}
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func tail(s string) string {
	if len(s) > 2000 {
		return "…" + s[len(s)-2000:]
	}
	return s
}

func (c *tty) send(t testing.TB, line string) {
	t.Helper()
	if _, err := c.s.Write([]byte(line + "\n")); err != nil {
		t.Fatalf("write %q: %v", line, err)
	}
}

// roundTrip evaluates expr at the REPL and waits for its printed value.
func (c *tty) roundTrip(t testing.TB, expr, want string) {
	t.Helper()
	c.send(t, expr)
	c.waitFor(t, want, waitShort)
}

func waitExit(t testing.TB, s *sandbox.Session, d time.Duration) sandbox.Exit {
	t.Helper()
	select {
	case <-s.Done():
		return s.Exit()
	case <-time.After(d):
		t.Fatalf("session %s did not end within %v", s.ID(), d)
		return sandbox.Exit{}
	}
}

func homeSpec(t testing.TB, user, dir, file string) sandbox.Spec {
	return sandbox.Spec{
		User: user, Role: "student", Key: "tab1", File: file,
		Mounts: []sandbox.Mount{sandboxtest.Bind(t, dir, "/home/student", false)},
	}
}

func start(t testing.TB, m *sandbox.Manager, spec sandbox.Spec) (*sandbox.Session, *tty) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	s, err := m.Start(ctx, spec, nil)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Stop(sandbox.ReasonStopped); <-s.Done() })
	return s, attach(t, s)
}

// startScript runs code as main.py in a fresh workspace of user.
func startScript(t testing.TB, m *sandbox.Manager, user, code string) (*sandbox.Session, *tty, string) {
	t.Helper()
	dir := sandboxtest.Workspace(t, map[string]string{"main.py": code})
	s, c := start(t, m, homeSpec(t, user, dir, "/home/student/main.py"))
	return s, c, dir
}

// bystander is a second student's REPL that must keep answering while an
// attack runs next to it.
func bystander(t testing.TB, m *sandbox.Manager) *tty {
	t.Helper()
	dir := sandboxtest.Workspace(t, nil)
	_, c := start(t, m, homeSpec(t, "bystander", dir, ""))
	c.waitFor(t, ">>> ", waitShort)
	return c
}

func (c *tty) alive(t testing.TB) {
	t.Helper()
	c.roundTrip(t, "print(6*7, 'alive')", "42 alive")
}

// eventually polls cond until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		<-tick.C
	}
}

func countSpares(t testing.TB, m *sandbox.Manager, user string) int {
	t.Helper()
	infos, err := m.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	n := 0
	for _, in := range infos {
		if in.Owned && in.Spare && in.User == user {
			n++
		}
	}
	return n
}

// containersOf lists every container (managed or not) labelled with server.
func containersOf(t testing.TB, m *sandbox.Manager, server string) []container.Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	res, err := sandboxtest.RequireDocker(t).ContainerList(ctx, client.ContainerListOptions{
		All: true, Filters: make(client.Filters).Add("label", sandbox.LabelServer+"="+server),
	})
	if err != nil {
		t.Fatalf("ContainerList: %v", err)
	}
	return res.Items
}

func assertGone(t testing.TB, m *sandbox.Manager, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	_, err := sandboxtest.RequireDocker(t).ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if !cerrdefs.IsNotFound(err) {
		t.Errorf("container %s still exists (inspect err %v)", name, err)
	}
}

// gatedClient is an engine client whose container creates for user wait
// until open is called: a test can hold a launch at the engine for as long
// as it needs, whatever the machine's load.
func gatedClient(t *testing.T, user string) (cli *client.Client, open func()) {
	t.Helper()
	sandboxtest.RequireDocker(t)
	host := client.DefaultDockerHost
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		host = h
	}
	sock, ok := strings.CutPrefix(host, "unix://")
	if !ok {
		t.Skipf("skipping: gated client needs a unix socket engine, not %s", host)
	}
	gate := make(chan struct{})
	var once sync.Once
	inner := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	hold := func(r *http.Request) bool {
		return strings.HasSuffix(r.URL.Path, "/containers/create") && strings.HasPrefix(r.URL.Query().Get("name"), "pyide-"+user+"-")
	}
	rt := roundTripper(func(r *http.Request) (*http.Response, error) {
		if hold(r) {
			select {
			case <-gate:
			case <-r.Context().Done():
				return nil, r.Context().Err()
			}
		}
		return inner.RoundTrip(r)
	})
	cli, err := client.New(client.WithHost(host), client.WithHTTPClient(&http.Client{Transport: rt}))
	if err != nil {
		t.Fatal(err)
	}
	open = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(func() { open(); _ = cli.Close() })
	return cli, open
}

// sickClient is an engine client that works until sick is called; then
// every create fails at once, and with pingFails so does every ping (an
// engine gone), otherwise pings still answer.
func sickClient(t *testing.T, pingFails bool) (cli *client.Client, sick func()) {
	t.Helper()
	sandboxtest.RequireDocker(t)
	host := client.DefaultDockerHost
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		host = h
	}
	sock, ok := strings.CutPrefix(host, "unix://")
	if !ok {
		t.Skipf("skipping: the sick client needs a unix socket engine, not %s", host)
	}
	var ill atomic.Bool
	inner := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	rt := roundTripper(func(r *http.Request) (*http.Response, error) {
		if ill.Load() && (strings.HasSuffix(r.URL.Path, "/containers/create") || pingFails && strings.HasSuffix(r.URL.Path, "/_ping")) {
			return nil, errors.New("the engine is sick")
		}
		return inner.RoundTrip(r)
	})
	cli, err := client.New(client.WithHost(host), client.WithHTTPClient(&http.Client{Transport: rt}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ill.Store(false); _ = cli.Close() })
	return cli, func() { ill.Store(true) }
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// memoryExit reports whether ex is how the memory limit ends a program.
// Under gVisor, Docker does not always record the OOM kill (2 of 8 killed
// at once here, deploy/README.md): the sandbox still ends with SIGKILL, and
// the server can only call that an error.
func memoryExit(ex sandbox.Exit) bool {
	return ex.Reason == sandbox.ReasonMemory ||
		sandboxtest.Runtime() == "runsc" && ex.Reason == sandbox.ReasonError && ex.Code == 128+9
}
