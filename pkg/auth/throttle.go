package auth

import (
	"context"
	"net/netip"
	"sync"
	"time"
)

// Login throttling has two kinds of counter, and they do different things
// because they guard against different people:
//
// Per account (the username as typed, existing or not, so that the answers
// never tell which names exist): at most limit failures in the window, then
// 429 until the oldest leaves it. An attempt is counted *before* bcrypt runs
// (reserved), so a thousand guesses sent at once still reach bcrypt at most
// limit times; attempts past the free places wait for the running ones to end
// rather than being refused, because those may well succeed (a student with
// five tabs). A success forgives the account's failures: its owner is back.
//
// Per client address: a lab behind one NAT, or every student behind the
// reverse proxy when TRUSTED_PROXIES is not set, is one address, so an
// address must never refuse a right password; before bcrypt nothing tells a
// student from someone spraying guesses. Instead, past its allowance of
// failures (unknown names and wrong passwords alike, so that spraying many
// accounts counts) an address is slowed: its attempts run one at a time, and
// each failure holds that turn for a penalty before it is answered, while a
// success hands it on at once. A spray from there gets one guess per penalty
// however many it sends in parallel, and cannot keep the CPU busy with
// bcrypt; the students behind it still get in, at worst after the attempts
// queued before theirs.
//
// State is in memory: a restart forgets it, which errs on the side of
// letting a student in.

// outcome is how an attempt ended, for the account counter.
type outcome int

const (
	failed    outcome = iota // wrong password, unknown or disabled user: counted
	succeeded                // forgives the account's failures
	abandoned                // an error or a cancelled request: neither
)

// accountLimiter counts failed logins per account in a sliding window, and
// the attempts still running.
type accountLimiter struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	keys   map[string]*accountState
}

type accountState struct {
	fails   []time.Time // inside the window, oldest first, at most limit
	running int
	ended   chan struct{} // closed (and replaced) whenever an attempt ends
}

func newAccountLimiter(limit int, window time.Duration) *accountLimiter {
	return &accountLimiter{limit: limit, window: window, keys: map[string]*accountState{}}
}

// reserve counts an attempt for key before it runs. It returns a
// *ThrottledError when key has used its failures, waits while the attempts
// running could still use them up, and otherwise returns the function that
// ends the attempt.
func (l *accountLimiter) reserve(ctx context.Context, key string, clock func() time.Time) (func(outcome), error) {
	for {
		l.mu.Lock()
		st := l.keys[key]
		if st == nil {
			st = &accountState{ended: make(chan struct{})}
			l.keys[key] = st
		}
		now := clock()
		st.fails = inWindow(st.fails, now, l.window)
		if len(st.fails) >= l.limit {
			wait := st.fails[len(st.fails)-l.limit].Add(l.window).Sub(now)
			l.mu.Unlock()
			return nil, &ThrottledError{RetryAfter: wait}
		}
		if len(st.fails)+st.running < l.limit {
			st.running++
			l.mu.Unlock()
			return func(o outcome) { l.end(key, st, o, clock()) }, nil
		}
		ended := st.ended
		l.mu.Unlock()
		select {
		case <-ended:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (l *accountLimiter) end(key string, st *accountState, o outcome, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st.running--
	switch o {
	case failed:
		st.fails = append(inWindow(st.fails, now, l.window), now)
		if len(st.fails) > l.limit {
			st.fails = st.fails[len(st.fails)-l.limit:]
		}
	case succeeded:
		st.fails = nil
	}
	close(st.ended)
	st.ended = make(chan struct{})
	if st.running == 0 && len(st.fails) == 0 {
		delete(l.keys, key) // waiters were woken above and will make a new one
	}
}

// sweep forgets accounts with nothing running and no failure in the window,
// bounding memory under a spray of made-up names.
func (l *accountLimiter) sweep(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, st := range l.keys {
		if st.running == 0 && len(inWindow(st.fails, now, l.window)) == 0 {
			delete(l.keys, k)
		}
	}
}

// addressLimiter slows an address once it has more failures in the window
// than its allowance.
type addressLimiter struct {
	mu        sync.Mutex
	allowance int
	window    time.Duration
	penalty   time.Duration
	after     func(time.Duration) <-chan time.Time
	keys      map[string]*addressState
}

type addressState struct {
	fails []time.Time   // inside the window, oldest first, at most allowance
	turn  chan struct{} // holds a token while an attempt of a slowed address runs
	users int           // attempts between enter and leave: the entry stays while > 0
}

func newAddressLimiter(allowance int, window, penalty time.Duration, after func(time.Duration) <-chan time.Time) *addressLimiter {
	return &addressLimiter{allowance: allowance, window: window, penalty: penalty, after: after, keys: map[string]*addressState{}}
}

// addressKey is the counter an address belongs to. One IPv6 client usually
// has a whole /64 to pick addresses from, so that is one key.
func addressKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}

// attempt is one login from an address, between enter and leave.
type attempt struct {
	l      *addressLimiter
	key    string
	st     *addressState
	slowed bool
}

// enter starts an attempt from addr; when the address is slowed it waits
// for the address's turn.
func (l *addressLimiter) enter(ctx context.Context, addr string, now time.Time) (*attempt, error) {
	key := addressKey(addr)
	l.mu.Lock()
	st := l.keys[key]
	if st == nil {
		st = &addressState{turn: make(chan struct{}, 1)}
		l.keys[key] = st
	}
	st.fails = inWindow(st.fails, now, l.window)
	st.users++
	a := &attempt{l: l, key: key, st: st, slowed: len(st.fails) >= l.allowance}
	l.mu.Unlock()
	if a.slowed {
		select {
		case st.turn <- struct{}{}:
		case <-ctx.Done():
			a.slowed = false // holds no turn
			a.leave(false, now)
			return nil, ctx.Err()
		}
	}
	return a, nil
}

// leave ends the attempt. A failure is counted, and when the address is
// slowed it keeps the turn for the penalty first. The penalty is served
// even if the client has gone: a spray cannot skip it by hanging up.
func (a *attempt) leave(fail bool, now time.Time) {
	l := a.l
	if fail {
		l.mu.Lock()
		a.st.fails = append(inWindow(a.st.fails, now, l.window), now)
		if len(a.st.fails) > l.allowance {
			a.st.fails = a.st.fails[len(a.st.fails)-l.allowance:]
		}
		l.mu.Unlock()
		if a.slowed {
			<-l.after(l.penalty)
		}
	}
	if a.slowed {
		<-a.st.turn
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	a.st.users--
	if a.st.users == 0 && len(a.st.fails) == 0 {
		delete(l.keys, a.key)
	}
}

// sweep forgets addresses with no attempt under way and no failure in the
// window.
func (l *addressLimiter) sweep(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, st := range l.keys {
		if st.users == 0 && len(inWindow(st.fails, now, l.window)) == 0 {
			delete(l.keys, k)
		}
	}
}

// inWindow drops the times at the front of f that are window or more
// before now.
func inWindow(f []time.Time, now time.Time, window time.Duration) []time.Time {
	i := 0
	for i < len(f) && now.Sub(f[i]) >= window {
		i++
	}
	if i == len(f) {
		return nil
	}
	return f[i:]
}
