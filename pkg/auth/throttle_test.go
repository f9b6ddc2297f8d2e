package auth_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/servertest"
	"github.com/pythonide/pyide/pkg/store"
	"github.com/pythonide/pyide/pkg/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

const limit = 5 // LOGIN_MAX_FAILURES' default

// timers is the injected clock's timer: a test sees each penalty start and
// decides when it ends, so nothing here sleeps.
type timers struct {
	started chan time.Duration
	fire    chan time.Time
}

func newTimers() *timers {
	return &timers{started: make(chan time.Duration), fire: make(chan time.Time)}
}

func (tm *timers) After(d time.Duration) <-chan time.Time {
	tm.started <- d
	return tm.fire
}

// nextPenalty waits for the next penalty to start.
func (tm *timers) nextPenalty(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-tm.started:
		return d
	case <-time.After(servertest.WaitShort):
		t.Fatal("no penalty started")
		return 0
	}
}

type env struct {
	db     *store.DB
	hasher *auth.Hasher
	svc    *auth.Service
	timers *timers
	clock  *servertest.Clock
}

// newEnv is a Service on a fresh database with a cheap bcrypt (cost 4: the
// throttle does not care how slow a comparison is, only how many run) and
// users[name] = password.
func newEnv(t *testing.T, users map[string]string) *env {
	t.Helper()
	e := &env{db: storetest.New(t), hasher: auth.NewHasher(4, 4), timers: newTimers(),
		clock: servertest.NewClock(time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC))}
	e.svc = auth.New(auth.Options{
		DB: e.db, Hasher: e.hasher, IdleTimeout: time.Hour, AbsoluteTimeout: 8 * time.Hour,
		MaxFailures: limit, Window: 15 * time.Minute, AddressPenalty: time.Second,
		Clock: e.clock.Now, After: e.timers.After,
	})
	ctx := context.Background()
	for name, pw := range users {
		h, err := e.hasher.Hash(ctx, pw)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.CreateUser(ctx, store.User{Username: name, Role: auth.RoleStudent, PasswordHash: h}); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *env) login(name, pw, addr string) error {
	_, _, err := e.svc.Login(context.Background(), name, pw, addr, "test")
	return err
}

// outcome names an error of Login for test messages and tallies.
func outcome(err error) string {
	var th *auth.ThrottledError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, auth.ErrBadCredentials):
		return "wrong"
	case errors.As(err, &th):
		return "throttled"
	default:
		return err.Error()
	}
}

// Many wrong passwords for one account sent at once: the limit is reserved
// before bcrypt, so no more than the limit are ever compared, whichever
// addresses they come from.
func TestParallelGuessesReachBcryptAtMostLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]string{"alice": "correct horse"})
	base := e.hasher.Compares()
	const n = 40
	var wg sync.WaitGroup
	results := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			results <- outcome(e.login("alice", fmt.Sprintf("guess %d", i), fmt.Sprintf("198.51.100.%d", i)))
		})
	}
	wg.Wait()
	close(results)
	tally := map[string]int{}
	for r := range results {
		tally[r]++
	}
	if got := e.hasher.Compares() - base; got > limit {
		t.Errorf("%d parallel guesses ran %d bcrypt comparisons, want at most %d (answers: %v)", n, got, limit, tally)
	}
	if tally["wrong"] != limit || tally["throttled"] != n-limit {
		t.Errorf("answers %v, want %d wrong and %d throttled", tally, limit, n-limit)
	}
	// The account is locked now, for its owner too, until the window passes.
	if got := outcome(e.login("alice", "correct horse", "203.0.113.1")); got != "throttled" {
		t.Errorf("right password on a locked account: %s, want throttled", got)
	}
	e.clock.Advance(15*time.Minute + time.Second)
	if got := outcome(e.login("alice", "correct horse", "203.0.113.1")); got != "ok" {
		t.Errorf("right password after the window: %s", got)
	}
}

// The same storm with the right password (a student with five tabs, or a
// retrying client): attempts beyond the limit wait for the ones running
// instead of being refused, and every one gets in.
func TestParallelRightPasswordsAllSucceed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]string{"prof": "lecture notes"})
	const n = 20
	var wg sync.WaitGroup
	results := make(chan string, n)
	for range n {
		wg.Go(func() { results <- outcome(e.login("prof", "lecture notes", "192.0.2.10")) })
	}
	wg.Wait()
	close(results)
	for r := range results {
		if r != "ok" {
			t.Fatalf("a right password in a storm got %s", r)
		}
	}
}

// A spray of made-up names from one address (a lab behind one NAT, or the
// reverse proxy) must not lock that address's real students out: after it,
// 200 students with their right passwords all get in.
func TestSprayDoesNotLockOutALab(t *testing.T) {
	t.Parallel()
	users := map[string]string{}
	for i := range 200 {
		users[fmt.Sprintf("s%03d", i)] = fmt.Sprintf("password of s%03d", i)
	}
	e := newEnv(t, users)
	const lab = "10.20.30.40"
	for i := range 50 {
		if got := outcome(e.login(fmt.Sprintf("nobody%d", i), "guess", lab)); got != "wrong" {
			t.Fatalf("spray attempt %d: %s", i+1, got)
		}
	}
	var wg sync.WaitGroup
	failed := make(chan string, len(users))
	for name, pw := range users {
		wg.Go(func() {
			if got := outcome(e.login(name, pw, lab)); got != "ok" {
				failed <- name + ": " + got
			}
		})
	}
	wg.Wait()
	close(failed)
	var bad []string
	for f := range failed {
		bad = append(bad, f)
	}
	if len(bad) > 0 {
		t.Fatalf("%d of 200 students with the right password were refused after a spray from their address, e.g. %s", len(bad), bad[0])
	}
}

// Past its allowance of failures an address is slowed, not refused: its
// attempts go one at a time and each failure holds the turn for the
// penalty, so a parallel spray from it gets one guess per penalty; a right
// password from it still gets in, and other addresses are not slowed.
func TestSprayFromOneAddressIsSlowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]string{"bob": "battery staple"})
	const lab, elsewhere = "10.20.30.40", "192.0.2.99"
	for i := range limit * 10 { // the address's allowance
		if got := outcome(e.login(fmt.Sprintf("made-up%d", i), "guess", lab)); got != "wrong" {
			t.Fatalf("attempt %d within the allowance: %s", i+1, got)
		}
	}
	base := e.hasher.Compares()
	const n = 10
	var wg sync.WaitGroup
	results := make(chan string, n)
	for i := range n {
		wg.Go(func() { results <- outcome(e.login(fmt.Sprintf("sprayed%d", i), "guess", lab)) })
	}
	for i := 1; i <= n; i++ {
		if d := e.timers.nextPenalty(t); d != time.Second {
			t.Fatalf("penalty %v, want 1s", d)
		}
		// The one holding the turn has compared; everyone else waits.
		if got := e.hasher.Compares() - base; got != int64(i) {
			t.Fatalf("during penalty %d: %d comparisons, want %d (one at a time)", i, got, i)
		}
		e.timers.fire <- e.clock.Now()
	}
	wg.Wait()
	close(results)
	for r := range results {
		if r != "wrong" {
			t.Fatalf("a slowed failure must still read as a wrong password (not reveal anything): %s", r)
		}
	}

	// While one more failure holds the lab's turn, another address is not
	// slowed at all (no penalty, answered at once)...
	go func() { _ = e.login("sprayed-more", "guess", lab) }()
	e.timers.nextPenalty(t)
	if got := outcome(e.login("someone", "guess", elsewhere)); got != "wrong" {
		t.Fatalf("another address: %s", got)
	}
	// ...and a right password from the lab waits for the turn, then gets in.
	done := make(chan string, 1)
	go func() { done <- outcome(e.login("bob", "battery staple", lab)) }()
	e.timers.fire <- e.clock.Now()
	select {
	case got := <-done:
		if got != "ok" {
			t.Fatalf("right password from a slowed address: %s", got)
		}
	case <-time.After(servertest.WaitShort):
		t.Fatal("right password from a slowed address never answered")
	}
}
