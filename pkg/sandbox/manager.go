package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// ErrClosed is returned once Close has begun.
var ErrClosed = errors.New("sandbox: manager closed")

// ErrUnavailable wraps failures to reach the Docker engine or find the image.
var ErrUnavailable = errors.New("sandbox: execution unavailable")

// Manager owns every sandbox container of this server.
type Manager struct {
	opts    Options
	cli     *client.Client
	ownsCli bool
	log     *slog.Logger
	q       *queue
	spares  *sparePool[*box]

	ctx    context.Context // lives until Close; parents waits and background work
	cancel context.CancelFunc
	bg     sync.WaitGroup
	// launches counts containers being created: Close waits for them, so
	// a create still in flight at shutdown cannot leave a container behind.
	launches sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	sessions map[string]*Session // by session id
	// byKey is the one place that keeps "one session per user and key"
	// (a browser tab): see Start.
	byKey map[string]*Session
	owned map[string]bool // session ids of containers we created or are creating
	// starting counts each user's Starts in progress, so that concurrent
	// Starts cannot pass MaxSessions together.
	starting map[string]int
}

// LimitError: the user already has as many sessions as Spec.MaxSessions.
type LimitError struct{ Max int }

func (e *LimitError) Error() string {
	return fmt.Sprintf("you already have %d programs running, the most one student may have at once: stop one (in another tab or window) and run again", e.Max)
}

// New connects to the engine, removes what a previous run left behind and
// starts the periodic reconcile.
func New(ctx context.Context, opts Options) (*Manager, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &Manager{
		opts:     opts,
		cli:      opts.Client,
		log:      opts.Logger,
		q:        newQueue(opts.MaxConcurrent),
		sessions: map[string]*Session{},
		byKey:    map[string]*Session{},
		owned:    map[string]bool{},
		starting: map[string]int{},
	}
	if m.cli == nil {
		copts := []client.Opt{client.FromEnv}
		if opts.Host != "" {
			copts = append(copts, client.WithHost(opts.Host))
		}
		if m.cli, err = client.New(copts...); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		m.ownsCli = true
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.spares = newSparePool(func(ctx context.Context, spec Spec) (*box, error) { return m.launch(ctx, spec, true) },
		poolOptions{Launches: opts.SpareLaunches, Delay: opts.SpareDelay, Idle: opts.IdleTimeout, Clock: opts.Clock, Logger: m.log})
	if err := m.Ping(ctx); err != nil {
		m.spares.close()
		m.cancel()
		if m.ownsCli {
			_ = m.cli.Close()
		}
		return nil, err
	}
	if opts.Inspect {
		return m, nil
	}
	if n, err := m.Reconcile(ctx); err != nil {
		m.log.Warn("sandbox: reconcile at start", "error", err)
	} else if n > 0 {
		m.log.Info("sandbox: removed leftover containers", "count", n)
	}
	m.bg.Add(1)
	go m.maintain()
	return m, nil
}

// Ping checks that the engine answers and the image exists.
func (m *Manager) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	if _, err := m.cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return fmt.Errorf("%w: docker engine: %w", ErrUnavailable, err)
	}
	if _, err := m.cli.ImageInspect(ctx, m.opts.Image); err != nil {
		return fmt.Errorf("%w: image %s: %w", ErrUnavailable, m.opts.Image, err)
	}
	return nil
}

// reuse reports whether containers are reset in place and reused.
func (m *Manager) reuse() bool { return !m.opts.NoReuse }

// Options returns the effective options, defaults filled in.
func (m *Manager) Options() Options { return m.opts }

func sessionKey(user, key string) string { return user + "\x00" + key }

// own records a session id before its container exists, so Reconcile never
// removes a container that is being created.
func (m *Manager) own(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.owned[id] = true
	m.launches.Add(1)
	return true
}

func (m *Manager) disown(id string) {
	m.mu.Lock()
	delete(m.owned, id)
	m.mu.Unlock()
}

// Start runs spec.File (or an empty REPL) in a fresh container. When the
// server is at MaxConcurrent, it waits in a FIFO line and reports the
// position through onQueue; cancelling ctx leaves the line.
//
// A user has at most one session per Key (a browser tab), and this is the
// one place that keeps it so: Start first ends the session spec's User and
// Key have, whatever becomes of this Start and even when ctx has ended
// already, so that a run withdrawn at once still ends the one it replaced.
// Calls for one key must therefore come one after another.
func (m *Manager) Start(ctx context.Context, spec Spec, onQueue func(pos int)) (*Session, error) {
	k := sessionKey(spec.User, spec.Key)
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	prev := m.byKey[k]
	delete(m.byKey, k)
	m.mu.Unlock()
	// The container of the session this Start replaces is reset and
	// becomes the next spare when it has the same folders: no other is
	// asked for. (With other folders, the spare asked for instead drops it.)
	recycling := prev != nil && prev.b.link != nil && prev.spec.mountKey() == spec.mountKey()
	if prev != nil {
		// Its teardown runs in the background, off the click path; its
		// queue slot is free when Stop returns.
		prev.Stop(ReasonStopped)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := spec.validate(m.opts.MountRoot); err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	if spec.MaxSessions > 0 && m.liveLocked(spec) >= spec.MaxSessions {
		m.mu.Unlock()
		return nil, &LimitError{Max: spec.MaxSessions}
	}
	m.starting[spec.User]++
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		if m.starting[spec.User]--; m.starting[spec.User] <= 0 {
			delete(m.starting, spec.User)
		}
		m.mu.Unlock()
	}()
	if err := m.q.acquire(ctx, onQueue); err != nil {
		return nil, err
	}
	began := time.Now()
	s, err := m.start(ctx, spec, recycling)
	if m.opts.OnStart != nil {
		m.opts.OnStart(s != nil && s.warm, time.Since(began), err)
	}
	return s, err
}

// liveLocked counts the user's sessions that a Start of spec would add to:
// those running under other keys and not being stopped, and Starts in
// progress.
func (m *Manager) liveLocked(spec Spec) int {
	n := m.starting[spec.User]
	for _, s := range m.sessions {
		if s.spec.User == spec.User && s.spec.Key != spec.Key && !isClosed(s.stopCh) {
			n++
		}
	}
	return n
}

// failurePing bounds the look at the engine after a failed start.
const failurePing = 5 * time.Second

// start runs a session once the queue has granted a slot.
func (m *Manager) start(ctx context.Context, spec Spec, recycling bool) (*Session, error) {
	var once sync.Once
	release := func() { once.Do(m.q.release) }

	b, warm, ok := m.spares.claim(ctx, spec)
	if !ok {
		var err error
		if b, err = m.launch(ctx, spec, false); err != nil {
			release()
			return nil, m.explain(ctx, err)
		}
	}
	now := m.opts.Clock.Now()
	id := b.session
	if b.uses > 0 {
		id = newID()
	}
	b.uses++
	s := &Session{m: m, b: b, id: id, spec: spec, started: now, warm: warm, stopCh: make(chan struct{}), done: make(chan struct{}), release: release}
	s.lastInput.Store(now.UnixNano())
	s.lastOutput.Store(now.UnixNano())
	if err := s.sendControl(ctx); err != nil {
		b.destroy()
		release()
		return nil, fmt.Errorf("sandbox: control line: %w", err)
	}
	k := sessionKey(spec.User, spec.Key)
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		b.destroy()
		release()
		return nil, ErrClosed
	}
	m.sessions[s.ID()] = s
	// Calls for one key come one after another; should two overlap
	// anyway, the one that finishes last holds the key.
	if old := m.byKey[k]; old != nil {
		old.Stop(ReasonStopped)
	}
	m.byKey[k] = s
	m.mu.Unlock()
	go s.run()
	if m.opts.SpareEnabled {
		m.spares.started(spec, s.ID(), !recycling)
	}
	m.log.Info("sandbox: session started", "session", s.ID(), "user", spec.User, "file", spec.File, "warm", warm)
	return s, nil
}

// explain tells a failure of the engine from one of this request: when a
// create failed and the engine does not answer (or the image is gone), the
// error is the engine's, ErrUnavailable, for the caller to word as
// "execution is unavailable". The look is bounded and holds no lock.
func (m *Manager) explain(ctx context.Context, err error) error {
	if ctx.Err() != nil || errors.Is(err, ErrClosed) || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrMountChanged) {
		return err
	}
	pctx, cancel := context.WithTimeout(m.ctx, failurePing)
	defer cancel()
	if perr := m.Ping(pctx); perr != nil {
		m.log.Warn("sandbox: a start failed and the engine does not answer", "error", err, "ping", perr)
		return perr
	}
	return err
}

// recycle takes back the container of a session that ended in an
// ordinary way: once its supervisor has made it fresh, it is the user's
// next spare (or it is removed, when the user left, already has a spare,
// or the reset is in any doubt).
func (m *Manager) recycle(spec Spec, b *box) {
	if !m.opts.SpareEnabled {
		b.destroy()
		return
	}
	m.spares.offer(spec, b)
}

func (m *Manager) forget(s *Session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sessions, s.ID())
	k := sessionKey(s.spec.User, s.spec.Key)
	if m.byKey[k] == s {
		delete(m.byKey, k)
	}
}

// Prepare makes sure one spare container is running for spec.User with
// spec's mounts, and waits until its runner sits idle waiting for the
// control line (or ctx ends; the spare keeps starting in the background).
// It is a no-op unless SpareEnabled.
func (m *Manager) Prepare(ctx context.Context, spec Spec) error {
	if !m.opts.SpareEnabled {
		return nil
	}
	spec.File, spec.Key, spec.MaxSessions = "", "", 0
	if err := spec.validate(m.opts.MountRoot); err != nil {
		return err
	}
	return m.spares.prepare(ctx, spec, "")
}

// Release removes the user's spare (call it when the user disconnects).
func (m *Manager) Release(user string) { m.spares.release(user) }

// Info describes one sandbox container.
type Info struct {
	Session   string
	Container string
	Name      string
	User      string
	Role      string
	Key       string
	File      string
	Server    string
	Spare     bool   // an idle warm container nobody runs yet
	Owned     bool   // tracked by this Manager
	State     string // Docker state: running, exited, ...
	Started   time.Time
	Idle      time.Duration // since the last input; only for owned sessions
	CPU       time.Duration // cumulative, when cheap to read
	Memory    int64         // bytes, when cheap to read
}

// List returns every managed container on the engine, this server's first.
func (m *Manager) List(ctx context.Context) ([]Info, error) {
	items, err := m.listManaged(ctx, true)
	if err != nil {
		return nil, err
	}
	now := m.opts.Clock.Now()
	out := make([]Info, 0, len(items))
	m.mu.Lock()
	// A reused container keeps the session label of its first session.
	byBox := make(map[string]*Session, len(m.sessions))
	for _, s := range m.sessions {
		byBox[s.b.session] = s
	}
	for _, c := range items {
		l := c.Labels
		in := Info{
			Session: l[LabelSession], Container: c.ID, User: l[LabelUser], Role: l[LabelRole],
			File: l[LabelFile], Server: l[LabelServer], Spare: l[LabelSpare] == "true",
			State: string(c.State), Started: time.Unix(c.Created, 0),
		}
		if len(c.Names) > 0 {
			in.Name = strings.TrimPrefix(c.Names[0], "/")
		}
		in.Owned = m.owned[in.Session]
		if s := byBox[in.Session]; s != nil {
			in.Session, in.Spare, in.Key, in.File = s.ID(), false, s.spec.Key, s.spec.File
			in.Started = s.started
			in.Idle = now.Sub(time.Unix(0, s.lastInput.Load()))
		}
		out = append(out, in)
	}
	m.mu.Unlock()
	// The cgroup files are read without the lock: a Start waits for none.
	for i := range out {
		if cg, ok := findCgroup(out[i].Container, 0); ok {
			out[i].CPU, _ = cg.cpuUsage()
			out[i].Memory, _ = cg.memoryUsage()
		}
	}
	slices.SortFunc(out, func(a, b Info) int {
		if a.Server != b.Server {
			if a.Server == m.opts.ServerID {
				return -1
			}
			if b.Server == m.opts.ServerID {
				return 1
			}
		}
		return a.Started.Compare(b.Started)
	})
	return out, nil
}

// Filter selects sessions for Reap.
type Filter struct {
	Idle    time.Duration // sessions with no input for at least this long
	User    string        // every session and spare of this user
	Session string        // one session, by id
	All     bool
}

// Stats is the manager's load: sessions running, waiting in the queue,
// spares held, and the cap (0 = none).
type Stats struct {
	Running, Queued, Spares, Cap int
}

// Stats reports the current load.
func (m *Manager) Stats() Stats {
	running, waiting := m.q.stats()
	return Stats{Running: running, Queued: waiting, Spares: m.spares.count(), Cap: m.opts.MaxConcurrent}
}

// Reap ends the selected sessions (reason reaped) and waits for them. With
// User or All it also removes matching managed containers no live session
// of this Manager owns (in the same scope as Reconcile), so the CLI can
// clean up after a server it is not part of.
func (m *Manager) Reap(ctx context.Context, f Filter) (int, error) {
	if !f.All && f.User == "" && f.Session == "" && f.Idle <= 0 {
		return 0, errors.New("sandbox: reap needs a filter")
	}
	now := m.opts.Clock.Now()
	var victims []*Session
	m.mu.Lock()
	for _, s := range m.sessions {
		idle := now.Sub(time.Unix(0, s.lastInput.Load()))
		if f.All || (f.User != "" && s.spec.User == f.User) || (f.Idle > 0 && idle >= f.Idle) || s.ID() == f.Session {
			victims = append(victims, s)
		}
	}
	m.mu.Unlock()
	n := m.spares.drop(func(user string) bool { return f.All || user == f.User })
	for _, s := range victims {
		s.Stop(ReasonReaped)
	}
	for _, s := range victims {
		select {
		case <-s.Done():
			n++
		case <-ctx.Done():
			return n, ctx.Err()
		}
	}
	if f.All || f.User != "" || f.Session != "" {
		k, err := m.removeUnowned(ctx, func(c container.Summary) bool {
			return f.All || (f.User != "" && c.Labels[LabelUser] == f.User) || (f.Session != "" && c.Labels[LabelSession] == f.Session)
		})
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// maintain reconciles and drops spares nobody asked for in a while.
func (m *Manager) maintain() {
	defer m.bg.Done()
	t := time.NewTicker(m.opts.MaintainInterval)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
		}
		if _, err := m.Reconcile(m.ctx); err != nil && m.ctx.Err() == nil {
			m.log.Warn("sandbox: reconcile", "error", err)
		}
		m.spares.sweep()
	}
}

// Close ends every session and spare, waits for their removal, and removes
// any container still labelled with this server id.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	var all []*Session
	for _, s := range m.sessions {
		all = append(all, s)
	}
	m.mu.Unlock()
	m.spares.close()
	for _, s := range all {
		s.Stop(ReasonStopped)
	}
	var errs []error
	for _, s := range all {
		select {
		case <-s.Done():
		case <-ctx.Done():
			errs = append(errs, ctx.Err())
		}
	}
	m.cancel()
	waited := make(chan struct{})
	go func() { m.bg.Wait(); m.spares.wait(); m.launches.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-ctx.Done():
		errs = append(errs, ctx.Err())
	}
	m.mu.Lock()
	clear(m.owned)
	m.mu.Unlock()
	if _, err := m.removeUnowned(context.WithoutCancel(ctx), func(c container.Summary) bool {
		return c.Labels[LabelServer] == m.opts.ServerID
	}); err != nil {
		errs = append(errs, err)
	}
	if m.ownsCli {
		errs = append(errs, m.cli.Close())
	}
	return errors.Join(errs...)
}
