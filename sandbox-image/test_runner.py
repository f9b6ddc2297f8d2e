"""Tests of runner.py on the host's own python3, through a real pseudo-TTY
so that CPython's REPL engages exactly as it does in the container.

Run: python3 -m unittest discover -s sandbox-image -p 'test_*.py' -v
Stdlib only. Every wait has a deadline; nothing can hang.
"""

import json
import os
import pty
import re
import select
import shutil
import signal
import sys
import tempfile
import termios
import time
import unittest

RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runner.py")
# Generous: CI runs everything at once on two cores.
WAIT = 20.0
PROMPT = rb">>> "


class Session:
    """One runner process on its own pseudo-TTY (as its controlling
    terminal, so \\x03 sends SIGINT like a real keyboard)."""

    def __init__(self, args, cwd, env_extra=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYIDE_", "PYTHON"))}
        env.update(TERM="dumb", HOME=cwd, PYTHONDONTWRITEBYTECODE="1")
        env.update(env_extra or {})
        pid, fd = pty.fork()
        if pid == 0:  # child
            try:
                os.chdir(cwd)
                os.execve(sys.executable, [sys.executable, RUNNER, *args], env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.out = b""
        self.pos = 0
        self.status = None

    def _read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the child closed its side
            data = b""
        self.out += data
        return bool(data)

    def expect(self, pattern, timeout=WAIT):
        """Waits for pattern after the previous match; returns the match."""
        rx = re.compile(pattern if isinstance(pattern, bytes) else re.escape(pattern.encode()))
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.out, self.pos)
            if m:
                self.pos = m.end()
                return m
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(min(left, 0.5)) and self._exited():
                raise AssertionError(f"did not see {rx.pattern!r}; output so far:\n{self.text()}")

    def send(self, data):
        os.write(self.fd, data.encode() if isinstance(data, str) else data)

    def wait_echo_off(self, timeout=WAIT):
        """Polls the pty's termios (shared by both ends) until the runner has
        turned echo off, as it must before the control line is written."""
        deadline = time.monotonic() + timeout
        while termios.tcgetattr(self.fd)[3] & termios.ECHO:
            if time.monotonic() > deadline or self._exited():
                raise AssertionError("runner never turned echo off")
            time.sleep(0.01)

    def wait_state(self, states, timeout=WAIT):
        """Polls the runner's scheduler state (/proc/PID/stat): "S" once it
        is blocked reading the terminal, "R" while it computes. CPython's
        readline loop only notices a SIGINT that arrives once it waits in
        select(), so a Ctrl-C sent the instant the prompt shows can be lost;
        a person is never that fast, a test on a loaded machine can be."""
        deadline = time.monotonic() + timeout
        while True:
            with open(f"/proc/{self.pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            if state in states:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"runner stayed in state {state}, not {states}")
            time.sleep(0.01)

    def _exited(self):
        if self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = status
        return self.status is not None

    def wait(self, timeout=WAIT):
        """Waits for exit, draining output; returns the exit code (or
        -signal)."""
        deadline = time.monotonic() + timeout
        while not self._exited():
            if time.monotonic() > deadline:
                raise AssertionError(f"runner did not exit; output:\n{self.text()}")
            self._read(0.05)
        while self._read(0.05) and len(self.out) < 1 << 20:
            pass
        return os.waitstatus_to_exitcode(self.status)

    def text(self):
        return self.out.decode(errors="replace").replace("\r\n", "\n")

    def close(self):
        if not self._exited():
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


class RunnerTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pyide-runner-test-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def script(self, source, name="prog.py"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(source)
        return path

    def start(self, *args, env=None):
        s = Session(list(args), self.dir, env)
        self.addCleanup(s.close)
        return s

    def start_control(self, msg, env=None):
        s = self.start("--control", env=env)
        s.wait_echo_off()
        line = msg if isinstance(msg, str) else json.dumps(msg)
        s.send(line + "\n")
        return s, line

    def assertNoRunnerTrace(self, s):
        self.assertNotIn("runner.py", s.text())

    # --- script, then REPL -------------------------------------------------

    def test_variables_persist_into_repl(self):
        s = self.start(self.script("import math\nx = 41\ndef twice(n):\n    return 2 * n\n"))
        s.expect(PROMPT)
        s.send("x + 1\n")
        s.expect(rb"\n42\r?\n")
        s.send("twice(math.floor(10.5))\n")
        s.expect(rb"\n20\r?\n")
        s.expect(PROMPT)
        s.send("\x04")  # EOF ends the REPL
        self.assertEqual(s.wait(), 0)

    def test_main_namespace(self):
        path = self.script(
            "import os, sys\n"
            "if __name__ == '__main__':\n"
            "    print('NAME', __name__)\n"
            "print('FILE', __file__)\n"
            "print('ARGV', sys.argv)\n"
            "print('PATH0', sys.path[0])\n"
            "print('CWD', os.getcwd())\n"
            "print('GLOBALS', sorted(k for k in globals() if not k.startswith('__')))\n"
        )
        s = self.start(path)
        s.expect(PROMPT)
        out = s.text()
        self.assertIn("NAME __main__", out)
        self.assertIn(f"FILE {path}", out)
        self.assertIn(f"ARGV [{path!r}]", out)
        self.assertIn(f"PATH0 {os.path.realpath(self.dir)}", out)
        self.assertIn(f"CWD {os.path.realpath(self.dir)}", out)
        self.assertIn("GLOBALS ['os', 'sys']", out)
        # In the REPL too: no runner names, and PYTHONINSPECT not inherited
        # by child processes.
        s.send("[k for k in dir() if not k.startswith('__')], os.environ.get('PYTHONINSPECT')\n")
        s.expect(rb"\(\['os', 'sys'\], None\)")

    def test_uncaught_exception_exits_1_without_repl(self):
        path = self.script("x = 1\ndef f():\n    return 1 / 0\n\nf()\n")
        s = self.start(path)
        self.assertEqual(s.wait(), 1)
        out = s.text()
        self.assertIn("Traceback (most recent call last):", out)
        self.assertIn(f'File "{path}", line 5, in <module>', out)
        self.assertIn(f'File "{path}", line 3, in f', out)
        self.assertIn("ZeroDivisionError: division by zero", out)
        self.assertNotIn(">>>", out)
        self.assertNoRunnerTrace(s)

    def test_chained_exception_has_no_runner_frames(self):
        path = self.script("try:\n    {}['k']\nexcept KeyError as e:\n    raise ValueError('v') from e\n")
        s = self.start(path)
        self.assertEqual(s.wait(), 1)
        self.assertIn("KeyError: 'k'", s.text())
        self.assertIn("ValueError: v", s.text())
        self.assertNoRunnerTrace(s)

    def test_repl_after_error(self):
        path = self.script("y = 7\nraise ValueError('boom')\n")
        for name, start in [
            ("env", lambda: self.start(path, env={"PYIDE_REPL_AFTER_ERROR": "1"})),
            ("control", lambda: self.start_control({"file": path, "repl_after_error": True})[0]),
        ]:
            with self.subTest(name):
                s = start()
                s.expect("ValueError: boom")
                s.expect(PROMPT)
                s.send("y * 6, __import__('sys').last_value\n")
                s.expect(rb"\(42, ValueError\('boom'\)\)")
                self.assertNoRunnerTrace(s)

    def test_syntax_error(self):
        path = self.script("print('never')\nx = (1,\n     2\n")
        s = self.start(path)
        self.assertEqual(s.wait(), 1)
        out = s.text()
        self.assertIn(f'File "{path}", line 2', out)
        self.assertIn("^", out)
        self.assertIn("SyntaxError: '(' was never closed", out)
        self.assertNotIn("Traceback", out)
        self.assertNotIn("never\n", out)
        self.assertNotIn(">>>", out)
        self.assertNoRunnerTrace(s)

    def test_system_exit(self):
        for name, source, code, shown in [
            ("int", "raise SystemExit(3)\n", 3, None),
            ("none", "import sys\nsys.exit()\n", 0, None),
            ("zero", "exit(0)\n", 0, None),
            ("string", "import sys\nsys.exit('bye now')\n", 1, "bye now"),
        ]:
            with self.subTest(name):
                s = self.start(self.script(source))
                self.assertEqual(s.wait(), code)
                self.assertNotIn(">>>", s.text())
                self.assertNotIn("Traceback", s.text())
                if shown:
                    self.assertIn(shown, s.text())

    def test_missing_file(self):
        s = self.start(os.path.join(self.dir, "nope.py"))
        self.assertEqual(s.wait(), 2)
        self.assertIn("No such file or directory", s.text())

    def test_input_round_trip(self):
        s = self.start(self.script("name = input('name? ')\nprint('hello', name)\n"))
        s.expect("name? ")
        s.send("Ada\n")
        s.expect("hello Ada")
        s.expect(PROMPT)
        s.send("input('again? ')\n")
        s.expect("again? ")
        s.send("Grace\n")
        s.expect("'Grace'")
        s.send("name\n")
        s.expect("'Ada'")

    def test_ctrl_c_at_repl(self):
        s = self.start(self.script("x = 'kept'\n"))
        s.expect(PROMPT)
        s.wait_state("S")
        s.send("\x03")
        s.expect("KeyboardInterrupt")
        s.expect(PROMPT)
        s.send("while True: pass\n\n")  # the blank line ends the statement
        # Interrupt the command once it is running, not while it is read.
        s.expect(rb"\.\.\. \r?\n")
        s.wait_state("R")
        s.send("\x03")
        s.expect("KeyboardInterrupt")
        s.expect(PROMPT)
        s.send("x\n")
        s.expect("'kept'")
        self.assertNoRunnerTrace(s)

    def test_ctrl_c_during_script(self):
        s = self.start(self.script("print('spinning', flush=True)\nwhile True:\n    pass\n"))
        s.expect("spinning")
        s.wait_state("R")
        s.send("\x03")
        self.assertEqual(s.wait(), 130)
        self.assertIn("KeyboardInterrupt", s.text())
        self.assertNotIn("Traceback", s.text())
        self.assertNotIn(">>>", s.text())

    # --- empty REPL ---------------------------------------------------------

    def test_empty_repl(self):
        s = self.start()
        v = sys.version_info
        s.expect(f"Python {v.major}.{v.minor}.{v.micro} \u2014 PythonIDE REPL")
        s.expect(PROMPT)
        s.send("__name__, sorted(k for k in globals() if not k.startswith('__'))\n")
        s.expect("('__main__', [])")
        s.send("import sys; sys.path[0], sys.argv\n")
        s.expect("('', [''])")

    # --- control mode -------------------------------------------------------

    def test_control_runs_file_with_echo_off(self):
        path = self.script(
            "import sys, termios\n"
            "x = 41\n"
            "print('ran', __name__, 'echo', bool(termios.tcgetattr(0)[3] & termios.ECHO))\n"
        )
        s, line = self.start_control({"file": path, "repl_after_error": False, "cpu_seconds": 30})
        s.expect("ran __main__ echo True")  # echo is back on for the student
        s.expect(PROMPT)
        s.send("x + 1\n")
        s.expect(rb"\n42\r?\n")
        self.assertNotIn(line, s.text())
        self.assertNotIn('"file"', s.text())

    def test_control_empty_repl(self):
        s, line = self.start_control({"file": None})
        s.expect("PythonIDE REPL")
        s.expect(PROMPT)
        s.send("6 * 7\n")
        s.expect("42")
        self.assertNotIn('"file"', s.text())

    def test_control_prints_nothing_before_the_line(self):
        s = self.start("--control")
        s.wait_echo_off()
        self.assertFalse(s._read(0.3) and s.out, f"printed before the control line: {s.out!r}")

    def test_control_leaves_following_input_alone(self):
        # The line and the first input arrive together: the runner must not
        # swallow what follows its line.
        path = self.script("print('got', input())\n")
        s = self.start("--control")
        s.wait_echo_off()
        s.send(json.dumps({"file": path}) + "\nhello\n")
        s.expect("got hello")

    def test_control_malformed(self):
        path = self.script("print('must not run')\n")
        for name, line in [
            ("not json", "run please"),
            ("array", "[1, 2]"),
            ("file not a string", json.dumps({"file": 7})),
            ("empty file", json.dumps({"file": ""})),
            ("repl flag not bool", json.dumps({"file": path, "repl_after_error": "yes"})),
            ("negative cpu", json.dumps({"file": path, "cpu_seconds": -1})),
            ("cpu not a number", json.dumps({"file": path, "cpu_seconds": "30"})),
        ]:
            with self.subTest(name):
                s, _ = self.start_control(line)
                self.assertEqual(s.wait(), 2)
                self.assertIn("bad control line", s.text())
                self.assertNotIn("must not run", s.text())
        with self.subTest("eof before newline"):
            s = self.start("--control")
            s.wait_echo_off()
            s.send(json.dumps({"file": path}) + "\x04")  # EOF on the TTY
            s.send("\x04")
            self.assertEqual(s.wait(), 2)

    # --- CPU time -----------------------------------------------------------

    def test_cpu_limit_in_script(self):
        for name, source in [
            ("busy loop", "while True:\n    pass\n"),
            ("swallowed", "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass\n"),
        ]:
            with self.subTest(name):
                s = self.start(self.script(source), env={"PYIDE_CPU_SECONDS": "1"})
                code = s.wait()
                if name == "busy loop":
                    self.assertEqual(code, 124)
                    self.assertIn("CPU time limit exceeded (1 s per command)", s.text())
                    self.assertNoRunnerTrace(s)
                else:
                    # Whoever catches the exception forever meets the
                    # RLIMIT_CPU backstop.
                    self.assertEqual(code, -signal.SIGXCPU)
                self.assertNotIn(">>>", s.text())

    def test_cpu_limit_in_repl_is_per_command(self):
        s = self.start(self.script("x = 5\n"), env={"PYIDE_CPU_SECONDS": "1"})
        s.expect(PROMPT)
        for _ in range(2):
            s.send("while True: pass\n\n")
            s.expect("CPU time limit exceeded (1 s per command)")
            s.expect(PROMPT)
        s.send("x\n")
        s.expect(rb"\n5\r?\n")
        # Waiting is free: sleeping longer than the budget is no timeout,
        # and neither are several commands that add up to more than it.
        s.send("import time; time.sleep(1.5); 'slept'\n")
        s.expect("'slept'")
        for _ in range(3):
            s.send("t = time.process_time()\n")
            s.send("while time.process_time() - t < 0.6: pass\n\n")
            s.send("'ok'\n")
            s.expect("'ok'")
        self.assertNotIn("Traceback (most recent call last):\n  File \"<stdin>\", line 1, in <module>\n  File", s.text())
        self.assertNoRunnerTrace(s)

    def test_cpu_budget_from_control_line(self):
        path = self.script("while True:\n    pass\n")
        s, _ = self.start_control({"file": path, "cpu_seconds": 0.5})
        self.assertEqual(s.wait(), 124)
        self.assertIn("CPU time limit exceeded (0.5 s per command)", s.text())

    def test_waiting_at_input_is_not_cpu_time(self):
        s = self.start(self.script("import time\ntime.sleep(1.5)\nprint('answer', input('? '))\n"), env={"PYIDE_CPU_SECONDS": "1"})
        s.expect("? ")
        s.send("yes\n")
        s.expect("answer yes")
        s.expect(PROMPT)


if __name__ == "__main__":
    unittest.main()
