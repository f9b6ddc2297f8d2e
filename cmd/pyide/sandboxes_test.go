package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pythonide/pyide/pkg/config"
	"github.com/pythonide/pyide/pkg/sandbox"
	"github.com/pythonide/pyide/pkg/sandbox/sandboxtest"
	"github.com/pythonide/pyide/pkg/terminal"
)

// TestEndTestReapsTheStudent: when a student's test time is over, their
// sandboxes end (they ran with the test's mounts), each console told why
// first; other students' do not. An administrator's reap says so too.
func TestEndTestReapsTheStudent(t *testing.T) {
	t.Parallel()
	sandboxtest.RequireDocker(t)
	env := map[string]string{"SANDBOX_IMAGE": sandboxtest.Image(), "IDE_DATA_PATH": t.TempDir()}
	cfg, err := config.Load(nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var mu sync.Mutex
	told := map[string]string{}
	sb := &sandboxes{cfg: cfg, logger: slog.New(slog.DiscardHandler), notice: func(session, why string) bool {
		mu.Lock()
		defer mu.Unlock()
		told[session] = why
		return true
	}}
	sb.connect(ctx)
	t.Cleanup(func() {
		if err := sb.close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	start := func(user string) terminal.Session {
		home := filepath.Join(cfg.DataPath, "Local", user)
		if err := os.MkdirAll(home, 0o755); err != nil {
			t.Fatal(err)
		}
		s, err := sb.Start(ctx, sandbox.Spec{User: user, Role: "student", Key: "tab",
			Mounts: []sandbox.Mount{sandboxtest.Bind(t, home, "/home/student", false)}}, nil)
		if err != nil {
			t.Fatalf("Start for %s: %v", user, err)
		}
		return s
	}
	alice, bob := start("alice"), start("bob")
	sb.endTest("midterm", "alice")
	select {
	case <-alice.Done():
		if r := alice.Exit().Reason; r != sandbox.ReasonReaped {
			t.Errorf("alice's sandbox ended with %q, want reaped", r)
		}
	case <-ctx.Done():
		t.Fatal("alice's sandbox still runs after her test ended")
	}
	select {
	case <-bob.Done():
		t.Errorf("bob's sandbox ended too: %+v", bob.Exit())
	default:
	}
	mu.Lock()
	if !strings.Contains(told[alice.ID()], "test is over") || told[bob.ID()] != "" {
		t.Errorf("told = %q", told)
	}
	mu.Unlock()

	if err := (adminView{sb}).Stop(ctx, bob.ID()); err != nil {
		t.Fatal(err)
	}
	<-bob.Done()
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(told[bob.ID()], "An administrator ended your program") {
		t.Errorf("bob was told %q", told[bob.ID()])
	}
}
