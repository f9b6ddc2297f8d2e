package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pythonide/pyide/pkg/sandbox/sandboxtest"
	"github.com/pythonide/pyide/pkg/servertest"
)

// What a failing engine may cost the rest of the server: nothing it waits
// for is held under a lock, so sockets open and /metrics answers at once.
const (
	stallBound = time.Second // a socket open or a scrape beside a hung engine
	probeLimit = 90 * time.Second
)

// engineMode is how the fake engine answers.
type engineMode int32

const (
	engineForward   engineMode = iota // the real engine answers
	engineHang                        // every request waits until the caller gives up
	engineSick                        // creates fail at once; everything else hangs
	engineNoCreates                   // creates fail at once; everything else is answered
)

// fakeEngine is a Docker endpoint on a unix socket whose behaviour a test
// switches: the boundary we cannot make fail on demand otherwise.
type fakeEngine struct{ mode atomic.Int32 }

func (e *fakeEngine) set(m engineMode) { e.mode.Store(int32(m)) }

func startFakeEngine(t *testing.T, path string, mode engineMode) *fakeEngine {
	t.Helper()
	e := &fakeEngine{}
	e.set(mode)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.Out.URL.Scheme, r.Out.URL.Host = "http", "docker" },
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", "/var/run/docker.sock")
		}},
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch engineMode(e.mode.Load()) {
		case engineForward:
			proxy.ServeHTTP(w, r)
			return
		case engineSick, engineNoCreates:
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/containers/create") {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = w.Write([]byte(`{"message":"the engine is sick"}`))
				return
			}
			if engineMode(e.mode.Load()) == engineNoCreates {
				proxy.ServeHTTP(w, r)
				return
			}
		}
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { close(stop); _ = srv.Close() })
	return e
}

// openSocket opens a console, sends msg and waits for the error event that
// answers it: the socket is registered and read from, not merely upgraded.
func openSocket(s *served, client *http.Client, tab string, msg map[string]string) (time.Duration, error) {
	began := time.Now()
	d := websocket.Dialer{Jar: client.Jar, HandshakeTimeout: probeLimit}
	conn, _, err := d.Dial(strings.Replace(s.base, "http", "ws", 1)+"/api/ws?tab="+tab, http.Header{"Origin": {s.base}})
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if err := conn.WriteJSON(msg); err != nil {
		return 0, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(probeLimit))
	for {
		kind, msg, err := conn.ReadMessage()
		if err != nil {
			return 0, err
		}
		var ev wsEvent
		if kind == websocket.TextMessage && json.Unmarshal(msg, &ev) == nil && ev.Type == "error" {
			return time.Since(began), nil
		}
	}
}

// scrape reads /metrics once.
func scrape(s *served) (time.Duration, error) {
	began := time.Now()
	c := &http.Client{Timeout: probeLimit}
	resp, err := c.Get(s.base + "/metrics")
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("/metrics: %d", resp.StatusCode)
	}
	return time.Since(began), nil
}

// probe opens sockets and scrapes /metrics, one after another in two
// lines, for the window, and returns the slowest of each. With runPath it
// also runs that file every two seconds, in a third line, and returns the
// slowest answer.
func probe(t *testing.T, s *served, client *http.Client, window time.Duration, runPath string) (socket, metrics, run time.Duration) {
	t.Helper()
	end := time.Now().Add(window)
	var wg sync.WaitGroup
	var mu sync.Mutex
	record := func(slowest *time.Duration, d time.Duration, err error) bool {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			t.Errorf("probe: %v", err)
			return false
		}
		*slowest = max(*slowest, d)
		return true
	}
	wg.Go(func() {
		for i := 0; time.Now().Before(end); i++ {
			d, err := openSocket(s, client, fmt.Sprintf("probe%d", i), map[string]string{"type": "stdin", "data": "x"})
			if !record(&socket, d, err) {
				return
			}
		}
	})
	if runPath != "" {
		wg.Go(func() {
			for i := 0; time.Now().Before(end); i++ {
				d, err := openSocket(s, client, fmt.Sprintf("run%d", i), map[string]string{"type": "run", "path": runPath})
				if !record(&run, d, err) {
					return
				}
				time.Sleep(2 * time.Second) // a student's pace, within the run rate limit
			}
		})
	}
	wg.Go(func() {
		for time.Now().Before(end) {
			d, err := scrape(s)
			if !record(&metrics, d, err) {
				return
			}
		}
	})
	wg.Wait()
	return socket, metrics, run
}

// TestHungEngineAtStart: an engine that accepts and never answers, from
// the start. The server starts anyway, Run says plainly that execution is
// unavailable, and while it keeps trying to reach the engine, sockets open
// and /metrics answers within a second.
func TestHungEngineAtStart(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "docker.sock")
	eng := startFakeEngine(t, sock, engineHang)
	began := time.Now()
	s := startServe(t, map[string]string{"DATABASE_URL": "", "DOCKER_HOST": "unix://" + sock})
	// The checks after serve stopped ask the engine (DOCKER_HOST) too.
	t.Cleanup(func() { eng.set(engineForward) })
	t.Logf("serve started in %v beside a hung engine", time.Since(began).Round(time.Millisecond))
	client := s.login(t)
	began = time.Now()
	events, _ := runOverWS(t, s, client, "Local/admin/hello.py", "print('hello')\n")
	took := time.Since(began)
	if last := events[len(events)-1]; last.Type != "error" || !strings.Contains(last.Message, "execution is unavailable") {
		t.Errorf("run beside a hung engine: %+v", events)
	}
	t.Logf("run answered in %v", took.Round(time.Millisecond))
	// A retry of the engine is under way (or starts) during the window.
	socket, metrics, run := probe(t, s, client, 12*time.Second, "Local/admin/hello.py")
	t.Logf("slowest socket open %v, slowest /metrics %v, slowest run answer %v", socket.Round(time.Millisecond), metrics.Round(time.Millisecond), run.Round(time.Millisecond))
	if socket > stallBound || metrics > stallBound || max(took, run) > stallBound {
		t.Errorf("a hung engine stalled the server: socket open %v, /metrics %v, run %v; want each within %v", socket, metrics, max(took, run), stallBound)
	}
}

// TestSickEngineAfterConnect: the engine answered at start, then fails
// every create and hangs on everything else. A Run fails with words
// saying execution is unavailable, and meanwhile sockets open and
// /metrics answers within a second.
func TestSickEngineAfterConnect(t *testing.T) {
	sandboxtest.RequireDocker(t)
	sock := filepath.Join(t.TempDir(), "docker.sock")
	eng := startFakeEngine(t, sock, engineForward)
	s := startServe(t, map[string]string{"DATABASE_URL": "", "DOCKER_HOST": "unix://" + sock, "SANDBOX_IMAGE": sandboxtest.Image()})
	// Shutdown removes this server's containers, and the checks after it
	// look for them: let them reach the engine, but no spare asked for by
	// a probe just before be created now, as shutdown begins.
	t.Cleanup(func() { eng.set(engineNoCreates) })
	client := s.login(t)
	servertest.Eventually(t, 45*time.Second, "the engine seen as up", func() bool {
		_, body := get(t, http.DefaultClient, s.base+"/readyz")
		return strings.Contains(body, `"docker":{"status":"ok"`)
	})
	eng.set(engineSick)
	var socket, metrics time.Duration
	probed := make(chan struct{})
	go func() {
		defer close(probed)
		socket, metrics, _ = probe(t, s, client, 8*time.Second, "")
	}()
	began := time.Now()
	events, _ := runOverWS(t, s, client, "Local/admin/hello.py", "print('hello')\n")
	t.Logf("the run was answered in %v", time.Since(began).Round(time.Millisecond))
	if last := events[len(events)-1]; last.Type != "error" || !strings.Contains(last.Message, "execution is unavailable") {
		t.Errorf("run on a sick engine: %+v", events)
	}
	<-probed
	t.Logf("slowest socket open %v, slowest /metrics %v", socket.Round(time.Millisecond), metrics.Round(time.Millisecond))
	if socket > stallBound || metrics > stallBound {
		t.Errorf("a sick engine stalled the server: socket open %v, /metrics %v; want each within %v", socket, metrics, stallBound)
	}
}
