package sandbox

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
)

// The supervisor's frames (sandbox-image/supervisor.py): with container
// reuse, the container's TTY carries "<kind><decimal length>:<payload>"
// both ways instead of the REPL's raw bytes. No frame holds a NUL byte, so
// Docker's detach sequence (which starts with one) never occurs.
const (
	frameControl = 'C' // to the supervisor: what the waiting runner runs
	frameInput   = 'I' // to the supervisor: what the student typed
	frameWinsize = 'W' // to the supervisor: "cols rows"
	frameReset   = 'R' // to the supervisor: end the REPL, make it fresh
	frameOutput  = 'O' // from the supervisor: the REPL's output
	frameStatus  = 'S' // from the supervisor: a status, JSON
	maxFrame     = 1 << 20
)

// supStatus is one status of the supervisor.
type supStatus struct {
	Ready       bool   `json:"ready"`
	Running     bool   `json:"running"`
	Exit        *int   `json:"exit"`
	Signal      *int   `json:"signal"`
	ResetFailed string `json:"reset_failed"`
	Error       string `json:"error"`
}

func writeFrame(w io.Writer, kind byte, payload []byte) error {
	head := strconv.AppendInt([]byte{kind}, int64(len(payload)), 10)
	head = append(head, ':')
	_, err := w.Write(append(head, payload...))
	return err
}

func readFrame(r *bufio.Reader) (kind byte, payload []byte, err error) {
	kind, err = r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	digits, err := r.ReadSlice(':')
	if err != nil {
		return 0, nil, fmt.Errorf("sandbox: frame header: %w", err)
	}
	n, err := strconv.Atoi(string(digits[:len(digits)-1]))
	if err != nil || n < 0 || n > maxFrame {
		return 0, nil, fmt.Errorf("sandbox: bad frame length %q", digits)
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(r, payload)
	return kind, payload, err
}

// childExit is how a REPL ended inside a reused container.
type childExit struct {
	code   int // as Docker reports a container's: 128+n for signal n
	signal int // 0 when it exited by itself
}

// link is the supervisor's side of a box: one goroutine reads its frames,
// hands output to the session attached, and keeps the container's state.
type link struct {
	b  *box
	wm sync.Mutex // frames to the container, one at a time

	// up is closed at the supervisor's first frame: its TTY is raw from
	// then on. Whatever is sent before would be echoed back and line
	// buffered by the TTY's cooked mode.
	up chan struct{}

	mu      sync.Mutex
	out     *io.PipeWriter // the attached session's output
	exit    chan childExit // the attached session's end
	ready   chan struct{}  // closed when a fresh runner waits; replaced by a reset
	failed  chan struct{}  // closed when the container must not be reused
	why     string
	running bool
}

func newLink(b *box) *link {
	return &link{b: b, up: make(chan struct{}), ready: make(chan struct{}), failed: make(chan struct{})}
}

// waitUp waits for the supervisor's first frame.
func (l *link) waitUp(ctx context.Context) error {
	t := time.NewTimer(controlTimeout)
	defer t.Stop()
	select {
	case <-l.up:
		return nil
	case <-l.failed:
		return fmt.Errorf("sandbox: the container's supervisor: %s", l.reason())
	case <-l.b.exited:
		return errors.New("sandbox: the container ended before its supervisor started")
	case <-t.C:
		return errors.New("sandbox: the container's supervisor did not start")
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *link) reason() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.why
}

// send writes one frame to the supervisor.
func (l *link) send(kind byte, payload []byte) error {
	l.wm.Lock()
	defer l.wm.Unlock()
	_ = l.b.hj.Conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	return writeFrame(l.b.hj.Conn, kind, payload)
}

// attach gives the next run's output and end to a session.
func (l *link) attach() (io.Reader, <-chan childExit) {
	pr, pw := io.Pipe()
	ch := make(chan childExit, 1)
	l.mu.Lock()
	if l.out != nil {
		_ = l.out.Close()
	}
	l.out, l.exit = pw, ch
	l.mu.Unlock()
	return pr, ch
}

// reset asks for a fresh REPL: the runner now waiting is not ready until
// the supervisor says so again.
func (l *link) reset() error {
	l.mu.Lock()
	if isClosed(l.ready) {
		l.ready = make(chan struct{})
	}
	l.mu.Unlock()
	return l.send(frameReset, nil)
}

// readyCh is closed once a fresh runner waits for its control line.
func (l *link) readyCh() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ready
}

func (l *link) fail(why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !isClosed(l.failed) {
		l.why = why
		close(l.failed)
	}
}

// read runs until the stream ends.
func (l *link) read() {
	r := bufio.NewReaderSize(l.b.hj.Reader, 64<<10)
	defer func() {
		l.fail("the container's stream ended")
		l.mu.Lock()
		if l.out != nil {
			_ = l.out.Close()
		}
		l.mu.Unlock()
	}()
	first := true
	for {
		kind, payload, err := readFrame(r)
		if first && err == nil {
			close(l.up)
			first = false
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				l.b.m.log.Debug("sandbox: supervisor frames", "container", l.b.name, "error", err)
			}
			return
		}
		switch kind {
		case frameOutput:
			l.mu.Lock()
			out := l.out
			l.mu.Unlock()
			if out != nil {
				// Blocking: a session that stops reading slows the REPL
				// through the supervisor, nothing piles up here.
				_, _ = out.Write(payload)
			}
		case frameStatus:
			var st supStatus
			if err := json.Unmarshal(payload, &st); err != nil {
				l.fail("a status that is not JSON")
				return
			}
			l.status(st)
		default:
			l.fail(fmt.Sprintf("an unknown frame %q", kind))
			return
		}
	}
}

func (l *link) status(st supStatus) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case st.ResetFailed != "":
		l.why = st.ResetFailed
		if !isClosed(l.failed) {
			close(l.failed)
		}
	case st.Ready:
		if !isClosed(l.ready) {
			close(l.ready)
		}
	case st.Running:
		l.running = true
	case st.Exit != nil || st.Signal != nil:
		ex := childExit{}
		if st.Signal != nil {
			ex = childExit{code: 128 + *st.Signal, signal: *st.Signal}
		} else {
			ex.code = *st.Exit
		}
		l.running = false
		if l.ready != nil && isClosed(l.ready) {
			l.ready = make(chan struct{}) // the supervisor makes a fresh one next
		}
		if l.exit != nil {
			l.exit <- ex
			l.exit = nil
		}
		if l.out != nil {
			_ = l.out.Close()
			l.out = nil
		}
	case st.Error != "":
		l.b.m.log.Warn("sandbox: supervisor", "container", l.b.name, "error", st.Error)
	}
}
