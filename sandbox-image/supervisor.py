"""PythonIDE sandbox supervisor: keeps one sandbox container reusable for
the same student's next Run, without the Docker engine.

It owns the container's TTY and runs each REPL (runner.py) as a child on a
pseudo-TTY of its own. Between two Runs it resets the container in place:
every other process is killed, /tmp and /dev/shm are emptied, a new
pseudo-TTY is made, and a fresh interpreter is started in advance, waiting
for what to run. The server checks the result from outside (the cgroup's
process count) before it reuses the container, and discards it on any doubt.

It must never run student code itself, never let a student's program forge
what the server sends (every byte from the server comes in a frame the
student cannot write: the child reads what to run from a pipe, not from the
TTY), and never be traced or read by the student's processes (it is not
dumpable). Stdlib only.

The server's frames on stdin (the container's TTY, in raw mode), each
"<kind><decimal length>:<payload>"; no NUL byte ever appears, so Docker's
detach sequence (which starts with NUL) cannot occur:
    C  the control line for the waiting runner (JSON, see runner.py)
    I  bytes the student typed, for the REPL's pseudo-TTY
    W  the window size, "cols rows"
    R  reset now: end the REPL and everything it started
Frames to the server on stdout, the same shape:
    O  the REPL's output, as its pseudo-TTY gave it
    S  a status (JSON): {"ready": true} a fresh runner waits;
       {"running": true} it got its control line;
       {"exit": code} or {"signal": n} the REPL ended;
       {"reset_failed": "why"} the container must not be reused
"""

import ctypes
import errno
import fcntl
import json
import os
import pty
import select
import shutil
import signal
import struct
import sys
import termios
import time
import tty

RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runner.py")
SCRATCH = ("/tmp", "/dev/shm")
MAX_FRAME = 1 << 20
# How long the processes of a REPL may take to die after SIGKILL.
KILL_WAIT = 2.0
PR_SET_DUMPABLE = 4


def in_sandbox():
    """The container's own process namespace, as the server starts it: a
    non-root user, PYIDE_SANDBOX=1, and an init that is not this process."""
    return os.environ.get("PYIDE_SANDBOX") == "1" and os.getuid() != 0 and os.getpid() != 1


class Frames:
    """Decodes the server's frames from a byte stream."""

    def __init__(self):
        self.buf = bytearray()

    def feed(self, data):
        self.buf += data
        out = []
        while self.buf:
            kind = chr(self.buf[0])
            colon = self.buf.find(b":", 1, 12)
            if colon < 0:
                if len(self.buf) > 12:
                    raise ValueError("malformed frame header")
                break
            n = int(self.buf[1:colon])
            if n < 0 or n > MAX_FRAME:
                raise ValueError("frame too large")
            if len(self.buf) < colon + 1 + n:
                break
            out.append((kind, bytes(self.buf[colon + 1 : colon + 1 + n])))
            del self.buf[: colon + 1 + n]
        return out


def frame(kind, payload):
    return kind.encode() + str(len(payload)).encode() + b":" + payload


def write_all(fd, data):
    while data:
        try:
            n = os.write(fd, data)
        except InterruptedError:
            continue
        data = data[n:]


class Supervisor:
    def __init__(self, env):
        self.env = env
        self.child = None  # pid of the runner
        self.master = None  # its pseudo-TTY
        self.control = None  # the write end of its control pipe
        self.notify = None  # the read end of its "I wait" pipe
        self.running = False
        self.ended = None  # the wait status of a REPL not yet reported
        self.winsize = (24, 80)

    def status(self, **kw):
        write_all(1, frame("S", json.dumps(kw).encode()))

    # -- the runner ---------------------------------------------------------

    def spawn(self):
        """Starts a fresh runner on a new pseudo-TTY, waiting for its control
        line on a pipe only this process can write."""
        master, slave = pty.openpty()
        self._set_winsize(master)
        r, w = os.pipe()
        nr, nw = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(master)
                os.close(w)
                os.close(nr)
                os.setsid()
                fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
                for fd in (0, 1, 2):
                    os.dup2(slave, fd)
                if slave > 2:
                    os.close(slave)
                os.dup2(r, 3)
                os.dup2(nw, 4)
                os.closerange(5, 1 << 16)
                os.chdir(self.env.get("HOME", "/"))
                os.execve(sys.executable, [sys.executable, RUNNER, "--control-fd", "3"], self.env)
            finally:
                os._exit(127)
        os.close(slave)
        os.close(r)
        os.close(nw)
        self.child, self.master, self.control, self.notify = pid, master, w, nr
        self.running = False
        os.set_blocking(master, False)

    def _set_winsize(self, fd):
        rows, cols = self.winsize
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def start(self, control):
        if self.control is None or self.running:
            self.status(error="no runner is waiting")
            return
        write_all(self.control, control.rstrip(b"\n") + b"\n")
        os.close(self.control)
        self.control = None
        self.running = True
        self.status(running=True)

    # -- reset --------------------------------------------------------------

    def reset(self):
        """Ends every process but init and this one, empties the scratch
        folders, and starts a fresh runner. Says ready, or why not."""
        if not in_sandbox():
            # kill(-1) anywhere else would end every process of the user.
            self._finish()
            self.status(reset_failed="not in a sandbox container")
            return False
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.master is not None:
            os.close(self.master)
            self.master = None
        if self.control is not None:
            os.close(self.control)
            self.control = None
        self._close_notify()
        deadline = time.monotonic() + KILL_WAIT
        while True:
            self._reap()
            others = [p for p in _pids() if p not in (1, os.getpid())]
            if not others:
                break
            if time.monotonic() > deadline:
                self._finish()
                self.status(reset_failed=f"{len(others)} processes did not end")
                return False
            time.sleep(0.005)
        self.child = None
        self._finish()
        for d in SCRATCH:
            if not _empty(d):
                self.status(reset_failed=f"{d} could not be emptied")
                return False
        self.spawn()  # says ready when the runner does
        return True

    def _close_notify(self):
        if self.notify is not None:
            os.close(self.notify)
            self.notify = None

    def _notified(self):
        """The runner says it waits for its line: the container is ready."""
        try:
            got = os.read(self.notify, 16)
        except OSError:
            got = b""
        self._close_notify()
        if got:
            self.status(ready=True)

    def _reap(self):
        while True:
            try:
                pid, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.child:
                self.child = None
                if self.running:  # a waiting runner killed by a reset ran nothing
                    self.ended, self.running = st, False

    def _finish(self):
        """Reports how the REPL ended, after its last output."""
        st, self.ended = self.ended, None
        if st is None:
            return
        if os.WIFSIGNALED(st):
            self.status(signal=os.WTERMSIG(st))
        else:
            self.status(exit=os.WEXITSTATUS(st))

    # -- the loop -------------------------------------------------------------

    def serve(self):
        frames = Frames()
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.spawn()
        while True:
            fds = [0, wake_r] + [fd for fd in (self.master, self.notify) if fd is not None]
            try:
                readable, _, _ = select.select(fds, [], [])
            except InterruptedError:
                continue
            if wake_r in readable:
                try:
                    os.read(wake_r, 512)
                except BlockingIOError:
                    pass
            if self.notify is not None and self.notify in readable:
                self._notified()
            if self.master is not None and self.master in readable:
                self._pump()
            if 0 in readable:
                data = os.read(0, 65536)
                if not data:
                    return  # the server went away
                for kind, payload in frames.feed(data):
                    self._handle(kind, payload)
            if self.child is not None or self.running:
                was, waited = self.child, self.notify is not None
                self._reap()
                if was is not None and self.child is None:
                    if waited:
                        # A runner that dies before it is even ready will
                        # not do better next time: give the container up.
                        self.status(reset_failed="the runner did not start")
                        self._close_notify()
                        continue
                    # The REPL ended by itself: what it printed last, then
                    # how it ended, then a fresh container for the next Run.
                    if self.master is not None:
                        self._pump(drain=True)
                    self._finish()
                    self.reset()

    def _pump(self, drain=False):
        while True:
            try:
                data = os.read(self.master, 65536)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno == errno.EIO:  # the runner closed its side
                    return
                raise
            if not data:
                return
            # Blocking write: a server that stops reading slows the REPL
            # through its pseudo-TTY, nothing piles up here.
            write_all(1, frame("O", data))
            if not drain:
                return

    def _handle(self, kind, payload):
        if kind == "C":
            self.start(payload)
        elif kind == "I":
            if self.running and self.master is not None:
                os.set_blocking(self.master, True)
                try:
                    write_all(self.master, payload)
                finally:
                    os.set_blocking(self.master, False)
        elif kind == "W":
            try:
                cols, rows = (int(x) for x in payload.split())
            except ValueError:
                return
            if 0 < cols <= 1000 and 0 < rows <= 1000:
                self.winsize = (rows, cols)
                if self.master is not None:
                    self._set_winsize(self.master)
        elif kind == "R":
            self.reset()


def _pids():
    return [int(n) for n in os.listdir("/proc") if n.isdigit()]


def _empty(d):
    """Removes everything in d; True when d is empty (or absent) after."""
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    for n in names:
        p = os.path.join(d, n)
        try:
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            else:
                os.unlink(p)
        except OSError:
            pass
    try:
        return not os.listdir(d)
    except OSError:
        return False


def main():
    # Not dumpable: a student's process of the same uid may not trace this
    # one or read its memory.
    try:
        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.isatty(0):
        tty.setraw(0)
    env = dict(os.environ)
    env.pop("PYTHONINSPECT", None)
    Supervisor(env).serve()


if __name__ == "__main__":
    main()
