package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// TestNewcomer is the README's first command as a newcomer meets it: a
// fresh clone inside a 0700 folder (as under /root on every Debian
// server), `make run`, then the printed admin logs in and a Python file
// runs over the WebSocket. Stopped, nothing of it is left running and no
// container is left. It clones and builds everything, so it runs as its
// own suite of `make test` (PYIDE_NEWCOMER=1), not inside `go test ./...`.
func TestNewcomer(t *testing.T) {
	if os.Getenv("PYIDE_NEWCOMER") == "" {
		t.Skip("the newcomer path is its own suite of make test (PYIDE_NEWCOMER=1): it clones and builds everything")
	}
	if os.Geteuid() != 0 {
		t.Skip("the newcomer path is tried as root, as on a fresh server")
	}
	home := filepath.Join(t.TempDir(), "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	clone := filepath.Join(home, "pyide")
	if out, err := exec.Command("git", "clone", "-q", "..", clone).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = os.RemoveAll(home) })
	port := freePort(t)
	base := "http://127.0.0.1:" + port

	out := &lockedBuffer{}
	cmd := exec.Command("make", "run")
	cmd.Dir = clone
	cmd.Env = append(os.Environ(), "PORT=127.0.0.1:"+port)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(90 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			t.Errorf("make run did not stop within 90 s of SIGTERM")
		}
	}
	t.Cleanup(stop)

	deadline := time.Now().Add(10 * time.Minute)
	for {
		if r, err := http.Get(base + "/healthz"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				break
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("make run ended before serving: %v\n%s", err, out.String())
		case <-time.After(time.Second):
		}
		if time.Now().After(deadline) {
			t.Fatalf("not serving 10 minutes after make run:\n%s", out.String())
		}
	}
	t.Logf("make run served %s after %v", base, time.Since(began).Round(time.Second))
	m := regexp.MustCompile(`created user "admin" with password (\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no admin password printed:\n%s", out.String())
	}
	if ps, err := exec.Command("ps", "-o", "user=", "-C", "pyide").Output(); err != nil || strings.Contains(string(ps), "root") {
		t.Errorf("the server runs as %q; it must not be root", strings.TrimSpace(string(ps)))
	}

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	send := func(method, path, ctype string, body io.Reader) int {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, body)
		req.Header.Set("Origin", base)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		r, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	login, _ := json.Marshal(map[string]string{"username": "admin", "password": m[1]})
	if code := send("POST", "/api/auth/login", "application/json", bytes.NewReader(login)); code != 200 {
		t.Fatalf("login as the printed admin: %d", code)
	}
	if code := send("PUT", "/api/files/content?path=Local/admin/hello.py", "", strings.NewReader("print('hello from', 6 * 7)\n")); code != 200 {
		t.Fatalf("saving hello.py: %d", code)
	}
	d := websocket.Dialer{Jar: jar, HandshakeTimeout: 10 * time.Second}
	ws, _, err := d.Dial("ws://127.0.0.1:"+port+"/api/ws?tab=newcomer", http.Header{"Origin": {base}})
	if err != nil {
		t.Fatal(err)
	}
	_ = ws.WriteJSON(map[string]string{"type": "run", "path": "Local/admin/hello.py"})
	_ = ws.SetReadDeadline(time.Now().Add(2 * time.Minute))
	var got strings.Builder
	for !strings.Contains(got.String(), "hello from 42") {
		kind, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("reading the run's output: %v (so far %q)\n%s", err, got.String(), out.String())
		}
		if kind == websocket.BinaryMessage {
			got.Write(msg)
		} else if strings.Contains(string(msg), `"error"`) {
			t.Fatalf("the run failed: %s\n%s", msg, out.String())
		}
	}
	ws.Close()

	stop()
	// Nothing of it runs any more: not the server, not its database, and
	// no sandbox container is left.
	if ps, _ := exec.Command("pgrep", "-af", clone).Output(); len(bytes.TrimSpace(ps)) > 0 {
		t.Errorf("still running after make run stopped:\n%s", ps)
	}
	if left := containersMounting(t, clone); len(left) > 0 {
		t.Errorf("containers left after make run stopped: %s\nits output:\n%s", strings.Join(left, " "), out.String())
	}
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), "EBADENGINE") {
			t.Errorf("npm warned about the Node version: %s", sc.Text())
		}
	}
}

// containersMounting lists the sandbox containers that mount a folder under
// dir: this server's, whatever other tests beside it leave running.
func containersMounting(t *testing.T, dir string) []string {
	t.Helper()
	ids, err := exec.Command("docker", "ps", "-aq", "--filter", "label=pyide.managed=true").Output()
	if err != nil {
		t.Fatalf("docker ps: %v", err)
	}
	var ours []string
	for _, id := range strings.Fields(string(ids)) {
		srcs, err := exec.Command("docker", "inspect", "--format", "{{range .Mounts}}{{.Source}}\n{{end}}", id).Output()
		if err != nil {
			continue // removed meanwhile
		}
		for _, src := range strings.Split(string(srcs), "\n") {
			if src == dir || strings.HasPrefix(src, dir+"/") {
				ours = append(ours, id)
				break
			}
		}
	}
	return ours
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}
