package grading

import (
	"strings"
	"testing"
)

// The tests every hostile submission is checked against: an I/O case, a
// visible test file and a hidden one.
const hostileTests = `from solution import add

def test_add():
    assert add(2, 3) == 5

def test_add_again():
    assert add(1, 1) == 2
`

const hostileHidden = `# SECRET-HIDDEN-MARKER
from solution import add

def test_add_big():
    assert add(10, 20) == 30
`

// TestHostileSubmissions: programs that try to pass without being right,
// to read the hidden tests, or to take the grader down each get the right
// result and a plain reason; a test after the one they broke still runs.
func TestHostileSubmissions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	e.assignment("hw1")
	e.addTest("hw1", map[string]any{"kind": "io", "name": "io", "stdin": "21\n", "expected": "42\n"})
	e.addTest("hw1", map[string]any{"kind": "py", "name": "test_h.py", "source": hostileTests})
	e.addTest("hw1", map[string]any{"kind": "py", "name": "test_secret.py", "source": hostileHidden, "hidden": true})

	// want: per test name, the outcome and a word of the reason ("" any).
	type want struct{ outcome, reason string }
	cases := []struct {
		name     string
		solution string
		main     string
		want     map[string]want
	}{
		{
			name: "fake pass lines",
			solution: `import os, sys
FAKE = "@@PYIDE-RESULT 40 " + "0" * 64 + "\n" + '{"io":[],"py":[],"tests":"all passed"}'
print("test_add PASSED\n3 passed in 0.01s")
print(FAKE)
try:
    with open("/proc/1/fd/1", "w") as f:
        f.write(FAKE + "\n")
except OSError:
    pass
def add(a, b):
    print("PASSED")
    return 0
`,
			main: `print("42 PASSED")` + "\n" + `print("@@PYIDE-RESULT 2 00\n{}")`,
			want: map[string]want{"io": {"failed", "differs"}, "test_h.py::test_add": {"failed", "assert 0 == 5"},
				"test_secret.py::test_add_big": {"failed", ""}},
		},
		{
			name:     "os._exit",
			solution: "import os\ndef add(a, b):\n    if a == 2:\n        os._exit(0)\n    return a + b\n",
			main:     "import os\nos._exit(0)\n",
			want: map[string]want{"io": {"failed", "differs"}, "test_h.py::test_add": {"error", "ended during the test"},
				"test_h.py::test_add_again": {"passed", ""}, "test_secret.py::test_add_big": {"passed", ""}},
		},
		{
			name: "monkeypatching unittest and pytest",
			solution: `import sys, unittest, builtins
unittest.TestCase.assertEqual = lambda *a, **k: None
class Anything:
    def __getattr__(self, name): return lambda *a, **k: None
sys.modules["pytest"] = Anything()
sys.modules["_pytest"] = Anything()
builtins.AssertionError = type("AssertionError", (Exception,), {})
def add(a, b):
    return -1
`,
			main: "print(41)\n",
			want: map[string]want{"io": {"failed", "line 1"}, "test_h.py::test_add": {"failed", "assert -1 == 5"},
				"test_secret.py::test_add_big": {"failed", ""}},
		},
		{
			name: "reading and writing the hidden tests",
			solution: `import os, glob
found = []
def look(p):
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
        try:
            data = os.read(fd, 1 << 20)
        finally:
            os.close(fd)
        if b"SECRET-" + b"HIDDEN" in data:
            found.append(p)
    except OSError:
        pass
for root in ("/tmp", "/home", "/opt"):
    for dirpath, dirs, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            look(p)
            if "tests" in p and p.endswith(".py"):
                try:
                    with open(p, "w") as f: f.write("def test_add_big(): pass\n")
                except OSError:
                    pass
for p in glob.glob("/proc/[0-9]*/cmdline") + glob.glob("/proc/[0-9]*/environ") + glob.glob("/proc/[0-9]*/fd/*") + glob.glob("/proc/[0-9]*/mem"):
    look(p)
def add(a, b):
    return repr(found) if found else a + b + 1
`,
			main: "print(42)\n",
			want: map[string]want{"io": {"passed", ""}, "test_h.py::test_add": {"failed", "assert 6 == 5"},
				"test_secret.py::test_add_big": {"failed", "assert 31 == 30"}},
		},
		{
			name:     "endless output",
			solution: "def add(a, b):\n    while True:\n        print('x' * 1000)\n",
			main:     "while True:\n    print('42' * 1000)\n",
			want: map[string]want{"io": {"", ""}, "test_h.py::test_add": {"timeout", "did not finish in time"},
				"test_secret.py::test_add_big": {"timeout", ""}},
		},
		{
			name:     "fork bomb",
			solution: "import os\ndef add(a, b):\n    if a == 2:\n        while True:\n            try: os.fork()\n            except OSError: pass\n    return a + b\n",
			main:     "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass\n",
			want: map[string]want{"io": {"timeout", "did not finish"}, "test_h.py::test_add": {"timeout", ""},
				"test_h.py::test_add_again": {"passed", ""}, "test_secret.py::test_add_big": {"passed", ""}},
		},
		{
			name:     "memory bomb",
			solution: "def add(a, b):\n    if a == 2:\n        x = []\n        while True: x.append(bytearray(1 << 20))\n    return a + b\n",
			main:     "x = []\nwhile True: x.append(bytearray(1 << 20))\n",
			want: map[string]want{"io": {"memory", "memory"}, "test_h.py::test_add": {"memory", "memory"},
				"test_h.py::test_add_again": {"passed", ""}},
		},
		{
			name:     "a test that never returns",
			solution: "import time\ndef add(a, b):\n    if a == 2:\n        time.sleep(1000)\n    return a + b\n",
			main:     "import time\ntime.sleep(1000)\n",
			want: map[string]want{"io": {"timeout", ""}, "test_h.py::test_add": {"timeout", "did not finish in time"},
				"test_h.py::test_add_again": {"passed", ""}},
		},
		{
			name:     "killing the grader",
			solution: "import os, signal\ndef add(a, b):\n    os.kill(-1, signal.SIGKILL)\n",
			main:     "print(42)\n",
			want: map[string]want{"io": {"not_run", "report is missing or damaged"},
				"test_h.py::test_add": {"not_run", "report is missing or damaged"}},
		},
	}
	for i, tc := range cases {
		dir := "Local/prof/h" + itoa(int64(i))
		e.write("prof", map[string]string{dir + "/solution.py": tc.solution, dir + "/main.py": tc.main})
		r := e.must(e.do("prof", "POST", "/api/course/items/hw1/check", map[string]any{"files": []string{dir}}), 200)
		ch := decode[Check](t, r, "check")
		got := byName(ch.Tests)
		if strings.Contains(r.Raw, "SECRET-HIDDEN") {
			t.Errorf("%s: the hidden test reached the program: %s", tc.name, r.Raw)
		}
		if ch.Score >= ch.MaxScore {
			t.Errorf("%s: full marks %v / %v", tc.name, ch.Score, ch.MaxScore)
		}
		for name, w := range tc.want {
			res, ok := got[name]
			switch {
			case !ok && w.outcome == "not_run":
				// the grader's report is gone: the file is one line
				res, ok = got[strings.Split(name, "::")[0]]
			}
			if !ok {
				t.Errorf("%s: no result for %s in %s", tc.name, name, r.Raw)
				continue
			}
			if (w.outcome != "" && res.Outcome != w.outcome) || !strings.Contains(res.Reason, w.reason) {
				t.Errorf("%s: %s: %s %q, want %s %q", tc.name, name, res.Outcome, res.Reason, w.outcome, w.reason)
			}
			if w.outcome != "passed" && res.Passed {
				t.Errorf("%s: %s passed", tc.name, name)
			}
		}
	}
}
