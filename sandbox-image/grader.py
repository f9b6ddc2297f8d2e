"""PythonIDE grader: runs a professor's tests against a student's files in a
fresh grading container, and reports what happened to the server.

The student's code never shares a process with what judges it:

- I/O cases: the student's program runs as a child with the case's input;
  its output goes to the server as it was printed, and the server compares
  it with the expected output, which never enters the container.
- Python test files (pytest, or plain unittest run by pytest): the tests run
  in this process, the student's modules in a separate worker process
  (grader.py --worker). A test's "import solution" gives it a stand-in whose
  calls, attributes and operators travel to the worker as plain values
  (JSON, never pickle); the worker's objects stay there, named by number.
  Monkeypatching unittest or pytest in the worker changes nothing here;
  os._exit, a crash or a hang in the worker fails the test that called it,
  and the worker is started afresh for the next one.

The hidden tests never touch the disk: pytest collects empty stand-in files
whose modules this process compiles from the sources in memory. This
process is not dumpable, so the student's processes (the same uid) cannot
read its memory or its file descriptors. The result goes to the server in
one frame signed with a key the server sent on stdin: a program that
writes to the container's stdout (through /proc/1/fd/1) can spoil the
frame, and so its own result, but never forge one.

Input (stdin, one JSON document, then EOF):
    {"key": hex, "files": [{"name", "data": base64}],
     "io": [{"id", "main", "stdin", "cpu_seconds"}],
     "py": [{"id", "name", "source", "points"}],
     "test_seconds": n, "output_bytes": n}
Output (stdout): b"@@PYIDE-RESULT <len> <hmac-sha256 hex>\\n" + <len> bytes of
JSON: {"io": [{"id", "stdout", "stdout_bytes", "stderr", "exit", "signal",
"timeout", "memory", "cpu_seconds", "missing"}], "py": [{"id", "error",
"tests": [{"name", "outcome", "message", "points", "seconds"}]}]}

Stdlib and pytest only.
"""

import ast
import base64
import ctypes
import hashlib
import hmac
import io
import tempfile
import json
import linecache
import os
import resource
import select
import signal
import struct
import subprocess
import sys
import threading
import time
import traceback
import types

WORK = "/tmp/work"
TESTS = ""  # made fresh by run_py (tempfile.mkdtemp), never a name a program could prepare
MARK = b"@@PYIDE-RESULT "
MAX_INPUT = 80 << 20
MAX_MESSAGE = 16 << 20
MESSAGE_CHARS = 4000
KILL_WAIT = 2.0
PR_SET_DUMPABLE = 4


def in_sandbox():
    """Only in a grading container may this process kill every other process
    of its user."""
    return os.environ.get("PYIDE_GRADER") == "1" and os.getuid() != 0 and os.getpid() != 1


def not_dumpable():
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def kill_others():
    """Ends every process but init and this one (a fork bomb included)."""
    if not in_sandbox():
        return
    me = os.getpid()
    deadline = time.monotonic() + KILL_WAIT
    while True:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        reap()
        others = [p for p in pids() if p not in (1, me)]
        if not others or time.monotonic() > deadline:
            return
        time.sleep(0.005)


def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def pids():
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            out.append(int(name))
    return out


def child_setup(cpu_seconds):
    """Runs in a child before exec: a CPU limit, and first in line for the
    kernel's OOM killer (so a memory bomb ends the program, not the grader)."""

    def setup():
        if cpu_seconds:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        try:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write("1000")
        except OSError:
            pass

    return setup


def child_env():
    return {
        "HOME": WORK,
        "LANG": "C.UTF-8",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": "/tmp/matplotlib",
    }


class Capped:
    """Reads a pipe to its end on a thread, keeping the first cap bytes (or,
    with tail, the last) and counting the rest."""

    def __init__(self, f, cap, tail=False):
        self.f, self.cap, self.tail = f, cap, tail
        self.buf = bytearray()
        self.total = 0
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        try:
            while True:
                chunk = self.f.read1(65536)
                if not chunk:
                    return
                self.total += len(chunk)
                if self.tail:
                    self.buf += chunk
                    del self.buf[: max(0, len(self.buf) - self.cap)]
                elif len(self.buf) < self.cap:
                    self.buf += chunk[: self.cap - len(self.buf)]
        except (OSError, ValueError):
            return

    def join(self, timeout):
        self.t.join(timeout)
        return bytes(self.buf)


def write_files(files):
    os.makedirs(WORK, exist_ok=True)
    for f in files:
        name = f["name"]
        parts = name.split("/")
        if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
            continue
        path = os.path.join(WORK, *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as out:
            out.write(base64.b64decode(f["data"]))


# ---------------------------------------------------------------- I/O cases


def run_io(case, cap):
    main = case.get("main") or "main.py"
    path = os.path.join(WORK, *main.split("/"))
    res = {"id": case["id"], "stdout": "", "stdout_bytes": 0, "stderr": "", "exit": None, "signal": None,
           "timeout": False, "memory": False, "cpu_seconds": 0.0, "missing": False}
    if not os.path.isfile(path):
        res["missing"] = True
        return res
    cpu = max(1, int(case.get("cpu_seconds") or 2))
    wall = cpu * 2 + 1
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The pipes and the threads that serve them exist before the program
    # does: a program that forks without end takes every free process slot
    # at once, and a thread started after it could not start at all.
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    out = Capped(os.fdopen(out_r, "rb"), cap)
    err = Capped(os.fdopen(err_r, "rb"), 4096, tail=True)
    feeder = threading.Thread(target=feed, args=(os.fdopen(in_w, "wb"), case.get("stdin", "").encode()), daemon=True)
    feeder.start()
    try:
        p = subprocess.Popen([sys.executable, path], cwd=os.path.dirname(path), stdin=in_r,
                             stdout=out_w, stderr=err_w, env=child_env(),
                             start_new_session=True, preexec_fn=child_setup(cpu))
    finally:
        for fd in (in_r, out_w, err_w):
            os.close(fd)
    killed = False
    try:
        p.wait(timeout=wall)
    except subprocess.TimeoutExpired:
        killed = True
        res["timeout"] = True
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
    kill_others()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    res["cpu_seconds"] = round((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), 3)
    o, e = out.join(1.0), err.join(1.0)
    res["stdout"] = o.decode("utf-8", "replace")
    res["stdout_bytes"] = out.total
    res["stderr"] = e.decode("utf-8", "replace")
    if p.returncode < 0:
        sig = -p.returncode
        res["signal"] = sig
        if sig == signal.SIGXCPU:
            res["timeout"] = True
        elif sig == signal.SIGKILL and not killed:
            res["memory"] = True
    else:
        res["exit"] = p.returncode
    return res


def feed(f, data):
    try:
        f.write(data)
        f.close()
    except (OSError, ValueError):
        pass


# ------------------------------------------------------- values on the wire


class Unsendable(TypeError):
    pass


def encode(v, refs=None, depth=0, count=None):
    """A value as JSON: plain data as itself (tagged where JSON has no such
    type); anything else as a numbered reference (refs, in the worker) or,
    from the grader, a reference it was given."""
    if count is None:
        count = [0]
    count[0] += 1
    if depth > 100 or count[0] > 200000:
        raise Unsendable("the value is too deep or too large to compare")
    if v is None or isinstance(v, (bool, str)):
        return v
    if type(v) is int:
        return v if abs(v) < (1 << 53) else {"$int": str(v)}
    if type(v) is float:
        if v != v or v in (float("inf"), float("-inf")):
            return {"$float": repr(v)}
        return v
    nxt = depth + 1
    if type(v) is list:
        return [encode(x, refs, nxt, count) for x in v]
    if type(v) is tuple:
        return {"$tuple": [encode(x, refs, nxt, count) for x in v]}
    if type(v) is dict:
        return {"$dict": [[encode(k, refs, nxt, count), encode(x, refs, nxt, count)] for k, x in v.items()]}
    if type(v) in (set, frozenset):
        return {"$" + type(v).__name__: [encode(x, refs, nxt, count) for x in v]}
    if type(v) is bytes:
        return {"$bytes": base64.b64encode(v).decode()}
    if type(v) is complex:
        return {"$complex": [encode(v.real), encode(v.imag)]}
    if refs is None:
        if isinstance(v, Remote):
            return {"$ref": v._ref()}
        raise Unsendable("only plain values (numbers, text, lists, dicts, ...) and the program's own objects "
                         "can be passed to the student's code, not " + type(v).__name__)
    return refs.add(v)


def decode(v, make_ref=None):
    if isinstance(v, list):
        return [decode(x, make_ref) for x in v]
    if not isinstance(v, dict):
        return v
    if len(v) == 1:
        (tag, x), = v.items()
        if tag == "$int":
            return int(x)
        if tag == "$float":
            return float(x)
        if tag == "$tuple":
            return tuple(decode(i, make_ref) for i in x)
        if tag == "$dict":
            return {decode(k, make_ref): decode(i, make_ref) for k, i in x}
        if tag == "$set":
            return {decode(i, make_ref) for i in x}
        if tag == "$frozenset":
            return frozenset(decode(i, make_ref) for i in x)
        if tag == "$bytes":
            return base64.b64decode(x)
        if tag == "$complex":
            return complex(decode(x[0]), decode(x[1]))
    if "$ref" in v and make_ref is not None:
        return make_ref(v)
    raise ValueError("unexpected value from the student's program")


def send(fd, msg):
    data = json.dumps(msg, separators=(",", ":")).encode()
    if len(data) > MAX_MESSAGE:
        data = json.dumps({"err": {"type": "Unsendable", "module": "", "msg": "the value is too large to compare",
                                   "tb": ""}}).encode()
    data = struct.pack(">I", len(data)) + data
    while data:
        n = os.write(fd, data)
        data = data[n:]


def recv_exact(fd, n, deadline):
    buf = bytearray()
    while len(buf) < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                raise TimeoutError
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def recv(fd, deadline=None):
    (n,) = struct.unpack(">I", recv_exact(fd, 4, deadline))
    if n > MAX_MESSAGE:
        raise ValueError("message too large")
    return json.loads(recv_exact(fd, n, deadline))


# ------------------------------------------------------------------- worker


class Refs:
    def __init__(self):
        self.objs = {}
        self.next = 1

    def add(self, v):
        n = self.next
        self.next += 1
        self.objs[n] = v
        kind = "object"
        if isinstance(v, type):
            kind = "exception" if issubclass(v, BaseException) else "class"
        elif callable(v):
            kind = "callable"
        out = {"$ref": n, "kind": kind, "type": type(v).__name__}
        if isinstance(v, type):
            out["name"] = v.__name__
            out["bases"] = [b.__name__ for b in v.__mro__ if b.__module__ == "builtins"]
        return out


class Limited(io.TextIOBase):
    """print()'s target during one call: keeps the first cap characters."""

    def __init__(self, cap):
        self.cap, self.parts, self.n = cap, [], 0

    def writable(self):
        return True

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str")
        if self.n < self.cap:
            self.parts.append(s[: self.cap - self.n])
        self.n += len(s)
        return len(s)

    def text(self):
        return "".join(self.parts)


def worker_main():
    """The student's side: imports and calls what the grader asks, one
    request at a time, on file descriptors 3 (in) and 4 (out)."""
    rfd, wfd = (int(x) for x in os.environ.pop("PYIDE_RPC").split(","))
    sys.path.insert(0, WORK)
    sys.argv = ["main.py"]
    refs = Refs()
    cap = int(os.environ.get("PYIDE_OUTPUT_BYTES", "65536"))
    dec = lambda v: decode(v, lambda r: refs.objs[r["$ref"]])  # noqa: E731
    while True:
        try:
            req = recv(rfd)
        except (EOFError, OSError, ValueError):
            os._exit(0)
        out, err = Limited(cap), Limited(cap)
        sys.stdout, sys.stderr = out, err
        try:
            value = handle(req, refs, dec)
            resp = {"ok": encode(value, refs)}
        except BaseException as e:  # noqa: BLE001 - the student's exception, whatever it is
            resp = {"err": describe(e, refs)}
        finally:
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        resp["out"], resp["errout"] = out.text(), err.text()
        send(wfd, resp)


def handle(req, refs, dec):
    import importlib
    op = req["op"]
    if op == "import":
        return importlib.import_module(req["name"])
    obj = refs.objs[req["ref"]]
    if op == "getattr":
        return getattr(obj, req["name"])
    if op == "setattr":
        setattr(obj, req["name"], dec(req["value"]))
        return None
    if op == "call":
        return obj(*dec(req["args"]), **dec(req["kwargs"]))
    if op == "dunder":
        name = req["name"]
        args = dec(req["args"])
        if name == "__iter__":
            out = []
            for x in obj:
                out.append(x)
                if len(out) > 100000:
                    raise ValueError("more than 100000 items")
            return out
        if name in ("__str__", "__repr__"):
            return (str if name == "__str__" else repr)(obj)
        if name == "__len__":
            return len(obj)
        if name == "__bool__":
            return bool(obj)
        if name == "__hash__":
            return hash(obj)
        if name == "__contains__":
            return args[0] in obj
        if name == "__isinstance__":
            return isinstance(args[0], obj)
        if name == "__dir__":
            return sorted(dir(obj))
        fn = OPERATORS.get(name)
        if fn is None:
            raise ValueError("unknown operation")
        return fn(obj, *args)
    if op == "release":
        refs.objs.pop(req["ref"], None)
        return None
    raise ValueError("unknown request")


def _operators():
    import operator
    ops = {"__int__": int, "__float__": float, "__abs__": abs}
    for n in ("eq", "ne", "lt", "le", "gt", "ge", "add", "sub", "mul", "truediv", "floordiv", "mod", "pow",
              "and", "or", "xor", "matmul", "neg", "pos", "index", "getitem", "setitem", "delitem"):
        fn = getattr(operator, n if n not in ("and", "or") else n + "_")
        ops["__%s__" % n] = fn
    for n in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow"):
        fn = getattr(operator, n)
        ops["__r%s__" % n] = (lambda f: lambda a, b: f(b, a))(fn)
    return ops


OPERATORS = _operators()


def describe(e, refs):
    tb = traceback.extract_tb(e.__traceback__)
    frames = [f for f in tb if f.filename.startswith(WORK)]
    lines = traceback.format_list(frames)
    info = {"type": type(e).__name__, "module": type(e).__module__, "tb": "".join(lines)[-MESSAGE_CHARS:]}
    try:
        info["msg"] = str(e)[:MESSAGE_CHARS]
    except BaseException:  # noqa: BLE001
        info["msg"] = ""
    if type(e).__module__ != "builtins":
        info["cls"] = refs.add(type(e))
    return info


# ---------------------------------------------------- the grader's stand-ins


class ProgramError(Exception):
    """The student's program failed in a way that is not an exception of its
    own: it ended, hung, or broke the channel."""


class Worker:
    """The one worker process; a new one after a failure. Objects from an
    older one are gone with it."""

    def __init__(self, cap, test_seconds=5.0):
        self.cap = cap
        self.test_seconds = test_seconds
        self.p = None
        self.gen = 0
        self.deadline = None
        self.exc_classes = {}

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def start(self):
        self.stop()
        kill_others()
        r1, w1 = os.pipe()
        r2, w2 = os.pipe()
        env = child_env()
        env["PYIDE_OUTPUT_BYTES"] = str(self.cap)
        env["PYIDE_RPC"] = "%d,%d" % (r1, w2)
        self.p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker"], cwd=WORK,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env=env, pass_fds=(r1, w2), start_new_session=True, preexec_fn=child_setup(0))
        os.close(r1)
        os.close(w2)
        self.w, self.r = w1, r2
        self.gen += 1

    def stop(self, kill=True):
        """Ends the worker and everything it started; its exit code, and
        whether this call had to kill it."""
        p, self.p = self.p, None
        if p is None:
            return None, False
        for fd in (self.w, self.r):
            try:
                os.close(fd)
            except OSError:
                pass
        killed = False
        try:
            code = p.wait(timeout=0 if kill else 0.5)
        except subprocess.TimeoutExpired:
            killed = True
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            code = p.wait()
        kill_others()
        return code, killed

    def ask(self, req):
        __tracebackhide__ = True
        if not self.alive():
            self.start()
        # Outside a test (settling names after collection) a call gets a
        # test's time too: a module that hangs at import stops nothing.
        deadline = self.deadline or time.monotonic() + self.test_seconds
        try:
            send(self.w, req)
            resp = recv(self.r, deadline)
        except TimeoutError:
            self.stop()
            raise TestTimeout() from None
        except (EOFError, OSError, ValueError, struct.error):
            code, killed = self.stop(kill=False)
            if code == -signal.SIGKILL and not killed:
                raise ProgramError("the program used more memory than it may (it was stopped)") from None
            if code is not None and code < 0 and not killed:
                raise ProgramError(f"the program was ended by signal {-code}") from None
            if killed:
                raise ProgramError("the program broke the grader's channel") from None
            raise ProgramError("the program ended during the test (it exited instead of returning, "
                               "e.g. with os._exit or sys.exit in a thread)") from None
        out = resp.get("out") if isinstance(resp, dict) else None
        if isinstance(out, str) and out:
            sys.stdout.write(out)
        errout = resp.get("errout") if isinstance(resp, dict) else None
        if isinstance(errout, str) and errout:
            sys.stderr.write(errout)
        if not isinstance(resp, dict):
            self.stop()
            raise ProgramError("the program broke the grader's channel")
        if "err" in resp:
            raise self.exception(resp["err"])
        if "ok" not in resp:
            self.stop()
            raise ProgramError("the program broke the grader's channel")
        return self.value(resp["ok"])

    def value(self, v):
        gen = self.gen
        return decode(v, lambda r: self.remote(r, gen))

    def remote(self, r, gen, path=None):
        kind = r.get("kind")
        if kind == "exception":
            return self.exc_class(r)
        if kind == "class":
            return RemoteClass(self, gen, r["$ref"], r.get("name", "?"), path)
        return RemoteObject(self, gen, r["$ref"], r.get("type", "?"), path)

    def exc_class(self, r):
        name = str(r.get("name", "Error"))
        if name in self.exc_classes:
            return self.exc_classes[name]
        base = Exception
        import builtins
        for b in r.get("bases", []):
            cand = getattr(builtins, str(b), None)
            if isinstance(cand, type) and issubclass(cand, BaseException) and cand not in (BaseException, object):
                base = cand
                break
        try:
            cls = type(name, (base,), {"__module__": "student"})
        except TypeError:
            cls = type(name, (Exception,), {"__module__": "student"})
        self.exc_classes[name] = cls
        return cls

    def exception(self, info):
        import builtins
        name, msg = str(info.get("type", "Error")), str(info.get("msg", ""))
        cls = None
        if info.get("module") == "builtins":
            cand = getattr(builtins, name, None)
            if isinstance(cand, type) and issubclass(cand, BaseException):
                cls = cand
        elif isinstance(info.get("cls"), dict):
            cls = self.exc_class(info["cls"])
        if cls in (SystemExit, KeyboardInterrupt, GeneratorExit) or cls is None and name == "SystemExit":
            return ProgramError(f"the program called sys.exit({msg}) during the test")
        if cls is None:
            cls = type(name, (Exception,), {"__module__": "student"})
        try:
            e = cls(msg)
        except Exception:  # noqa: BLE001 - a builtin exception that wants other arguments
            e = ProgramError(f"{name}: {msg}")
        tb = info.get("tb")
        if isinstance(tb, str) and tb:
            e.__notes__ = ["in the student's code:\n" + tb]
        return e


class TestTimeout(Exception):
    def __init__(self, msg=None):
        super().__init__(msg or "the test did not finish in time (the program may be in an endless loop)")


class Remote:
    """Something of the worker's, named by number."""

    __slots__ = ("_w", "_gen", "_id", "_tname", "_path")

    def __init__(self, w, gen, ref, tname, path):
        object.__setattr__(self, "_w", w)
        object.__setattr__(self, "_gen", gen)
        object.__setattr__(self, "_id", ref)
        object.__setattr__(self, "_tname", tname)
        object.__setattr__(self, "_path", path)

    def _ref(self):
        __tracebackhide__ = True
        w = object.__getattribute__(self, "_w")
        if object.__getattribute__(self, "_gen") == w.gen and w.alive():
            return object.__getattribute__(self, "_id")
        path = object.__getattribute__(self, "_path")
        if path is None:
            raise ProgramError("this object of the program was lost when the program was restarted "
                               "after an earlier failure")
        fresh = resolve(w, path)
        object.__setattr__(self, "_gen", w.gen)
        object.__setattr__(self, "_id", object.__getattribute__(fresh, "_id"))
        return object.__getattribute__(self, "_id")

    def _ask(self, op, **kw):
        __tracebackhide__ = True
        w = object.__getattribute__(self, "_w")
        ref = self._ref()
        return w.ask(dict(op=op, ref=ref, **kw))

    def __getattr__(self, name):
        __tracebackhide__ = True
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        path = object.__getattribute__(self, "_path")
        v = self._ask("getattr", name=name)
        if isinstance(v, Remote) and path is not None and object.__getattribute__(v, "_path") is None:
            object.__setattr__(v, "_path", path + (name,))
        return v

    def __setattr__(self, name, value):
        self._ask("setattr", name=name, value=encode(value))

    def __call__(self, *args, **kwargs):
        __tracebackhide__ = True
        return self._ask("call", args=encode(list(args)), kwargs=encode(dict(kwargs)))

    def _dunder(self, name, *args):
        __tracebackhide__ = True
        return self._ask("dunder", name=name, args=encode(list(args)))

    def __repr__(self):
        try:
            return self._dunder("__repr__")
        except Exception:  # noqa: BLE001
            return "<%s of the student's program>" % object.__getattribute__(self, "_tname")

    def __str__(self):
        __tracebackhide__ = True
        return self._dunder("__str__")

    def __eq__(self, o):
        __tracebackhide__ = True
        return self._dunder("__eq__", o)

    def __ne__(self, o):
        __tracebackhide__ = True
        return self._dunder("__ne__", o)

    def __lt__(self, o):
        __tracebackhide__ = True
        return self._dunder("__lt__", o)

    def __le__(self, o):
        __tracebackhide__ = True
        return self._dunder("__le__", o)

    def __gt__(self, o):
        __tracebackhide__ = True
        return self._dunder("__gt__", o)

    def __ge__(self, o):
        __tracebackhide__ = True
        return self._dunder("__ge__", o)

    def __hash__(self):
        __tracebackhide__ = True
        return self._dunder("__hash__")

    def __bool__(self):
        __tracebackhide__ = True
        return self._dunder("__bool__")

    def __len__(self):
        __tracebackhide__ = True
        return self._dunder("__len__")

    def __iter__(self):
        return iter(self._dunder("__iter__"))

    def __contains__(self, x):
        __tracebackhide__ = True
        return self._dunder("__contains__", x)

    def __getitem__(self, k):
        __tracebackhide__ = True
        return self._dunder("__getitem__", k)

    def __setitem__(self, k, v):
        return self._dunder("__setitem__", k, v)

    def __delitem__(self, k):
        return self._dunder("__delitem__", k)

    def __dir__(self):
        return self._dunder("__dir__")


def _binary(name):
    def op(self, o):
        __tracebackhide__ = True
        return self._dunder(name, o)
    op.__name__ = name
    return op


for _n in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "and", "or", "xor", "matmul",
           "radd", "rsub", "rmul", "rtruediv", "rfloordiv", "rmod", "rpow"):
    setattr(Remote, "__%s__" % _n, _binary("__%s__" % _n))
for _n in ("neg", "pos", "abs", "int", "float", "index"):
    setattr(Remote, "__%s__" % _n, (lambda name: lambda self: self._dunder(name))("__%s__" % _n))


class RemoteObject(Remote):
    __slots__ = ()


class RemoteClass(Remote):
    __slots__ = ()

    def __instancecheck__(self, inst):
        if not isinstance(inst, Remote):
            return False
        return self._dunder("__isinstance__", inst)


def resolve(w, path):
    mod = w.ask({"op": "import", "name": path[0]})
    v = mod
    for name in path[1:]:
        v = getattr(v, name)
    if isinstance(v, Remote):
        object.__setattr__(v, "_path", tuple(path))
    return v


class Lazy:
    """A name a test module took from the student's module while pytest was
    collecting: resolved once collection is over (see settle)."""

    def __init__(self, w, path):
        self._w, self._path = w, path
        self._v = None

    def _get(self):
        __tracebackhide__ = True
        if self._v is None:
            self._v = resolve(self._w, self._path)
        return self._v

    def __call__(self, *a, **kw):
        __tracebackhide__ = True
        return self._get()(*a, **kw)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._get(), name)

    def __repr__(self):
        return "<%s of the student's program>" % ".".join(self._path)


class StudentModule(types.ModuleType):
    """What "import solution" gives a test: every attribute is asked of the
    worker (lazily while pytest collects)."""

    def __init__(self, name, grader):
        super().__init__(name)
        self.__dict__["_grader"] = grader
        self.__path__ = []

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        g = self.__dict__["_grader"]
        path = tuple(self.__name__.split(".")) + (name,)
        if g.collecting:
            return Lazy(g.worker, path)
        return resolve(g.worker, path)


class StudentFinder:
    """Puts a StudentModule in place of every module of the student's files:
    their code is never imported into this process."""

    def __init__(self, grader, names):
        self.grader, self.names = grader, names

    def find_spec(self, fullname, path=None, target=None):
        import importlib.machinery
        if fullname.split(".")[0] not in self.names:
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec):
        return StudentModule(spec.name, self.grader)

    def exec_module(self, module):
        pass


def student_modules():
    names = set()
    for entry in os.listdir(WORK) if os.path.isdir(WORK) else []:
        full = os.path.join(WORK, entry)
        if entry.endswith(".py") and os.path.isfile(full):
            names.add(entry[:-3])
        elif os.path.isdir(full) and entry.isidentifier():
            names.add(entry)
    return {n for n in names if n.isidentifier()}


# ------------------------------------------------------------- pytest side


class Grader:
    """A pytest plugin: collects the test files from memory, bounds each
    test's time, and writes down each outcome."""

    def __init__(self, py, test_seconds, worker):
        global TESTS
        TESTS = tempfile.mkdtemp(prefix="tests-", dir="/tmp")
        self.sources = {}
        self.files = {}
        for f in py:
            path = os.path.join(TESTS, "t%d.py" % f["id"])
            self.sources[path] = f["source"]
            self.files[path] = f
        self.test_seconds = test_seconds
        self.worker = worker
        self.collecting = True
        self.results = {f["id"]: {"id": f["id"], "error": None, "tests": []} for f in py}
        self.by_node = {}

    def stubs(self):
        for path, src in self.sources.items():
            open(path, "w").close()
            lines = src.splitlines(True)
            linecache.cache[path] = (len(src), None, lines, path)
        return list(self.sources)

    def pytest_configure(self, config):
        config.addinivalue_line("markers", "points(n): what the test is worth")

    def pytest_pycollect_makemodule(self, module_path, parent):
        path = str(module_path)
        if path not in self.sources:
            return None
        return self.module_class.from_parent(parent, path=module_path)

    def pytest_collectreport(self, report):
        if report.failed:
            f = self.files.get(os.path.join(TESTS, report.nodeid.split("::")[0]))
            msg = trim(report.longreprtext)
            if f is not None:
                self.results[f["id"]]["error"] = msg
                self.results[f["id"]]["tests"] = static_tests(f)

    def pytest_collection_finish(self, session):
        for item in session.items:
            path = str(item.path)
            f = self.files.get(path)
            if f is None:
                continue
            m = item.get_closest_marker("points")
            pts = f.get("points", 1)
            if m is not None and m.args:
                try:
                    pts = float(m.args[0])
                except (TypeError, ValueError):
                    pass
            name = item.nodeid.split("::", 1)[-1]
            t = {"name": name, "outcome": "failed", "message": "the test did not run", "points": pts, "seconds": 0}
            self.results[f["id"]]["tests"].append(t)
            self.by_node[item.nodeid] = t
        self.collecting = False
        settle(session, self.worker)

    def _alarm(self, signum, frame):
        raise TestTimeout()

    def pytest_runtest_protocol(self, item, nextitem):
        self.worker.deadline = time.monotonic() + self.test_seconds
        signal.signal(signal.SIGALRM, self._alarm)
        signal.setitimer(signal.ITIMER_REAL, self.test_seconds + 0.5)
        return None

    def pytest_runtest_logreport(self, report):
        t = self.by_node.get(report.nodeid)
        if t is None:
            return
        if report.when == "call" or report.failed or report.skipped:
            if report.when in ("setup", "call") or report.failed:
                signal.setitimer(signal.ITIMER_REAL, 0)
            t["seconds"] = round(t["seconds"] + report.duration, 3)
            if report.passed and report.when == "call":
                t["outcome"], t["message"] = "passed", ""
            elif report.skipped:
                t["outcome"], t["message"] = "skipped", trim(skip_reason(report))
            elif report.failed:
                t["outcome"] = "failed" if report.when == "call" else "error"
                t["message"] = trim(report.longreprtext)
        if report.when == "teardown":
            signal.setitimer(signal.ITIMER_REAL, 0)
            self.worker.deadline = None


def skip_reason(report):
    lr = report.longrepr
    if isinstance(lr, tuple) and len(lr) == 3:
        return str(lr[2])
    return str(lr)


def trim(s):
    s = s or ""
    if GRADER is not None:
        for path, f in GRADER.files.items():
            s = s.replace(path, f["name"]).replace(path.lstrip("/"), f["name"])
    if len(s) <= MESSAGE_CHARS:
        return s
    return "…\n" + s[-MESSAGE_CHARS:]


def static_tests(f):
    """The tests a file that could not be collected would have had, read from
    its source, so each one still gets a line (failed) and its points."""
    out = []
    try:
        tree = ast.parse(f["source"])
    except SyntaxError:
        return [{"name": f["name"], "outcome": "error", "message": "", "points": f.get("points", 1), "seconds": 0}]
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            out.append((node.name, node))
        elif isinstance(node, ast.ClassDef):
            for sub in node.body:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)) and sub.name.startswith("test"):
                    out.append((node.name + "::" + sub.name, sub))
    tests = []
    for name, node in out:
        pts = f.get("points", 1)
        for d in node.decorator_list:
            if isinstance(d, ast.Call) and ast.unparse(d.func).endswith("mark.points") and d.args:
                try:
                    pts = float(ast.literal_eval(d.args[0]))
                except (ValueError, TypeError, SyntaxError):
                    pass
        tests.append({"name": name, "outcome": "error", "message": "", "points": pts, "seconds": 0})
    return tests or [{"name": f["name"], "outcome": "error", "message": "", "points": f.get("points", 1), "seconds": 0}]


def settle(session, worker):
    """After collection: names taken from the student's modules become the
    real stand-ins (an exception class becomes a class pytest.raises
    accepts). A name that cannot be resolved stays lazy: each test that uses
    it fails with the reason."""
    seen = set()
    for item in session.items:
        mod = getattr(item, "module", None)
        if mod is None or id(mod) in seen:
            continue
        seen.add(id(mod))
        for k, v in list(vars(mod).items()):
            if isinstance(v, Lazy):
                try:
                    setattr(mod, k, v._get())
                except Exception:  # noqa: BLE001 - the test that uses it says why
                    pass


GRADER = None


def mem_module_class():
    """A pytest Module whose code comes from the grader's memory, with
    pytest's assertion rewriting, instead of from the (empty) file."""
    import pytest
    from _pytest.assertion.rewrite import rewrite_asserts

    class MemModule(pytest.Module):
        def _importtestmodule(self):
            path = str(self.path)
            src = GRADER.sources[path]
            name = "pyide_tests_" + os.path.basename(path)[:-3]
            try:
                tree = ast.parse(src, filename=path)
                rewrite_asserts(tree, src.encode(), path, self.config)
                code = compile(tree, path, "exec", dont_inherit=True)
            except SyntaxError as e:
                raise self.CollectError("the test file has a syntax error: %s (line %s)" % (e.msg, e.lineno)) from None
            mod = types.ModuleType(name)
            mod.__file__ = path
            sys.modules[name] = mod
            try:
                exec(code, mod.__dict__)
            except pytest.skip.Exception as e:
                if e.allow_module_level:
                    raise
                raise self.CollectError("pytest.skip outside a test") from None
            except Exception as e:  # noqa: BLE001
                raise self.CollectError("the test file could not be loaded: %s: %s" % (type(e).__name__, e)) from None
            self.config.pluginmanager.consider_module(mod)
            return mod

    return MemModule


def run_py(py, test_seconds, cap):
    global GRADER
    import importlib.util
    import pytest
    pytest.hookimpl(tryfirst=True)(Grader.pytest_pycollect_makemodule)
    worker = Worker(cap, test_seconds)
    g = Grader(py, test_seconds, worker)
    g.module_class = mem_module_class()
    GRADER = g
    paths = g.stubs()
    # A student's module that shadows one the grader itself uses (pytest,
    # the standard library) is not stood in for: the grader's is used.
    names = {n for n in student_modules() if n not in sys.modules and importlib.util.find_spec(n) is None}
    sys.meta_path.insert(0, StudentFinder(g, names))
    os.chdir("/")
    args = paths + ["-p", "no:cacheprovider", "-p", "no:stepwise", "-p", "no:doctest", "--noconftest", "-q",
                    "--rootdir", TESTS, "-o", "python_files=*.py", "--tb=short", "-W", "ignore::DeprecationWarning"]
    try:
        pytest.main(args, plugins=[g])
    finally:
        worker.stop()
        signal.setitimer(signal.ITIMER_REAL, 0)
    return [g.results[f["id"]] for f in py]


# ------------------------------------------------------------------- main


def main():
    if sys.argv[1:] == ["--worker"]:
        worker_main()
        return
    not_dumpable()
    # Nothing of the student's may be imported here: not from the script's
    # folder, not as a pytest plugin.
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        sys.path.pop(0)
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    try:
        import pytest  # noqa: F401 - warm: loaded while the container waits
    except ImportError:
        pass
    data = sys.stdin.buffer.read(MAX_INPUT + 1)
    sys.stdin.close()
    real_out = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    if len(data) > MAX_INPUT:
        return
    ctl = json.loads(data)
    key = bytes.fromhex(ctl["key"])
    cap = int(ctl.get("output_bytes", 65536))
    result = {"io": [], "py": []}
    try:
        write_files(ctl.get("files", []))
        for case in ctl.get("io", []):
            result["io"].append(run_io(case, cap))
        if ctl.get("py"):
            result["py"] = run_py(ctl["py"], float(ctl.get("test_seconds", 5)), cap)
    except Exception:  # noqa: BLE001 - reported, never hidden
        result["error"] = trim(traceback.format_exc())
    payload = json.dumps(result, separators=(",", ":")).encode()
    sig = hmac.new(key, payload, hashlib.sha256).hexdigest()
    frame = MARK + b"%d %s\n" % (len(payload), sig.encode()) + payload
    while frame:
        n = os.write(real_out, frame)
        frame = frame[n:]
    os.close(real_out)


if __name__ == "__main__":
    main()
