"""PythonIDE sandbox runner: runs a student's file, then turns the same
interpreter into Python's own interactive REPL with every name still there.

It owns only the life of one interpreter in one sandbox container. It must
never print before it knows what to run (the server sees readiness by the
container being started), never let its own names or traceback frames show
up in the student's program, and never need anything outside the stdlib.

Usage:
    runner.py FILE      run FILE as __main__, then the REPL (on a TTY)
    runner.py           an empty REPL (the teaching REPL)
    runner.py --control read one JSON line from stdin, with echo off, then
                        behave as one of the above:
    runner.py --control-fd N
                        the same, reading the line from fd N (a pipe of the
                        supervisor, which no student's process can write)
                        {"file": "/home/student/x.py" or null,
                         "repl_after_error": false, "cpu_seconds": 30}
                        Unknown keys are ignored; missing keys take the
                        defaults from the environment.

Exit codes:
    0    the script finished (and the REPL, if any, ended), or exit(0)
    1    uncaught exception or SyntaxError in the script
    n    SystemExit(n) (None -> 0, a string is printed and gives 1)
    2    bad control line, bad usage or bad settings, or FILE unreadable
    124  the script used more than its CPU budget
    130  KeyboardInterrupt during the script
    152  killed by SIGXCPU: the RLIMIT_CPU backstop for loops in C code
         that never return to Python (128 + 24, as Docker's init reports)

Environment:
    PYIDE_CPU_SECONDS       CPU seconds per command (the script, and each
                            REPL input); default 30
    PYIDE_REPL_AFTER_ERROR  "1" keeps the REPL after an uncaught exception
                            for post-mortem inspection, like IDLE

The REPL only starts when stdin is a TTY: that is how CPython decides
whether PYTHONINSPECT applies. Without a TTY the runner exits after the
script.
"""

import builtins
import json
import math
import os
import resource
import signal
import sys
import types

# Every code object in this file carries this name; frames with it are
# stripped from the tracebacks a student sees.
_RUNNER_FILE = sys._getframe().f_code.co_filename
_DEFAULT_CPU_SECONDS = 30.0
_MAX_CONTROL_LINE = 64 * 1024

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CPU = 124
EXIT_INTERRUPT = 130


class CPUTimeExceeded(BaseException):
    """Raised by the SIGPROF handler. A BaseException so that a student's
    `except Exception:` cannot swallow it."""


class _Budget:
    """CPU time for one command: an ITIMER_PROF that raises CPUTimeExceeded,
    and an RLIMIT_CPU backstop for loops in C code, which run no Python
    signal handler until they return."""

    def __init__(self, seconds):
        self.seconds = seconds

    def message(self):
        return f"CPU time limit exceeded ({self.seconds:g} s per command)"

    def on_sigprof(self, signum, frame):
        raise CPUTimeExceeded(self.message())

    def arm(self):
        # ITIMER_PROF counts CPU time only, so waiting at input() or at the
        # prompt costs nothing. The 1 s interval fires again if the student
        # catches the exception with a bare except and keeps spinning.
        signal.setitimer(signal.ITIMER_PROF, self.seconds, 1.0)
        self._arm_backstop()

    def disarm(self):
        signal.setitimer(signal.ITIMER_PROF, 0)

    def _arm_backstop(self):
        usage = resource.getrusage(resource.RUSAGE_SELF)
        soft = math.ceil(usage.ru_utime + usage.ru_stime + self.seconds + 5)
        try:
            # Only the soft limit moves: an unprivileged process can never
            # raise a hard limit again, and the next command needs a new one.
            _, hard = resource.getrlimit(resource.RLIMIT_CPU)
            if hard != resource.RLIM_INFINITY:
                soft = min(soft, hard)
            resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
        except (ValueError, OSError):
            pass  # the server's own backstop still applies


class _Prompt:
    """sys.ps1/ps2 value: CPython's REPL calls str() on it just before each
    input, which is where every REPL command gets a fresh CPU budget."""

    def __init__(self, text, budget):
        self._text = text
        self._budget = budget

    def __str__(self):
        self._budget.arm()
        return self._text

    def __repr__(self):
        return repr(self._text)


def _strip_tb(tb):
    """Returns the traceback chain without the runner's own frames."""
    kept = []
    while tb is not None:
        if tb.tb_frame.f_code.co_filename != _RUNNER_FILE:
            kept.append(tb)
        tb = tb.tb_next
    for outer, inner in zip(kept, kept[1:]):
        outer.tb_next = inner
    if kept:
        kept[-1].tb_next = None
        return kept[0]
    return None


def _strip_exc(exc):
    """Strips runner frames from exc and from its causes and contexts."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc.__traceback__ = _strip_tb(exc.__traceback__)
        if exc.__cause__ is not None:
            _strip_exc(exc.__cause__)
        exc = exc.__context__
    return exc


def _excepthook(exc_type, exc, tb):
    if exc is not None:
        exc.__traceback__ = tb
        _strip_exc(exc)
        tb = exc.__traceback__
    sys.__excepthook__(exc_type, exc, tb)


def _report(exc):
    """Prints exc as Python would for an uncaught exception."""
    _strip_exc(exc)
    sys.stdout.flush()
    sys.excepthook(type(exc), exc, exc.__traceback__)
    sys.stderr.flush()


def _interactive_hook():
    """Runs once, when CPython turns interactive after the main script."""
    # Child processes (subprocess.run([sys.executable, ...])) must not
    # inherit interactive mode.
    os.environ.pop("PYTHONINSPECT", None)
    try:
        import readline
        import rlcompleter  # noqa: F401 - registers the completer
    except ImportError:
        return
    readline.parse_and_bind("tab: complete")
    # History stays in memory: a ~/.python_history file would appear in the
    # student's workspace, which is mounted at the home directory.
    readline.set_history_length(1000)


def _fresh_main(path):
    """Installs a new, empty __main__ module: the runner's own globals stay
    in the old one, which its functions keep alive."""
    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = builtins
    if path is not None:
        import importlib.machinery

        main.__file__ = path
        main.__loader__ = importlib.machinery.SourceFileLoader("__main__", path)
    else:
        main.__loader__ = sys.modules["__main__"].__dict__.get("__loader__")
    main.__spec__ = None
    main.__package__ = None
    sys.modules["__main__"] = main
    return main


def _enter_repl(budget):
    """Makes CPython enter its interactive loop once this script returns."""
    budget.disarm()
    sys.ps1 = _Prompt(">>> ", budget)
    sys.ps2 = _Prompt("... ", budget)
    sys.__interactivehook__ = _interactive_hook
    # The prompt trick is proven on the classic REPL; 3.13's new REPL is
    # kept out so the budget stays per command on every base image. (It is
    # read after the interactive hook, so it stays set; harmless to children.)
    os.environ["PYTHON_BASIC_REPL"] = "1"
    os.environ["PYTHONINSPECT"] = "1"


def _exit(code):
    sys.stdout.flush()
    sys.stderr.flush()
    raise SystemExit(code)


def _run_file(path, repl_after_error, budget):
    main = _fresh_main(path)
    sys.argv = [path]
    sys.path[0] = os.path.dirname(os.path.realpath(path))
    try:
        with open(path, "rb") as f:
            source = f.read()
    except OSError as e:
        print(f"python3: can't open file {path!r}: [Errno {e.errno}] {e.strerror}", file=sys.stderr)
        _exit(EXIT_USAGE)
    if sys.stdin.isatty():
        try:
            import readline  # noqa: F401 - line editing for input()
        except ImportError:
            pass
    try:
        code = compile(source, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as e:
        _report(e)
        _exit(EXIT_ERROR)

    budget.arm()
    try:
        exec(code, main.__dict__)
    except SystemExit:
        budget.disarm()
        raise  # Python's own handling: None -> 0, n -> n, a string -> printed, 1
    except CPUTimeExceeded as e:
        budget.disarm()
        _report(e)
        _exit(EXIT_CPU)
    except KeyboardInterrupt:
        budget.disarm()
        sys.stdout.flush()
        print("\nKeyboardInterrupt", file=sys.stderr)
        _exit(EXIT_INTERRUPT)
    except BaseException as e:
        budget.disarm()
        _report(e)
        if not repl_after_error:
            _exit(EXIT_ERROR)
        # Post-mortem, as the REPL itself does: pdb.pm() finds these.
        sys.last_type, sys.last_value, sys.last_traceback = type(e), e, e.__traceback__
        sys.last_exc = e
    budget.disarm()
    _enter_repl(budget)


def _run_repl(budget):
    _fresh_main(None)
    sys.argv = [""]
    sys.path[0] = ""
    v = sys.version_info
    print(f"Python {v.major}.{v.minor}.{v.micro} \u2014 PythonIDE REPL", flush=True)
    _enter_repl(budget)


def _read_control_line(fd=None):
    """Reads exactly one line from fd (stdin by default), byte by byte so
    that nothing typed after it is consumed, with the TTY's echo off so it
    never shows."""
    if fd is None:
        fd = sys.stdin.fileno()
    saved = None
    if os.isatty(fd):
        import termios

        saved = termios.tcgetattr(fd)
        quiet = termios.tcgetattr(fd)
        quiet[3] &= ~(termios.ECHO | termios.ECHONL)
        termios.tcsetattr(fd, termios.TCSANOW, quiet)
    try:
        line = bytearray()
        while len(line) <= _MAX_CONTROL_LINE:
            b = os.read(fd, 1)
            if not b or b == b"\n":
                return bytes(line), b == b"\n"
            line += b
        return bytes(line), False
    finally:
        if saved is not None:
            # TCSANOW, not TCSAFLUSH: input already typed must survive.
            termios.tcsetattr(fd, termios.TCSANOW, saved)


def _parse_control(raw, complete, defaults):
    """Returns (file, repl_after_error, cpu_seconds) or raises ValueError."""
    if not complete:
        raise ValueError("no complete line on stdin")
    msg = json.loads(raw.decode("utf-8").strip())
    if not isinstance(msg, dict):
        raise ValueError("not a JSON object")
    file, repl_after_error, cpu = defaults
    file = msg.get("file", file)
    if file is not None and (not isinstance(file, str) or not file or "\0" in file):
        raise ValueError('"file" must be a non-empty string or null')
    repl_after_error = msg.get("repl_after_error", repl_after_error)
    if not isinstance(repl_after_error, bool):
        raise ValueError('"repl_after_error" must be true or false')
    cpu = msg.get("cpu_seconds", cpu)
    if isinstance(cpu, bool) or not isinstance(cpu, (int, float)) or not 0 < cpu < 1e6:
        raise ValueError('"cpu_seconds" must be a positive number')
    return file, repl_after_error, float(cpu)


def _env_defaults():
    raw = os.environ.get("PYIDE_CPU_SECONDS", "")
    try:
        cpu = float(raw) if raw else _DEFAULT_CPU_SECONDS
    except ValueError:
        cpu = -1.0
    if not 0 < cpu < 1e6:
        print(f"runner: PYIDE_CPU_SECONDS must be a positive number, not {raw!r}", file=sys.stderr)
        _exit(EXIT_USAGE)
    repl_after_error = os.environ.get("PYIDE_REPL_AFTER_ERROR", "") == "1"
    return None, repl_after_error, cpu


def main(args):
    # A PYTHONINSPECT inherited from outside would keep the REPL after
    # errors and SystemExit; the runner alone decides that.
    os.environ.pop("PYTHONINSPECT", None)
    defaults = _env_defaults()
    if args == ["--control"] or len(args) == 2 and args[0] == "--control-fd" and args[1].isdigit():
        # A warm spare waits here; importing line editing now, not after
        # the click, takes its cost off the Run path.
        if sys.stdin.isatty():
            try:
                import readline  # noqa: F401
                import rlcompleter  # noqa: F401
            except ImportError:
                pass
        control_fd = int(args[1]) if len(args) == 2 else None
        if control_fd is not None:
            # Say so (fd control_fd+1, when the supervisor opened it): this
            # runner has imported what it needs and waits for its line.
            try:
                os.write(control_fd + 1, b".")
                os.close(control_fd + 1)
            except OSError:
                pass
        raw, complete = _read_control_line(control_fd)
        if control_fd is not None:
            os.close(control_fd)
        try:
            file, repl_after_error, cpu = _parse_control(raw, complete, defaults)
        except ValueError as e:
            print(f"runner: bad control line: {e}", file=sys.stderr)
            _exit(EXIT_USAGE)
    elif len(args) == 2 and args[0] == "--" or len(args) == 1 and not args[0].startswith("-"):
        file, repl_after_error, cpu = args[-1], defaults[1], defaults[2]
    elif not args:
        file, repl_after_error, cpu = defaults
    else:
        print("usage: runner.py [FILE | -- FILE | --control]", file=sys.stderr)
        _exit(EXIT_USAGE)

    budget = _Budget(cpu)
    signal.signal(signal.SIGPROF, budget.on_sigprof)
    # SIGXCPU must stay fatal: it is the backstop for code no handler reaches.
    signal.signal(signal.SIGXCPU, signal.SIG_DFL)
    sys.excepthook = _excepthook
    if file is None:
        _run_repl(budget)
    else:
        _run_file(file, repl_after_error, budget)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except KeyboardInterrupt:
        print("\nKeyboardInterrupt", file=sys.stderr)
        raise SystemExit(EXIT_INTERRUPT)
