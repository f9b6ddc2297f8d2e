package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pythonide/pyide/pkg/admin"
	"github.com/pythonide/pyide/pkg/config"
	"github.com/pythonide/pyide/pkg/metrics"
	"github.com/pythonide/pyide/pkg/sandbox"
	"github.com/pythonide/pyide/pkg/terminal"
)

// sandboxes holds the sandbox manager, which exists only while a Docker
// engine answers: the server starts without one (the IDE still edits
// files), retries in the background, and serves Run as soon as the engine
// is back. It is the one place that decides whether execution is
// available; the terminal and the dashboard ask it.
//
// Its lock guards the fields only: reaching the engine (building a
// manager, a ping) happens outside it and the result is swapped in, so a
// hung engine holds up no Start, no socket and no metrics scrape.
type sandboxes struct {
	cfg    config.Config
	logger *slog.Logger
	mx     *metrics.Metrics
	// overQuota, when set, measures whether a student's files are over
	// their quota (the workspace's OverQuota): sandboxes that write past it
	// end.
	overQuota func(user, role string) bool
	// notice, when set, tells the browser tab running a session why it is
	// about to be ended (terminal.Hub.Notice): the exit reason "reaped"
	// alone cannot say that an administrator did it, or that a test ended.
	notice func(session, message string) bool

	mu      sync.Mutex
	m       *sandbox.Manager
	lastErr error
	attempt chan struct{} // closed when the attempt to connect in flight ends; nil when none
	closed  bool
	ending  sync.WaitGroup // endTest reaps still running

	// up is the engine's state as last seen (a connect, a probe, a
	// Start): what the metrics report without asking the engine.
	up atomic.Bool
}

// Bounds of the engine's answers.
const (
	// connectWait is how long a caller of connect waits for the attempt;
	// past it the attempt goes on in the background and the server starts
	// without execution rather than wait for a hung engine.
	connectWait = 10 * time.Second
	// probeWait bounds the periodic look at a connected engine.
	probeWait = 10 * time.Second
)

func (s *sandboxes) options() sandbox.Options {
	o := sandbox.Options{
		Image: s.cfg.SandboxImage, Runtime: s.cfg.SandboxRuntime, MemoryMB: int64(s.cfg.MemoryLimitMB),
		CPUSeconds: int(s.cfg.ExecutionTimeout / time.Second), SessionCPU: int(s.cfg.SessionCPUTimeout / time.Second),
		WallTimeout: s.cfg.WallTimeout,
		IdleTimeout: s.cfg.IdleTimeout, MaxConcurrent: s.cfg.MaxConcurrentExecutions,
		ReplAfterError: s.cfg.ReplAfterError, SandboxUID: s.cfg.SandboxUID, SandboxGID: s.cfg.SandboxUID,
		ServerID: serverID(s.cfg.DataPath), SpareEnabled: true, NoReuse: !s.cfg.SandboxReuse, Logger: s.logger,
		// Every mount source lies in the files tree, and is checked to be
		// the folder the policy approved just before each create.
		MountRoot: s.cfg.DataPath,
	}
	if s.overQuota != nil {
		o.OverQuota = func(spec sandbox.Spec) bool { return s.overQuota(spec.User, spec.Role) }
	}
	if s.mx != nil {
		o.OnStart = func(warm bool, took time.Duration, err error) {
			path := "cold"
			if warm {
				path = "warm"
			}
			if err != nil {
				s.mx.SandboxStartFailures.Inc()
				return
			}
			s.mx.SandboxStarts.WithLabelValues(path).Inc()
			s.mx.SandboxStartSeconds.WithLabelValues(path).Observe(took.Seconds())
		}
		o.OnExit = func(reason string) { s.mx.SandboxExits.WithLabelValues(reason).Inc() }
	}
	return o
}

// serverID names this installation's containers: stable across restarts
// (so a restarted server removes what a crashed one left), distinct between
// installations sharing one engine (so they never remove each other's).
func serverID(dataPath string) string {
	sum := sha256.Sum256([]byte(dataPath))
	return "pyide-" + hex.EncodeToString(sum[:4])
}

// connect tries to reach the engine, waiting for the attempt at most
// connectWait (or until ctx ends). Only one attempt runs at a time; a
// manager it builds after the wait is taken when it comes.
func (s *sandboxes) connect(ctx context.Context) { s.connectWithin(ctx, connectWait) }

func (s *sandboxes) connectWithin(ctx context.Context, wait time.Duration) {
	s.mu.Lock()
	if s.m != nil || s.closed {
		s.mu.Unlock()
		return
	}
	done := s.attempt
	if done == nil {
		done = make(chan struct{})
		s.attempt = done
		go s.dial(ctx, done)
	}
	s.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
	}
}

// dial builds a manager (a ping, and the reconcile of leftovers: up to a
// minute on a hung engine) without the lock, then swaps it in.
func (s *sandboxes) dial(ctx context.Context, done chan struct{}) {
	defer close(done)
	m, err := sandbox.New(ctx, s.options())
	s.mu.Lock()
	s.attempt = nil
	closed, prevErr := s.closed, s.lastErr
	switch {
	case err != nil:
		s.lastErr = err
	case !closed:
		s.m, s.lastErr = m, nil
	}
	s.mu.Unlock()
	s.up.Store(err == nil && !closed)
	switch {
	case err != nil:
		if ctx.Err() == nil && (prevErr == nil || prevErr.Error() != err.Error()) {
			s.logger.Warn("execution unavailable; retrying in the background", "error", err)
		}
	case closed:
		// The server is stopping: this late manager removes what it holds.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if cerr := m.Close(cctx); cerr != nil {
			s.logger.Warn("removing sandboxes", "error", cerr)
		}
	case prevErr != nil:
		s.logger.Info("execution available again")
	}
}

// keepConnected, every interval until ctx ends, connects when there is no
// manager and otherwise looks at the engine, for the metrics.
func (s *sandboxes) keepConnected(ctx context.Context, interval time.Duration) {
	every(ctx, interval, func() {
		m, err := s.manager()
		if err != nil {
			s.connectWithin(ctx, 0)
			return
		}
		pctx, cancel := context.WithTimeout(ctx, probeWait)
		defer cancel()
		s.up.Store(m.Ping(pctx) == nil)
	})
}

// engineUp is the engine's state as last seen; it never waits.
func (s *sandboxes) engineUp() bool { return s.up.Load() }

func (s *sandboxes) manager() (*sandbox.Manager, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m != nil {
		return s.m, nil
	}
	switch {
	case s.lastErr == nil:
		return nil, fmt.Errorf("%w: connecting to the Docker engine", sandbox.ErrUnavailable)
	case errors.Is(s.lastErr, sandbox.ErrUnavailable):
		return nil, s.lastErr
	default:
		return nil, fmt.Errorf("%w: %w", sandbox.ErrUnavailable, s.lastErr)
	}
}

// close removes every sandbox this server runs.
func (s *sandboxes) close(ctx context.Context) error {
	s.ending.Wait()
	s.mu.Lock()
	m, attempt := s.m, s.attempt
	s.m, s.closed = nil, true
	s.mu.Unlock()
	s.up.Store(false)
	if attempt != nil {
		// An attempt in flight closes its own manager, if it makes one.
		select {
		case <-attempt:
		case <-ctx.Done():
		}
	}
	if m == nil {
		return nil
	}
	return m.Close(ctx)
}

// The terminal's view (terminal.Sandboxes): every call fails with
// ErrUnavailable while Docker is away.

func (s *sandboxes) Start(ctx context.Context, spec sandbox.Spec, onQueue func(int)) (terminal.Session, error) {
	m, err := s.manager()
	if err != nil {
		return nil, err
	}
	sess, err := m.Start(ctx, spec, onQueue)
	switch {
	case errors.Is(err, sandbox.ErrUnavailable):
		s.up.Store(false)
		return nil, err
	case err != nil:
		return nil, err
	}
	s.up.Store(true)
	return sess, nil
}

func (s *sandboxes) Prepare(ctx context.Context, spec sandbox.Spec) error {
	m, err := s.manager()
	if err != nil {
		return err
	}
	return m.Prepare(ctx, spec)
}

func (s *sandboxes) Release(user string) {
	if m, err := s.manager(); err == nil {
		m.Release(user)
	}
}

// Available implements terminal.Sandboxes: nil once a manager exists.
func (s *sandboxes) Available() error {
	_, err := s.manager()
	return err
}

// Ping asks the engine now (for /readyz and the dashboard).
func (s *sandboxes) Ping(ctx context.Context) error {
	m, err := s.manager()
	if err != nil {
		return err
	}
	return m.Ping(ctx)
}

// adminView adapts the manager to the dashboard.
type adminView struct{ s *sandboxes }

func (a adminView) List(ctx context.Context) ([]admin.Sandbox, error) {
	m, err := a.s.manager()
	if err != nil {
		return nil, err
	}
	infos, err := m.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]admin.Sandbox, 0, len(infos))
	for _, in := range infos {
		out = append(out, admin.Sandbox{
			Session: in.Session, User: in.User, File: in.File, Spare: in.Spare, State: in.State,
			Started: in.Started, IdleSeconds: in.Idle.Seconds(), CPUSeconds: in.CPU.Seconds(), MemoryBytes: in.Memory,
		})
	}
	return out, nil
}

// byAdmin is what the user of a sandbox an administrator ended reads.
const byAdmin = "An administrator ended your program. Press Run to start it again."

func (a adminView) Stop(ctx context.Context, session string) error {
	n, err := a.s.reap(ctx, sandbox.Filter{Session: session}, byAdmin)
	if err == nil && n == 0 {
		return admin.ErrNotFound
	}
	return err
}

func (a adminView) Reap(ctx context.Context, idle time.Duration, user string, all bool) (int, error) {
	return a.s.reap(ctx, sandbox.Filter{Idle: idle, User: user, All: all}, byAdmin)
}

// reap ends the sessions (and spares) f selects; the browser tab running
// each session is told why first.
func (s *sandboxes) reap(ctx context.Context, f sandbox.Filter, why string) (int, error) {
	m, err := s.manager()
	if err != nil {
		return 0, err
	}
	if s.notice != nil {
		if infos, err := m.List(ctx); err == nil {
			for _, in := range infos {
				picked := f.All || (f.User != "" && in.User == f.User) || (f.Session != "" && in.Session == f.Session) ||
					(f.Idle > 0 && in.Owned && in.Idle >= f.Idle)
				if picked && !in.Spare {
					s.notice(in.Session, why)
				}
			}
		}
	}
	return m.Reap(ctx, f)
}

func (a adminView) Stats() admin.SandboxStats {
	m, err := a.s.manager()
	if err != nil {
		return admin.SandboxStats{}
	}
	st := m.Stats()
	return admin.SandboxStats{Running: st.Running, Queued: st.Queued, Spares: st.Spares, Cap: st.Cap}
}

func (a adminView) Ping(ctx context.Context) error { return a.s.Ping(ctx) }

// available adapts to admin.Options.Sandboxes: nil while Docker is away.
func (a adminView) available() admin.Sandboxes {
	if _, err := a.s.manager(); err != nil {
		return nil
	}
	return a
}

// endTest ends a student's sandboxes when their test time is over: they
// ran with the test's mounts and restrictions, the test folder writable.
// It returns at once; the course's loop goes on auto-submitting the others.
func (s *sandboxes) endTest(test, user string) {
	s.ending.Add(1)
	go func() {
		defer s.ending.Done()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		why := "Your time for this test is over, so your program was ended. Your work was submitted automatically."
		if _, err := s.reap(ctx, sandbox.Filter{User: user}, why); err != nil {
			s.logger.Warn("ending sandboxes after a test", "test", test, "user", user, "error", err)
		}
	}()
}
