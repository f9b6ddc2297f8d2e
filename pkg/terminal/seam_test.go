package terminal_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pythonide/pyide/pkg/sandbox"
	"github.com/pythonide/pyide/pkg/terminal"
	"github.com/pythonide/pyide/pkg/terminal/terminaltest"
)

// The hub's own logic (runs, switching files, backpressure, the grace
// period, reconnects, the line and an engine away) against fake sessions
// at the terminal's seam: fast, and beside the real-Docker tests in
// terminal_test.go, which show the same on real sandboxes.

func fakeEnv(t *testing.T, hub terminal.Options) (*env, *fakeSandboxes) {
	t.Helper()
	f := newFakeSandboxes()
	return newEnv(t, envOptions{sandboxes: f, hub: hub, files: scripts}), f
}

func TestFakeRun(t *testing.T) {
	t.Parallel()
	e, f := fakeEnv(t, terminal.Options{})
	c := e.dial(e.login("alice"), "t1")
	c.send(map[string]any{"type": "resize", "cols": 90, "rows": 20})
	c.run("Local/alice/hello.py")
	s := f.next(t)
	if sp := s.spec; sp.User != "alice" || sp.Key != "t1" || !strings.HasSuffix(sp.File, "/hello.py") || sp.MaxSessions != terminal.DefaultMaxSandboxesPerStudent {
		t.Errorf("spec = %+v", sp)
	}
	if id := c.started("Local/alice/hello.py"); id != s.id {
		t.Errorf("started session %q, want %q", id, s.id)
	}
	select {
	case <-s.resized:
	case <-timeout(waitShort):
		t.Fatal("the size sent before the run never reached the session")
	}
	s.mu.Lock()
	size := s.size
	s.mu.Unlock()
	if size != [2]uint{90, 20} {
		t.Errorf("size = %v, want 90x20", size)
	}
	s.print("hello from __main__\r\n>>> ")
	c.waitOutput("hello from __main__", waitShort)
	c.stdin("x + 1\r")
	if got := s.typed(t); got != "x + 1\r" {
		t.Errorf("the program got %q", got)
	}
	s.exitWith(0, sandbox.ReasonFinished)
	if ev := c.waitEvent("exited", waitShort); ev["code"] != 0.0 || ev["reason"] != sandbox.ReasonFinished {
		t.Errorf("exited = %v", ev)
	}
	// Typing or stopping after the end says nothing; the probe's answer
	// comes next.
	c.stdin("late\r")
	c.send(map[string]any{"type": "stop"})
	c.send(map[string]any{"type": "probe"})
	if ev := c.waitEvent("error", waitShort); !strings.Contains(fmt.Sprint(ev["message"]), "unknown message type") {
		t.Errorf("after the end: %v", ev)
	}
}

func TestFakeStop(t *testing.T) {
	t.Parallel()
	e, f := fakeEnv(t, terminal.Options{})
	c := e.dial(e.login("alice"), "t1")
	c.run("Local/alice/hello.py")
	s := f.next(t)
	c.started("Local/alice/hello.py")
	s.print("working\r\n")
	c.waitOutput("working", waitShort)
	c.send(map[string]any{"type": "stop"})
	if ex := s.stopped(t); ex.Reason != sandbox.ReasonStopped {
		t.Errorf("session ended with %+v, want stopped", ex)
	}
	if ev := c.waitEvent("exited", waitShort); ev["reason"] != sandbox.ReasonStopped {
		t.Errorf("exited = %v", ev)
	}
	// What the program printed as it was stopped is its run's: shown.
	c.waitOutput(s.stopWords(), waitShort)
}

// TestFakeSwitchFile: a second run in the same tab replaces the first. The
// first's session is ended by the sandboxes (one per tab is theirs to
// keep), even when the second run is stopped at once; nothing of the first
// run reaches the browser after the switch.
func TestFakeSwitchFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// second makes the second run, once the first runs, and returns
		// the event that ends the exchange.
		second func(t *testing.T, c *wsClient, f *fakeSandboxes) terminaltest.Event
		want   string // its type
	}{
		{"run another file", func(t *testing.T, c *wsClient, f *fakeSandboxes) terminaltest.Event {
			c.run("Local/alice/b.py")
			s := f.next(t)
			if id := c.started("Local/alice/b.py"); id != s.id {
				t.Errorf("started %q, want %q", id, s.id)
			}
			s.print("this is b\r\n>>> ")
			c.waitOutput("this is b", waitShort)
			return terminaltest.Event{"type": "started"}
		}, "started"},
		{"run another file and stop at once", func(t *testing.T, c *wsClient, f *fakeSandboxes) terminaltest.Event {
			c.run("Local/alice/b.py")
			c.send(map[string]any{"type": "stop"})
			ev := c.waitEvent("exited", waitShort)
			select { // the second run may have got a session before the stop: it ends too
			case s := <-f.started:
				s.stopped(t)
			default:
			}
			return ev
		}, "exited"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, f := fakeEnv(t, terminal.Options{})
			c := e.dial(e.login("alice"), "t1")
			c.run("Local/alice/a.py")
			first := f.next(t)
			c.started("Local/alice/a.py")
			first.print("this is a\r\n>>> ")
			c.waitOutput("this is a", waitShort)
			if ev := tt.second(t, c, f); ev["type"] != tt.want || tt.want == "exited" && ev["reason"] != sandbox.ReasonStopped {
				t.Errorf("the second run ended the exchange with %v, want %s", ev, tt.want)
			}
			if ex := first.stopped(t); ex.Reason != sandbox.ReasonStopped {
				t.Errorf("the first run's session ended with %+v, want stopped", ex)
			}
			exits := 0
			for _, ev := range c.Events() {
				switch ev["type"] {
				case "error":
					t.Errorf("unexpected event %v", ev)
				case "exited":
					exits++
				}
			}
			if want := map[string]int{"started": 0, "exited": 1}[tt.want]; exits != want {
				t.Errorf("%d exited events, want %d (the replaced run says nothing)", exits, want)
			}
			if strings.Contains(c.Output(), first.stopWords()) {
				t.Errorf("the replaced run's last words reached the browser:\n%q", c.Output())
			}
		})
	}
}

// TestFakeSwitchWhileQueued: a run that replaces one still waiting in the
// server's line takes its place; the withdrawn one never starts.
func TestFakeSwitchWhileQueued(t *testing.T) {
	t.Parallel()
	e, f := fakeEnv(t, terminal.Options{})
	c := e.dial(e.login("alice"), "t1")
	open := f.hold()
	defer open()
	c.run("Local/alice/a.py")
	if ev := c.waitEvent("queued", waitShort); ev["position"] != 1.0 {
		t.Errorf("queued = %v", ev)
	}
	c.run("Local/alice/b.py")
	if ev := c.waitEvent("queued", waitShort); ev["position"] != 1.0 {
		t.Errorf("the second run: queued = %v", ev)
	}
	open()
	s := f.next(t)
	if !strings.HasSuffix(s.spec.File, "/b.py") {
		t.Errorf("the run that started is %s, want b.py", s.spec.File)
	}
	c.started("Local/alice/b.py")
	// The withdrawn run's Start returned before the second's was made.
	select {
	case s := <-f.started:
		t.Errorf("the withdrawn run started too: %s", s.spec.File)
	default:
	}
}

// TestFakeBackpressure: output never piles up in the server. A browser
// that stops reading stops the program (it waits at its TTY) within a
// bounded amount of output; past the output cap the program is read on,
// its output dropped, and the browser told once.
func TestFakeBackpressure(t *testing.T) {
	t.Parallel()
	t.Run("a browser that stops reading", func(t *testing.T) {
		t.Parallel()
		e, f := fakeEnv(t, terminal.Options{OutputCapBytes: 1 << 40})
		c := e.dial(e.login("alice"), "t1")
		c.run("Local/alice/flood.py")
		s := f.next(t)
		c.started("Local/alice/flood.py")
		go s.flood()
		c.waitOutput("flood", waitShort)
		resume := c.Pause() // nothing is read any more
		held := steady(t, &s.produced)
		received := c.Received()
		resume()
		// Frames queued (outQueue, ~256 KB) and the sockets' own buffers.
		const bound = 16 << 20
		t.Logf("the program wrote %d KB past what the browser read, then waited", (held-int64(received))>>10)
		if held-int64(received) > bound {
			t.Errorf("%d bytes read from the program beyond the %d the browser took", held, received)
		}
		eventually(t, waitShort, "the program to go on once the browser reads", func() bool { return s.produced.Load() > held+1<<20 })
	})
	t.Run("past the output cap", func(t *testing.T) {
		t.Parallel()
		const capBytes = 256 << 10
		e, f := fakeEnv(t, terminal.Options{OutputCapBytes: capBytes})
		c := e.dial(e.login("alice"), "t1")
		c.run("Local/alice/flood.py")
		s := f.next(t)
		c.started("Local/alice/flood.py")
		go s.flood()
		c.waitEvent("output_limited", waitShort)
		past := s.produced.Load()
		eventually(t, waitShort, "the program read on past the cap", func() bool { return s.produced.Load() > past+4<<20 })
		received := c.Received()
		if received > capBytes+64<<10 {
			t.Errorf("the browser got %d bytes with a cap of %d", received, capBytes)
		}
		n := 0
		for _, ev := range c.Events() {
			if ev["type"] == "output_limited" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("told of the cap %d times, want once", n)
		}
	})
}

// steady waits until n stops growing and returns its value.
func steady(t *testing.T, n interface{ Load() int64 }) int64 {
	t.Helper()
	const still = 300 * time.Millisecond // no growth for this long counts as stopped
	deadline := time.Now().Add(waitShort)
	last, since := n.Load(), time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // polling interval
		if v := n.Load(); v != last {
			last, since = v, time.Now()
		} else if time.Since(since) >= still {
			return v
		}
	}
	t.Fatalf("still growing after %v: %d", waitShort, last)
	return 0
}

func TestFakeGraceAndReconnect(t *testing.T) {
	t.Parallel()
	t.Run("reconnect within the grace period", func(t *testing.T) {
		t.Parallel()
		e, f := fakeEnv(t, terminal.Options{Grace: time.Minute})
		ck := e.login("alice")
		c := e.dial(ck, "tab-r")
		c.run("Local/alice/hello.py")
		s := f.next(t)
		c.started("Local/alice/hello.py")
		s.print("kept across reconnects\r\n>>> ")
		c.waitOutput(">>> ", waitShort)
		c.ws.NetConn().Close() // the network drops: no close frame
		c.waitClosed(waitShort)

		again := e.dial(ck, "tab-r")
		again.waitOutput("kept across reconnects", waitShort) // the scrollback replay
		if id := again.started("Local/alice/hello.py"); id != s.id {
			t.Errorf("reattached to %q, want %q", id, s.id)
		}
		again.stdin("y\r")
		if got := s.typed(t); got != "y\r" {
			t.Errorf("the program got %q", got)
		}
		s.print("after the reconnect\r\n")
		again.waitOutput("after the reconnect", waitShort)
		if !s.running() {
			t.Error("the session ended across a reconnect")
		}
	})
	t.Run("the grace period ends", func(t *testing.T) {
		t.Parallel()
		e, f := fakeEnv(t, terminal.Options{Grace: 50 * time.Millisecond})
		c := e.dial(e.login("alice"), "t1")
		c.run("Local/alice/hello.py")
		s := f.next(t)
		c.started("Local/alice/hello.py")
		c.ws.Close()
		if ex := s.stopped(t); ex.Reason != sandbox.ReasonStopped {
			t.Errorf("session ended with %+v", ex)
		}
		select {
		case u := <-f.released:
			if u != "alice" {
				t.Errorf("released %q", u)
			}
		case <-timeout(waitShort):
			t.Error("alice's spare was not released")
		}
		eventually(t, waitShort, "the hub to forget the tab", func() bool { return e.hub.Stats() == terminal.Stats{} })
	})
}

// TestFakeStartFails: what the browser is told when a run cannot start.
func TestFakeStartFails(t *testing.T) {
	t.Parallel()
	gone := fmt.Errorf("%w: docker engine: gone", sandbox.ErrUnavailable)
	tests := []struct {
		name string
		set  func(f *fakeSandboxes)
		want string
	}{
		{"the engine is away", func(f *fakeSandboxes) { f.away = gone }, "execution is unavailable: docker engine: gone"},
		{"the engine went away", func(f *fakeSandboxes) { f.startErr = gone }, "execution is unavailable: docker engine: gone"},
		{"the student's cap", func(f *fakeSandboxes) { f.startErr = &sandbox.LimitError{Max: 2} }, "could not start: you already have 2 programs running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, f := fakeEnv(t, terminal.Options{})
			tt.set(f)
			c := e.dial(e.login("alice"), "t1")
			c.run("Local/alice/hello.py")
			if ev := c.waitEvent("error", waitShort); !strings.Contains(fmt.Sprint(ev["message"]), tt.want) {
				t.Errorf("error = %v, want %q", ev["message"], tt.want)
			}
			// The tab is still usable: a run, once possible, starts.
			f.mu.Lock()
			f.away, f.startErr = nil, nil
			f.mu.Unlock()
			c.run("Local/alice/hello.py")
			s := f.next(t)
			c.started("Local/alice/hello.py")
			s.exitWith(0, sandbox.ReasonFinished)
			c.waitEvent("exited", waitShort)
		})
	}
}

// TestFakeQueuedStop: a run waiting in the server's line is told its
// position; stop leaves the line.
func TestFakeQueuedStop(t *testing.T) {
	t.Parallel()
	e, f := fakeEnv(t, terminal.Options{})
	open := f.hold()
	defer open()
	c := e.dial(e.login("alice"), "t1")
	c.run("Local/alice/hello.py")
	if ev := c.waitEvent("queued", waitShort); ev["position"] != 1.0 {
		t.Errorf("queued = %v", ev)
	}
	c.send(map[string]any{"type": "stop"})
	if ev := c.waitEvent("exited", waitShort); ev["reason"] != sandbox.ReasonStopped {
		t.Errorf("exited = %v", ev)
	}
	open()
	select {
	case s := <-f.started:
		t.Errorf("a run that left the line started: %s", s.id)
	default:
	}
}

// TestFakeEngineHangsStallsNothing: while a Start waits for an engine that
// does not answer, other sockets open and are answered and the hub's
// counts (the metrics) answer at once: the hub holds no lock across it.
func TestFakeEngineHangsStallsNothing(t *testing.T) {
	t.Parallel()
	const bound = time.Second
	e, f := fakeEnv(t, terminal.Options{})
	open := f.hold() // every Start hangs
	defer open()
	ck := e.login("alice")
	c := e.dial(ck, "t1")
	c.run("Local/alice/hello.py")
	c.waitEvent("queued", waitShort)
	for i := range 5 {
		began := time.Now()
		other := e.dial(ck, fmt.Sprintf("o%d", i))
		other.stdin("x")
		other.waitEvent("error", waitShort)
		if st := e.hub.Stats(); st.Sockets < 2 {
			t.Errorf("stats = %+v", st)
		}
		if took := time.Since(began); took > bound {
			t.Errorf("socket %d opened and answered in %v beside a hung Start", i, took)
		}
	}
}
