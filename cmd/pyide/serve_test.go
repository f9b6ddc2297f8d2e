package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
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

// TestServeEmbeddedDefault is `make run` in miniature: no DATABASE_URL, a
// fresh data folder; serve starts its own PostgreSQL, prints the first
// admin password, and that password logs in.
func TestServeEmbeddedDefault(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	// When tests run as root the cluster runs as an unprivileged user that
	// must be able to walk down to its folder.
	for d := filepath.Dir(data); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		_ = os.Chmod(d, 0o755)
	}
	t.Setenv("DATABASE_URL", "")
	t.Setenv("IDE_DATA_PATH", data)
	t.Setenv("PORT", "127.0.0.1:0")
	t.Setenv("BCRYPT_COST", "10")
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, strings.NewReader(""), &stdout, &stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err, ok := <-done:
			if ok && err != nil {
				t.Errorf("serve returned %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("serve did not stop within 60 s of its context ending")
		}
		// The embedded cluster is stopped with the server.
		if _, err := os.Stat(filepath.Join(data, "pgdata", "data", "postmaster.pid")); err == nil {
			t.Error("the embedded PostgreSQL is still running after serve stopped")
		}
	})
	urlRE := regexp.MustCompile(`"url":"(http://[^"]+)"|url=(http://\S+)`)
	var base string
	deadline := time.Now().Add(90 * time.Second)
	for base == "" && time.Now().Before(deadline) {
		select {
		case err := <-done:
			close(done)
			t.Fatalf("serve ended early: %v\n%s", err, stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
		if m := urlRE.FindStringSubmatch(stderr.String()); m != nil {
			base = m[1] + m[2]
		}
	}
	if base == "" {
		t.Fatalf("serve did not report its URL:\n%s", stderr.String())
	}
	pw := regexp.MustCompile(`created user "admin" with password (\S+)`).FindStringSubmatch(stdout.String())
	if pw == nil {
		t.Fatalf("no first admin password printed:\n%s", stdout.String())
	}
	if strings.Contains(stderr.String(), pw[1]) {
		t.Fatal("the admin password reached the log")
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	body, _ := json.Marshal(map[string]string{"username": "admin", "password": pw[1]})
	resp, err = c.Post(base+"/api/auth/login", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"role":"admin"`) {
		t.Fatalf("login with the printed password: %d %s", resp.StatusCode, b)
	}
	st, err := os.Stat(filepath.Join(data, "secret.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secret key: %v %v", st, err)
	}
	resp, err = http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "schema version") {
		t.Fatalf("readyz: %d %s", resp.StatusCode, b)
	}
}
