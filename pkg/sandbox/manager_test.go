package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/pythonide/pyide/pkg/sandbox"
	"github.com/pythonide/pyide/pkg/sandbox/sandboxtest"
)

// runDecoy starts a container the reconciler must not touch: no
// pyide.managed label, but a server label so it is easy to find.
func runDecoy(t *testing.T, cli *client.Client, labels map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{
			Image: sandboxtest.Image(), Cmd: []string{"python3", "-c", "import time; time.sleep(600)"},
			User: "1000:1000", Labels: labels,
		},
		HostConfig: &container.HostConfig{NetworkMode: "none", AutoRemove: false},
	})
	if err != nil {
		t.Fatalf("create decoy: %v", err)
	}
	t.Cleanup(func() {
		_, _ = cli.ContainerRemove(context.Background(), res.ID, client.ContainerRemoveOptions{Force: true})
	})
	if _, err := cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start decoy: %v", err)
	}
	return res.ID
}

func exists(t *testing.T, cli *client.Client, id string) bool {
	t.Helper()
	_, err := cli.ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
	return err == nil
}

func TestReconcileAndClose(t *testing.T) {
	t.Parallel()
	cli := sandboxtest.RequireDocker(t)
	server := sandboxtest.ServerID(t)

	// A "crashed" server: its manager is never closed, its sessions stay up.
	crashed, err := sandbox.New(context.Background(), sandbox.Options{
		Client: cli, Image: sandboxtest.Image(), ServerID: server, SpareEnabled: true,
		MaintainInterval: time.Hour, // a dead server reconciles nothing
		MountRoot:        os.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = crashed.Close(context.Background()) })
	dir := sandboxtest.Workspace(t, nil)
	left, err := crashed.Start(context.Background(), homeSpec(t, "ivy", dir, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := crashed.Prepare(ctx, homeSpec(t, "ivy", dir, "")); err != nil {
		t.Fatal(err)
	}
	if n := len(containersOf(t, crashed, server)); n != 2 {
		t.Fatalf("%d containers before the crash, want a session and a spare", n)
	}

	decoy := runDecoy(t, cli, map[string]string{sandbox.LabelServer: server, sandbox.LabelUser: "ivy"})
	notManaged := runDecoy(t, cli, map[string]string{sandbox.LabelServer: server, sandbox.LabelManaged: "false"})
	foreign := runDecoy(t, cli, map[string]string{sandbox.LabelManaged: "true", sandbox.LabelServer: server + "-other"})

	// The restarted server reconciles in New.
	m := sandboxtest.NewManager(t, sandbox.Options{ServerID: server})
	for _, c := range containersOf(t, m, server) {
		if c.Labels[sandbox.LabelManaged] == "true" {
			t.Errorf("leftover %v (%s) survived the restart", c.Names, c.State)
		}
	}
	select {
	case <-left.Done():
	case <-time.After(waitShort):
		t.Error("the crashed server's session did not notice its container was removed")
	}
	for name, id := range map[string]string{"unlabelled decoy": decoy, "managed=false decoy": notManaged, "other server's container": foreign} {
		if !exists(t, cli, id) {
			t.Errorf("Reconcile removed the %s", name)
		}
	}

	// Live sessions survive a reconcile; Close removes them.
	s, c := start(t, m, homeSpec(t, "jack", dir, ""))
	c.waitFor(t, ">>> ", waitShort)
	if n, err := m.Reconcile(ctx); err != nil || n != 0 {
		t.Errorf("Reconcile with only live sessions = %d, %v", n, err)
	}
	c.alive(t)
	if err := m.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if ex := waitExit(t, s, waitShort); ex.Reason != sandbox.ReasonStopped {
		t.Errorf("exit at Close = %+v", ex)
	}
	for _, c := range containersOf(t, m, server) {
		if c.Labels[sandbox.LabelManaged] == "true" {
			t.Errorf("Close left %v", c.Names)
		}
	}
	if _, err := m.Start(ctx, homeSpec(t, "jack", dir, ""), nil); err == nil {
		t.Error("Start after Close succeeded")
	}
}

// TestCloseWhileCreating: a server shutting down while spares are being
// made leaves no container behind, not even one the engine finishes making
// after the server gave up on it.
func TestCloseWhileCreating(t *testing.T) {
	t.Parallel()
	cli := sandboxtest.RequireDocker(t)
	for round := range 3 {
		server := sandboxtest.ServerID(t)
		m, err := sandbox.New(context.Background(), sandbox.Options{
			Client: cli, Image: sandboxtest.Image(), ServerID: server, SpareEnabled: true, MountRoot: os.TempDir(),
		})
		if err != nil {
			t.Fatal(err)
		}
		dir := sandboxtest.Workspace(t, nil)
		for i := range 6 {
			go func() { _ = m.Prepare(context.Background(), homeSpec(t, fmt.Sprintf("early%d", i), dir, "")) }()
		}
		time.Sleep(time.Duration(10+20*round) * time.Millisecond)
		if err := m.Close(context.Background()); err != nil {
			t.Logf("Close: %v", err)
		}
		// Whatever the engine was still making has had time to appear.
		time.Sleep(2 * time.Second)
		for _, c := range containersOf(t, m, server) {
			t.Errorf("round %d: Close left %v (%s)", round, c.Names, c.State)
			_, _ = cli.ContainerRemove(context.Background(), c.ID, client.ContainerRemoveOptions{Force: true})
		}
	}
}

func TestListAndReap(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	m := sandboxtest.NewManager(t, sandbox.Options{Clock: clock, IdleTimeout: time.Hour, WallTimeout: time.Hour})
	dir := sandboxtest.Workspace(t, map[string]string{"k.py": "print('k')\n"})
	s1, c1 := start(t, m, homeSpec(t, "kim", dir, "/home/student/k.py"))
	c1.waitFor(t, ">>> ", waitShort)
	s2, c2 := start(t, m, homeSpec(t, "lee", dir, ""))
	c2.waitFor(t, ">>> ", waitShort)

	infos, err := m.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, in := range infos {
		if in.Session == s1.ID() {
			found++
			if in.User != "kim" || in.File != "/home/student/k.py" || !in.Owned || in.State != "running" || in.Key != "tab1" {
				t.Errorf("info = %+v", in)
			}
		}
	}
	if found != 1 {
		t.Fatalf("List has session %s %d times", s1.ID(), found)
	}

	clock.Advance(10 * time.Minute)
	c2.alive(t) // lee typed just now; kim is idle for 10 minutes
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	n, err := m.Reap(ctx, sandbox.Filter{Idle: 5 * time.Minute})
	if err != nil || n != 1 {
		t.Fatalf("Reap(idle) = %d, %v; want 1", n, err)
	}
	if ex := waitExit(t, s1, waitShort); ex.Reason != sandbox.ReasonReaped {
		t.Errorf("reaped exit = %+v", ex)
	}
	c2.alive(t)
	if n, err := m.Reap(ctx, sandbox.Filter{User: "lee"}); err != nil || n != 1 {
		t.Fatalf("Reap(user) = %d, %v", n, err)
	}
	if ex := waitExit(t, s2, waitShort); ex.Reason != sandbox.ReasonReaped {
		t.Errorf("reaped exit = %+v", ex)
	}
}

func TestIdleReaped(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	m := sandboxtest.NewManager(t, sandbox.Options{Clock: clock, IdleTimeout: 30 * time.Minute, WallTimeout: 10 * time.Minute, WatchInterval: 50 * time.Millisecond})
	dir := sandboxtest.Workspace(t, nil)
	s, c := start(t, m, homeSpec(t, "mia", dir, ""))
	c.waitFor(t, ">>> ", waitShort)
	// At the prompt for longer than the wall backstop: thinking is not a timeout.
	clock.Advance(20 * time.Minute)
	c.alive(t)
	clock.Advance(29 * time.Minute)
	c.alive(t)
	clock.Advance(31 * time.Minute)
	if ex := waitExit(t, s, waitShort); ex.Reason != sandbox.ReasonIdle {
		t.Errorf("exit = %+v, want idle", ex)
	}
}

func TestWallBackstop(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	m := sandboxtest.NewManager(t, sandbox.Options{Clock: clock, WallTimeout: 10 * time.Minute, WatchInterval: 50 * time.Millisecond})
	s, c, _ := startScript(t, m, "ned", "import time\nprint('sleeping', flush=True)\ntime.sleep(10**6)\n")
	c.waitFor(t, "sleeping", waitShort)
	clock.Advance(11 * time.Minute)
	if ex := waitExit(t, s, waitShort); ex.Reason != sandbox.ReasonTimeout {
		t.Errorf("exit = %+v, want timeout", ex)
	}
}

// TestUnavailableAfterConnect: when a create fails, the Manager looks at
// the engine: if it no longer answers the error is ErrUnavailable (Run
// says execution is unavailable); if it answers, the create's own error.
func TestUnavailableAfterConnect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		pingFails   bool
		unavailable bool
	}{
		{"create fails, the engine answers", false, false},
		{"create fails, the engine is gone", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cli, sick := sickClient(t, tt.pingFails)
			m := sandboxtest.NewManager(t, sandbox.Options{Client: cli})
			sick()
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			s, err := m.Start(ctx, homeSpec(t, "vic", sandboxtest.Workspace(t, nil), ""), nil)
			if err == nil {
				s.Stop(sandbox.ReasonStopped)
				t.Fatal("Start succeeded on an engine that fails every create")
			}
			if got := errors.Is(err, sandbox.ErrUnavailable); got != tt.unavailable {
				t.Errorf("Start error %q: unavailable %v, want %v", err, got, tt.unavailable)
			}
			if st := m.Stats(); st.Running != 0 {
				t.Errorf("a failed start holds a slot: %+v", st)
			}
		})
	}
}
