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
	// spareSlots bounds the spares starting at once; cold starts for a
	// waiting student never take a slot.
	spareSlots chan struct{}

	ctx    context.Context // lives until Close; parents waits and background work
	cancel context.CancelFunc
	bg     sync.WaitGroup
	// launches counts containers being created: Close waits for them, so
	// a create still in flight at shutdown cannot leave a container behind.
	launches sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	sessions map[string]*Session // by session id
	byKey    map[string]*Session // by user + key
	spares   map[string]*spare   // by user
	owned    map[string]bool     // session ids of containers we created or are creating
	// nextSpare names each user's latest session: the delayed spare after a
	// Start copies its mounts, and Release cancels it.
	nextSpare map[string]string
	// starting counts each user's Starts in progress, so that concurrent
	// Starts cannot pass MaxSessions together.
	starting map[string]int
}

// LimitError: the user already has as many sessions as Spec.MaxSessions.
type LimitError struct{ Max int }

func (e *LimitError) Error() string {
	return fmt.Sprintf("you already have %d programs running, the most one student may have at once: stop one (in another tab or window) and run again", e.Max)
}

type spare struct {
	key     string
	spec    Spec
	ready   chan struct{} // closed when launch finished; then b or err is set
	settled chan struct{} // closed when its runner sits idle at the control line
	b       *box
	err     error
	taken   chan struct{} // closed when promoted to a session
	discard chan struct{} // closed when no longer wanted
	hurry   chan struct{} // closed when a Run claimed it: start without waiting for a slot
	touched time.Time
}

// New connects to the engine, removes what a previous run left behind and
// starts the periodic reconcile.
func New(ctx context.Context, opts Options) (*Manager, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &Manager{
		opts:       opts,
		cli:        opts.Client,
		log:        opts.Logger,
		q:          newQueue(opts.MaxConcurrent),
		spareSlots: make(chan struct{}, opts.SpareLaunches),
		sessions:   map[string]*Session{},
		byKey:      map[string]*Session{},
		spares:     map[string]*spare{},
		owned:      map[string]bool{},
		nextSpare:  map[string]string{},
		starting:   map[string]int{},
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
	if err := m.Ping(ctx); err != nil {
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
// position through onQueue; cancelling ctx leaves the line. A session
// already running for the same user and key is ended first.
func (m *Manager) Start(ctx context.Context, spec Spec, onQueue func(pos int)) (*Session, error) {
	if err := spec.validate(m.opts.MountRoot); err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	prev := m.byKey[sessionKey(spec.User, spec.Key)]
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
	if prev != nil {
		// Its teardown runs in the background, off the click path; its
		// queue slot frees once it is gone.
		prev.Stop(ReasonStopped)
	}
	if err := m.q.acquire(ctx, onQueue); err != nil {
		return nil, err
	}
	began := time.Now()
	s, err := m.start(ctx, spec)
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

// start runs a session once the queue has granted a slot.
func (m *Manager) start(ctx context.Context, spec Spec) (*Session, error) {
	var once sync.Once
	release := func() { once.Do(m.q.release) }

	b, warm := m.useSpare(ctx, spec)
	if b == nil {
		var err error
		if b, err = m.launch(ctx, spec, false); err != nil {
			release()
			return nil, err
		}
	}
	now := m.opts.Clock.Now()
	s := &Session{m: m, b: b, spec: spec, started: now, warm: warm, stopCh: make(chan struct{}), done: make(chan struct{}), release: release}
	s.lastInput.Store(now.UnixNano())
	s.lastOutput.Store(now.UnixNano())
	if err := s.sendControl(); err != nil {
		b.destroy()
		release()
		return nil, fmt.Errorf("sandbox: control line: %w", err)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		b.destroy()
		release()
		return nil, ErrClosed
	}
	m.sessions[s.ID()] = s
	// A concurrent Start for the same key may have won the race: the newest wins.
	if old := m.byKey[sessionKey(spec.User, spec.Key)]; old != nil {
		old.Stop(ReasonStopped)
	}
	m.byKey[sessionKey(spec.User, spec.Key)] = s
	m.nextSpare[spec.User] = s.ID()
	m.mu.Unlock()
	go s.run()
	if m.opts.SpareEnabled {
		m.bg.Add(1)
		go func() {
			defer m.bg.Done()
			// Creating the next spare costs the engine more CPU than the
			// click itself; wait until this Run has been served.
			t := time.NewTimer(m.opts.SpareDelay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-m.ctx.Done():
				return
			}
			if err := m.prepare(m.ctx, spec, s.ID()); err != nil && !errors.Is(err, ErrClosed) && m.ctx.Err() == nil {
				m.log.Warn("sandbox: spare", "user", spec.User, "error", err)
			}
		}()
	}
	m.log.Info("sandbox: session started", "session", s.ID(), "user", spec.User, "file", spec.File, "warm", warm)
	return s, nil
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
	return m.prepare(ctx, spec, "")
}

// prepare with a session id only acts if that session is still the user's
// latest Start and the user has not been released since: a spare created
// after the user left would idle until the maintenance sweep.
func (m *Manager) prepare(ctx context.Context, spec Spec, after string) error {
	if !m.opts.SpareEnabled {
		return nil
	}
	spec.File, spec.Key = "", ""
	if err := spec.validate(m.opts.MountRoot); err != nil {
		return err
	}
	key := spec.mountKey()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	if after != "" && m.nextSpare[spec.User] != after {
		m.mu.Unlock()
		return nil
	}
	sp := m.spares[spec.User]
	if sp != nil && sp.key != key {
		delete(m.spares, spec.User)
		close(sp.discard)
		sp = nil
	}
	if sp == nil {
		sp = &spare{key: key, spec: spec, ready: make(chan struct{}), settled: make(chan struct{}), taken: make(chan struct{}), discard: make(chan struct{}), hurry: make(chan struct{})}
		m.spares[spec.User] = sp
		m.bg.Add(1)
		go m.runSpare(sp)
	}
	sp.touched = m.opts.Clock.Now()
	m.mu.Unlock()
	select {
	case <-sp.settled:
		if errors.Is(sp.err, errSpareDropped) {
			return nil // the user left or asked for other mounts meanwhile
		}
		return sp.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// errSpareDropped ends a spare that was no longer wanted before its turn
// to start came: nothing was created.
var errSpareDropped = errors.New("sandbox: spare dropped before it started")

// runSpare starts a spare and owns its teardown until it is promoted.
func (m *Manager) runSpare(sp *spare) {
	defer m.bg.Done()
	slot, err := m.spareTurn(sp)
	if err != nil {
		sp.err = err
		close(sp.ready)
		close(sp.settled)
		m.dropSpare(sp)
		return
	}
	b, err := m.launch(m.ctx, sp.spec, true)
	if slot {
		<-m.spareSlots // the engine's part is done; Python starting up is not its work
	}
	sp.b, sp.err = b, err
	close(sp.ready)
	if err == nil {
		b.settle(m.ctx)
	}
	close(sp.settled)
	if err != nil {
		m.dropSpare(sp)
		return
	}
	select {
	case <-sp.taken:
		return
	case <-sp.discard:
	case <-b.exited:
		// Taken, then its script ended at once: the session owns it now.
		select {
		case <-sp.taken:
			return
		default:
		}
		m.dropSpare(sp)
	}
	b.destroy()
}

// spareTurn waits for a spare slot (slot true: the caller gives it back
// once the engine has started the container). A spare claimed by a Run goes
// at once, without a slot; one dropped while waiting never starts.
func (m *Manager) spareTurn(sp *spare) (slot bool, err error) {
	select {
	case m.spareSlots <- struct{}{}:
	case <-sp.hurry:
		return false, nil
	case <-sp.discard:
		return false, errSpareDropped
	case <-m.ctx.Done():
		return false, ErrClosed
	}
	select {
	case <-sp.discard: // both were ready and the slot won the draw
		<-m.spareSlots
		return false, errSpareDropped
	default:
		return true, nil
	}
}

func (m *Manager) dropSpare(sp *spare) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.spares[sp.spec.User] == sp {
		delete(m.spares, sp.spec.User)
	}
}

// useSpare hands over the user's spare for spec. A ready one is taken at
// once (warm). One still waiting for its turn or being created is claimed
// and waited for: it is further along than a new cold container would be,
// and the engine makes one container instead of two. nil when there is
// none, or it failed or died; the caller then starts cold.
func (m *Manager) useSpare(ctx context.Context, spec Spec) (b *box, warm bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sp := m.spares[spec.User]
	if sp == nil || sp.key != spec.mountKey() {
		return nil, false
	}
	delete(m.spares, spec.User)
	warm = isClosed(sp.ready)
	if !warm {
		close(sp.hurry)
		m.mu.Unlock()
		select {
		case <-sp.ready:
		case <-ctx.Done():
		}
		m.mu.Lock()
	}
	if isClosed(sp.ready) && sp.err == nil && !isClosed(sp.b.exited) {
		close(sp.taken)
		return sp.b, warm
	}
	// Given up, failed or dead: whatever was started goes away with it.
	close(sp.discard)
	return nil, false
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Release removes the user's spare (call it when the user disconnects).
func (m *Manager) Release(user string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.nextSpare, user)
	if sp := m.spares[user]; sp != nil {
		delete(m.spares, user)
		close(sp.discard)
	}
}

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

func (m *Manager) listManaged(ctx context.Context, allServers bool) ([]container.Summary, error) {
	f := make(client.Filters).Add("label", LabelManaged+"=true")
	if !allServers {
		f.Add("label", LabelServer+"="+m.opts.ServerID)
	}
	ctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	res, err := m.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, err
	}
	return res.Items, nil
}

// List returns every managed container on the engine, this server's first.
func (m *Manager) List(ctx context.Context) ([]Info, error) {
	items, err := m.listManaged(ctx, true)
	if err != nil {
		return nil, err
	}
	now := m.opts.Clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Info, 0, len(items))
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
		if s := m.sessions[in.Session]; s != nil {
			in.Spare, in.Key, in.File = false, s.spec.Key, s.spec.File
			in.Started = s.started
			in.Idle = now.Sub(time.Unix(0, s.lastInput.Load()))
		}
		if cg, ok := findCgroup(c.ID, 0); ok {
			in.CPU, _ = cg.cpuUsage()
			in.Memory, _ = cg.memoryUsage()
		}
		out = append(out, in)
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
	m.mu.Lock()
	spares := len(m.spares)
	m.mu.Unlock()
	return Stats{Running: running, Queued: waiting, Spares: spares, Cap: m.opts.MaxConcurrent}
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
	n := 0
	m.mu.Lock()
	for _, s := range m.sessions {
		idle := now.Sub(time.Unix(0, s.lastInput.Load()))
		if f.All || (f.User != "" && s.spec.User == f.User) || (f.Idle > 0 && idle >= f.Idle) || s.ID() == f.Session {
			victims = append(victims, s)
		}
	}
	for user, sp := range m.spares {
		if f.All || user == f.User {
			delete(m.spares, user)
			close(sp.discard)
			n++
		}
	}
	for user := range m.nextSpare {
		if f.All || user == f.User {
			delete(m.nextSpare, user)
		}
	}
	m.mu.Unlock()
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

// Reconcile removes every managed container of this server id that no
// session or spare of this Manager owns:
// leftovers of a crashed or killed server. Unlabelled containers are never
// touched.
func (m *Manager) Reconcile(ctx context.Context) (int, error) {
	return m.removeUnowned(ctx, func(container.Summary) bool { return true })
}

func (m *Manager) removeUnowned(ctx context.Context, match func(container.Summary) bool) (int, error) {
	items, err := m.listManaged(ctx, false)
	if err != nil {
		return 0, err
	}
	var errs []error
	n := 0
	for _, c := range items {
		if c.Labels[LabelManaged] != "true" || !match(c) {
			continue
		}
		m.mu.Lock()
		owned := m.owned[c.Labels[LabelSession]]
		m.mu.Unlock()
		if owned {
			continue
		}
		removed, err := m.removeIfPresent(ctx, c.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !removed {
			continue
		}
		m.log.Info("sandbox: removed unowned container", "container", c.ID[:12], "user", c.Labels[LabelUser])
		n++
	}
	return n, errors.Join(errs...)
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
		now := m.opts.Clock.Now()
		m.mu.Lock()
		for user, sp := range m.spares {
			if now.Sub(sp.touched) > m.opts.IdleTimeout {
				delete(m.spares, user)
				close(sp.discard)
			}
		}
		m.mu.Unlock()
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
	for user, sp := range m.spares {
		delete(m.spares, user)
		close(sp.discard)
	}
	m.mu.Unlock()
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
	m.cancel() // ends waits of spares still starting
	waited := make(chan struct{})
	go func() { m.bg.Wait(); m.launches.Wait(); close(waited) }()
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
