package terminal

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pythonide/pyide/pkg/auth"
)

// frame is one message to the browser. Binary frames carry the output of
// one run (gen); the writer drops those of a run that was replaced since.
type frame struct {
	binary bool
	data   []byte
	gen    uint64
}

// conn is one WebSocket: one reader (the handler's goroutine), one writer.
type conn struct {
	h         *Hub
	ws        *websocket.Conn
	user      auth.User
	token     string // raw, to re-check the login session
	tokenHash []byte
	tab       *tab   // set by register, then fixed
	watch     *watch // set for a watcher's socket, before register
	// active: the student did something (run, input, stop) since the
	// last login recheck, which then counts as activity.
	active atomic.Bool
	// behind counts the times a watcher fell behind and started again
	// from the scrollback.
	behind atomic.Int64

	mu      sync.Mutex
	queue   []frame       // in order: output and events interleave as they happened
	outputs int           // binary frames in queue
	pending int           // output bytes in queue, bounded for a watcher
	wake    chan struct{} // a frame was queued (cap 1)
	space   chan struct{} // output slots freed (cap 1)

	done      chan struct{} // closed when the connection is finishing
	closeOnce sync.Once
}

// maxQueued bounds events waiting for a browser that does not read: past
// it the connection is dropped rather than grown.
const maxQueued = outQueue + 256

func newConn(h *Hub, ws *websocket.Conn, u auth.User, token string) *conn {
	return &conn{
		h: h, ws: ws, user: u, token: token, tokenHash: auth.HashToken(token),
		wake: make(chan struct{}, 1), space: make(chan struct{}, 1), done: make(chan struct{}),
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// push queues an event (or the replay) without waiting, so that it may be
// called with locks held.
func (c *conn) push(f frame) {
	c.mu.Lock()
	if len(c.queue) >= maxQueued {
		c.mu.Unlock()
		c.h.opts.Logger.Warn("terminal: browser not reading, connection dropped", "user", c.user.Username)
		c.close(0, "")
		return
	}
	c.queue = append(c.queue, f)
	c.mu.Unlock()
	signal(c.wake)
}

// output queues TTY output, waiting while outQueue frames are pending:
// that wait is the backpressure that ends in the TTY. It gives up when the
// connection ends or quit is closed.
func (c *conn) output(data []byte, gen uint64, quit <-chan struct{}) bool {
	for {
		c.mu.Lock()
		if c.outputs < outQueue {
			c.queue = append(c.queue, frame{binary: true, data: data, gen: gen})
			c.outputs++
			c.mu.Unlock()
			signal(c.wake)
			return true
		}
		c.mu.Unlock()
		select {
		case <-c.space:
		case <-c.done:
			return false
		case <-quit:
			return false
		}
	}
}

// take hands the writer everything queued.
func (c *conn) take() []frame {
	c.mu.Lock()
	q := c.queue
	c.queue, c.outputs, c.pending = nil, 0, 0
	c.mu.Unlock()
	signal(c.space)
	return q
}

func (c *conn) event(v event) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	c.push(frame{data: b})
}

func (c *conn) errorf(format string, args ...any) {
	c.event(errorEvent(fmt.Sprintf(format, args...)))
}

// close sends a close frame (code 0: none) and ends the connection; the
// reader gets a moment to read the peer's answer.
func (c *conn) close(code int, text string) {
	c.closeOnce.Do(func() {
		if code != 0 {
			_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
			_ = c.ws.NetConn().SetReadDeadline(time.Now().Add(time.Second))
		} else {
			_ = c.ws.NetConn().Close()
		}
		close(c.done)
	})
}

func (c *conn) finished() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// writeLoop writes queued frames, coalescing consecutive output into
// frames of up to maxFrame bytes, and pings.
func (c *conn) writeLoop() {
	defer c.h.wg.Done()
	ping := time.NewTicker(c.h.opts.PongWait * 9 / 10)
	defer ping.Stop()
	for {
		select {
		case <-c.wake:
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				c.close(0, "")
				return
			}
			continue
		case <-c.done:
			return
		}
		if err := c.write(c.take()); err != nil {
			c.close(0, "")
			return
		}
	}
}

func (c *conn) write(q []frame) error {
	for i := 0; i < len(q); {
		f := q[i]
		i++
		if f.binary && c.tab.stale(f.gen) {
			continue
		}
		_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
		if !f.binary {
			if err := c.ws.WriteMessage(websocket.TextMessage, f.data); err != nil {
				return err
			}
			continue
		}
		w, err := c.ws.NextWriter(websocket.BinaryMessage)
		if err != nil {
			return err
		}
		_, err = w.Write(f.data)
		for n := len(f.data); err == nil && i < len(q) && q[i].binary && q[i].gen == f.gen && n+len(q[i].data) <= maxFrame; i++ {
			_, err = w.Write(q[i].data)
			n += len(q[i].data)
		}
		if err == nil {
			err = w.Close()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// message is any client command; fields unused by its type are ignored.
type message struct {
	Type string  `json:"type"`
	Path string  `json:"path"`
	Data *string `json:"data"`
	// Grant answers a helper's request to type (true), or declines it and
	// takes the keyboard back (false).
	Grant *bool `json:"grant"`
	Cols  *int  `json:"cols"`
	Rows  *int  `json:"rows"`
}

// readLoop reads commands until the connection ends, then unregisters.
func (c *conn) readLoop() {
	defer func() {
		c.close(0, "")
		_ = c.ws.Close()
		c.h.unregister(c)
	}()
	pongWait := c.h.opts.PongWait
	c.ws.SetReadLimit(MaxMessageBytes)
	_ = c.ws.SetReadDeadline(time.Now().Add(pongWait))
	c.ws.SetPongHandler(func(string) error {
		if !c.finished() {
			_ = c.ws.SetReadDeadline(time.Now().Add(pongWait))
		}
		return nil
	})
	for {
		kind, data, err := c.ws.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				c.h.opts.Logger.Warn("terminal: oversized message, connection closed", "user", c.user.Username)
			}
			return
		}
		if c.finished() {
			continue // closing: wait for the peer's close frame
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(pongWait))
		if kind != websocket.TextMessage {
			c.errorf("commands are JSON text messages")
			continue
		}
		var m message
		if err := json.Unmarshal(data, &m); err != nil {
			c.errorf("malformed message: %s", jsonProblem(err))
			continue
		}
		c.dispatch(m)
	}
}

func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "not valid JSON"
	case errors.As(err, &te):
		return fmt.Sprintf("field %q has the wrong type", te.Field)
	default:
		return "not a JSON object"
	}
}

func (c *conn) dispatch(m message) {
	t := c.tab
	if m.Type != MsgResize {
		c.active.Store(true)
	}
	if c.watch != nil {
		c.dispatchWatch(m)
		return
	}
	switch m.Type {
	case MsgRun:
		if m.Path == "" {
			c.errorf("run needs a path")
			return
		}
		c.run(m.Path)
	case MsgREPL:
		if !c.user.IsStaff() && !c.h.opts.StudentREPL {
			c.errorf("an empty REPL is not enabled for students in this course; run a file instead")
			return
		}
		c.run("")
	case MsgStdin:
		switch {
		case m.Data == nil:
			c.errorf("stdin needs data")
		case len(*m.Data) > MaxStdinBytes:
			c.errorf("input too long: at most %d bytes per message", MaxStdinBytes)
		case *m.Data != "":
			t.stdin(c, []byte(*m.Data))
		}
	case MsgResize:
		if m.Cols == nil || m.Rows == nil || *m.Cols < 1 || *m.Rows < 1 || *m.Cols > MaxTermSize || *m.Rows > MaxTermSize {
			c.errorf("resize needs cols and rows between 1 and %d", MaxTermSize)
			return
		}
		t.resize(c, uint(*m.Cols), uint(*m.Rows))
	case MsgStop:
		t.stop(c)
	case MsgKeyboard:
		if m.Grant == nil {
			c.errorf("keyboard needs grant")
			return
		}
		t.keyboard(c, *m.Grant)
	case MsgAskKeyboard:
		c.errorf("this is your own console")
	case "":
		c.errorf("message has no type")
	default:
		c.errorf("unknown message type %.40q", m.Type)
	}
}

// run checks a run or repl command and hands it to the tab: the path is
// parsed and checked, and the folders computed, once per click.
func (c *conn) run(treePath string) {
	h := c.h
	tg, err := h.opts.Files.Target(c.user, treePath)
	if err != nil {
		msg, internal := forUser(err)
		if internal {
			h.opts.Logger.Error("terminal: preparing a run", "user", c.user.Username, "path", treePath, "error", err)
		}
		if treePath != "" {
			msg = fmt.Sprintf("cannot run %s: %s", treePath, msg)
		}
		c.errorf("%s", msg)
		return
	}
	if wait, ok := h.allowRun(c.user.Username); !ok {
		c.errorf("too many runs; wait %d s", int(math.Ceil(wait.Seconds())))
		return
	}
	if err := h.opts.Sandboxes.Available(); err != nil {
		c.errorf("%s", unavailable(err))
		return
	}
	c.tab.start(c, treePath, tg)
}
