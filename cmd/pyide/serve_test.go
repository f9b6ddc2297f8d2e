package main

import (
	"context"
	"encoding/json"
	"io"
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

	"github.com/pythonide/pyide/pkg/datadir"
	"github.com/pythonide/pyide/pkg/servertest"
)

// syncBuffer is a bytes.Buffer safe to read while serve writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// served is a running `pyide serve` for a test.
type served struct {
	base   string
	stdout *syncBuffer
	stderr *syncBuffer
	data   string // IDE_DATA_PATH
}

// startServe runs `pyide serve` with env until the test ends, and waits
// until it reports its URL.
func startServe(t *testing.T, env map[string]string) *served {
	t.Helper()
	return startServeIn(t, env, false)
}

// startServeIn is startServe; with keepModes the data folder's parents keep
// their modes (a test of a data folder the database's user cannot reach).
func startServeIn(t *testing.T, env map[string]string, keepModes bool) *served {
	t.Helper()
	// env may name the data folder (one laid out beforehand).
	data := env["IDE_DATA_PATH"]
	if data == "" {
		data = filepath.Join(t.TempDir(), "data")
	}
	// When tests run as root the cluster runs as an unprivileged user that
	// must be able to walk down to its folder.
	for d := filepath.Dir(data); !keepModes && d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		_ = os.Chmod(d, 0o755)
	}
	t.Setenv("IDE_DATA_PATH", data)
	t.Setenv("PORT", "127.0.0.1:0")
	t.Setenv("BCRYPT_COST", "10")
	t.Setenv("BACKUP_SCHEDULE", "0")
	for k, v := range env {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{stdout: &syncBuffer{}, stderr: &syncBuffer{}, data: data}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, strings.NewReader(""), s.stdout, s.stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err, ok := <-done:
			if ok && err != nil {
				t.Errorf("serve returned %v", err)
			}
		case <-time.After(90 * time.Second):
			t.Error("serve did not stop within 90 s of its context ending")
		}
		// The embedded cluster is stopped with the server.
		if _, err := os.Stat(filepath.Join(datadir.Layout{Root: data}.Cluster(), "data", "postmaster.pid")); err == nil {
			t.Error("the embedded PostgreSQL is still running after serve stopped")
		}
		// And no sandbox of this server outlives it.
		out, err := exec.Command("docker", "ps", "-aq", "--filter", "label=pyide.server="+serverID(data)).Output()
		if err == nil && len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("containers left behind after serve stopped: %s", out)
		}
	})
	urlRE := regexp.MustCompile(`"url":"(http://[^"]+)"|url=(http://\S+)`)
	deadline := time.Now().Add(90 * time.Second)
	for s.base == "" && time.Now().Before(deadline) {
		select {
		case err := <-done:
			close(done)
			t.Fatalf("serve ended early: %v\n%s", err, s.stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
		if m := urlRE.FindStringSubmatch(s.stderr.String()); m != nil {
			s.base = m[1] + m[2]
		}
	}
	if s.base == "" {
		t.Fatalf("serve did not report its URL:\n%s", s.stderr.String())
	}
	return s
}

// adminPassword is the first-start password serve printed.
func (s *served) adminPassword(t *testing.T) string {
	pw := regexp.MustCompile(`created user "admin" with password (\S+)`).FindStringSubmatch(s.stdout.String())
	if pw == nil {
		t.Fatalf("no first admin password printed:\n%s", s.stdout.String())
	}
	return pw[1]
}

// login returns a client with admin's session.
func (s *served) login(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	body, _ := json.Marshal(map[string]string{"username": "admin", "password": s.adminPassword(t)})
	resp, err := c.Post(s.base+"/api/auth/login", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"role":"admin"`) {
		t.Fatalf("login with the printed password: %d %s", resp.StatusCode, b)
	}
	return c
}

// get returns the status and body of a GET.
func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeEmbeddedDefault is `make run` in miniature: no DATABASE_URL, a
// fresh data folder; serve starts its own PostgreSQL, prints the first
// admin password, and that password logs in.
func TestServeEmbeddedDefault(t *testing.T) {
	s := startServe(t, map[string]string{"DATABASE_URL": "", "IDE_SECRET_KEY": "left over from an old pyide.env"})
	if strings.Contains(s.stderr.String(), s.adminPassword(t)) {
		t.Fatal("the admin password reached the log")
	}
	if code, _ := get(t, http.DefaultClient, s.base+"/healthz"); code != 200 {
		t.Fatalf("healthz: %d", code)
	}
	s.login(t)
	data := os.Getenv("IDE_DATA_PATH")
	if _, err := os.Stat(filepath.Join(data, "secret.key")); err == nil {
		t.Error("a secret key was written; nothing uses one")
	}
	if !strings.Contains(s.stderr.String(), "IDE_SECRET_KEY is set but no longer used") {
		t.Errorf("no warning about IDE_SECRET_KEY:\n%s", s.stderr.String())
	}
	// The server's state is in its private folder: the server's alone, or
	// (running as root) passable by the database's own user's group.
	want := os.FileMode(0o700)
	if os.Geteuid() == 0 {
		want = 0o710
	}
	st, err := os.Stat(datadir.Layout{Root: data}.Private())
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != want || int(st.Sys().(*syscall.Stat_t).Uid) != os.Geteuid() {
		t.Fatalf("private folder: %v owned by uid %d; want mode %v, owned by uid %d", st.Mode(), st.Sys().(*syscall.Stat_t).Uid, want, os.Geteuid())
	}
	for _, p := range []string{datadir.Layout{Root: data}.Cluster(), datadir.Layout{Root: data}.AdminSocket()} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("not in the private folder: %v", err)
		}
	}
	code, body := get(t, http.DefaultClient, s.base+"/readyz")
	if code != 200 || !strings.Contains(body, "schema version") {
		t.Fatalf("readyz: %d %s", code, body)
	}
}

// TestServeScheduledBackup: with a schedule, serve writes its first backup
// into BACKUP_DIR and exports when it succeeded.
func TestServeScheduledBackup(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, map[string]string{"DATABASE_URL": "", "BACKUP_SCHEDULE": "1h", "BACKUP_DIR": dir, "DOCKER_HOST": "unix:///nonexistent/docker.sock"})
	servertest.Eventually(t, 60*time.Second, "the first scheduled backup", func() bool {
		m, _ := filepath.Glob(filepath.Join(dir, "pyide-backup-*.tar.gz"))
		return len(m) == 1
	})
	servertest.Eventually(t, 10*time.Second, "the backup metric", func() bool {
		_, body := get(t, http.DefaultClient, s.base+"/metrics")
		return regexp.MustCompile(`pyide_backup_last_success_timestamp_seconds [1-9]`).MatchString(body)
	})
}
