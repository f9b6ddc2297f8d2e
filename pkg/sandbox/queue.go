package sandbox

import (
	"context"
	"sync"
)

// queue caps running sessions with a FIFO of waiters. Waiters learn their
// position in their own goroutine, so a slow callback never blocks others.
type queue struct {
	mu      sync.Mutex
	max     int // 0 = unlimited
	running int
	waiters []*waiter
}

type waiter struct {
	granted chan struct{}
	moved   chan struct{} // nudged whenever positions may have changed
}

func newQueue(max int) *queue { return &queue{max: max} }

// acquire takes a slot, waiting in line when the server is full. onPos gets
// the 1-based position whenever it changes. Cancelling ctx leaves the line.
func (q *queue) acquire(ctx context.Context, onPos func(int)) error {
	q.mu.Lock()
	if q.max == 0 || (q.running < q.max && len(q.waiters) == 0) {
		q.running++
		q.mu.Unlock()
		return nil
	}
	w := &waiter{granted: make(chan struct{}), moved: make(chan struct{}, 1)}
	q.waiters = append(q.waiters, w)
	q.mu.Unlock()

	last := 0
	for {
		if pos := q.position(w); pos > 0 && pos != last && onPos != nil {
			last = pos
			onPos(pos)
		}
		select {
		case <-w.granted:
			return nil
		case <-w.moved:
		case <-ctx.Done():
			q.mu.Lock()
			select {
			case <-w.granted:
				// Granted while cancelling: hand the slot on.
				q.mu.Unlock()
				q.release()
			default:
				q.remove(w)
				q.mu.Unlock()
			}
			return ctx.Err()
		}
	}
}

func (q *queue) position(w *waiter) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, x := range q.waiters {
		if x == w {
			return i + 1
		}
	}
	return 0
}

// remove must be called with q.mu held.
func (q *queue) remove(w *waiter) {
	for i, x := range q.waiters {
		if x == w {
			q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			break
		}
	}
	q.nudge()
}

func (q *queue) nudge() {
	for _, x := range q.waiters {
		select {
		case x.moved <- struct{}{}:
		default:
		}
	}
}

func (q *queue) release() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiters) > 0 {
		w := q.waiters[0]
		q.waiters = q.waiters[1:]
		close(w.granted) // the slot passes straight to the next in line
		q.nudge()
		return
	}
	if q.running > 0 {
		q.running--
	}
}

func (q *queue) stats() (running, waiting int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.running, len(q.waiters)
}
