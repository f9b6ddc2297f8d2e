package terminal_test

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pythonide/pyide/pkg/sandbox"
	"github.com/pythonide/pyide/pkg/terminal"
)

// fakeSandboxes runs no containers: each Start hands out a fakeSession, an
// in-memory TTY the test drives as the program. It keeps the contract of
// the real sandboxes (terminal.Sandboxes): one session per user and key,
// the key's previous session ended by the next Start even when that Start
// was withdrawn; sandbox.ErrUnavailable when the engine is away.
type fakeSandboxes struct {
	started  chan *fakeSession // every session, as it starts
	released chan string       // every Release

	mu       sync.Mutex
	n        int
	byKey    map[string]*fakeSession
	gate     chan struct{} // while set, Starts wait in line for it
	startErr error         // while set, Starts fail with it
	away     error         // Available's answer
}

func newFakeSandboxes() *fakeSandboxes {
	return &fakeSandboxes{started: make(chan *fakeSession, 64), released: make(chan string, 64), byKey: map[string]*fakeSession{}}
}

func (f *fakeSandboxes) Start(ctx context.Context, spec sandbox.Spec, onQueue func(int)) (terminal.Session, error) {
	k := spec.User + "\x00" + spec.Key
	f.mu.Lock()
	prev := f.byKey[k]
	delete(f.byKey, k)
	gate, startErr := f.gate, f.startErr
	f.mu.Unlock()
	if prev != nil {
		prev.Stop(sandbox.ReasonStopped)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if startErr != nil {
		return nil, startErr
	}
	if gate != nil {
		onQueue(1)
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	f.n++
	s := newFakeSession(fmt.Sprintf("fake%d", f.n), spec)
	f.byKey[k] = s
	f.mu.Unlock()
	f.started <- s
	return s, nil
}

func (f *fakeSandboxes) Prepare(context.Context, sandbox.Spec) error { return nil }
func (f *fakeSandboxes) Release(user string)                         { f.released <- user }
func (f *fakeSandboxes) Available() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.away
}

// hold makes Starts wait in line until the returned func is called.
func (f *fakeSandboxes) hold() (open func()) {
	gate := make(chan struct{})
	f.mu.Lock()
	f.gate = gate
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			f.gate = nil
			f.mu.Unlock()
			close(gate)
		})
	}
}

// next waits for the next session to start.
func (f *fakeSandboxes) next(t testing.TB) *fakeSession {
	t.Helper()
	select {
	case s := <-f.started:
		return s
	case <-timeout(waitShort):
		t.Fatal("no session started")
		return nil
	}
}

func timeout(d time.Duration) <-chan time.Time { return time.After(d) }

// stopWords is what a fake program prints as it is stopped (a real one
// may print a traceback): the tab shows it only for its current run.
func (s *fakeSession) stopWords() string { return "(" + s.id + " stopped)\r\n" }

// fakeSession is a program at the other end of a TTY. The test prints
// for it (print blocks until the tab reads, as a TTY does), reads what the
// student typed (in), and ends it (exit), or the tab stops it.
type fakeSession struct {
	id   string
	spec sandbox.Spec
	out  chan []byte // what the program prints; Read takes from it
	in   chan string // what the student typed
	// produced counts the bytes the tab has read.
	produced atomic.Int64

	mu      sync.Mutex
	pending []byte
	size    [2]uint
	resized chan struct{}

	endOnce sync.Once
	ending  chan struct{} // closed when the program ends: Read drains, then EOF
	done    chan struct{}
	exit    sandbox.Exit
}

func newFakeSession(id string, spec sandbox.Spec) *fakeSession {
	return &fakeSession{id: id, spec: spec, out: make(chan []byte), in: make(chan string, 64),
		resized: make(chan struct{}, 1), ending: make(chan struct{}), done: make(chan struct{})}
}

func (s *fakeSession) ID() string { return s.id }

func (s *fakeSession) Read(p []byte) (int, error) {
	s.mu.Lock()
	if len(s.pending) > 0 {
		n := copy(p, s.pending)
		s.pending = s.pending[n:]
		s.mu.Unlock()
		s.produced.Add(int64(n))
		return n, nil
	}
	s.mu.Unlock()
	select {
	case b := <-s.out:
		n := copy(p, b)
		s.mu.Lock()
		s.pending = append(s.pending, b[n:]...)
		s.mu.Unlock()
		s.produced.Add(int64(n))
		return n, nil
	case <-s.ending:
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.pending) > 0 {
			n := copy(p, s.pending)
			s.pending = s.pending[n:]
			return n, nil
		}
		return 0, io.EOF
	}
}

func (s *fakeSession) Write(p []byte) (int, error) {
	select {
	case <-s.ending:
		return 0, sandbox.ErrSessionEnded
	case s.in <- string(p):
		return len(p), nil
	}
}

func (s *fakeSession) Resize(_ context.Context, cols, rows uint) error {
	s.mu.Lock()
	s.size = [2]uint{cols, rows}
	s.mu.Unlock()
	select {
	case s.resized <- struct{}{}:
	default:
	}
	return nil
}

func (s *fakeSession) Stop(reason string) {
	s.end(sandbox.Exit{Code: -1, Reason: reason}, s.stopWords())
}

func (s *fakeSession) Done() <-chan struct{} { return s.done }

func (s *fakeSession) Exit() sandbox.Exit {
	<-s.done
	return s.exit
}

// end ends the program once: last is printed after everything before.
func (s *fakeSession) end(e sandbox.Exit, last string) {
	s.endOnce.Do(func() {
		s.mu.Lock()
		s.pending = append(s.pending, last...)
		s.exit = e
		s.mu.Unlock()
		close(s.ending)
		close(s.done)
	})
}

// print writes b to the TTY and returns once the tab has read it, or
// false if the program ended first.
func (s *fakeSession) print(b string) bool {
	select {
	case s.out <- []byte(b):
		return true
	case <-s.ending:
		return false
	}
}

// exitWith ends the program by itself.
func (s *fakeSession) exitWith(code int, reason string) {
	s.end(sandbox.Exit{Code: code, Reason: reason}, "")
}

// typed waits for the next input the program gets.
func (s *fakeSession) typed(t testing.TB) string {
	t.Helper()
	select {
	case b := <-s.in:
		return b
	case <-timeout(waitShort):
		t.Fatalf("session %s got no input", s.id)
		return ""
	}
}

// stopped waits for the session to end and returns how.
func (s *fakeSession) stopped(t testing.TB) sandbox.Exit {
	t.Helper()
	select {
	case <-s.done:
		return s.exit
	case <-timeout(waitShort):
		t.Fatalf("session %s still runs", s.id)
		return sandbox.Exit{}
	}
}

func (s *fakeSession) running() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// flood prints lines until the program ends.
func (s *fakeSession) flood() {
	line := []byte("flood flood flood flood flood flood flood flood flood flood\r\n")
	chunk := make([]byte, 0, 16<<10)
	for len(chunk)+len(line) <= cap(chunk) {
		chunk = append(chunk, line...)
	}
	for s.print(string(chunk)) {
	}
}
