package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"

	"github.com/pythonide/pyide/pkg/terminal/terminaltest"
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
	ws   *terminaltest.Client

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

// connect opens the IDE's WebSocket; its reader runs until it closes.
func (s *student) connect(ctx context.Context) error {
	u := *s.c.base
	u.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
	u.Path = "/api/ws"
	u.RawQuery = url.Values{"tab": {"load-" + s.acct.username}}.Encode()
	ws, _, err := terminaltest.Dial(ctx, u.String(), terminaltest.Options{
		Jar: s.http.Jar, Header: http.Header{"Origin": {s.c.origin}}, HandshakeTimeout: 60 * time.Second,
		ReadBufferSize: 16 << 10, WriteBufferSize: 4 << 10,
		// A short tail of the output, never all of it: a flood costs nothing.
		KeepOutput: tailBytes, KeepEvents: 64,
	})
	if err != nil {
		return err
	}
	s.ws = ws
	s.connected = time.Now()
	return s.ws.Resize(100, 30)
}

// tailBytes is how much of the output a student keeps: enough to see a
// prompt or an echo.
const tailBytes = 512

// close says goodbye as a browser closing the tab does.
func (s *student) close() {
	if s.ws != nil {
		s.ws.Close()
	}
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
	s.ws.Mark()
	t0 := time.Now()
	spareAge := t0.Sub(s.connected)
	if !s.lastStarted.IsZero() {
		spareAge = t0.Sub(s.lastStarted)
	}
	if err := s.ws.Run(s.path(name)); err != nil {
		s.c.rec.fail("ws_write", err.Error())
		return
	}
	var ev terminaltest.Event
	var at time.Time
	var queued bool
	err := s.ws.Wait(ctx, 2*time.Minute, func(v *terminaltest.View) bool {
		var ok bool
		ev, at, ok = v.Find("started", "error", "exited")
		queued = v.Has("queued")
		return ok
	})
	if err != nil {
		s.c.rec.fail("run_no_started", err.Error())
		return
	}
	if ev.Type() != "started" {
		s.c.rec.fail("run_"+ev.Type(), ev.Str("message")+ev.Str("reason"))
		return
	}
	s.lastStarted = at
	if queued {
		s.c.rec.count("queued_runs")
	}
	switch kind {
	case "hello", "stampede", "rerun":
		var first time.Time
		if err := s.ws.Wait(ctx, time.Minute, func(v *terminaltest.View) bool {
			first = v.FirstOutputAfterStart()
			return !first.IsZero() || v.Has("exited")
		}); err != nil {
			s.c.rec.fail("run_no_output", err.Error())
			return
		}
		if first.IsZero() {
			s.c.rec.fail("run_exited_silent", s.exitReason())
			return
		}
		s.c.rec.click(clickSample{at: t0.Sub(s.c.start), d: first.Sub(t0), session: ev.Str("session"), spareAge: spareAge, kind: kind})
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
		err := s.ws.Wait(ctx, 2*time.Minute, func(v *terminaltest.View) bool {
			return v.Has("exited") || bytes.Contains(v.Output(), []byte("survived"))
		})
		switch {
		case err != nil:
			s.c.rec.fail("hostile_no_exit", err.Error())
		case !s.has("exited"):
			s.c.rec.fail("memory_bomb_survived", "")
		default:
			s.c.rec.outcome("hostile_bomb", s.exitReason())
		}
	case "flood":
		// Let it flood for a few seconds (or until the server caps it), then
		// press Stop.
		_ = s.ws.Wait(ctx, 3*time.Second, func(v *terminaltest.View) bool { return v.Has("output_limited") || v.Has("exited") })
		limited := s.has("output_limited")
		if !s.has("exited") {
			if err := s.ws.Stop(); err != nil {
				s.c.rec.fail("ws_write", err.Error())
				return
			}
		}
		if err := s.ws.Wait(ctx, time.Minute, func(v *terminaltest.View) bool { return v.Has("exited") }); err != nil {
			s.c.rec.fail("stop_no_exit", err.Error())
			return
		}
		r := s.exitReason()
		if limited {
			r += "+output_limited"
		}
		s.c.rec.outcome("hostile_flood", r)
	}
}

// awaitPrompt waits for the REPL's ">>> " at the end of the output.
func (s *student) awaitPrompt(ctx context.Context, limit time.Duration, failKind string) bool {
	err := s.ws.Wait(ctx, limit, func(v *terminaltest.View) bool {
		return bytes.HasSuffix(v.Output(), []byte(">>> ")) || v.Has("exited")
	})
	switch {
	case err != nil:
		s.c.rec.fail(failKind, err.Error())
		return false
	case s.has("exited"):
		s.c.rec.fail("repl_exited", s.exitReason())
		return false
	}
	return true
}

// replLine types one line at the prompt: the first key alone (its echo is
// the keystroke round trip), then the rest and Enter (until the next prompt).
func (s *student) replLine(ctx context.Context) {
	line := replLines[s.rng.IntN(len(replLines))]
	s.ws.Mark()
	t0 := time.Now()
	if err := s.ws.Stdin(line[:1]); err != nil {
		s.c.rec.fail("ws_write", err.Error())
		return
	}
	key := []byte(line[:1])
	var first time.Time
	if err := s.ws.Wait(ctx, 30*time.Second, func(v *terminaltest.View) bool {
		first = v.FirstOutput()
		return bytes.Contains(v.Output(), key) || v.Has("exited")
	}); err != nil {
		s.c.rec.fail("echo_timeout", err.Error())
		s.repl = false
		return
	}
	if s.has("exited") {
		s.c.rec.fail("repl_exited", s.exitReason())
		s.repl = false
		return
	}
	s.c.rec.echo(t0.Sub(s.c.start), first.Sub(t0))
	s.ws.Mark()
	t1 := time.Now()
	if err := s.ws.Stdin(line[1:] + "\r"); err != nil {
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

// has tells whether an event of the type came since the last mark.
func (s *student) has(typ string) (ok bool) {
	s.ws.Look(func(v *terminaltest.View) { ok = v.Has(typ) })
	return ok
}

// exitReason is the reason of the exited event since the last mark.
func (s *student) exitReason() (reason string) {
	s.ws.Look(func(v *terminaltest.View) {
		if ev, _, ok := v.Find("exited"); ok {
			reason = ev.Str("reason")
		}
	})
	return reason
}
