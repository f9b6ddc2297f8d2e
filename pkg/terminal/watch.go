package terminal

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/gorilla/websocket"
)

// Watching: a socket of another user that sees a tab's console as it
// happens, read-only. A helper who took a student's help request watches
// the student's tab and may type while the student grants it; a follower
// watches a professor's broadcast tab and never types.
//
// Fan-out never slows the source: the tab's pump hands each watcher its
// output without waiting (offer). A watcher has its own bounded buffer; one
// that falls behind has the output waiting for it dropped, is told so (a
// "behind" event) and starts again from the scrollback, in place. A
// browser that stops reading altogether is disconnected by its write
// deadline and resumes from the scrollback when it reconnects. The
// owner's own socket keeps its backpressure, which no watcher shares.

// Kinds of watch.
const (
	watchHelp   = "help"
	watchFollow = "follow"
)

// Close codes of a watcher's socket besides the standard ones.
const (
	// CloseWatchEnded: the help request or broadcast ended, or the rules
	// no longer let this user watch; the reason says which. No reconnect.
	CloseWatchEnded = 4003
)

// watchBufferBytes bounds the output waiting for one watcher.
const watchBufferBytes = 256 << 10

// watch is what makes a conn a watcher. Set before the conn is registered,
// then fixed but for granted and asked, which the tab's lock guards.
type watch struct {
	kind string
	help int64  // the help request (watchHelp)
	cast string // the broadcast (watchFollow)

	from uint64 // the first output chunk (tab.seq) not in its scrollback

	asked   bool // the helper asked to type and the owner has not answered
	granted bool // the owner lets the helper type
}

// offer queues output for a watcher without waiting: false when its
// buffer is full, and the watcher must be dropped.
func (c *conn) offer(data []byte, gen uint64) bool {
	c.mu.Lock()
	if c.pending+len(data) > watchBufferBytes {
		c.mu.Unlock()
		return false
	}
	c.queue = append(c.queue, frame{binary: true, data: data, gen: gen})
	c.pending += len(data)
	c.mu.Unlock()
	signal(c.wake)
	return true
}

// resync replaces the output waiting for a watcher that fell behind with
// the behind event and the scrollback; events already queued stay.
func (c *conn) resync(snapshot []byte, gen uint64) {
	c.mu.Lock()
	keep := c.queue[:0]
	for _, f := range c.queue {
		if !f.binary {
			keep = append(keep, f)
		}
	}
	b, _ := json.Marshal(behindEvent())
	c.queue = append(keep, frame{data: b}, frame{binary: true, data: snapshot, gen: gen})
	c.pending = len(snapshot)
	c.mu.Unlock()
	signal(c.wake)
}

// addWatcher binds a watcher to the tab: it gets the scrollback, then the
// state of the current run, then everything that follows. False when the
// tab has ended.
func (t *tab) addWatcher(c *conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dead {
		return false
	}
	t.watchers[c] = struct{}{}
	c.watch.from = t.seq
	if r := t.cur; r != nil {
		if b := t.ring.snapshot(); len(b) > 0 {
			c.push(frame{binary: true, data: b, gen: r.gen})
		}
		if r.sess != nil {
			c.event(startedEvent(r.sess.ID(), r.path, nil))
		}
		if r.exit != nil {
			c.event(exitedEvent(*r.exit))
		}
	}
	t.watchersChangedLocked()
	return true
}

// removeWatcher unbinds a watcher (it left, or its socket closed); it
// reports whether it was bound.
func (t *tab) removeWatcher(c *conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.watchers[c]; !ok {
		return false
	}
	delete(t.watchers, c)
	t.watchersChangedLocked()
	return true
}

// takeWatchersLocked unbinds the watchers that match and returns them, for
// the caller to close after it has let go of the lock.
func (t *tab) takeWatchersLocked(match func(*watch) bool) []*conn {
	var out []*conn
	for c := range t.watchers {
		if match(c.watch) {
			delete(t.watchers, c)
			out = append(out, c)
		}
	}
	if len(out) > 0 {
		t.watchersChangedLocked()
	}
	return out
}

// endWatchers closes the watchers that match with CloseWatchEnded.
func (t *tab) endWatchers(reason string, match func(*watch) bool) int {
	t.mu.Lock()
	cs := t.takeWatchersLocked(match)
	t.mu.Unlock()
	t.h.closeWatchers(cs, CloseWatchEnded, reason)
	return len(cs)
}

// fanOutLocked hands output chunk seq (already in the scrollback) to
// every watcher that joined before it; one whose buffer is full starts
// again from the scrollback.
func (t *tab) fanOutLocked(data []byte, gen, seq uint64) {
	var snap []byte
	for c := range t.watchers {
		if seq < c.watch.from {
			continue // in the scrollback it was given
		}
		if !c.offer(data, gen) {
			if snap == nil {
				snap = t.ring.snapshot()
			}
			c.resync(snap, gen)
			c.behind.Add(1)
		}
	}
}

// watchEventLocked sends an event about the run to the watchers too.
func (t *tab) watchEventLocked(ev event) {
	for c := range t.watchers {
		c.event(ev)
	}
}

// watchersChangedLocked tells the owner and the watchers who watches and
// who may type: the student always sees who is watching.
func (t *tab) watchersChangedLocked() {
	names := []string{}
	typing := ""
	for c := range t.watchers {
		if !slices.Contains(names, c.user.Username) {
			names = append(names, c.user.Username)
		}
		if c.watch.granted {
			typing = c.user.Username
		}
	}
	slices.Sort(names)
	ev := watchersEvent(names, typing)
	if t.attached != nil {
		t.attached.event(ev)
	}
	for c := range t.watchers {
		if c.watch.kind == watchHelp {
			c.event(ev)
		}
	}
}

// askKeyboard: a helper asks the owner to let them type.
func (t *tab) askKeyboard(c *conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case c.watch.kind != watchHelp:
		c.errorf("this console is read-only")
	case c.watch.granted:
		c.event(keyboardEvent(true))
	case t.attached == nil:
		c.errorf("%s is not at their console right now; try again later", t.key.user)
	default:
		c.watch.asked = true
		t.attached.event(keyboardRequestEvent(c.user.Username))
	}
}

// keyboard is the owner's answer: grant lets every helper who asked type;
// no grant declines them and takes the keyboard back from whoever has it.
func (t *tab) keyboard(c *conn, grant bool) {
	t.mu.Lock()
	if t.attached != c {
		t.mu.Unlock()
		c.errorf("this console is open in another window")
		return
	}
	type change struct{ user, action string }
	var changes []change
	for w := range t.watchers {
		ww := w.watch
		switch {
		case grant && ww.asked:
			ww.asked, ww.granted = false, true
			changes = append(changes, change{w.user.Username, "live.keyboard_grant"})
			w.event(keyboardEvent(true))
		case !grant && ww.granted:
			ww.granted = false
			changes = append(changes, change{w.user.Username, "live.keyboard_revoke"})
			w.event(keyboardEvent(false))
		case !grant && ww.asked:
			ww.asked = false
			changes = append(changes, change{w.user.Username, "live.keyboard_decline"})
			w.event(keyboardEvent(false))
		}
	}
	if len(changes) > 0 {
		t.watchersChangedLocked()
	}
	t.mu.Unlock()
	for _, ch := range changes {
		t.h.audit(t.key.user, ch.action, ch.user, map[string]any{"tab": t.key.id})
	}
}

// watcherStdin is a helper's keystrokes: taken only while the owner's
// grant is live.
func (t *tab) watcherStdin(c *conn, b []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.watchers[c]; !ok || !c.watch.granted {
		c.errorf("this console is read-only; ask to type first")
		return
	}
	r := t.cur
	switch {
	case r == nil || r.sess == nil:
		c.errorf("nothing is running")
	case r.exit != nil:
	default:
		t.sendLocked(c, r, b)
	}
}

// closeWatchers closes watcher sockets in the background: a close frame
// to a socket that stopped reading waits for its deadline, and neither a
// pump nor a lock holder may wait for it.
func (h *Hub) closeWatchers(cs []*conn, code int, reason string) {
	if len(cs) == 0 {
		return
	}
	h.spawn(func() {
		for _, c := range cs {
			c.close(code, reason)
		}
	})
}

// dispatchWatch handles a watcher's message: only a request to type and,
// with the owner's grant, keystrokes.
func (c *conn) dispatchWatch(m message) {
	switch m.Type {
	case MsgAskKeyboard:
		c.tab.askKeyboard(c)
	case MsgStdin:
		switch {
		case m.Data == nil:
			c.errorf("stdin needs data")
		case len(*m.Data) > MaxStdinBytes:
			c.errorf("input too long: at most %d bytes per message", MaxStdinBytes)
		case *m.Data != "":
			c.tab.watcherStdin(c, []byte(*m.Data))
		}
	case MsgResize:
		// The owner's window sets the size; a watcher's is ignored.
	default:
		c.errorf("this console is read-only")
	}
}

// closeFrame writes a close frame with a deadline; for refusals after the
// upgrade.
func closeFrame(ws *websocket.Conn, code int, text string) {
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
	_ = ws.Close()
}
