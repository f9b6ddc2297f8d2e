package terminal_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/terminal"
)

// The handshake: only a live session from the server's own origin is
// upgraded (cross-site WebSocket hijacking is refused before any upgrade).
func TestHandshake(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	ck := e.login("alice")
	tests := []struct {
		name   string
		cookie *http.Cookie
		origin string
		tab    string
		want   int
	}{
		{"same origin with a session", ck, e.srv.URL, "", http.StatusSwitchingProtocols},
		{"named tab", ck, e.srv.URL, "tab_1-A", http.StatusSwitchingProtocols},
		{"no Origin (not a browser)", ck, "", "", http.StatusSwitchingProtocols},
		{"foreign origin", ck, "http://evil.example", "", http.StatusForbidden},
		{"foreign port", ck, "http://127.0.0.1:1", "", http.StatusForbidden},
		{"null origin", ck, "null", "", http.StatusForbidden},
		{"no cookie", nil, e.srv.URL, "", http.StatusUnauthorized},
		{"forged cookie", &http.Cookie{Name: ck.Name, Value: "forged"}, e.srv.URL, "", http.StatusUnauthorized},
		{"bad tab", ck, e.srv.URL, "..%2Fx", http.StatusBadRequest},
		{"long tab", ck, e.srv.URL, strings.Repeat("a", terminal.MaxTabIDBytes+1), http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws, status, err := e.dialRaw(tt.cookie, tt.origin, tt.tab)
			if ws != nil {
				ws.Close()
			}
			if status != tt.want {
				t.Errorf("status = %d (err %v), want %d", status, err, tt.want)
			}
		})
	}
}

// Bad commands are answered with an error event and the connection stays
// usable; a frame over the read limit closes it with 1009.
func TestBadMessages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{
		hub:   terminal.Options{RunsPerMinute: 2},
		files: map[string]string{"Local/alice/a.py": "print(1)\n", "Local/bob/secret.py": "print(2)\n"},
	})
	c := e.dial(e.login("alice"), "")
	long := strings.Repeat("x", terminal.MaxStdinBytes+1)
	tests := []struct {
		name string
		send func()
		want string
	}{
		{"not JSON", func() { c.ws.WriteMessage(websocket.TextMessage, []byte("{run")) }, "malformed message"},
		{"not an object", func() { c.ws.WriteMessage(websocket.TextMessage, []byte(`[1,2]`)) }, "malformed message"},
		{"wrong field type", func() { c.send(map[string]any{"type": "resize", "cols": "80", "rows": 24}) }, "malformed message"},
		{"binary command", func() { c.ws.WriteMessage(websocket.BinaryMessage, []byte(`{"type":"stop"}`)) }, "JSON text"},
		{"no type", func() { c.send(map[string]any{"path": "x"}) }, "no type"},
		{"unknown type", func() { c.send(map[string]any{"type": "exec"}) }, "unknown message type"},
		{"stdin too long", func() { c.stdin(long) }, "input too long"},
		{"stdin without data", func() { c.send(map[string]any{"type": "stdin"}) }, "stdin needs data"},
		{"stdin with nothing running", func() { c.stdin("1\r") }, "nothing is running"},
		{"stop with nothing running", func() { c.send(map[string]any{"type": "stop"}) }, "nothing is running"},
		{"resize too large", func() { c.send(map[string]any{"type": "resize", "cols": 100000, "rows": 24}) }, "resize needs"},
		{"resize zero", func() { c.send(map[string]any{"type": "resize", "cols": 0, "rows": 24}) }, "resize needs"},
		{"run without path", func() { c.send(map[string]any{"type": "run"}) }, "run needs a path"},
		{"run another user's file", func() { c.run("Local/bob/secret.py") }, "cannot run Local/bob/secret.py: no such file"},
		{"run a missing file", func() { c.run("Local/alice/missing.py") }, "no such file"},
		{"run a folder", func() { c.run("Local/alice") }, "is a folder"},
		{"run a bad path", func() { c.run("Local/alice/../bob/secret.py") }, "cannot run"},
		{"empty REPL as a student", func() { c.send(map[string]any{"type": "repl"}) }, "not enabled for students"},
		{"run without Docker", func() { c.run("Local/alice/a.py") }, "execution is unavailable"},
		{"second run without Docker", func() { c.run("Local/alice/a.py") }, "execution is unavailable"},
		{"rate limited", func() { c.run("Local/alice/a.py") }, "too many runs; wait"},
		{"resize is fine", func() { c.send(map[string]any{"type": "resize", "cols": 100, "rows": 30}) }, ""},
	}
	for _, tt := range tests {
		tt.send()
		// A valid resize answers nothing: follow every command with a probe
		// so that each one is seen to be answered (or not) in order.
		c.send(map[string]any{"type": "probe-" + tt.name})
		if tt.want != "" {
			ev := c.waitEvent("error", waitShort)
			if msg, _ := ev["message"].(string); !strings.Contains(msg, tt.want) {
				t.Errorf("%s: error = %q, want it to contain %q", tt.name, msg, tt.want)
			}
		}
		ev := c.waitEvent("error", waitShort)
		if msg, _ := ev["message"].(string); !strings.Contains(msg, "unknown message type") {
			t.Errorf("%s: the probe got %q; the previous command was answered more than once?", tt.name, msg)
		}
	}
	// Truly abusive: a frame over the read limit ends the connection.
	huge := strings.Repeat("y", terminal.MaxMessageBytes+1)
	_ = c.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"stdin","data":"`+huge+`"}`))
	if code := closeCode(c.waitClosed(waitShort)); code != websocket.CloseMessageTooBig {
		t.Errorf("close code after an oversized frame = %d, want %d", code, websocket.CloseMessageTooBig)
	}
}

// An IDE page merely left open lets its login idle out; one in use keeps it.
func TestOpenSocketIsNotActivity(t *testing.T) {
	t.Parallel()
	const idle = 4 * time.Second
	e := newEnv(t, envOptions{idle: idle, hub: terminal.Options{RecheckEvery: 100 * time.Millisecond}})
	left := e.dial(e.login("alice"), "")
	used := e.dial(e.login("bob"), "")
	// bob types (into nothing: the server answers with an error event,
	// which is fine) for one and a half times the idle limit.
	for end := time.Now().Add(idle * 3 / 2); time.Now().Before(end); {
		used.stdin("x")
		used.waitEvent("error", waitShort)
		time.Sleep(idle / 8) // a student's pace, not a wait for a condition
	}
	select {
	case <-used.closed:
		t.Fatalf("a socket in use was closed: %v", used.Err())
	default:
	}
	if code := closeCode(left.waitClosed(waitShort)); code != terminal.CloseSessionEnded {
		t.Errorf("idle page: close code = %d, want %d", code, terminal.CloseSessionEnded)
	}
	// Once bob stops, his login idles out too.
	if code := closeCode(used.waitClosed(waitShort)); code != terminal.CloseSessionEnded {
		t.Errorf("after bob stopped: close code = %d, want %d", code, terminal.CloseSessionEnded)
	}
}

// A login session that ends without an event (expiry, removal) is found
// by the periodic re-check and its sockets closed.
func TestExpiredSessionClosesSocket(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{hub: terminal.Options{RecheckEvery: 50 * time.Millisecond}})
	ck := e.login("alice")
	c := e.dial(ck, "")
	c.stdin("x")
	c.waitEvent("error", waitShort)
	if err := e.db.DeleteSession(context.Background(), auth.HashToken(ck.Value)); err != nil {
		t.Fatal(err)
	}
	if code := closeCode(c.waitClosed(waitShort)); code != terminal.CloseSessionEnded {
		t.Errorf("close code = %d, want %d", code, terminal.CloseSessionEnded)
	}
}
