// Package terminaltest is a client of /api/ws as a browser tab is one,
// for tests and for the load generator (cmd/pyide-load). It sends the
// protocol's messages and gathers what the server sends in one reader
// goroutine: TTY output (the newest KeepOutput bytes), JSON events with
// the time each arrived, and when output first came since a Mark. A wait
// is a condition checked each time something arrives.
//
// It never keeps more than its bounds, so a flood costs its user nothing;
// it never retries, reconnects or answers for the server.
package terminaltest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Defaults of Options.
const (
	DefaultKeepOutput       = 4 << 20
	DefaultKeepEvents       = 4096
	DefaultHandshakeTimeout = 30 * time.Second
	// writeWait bounds one message to the server.
	writeWait = 30 * time.Second
)

// Options configure a Client; zero values take the defaults.
type Options struct {
	Header           http.Header    // sent with the handshake: Origin, and Cookie unless Jar
	Jar              http.CookieJar // the session cookie, as a browser sends it
	HandshakeTimeout time.Duration
	ReadBufferSize   int
	WriteBufferSize  int
	KeepOutput       int // output bytes kept, the newest
	KeepEvents       int // events kept, the newest
}

// Event is one JSON event as the server sent it: ev["type"], ev["session"],
// ev["code"] (a float64, as JSON numbers decode)...
type Event map[string]any

// Type is the event's type.
func (e Event) Type() string { s, _ := e["type"].(string); return s }

// Str is a string field, "" when absent.
func (e Event) Str(key string) string { s, _ := e[key].(string); return s }

// ErrClosed: the connection ended while waiting (wrapped with the reason).
var ErrClosed = errors.New("socket closed")

// ErrNothing: the wait's time limit passed.
var ErrNothing = errors.New("nothing")

// Client is one tab's socket. Its methods are safe for concurrent use.
type Client struct {
	Conn *websocket.Conn

	keepOut, keepEv int
	wmu             sync.Mutex    // one writer
	changed         chan struct{} // something arrived (cap 1)
	done            chan struct{} // the reader ended

	mu      sync.Mutex
	v       View
	resumed chan struct{} // while paused: closed by resume
}

// View is what the reader has gathered. A Wait condition gets it with the
// client's lock held: use it only there.
type View struct {
	out      []byte // the newest kept output
	outPos   int    // consumed up to here
	received int64  // output bytes, all of them
	frames   int    // binary frames
	events   []Event
	times    []time.Time
	evPos    int // events consumed up to here
	first    time.Time
	started  bool // a started event since the mark
	afterSt  time.Time
	err      error
}

// Dial opens url (ws:// or wss://) as a browser tab would; status is the
// handshake's HTTP status (0 when none came).
func Dial(ctx context.Context, url string, o Options) (c *Client, status int, err error) {
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	d := websocket.Dialer{Jar: o.Jar, HandshakeTimeout: o.HandshakeTimeout, ReadBufferSize: o.ReadBufferSize, WriteBufferSize: o.WriteBufferSize}
	ws, resp, err := d.DialContext(ctx, url, o.Header)
	if resp != nil {
		status = resp.StatusCode
		if resp.Body != nil {
			resp.Body.Close()
		}
	}
	if err != nil {
		return nil, status, err
	}
	return New(ws, o), status, nil
}

// New starts gathering on an open connection.
func New(ws *websocket.Conn, o Options) *Client {
	if o.KeepOutput <= 0 {
		o.KeepOutput = DefaultKeepOutput
	}
	if o.KeepEvents <= 0 {
		o.KeepEvents = DefaultKeepEvents
	}
	c := &Client{Conn: ws, keepOut: o.KeepOutput, keepEv: o.KeepEvents, changed: make(chan struct{}, 1), done: make(chan struct{})}
	go c.read()
	return c
}

// read consumes the socket until it fails. Times are taken as each message
// is read, before anything else.
func (c *Client) read() {
	defer close(c.done)
	for {
		c.mu.Lock()
		paused := c.resumed
		c.mu.Unlock()
		if paused != nil {
			<-paused
		}
		kind, data, err := c.Conn.ReadMessage()
		at := time.Now()
		c.mu.Lock()
		v := &c.v
		switch {
		case err != nil:
			v.err = err
		case kind == websocket.BinaryMessage:
			v.received += int64(len(data))
			v.frames++
			if v.first.IsZero() {
				v.first = at
			}
			if v.started && v.afterSt.IsZero() {
				v.afterSt = at
			}
			v.out = append(v.out, data...)
			if drop := len(v.out) - c.keepOut; drop > 0 {
				// Drop a slice at once, not byte by byte.
				drop = max(drop, min(len(v.out), c.keepOut/2))
				v.out = append(v.out[:0], v.out[drop:]...)
				v.outPos = max(0, v.outPos-drop)
			}
		default:
			var ev Event
			if json.Unmarshal(data, &ev) != nil || ev == nil {
				ev = Event{"type": "unparsable", "raw": string(data)}
			}
			if ev.Type() == "started" {
				v.started = true
			}
			v.events = append(v.events, ev)
			v.times = append(v.times, at)
			if drop := len(v.events) - c.keepEv; drop > 0 {
				v.events = append(v.events[:0], v.events[drop:]...)
				v.times = append(v.times[:0], v.times[drop:]...)
				v.evPos = max(0, v.evPos-drop)
			}
		}
		c.mu.Unlock()
		select {
		case c.changed <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
	}
}

// Wait returns once cond holds (checked with the lock held, whenever
// something arrived), or the connection ends (ErrClosed), limit passes
// (ErrNothing) or ctx ends.
func (c *Client) Wait(ctx context.Context, limit time.Duration, cond func(v *View) bool) error {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		ok, err := cond(&c.v), c.v.err
		c.mu.Unlock()
		if ok {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrClosed, err)
		}
		select {
		case <-c.changed:
		case <-deadline.C:
			return fmt.Errorf("%w after %s", ErrNothing, limit)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Mark consumes everything gathered so far: output and events, and when
// output first came. What a wait looks at next is new.
func (c *Client) Mark() {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := &c.v
	v.outPos, v.evPos = len(v.out), len(v.events)
	v.first, v.afterSt, v.started = time.Time{}, time.Time{}, false
}

// Send writes one JSON message, with a write deadline.
func (c *Client) Send(msg any) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.Conn.SetWriteDeadline(time.Now().Add(writeWait))
	return c.Conn.WriteMessage(websocket.TextMessage, b)
}

// The protocol's messages (docs/protocol.md).

func (c *Client) Run(path string) error { return c.Send(map[string]any{"type": "run", "path": path}) }
func (c *Client) Stdin(data string) error {
	return c.Send(map[string]any{"type": "stdin", "data": data})
}
func (c *Client) Stop() error { return c.Send(map[string]any{"type": "stop"}) }
func (c *Client) Resize(cols, rows int) error {
	return c.Send(map[string]any{"type": "resize", "cols": cols, "rows": rows})
}

// Pause stops reading, as a browser that no longer reads does (the
// server's backpressure then reaches the program), until resume. At most
// one message more is read.
func (c *Client) Pause() (resume func()) {
	ch := make(chan struct{})
	c.mu.Lock()
	c.resumed = ch
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			if c.resumed == ch {
				c.resumed = nil
			}
			c.mu.Unlock()
			close(ch)
		})
	}
}

// Close says goodbye as a browser closing the tab does: a close frame,
// a moment for the server's answer, then the connection closes.
func (c *Client) Close() {
	c.wmu.Lock()
	_ = c.Conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(5*time.Second))
	c.wmu.Unlock()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
	_ = c.Conn.Close()
}

// Done is closed once the connection has ended; Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is the error that ended the connection, or nil.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.v.err
}

// Output is all output kept, consumed or not.
func (c *Client) Output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.v.out)
}

// Events are all events kept, consumed or not.
func (c *Client) Events() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.v.events...)
}

// Frames counts the binary frames read.
func (c *Client) Frames() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.v.frames
}

// Received counts the output bytes read.
func (c *Client) Received() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.v.received
}

// Look runs f on the view with the lock held, for a question that is not
// a wait.
func (c *Client) Look(f func(v *View)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.v)
}

// Output is the output not consumed yet (the newest kept bytes of it).
func (v *View) Output() []byte { return v.out[v.outPos:] }

// Consume finds s in the output not consumed yet and consumes up to its end.
func (v *View) Consume(s string) bool {
	i := bytes.Index(v.out[v.outPos:], []byte(s))
	if i < 0 {
		return false
	}
	v.outPos += i + len(s)
	return true
}

// Next consumes events up to and including the next one of the types.
func (v *View) Next(types ...string) (Event, bool) {
	for i := v.evPos; i < len(v.events); i++ {
		for _, t := range types {
			if v.events[i].Type() == t {
				v.evPos = i + 1
				return v.events[i], true
			}
		}
	}
	return nil, false
}

// Find is the first event not consumed yet of one of the types, with the
// time it arrived; it consumes nothing.
func (v *View) Find(types ...string) (Event, time.Time, bool) {
	for i := v.evPos; i < len(v.events); i++ {
		for _, t := range types {
			if v.events[i].Type() == t {
				return v.events[i], v.times[i], true
			}
		}
	}
	return nil, time.Time{}, false
}

// Has tells whether an event of the type came and is not consumed yet.
func (v *View) Has(typ string) bool {
	_, _, ok := v.Find(typ)
	return ok
}

// Frames counts the binary frames read.
func (v *View) Frames() int { return v.frames }

// Received counts the output bytes read.
func (v *View) Received() int64 { return v.received }

// FirstOutput is when output first came since the mark (zero: none).
func (v *View) FirstOutput() time.Time { return v.first }

// FirstOutputAfterStart is when output first came after a started event
// since the mark: a run's first output (zero: none).
func (v *View) FirstOutputAfterStart() time.Time { return v.afterSt }
