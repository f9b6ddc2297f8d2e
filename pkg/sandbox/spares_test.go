package sandbox

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// The spare pool on its own, with fake containers: what it creates, hands
// over and removes, without an engine. The real pool over Docker is
// covered by TestWarmSpare, TestSpareLaunchLimit and TestRunClaimsPendingSpare.

const poolWait = 10 * time.Second // named bound for a fake launch; no engine, so short

type fakeBox struct {
	user      string
	exited    chan struct{}
	destroyed chan struct{}
	once      sync.Once
	renewErr  error // what renewed says about a recycled box
}

func (b *fakeBox) settle(context.Context) {}
func (b *fakeBox) gone() <-chan struct{}  { return b.exited }
func (b *fakeBox) destroy()               { b.once.Do(func() { close(b.destroyed) }) }
func (b *fakeBox) isDestroyed() bool      { return isClosed(b.destroyed) }
func (b *fakeBox) exit()                  { close(b.exited) }
func (b *fakeBox) renewed(context.Context) error {
	return b.renewErr
}

func recycledBox(user string, renewErr error) *fakeBox {
	return &fakeBox{user: user, exited: make(chan struct{}), destroyed: make(chan struct{}), renewErr: renewErr}
}

// fakeLauncher makes fakeBoxes; a user in hold waits until it is let go.
type fakeLauncher struct {
	mu       sync.Mutex
	launched map[string][]*fakeBox
	hold     map[string]chan struct{}
	fail     map[string]error
	began    chan string // a launch began (buffered)
}

func newLauncher() *fakeLauncher {
	return &fakeLauncher{launched: map[string][]*fakeBox{}, hold: map[string]chan struct{}{}, fail: map[string]error{}, began: make(chan string, 64)}
}

func (l *fakeLauncher) launch(ctx context.Context, spec Spec) (*fakeBox, error) {
	l.began <- spec.User
	l.mu.Lock()
	hold, err := l.hold[spec.User], l.fail[spec.User]
	l.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	b := &fakeBox{user: spec.User, exited: make(chan struct{}), destroyed: make(chan struct{})}
	l.mu.Lock()
	l.launched[spec.User] = append(l.launched[spec.User], b)
	l.mu.Unlock()
	return b, nil
}

func (l *fakeLauncher) holdUser(user string) (release func()) {
	ch := make(chan struct{})
	l.mu.Lock()
	l.hold[user] = ch
	l.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

func (l *fakeLauncher) boxes(user string) []*fakeBox {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*fakeBox(nil), l.launched[user]...)
}

func (l *fakeLauncher) waitBegan(t *testing.T, user string) {
	t.Helper()
	timer := time.NewTimer(poolWait)
	defer timer.Stop()
	for {
		select {
		case u := <-l.began:
			if u == user {
				return
			}
		case <-timer.C:
			t.Fatalf("no launch for %s", user)
		}
	}
}

type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newTestPool(t *testing.T, launches int) (*sparePool[*fakeBox], *fakeLauncher, *stepClock) {
	t.Helper()
	l := newLauncher()
	clock := &stepClock{now: time.Date(2025, 1, 6, 9, 0, 0, 0, time.UTC)}
	p := newSparePool(l.launch, poolOptions{Launches: launches, Delay: time.Hour, Idle: 30 * time.Minute, Clock: clock, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { p.close(); p.wait() })
	return p, l, clock
}

func folders(user, folder string) Spec {
	return Spec{User: user, Role: "student", Mounts: []Mount{{Source: "/data/" + folder, Target: "/home/student", Dev: 1, Ino: 2}}}
}

func prepare(t *testing.T, p *sparePool[*fakeBox], spec Spec) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), poolWait)
	defer cancel()
	if err := p.prepare(ctx, spec, ""); err != nil {
		t.Fatalf("prepare for %s: %v", spec.User, err)
	}
}

func claim(t *testing.T, p *sparePool[*fakeBox], spec Spec) (*fakeBox, bool, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), poolWait)
	defer cancel()
	return p.claim(ctx, spec)
}

func TestSparePool(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  func(t *testing.T, p *sparePool[*fakeBox], l *fakeLauncher, clock *stepClock)
	}{
		{"a ready spare is claimed warm, once", func(t *testing.T, p *sparePool[*fakeBox], l *fakeLauncher, _ *stepClock) {
			prepare(t, p, folders("ann", "a"))
			b, warm, ok := claim(t, p, folders("ann", "a"))
			if !ok || !warm || b.isDestroyed() {
				t.Fatalf("claim = %v, warm %v, ok %v", b, warm, ok)
			}
			if _, _, ok := claim(t, p, folders("ann", "a")); ok {
				t.Error("the same spare was claimed twice")
			}
			if p.count() != 0 {
				t.Errorf("%d spares held after the claim", p.count())
			}
		}},
		{"other folders do not take it", func(t *testing.T, p *sparePool[*fakeBox], l *fakeLauncher, _ *stepClock) {
			prepare(t, p, folders("ann", "a"))
			if _, _, ok := claim(t, p, folders("ann", "b")); ok {
				t.Fatal("a spare with other folders was claimed")
			}
			if p.count() != 1 || l.boxes("ann")[0].isDestroyed() {
				t.Error("a claim with other folders dropped the spare")
			}
		}},
		{"asking for other folders replaces it", func(t *testing.T, p *sparePool[*fakeBox], l *fakeLauncher, _ *stepClock) {
			prepare(t, p, folders("ann", "a"))
			prepare(t, p, folders("ann", "b"))
			boxes := l.boxes("ann")
			if len(boxes) != 2 || p.count() != 1 {
				t.Fatalf("%d launched, %d held; want 2 and 1", len(boxes), p.count())
			}
			eventually(t, "the first spare removed", boxes[0].isDestroyed)
			if _, _, ok := claim(t, p, folders("ann", "b")); !ok {
				t.Error("the new spare was not claimed")
			}
		}},
		{"release removes it", func(t *testing.T, p *sparePool[*fakeBox], l *fakeLauncher, _ *stepClock) {
			prepare(t, p, folders("ann", "a"))
			prepare(t, p, folders("bob", "b"))
			p.release("ann")
			eventually(t, "ann's spare removed", l.boxes("ann")[0].isDestroyed)
			if p.count() != 1 || l.boxes("bob")[0].isDestroyed() {
				t.Error("release touched another user's spare")
			}
		}},
		{"a spare that died is not handed over", func(t *testing.T, p *sparePool[*fakeBox], l *fakeLauncher, _ *stepClock) {
			prepare(t, p, folders("ann", "a"))
			l.boxes("ann")[0].exit()
			eventually(t, "the dead spare forgotten", func() bool { return p.count() == 0 })
			if _, _, ok := claim(t, p, folders("ann", "a")); ok {
				t.Error("a dead spare was claimed")
			}
			eventually(t, "the dead spare removed", l.boxes("ann")[0].isDestroyed)
		}},
		{"a failed launch is reported and forgotten", func(t *testing.T, p *sparePool[*fakeBox], l *fakeLauncher, _ *stepClock) {
			l.fail["ann"] = errors.New("engine says no")
			err := p.prepare(context.Background(), folders("ann", "a"), "")
			if err == nil || err.Error() != "engine says no" {
				t.Errorf("prepare = %v", err)
			}
			eventually(t, "the failed spare forgotten", func() bool { return p.count() == 0 })
		}},
		{"spares start a few at a time; one dropped while waiting never starts", func(t *testing.T, p *sparePool[*fakeBox], l *fakeLauncher, _ *stepClock) {
			let := l.holdUser("ann")
			defer let()
			go func() { _ = p.prepare(context.Background(), folders("ann", "a"), "") }()
			l.waitBegan(t, "ann") // ann's launch holds the only slot
			done := make(chan error, 1)
			go func() { done <- p.prepare(context.Background(), folders("bob", "b"), "") }()
			eventually(t, "bob's spare waiting", func() bool { return p.count() == 2 })
			p.release("bob")
			if err := <-done; err != nil {
				t.Errorf("prepare for bob, dropped while waiting: %v", err)
			}
			let()
			if n := len(l.boxes("bob")); n != 0 {
				t.Errorf("%d launched for bob, whose spare was dropped before its turn", n)
			}
		}},
		{"a Run claims a spare still waiting for its turn", func(t *testing.T, p *sparePool[*fakeBox], l *fakeLauncher, _ *stepClock) {
			let := l.holdUser("ann")
			defer let()
			go func() { _ = p.prepare(context.Background(), folders("ann", "a"), "") }()
			l.waitBegan(t, "ann")
			go func() { _ = p.prepare(context.Background(), folders("bob", "b"), "") }()
			eventually(t, "bob's spare waiting", func() bool { return p.count() == 2 })
			b, warm, ok := claim(t, p, folders("bob", "b"))
			if !ok || warm {
				t.Fatalf("claim of a waiting spare: warm %v, ok %v; want started for the claim, not warm", warm, ok)
			}
			if got := l.boxes("bob"); len(got) != 1 || got[0] != b {
				t.Errorf("bob's launches %v, want the one claimed", got)
			}
		}},
		{"a spare nobody asks for idles out", func(t *testing.T, p *sparePool[*fakeBox], l *fakeLauncher, clock *stepClock) {
			prepare(t, p, folders("ann", "a"))
			clock.advance(20 * time.Minute)
			prepare(t, p, folders("bob", "b"))
			clock.advance(20 * time.Minute)
			p.sweep()
			eventually(t, "ann's idle spare removed", l.boxes("ann")[0].isDestroyed)
			if p.count() != 1 || l.boxes("bob")[0].isDestroyed() {
				t.Error("the sweep removed bob's spare, asked for 20 minutes ago")
			}
		}},
		{"the spare after a Start waits for no later Start and no release", func(t *testing.T, p *sparePool[*fakeBox], l *fakeLauncher, _ *stepClock) {
			p.started(folders("ann", "a"), "s1", true)
			p.started(folders("ann", "a"), "s2", true)
			ctx := context.Background()
			if err := p.prepare(ctx, folders("ann", "a"), "s1"); err != nil || p.count() != 0 {
				t.Errorf("the spare after an older Start: %v, %d held", err, p.count())
			}
			p.release("ann")
			if err := p.prepare(ctx, folders("ann", "a"), "s2"); err != nil || p.count() != 0 {
				t.Errorf("the spare after a release: %v, %d held", err, p.count())
			}
			p.started(folders("ann", "a"), "s3", true)
			if err := p.prepare(ctx, folders("ann", "a"), "s3"); err != nil || p.count() != 1 {
				t.Errorf("the spare after the latest Start: %v, %d held", err, p.count())
			}
		}},
		{"a recycled container becomes the spare, and a claim of it is warm", func(t *testing.T, p *sparePool[*fakeBox], l *fakeLauncher, _ *stepClock) {
			p.started(folders("ann", "a"), "s1", false)
			b := recycledBox("ann", nil)
			p.offer(folders("ann", "a"), b)
			got, warm, ok := p.claim(context.Background(), folders("ann", "a"))
			if !ok || got != b || !warm {
				t.Fatalf("claim = %v warm %v ok %v, want the recycled box, warm", got, warm, ok)
			}
			if len(l.boxes("ann")) != 0 {
				t.Error("the engine made a container although one was recycled")
			}
		}},
		{"a recycled container is never another user's, nor for other folders", func(t *testing.T, p *sparePool[*fakeBox], l *fakeLauncher, _ *stepClock) {
			p.started(folders("ann", "a"), "s1", false)
			p.started(folders("bob", "b"), "s2", false)
			b := recycledBox("ann", nil)
			p.offer(folders("ann", "a"), b)
			if _, _, ok := p.claim(context.Background(), folders("bob", "b")); ok {
				t.Error("bob claimed a container ann's REPL ran in")
			}
			if _, _, ok := p.claim(context.Background(), folders("ann", "other")); ok {
				t.Error("a container with ann's old folders served other folders")
			}
			prepare(t, p, folders("ann", "other"))
			eventually(t, "the container with the old folders removed", b.isDestroyed)
		}},
		{"a container whose reset is in doubt is removed, and the engine makes the spare", func(t *testing.T, p *sparePool[*fakeBox], l *fakeLauncher, _ *stepClock) {
			p.started(folders("ann", "a"), "s1", false)
			b := recycledBox("ann", errors.New("a process survived"))
			p.offer(folders("ann", "a"), b)
			eventually(t, "the doubtful container removed", b.isDestroyed)
			l.waitBegan(t, "ann")
			got, _, ok := p.claim(context.Background(), folders("ann", "a"))
			if !ok || got == b {
				t.Errorf("claim = %v ok %v, want a new container", got, ok)
			}
		}},
		{"a recycled container is removed when the user left, or has a spare ready", func(t *testing.T, p *sparePool[*fakeBox], l *fakeLauncher, _ *stepClock) {
			gone := recycledBox("ann", nil)
			p.offer(folders("ann", "a"), gone) // no Start: the user is not here
			if !gone.isDestroyed() {
				t.Error("a container was kept for a user who left")
			}
			p.started(folders("ann", "a"), "s1", false)
			prepare(t, p, folders("ann", "a"))
			extra := recycledBox("ann", nil)
			p.offer(folders("ann", "a"), extra)
			if !extra.isDestroyed() || p.count() != 1 {
				t.Errorf("a second spare was kept (%d held)", p.count())
			}
			p.release("ann")
			late := recycledBox("ann", nil)
			p.offer(folders("ann", "a"), late)
			if !late.isDestroyed() {
				t.Error("a container was kept after the user's release")
			}
		}},
		{"drop selects users and counts", func(t *testing.T, p *sparePool[*fakeBox], l *fakeLauncher, _ *stepClock) {
			for _, u := range []string{"ann", "bob", "cid"} {
				prepare(t, p, folders(u, u))
			}
			if n := p.drop(func(u string) bool { return u != "bob" }); n != 2 {
				t.Errorf("drop = %d, want 2", n)
			}
			if p.count() != 1 {
				t.Errorf("%d held, want bob's", p.count())
			}
		}},
		{"close removes every spare and refuses new ones", func(t *testing.T, p *sparePool[*fakeBox], l *fakeLauncher, _ *stepClock) {
			prepare(t, p, folders("ann", "a"))
			p.close()
			p.wait()
			if !l.boxes("ann")[0].isDestroyed() {
				t.Error("a spare outlived close")
			}
			if err := p.prepare(context.Background(), folders("ann", "a"), ""); !errors.Is(err, ErrClosed) {
				t.Errorf("prepare after close = %v, want ErrClosed", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, l, clock := newTestPool(t, 1)
			tt.run(t, p, l, clock)
		})
	}
}

// eventually polls cond: a fake spare's teardown runs on its own goroutine.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(poolWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, poolWait)
		}
		time.Sleep(time.Millisecond) // polling interval, not a wait for the condition
	}
}
