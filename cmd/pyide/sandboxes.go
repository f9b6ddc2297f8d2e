package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"sync"
	"time"

	"github.com/pythonide/pyide/pkg/admin"
	"github.com/pythonide/pyide/pkg/config"
	"github.com/pythonide/pyide/pkg/metrics"
	"github.com/pythonide/pyide/pkg/sandbox"
)

// sandboxes holds the sandbox manager, which exists only while a Docker
// engine answers: the server starts without one (the IDE still edits
// files), retries in the background, and serves Run as soon as the engine
// is back.
type sandboxes struct {
	cfg    config.Config
	logger *slog.Logger
	mx     *metrics.Metrics
	// overQuota, when set, measures whether a student's files are over
	// their quota (the workspace's OverQuota): sandboxes that write past it
	// end.
	overQuota func(user, role string) bool

	mu      sync.Mutex
	m       *sandbox.Manager
	lastErr error
	ending  sync.WaitGroup // endTest reaps still running
}

func (s *sandboxes) options() sandbox.Options {
	o := sandbox.Options{
		Image: s.cfg.SandboxImage, Runtime: s.cfg.SandboxRuntime, MemoryMB: int64(s.cfg.MemoryLimitMB),
		CPUSeconds: int(s.cfg.ExecutionTimeout / time.Second), SessionCPU: int(s.cfg.SessionCPUTimeout / time.Second),
		WallTimeout: s.cfg.WallTimeout,
		IdleTimeout: s.cfg.IdleTimeout, MaxConcurrent: s.cfg.MaxConcurrentExecutions,
		ReplAfterError: s.cfg.ReplAfterError, SandboxUID: s.cfg.SandboxUID, SandboxGID: s.cfg.SandboxUID,
		ServerID: serverID(s.cfg.DataPath), SpareEnabled: true, Logger: s.logger,
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

// connect tries once to reach the engine.
func (s *sandboxes) connect(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m != nil {
		return
	}
	m, err := sandbox.New(ctx, s.options())
	if err != nil {
		if s.lastErr == nil || s.lastErr.Error() != err.Error() {
			s.logger.Warn("execution unavailable; retrying in the background", "error", err)
		}
		s.lastErr = err
		return
	}
	if s.lastErr != nil {
		s.logger.Info("execution available again")
	}
	s.lastErr = nil
	s.m = m
}

// keepConnected retries every interval until ctx ends.
func (s *sandboxes) keepConnected(ctx context.Context, interval time.Duration) {
	every(ctx, interval, func() { s.connect(ctx) })
}

func (s *sandboxes) manager() (*sandbox.Manager, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		if s.lastErr != nil {
			return nil, s.lastErr
		}
		return nil, sandbox.ErrUnavailable
	}
	return s.m, nil
}

// close removes every sandbox this server runs.
func (s *sandboxes) close(ctx context.Context) error {
	s.ending.Wait()
	s.mu.Lock()
	m := s.m
	s.m = nil
	s.mu.Unlock()
	if m == nil {
		return nil
	}
	return m.Close(ctx)
}

// The terminal's view: every call fails with ErrUnavailable while Docker
// is away.

func (s *sandboxes) Start(ctx context.Context, spec sandbox.Spec, onQueue func(int)) (*sandbox.Session, error) {
	m, err := s.manager()
	if err != nil {
		return nil, err
	}
	return m.Start(ctx, spec, onQueue)
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

func (s *sandboxes) Ping(ctx context.Context) error {
	m, err := s.manager()
	if err != nil {
		return err
	}
	if err := m.Ping(ctx); err != nil {
		return err
	}
	return nil
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

func (a adminView) Stop(ctx context.Context, session string) error {
	m, err := a.s.manager()
	if err != nil {
		return err
	}
	n, err := m.Reap(ctx, sandbox.Filter{Session: session})
	if err == nil && n == 0 {
		return admin.ErrNotFound
	}
	return err
}

func (a adminView) Reap(ctx context.Context, idle time.Duration, user string, all bool) (int, error) {
	m, err := a.s.manager()
	if err != nil {
		return 0, err
	}
	return m.Reap(ctx, sandbox.Filter{Idle: idle, User: user, All: all})
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
		if _, err := (adminView{s}).Reap(ctx, 0, user, false); err != nil {
			s.logger.Warn("ending sandboxes after a test", "test", test, "user", user, "error", err)
		}
	}()
}
