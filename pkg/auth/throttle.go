package auth

import (
	"sync"
	"time"
)

// throttle counts failed logins per key (a username or a client address)
// in a sliding window; past the limit the key is locked until the oldest
// failure leaves the window. State is in memory: a restart forgets it, which
// errs on the side of letting a student in.
type throttle struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	fails  map[string][]time.Time
}

func newThrottle(limit int, window time.Duration) *throttle {
	return &throttle{limit: limit, window: window, fails: map[string][]time.Time{}}
}

// retryAfter returns how long key must wait, or 0.
func (t *throttle) retryAfter(key string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.prune(key, now)
	if len(f) < t.limit {
		return 0
	}
	return f[len(f)-t.limit].Add(t.window).Sub(now)
}

func (t *throttle) fail(key string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := append(t.prune(key, now), now)
	// Keep no more than the limit: older failures cannot matter.
	if len(f) > t.limit {
		f = f[len(f)-t.limit:]
	}
	t.fails[key] = f
}

func (t *throttle) reset(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.fails, key)
}

func (t *throttle) prune(key string, now time.Time) []time.Time {
	f := t.fails[key]
	i := 0
	for i < len(f) && now.Sub(f[i]) >= t.window {
		i++
	}
	f = f[i:]
	if len(f) == 0 {
		delete(t.fails, key)
		return nil
	}
	t.fails[key] = f
	return f
}

// sweep forgets keys with no failure inside the window, bounding memory
// under a spray of usernames.
func (t *throttle) sweep(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, f := range t.fails {
		if len(f) == 0 || now.Sub(f[len(f)-1]) >= t.window {
			delete(t.fails, k)
		}
	}
}
