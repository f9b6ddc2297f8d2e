package terminaltest_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pythonide/pyide/pkg/terminal/terminaltest"
)

const wait = 10 * time.Second // named bound: a loopback server answers at once

// script is a server that sends what the test gives it, one message per
// item: a string starting with { as a text frame, anything else binary.
func script(t *testing.T) (url string, send chan<- string) {
	t.Helper()
	ch := make(chan string)
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		go func() { // read, so that close frames are answered
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}()
		for m := range ch {
			kind := websocket.BinaryMessage
			if strings.HasPrefix(m, "{") {
				kind = websocket.TextMessage
			}
			if ws.WriteMessage(kind, []byte(m)) != nil {
				return
			}
		}
	}))
	t.Cleanup(func() { close(ch); srv.Close() })
	return "ws" + strings.TrimPrefix(srv.URL, "http"), ch
}

func dial(t *testing.T, url string, o terminaltest.Options) *terminaltest.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, _, err := terminaltest.Dial(ctx, url, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestClient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  func(t *testing.T, c *terminaltest.Client, send chan<- string)
		keep int
	}{
		{"output is consumed up to what was waited for", func(t *testing.T, c *terminaltest.Client, send chan<- string) {
			send <- "hello "
			send <- "world\r\n>>> "
			if err := c.Wait(context.Background(), wait, func(v *terminaltest.View) bool { return v.Consume("world") }); err != nil {
				t.Fatal(err)
			}
			c.Look(func(v *terminaltest.View) {
				if got := string(v.Output()); got != "\r\n>>> " {
					t.Errorf("not consumed: %q", got)
				}
				if v.Frames() != 2 || v.Received() != int64(len("hello world\r\n>>> ")) {
					t.Errorf("%d frames, %d bytes", v.Frames(), v.Received())
				}
			})
		}, 0},
		{"events are consumed in order, others skipped", func(t *testing.T, c *terminaltest.Client, send chan<- string) {
			send <- `{"type":"queued","position":1}`
			send <- `{"type":"started","session":"s1","path":"a.py"}`
			send <- `{"type":"exited","code":0,"reason":"finished"}`
			var got terminaltest.Event
			if err := c.Wait(context.Background(), wait, func(v *terminaltest.View) bool {
				ev, ok := v.Next("started")
				got = ev
				return ok
			}); err != nil {
				t.Fatal(err)
			}
			if got.Str("session") != "s1" || got["path"] != "a.py" {
				t.Errorf("started = %v", got)
			}
			_ = c.Wait(context.Background(), wait, func(v *terminaltest.View) bool { return v.Has("exited") })
			c.Look(func(v *terminaltest.View) {
				if v.Has("queued") {
					t.Error("an event before the one waited for is still unconsumed")
				}
				if ev, at, ok := v.Find("exited"); !ok || ev["code"] != 0.0 || at.IsZero() {
					t.Errorf("exited = %v at %v", ev, at)
				}
			})
		}, 0},
		{"output is kept within its bound, newest first", func(t *testing.T, c *terminaltest.Client, send chan<- string) {
			for i := 0; i < 100; i++ {
				send <- strings.Repeat("x", 100)
			}
			send <- "the end"
			if err := c.Wait(context.Background(), wait, func(v *terminaltest.View) bool { return bytes.HasSuffix(v.Output(), []byte("the end")) }); err != nil {
				t.Fatal(err)
			}
			if n := len(c.Output()); n > 512 {
				t.Errorf("%d bytes kept, bound 512", n)
			}
			if n := c.Received(); n != 100*100+7 {
				t.Errorf("received %d", n)
			}
		}, 512},
		{"a mark starts afresh; first output after a start is timed", func(t *testing.T, c *terminaltest.Client, send chan<- string) {
			send <- "before"
			_ = c.Wait(context.Background(), wait, func(v *terminaltest.View) bool { return !v.FirstOutput().IsZero() })
			c.Mark()
			send <- `{"type":"started","session":"s2","path":""}`
			send <- ">>> "
			var first, afterStart time.Time
			if err := c.Wait(context.Background(), wait, func(v *terminaltest.View) bool {
				first, afterStart = v.FirstOutput(), v.FirstOutputAfterStart()
				return !afterStart.IsZero()
			}); err != nil {
				t.Fatal(err)
			}
			c.Look(func(v *terminaltest.View) {
				if got := string(v.Output()); got != ">>> " {
					t.Errorf("after the mark: %q", got)
				}
			})
			if !first.Equal(afterStart) {
				t.Errorf("first output %v, after the start %v: want the same frame", first, afterStart)
			}
		}, 0},
		{"a paused client reads nothing until resumed", func(t *testing.T, c *terminaltest.Client, send chan<- string) {
			resume := c.Pause()
			send <- "one"
			send <- "two"
			send <- "three"
			if got := c.Received(); got > int64(len("one")) {
				t.Errorf("read %d bytes while paused, want at most one message", got)
			}
			resume()
			if err := c.Wait(context.Background(), wait, func(v *terminaltest.View) bool { return v.Consume("three") }); err != nil {
				t.Fatal(err)
			}
		}, 0},
		{"waits end with the limit or the connection", func(t *testing.T, c *terminaltest.Client, _ chan<- string) {
			err := c.Wait(context.Background(), 10*time.Millisecond, func(*terminaltest.View) bool { return false })
			if !errors.Is(err, terminaltest.ErrNothing) {
				t.Errorf("past the limit: %v", err)
			}
			_ = c.Conn.Close()
			err = c.Wait(context.Background(), wait, func(*terminaltest.View) bool { return false })
			if !errors.Is(err, terminaltest.ErrClosed) {
				t.Errorf("after the end: %v", err)
			}
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url, send := script(t)
			tt.run(t, dial(t, url, terminaltest.Options{KeepOutput: tt.keep}), send)
		})
	}
}
