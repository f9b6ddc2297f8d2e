// Package sandboxtest helps tests run real sandboxes: it skips cleanly when no
// Docker engine or image is present, gives each test its own server id and
// removes everything the test created. It never touches containers of other
// tests and never uses anything but local images.
package sandboxtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/pythonide/pyide/pkg/sandbox"
)

// Image is the sandbox image tests use: $PYIDE_SANDBOX_IMAGE or the default.
func Image() string {
	if img := os.Getenv("PYIDE_SANDBOX_IMAGE"); img != "" {
		return img
	}
	return "pyide-sandbox:latest"
}

// Runtime is the OCI runtime tests use: $PYIDE_SANDBOX_RUNTIME (e.g. runsc,
// to run the attack suite under gVisor), or the engine's default.
func Runtime() string { return os.Getenv("PYIDE_SANDBOX_RUNTIME") }

// RequireDocker skips the test, with a one-line reason, unless an engine
// answers and the sandbox image exists.
func RequireDocker(t testing.TB) *client.Client {
	t.Helper()
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Skipf("skipping: no Docker client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		t.Skipf("skipping: no Docker engine reachable (%v); run .ci/docker-up.sh", firstLine(err))
	}
	if _, err := cli.ImageInspect(ctx, Image()); err != nil {
		t.Skipf("skipping: image %s not built (make sandbox-image)", Image())
	}
	return cli
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// ServerID returns a server id unique to this test run.
func ServerID(t testing.TB) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, t.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	return "test-" + name + "-" + hex.EncodeToString(b)
}

// NewManager starts a Manager on the test image with a unique server id
// (unless opts sets one) and closes it, removing its containers, at cleanup.
func NewManager(t testing.TB, opts sandbox.Options) *sandbox.Manager {
	t.Helper()
	cli := RequireDocker(t)
	if opts.Client == nil {
		opts.Client = cli
	}
	if opts.Image == "" {
		opts.Image = Image()
	}
	if opts.Runtime == "" {
		opts.Runtime = Runtime()
	}
	if opts.ServerID == "" {
		opts.ServerID = ServerID(t)
	}
	if opts.Logger == nil {
		opts.Logger = Logger(t)
	}
	if opts.MountRoot == "" {
		// Workspace's folders are made under the temporary folder.
		opts.MountRoot = os.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := sandbox.New(ctx, opts)
	if err != nil {
		t.Fatalf("sandbox.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := m.Close(ctx); err != nil {
			t.Errorf("closing the sandbox manager: %v", err)
		}
	})
	return m
}

// Workspace makes a fresh directory the sandbox user can write (owned by
// uid/gid 1000 when the test runs as root) and fills it with files.
func Workspace(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return GiveToSandbox(p)
	})
	if err != nil {
		t.Fatal(err)
	}
	// t.TempDir's parents are private to root; the bind mount does not need
	// them, but the leaf must be searchable by the sandbox user.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// GiveToSandbox makes path (never following a link) owned by the sandbox
// user, uid and gid 1000, when the test runs as root, so that programs in
// a sandbox can write what the test put there. As non-root it does
// nothing: the test's own uid then is the sandbox's.
func GiveToSandbox(path string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	return os.Lchown(path, 1000, 1000)
}

// Bind approves a folder made by Workspace (or any real folder under the
// temporary folder) as a mount.
func Bind(t testing.TB, source, target string, readOnly bool) sandbox.Mount {
	t.Helper()
	m, err := sandbox.Bind(source, target, readOnly)
	if err != nil {
		t.Fatalf("approving %s as a mount: %v", source, err)
	}
	return m
}

// Logger returns a logger writing to the test log until the test ends, or
// nil unless PYIDE_TEST_LOG is set (sandbox logs are noisy).
func Logger(t testing.TB) *slog.Logger {
	if os.Getenv("PYIDE_TEST_LOG") == "" {
		return nil
	}
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}
