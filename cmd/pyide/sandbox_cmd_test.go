package main

import (
	"context"
	"strings"
	"testing"

	"github.com/pythonide/pyide/pkg/sandbox/sandboxtest"
)

// TestSandboxCLI: `pyide sandbox ls` and `reap` against a running server,
// through its admin socket, and their usage errors.
func TestSandboxCLI(t *testing.T) {
	sandboxtest.RequireDocker(t)
	s := startServe(t, map[string]string{"DATABASE_URL": "", "SANDBOX_IMAGE": sandboxtest.Image()})
	client := s.login(t)
	// The REPL stays alive after the socket closes (grace period).
	if _, out := runOverWS(t, s, client, "Local/admin/count.py", "n = 3\nprint('counted', n)\n"); !strings.Contains(out, "counted 3") {
		t.Fatalf("run: %q", out)
	}
	cli := func(args ...string) (string, error) {
		var out, errOut strings.Builder
		err := run(context.Background(), args, strings.NewReader(""), &out, &errOut)
		return out.String(), err
	}
	out, err := cli("sandbox", "ls")
	if err != nil || !strings.Contains(out, "admin") || !strings.Contains(out, "/home/student/count.py") {
		t.Fatalf("sandbox ls: %q %v", out, err)
	}
	out, err = cli("sandbox", "reap", "--idle", "1h")
	if err != nil || !strings.Contains(out, "reaped 0") {
		t.Fatalf("reap --idle 1h must spare a fresh REPL: %q %v", out, err)
	}
	out, err = cli("sandbox", "reap", "--user", "admin")
	if err != nil || strings.Contains(out, "reaped 0") {
		t.Fatalf("reap --user admin: %q %v", out, err)
	}
	if out, _ := cli("sandbox", "ls"); strings.Contains(out, "count.py") {
		t.Fatalf("the REPL survived a reap:\n%s", out)
	}
	for _, bad := range [][]string{
		{"sandbox"},
		{"sandbox", "frob"},
		{"sandbox", "reap"},
		{"sandbox", "reap", "--all", "--user", "x"},
		{"sandbox", "ls", "extra"},
	} {
		if _, err := cli(bad...); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
