package sandbox_test

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/pythonide/pyide/pkg/sandbox"
	"github.com/pythonide/pyide/pkg/sandbox/sandboxtest"
)

func TestScriptThenREPL(t *testing.T) {
	t.Parallel()
	m := sandboxtest.NewManager(t, sandbox.Options{})
	s, c, _ := startScript(t, m, "alice", "x = 41\nif __name__ == '__main__':\n    print('hello from', __name__)\n")
	c.waitFor(t, "hello from __main__", waitShort)
	c.waitFor(t, ">>> ", waitShort)
	c.roundTrip(t, "print(x + 1)", "42")
	if strings.Contains(c.String(), "cpu_seconds") {
		t.Errorf("the control line leaked into the output: %q", c.String())
	}
	c.send(t, "exit(0)")
	if ex := waitExit(t, s, waitShort); ex != (sandbox.Exit{Code: 0, Reason: sandbox.ReasonFinished}) {
		t.Errorf("exit = %+v, want 0 finished", ex)
	}
}

func TestExitReasons(t *testing.T) {
	t.Parallel()
	m := sandboxtest.NewManager(t, sandbox.Options{})
	tests := []struct {
		name   string
		code   string
		want   sandbox.Exit
		output string
	}{
		{"exception", "print('before')\nraise ValueError('boom')\n", sandbox.Exit{Code: 1, Reason: sandbox.ReasonError}, "ValueError: boom"},
		{"syntax error", "print('unclosed'\n", sandbox.Exit{Code: 1, Reason: sandbox.ReasonError}, "SyntaxError"},
		{"system exit", "import sys\nprint('bye')\nsys.exit(3)\n", sandbox.Exit{Code: 3, Reason: sandbox.ReasonError}, "bye"},
		{"exit zero", "raise SystemExit(0)\n", sandbox.Exit{Code: 0, Reason: sandbox.ReasonFinished}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, c, _ := startScript(t, m, "u"+strings.ReplaceAll(tt.name, " ", ""), tt.code)
			if ex := waitExit(t, s, waitShort); ex != tt.want {
				t.Errorf("exit = %+v, want %+v; output:\n%s", ex, tt.want, c.String())
			}
			<-c.eof
			out := c.String()
			if !strings.Contains(out, tt.output) {
				t.Errorf("output lacks %q:\n%s", tt.output, out)
			}
			if strings.Contains(out, ">>> ") {
				t.Errorf("a REPL prompt appeared after the script ended:\n%s", out)
			}
		})
	}
}

func TestInputAndResize(t *testing.T) {
	t.Parallel()
	m := sandboxtest.NewManager(t, sandbox.Options{})
	s, c, _ := startScript(t, m, "bob", "name = input('name? ')\nprint('hi', name.upper())\n")
	c.waitFor(t, "name? ", waitShort)
	c.send(t, "bob")
	c.waitFor(t, "hi BOB", waitShort)
	c.waitFor(t, ">>> ", waitShort)
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	if err := s.Resize(ctx, 101, 33); err != nil {
		t.Fatalf("Resize: %v", err)
	}
	c.roundTrip(t, "import os; print('size', tuple(os.get_terminal_size()))", "size (101, 33)")
}

func TestEmptyREPLAndStop(t *testing.T) {
	t.Parallel()
	m := sandboxtest.NewManager(t, sandbox.Options{})
	dir := sandboxtest.Workspace(t, nil)
	s, c := start(t, m, homeSpec(t, "carol", dir, ""))
	c.waitFor(t, ">>> ", waitShort)
	c.roundTrip(t, "print(__name__, 2**10)", "__main__ 1024")
	// Ctrl-C at the prompt and Ctrl-P (history) must not end or detach anything.
	if _, err := s.Write([]byte{0x10, 0x03}); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, "KeyboardInterrupt", waitShort)
	c.roundTrip(t, "print('still', 'here')", "still here")
	s.Stop(sandbox.ReasonStopped)
	if ex := waitExit(t, s, waitShort); ex.Reason != sandbox.ReasonStopped {
		t.Errorf("exit = %+v, want reason stopped", ex)
	}
	if _, err := s.Write([]byte("1\n")); err == nil {
		t.Error("Write after the end succeeded")
	}
	assertGone(t, m, s.ContainerName())
}

func TestOneSessionPerKey(t *testing.T) {
	t.Parallel()
	m := sandboxtest.NewManager(t, sandbox.Options{})
	dir := sandboxtest.Workspace(t, nil)
	first, c1 := start(t, m, homeSpec(t, "dave", dir, ""))
	c1.waitFor(t, ">>> ", waitShort)
	other := homeSpec(t, "dave", dir, "")
	other.Key = "tab2"
	_, c3 := start(t, m, other)
	second, c2 := start(t, m, homeSpec(t, "dave", dir, ""))
	if ex := waitExit(t, first, waitShort); ex.Reason != sandbox.ReasonStopped {
		t.Errorf("first session exit = %+v, want stopped", ex)
	}
	c2.waitFor(t, ">>> ", waitShort)
	c2.alive(t)
	c3.alive(t) // another tab of the same user is untouched
	select {
	case <-second.Done():
		t.Fatal("the new session ended")
	default:
	}
}

func TestQueue(t *testing.T) {
	t.Parallel()
	m := sandboxtest.NewManager(t, sandbox.Options{MaxConcurrent: 1})
	dir := sandboxtest.Workspace(t, nil)
	first, c1 := start(t, m, homeSpec(t, "erin", dir, ""))
	c1.waitFor(t, ">>> ", waitShort)

	// A waiter that gives up leaves the line.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := m.Start(ctx, homeSpec(t, "frank", dir, ""), nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Start with a full server and a short deadline = %v, want deadline exceeded", err)
	}

	positions := make(chan int, 10)
	got := make(chan *sandbox.Session, 1)
	go func() {
		s, err := m.Start(context.Background(), homeSpec(t, "gina", dir, ""), func(p int) { positions <- p })
		if err != nil {
			t.Errorf("queued Start: %v", err)
		}
		got <- s
	}()
	select {
	case p := <-positions:
		if p != 1 {
			t.Errorf("queue position = %d, want 1", p)
		}
	case <-time.After(waitShort):
		t.Fatal("no queue position reported")
	}
	select {
	case <-got:
		t.Fatal("second session started while the server was full")
	default:
	}
	first.Stop(sandbox.ReasonStopped)
	// The slot passes on when Stop returns, not when the engine has removed
	// the container: a student's next Run never waits for a teardown.
	if st := m.Stats(); st.Queued != 0 || st.Running != 1 {
		t.Errorf("right after Stop: %+v, want the waiter holding the slot", st)
	}
	select {
	case s := <-got:
		if s == nil {
			t.FailNow()
		}
		defer s.Stop(sandbox.ReasonStopped)
		c := attach(t, s)
		c.waitFor(t, ">>> ", waitShort)
	case <-time.After(waitLong):
		t.Fatal("queued session never started")
	}
}

func TestWarmSpare(t *testing.T) {
	t.Parallel()
	m := sandboxtest.NewManager(t, sandbox.Options{SpareEnabled: true})
	dir := sandboxtest.Workspace(t, map[string]string{"a.py": "print('ran', __file__)\nv = 7\n"})
	spec := homeSpec(t, "hank", dir, "/home/student/a.py")
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := m.Prepare(ctx, spec); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	spares := countSpares(t, m, "hank")
	if spares != 1 {
		t.Fatalf("%d spares after Prepare, want 1", spares)
	}
	s, c := start(t, m, spec)
	if !s.Warm() {
		t.Error("Start did not use the ready spare")
	}
	c.waitFor(t, "ran /home/student/a.py", waitShort)
	c.roundTrip(t, "print(v * 6)", "42")
	if strings.Contains(c.String(), "cpu_seconds") {
		t.Errorf("control line visible: %q", c.String())
	}
	// A new spare replaces the one used, still only one per user.
	if err := m.Prepare(ctx, spec); err != nil {
		t.Fatalf("Prepare after Start: %v", err)
	}
	if n := countSpares(t, m, "hank"); n != 1 {
		t.Errorf("%d spares, want 1", n)
	}
	// A different mount set does not take this spare.
	other := sandboxtest.Workspace(t, map[string]string{"a.py": "print('other')\n"})
	s2, c2 := start(t, m, homeSpec(t, "hank", other, "/home/student/a.py"))
	if s2.Warm() {
		t.Error("a spare with other mounts was used")
	}
	c2.waitFor(t, "other", waitShort)
	// Wait for the background spare of that Start, so Release is the last word.
	if err := m.Prepare(ctx, homeSpec(t, "hank", other, "")); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	m.Release("hank")
	eventually(t, waitShort, "Release removes the spare", func() bool { return countSpares(t, m, "hank") == 0 })
}

// TestSpareLaunchLimit: spares start a few at a time, and one dropped while
// it waits for its turn is never created at all.
func TestSpareLaunchLimit(t *testing.T) {
	t.Parallel()
	cli, open := gatedClient(t, "ivy")
	m := sandboxtest.NewManager(t, sandbox.Options{Client: cli, SpareEnabled: true, SpareLaunches: 1})
	since := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	first := make(chan error, 1)
	go func() { first <- m.Prepare(ctx, homeSpec(t, "ivy", sandboxtest.Workspace(t, nil), "")) }()
	// ivy's spare holds the only slot: its create waits at the gate.
	eventually(t, waitShort, "ivy's spare starting", func() bool { return m.Stats().Spares == 1 })
	second := make(chan error, 1)
	go func() { second <- m.Prepare(ctx, homeSpec(t, "jack", sandboxtest.Workspace(t, nil), "")) }()
	eventually(t, waitShort, "jack's spare waiting", func() bool { return m.Stats().Spares == 2 })
	m.Release("jack")
	open()
	for name, ch := range map[string]chan error{"ivy": first, "jack": second} {
		if err := <-ch; err != nil {
			t.Errorf("Prepare for %s: %v", name, err)
		}
	}
	if n := countSpares(t, m, "ivy"); n != 1 {
		t.Errorf("%d spares for ivy, want 1", n)
	}
	if n := creates(t, m, "jack", since); n != 0 {
		t.Errorf("%d containers created for jack, whose spare was dropped while it waited", n)
	}
}

// TestRunClaimsPendingSpare: a Run that finds its spare still waiting for
// a turn starts that spare at once instead of a second, cold container.
func TestRunClaimsPendingSpare(t *testing.T) {
	t.Parallel()
	cli, _ := gatedClient(t, "kim") // kim's spare holds the only slot until the test ends
	m := sandboxtest.NewManager(t, sandbox.Options{Client: cli, SpareEnabled: true, SpareLaunches: 1, SpareDelay: time.Hour})
	since := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	go func() { _ = m.Prepare(ctx, homeSpec(t, "kim", sandboxtest.Workspace(t, nil), "")) }()
	eventually(t, waitShort, "kim's spare starting", func() bool { return m.Stats().Spares == 1 })
	dir := sandboxtest.Workspace(t, map[string]string{"a.py": "print('claimed', 6 * 7)\n"})
	go func() { _ = m.Prepare(ctx, homeSpec(t, "lee", dir, "")) }()
	eventually(t, waitShort, "lee's spare waiting", func() bool { return m.Stats().Spares == 2 })
	s, c := start(t, m, homeSpec(t, "lee", dir, "/home/student/a.py"))
	if n := m.Stats().Spares; n != 1 {
		t.Errorf("%d spares after lee's Run, want 1 (kim's; lee's was claimed)", n)
	}
	c.waitFor(t, "claimed 42", waitShort)
	c.waitFor(t, ">>> ", waitShort)
	s.Stop(sandbox.ReasonStopped)
	waitExit(t, s, waitShort)
	if n := creates(t, m, "lee", since); n != 1 {
		t.Errorf("%d containers created for lee's one Run, want 1 (the claimed spare)", n)
	}
}

// creates counts the containers the engine created for user since then.
func creates(t *testing.T, m *sandbox.Manager, user string, since time.Time) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	ev := sandboxtest.RequireDocker(t).Events(ctx, client.EventsListOptions{
		Since: strconv.FormatInt(since.Add(-time.Second).Unix(), 10), Until: strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10),
		Filters: make(client.Filters).Add("type", "container").Add("event", "create").Add("label", sandbox.LabelUser+"="+user).Add("label", sandbox.LabelServer+"="+m.Options().ServerID),
	})
	n := 0
	for {
		select {
		case <-ev.Messages:
			n++
		case err := <-ev.Err:
			if !errors.Is(err, io.EOF) {
				t.Fatalf("events: %v", err)
			}
			return n
		}
	}
}

// TestStartReplacesEvenWithdrawn: a Start for a key ends the key's session
// even when its ctx has already ended (a run withdrawn at once), and
// starts nothing; another key of the same user is untouched.
func TestStartReplacesEvenWithdrawn(t *testing.T) {
	t.Parallel()
	m := sandboxtest.NewManager(t, sandbox.Options{})
	dir := sandboxtest.Workspace(t, nil)
	first, c1 := start(t, m, homeSpec(t, "walt", dir, ""))
	c1.waitFor(t, ">>> ", waitShort)
	other := homeSpec(t, "walt", dir, "")
	other.Key = "tab2"
	_, c2 := start(t, m, other)
	c2.waitFor(t, ">>> ", waitShort)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if s, err := m.Start(ctx, homeSpec(t, "walt", dir, ""), nil); !errors.Is(err, context.Canceled) {
		if s != nil {
			s.Stop(sandbox.ReasonStopped)
		}
		t.Fatalf("a withdrawn Start = %v, want context canceled", err)
	}
	if ex := waitExit(t, first, waitShort); ex.Reason != sandbox.ReasonStopped {
		t.Errorf("the key's session: exit %+v, want stopped", ex)
	}
	c2.alive(t)
}
