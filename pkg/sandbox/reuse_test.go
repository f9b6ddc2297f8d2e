package sandbox_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pythonide/pyide/pkg/sandbox"
	"github.com/pythonide/pyide/pkg/sandbox/sandboxtest"
)

// Container reuse: a REPL that ends in an ordinary way leaves its container
// to the same student's next Run, reset in place. What students see must
// not change: every Run is a fresh interpreter in a fresh container as far
// as anything of the REPL before can tell.

// leftovers is what a REPL leaves behind on purpose: a background process,
// a process that ignores every signal it can, files in both scratch
// folders, a changed environment and working directory, a file held open,
// and a variable.
const leftovers = `import os, subprocess, sys
subprocess.Popen(['sleep', '1000'], start_new_session=True)
subprocess.Popen([sys.executable, '-c', 'import signal, time\nfor s in range(1, 32):\n    try: signal.signal(s, signal.SIG_IGN)\n    except (OSError, ValueError): pass\ntime.sleep(1000)\n'], start_new_session=True)
open('/tmp/left-tmp', 'w').write('x'); open('/dev/shm/left-shm', 'w').write('x')
os.environ['LEFT_BEHIND'] = '1'; os.chdir('/tmp')
held = open('/home/student/held.txt', 'w')
left_var = 41
print('left', 'behind')
`

// inspect prints what the fresh REPL sees of the one before.
const inspect = `import os
def links(p):
    try:
        return [os.readlink('/proc/%s/fd/%s' % (p, f)) for f in os.listdir('/proc/%s/fd' % p)]
    except OSError:
        return []
procs = sorted(open('/proc/%s/cmdline' % p, 'rb').read().replace(b'\0', b' ').decode().strip() for p in os.listdir('/proc') if p.isdigit())
held = [h for p in os.listdir('/proc') if p.isdigit() for h in links(p)]
print('SEEN', len(procs), any('sleep' in c or 'signal' in c for c in procs), os.path.exists('/tmp/left-tmp'), os.path.exists('/dev/shm/left-shm'), os.listdir('/tmp'), os.listdir('/dev/shm'), os.environ.get('LEFT_BEHIND'), os.getcwd(), 'left_var' in globals(), any('held.txt' in h for h in held), 'END')
`

// fresh is what inspect prints in a container nothing ran in before: tini,
// the supervisor and this REPL.
const fresh = "SEEN 3 False False False [] [] None /home/student False False END"

func reuseManager(t *testing.T) *sandbox.Manager {
	t.Helper()
	// No spare after a Start: the next Run can only be warm in the
	// container the REPL before ran in.
	return sandboxtest.NewManager(t, sandbox.Options{SpareEnabled: true, SpareDelay: time.Hour})
}

// recycled waits until user's container is their spare again.
func recycled(t *testing.T, m *sandbox.Manager, spec sandbox.Spec) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	spec.File = ""
	if err := m.Prepare(ctx, spec); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
}

func TestReuseLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	m := reuseManager(t)
	dir := sandboxtest.Workspace(t, map[string]string{"left.py": leftovers, "inspect.py": inspect})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := m.Prepare(ctx, homeSpec(t, "rita", dir, "")); err != nil {
		t.Fatal(err)
	}
	// What a container shows before anything of hers ran in it.
	s0, c0 := start(t, m, homeSpec(t, "rita", dir, "/home/student/inspect.py"))
	c0.waitFor(t, "END", waitShort)
	if !strings.Contains(c0.String(), fresh) {
		t.Fatalf("a new container shows %q, want %q", c0.String(), fresh)
	}
	box := s0.ContainerName()
	c0.send(t, "exit()")
	waitExit(t, s0, waitShort)

	for _, end := range []struct {
		name string
		end  func(*sandbox.Session, *tty)
	}{
		{"the REPL ended by itself", func(_ *sandbox.Session, c *tty) { c.send(t, "exit()") }},
		{"the student pressed Stop", func(s *sandbox.Session, _ *tty) { s.Stop(sandbox.ReasonStopped) }},
	} {
		recycled(t, m, homeSpec(t, "rita", dir, ""))
		s1, c1 := start(t, m, homeSpec(t, "rita", dir, "/home/student/left.py"))
		if !s1.Warm() || s1.ContainerName() != box {
			t.Fatalf("%s: Run in %s (warm %v), want the reused %s", end.name, s1.ContainerName(), s1.Warm(), box)
		}
		c1.waitFor(t, "left behind", waitShort)
		c1.waitFor(t, ">>> ", waitShort)
		end.end(s1, c1)
		waitExit(t, s1, waitShort)
		if _, err := s1.Write([]byte("print('typed late')\n")); err == nil {
			t.Errorf("%s: the ended session still writes into its container", end.name)
		}

		recycled(t, m, homeSpec(t, "rita", dir, ""))
		s2, c2 := start(t, m, homeSpec(t, "rita", dir, "/home/student/inspect.py"))
		if s2.ContainerName() != box || s2.ID() == s1.ID() {
			t.Fatalf("%s: next Run in %s as %s, want the reused %s under a new session id", end.name, s2.ContainerName(), s2.ID(), box)
		}
		c2.waitFor(t, "END", waitShort)
		if got := c2.String(); !strings.Contains(got, fresh) || strings.Contains(got, "typed late") {
			t.Errorf("%s: the next REPL shows %q, want %q", end.name, got, fresh)
		}
		c2.send(t, "exit()")
		waitExit(t, s2, waitShort)
	}
}

// TestReuseOnlySameUserAndFolders: a container a REPL ran in goes to the
// same student with the very same folders, or nowhere.
func TestReuseOnlySameUserAndFolders(t *testing.T) {
	t.Parallel()
	m := reuseManager(t)
	dir := sandboxtest.Workspace(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := m.Prepare(ctx, homeSpec(t, "sam", dir, "")); err != nil {
		t.Fatal(err)
	}
	s1, c1 := start(t, m, homeSpec(t, "sam", dir, ""))
	c1.waitFor(t, ">>> ", waitShort)
	box := s1.ContainerName()
	c1.send(t, "exit()")
	waitExit(t, s1, waitShort)
	recycled(t, m, homeSpec(t, "sam", dir, ""))

	// Another student with the same folder (as if shared) gets her own.
	other, co := start(t, m, homeSpec(t, "tess", dir, ""))
	co.waitFor(t, ">>> ", waitShort)
	if other.ContainerName() == box || other.Warm() {
		t.Errorf("tess ran in %s (warm %v), sam's container", other.ContainerName(), other.Warm())
	}
	// Sam with other folders (read-only, as over quota) gets a new one,
	// and the container with the old folders goes.
	ro := sandbox.Spec{User: "sam", Role: "student", Key: "tab1",
		Mounts: []sandbox.Mount{sandboxtest.Bind(t, dir, "/home/student", true)}}
	s2, c2 := start(t, m, ro)
	c2.waitFor(t, ">>> ", waitShort)
	if s2.ContainerName() == box || s2.Warm() {
		t.Errorf("sam's read-only Run took the container of his writable one")
	}
	recycled(t, m, ro)
	assertGone(t, m, box)
}

// TestReuseNeverAfterALimitOrAKill: a REPL that ran out of memory, was
// killed, or hit another limit takes its container with it.
func TestReuseNeverAfterALimitOrAKill(t *testing.T) {
	t.Parallel()
	m := sandboxtest.NewManager(t, sandbox.Options{SpareEnabled: true, SpareDelay: time.Hour, MemoryMB: 64})
	tests := []struct {
		name, code string
		reason     string
	}{
		{"memory", "x = bytearray(1 << 30)\n", sandbox.ReasonMemory},
		{"killed", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", sandbox.ReasonError},
		{"timeout", "import sys\nsys.exit(124)\n", sandbox.ReasonTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			user := "lim" + tt.name
			dir := sandboxtest.Workspace(t, map[string]string{"main.py": tt.code})
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			if err := m.Prepare(ctx, homeSpec(t, user, dir, "")); err != nil {
				t.Fatal(err)
			}
			s, c := start(t, m, homeSpec(t, user, dir, "/home/student/main.py"))
			ex := waitExit(t, s, waitCPU)
			if ex.Reason != tt.reason && (tt.reason != sandbox.ReasonMemory || !memoryExit(ex)) {
				t.Errorf("exit = %+v, want reason %s; output:\n%s", ex, tt.reason, c.String())
			}
			assertGone(t, m, s.ContainerName())
			// The engine makes her next container instead.
			recycled(t, m, homeSpec(t, user, dir, ""))
			next, cn := start(t, m, homeSpec(t, user, dir, ""))
			cn.waitFor(t, ">>> ", waitShort)
			if next.ContainerName() == s.ContainerName() || !next.Warm() {
				t.Errorf("after a %s the next Run is in %s (warm %v), want a new spare", tt.name, next.ContainerName(), next.Warm())
			}
		})
	}
}
