package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// class is what all students share: the server, the recorders, the clock.
type class struct {
	base   *url.URL
	origin string
	hc     *http.Transport
	start  time.Time // logins begin
	rec    *recorder
	think  thinkRange
}

// student is one simulated browser tab: an HTTP session and one WebSocket.
type student struct {
	c    *class
	acct account
	rng  *rand.Rand
	http *http.Client
	ws   *websocket.Conn
	st   *wsState

	connected   time.Time // socket open: the server starts warming a spare
	lastStarted time.Time // the last started event: the spare was just taken
	repl        bool      // a REPL is at its prompt
	saves       int
}

func newStudent(c *class, a account, seed uint64) *student {
	jar, _ := cookiejar.New(nil)
	return &student{
		c: c, acct: a,
		rng:  rand.New(rand.NewPCG(seed, uint64(len(a.username)))),
		http: &http.Client{Transport: c.hc, Jar: jar, Timeout: 60 * time.Second},
	}
}

func (s *student) path(name string) string { return "Local/" + s.acct.username + "/" + name }

// request sends one API call with the browser's Origin and returns the
// status; a transport failure is an error.
func (s *student) request(ctx context.Context, method, path string, body []byte, ctype string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.c.base.String()+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Origin", s.c.origin)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, b, nil
}

func (s *student) login(ctx context.Context) error {
	body, _ := json.Marshal(map[string]string{"username": s.acct.username, "password": s.acct.password})
	t0 := time.Now()
	code, b, err := s.request(ctx, http.MethodPost, "/api/auth/login", body, "application/json")
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("login %s: %d %s", s.acct.username, code, bytes.TrimSpace(b))
	}
	s.c.rec.login.add(time.Since(t0))
	return nil
}

func (s *student) logout(ctx context.Context) {
	_, _, _ = s.request(ctx, http.MethodPost, "/api/auth/logout", nil, "")
}

// save writes a file as the editor does and records the latency.
func (s *student) save(ctx context.Context, name string, content []byte) bool {
	t0 := time.Now()
	code, b, err := s.request(ctx, http.MethodPut, "/api/files/content?path="+url.QueryEscape(s.path(name)), content, "application/octet-stream")
	d := time.Since(t0)
	switch {
	case err != nil:
		s.c.rec.fail("save_transport", err.Error())
		return false
	case code != http.StatusOK && code != http.StatusCreated:
		s.c.rec.fail(fmt.Sprintf("save_http_%d", code), string(bytes.TrimSpace(b)))
		return false
	}
	s.c.rec.save.add(d)
	s.saves++
	return true
}

// connect opens the IDE's WebSocket; the reader runs until it closes.
func (s *student) connect(ctx context.Context) error {
	u := *s.c.base
	u.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
	u.Path = "/api/ws"
	u.RawQuery = url.Values{"tab": {"load-" + s.acct.username}}.Encode()
	d := websocket.Dialer{Jar: s.http.Jar, HandshakeTimeout: 60 * time.Second, ReadBufferSize: 16 << 10, WriteBufferSize: 4 << 10}
	ws, resp, err := d.DialContext(ctx, u.String(), http.Header{"Origin": {s.c.origin}})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return err
	}
	s.ws = ws
	s.st = newWSState()
	s.connected = time.Now()
	go s.st.read(ws)
	return s.send(map[string]any{"type": "resize", "cols": 100, "rows": 30})
}

func (s *student) send(v any) error {
	b, _ := json.Marshal(v)
	_ = s.ws.SetWriteDeadline(time.Now().Add(30 * time.Second))
	return s.ws.WriteMessage(websocket.TextMessage, b)
}

// close says goodbye as a browser closing the tab does.
func (s *student) close() {
	if s.ws == nil {
		return
	}
	s.st.closing.Store(true)
	_ = s.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(5*time.Second))
	select {
	case <-s.st.ended:
	case <-time.After(5 * time.Second):
	}
	_ = s.ws.Close()
}

// think waits like a student reading or typing; false when class is over.
func (s *student) think(ctx context.Context, lo, hi time.Duration) bool {
	d := lo + time.Duration(s.rng.Int64N(int64(hi-lo)+1))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Programs the students run.
const (
	progHello = "# %d\nname = %q\nprint('hello from', name)\nsquares = [i * i for i in range(10)]\n"
	progLoop  = "import time\nprint('working...', flush=True)\nt = time.time()\nwhile time.time() - t < 2.5:\n    pass\nprint('done')\n"
	progPrint = "for i in range(20000):\n    print(i, 'x' * 60)\nprint('done')\n"
	progBomb  = "print('allocating', flush=True)\nx = bytearray(1 << 30)\nprint('survived')\n"
	progFlood = "while True:\n    print('x' * 100)\n"
)

// replLines are what a student types at the prompt; each is valid with or
// without the file's names (a NameError is fine too: the prompt returns).
var replLines = []string{
	"1 + 1", "x = 6 * 7", "print('hi')", "sum(range(1000))", "len('hello world')",
	"[i * 2 for i in range(5)]", "squares", "name.upper()", "import math", "math.sqrt(2) if 'math' in dir() else 0",
	"'-'.join(['a', 'b', 'c'])", "type(3.5)", "{'a': 1, 'b': 2}", "abs(-7)", "max(3, 9, 4)",
}

// runFile saves prog as name, clicks Run and waits for the outcome that
// kind expects. It reports whether the REPL is at its prompt afterwards.
func (s *student) runFile(ctx context.Context, kind, name, prog string) {
	s.repl = false
	if !s.save(ctx, name, []byte(prog)) {
		return
	}
	s.st.mark()
	t0 := time.Now()
	spareAge := t0.Sub(s.connected)
	if !s.lastStarted.IsZero() {
		spareAge = t0.Sub(s.lastStarted)
	}
	if err := s.send(map[string]any{"type": "run", "path": s.path(name)}); err != nil {
		s.c.rec.fail("ws_write", err.Error())
		return
	}
	var ev event
	err := s.st.wait(ctx, 2*time.Minute, func(st *wsState) bool {
		ev = st.find("started", "error", "exited")
		return ev.Type != ""
	})
	if err != nil {
		s.c.rec.fail("run_no_started", err.Error())
		return
	}
	if ev.Type != "started" {
		s.c.rec.fail("run_"+ev.Type, ev.Message+ev.Reason)
		return
	}
	s.lastStarted = ev.at
	if s.st.queuedSeen() {
		s.c.rec.count("queued_runs")
	}
	switch kind {
	case "hello", "stampede", "rerun":
		if err := s.st.wait(ctx, time.Minute, func(st *wsState) bool { return !st.firstAfterStart.IsZero() || st.hasLocked("exited") }); err != nil {
			s.c.rec.fail("run_no_output", err.Error())
			return
		}
		first := s.st.firstOut()
		if first.IsZero() {
			s.c.rec.fail("run_exited_silent", s.st.exitReason())
			return
		}
		s.c.rec.click(clickSample{at: t0.Sub(s.c.start), d: first.Sub(t0), session: ev.Session, spareAge: spareAge, kind: kind})
		s.repl = s.awaitPrompt(ctx, time.Minute, "run_no_prompt")
	case "loop", "print":
		s.repl = s.awaitPrompt(ctx, 3*time.Minute, "heavy_no_prompt")
		if s.repl {
			s.c.rec.outcome("heavy_"+kind, "finished")
		}
	case "bomb":
		// Killed for memory, or a MemoryError traceback ends it: both are the
		// sandbox working. Surviving a 1 GiB allocation under a 128 MB limit
		// is not.
		err := s.st.wait(ctx, 2*time.Minute, func(st *wsState) bool {
			return st.hasLocked("exited") || bytes.Contains(st.tail, []byte("survived"))
		})
		switch {
		case err != nil:
			s.c.rec.fail("hostile_no_exit", err.Error())
		case !s.st.has("exited"):
			s.c.rec.fail("memory_bomb_survived", "")
		default:
			s.c.rec.outcome("hostile_bomb", s.st.exitReason())
		}
	case "flood":
		// Let it flood for a few seconds (or until the server caps it), then
		// press Stop.
		_ = s.st.wait(ctx, 3*time.Second, func(st *wsState) bool { return st.hasLocked("output_limited") || st.hasLocked("exited") })
		limited := s.st.has("output_limited")
		if !s.st.has("exited") {
			if err := s.send(map[string]any{"type": "stop"}); err != nil {
				s.c.rec.fail("ws_write", err.Error())
				return
			}
		}
		if err := s.st.wait(ctx, time.Minute, func(st *wsState) bool { return st.hasLocked("exited") }); err != nil {
			s.c.rec.fail("stop_no_exit", err.Error())
			return
		}
		r := s.st.exitReason()
		if limited {
			r += "+output_limited"
		}
		s.c.rec.outcome("hostile_flood", r)
	}
}

// awaitPrompt waits for the REPL's ">>> " at the end of the output.
func (s *student) awaitPrompt(ctx context.Context, limit time.Duration, failKind string) bool {
	err := s.st.wait(ctx, limit, func(st *wsState) bool {
		return bytes.HasSuffix(st.tail, []byte(">>> ")) || st.hasLocked("exited")
	})
	switch {
	case err != nil:
		s.c.rec.fail(failKind, err.Error())
		return false
	case s.st.has("exited"):
		s.c.rec.fail("repl_exited", s.st.exitReason())
		return false
	}
	return true
}

// replLine types one line at the prompt: the first key alone (its echo is
// the keystroke round trip), then the rest and Enter (until the next prompt).
func (s *student) replLine(ctx context.Context) {
	line := replLines[s.rng.IntN(len(replLines))]
	s.st.mark()
	t0 := time.Now()
	if err := s.send(map[string]any{"type": "stdin", "data": line[:1]}); err != nil {
		s.c.rec.fail("ws_write", err.Error())
		return
	}
	key := []byte(line[:1])
	if err := s.st.wait(ctx, 30*time.Second, func(st *wsState) bool { return bytes.Contains(st.tail, key) || st.hasLocked("exited") }); err != nil {
		s.c.rec.fail("echo_timeout", err.Error())
		s.repl = false
		return
	}
	if s.st.has("exited") {
		s.c.rec.fail("repl_exited", s.st.exitReason())
		s.repl = false
		return
	}
	s.c.rec.echo(t0.Sub(s.c.start), s.st.firstOut().Sub(t0))
	s.st.mark()
	t1 := time.Now()
	if err := s.send(map[string]any{"type": "stdin", "data": line[1:] + "\r"}); err != nil {
		s.c.rec.fail("ws_write", err.Error())
		return
	}
	if s.repl = s.awaitPrompt(ctx, time.Minute, "repl_timeout"); s.repl {
		s.c.rec.line.add(time.Since(t1))
	}
}

// act does one thing a student does between two pauses.
func (s *student) act(ctx context.Context) {
	r := s.rng.Float64()
	switch {
	case r < 0.01:
		s.runFile(ctx, "bomb", "bomb.py", progBomb)
	case r < 0.02:
		s.runFile(ctx, "flood", "flood.py", progFlood)
	case r < 0.04:
		s.runFile(ctx, "loop", "loop.py", progLoop)
	case r < 0.06:
		s.runFile(ctx, "print", "print.py", progPrint)
	case r < 0.16:
		s.runFile(ctx, "hello", "main.py", s.hello())
	case r < 0.19:
		// An impatient double click: the second run finds no spare yet
		// (the first just took it), which samples the cold path.
		s.runFile(ctx, "hello", "main.py", s.hello())
		s.runFile(ctx, "rerun", "main.py", s.hello())
	case r < 0.31:
		s.save(ctx, "notes.py", []byte(strings.Repeat(fmt.Sprintf("# note %d\n", s.saves), 40)))
	default:
		if !s.repl {
			s.runFile(ctx, "hello", "main.py", s.hello())
			return
		}
		s.replLine(ctx)
	}
}

func (s *student) hello() string { return fmt.Sprintf(progHello, s.saves, s.acct.username) }

// event is one JSON event from the server.
type event struct {
	at       time.Time
	Type     string `json:"type"`
	Session  string `json:"session"`
	Reason   string `json:"reason"`
	Message  string `json:"message"`
	Position int    `json:"position"`
}

// wsState is what the reader goroutine saw since the last mark. It keeps a
// short tail of the output, never all of it, so a flood costs nothing.
type wsState struct {
	mu              sync.Mutex
	tail            []byte
	events          []event
	first           time.Time // first output byte since mark
	firstAfterStart time.Time // first output byte after a started event
	err             error
	notify          chan struct{}
	ended           chan struct{}
	closing         atomic.Bool
}

const tailBytes = 512

func newWSState() *wsState {
	return &wsState{notify: make(chan struct{}, 1), ended: make(chan struct{})}
}

// read consumes the socket until it fails; timestamps are taken as each
// message is read, before anything else.
func (st *wsState) read(ws *websocket.Conn) {
	defer close(st.ended)
	for {
		kind, data, err := ws.ReadMessage()
		at := time.Now()
		st.mu.Lock()
		switch {
		case err != nil:
			st.err = err
		case kind == websocket.BinaryMessage:
			if st.first.IsZero() {
				st.first = at
			}
			if st.firstAfterStart.IsZero() && st.hasLocked("started") {
				st.firstAfterStart = at
			}
			st.tail = append(st.tail, data...)
			if len(st.tail) > tailBytes {
				st.tail = append(st.tail[:0], st.tail[len(st.tail)-tailBytes:]...)
			}
		default:
			var ev event
			if json.Unmarshal(data, &ev) == nil {
				ev.at = at
				if len(st.events) < 64 {
					st.events = append(st.events, ev)
				}
			}
		}
		st.mu.Unlock()
		select {
		case st.notify <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
	}
}

// mark forgets what was seen so far: the next wait looks at new output.
func (st *wsState) mark() {
	st.mu.Lock()
	st.tail, st.events = st.tail[:0], st.events[:0]
	st.first, st.firstAfterStart = time.Time{}, time.Time{}
	st.mu.Unlock()
}

var errClosed = errors.New("socket closed")

// wait returns once cond holds (checked under the lock), the socket
// fails, the limit passes or the run is aborted.
func (st *wsState) wait(ctx context.Context, limit time.Duration, cond func(*wsState) bool) error {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		st.mu.Lock()
		ok, err := cond(st), st.err
		st.mu.Unlock()
		if ok {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %w", errClosed, err)
		}
		select {
		case <-st.notify:
		case <-deadline.C:
			return fmt.Errorf("nothing after %s", limit)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// The helpers below are called with st.mu held (from inside cond) or take it.

func (st *wsState) hasLocked(t string) bool {
	for _, e := range st.events {
		if e.Type == t {
			return true
		}
	}
	return false
}

func (st *wsState) has(t string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.hasLocked(t)
}

func (st *wsState) find(types ...string) event {
	for _, e := range st.events {
		for _, t := range types {
			if e.Type == t {
				return e
			}
		}
	}
	return event{}
}

func (st *wsState) queuedSeen() bool { return st.has("queued") }

func (st *wsState) exitReason() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, e := range st.events {
		if e.Type == "exited" {
			return e.Reason
		}
	}
	return ""
}

func (st *wsState) firstOut() time.Time {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.firstAfterStart.IsZero() {
		return st.firstAfterStart
	}
	return st.first
}

func (st *wsState) broken() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.err
}
