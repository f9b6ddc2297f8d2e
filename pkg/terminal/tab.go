package terminal

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/sandbox"
)

// tab is one browser tab of one user: its current run and scrollback. It
// outlives its connections by the grace period, so a reload or a network
// blip finds the REPL where it was.
//
// The tab's lock is held only for bookkeeping, never across a call that
// waits for the engine or the network: the hub takes it under its own
// lock (Stats, register, logout), so a tab that waited would stall every
// socket and every metrics scrape.
type tab struct {
	h   *Hub
	key tabKey
	// gen numbers the runs; output of an older run is dropped wherever it is.
	gen atomic.Uint64

	mu       sync.Mutex
	conns    map[*conn]bool // bound to this tab; one of them is attached
	attached *conn          // receives output; nil while detached
	watchers map[*conn]struct{}
	// seq numbers the output chunks in the scrollback: a watcher gets by
	// fan-out only those after the scrollback it was given.
	seq   uint64
	cast  string // the id of the broadcast of this tab; "" when none
	token []byte // login session (hash) of the last attached socket
	cur   *run   // the latest run; nil before the first
	ring  ring
	cols  uint
	rows  uint
	timer *time.Timer // grace period, while no socket is bound
	dead  bool
}

// run is one sandbox session of a tab (run or repl), from the command to
// its exit.
type run struct {
	gen  uint64
	path string
	user auth.User
	spec sandbox.Spec // what it was started with: rechecked when the rules change
	// grading runs are read-only sandboxes of staff; the rules that change
	// (tests, deadlines) do not restrict staff.
	grading bool
	folders map[string]string  // inside the sandbox → tree path, for the started event
	began   time.Time          // just before the sandbox started: what it wrote is newer
	cancel  context.CancelFunc // ends a Start still waiting
	quit    chan struct{}      // closed when withdrawn: replaced, stopped or killed
	// called is closed once its Start call has returned: the tab's next
	// Start waits for it, so that the sandboxes see a tab's runs in order.
	called chan struct{}
	stdin  chan []byte

	sess Session       // guarded by tab.mu; nil while starting
	exit *sandbox.Exit // guarded by tab.mu; set once ended

	// log is the run's console for its transcript (guarded by tab.mu).
	log ring

	since   atomic.Int64 // output bytes since the last run or input
	limited atomic.Bool
	input   atomic.Int64 // unix ns of the first input not yet followed by output; 0 = none
}

func newTab(h *Hub, k tabKey) *tab {
	return &tab{h: h, key: k, conns: map[*conn]bool{}, watchers: map[*conn]struct{}{}, ring: ring{max: h.opts.ScrollbackBytes}}
}

func (t *tab) stale(gen uint64) bool { return gen != t.gen.Load() }

func (t *tab) tokenHash() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.token
}

func (t *tab) running() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cur != nil && t.cur.exit == nil && !t.dead
}

// idle reports whether no socket is bound (for the grace period's end).
func (t *tab) idle() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns) == 0
}

// bind adds a new connection and attaches it: it gets the scrollback, then
// the state of the current run. Called with the hub's lock held.
func (t *tab) bind(c *conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
	t.conns[c] = true
	t.attachLocked(c, true)
	if len(t.watchers) > 0 {
		t.watchersChangedLocked()
	}
}

// attachLocked makes c the connection that sees output.
func (t *tab) attachLocked(c *conn, replay bool) {
	if prev := t.attached; prev != nil && prev != c {
		prev.errorf("this console is now open in another window")
	}
	t.attached = c
	t.token = c.tokenHash
	r := t.cur
	if !replay || r == nil {
		return
	}
	if b := t.ring.snapshot(); len(b) > 0 {
		c.push(frame{binary: true, data: b, gen: r.gen})
	}
	if r.sess != nil {
		c.event(startedEvent(r.sess.ID(), r.path, r.folders))
	}
	if r.exit != nil {
		c.event(exitedEvent(*r.exit))
	}
}

// unbind drops a finished connection; the last one starts the grace
// period. Called with the hub's lock held.
func (t *tab) unbind(c *conn, grace time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.conns, c)
	if t.attached == c {
		t.attached = nil
	}
	if len(t.conns) == 0 && !t.dead && t.timer == nil {
		t.timer = time.AfterFunc(grace, func() { t.h.expire(t) })
	}
}

// kill ends the tab: a waiting start is cancelled, the session stopped. It
// returns the session, if any, so a caller can wait for its removal.
func (t *tab) kill() Session {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.h.closeWatchers(t.takeWatchersLocked(func(*watch) bool { return true }), CloseWatchEnded, "this console has closed")
	t.dead = true
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
	t.gen.Add(1)
	r := t.cur
	if r == nil {
		return nil
	}
	t.endLocked(r)
	return r.sess
}

// endLocked stops r (no-op when it ended already).
func (t *tab) endLocked(r *run) { t.endWithLocked(r, sandbox.ReasonStopped) }

func (t *tab) endWithLocked(r *run, reason string) {
	t.withdrawLocked(r)
	if r.sess != nil {
		r.sess.Stop(reason)
	}
}

// withdrawLocked stops listening to r and ends its Start if that still
// waits. Its session, if it has one, runs on until something ends it.
func (t *tab) withdrawLocked(r *run) {
	if !isClosed(r.quit) {
		close(r.quit)
	}
	r.cancel()
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// recheck ends the current run if its sandbox holds a folder the policy
// no longer grants (see Hub.Recheck); grant gives a user's folders now.
func (t *tab) recheck(grant func(auth.User) ([]sandbox.Mount, error)) {
	t.mu.Lock()
	r := t.cur
	if r == nil || r.exit != nil || t.dead || r.grading {
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	var now []sandbox.Mount
	var err error
	if r.path == "" {
		// An empty REPL may itself be switched off now.
		var tg Target
		tg, err = t.h.opts.Files.Target(r.user, "")
		now = tg.Mounts
	} else {
		now, err = grant(r.user)
	}
	if err == nil && covered(r.spec.Mounts, now) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cur != r || r.exit != nil || t.dead {
		return
	}
	t.h.opts.Logger.Info("terminal: run ended, the rules changed under it", "user", t.key.user, "tab", t.key.id, "path", r.path, "error", err)
	t.eventLocked(r, errorEvent("Your program was stopped because the files it may use have changed "+
		"(a test has started, or a deadline has passed). Run it again to continue with the files you may use now."))
	t.endWithLocked(r, sandbox.ReasonReaped)
}

// eventLocked sends an event about r to the attached socket, unless r was
// replaced meanwhile.
func (t *tab) eventLocked(r *run, ev event) {
	if t.cur != r {
		return
	}
	if t.attached != nil {
		t.attached.event(ev)
	}
	switch ev["type"] {
	case EventStarted, EventExited, EventOutputLimited:
		t.watchEventLocked(ev)
	}
}

// start replaces the tab's run with a new one. The start itself (which
// may wait in the server's line) runs in the background so that a stop,
// or another run, is read meanwhile.
//
// One program per tab is the sandboxes' rule, kept where sessions are
// made: this run's Start ends the previous run's session. The tab only
// withdraws the previous run (its output is dropped from now on, its
// Start given up) and makes its Start calls in order.
func (t *tab) start(c *conn, treePath string, tg Target) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dead { // ended by a logout in another window, or by shutdown
		c.errorf("this console has been closed; reload the page")
		return
	}
	if t.attached != c {
		t.attachLocked(c, false)
	}
	var prev <-chan struct{}
	if t.cur != nil {
		t.withdrawLocked(t.cur)
		prev = t.cur.called
	}
	ctx, cancel := context.WithCancel(t.h.ctx)
	u := c.user
	spec := sandbox.Spec{User: u.Username, Role: u.Role, Key: t.key.id, File: tg.File, Mounts: tg.Mounts}
	if !u.IsStaff() {
		spec.MaxSessions = t.h.opts.MaxSandboxesPerStudent
	}
	r := &run{gen: t.gen.Add(1), path: treePath, user: u, spec: spec, grading: tg.Grading, folders: tg.Folders, began: time.Now(), cancel: cancel,
		quit: make(chan struct{}), called: make(chan struct{}), stdin: make(chan []byte, stdinQueue),
		log: ring{max: t.h.opts.TranscriptBytes}}
	t.cur = r
	t.ring.reset()
	t.h.wg.Add(1)
	go t.launch(ctx, r, prev)
}

// launch starts r's session once the previous run's Start has returned
// (withdrawn, it returns promptly), and hands it to the pumps.
func (t *tab) launch(ctx context.Context, r *run, prev <-chan struct{}) {
	defer t.h.wg.Done()
	defer r.cancel()
	if prev != nil {
		<-prev
	}
	sess, err := t.h.opts.Sandboxes.Start(ctx, r.spec, func(pos int) {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.eventLocked(r, queuedEvent(pos))
	})
	close(r.called)
	t.mu.Lock()
	if err != nil {
		t.failedLocked(r, ctx, err)
		t.mu.Unlock()
		return
	}
	if isClosed(r.quit) || t.dead {
		// Withdrawn while it started: a stop pressed meanwhile is
		// answered here; a replaced run says nothing.
		if t.cur == r && !t.dead {
			r.exit = &sandbox.Exit{Code: 0, Reason: sandbox.ReasonStopped}
			t.eventLocked(r, exitedEvent(*r.exit))
		}
		t.mu.Unlock()
		sess.Stop(sandbox.ReasonStopped)
		return
	}
	r.sess = sess
	cols, rows := t.cols, t.rows
	t.eventLocked(r, startedEvent(r.sess.ID(), r.path, r.folders))
	t.h.wg.Add(2)
	go t.pump(r)
	go t.feed(r)
	t.mu.Unlock()
	if cols > 0 {
		rctx, rcancel := context.WithTimeout(t.h.ctx, controlWait)
		_ = sess.Resize(rctx, cols, rows)
		rcancel()
	}
}

// failedLocked reports a start that did not happen. Whether the engine is
// away is the sandboxes' to say (sandbox.ErrUnavailable): the tab asks
// nothing, holding its lock.
func (t *tab) failedLocked(r *run, ctx context.Context, err error) {
	if t.cur != r || t.dead {
		return
	}
	if ctx.Err() != nil { // stopped while waiting in the queue
		r.exit = &sandbox.Exit{Code: 0, Reason: sandbox.ReasonStopped}
		t.eventLocked(r, exitedEvent(*r.exit))
		return
	}
	r.exit = &sandbox.Exit{Code: -1, Reason: sandbox.ReasonError}
	if t.attached == nil {
		return
	}
	msg := "could not start: " + err.Error()
	if errors.Is(err, sandbox.ErrUnavailable) {
		msg = unavailable(err)
	}
	t.h.opts.Logger.Warn("terminal: start failed", "user", t.key.user, "error", err)
	t.attached.errorf("%s", msg)
}

// unavailable words an error of an engine that is away for the user.
func unavailable(err error) string {
	return "execution is unavailable: " + strings.TrimPrefix(err.Error(), sandbox.ErrUnavailable.Error()+": ")
}

// pump copies the session's output to the attached socket. While the
// socket's queue is full it stops reading, so the program blocks on its
// TTY instead of the server buffering; past the output cap it keeps
// reading and drops.
func (t *tab) pump(r *run) {
	defer t.h.wg.Done()
	buf := make([]byte, readChunk)
	capBytes := t.h.opts.OutputCapBytes
	for {
		n, err := r.sess.Read(buf)
		if n > 0 && t.h.opts.OnOutput != nil {
			t.h.opts.OnOutput(n)
		}
		if n > 0 && t.h.opts.OnEcho != nil {
			if at := r.input.Swap(0); at != 0 {
				t.h.opts.OnEcho(time.Since(time.Unix(0, at)))
			}
		}
		if n > 0 && !t.stale(r.gen) {
			if r.since.Add(int64(n)) > capBytes {
				if !r.limited.Swap(true) {
					t.mu.Lock()
					t.eventLocked(r, outputLimitedEvent())
					t.mu.Unlock()
				}
			} else {
				data := append([]byte(nil), buf[:n]...)
				t.mu.Lock()
				t.ring.write(data)
				r.log.write(data)
				seq := t.seq
				t.seq++
				c := t.attached
				watched := len(t.watchers) > 0
				t.mu.Unlock()
				// The owner's console first: 120 watchers' writers
				// woken before it would make its echo wait for them.
				if c != nil {
					c.output(data, r.gen, r.quit)
				}
				if watched {
					t.mu.Lock()
					t.fanOutLocked(data, r.gen, seq)
					t.mu.Unlock()
				}
			}
		}
		if err != nil {
			break
		}
	}
	<-r.sess.Done()
	ex := r.sess.Exit()
	var quotaMsg string
	if ex.Reason == sandbox.ReasonQuota {
		quotaMsg = t.trimToQuota(r)
	}
	t.mu.Lock()
	r.exit = &ex
	if quotaMsg != "" {
		t.eventLocked(r, errorEvent(quotaMsg))
	}
	t.eventLocked(r, exitedEvent(ex))
	log, truncated := r.log.snapshotAll(), r.log.full
	r.log = ring{}
	t.mu.Unlock()
	t.h.saveTranscript(r, ex, log, truncated)
}

// trimToQuota takes back what a run stopped for the quota wrote past it,
// as a disk with the quota would have refused it, and words what happened.
func (t *tab) trimToQuota(r *run) string {
	msg := "Your program was stopped: it wrote more than your storage quota allows."
	trimmed, err := t.h.opts.Files.TrimToQuota(r.user, r.began)
	switch {
	case err != nil:
		t.h.opts.Logger.Error("terminal: taking back what went over the quota", "user", r.user.Username, "error", err)
		msg += " Delete files and empty your trash to get back under it; until then your programs can read your files but not change them."
	case len(trimmed) > 0:
		names := trimmed
		if len(names) > 10 {
			names = append(names[:10:10], fmt.Sprintf("and %d more", len(trimmed)-10))
		}
		msg += " What did not fit was not kept: " + strings.Join(names, ", ") + ". Delete files (and empty your trash) to make room."
	}
	return msg
}

// feed writes queued input to the session, off the reader's goroutine: a
// program that does not read its input must not stall stop or resize.
func (t *tab) feed(r *run) {
	defer t.h.wg.Done()
	for {
		select {
		case b := <-r.stdin:
			if _, err := r.sess.Write(b); err != nil {
				return
			}
		case <-r.sess.Done():
			return
		case <-r.quit:
			return
		}
	}
}

func (t *tab) stdin(c *conn, b []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.cur
	switch {
	case r == nil:
		c.errorf("nothing is running")
	case t.attached != c:
		c.errorf("this console is open in another window; run again here to use it")
	case r.exit != nil:
		// The program ended as the user typed: nothing to tell.
	case r.sess == nil:
		c.errorf("the program has not started yet")
	default:
		t.sendLocked(c, r, b)
	}
}

// sendLocked queues keystrokes of c (the owner, or a helper with the
// keyboard) for r.
func (t *tab) sendLocked(c *conn, r *run, b []byte) {
	select {
	case r.stdin <- b:
		// New input is a new command: its output gets a fresh cap.
		r.since.Store(0)
		r.limited.Store(false)
		r.input.CompareAndSwap(0, time.Now().UnixNano())
	default:
		c.errorf("the program is not reading its input; input dropped")
	}
}

func (t *tab) resize(c *conn, cols, rows uint) {
	t.mu.Lock()
	t.cols, t.rows = cols, rows
	var sess Session
	if r := t.cur; r != nil && r.sess != nil && r.exit == nil && t.attached == c {
		sess = r.sess
	}
	t.mu.Unlock()
	if sess == nil {
		return // applied when the next run starts
	}
	ctx, cancel := context.WithTimeout(t.h.ctx, controlWait)
	defer cancel()
	if err := sess.Resize(ctx, cols, rows); err != nil && !errors.Is(err, context.Canceled) {
		t.h.opts.Logger.Debug("terminal: resize", "user", t.key.user, "error", err)
	}
}

func (t *tab) stop(c *conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.cur
	switch {
	case r == nil:
		c.errorf("nothing is running")
	case t.attached != c:
		c.errorf("this console is open in another window")
	case r.exit != nil:
	default:
		// The exited event follows from the pump (or from the cancelled start).
		t.endLocked(r)
	}
}

// ring keeps the last max bytes of output for replay.
type ring struct {
	max  int
	buf  []byte
	head int // next write position once full
	full bool
}

func (r *ring) reset() { r.buf, r.head, r.full = r.buf[:0], 0, false }

func (r *ring) write(p []byte) {
	if len(p) >= r.max {
		r.buf = append(r.buf[:0], p[len(p)-r.max:]...)
		r.head, r.full = 0, true
		return
	}
	if !r.full {
		if len(r.buf)+len(p) <= r.max {
			r.buf = append(r.buf, p...)
			return
		}
		k := r.max - len(r.buf)
		r.buf = append(r.buf, p[:k]...)
		p = p[k:]
		r.full, r.head = true, 0
	}
	for len(p) > 0 {
		k := copy(r.buf[r.head:], p)
		p = p[k:]
		r.head = (r.head + k) % r.max
	}
}

// snapshotAll returns the kept bytes in order, as they are.
func (r *ring) snapshotAll() []byte {
	if !r.full {
		return append([]byte(nil), r.buf...)
	}
	out := make([]byte, 0, r.max)
	out = append(out, r.buf[r.head:]...)
	return append(out, r.buf[:r.head]...)
}

// snapshot returns the kept bytes in order. When older output was
// overwritten, it starts after the first line break, so the replay does
// not begin inside a line or an escape sequence.
func (r *ring) snapshot() []byte {
	if !r.full {
		return append([]byte(nil), r.buf...)
	}
	out := make([]byte, 0, r.max)
	out = append(out, r.buf[r.head:]...)
	out = append(out, r.buf[:r.head]...)
	for i, b := range out {
		if i >= 1024 {
			break
		}
		if b == '\n' {
			return out[i+1:]
		}
	}
	return out
}
