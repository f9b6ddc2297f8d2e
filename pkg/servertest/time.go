package servertest

import (
	"sync"
	"testing"
	"time"
)

// Named waits: how long a test waits for something the code under test
// does by itself before it fails. They are generous because CI runs every
// package at once on two cores; a passing test never waits them out.
const (
	// WaitShort is for work in the background: a tick, a timer, a
	// goroutine answering.
	WaitShort = 30 * time.Second
	// WaitLong is for starting or copying something big: a database
	// cluster, a server, a backup.
	WaitLong = 2 * time.Minute
)

// Eventually polls cond, more slowly as time goes on, until it holds; the
// test fails if it does not within the given time.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	pause := 10 * time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(pause) // polling, with a deadline
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// Clock is a settable time, for expiry, throttling and deadlines: tests
// move it rather than sleep.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock is a clock that reads at.
func NewClock(at time.Time) *Clock { return &Clock{now: at} }

// Now is the clock's time; pass it where code takes a clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to at.
func (c *Clock) Set(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = at
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
