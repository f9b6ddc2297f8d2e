package sandbox

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// warmBox is what a spare pool holds: a started container whose runner
// waits for its control line (a *box; a fake in the pool's own tests).
type warmBox interface {
	// settle returns once the runner sits idle at its control line, or
	// after a bound: a spare is usable, only slower, before it settles.
	settle(ctx context.Context)
	// gone is closed once the container has exited.
	gone() <-chan struct{}
	// destroy removes the container; safe to call more than once.
	destroy()
	// renewed waits until a container whose REPL ended is fresh again,
	// and checks that nothing of that REPL survived; any doubt is an error.
	renewed(ctx context.Context) error
}

// sparePool owns the warm spares: at most one per user, created a few at a
// time, claimed by a Run (which then owns the box), dropped when the user
// leaves, asks for other folders, or idles. Nothing else creates or
// removes a spare.
type sparePool[B warmBox] struct {
	launch func(ctx context.Context, spec Spec) (B, error)
	clock  Clock
	log    *slog.Logger
	delay  time.Duration // from a Start to that user's next spare
	idle   time.Duration // a spare nobody asked for this long is dropped
	// slots bounds the spares being created at once; a cold start for a
	// waiting student never takes one.
	slots chan struct{}

	ctx    context.Context // ends at close: spares still waiting or starting give up
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	spares map[string]*spare[B] // by user
	// latest names each user's latest session: the spare that follows a
	// Start is made only if no other Start, and no release, came since.
	latest map[string]string
}

type spare[B warmBox] struct {
	key     string // the mount set (Spec.mountKey): a spare serves only the same
	spec    Spec
	ready   chan struct{} // closed when the launch finished; then b or err is set
	settled chan struct{} // closed when its runner sits idle at the control line
	b       B
	err     error
	taken   chan struct{} // closed when claimed: the claimer owns b
	discard chan struct{} // closed when no longer wanted
	hurry   chan struct{} // closed when a Run claimed it before it started: go without a slot
	touched time.Time
	// recycled is a container a session of the user ran in, being reset
	// in place: claiming it never waits for the engine.
	recycled bool
}

type poolOptions struct {
	Launches int // spares created at once
	Delay    time.Duration
	Idle     time.Duration
	Clock    Clock
	Logger   *slog.Logger
}

func newSparePool[B warmBox](launch func(context.Context, Spec) (B, error), o poolOptions) *sparePool[B] {
	p := &sparePool[B]{
		launch: launch, clock: o.Clock, log: o.Logger, delay: o.Delay, idle: o.Idle,
		slots:  make(chan struct{}, o.Launches),
		spares: map[string]*spare[B]{},
		latest: map[string]string{},
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p
}

// errSpareDropped ends a spare that was no longer wanted before its turn
// to start came: nothing was created.
var errSpareDropped = errors.New("sandbox: spare dropped before it started")

// prepare makes sure one spare for spec (already validated, without File
// and Key) is on its way, and waits until its runner has settled (or ctx
// ends; the spare keeps starting). With after, it acts only if that is
// still the user's latest session.
func (p *sparePool[B]) prepare(ctx context.Context, spec Spec, after string) error {
	key := spec.mountKey()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	if after != "" && p.latest[spec.User] != after {
		p.mu.Unlock()
		return nil
	}
	sp := p.spares[spec.User]
	if sp != nil && sp.key != key {
		p.dropLocked(spec.User, sp)
		sp = nil
	}
	if sp == nil {
		sp = &spare[B]{key: key, spec: spec, ready: make(chan struct{}), settled: make(chan struct{}),
			taken: make(chan struct{}), discard: make(chan struct{}), hurry: make(chan struct{})}
		p.spares[spec.User] = sp
		p.wg.Add(1)
		go p.run(sp)
	}
	sp.touched = p.clock.Now()
	p.mu.Unlock()
	select {
	case <-sp.settled:
		if errors.Is(sp.err, errSpareDropped) {
			return nil // the user left or asked for other folders meanwhile
		}
		return sp.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// started records session as user's latest and, with next, after the
// delay asks for the next spare with spec's folders, unless another Start
// or a release came since. It returns at once.
func (p *sparePool[B]) started(spec Spec, session string, next bool) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.latest[spec.User] = session
	if !next {
		p.mu.Unlock()
		return
	}
	p.wg.Add(1)
	p.mu.Unlock()
	spec.File, spec.Key, spec.MaxSessions = "", "", 0
	go func() {
		defer p.wg.Done()
		// Creating the next spare costs the engine more CPU than the
		// click itself; wait until this Run has been served.
		t := time.NewTimer(p.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-p.ctx.Done():
			return
		}
		if err := p.prepare(p.ctx, spec, session); err != nil && !errors.Is(err, ErrClosed) && p.ctx.Err() == nil {
			p.log.Warn("sandbox: spare", "user", spec.User, "error", err)
		}
	}()
}

// run starts a spare and owns its teardown until it is claimed.
func (p *sparePool[B]) run(sp *spare[B]) {
	defer p.wg.Done()
	slot, err := p.turn(sp)
	if err != nil {
		sp.err = err
		close(sp.ready)
		close(sp.settled)
		p.forget(sp)
		return
	}
	b, err := p.launch(p.ctx, sp.spec)
	if slot {
		<-p.slots // the engine's part is done; Python starting up is not its work
	}
	sp.b, sp.err = b, err
	close(sp.ready)
	if err == nil {
		b.settle(p.ctx)
	}
	close(sp.settled)
	if err != nil {
		p.forget(sp)
		return
	}
	p.keep(sp, b)
}

// offer takes back the container b of a session of spec's user that ended
// in an ordinary way, while its supervisor resets it, as the user's spare
// for the same folders. It is removed instead when the pool is closed, the
// user left (released, reaped) or already has a spare ready, or the reset
// fails; a spare of the engine still on its way gives way to it.
func (p *sparePool[B]) offer(spec Spec, b B) {
	spec.File, spec.Key, spec.MaxSessions = "", "", 0
	key := spec.mountKey()
	p.mu.Lock()
	if p.closed || p.latest[spec.User] == "" {
		p.mu.Unlock()
		b.destroy()
		return
	}
	if old := p.spares[spec.User]; old != nil {
		if old.key == key && isClosed(old.ready) && old.err == nil {
			p.mu.Unlock()
			b.destroy()
			return
		}
		p.dropLocked(spec.User, old)
	}
	sp := &spare[B]{key: key, spec: spec, ready: make(chan struct{}), settled: make(chan struct{}),
		taken: make(chan struct{}), discard: make(chan struct{}), hurry: make(chan struct{}),
		touched: p.clock.Now(), recycled: true}
	p.spares[spec.User] = sp
	p.wg.Add(1)
	p.mu.Unlock()
	go p.hold(sp, b)
}

// hold waits for a recycled container to be fresh, then keeps it like a
// spare of its own.
func (p *sparePool[B]) hold(sp *spare[B], b B) {
	defer p.wg.Done()
	err := b.renewed(p.ctx)
	sp.b, sp.err = b, err
	close(sp.ready)
	close(sp.settled)
	if err != nil {
		p.log.Info("sandbox: a container is not reused", "user", sp.spec.User, "error", err)
		p.forget(sp)
		b.destroy()
		p.refill(sp.spec)
		return
	}
	p.keep(sp, b)
}

// refill asks the engine for a spare for spec's user when a container
// that would have been their next one is not (its REPL hit a limit, its
// reset failed), unless they left, have a spare, or started again since.
func (p *sparePool[B]) refill(spec Spec) {
	spec.File, spec.Key, spec.MaxSessions = "", "", 0
	p.mu.Lock()
	session := p.latest[spec.User]
	if p.closed || session == "" || p.spares[spec.User] != nil {
		p.mu.Unlock()
		return
	}
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		if err := p.prepare(p.ctx, spec, session); err != nil && !errors.Is(err, ErrClosed) && p.ctx.Err() == nil {
			p.log.Warn("sandbox: spare", "user", spec.User, "error", err)
		}
	}()
}

// keep holds a ready spare until it is claimed (the claimer owns it), or
// removes it once it is no longer wanted or its container ended.
func (p *sparePool[B]) keep(sp *spare[B], b B) {
	select {
	case <-sp.taken:
		return
	case <-sp.discard:
	case <-b.gone():
		// Taken, then its script ended at once: the claimer owns it now.
		select {
		case <-sp.taken:
			return
		default:
		}
		p.forget(sp)
	}
	b.destroy()
}

// turn waits for a slot (slot true: the caller gives it back once the
// engine has started the container). A spare claimed by a Run goes at
// once, without a slot; one dropped while waiting never starts.
func (p *sparePool[B]) turn(sp *spare[B]) (slot bool, err error) {
	select {
	case p.slots <- struct{}{}:
	case <-sp.hurry:
		return false, nil
	case <-sp.discard:
		return false, errSpareDropped
	case <-p.ctx.Done():
		return false, ErrClosed
	}
	select {
	case <-sp.discard: // both were ready and the slot won the draw
		<-p.slots
		return false, errSpareDropped
	default:
		return true, nil
	}
}

// forget removes sp from the pool if it is still the user's spare.
func (p *sparePool[B]) forget(sp *spare[B]) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.spares[sp.spec.User] == sp {
		delete(p.spares, sp.spec.User)
	}
}

// dropLocked discards the user's spare sp; its own goroutine removes it.
func (p *sparePool[B]) dropLocked(user string, sp *spare[B]) {
	delete(p.spares, user)
	close(sp.discard)
}

// claim hands over the user's spare for spec's folders. A ready one is
// taken at once (warm). One still waiting for its turn or being created is
// claimed and waited for: it is further along than a new cold container
// would be, and the engine makes one container instead of two. ok is false
// when there is none, or it failed or died; the caller then starts cold.
func (p *sparePool[B]) claim(ctx context.Context, spec Spec) (b B, warm, ok bool) {
	p.mu.Lock()
	sp := p.spares[spec.User]
	if sp == nil || sp.key != spec.mountKey() {
		p.mu.Unlock()
		return b, false, false
	}
	delete(p.spares, spec.User)
	p.mu.Unlock()
	warm = isClosed(sp.ready) || sp.recycled
	if !isClosed(sp.ready) {
		close(sp.hurry)
		select {
		case <-sp.ready:
		case <-ctx.Done():
		}
	}
	if isClosed(sp.ready) && sp.err == nil && !isClosed(sp.b.gone()) {
		close(sp.taken)
		return sp.b, warm, true
	}
	// Given up, failed or dead: whatever was started goes away with it.
	close(sp.discard)
	return b, false, false
}

// release drops the user's spare and the one that would follow their
// latest Start (call it when the user disconnects).
func (p *sparePool[B]) release(user string) {
	p.drop(func(u string) bool { return u == user })
}

// drop discards the spares of the users match selects, and the spares
// their latest Starts would have asked for, and counts the spares dropped.
func (p *sparePool[B]) drop(match func(user string) bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for user, sp := range p.spares {
		if match(user) {
			p.dropLocked(user, sp)
			n++
		}
	}
	for user := range p.latest {
		if match(user) {
			delete(p.latest, user)
		}
	}
	return n
}

// sweep drops the spares nobody asked for within the idle time.
func (p *sparePool[B]) sweep() {
	now := p.clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for user, sp := range p.spares {
		if now.Sub(sp.touched) > p.idle {
			p.dropLocked(user, sp)
		}
	}
}

// count is the number of spares held, ready or on their way.
func (p *sparePool[B]) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.spares)
}

// close drops every spare and refuses new ones; wait then waits for their
// removal.
func (p *sparePool[B]) close() {
	p.mu.Lock()
	p.closed = true
	for user, sp := range p.spares {
		p.dropLocked(user, sp)
	}
	clear(p.latest)
	p.mu.Unlock()
	p.cancel()
}

// wait waits until every spare the pool started is removed or claimed.
func (p *sparePool[B]) wait() { p.wg.Wait() }

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
