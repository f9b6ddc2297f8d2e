package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pythonide/pyide/pkg/sandbox"
	"github.com/pythonide/pyide/pkg/sandbox/sandboxtest"
)

// Each attack runs next to a bystander, another student's REPL, which must
// keep answering while the attack runs and after it.

func TestAttackForkBomb(t *testing.T) {
	t.Parallel()
	m := sandboxtest.NewManager(t, sandbox.Options{CPUSeconds: 2})
	by := bystander(t, m)
	s, c, _ := startScript(t, m, "mallory", `import os
print("forking", flush=True)
n = 0
while True:
    try:
        if os.fork() == 0:
            n = 0
        else:
            n += 1
    except OSError:
        pass
`)
	c.waitFor(t, "forking", waitShort)
	by.alive(t)
	ex := waitExit(t, s, waitLong)
	// runc leaves the bomb spinning at the pids limit until its CPU
	// budget is spent. Under gVisor every process lives in the sandbox's
	// own memory, so the memory limit (or the pids limit, which ends the
	// whole sandbox) stops it first.
	switch {
	case ex.Reason == sandbox.ReasonTimeout:
	case sandboxtest.Runtime() == "runsc" && (ex.Reason == sandbox.ReasonMemory || ex.Reason == sandbox.ReasonError):
	default:
		t.Errorf("fork bomb exit = %+v, want timeout", ex)
	}
	by.alive(t)
}

func TestAttackMemoryBomb(t *testing.T) {
	t.Parallel()
	m := sandboxtest.NewManager(t, sandbox.Options{})
	by := bystander(t, m)
	s, _, _ := startScript(t, m, "mallory", "x = []\nwhile True:\n    x.append(bytearray(1 << 20))\n")
	if ex := waitExit(t, s, waitLong); !memoryExit(ex) {
		t.Errorf("memory bomb exit = %+v, want memory", ex)
	}
	by.alive(t)
}

func TestAttackCPU(t *testing.T) {
	t.Parallel()
	m := sandboxtest.NewManager(t, sandbox.Options{CPUSeconds: 2})
	by := bystander(t, m)
	tests := []struct{ name, code string }{
		{"python loop", "while True:\n    pass\n"},
		{"loop in C", "print(sum(range(10**12)))\n"},
		{"itimer disabled", "import signal\nsignal.setitimer(signal.ITIMER_PROF, 0)\nsignal.signal(signal.SIGPROF, signal.SIG_IGN)\nwhile True:\n    pass\n"},
		{"rlimit raised then C loop", "import resource, signal\nsignal.setitimer(signal.ITIMER_PROF, 0)\ns, h = resource.getrlimit(resource.RLIMIT_CPU)\nresource.setrlimit(resource.RLIMIT_CPU, (h, h))\nprint(sum(range(10**12)))\n"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, c, _ := startScript(t, m, fmt.Sprintf("spinner%d", i), tt.code)
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("output:\n%s", c.String())
				}
			})
			if ex := waitExit(t, s, waitCPU); ex.Reason != sandbox.ReasonTimeout {
				t.Errorf("exit = %+v, want timeout; output:\n%s", ex, c.String())
			}
			by.alive(t)
		})
	}
	t.Run("REPL survives a timed-out command", func(t *testing.T) {
		t.Parallel()
		dir := sandboxtest.Workspace(t, nil)
		s, c := start(t, m, homeSpec(t, "replspinner", dir, ""))
		c.waitFor(t, ">>> ", waitShort)
		c.send(t, "keep = 'kept'")
		c.send(t, "while True: pass")
		c.send(t, "")
		c.waitFor(t, "CPU time", waitLong)
		c.roundTrip(t, "print(keep.upper())", "KEPT")
		select {
		case <-s.Done():
			t.Fatalf("the REPL ended: %+v", s.Exit())
		default:
		}
		by.alive(t)
	})
}

// TestAttackEmptyWrites: Python writes empty strings to the terminal on its
// own (print(x, end=""), the traceback printer), and under gVisor an empty
// write to the supervisor's pseudo-TTY never returned, so a script that
// raised an error hung before its traceback showed, and the CPU limit's
// message with it. Every Python in the image must get past them, a child
// process included.
func TestAttackEmptyWrites(t *testing.T) {
	t.Parallel()
	m := sandboxtest.NewManager(t, sandbox.Options{})
	s, c, _ := startScript(t, m, "mallory", `import subprocess, sys
print("one", end="")
sys.stdout.write("")
sys.stderr.write("")
print(" two", flush=True)
subprocess.run([sys.executable, "-c", "print('child', end=''); print(); 1/0"])
raise ValueError("shown")
`)
	ex := waitExit(t, s, waitLong)
	out := c.String()
	if ex != (sandbox.Exit{Code: 1, Reason: sandbox.ReasonError}) {
		t.Errorf("exit = %+v, want an error; output:\n%s", ex, out)
	}
	for _, want := range []string{"one two", "child", "ZeroDivisionError", "ValueError: shown"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the output:\n%s", want, out)
		}
	}
}

func TestAttackEndlessOutput(t *testing.T) {
	t.Parallel()
	m := sandboxtest.NewManager(t, sandbox.Options{})
	by := bystander(t, m)
	s, c, _ := startScript(t, m, "mallory", "while True:\n    print('y' * 1000)\n")
	// A throughput floor, not a figure: alone it takes seconds, but under
	// gVisor beside the other attacks a loaded machine gives it a minute.
	// Every 30 s, how far it got: a stall and a slow pipe look different.
	var next time.Time
	eventually(t, waitCPU, "reading 8 MB of output", func() bool {
		if n := c.Total(); n > 8<<20 {
			return true
		} else if now := time.Now(); now.After(next) {
			t.Logf("%d bytes of output so far", n)
			next = now.Add(30 * time.Second)
		}
		return false
	})
	by.alive(t)
	s.Stop(sandbox.ReasonStopped)
	if ex := waitExit(t, s, waitShort); ex.Reason != sandbox.ReasonStopped {
		t.Errorf("exit = %+v", ex)
	}
	by.alive(t)
}

// probe runs a script that prints RESULT:SAFE or RESULT:UNSAFE <why>.
func probe(t *testing.T, m *sandbox.Manager, by *tty, user string, files map[string]string, mounts []sandbox.Mount) string {
	t.Helper()
	dir := sandboxtest.Workspace(t, files)
	spec := homeSpec(t, user, dir, "/home/student/probe.py")
	spec.Mounts = append(spec.Mounts, mounts...)
	_, c := start(t, m, spec)
	c.waitFor(t, "RESULT:", waitLong)
	out := c.String()
	if !strings.Contains(out, "RESULT:SAFE") {
		t.Errorf("unsafe outcome:\n%s", out)
	}
	by.alive(t)
	return dir
}

func TestAttackProbes(t *testing.T) {
	t.Parallel()
	m := sandboxtest.NewManager(t, sandbox.Options{})
	by := bystander(t, m)

	// A miniature IDE_DATA_PATH with two students and course material.
	data := t.TempDir()
	for _, d := range []string{"Local/alice", "Local/bob", "Lecture Notes"} {
		if err := os.MkdirAll(filepath.Join(data, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bob := filepath.Join(data, "Local/bob")
	if err := os.WriteFile(filepath.Join(bob, "bobsecret.txt"), []byte("bob's answers"), 0o644); err != nil {
		t.Fatal(err)
	}
	notes := filepath.Join(data, "Lecture Notes")
	if err := os.WriteFile(filepath.Join(notes, "readme.txt"), []byte("week 1"), 0o644); err != nil {
		t.Fatal(err)
	}
	courseRO := []sandbox.Mount{sandboxtest.Bind(t, notes, "/course/Lecture Notes", true)}

	tests := []struct {
		name   string
		code   string
		mounts []sandbox.Mount
	}{
		{"network unreachable", `import socket
bad = []
for host, port in [("1.1.1.1", 53), ("172.17.0.1", 2375), ("172.17.0.1", 22), ("10.0.0.1", 80)]:
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect((host, port))
        bad.append(f"{host}:{port}")
    except OSError:
        pass
    finally:
        s.close()
try:
    socket.getaddrinfo("example.com", 80)
    bad.append("dns")
except OSError:
    pass
names = sorted(n for _, n in socket.if_nameindex())
if names != ["lo"]:
    bad.append(f"interfaces {names}")
print("RESULT:" + ("UNSAFE %s" % bad if bad else "SAFE"))
`, nil},
		{"shadow unreadable", `try:
    open("/etc/shadow").read()
    print("RESULT:UNSAFE read /etc/shadow")
except OSError:
    print("RESULT:" + "SAFE")
`, nil},
		{"other students and data folder invisible", fmt.Sprintf(`import os
bad = []
for root, dirs, files in os.walk("/"):
    if root in ("/proc", "/sys", "/dev"):
        dirs[:] = []
        continue
    for f in files + dirs:
        if "bobsecret" in f:
            bad.append(os.path.join(root, f))
for p in [%q, %q, "/var/run/docker.sock", "/run/docker.sock"]:
    if os.path.exists(p):
        bad.append(p)
print("RESULT:" + ("UNSAFE %%s" %% bad if bad else "SAFE"))
`, data, bob), courseRO},
		{"read-only course and root fs", `bad = []
for p in ["/course/Lecture Notes/readme.txt", "/course/Lecture Notes/new.txt", "/usr/x", "/etc/x", "/x", "/opt/pyide/runner.py", "/home/x"]:
    try:
        with open(p, "a") as f:
            f.write("x")
        bad.append(p)
    except OSError:
        pass
with open("/home/student/mine.txt", "w") as f:
    f.write("fine")
print("RESULT:" + ("UNSAFE %s" % bad if bad else "SAFE"))
`, courseRO},
		{"symlinks lead nowhere outside", fmt.Sprintf(`import os
bad = []
os.symlink(%q, "/home/student/tobob")
os.symlink("/etc", "/home/student/toetc")
for p in ["/home/student/tobob/bobsecret.txt", "/home/student/toetc/shadow"]:
    try:
        open(p).read()
        bad.append(p)
    except OSError:
        pass
print("RESULT:" + ("UNSAFE %%s" %% bad if bad else "SAFE"))
`, bob), nil},
		{"no privilege escalation", `import ctypes, os, subprocess
bad = []
for f in (lambda: os.setuid(0), lambda: os.setgid(0), lambda: os.chown("/home/student", 0, 0)):
    try:
        f()
        bad.append("became root")
    except OSError:
        pass
status = open("/proc/self/status").read()
# Asked of the kernel itself (PR_GET_NO_NEW_PRIVS): gVisor's /proc does not
# show the field.
if ctypes.CDLL(None).prctl(39, 0, 0, 0, 0) != 1:
    bad.append("no-new-privileges off")
for line in status.splitlines():
    key, _, val = line.partition(":")
    if key in ("CapEff", "CapPrm", "CapBnd") and int(val.strip(), 16) != 0:
        bad.append(line)
if os.getuid() == 0 or os.geteuid() == 0:
    bad.append("uid 0")
for cmd in (["sudo", "-n", "id", "-u"], ["su", "-c", "id -u", "root"]):
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=5, text=True)
        if r.stdout.strip() == "0":
            bad.append(cmd[0])
    except (OSError, subprocess.TimeoutExpired):
        pass
print("RESULT:" + ("UNSAFE %s" % bad if bad else "SAFE"))
`, nil},
		{"fill tmp and shm", `def fill(d):
    i = 0
    try:
        while i < 100:
            with open(f"{d}/fill{i}", "wb") as f:
                for _ in range(8):
                    f.write(b"x" * (1 << 20))
            i += 1
        return False
    except OSError:
        return True
ok = fill("/tmp") and fill("/dev/shm")
print("RESULT:" + ("SAFE" if ok else "UNSAFE a tmpfs has no size limit"))
`, nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			probe(t, m, by, fmt.Sprintf("prober%d", i), map[string]string{"probe.py": tt.code}, tt.mounts)
		})
	}
	t.Run("fsize", func(t *testing.T) {
		t.Parallel()
		dir := probe(t, m, by, "bigwriter", map[string]string{"probe.py": `try:
    with open("big.bin", "wb") as f:
        for _ in range(100):
            f.write(b"\0" * (1 << 20))
    print("RESULT:UNSAFE wrote 100 MB")
except OSError as e:
    print("RESULT:" + "SAFE", e)
`}, nil)
		fi, err := os.Stat(filepath.Join(dir, "big.bin"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 10<<20 {
			t.Errorf("big.bin is %d bytes, over the 10 MB fsize limit", fi.Size())
		}
	})
	t.Run("tmp is fresh per session", func(t *testing.T) {
		t.Parallel()
		dir := sandboxtest.Workspace(t, nil)
		s, c := start(t, m, homeSpec(t, "tmpuser", dir, ""))
		c.waitFor(t, ">>> ", waitShort)
		c.roundTrip(t, "open('/tmp/leftover', 'w').write('secret'); print('wrote', 'it')", "wrote it")
		s.Stop(sandbox.ReasonStopped)
		waitExit(t, s, waitShort)
		_, c2 := start(t, m, homeSpec(t, "tmpuser", dir, ""))
		c2.waitFor(t, ">>> ", waitShort)
		c2.roundTrip(t, "import os; print('leftover', os.path.exists('/tmp/leftover'))", "leftover False")
	})
	t.Run("kill pid 1", func(t *testing.T) {
		t.Parallel()
		dir := sandboxtest.Workspace(t, nil)
		s, c := start(t, m, homeSpec(t, "pid1killer", dir, ""))
		c.waitFor(t, ">>> ", waitShort)
		c.send(t, "import os, signal")
		c.send(t, "try:\n    os.kill(1, signal.SIGKILL)\nexcept OSError as e:\n    print('refused', e)\n")
		if sandboxtest.Runtime() == "runsc" {
			// gVisor lets a process kill its own sandbox's init: the
			// student ends their own session, nothing else.
			if ex := waitExit(t, s, waitShort); ex.Reason == sandbox.ReasonMemory || ex.Reason == sandbox.ReasonTimeout {
				t.Errorf("exit = %+v", ex)
			}
			assertGone(t, m, s.ContainerName())
			by.alive(t)
			return
		}
		c.roundTrip(t, "print('survived', 'kill')", "survived kill")
		by.alive(t)
		c.send(t, "os.kill(1, signal.SIGTERM)")
		ex := waitExit(t, s, waitShort)
		if ex.Reason == sandbox.ReasonMemory || ex.Reason == sandbox.ReasonTimeout {
			t.Errorf("exit = %+v", ex)
		}
		assertGone(t, m, s.ContainerName())
		by.alive(t)
	})
}

var _ = time.Second

// TestAttackMountRedirected: a folder approved for mounting is swapped, by
// the time the engine would resolve it, for a link to the server's data
// folder (or for another folder). No container is created with it: not a
// session, not a spare.
func TestAttackMountRedirected(t *testing.T) {
	t.Parallel()
	m := sandboxtest.NewManager(t, sandbox.Options{SpareEnabled: true})
	data := sandboxtest.Workspace(t, map[string]string{"secret.key": "the server's secret"})
	tests := []struct {
		name string
		swap func(t *testing.T, src string)
	}{
		{"replaced by a link to the data folder", func(t *testing.T, src string) {
			if err := os.Rename(src, src+"-away"); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(data, src); err != nil {
				t.Fatal(err)
			}
		}},
		{"replaced by another folder", func(t *testing.T, src string) {
			if err := os.Rename(src, src+"-away"); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(src, 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{"a parent replaced by a link", func(t *testing.T, src string) {
			parent := filepath.Dir(src)
			if err := os.Rename(parent, parent+"-away"); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(parent+"-away", parent); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			user := fmt.Sprintf("mallory%d", i)
			home := sandboxtest.Bind(t, sandboxtest.Workspace(t, map[string]string{
				"probe.py": "import os\nprint('LISTING', os.listdir('/submissions/hw1'))\n",
			}), "/home/student", false)
			sub := filepath.Join(sandboxtest.Workspace(t, nil), "hw1")
			if err := os.Mkdir(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			approved := sandboxtest.Bind(t, sub, "/submissions/hw1", false)
			tt.swap(t, sub)
			spec := sandbox.Spec{User: user, Role: "student", Key: "tab", File: "/home/student/probe.py",
				Mounts: []sandbox.Mount{home, approved}}
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			if err := m.Prepare(ctx, spec); err == nil {
				t.Error("a spare was prepared with a redirected mount")
			}
			s, err := m.Start(ctx, spec, nil)
			if err == nil {
				c := attach(t, s)
				c.waitFor(t, "LISTING", waitShort)
				s.Stop(sandbox.ReasonStopped)
				t.Fatalf("a session started with a redirected mount; it saw:\n%s", c.String())
			}
			if !errors.Is(err, sandbox.ErrMountChanged) {
				t.Errorf("Start error = %v, want ErrMountChanged", err)
			}
			infos, err := m.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, in := range infos {
				if in.User == user {
					t.Errorf("a container of %s exists: %+v", user, in)
				}
			}
		})
	}
}
