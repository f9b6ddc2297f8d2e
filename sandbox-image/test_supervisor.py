"""Tests of supervisor.py on the host's own python3: the frame codec, the
scratch clean-up, and a REPL run through frames on a real pseudo-TTY. The
reset itself (which kills every other process of its namespace) runs only
in a sandbox container: the Go tests exercise it there; here it must refuse.

Run: python3 -m unittest discover -s sandbox-image -p 'test_*.py' -v
"""

import json
import os
import pty
import select
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import supervisor  # noqa: E402

WAIT = 20.0


class FrameTests(unittest.TestCase):
    def test_round_trip_in_pieces(self):
        data = supervisor.frame("I", b"print(1)\r") + supervisor.frame("W", b"80 24") + supervisor.frame("R", b"")
        f = supervisor.Frames()
        got = []
        for i in range(len(data)):  # one byte at a time
            got += f.feed(data[i : i + 1])
        self.assertEqual(got, [("I", b"print(1)\r"), ("W", b"80 24"), ("R", b"")])

    def test_no_nul_in_frames(self):
        # Docker's detach sequence starts with NUL: a frame never has one.
        for payload in (b"", b"x" * 1000, b"\x01\x02\xff"):
            self.assertNotIn(b"\x00", supervisor.frame("O", payload)[:10])

    def test_malformed(self):
        with self.assertRaises(ValueError):
            supervisor.Frames().feed(b"Ixxxxxxxxxxxxxxxxxx")
        with self.assertRaises(ValueError):
            supervisor.Frames().feed(b"I99999999:")


class EmptyTests(unittest.TestCase):
    def test_empties_files_folders_and_links(self):
        with tempfile.TemporaryDirectory() as d:
            os.makedirs(os.path.join(d, "a", "b"))
            with open(os.path.join(d, "a", "b", "f"), "w") as f:
                f.write("x")
            with open(os.path.join(d, "top"), "w") as f:
                f.write("x")
            os.symlink("/etc", os.path.join(d, "link"))
            self.assertTrue(supervisor._empty(d))
            self.assertEqual(os.listdir(d), [])
            self.assertTrue(os.path.isdir("/etc"), "a link was followed")


class Client:
    """The server's side: frames to the supervisor's TTY, frames back."""

    def __init__(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYIDE_", "PYTHON"))}
        self.home = tempfile.mkdtemp()
        env.update(TERM="dumb", HOME=self.home, PYTHONDONTWRITEBYTECODE="1")
        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.chdir(self.home)
                os.execve(sys.executable, [sys.executable, os.path.join(HERE, "supervisor.py")], env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.frames = supervisor.Frames()
        self.out = b""
        self.statuses = []

    def send(self, kind, payload=b""):
        os.write(self.fd, supervisor.frame(kind, payload if isinstance(payload, bytes) else payload.encode()))

    def _read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return
        try:
            data = os.read(self.fd, 65536)
        except OSError:
            data = b""
        if not data:
            raise AssertionError(f"the supervisor ended; output {self.out!r}, statuses {self.statuses}")
        for kind, payload in self.frames.feed(data):
            if kind == "O":
                self.out += payload
            elif kind == "S":
                self.statuses.append(json.loads(payload))
            else:
                raise AssertionError(f"unknown frame {kind!r}")

    def wait(self, check, what):
        deadline = time.monotonic() + WAIT
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what}; output {self.out!r}, statuses {self.statuses}")
            self._read(0.2)

    def close(self):
        try:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        except OSError:
            pass
        os.close(self.fd)


class SupervisorTests(unittest.TestCase):
    def test_a_repl_through_frames(self):
        c = Client()
        self.addCleanup(c.close)
        c.wait(lambda: {"ready": True} in c.statuses, "ready")
        c.send("W", "100 30")
        c.send("C", json.dumps({"file": None}))
        c.wait(lambda: {"running": True} in c.statuses, "running")
        c.wait(lambda: b">>> " in c.out, "prompt")
        c.send("I", "import shutil; print(6 * 7, shutil.get_terminal_size())\r")
        c.wait(lambda: b"42 os.terminal_size(columns=100, lines=30)" in c.out, "the answer in a 100x30 terminal")
        c.send("I", "exit()\r")
        c.wait(lambda: {"exit": 0} in c.statuses, "the exit")
        # Outside a sandbox the reset refuses: kill(-1) would end every
        # process of this user.
        c.wait(lambda: any("reset_failed" in s for s in c.statuses), "a refused reset")

    def test_typed_text_cannot_be_a_control_line(self):
        c = Client()
        self.addCleanup(c.close)
        c.wait(lambda: {"ready": True} in c.statuses, "ready")
        # Typed before any control line: nothing runs, nothing is echoed.
        c.send("I", '{"file": "/etc/passwd"}\n')
        time.sleep(0.5)
        c._read(0.2)
        self.assertNotIn({"running": True}, c.statuses)
        self.assertEqual(c.out, b"")


if __name__ == "__main__":
    unittest.main()
