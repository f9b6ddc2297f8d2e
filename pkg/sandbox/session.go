package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/moby/client"
)

// Exit reasons.
const (
	ReasonFinished = "finished"
	ReasonError    = "error"
	ReasonTimeout  = "timeout"
	ReasonMemory   = "memory"
	ReasonStopped  = "stopped"
	ReasonIdle     = "idle"
	ReasonReaped   = "reaped"
	ReasonQuota    = "quota" // the user's files went over their disk quota
)

// ErrSessionEnded is returned by Write after the session's container is gone.
var ErrSessionEnded = errors.New("sandbox: session ended")

// Exit is how a session ended.
type Exit struct {
	Code   int
	Reason string
}

// Session is one running REPL container. Read and Write carry the raw TTY
// stream; the Manager enforces its limits until Done is closed.
type Session struct {
	m       *Manager
	b       *box
	id      string
	spec    Spec
	started time.Time
	warm    bool

	// With a reused container, the REPL's output and end come through the
	// container's supervisor (see link).
	out   io.Reader
	ended <-chan childExit

	stopOnce sync.Once
	stopCh   chan struct{}
	reason   atomic.Pointer[string] // first server-side reason wins
	done     chan struct{}
	exit     Exit
	release  func()

	lastInput  atomic.Int64 // Clock time, unix ns
	lastOutput atomic.Int64
	hadInput   atomic.Bool
	atPrompt   atomic.Bool
	cmdMark    atomic.Bool // a line was entered at the prompt: the next CPU sample starts a new command
	promptSeen atomic.Bool // the REPL showed its prompt since the last command began

	readMu  sync.Mutex
	echo    []byte // the control line as the TTY would echo it, not yet ruled out
	held    []byte // output that matched a prefix of echo so far
	pend    []byte // held output to deliver before reading more
	eofOnce sync.Once

	writeMu sync.Mutex
	// handedOn is set (under writeMu) when a reused container passes to
	// the next session: nothing of this one may reach it after.
	handedOn bool
}

// ID is the session id: the pyide.session label of its container for the
// container's first session, a new one for each later session of a reused
// container.
func (s *Session) ID() string { return s.id }

// ContainerName is the Docker name of the session's container.
func (s *Session) ContainerName() string { return s.b.name }

// Spec returns the spec the session was started with.
func (s *Session) Spec() Spec { return s.spec }

// Warm tells whether the session was served from a spare container.
func (s *Session) Warm() bool { return s.warm }

// Done is closed once the container has exited and Exit is final.
func (s *Session) Done() <-chan struct{} { return s.done }

// Exit is valid after Done is closed.
func (s *Session) Exit() Exit {
	<-s.done
	return s.exit
}

// Stop ends the session with the given reason; it does not wait (see Done).
// The session's queue slot is free when Stop returns: a student's next Run
// never waits for the engine to tear the old container down.
func (s *Session) Stop(reason string) {
	s.reason.CompareAndSwap(nil, &reason)
	s.stopOnce.Do(func() { close(s.stopCh) })
	s.release()
}

// Resize sets the TTY size.
func (s *Session) Resize(ctx context.Context, cols, rows uint) error {
	if s.b.link != nil {
		// In-band: no engine call.
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
		if s.handedOn {
			return ErrSessionEnded
		}
		return s.b.link.send(frameWinsize, []byte(strconv.FormatUint(uint64(cols), 10)+" "+strconv.FormatUint(uint64(rows), 10)))
	}
	ctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	_, err := s.m.cli.ContainerResize(ctx, s.b.id, client.ContainerResizeOptions{Width: cols, Height: rows})
	return err
}

// Write sends keystrokes to the TTY. NUL bytes are dropped: they begin the
// detach sequence, and no keyboard input needs them.
func (s *Session) Write(p []byte) (int, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	select {
	case <-s.done:
		return 0, ErrSessionEnded
	default:
	}
	if s.handedOn {
		return 0, ErrSessionEnded
	}
	data := p
	if bytes.IndexByte(p, 0) >= 0 {
		data = bytes.ReplaceAll(p, []byte{0}, nil)
	}
	s.lastInput.Store(s.m.opts.Clock.Now().UnixNano())
	s.hadInput.Store(true)
	// A line typed at the REPL's prompt is a new command with a fresh CPU
	// budget; a line typed to a program's input() is not, nor keystrokes
	// that merely keep a spinning thread company.
	if bytes.ContainsAny(data, "\r\n") && s.promptSeen.Swap(false) {
		s.cmdMark.Store(true)
	}
	if s.b.link != nil {
		if err := s.b.link.send(frameInput, data); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	// A container that stops reading stdin must not hang the caller forever.
	_ = s.b.hj.Conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := s.b.hj.Conn.Write(data); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Read returns TTY output. The manager keeps no copy: a slow reader slows
// the program through the TTY, it never makes memory grow here.
func (s *Session) Read(p []byte) (int, error) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	for {
		if len(s.pend) > 0 {
			n := copy(p, s.pend)
			s.pend = s.pend[n:]
			return n, nil
		}
		var src io.Reader = s.b.hj.Reader
		if s.out != nil {
			src = s.out
		}
		n, err := src.Read(p)
		if n > 0 {
			s.lastOutput.Store(s.m.opts.Clock.Now().UnixNano())
			prompt := bytes.HasSuffix(p[:n], []byte(">>> ")) || bytes.HasSuffix(p[:n], []byte("... "))
			s.atPrompt.Store(prompt)
			if prompt {
				s.promptSeen.Store(true)
			}
			if s.echo != nil {
				n = s.stripEcho(p, n)
			}
		}
		if n > 0 {
			return n, nil // a read error repeats on the next call
		}
		if err != nil {
			if len(s.held) > 0 { // the stream ended inside what looked like the echo
				s.pend, s.held, s.echo = s.held, nil, nil
				continue
			}
			if s.out == nil {
				s.eofOnce.Do(func() { go s.afterEOF() })
			}
			return 0, err
		}
	}
}

// stripEcho drops the TTY's echo of the control line. It can only occur as
// the very first output (the runner turns echo off before reading the line,
// and prints nothing before), so output that departs from it is delivered
// untouched, including any bytes held while it still looked like the echo.
func (s *Session) stripEcho(p []byte, n int) int {
	k := 0
	for k < n && k < len(s.echo) && p[k] == s.echo[k] {
		k++
	}
	switch {
	case k == len(s.echo): // the whole echo: drop it
		s.echo, s.held = nil, nil
		copy(p, p[k:n])
		return n - k
	case k == n: // everything so far could still be the echo
		s.held = append(s.held, p[:n]...)
		s.echo = s.echo[n:]
		return 0
	default: // not the echo
		s.pend = append(append(s.held, p[:n]...), s.pend...)
		s.echo, s.held = nil, nil
		c := copy(p, s.pend)
		s.pend = s.pend[c:]
		return c
	}
}

// afterEOF handles an attach stream that ended while the container lives on
// (e.g. the engine dropped it): with nobody attached the REPL would linger.
func (s *Session) afterEOF() {
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
		s.Stop(ReasonStopped)
	}
}

type controlLine struct {
	File           *string `json:"file"`
	ReplAfterError bool    `json:"repl_after_error"`
	CPUSeconds     int     `json:"cpu_seconds"`
}

// sendControl tells the waiting runner what to run. Nothing the user typed
// has been forwarded yet, so this is the first line the runner reads.
func (s *Session) sendControl(ctx context.Context) error {
	c := controlLine{ReplAfterError: s.m.opts.ReplAfterError, CPUSeconds: s.m.opts.CPUSeconds}
	if s.spec.File != "" {
		f := s.spec.File
		c.File = &f
	}
	line, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if s.b.link != nil {
		// The supervisor hands it to its waiting runner through a pipe: no
		// echo, and nothing typed can pass for it.
		if err := s.b.link.waitUp(ctx); err != nil {
			return err
		}
		s.out, s.ended = s.b.link.attach()
		return s.b.link.send(frameControl, line)
	}
	s.echo = append(append([]byte{}, line...), '\r', '\n')
	line = append(line, '\n')
	_ = s.b.hj.Conn.SetWriteDeadline(time.Now().Add(controlTimeout))
	_, err = s.b.hj.Conn.Write(line)
	return err
}

// run watches the limits until the container exits, then settles the exit.
func (s *Session) run() {
	t := time.NewTicker(s.m.opts.WatchInterval)
	defer t.Stop()
	var quotaTick <-chan time.Time
	dq := diskWatch{last: -1}
	// A session with no writable folder cannot write past the quota (a
	// student already over it gets read-only folders): nothing to watch,
	// and nothing to stop it for.
	if s.m.opts.OverQuota != nil && s.spec.writable() {
		qt := time.NewTicker(s.m.opts.QuotaInterval)
		defer qt.Stop()
		quotaTick = qt.C
	}
	w := cpuWatch{limit: time.Duration(s.m.opts.CPUSeconds)*time.Second + s.m.opts.CPUMargin,
		total: time.Duration(s.m.opts.SessionCPU) * time.Second}
	if s.b.hasCG {
		w.base, _ = s.b.cpuUsage(s.m.ctx)
		w.start = w.base
	} else {
		s.cmdMark.Store(true)
		w.startUnknown = true
	}
	var child *childExit // how the REPL ended, in a reused container
	var reusable bool
loop:
	for {
		select {
		case <-s.b.exited:
			break loop
		case ex := <-s.ended:
			child, reusable = &ex, true
			break loop
		case <-s.stopCh:
			if s.b.link != nil && recyclable(*s.reason.Load()) {
				// Reset in place: the REPL and all it started end, the
				// container stays for the next Run.
				child, reusable = s.resetInPlace()
				if reusable {
					break loop
				}
			}
			// The server ended it: one forced removal kills and removes,
			// and the reason is known, so the exit needs no inspection.
			s.b.destroy()
			break loop
		case <-t.C:
			s.checkCPU(&w)
			s.checkClock()
		case <-quotaTick:
			s.checkDisk(&dq)
		}
	}
	var code int
	var oom, gone bool
	r := s.reason.Load()
	switch {
	case child != nil:
		code = child.code
		// A REPL the kernel killed for the memory limit.
		oom = child.signal == 9 && s.b.hasCG && s.b.oomBase >= 0 && s.b.cg.oomKills() > s.b.oomBase
	case r == nil:
		code, oom, gone = s.b.inspectExit()
	default:
		code = s.b.exitCode()
	}
	var reason string
	switch {
	case r != nil:
		reason = *r
	case oom:
		reason = ReasonMemory
	case gone:
		reason = ReasonReaped
	case code == 0:
		reason = ReasonFinished
	case code == 124 || code == 128+24: // runner's budget, or SIGXCPU from RLIMIT_CPU
		reason = ReasonTimeout
	default:
		reason = ReasonError
	}
	s.exit = Exit{Code: code, Reason: reason}
	s.m.forget(s)
	s.release()
	// A REPL killed by a signal the server did not send (its own kill, the
	// kernel's) leaves a container in doubt: it goes.
	killed := child != nil && child.signal != 0 && r == nil
	if reusable && recyclable(reason) && !killed {
		// Its supervisor is making it fresh: the container becomes the
		// user's next spare once it says so (or is removed, on any doubt).
		s.writeMu.Lock()
		s.handedOn = true
		s.writeMu.Unlock()
		s.m.recycle(s.spec, s.b)
	} else {
		// Removal happens before Done so that "done" means "no container
		// of this session left".
		s.b.destroy()
		if s.b.link != nil && s.m.opts.SpareEnabled && (killed || reason == ReasonTimeout || reason == ReasonMemory) {
			// The container the user's next Run would have had is gone
			// for a limit her program hit: the engine makes the next.
			s.m.spares.refill(s.spec)
		}
	}
	close(s.done)
	if s.m.opts.OnExit != nil {
		s.m.opts.OnExit(reason)
	}
	s.m.log.Info("sandbox: session ended", "session", s.ID(), "user", s.spec.User, "code", code, "reason", reason)
}

// recyclable reports whether a REPL that ended for reason leaves its
// container fit for the same student's next Run: it ended in an ordinary
// way. One that hit a limit (time, memory, quota), idled out or was reaped
// takes its container with it.
func recyclable(reason string) bool {
	switch reason {
	case ReasonFinished, ReasonError, ReasonStopped:
		return true
	}
	return false
}

// resetInPlace asks the supervisor to end the REPL and everything it
// started, and waits for the end; false when that did not happen in time.
func (s *Session) resetInPlace() (*childExit, bool) {
	if err := s.b.link.reset(); err != nil {
		return nil, false
	}
	t := time.NewTimer(resetWait)
	defer t.Stop()
	select {
	case ex := <-s.ended:
		return &ex, true
	case <-s.b.link.failed:
	case <-s.b.exited:
	case <-t.C:
	}
	return nil, false
}

// cpuWatch is the server's CPU backstop: the runner's own timer can be
// switched off by student code, the container's cgroup cannot. It counts
// every process of the container, so a child that raised its own
// RLIMIT_CPU counts too.
type cpuWatch struct {
	limit        time.Duration // per command
	total        time.Duration // for the whole session
	base         time.Duration // usage when the current command began
	start        time.Duration // usage when the session began
	startUnknown bool          // no sample yet: the first one is the start
	lastSample   time.Time
}

func (s *Session) checkCPU(w *cpuWatch) {
	// Without cgroup files each sample is an engine call: take one every
	// few seconds instead of every tick.
	if !s.b.hasCG && time.Since(w.lastSample) < 2*time.Second {
		return
	}
	w.lastSample = time.Now()
	used, err := s.b.cpuUsage(s.m.ctx)
	if err != nil {
		return
	}
	if w.startUnknown {
		w.start, w.startUnknown = used, false
	}
	if used-w.start > w.total {
		s.m.log.Info("sandbox: session over its CPU budget", "session", s.ID(), "used", used-w.start)
		s.Stop(ReasonTimeout)
		return
	}
	if s.cmdMark.Swap(false) {
		w.base = used
		return
	}
	if used-w.base > w.limit {
		s.m.log.Info("sandbox: command over its CPU budget", "session", s.ID(), "used", used-w.base)
		s.Stop(ReasonTimeout)
	}
}

// diskWatch notices writes cheaply: the container's page cache (dirty,
// under writeback, cached) changes whenever any of its processes writes a
// file, children and short-lived ones included. Only then is the user's
// usage measured (a walk of their folders).
type diskWatch struct {
	last       int64 // page-cache signature at the last measurement
	lastSample time.Time
}

func (s *Session) checkDisk(d *diskWatch) {
	if s.b.hasCG {
		sig, err := s.b.cg.pageCache()
		if err == nil {
			if sig == d.last {
				return
			}
			d.last = sig
		}
	} else if time.Since(d.lastSample) < 2*time.Second {
		// Without cgroup files there is no cheap signal: measure now
		// and then.
		return
	}
	d.lastSample = time.Now()
	if s.m.opts.OverQuota(s.spec) {
		s.m.log.Info("sandbox: the user's files are over their quota", "session", s.ID(), "user", s.spec.User)
		s.Stop(ReasonQuota)
	}
}

// checkClock applies the idle limit and the script phase's wall backstop:
// before the first keystroke, neither output nor input for WallTimeout
// means a script that sleeps or blocks forever. Sitting at the REPL prompt
// is never a timeout, only (eventually) idleness; a student who lets a
// script wait at input() for WallTimeout without typing is treated as stuck.
func (s *Session) checkClock() {
	o := s.m.opts
	now := o.Clock.Now()
	in := time.Unix(0, s.lastInput.Load())
	out := time.Unix(0, s.lastOutput.Load())
	switch {
	case now.Sub(in) > o.IdleTimeout:
		s.Stop(ReasonIdle)
	case !s.hadInput.Load() && !s.atPrompt.Load() && now.Sub(latest(in, out)) > o.WallTimeout:
		s.Stop(ReasonTimeout)
	}
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
