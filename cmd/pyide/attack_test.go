package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pythonide/pyide/pkg/datadir"
	"github.com/pythonide/pyide/pkg/sandbox/sandboxtest"
)

// The trust-boundary attacks of the security review, replayed through the
// public surface a student has (HTTP and the WebSocket) on a real server
// with real Docker and PostgreSQL.

// call sends a JSON request and returns the status and the decoded reply.
func call(t *testing.T, s *served, c *http.Client, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Origin", s.base)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	if out == nil {
		out = map[string]any{"raw": string(raw)}
	}
	return resp.StatusCode, out
}

// student creates a student through the admin API and logs them in,
// changing the one-time password if the server asks for it.
func student(t *testing.T, s *served, admin *http.Client, name string) *http.Client {
	t.Helper()
	code, out := call(t, s, admin, "POST", "/api/admin/users", map[string]string{"username": name, "display_name": name, "role": "student"})
	if code != 200 {
		t.Fatalf("creating %s: %d %v", name, code, out)
	}
	pw, _ := out["passwords"].(map[string]any)[name].(string)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	if code, out := call(t, s, c, "POST", "/api/auth/login", map[string]string{"username": name, "password": pw}); code != 200 {
		t.Fatalf("login %s: %d %v", name, code, out)
	}
	newPW := "a new password for " + name
	if code, out := call(t, s, c, "POST", "/api/auth/password", map[string]string{"current_password": pw, "new_password": newPW}); code >= 300 {
		t.Fatalf("changing %s's password: %d %v", name, code, out)
	}
	if code, out := call(t, s, c, "POST", "/api/auth/login", map[string]string{"username": name, "password": newPW}); code != 200 {
		t.Fatalf("login %s again: %d %v", name, code, out)
	}
	return c
}

// tab is one open console: it collects output and events.
type tab struct {
	conn   *websocket.Conn
	events chan wsEvent
	out    chan string
}

func openTab(t *testing.T, s *served, c *http.Client, id string) *tab {
	t.Helper()
	d := websocket.Dialer{Jar: c.Jar, HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.Dial(strings.Replace(s.base, "http", "ws", 1)+"/api/ws?tab="+id, http.Header{"Origin": {s.base}})
	if err != nil {
		t.Fatal(err)
	}
	tb := &tab{conn: conn, events: make(chan wsEvent, 64), out: make(chan string, 1024)}
	go func() {
		defer close(tb.events)
		for {
			kind, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if kind == websocket.BinaryMessage {
				select {
				case tb.out <- string(msg):
				default:
				}
				continue
			}
			var ev wsEvent
			_ = json.Unmarshal(msg, &ev)
			tb.events <- ev
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return tb
}

// waitOutput reads output until it contains want.
func (tb *tab) waitOutput(t *testing.T, want string, d time.Duration) string {
	t.Helper()
	var all strings.Builder
	deadline := time.After(d)
	for {
		select {
		case s := <-tb.out:
			all.WriteString(s)
			if strings.Contains(all.String(), want) {
				return all.String()
			}
		case <-deadline:
			var evs []wsEvent
			for len(tb.events) > 0 {
				evs = append(evs, <-tb.events)
			}
			t.Fatalf("no %q within %v; events %+v; output:\n%s", want, d, evs, all.String())
		}
	}
}

// waitEvent waits for an event of the given type.
func (tb *tab) waitEvent(t *testing.T, typ string, d time.Duration) wsEvent {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev, ok := <-tb.events:
			if !ok {
				t.Fatalf("the connection closed before a %q event", typ)
			}
			if ev.Type == typ {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %q event within %v", typ, d)
		}
	}
}

func save(t *testing.T, s *served, c *http.Client, path, body string) {
	t.Helper()
	req, _ := http.NewRequest("PUT", s.base+"/api/files/content?path="+url.QueryEscape(path), strings.NewReader(body))
	req.Header.Set("Origin", s.base)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("saving %s: %d", path, resp.StatusCode)
	}
}

// TestAttackMountEscape: alice plants a link to the data folder from her
// sandbox and swaps it with a folder as fast as she can (renameat2
// RENAME_EXCHANGE) while she pushes it through the file API onto her
// submission folder in every way the review found (move, delete and trash
// restore), and while runs and spares are created. Every route is refused,
// and no sandbox ever lists anything but her own folders.
func TestAttackMountEscape(t *testing.T) {
	sandboxtest.RequireDocker(t)
	s := startServe(t, map[string]string{"DATABASE_URL": "", "SANDBOX_IMAGE": sandboxtest.Image(), "SANDBOX_RUNTIME": sandboxtest.Runtime(), "DISCONNECT_GRACE": "2s"})
	admin := s.login(t)
	now := time.Now().UTC()
	if code, out := call(t, s, admin, "POST", "/api/course/assignments", map[string]any{"slug": "hw1", "title": "Homework 1",
		"publish_at": now.Add(-time.Hour).Format(time.RFC3339), "due_at": now.Add(48 * time.Hour).Format(time.RFC3339)}); code != 201 {
		t.Fatalf("creating hw1: %d %v", code, out)
	}
	alice := student(t, s, admin, "alice")
	data := strings.TrimSuffix(s.data, "/")
	save(t, s, alice, "Local/alice/attack.py", fmt.Sprintf(`import ctypes, os, threading, time
libc = ctypes.CDLL(None, use_errno=True)
os.makedirs("/home/student/d", exist_ok=True)
try:
    os.symlink(%q, "/home/student/L")
except FileExistsError:
    pass
def swap():
    fd = os.open("/home/student", os.O_RDONLY)
    end = time.time() + 300
    while time.time() < end:
        if not os.path.lexists("/home/student/L"):
            os.symlink(%q, "/home/student/L")
        if not os.path.lexists("/home/student/d"):
            os.makedirs("/home/student/d", exist_ok=True)
        libc.syscall(316, fd, b"d", fd, b"L", 2)  # renameat2(..., RENAME_EXCHANGE)
        time.sleep(0.0002)
threading.Thread(target=swap, daemon=True).start()
print("SWAPPING")
`, data, data))
	save(t, s, alice, "Local/alice/probe.py", `import os
def ls(p):
    try:
        return sorted(os.listdir(p))
    except OSError as e:
        return "error %s" % e.errno
print("PROBE", ls("/submissions/hw1"), ls("/home/student"), ls("/course"), ls("/course/Assignments"))
`)
	probe := openTab(t, s, alice, "probe")
	attacker := openTab(t, s, alice, "attacker")
	_ = attacker.conn.WriteJSON(map[string]string{"type": "run", "path": "Local/alice/attack.py"})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", s.stderr.String())
		}
	})
	attacker.waitOutput(t, "SWAPPING", time.Minute)

	type route struct {
		name, method, path string
		body               any
	}
	routes := []route{
		{"move the source away", "POST", "/api/files/move", map[string]string{"from": "Submissions/hw1/alice", "to": "Local/alice/away"}},
		{"delete the source", "DELETE", "/api/files?path=" + url.QueryEscape("Submissions/hw1/alice"), nil},
		{"move the swapped folder onto the source", "POST", "/api/files/move", map[string]string{"from": "Local/alice/d", "to": "Submissions/hw1/alice"}},
		{"move the link onto the source", "POST", "/api/files/move", map[string]string{"from": "Local/alice/L", "to": "Submissions/hw1/alice"}},
		{"copy onto the source", "POST", "/api/files/copy", map[string]string{"from": "Local/alice/d", "to": "Submissions/hw1/alice"}},
		{"create the source", "POST", "/api/files", map[string]string{"path": "Submissions/hw1/alice", "type": "dir"}},
	}
	// What the probe may see: her own folders and the course material.
	allowed := map[string]bool{"L": true, "d": true, "attack.py": true, "probe.py": true, "Assignments": true, "Lecture Notes": true, "hw1": true}
	leaked := func(out string) []string {
		var bad []string
		for _, m := range regexp.MustCompile(`'([^']*)'`).FindAllStringSubmatch(out, -1) {
			if !allowed[m[1]] {
				bad = append(bad, m[1])
			}
		}
		return bad
	}
	deadline := time.Now().Add(20 * time.Second)
	probes := 0
	for round := 0; time.Now().Before(deadline) && round < 15; round++ {
		for _, r := range routes {
			if code, out := call(t, s, alice, r.method, r.path, r.body); code < 400 {
				t.Fatalf("round %d, %s: %d %v", round, r.name, code, out)
			}
		}
		// The trash route: what is at L (the link, or the folder swapped
		// in) is deleted, then restored. The trash is the server's alone,
		// so what it holds is settled: a link is never restored, the
		// folder may be. (Her folder itself swaps on, so it says nothing.)
		code, out := call(t, s, alice, "DELETE", "/api/files?path="+url.QueryEscape("Local/alice/L"), nil)
		if code == 200 {
			id := out["trash_id"]
			_, trash := call(t, s, alice, "GET", "/api/files/trash", nil)
			wasDir := false
			for _, e := range trash["entries"].([]any) {
				if e := e.(map[string]any); e["id"] == id {
					wasDir = e["type"] == "dir"
				}
			}
			code, out := call(t, s, alice, "POST", "/api/files/trash/restore", map[string]any{"id": id})
			if !wasDir && code < 400 {
				t.Fatalf("round %d: a link was restored from the trash: %d %v", round, code, out)
			}
			// A folder comes back, unless her program made a new L meanwhile.
			if wasDir && code >= 400 && code != 409 {
				t.Fatalf("round %d: the folder in the trash was not restored: %d %v", round, code, out)
			}
		}
		// A run in the probe tab: it takes the spare made with the mounts
		// of the last one, and asks for the next spare 20 ms later.
		_ = probe.conn.WriteJSON(map[string]string{"type": "run", "path": "Local/alice/probe.py"})
		output := probe.waitOutput(t, ">>> ", time.Minute)
		if !strings.Contains(output, "PROBE") {
			t.Fatalf("round %d: the probe did not run: %q", round, output)
		}
		probes++
		if bad := leaked(output); len(bad) > 0 {
			t.Fatalf("round %d: a sandbox sees %q, outside her folders:\n%s", round, bad, output)
		}
	}
	// Her submission folder is still the folder the server made.
	_, l := call(t, s, alice, "GET", "/api/files?path="+url.QueryEscape("Submissions/hw1"), nil)
	if !strings.Contains(fmt.Sprint(l), "type:dir") {
		t.Errorf("Submissions/hw1 as alice sees it: %v", l)
	}
	t.Logf("%d probe runs during the attack, none saw outside her folders", probes)
}

// TestAttackExamStartsUnderRunningREPL: a REPL opened before a restricted
// test's window opens ends when it opens (the course wakes at the
// boundary), with words saying why; in the test her other item's
// submission files are refused.
func TestAttackExamStartsUnderRunningREPL(t *testing.T) {
	sandboxtest.RequireDocker(t)
	s := startServe(t, map[string]string{"DATABASE_URL": "", "SANDBOX_IMAGE": sandboxtest.Image(), "SANDBOX_RUNTIME": sandboxtest.Runtime()})
	admin := s.login(t)
	now := time.Now().UTC()
	if code, out := call(t, s, admin, "POST", "/api/course/assignments", map[string]any{"slug": "hw1", "title": "Homework 1",
		"publish_at": now.Add(-time.Hour).Format(time.RFC3339), "due_at": now.Add(48 * time.Hour).Format(time.RFC3339)}); code != 201 {
		t.Fatalf("creating hw1: %d %v", code, out)
	}
	alice := student(t, s, admin, "alice")
	save(t, s, alice, "Local/alice/notes.py", "notes = 'kept'\n")
	if code, out := call(t, s, alice, "POST", "/api/course/assignments/hw1/submit", map[string]any{"files": []string{"Local/alice/notes.py"}}); code != 201 {
		t.Fatalf("submitting hw1: %d %v", code, out)
	}
	opens := time.Now().UTC().Add(8 * time.Second).Truncate(time.Second)
	if code, out := call(t, s, admin, "POST", "/api/course/tests", map[string]any{"slug": "midterm", "title": "Midterm",
		"publish_at": now.Add(-time.Hour).Format(time.RFC3339), "starts_at": opens.Format(time.RFC3339),
		"ends_at": opens.Add(time.Hour).Format(time.RFC3339), "restrict_workspace": true, "restrict_repl": true}); code != 201 {
		t.Fatalf("creating the midterm: %d %v", code, out)
	}
	console := openTab(t, s, alice, "console")
	_ = console.conn.WriteJSON(map[string]string{"type": "run", "path": "Local/alice/notes.py"})
	console.waitOutput(t, ">>> ", time.Minute)
	if time.Now().After(opens) {
		t.Skip("the machine was too slow to start the REPL before the window opened; nothing to test")
	}
	ev := console.waitEvent(t, "error", time.Until(opens)+30*time.Second)
	if !strings.Contains(ev.Message, "the files it may use have changed") {
		t.Errorf("message when the test began: %q", ev.Message)
	}
	exit := console.waitEvent(t, "exited", 10*time.Second)
	if exit.Reason != "reaped" {
		t.Errorf("exit reason %q, want reaped", exit.Reason)
	}
	if late := time.Since(opens); late > 5*time.Second {
		t.Errorf("the REPL ended %v after the window opened", late)
	}
	code, out := call(t, s, alice, "GET", "/api/course/items/hw1/submissions/alice/1/files?path=notes.py", nil)
	if code != 403 {
		t.Errorf("hw1's submission during the test: %d %v", code, out)
	}
	_ = console.conn.WriteJSON(map[string]string{"type": "repl"})
	if ev := console.waitEvent(t, "error", 30*time.Second); !strings.Contains(ev.Message, "switched off during this test") {
		t.Errorf("an empty REPL during the test: %q", ev.Message)
	}
}

// TestServeUnderAPrivateHome: a data folder under a 0700 folder (a clone
// under /root) works for a server run as root: the embedded database,
// which runs as its own system user, keeps its cluster outside the data
// folder, and the 0700 folder keeps its mode.
func TestServeUnderAPrivateHome(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("as root only: otherwise the database runs as the server's own user")
	}
	home := filepath.Join(t.TempDir(), "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(home, "pyide", "data")
	// Registered first, so it runs last: after the server has stopped.
	t.Cleanup(func() {
		if c := (datadir.Layout{Root: data}).Cluster(); strings.HasPrefix(c, datadir.DefaultExternalRoot+"/") {
			_ = os.RemoveAll(filepath.Dir(c))
		}
	})
	s := startServeIn(t, map[string]string{"DATABASE_URL": "", "IDE_DATA_PATH": data}, true)
	s.login(t)
	cluster := datadir.Layout{Root: data}.Cluster()
	if !strings.HasPrefix(cluster, datadir.DefaultExternalRoot+"/") {
		t.Fatalf("the cluster is at %s, which the database's user cannot reach\n%s", cluster, s.stderr.String())
	}
	if !strings.Contains(s.stderr.String(), cluster) {
		t.Errorf("the log does not say where the cluster is")
	}
	if fi, err := os.Stat(home); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the home's mode: %v %v", fi.Mode(), err)
	}
}
