"""Keeps empty writes off the terminal, in every Python of the sandbox.

Loaded at start-up by pyide_tty.pth in the interpreter's site-packages.

Under gVisor a write of zero bytes to the supervisor's pseudo-TTY never
returns. Python makes such writes itself: with PYTHONUNBUFFERED (set in the
image, so that print(..., end="") shows at once) sys.stdout and sys.stderr
write straight to the file descriptor, and print(x, end="") or the
traceback printer write an empty string. A script that raised an error
would hang before its traceback showed. Here stdout and stderr, when they
are an unbuffered terminal, get a raw layer that answers an empty write
itself; everything else about them stays as Python made it.

A program that calls os.write(1, b"") itself still waits; nothing between
it and the terminal can answer for it.
"""

import io
import sys


class _TTYWriter(io.FileIO):
    def write(self, b):
        if not len(b):
            return 0
        return super().write(b)


def _rewrap(stream):
    if not isinstance(stream, io.TextIOWrapper) or type(stream.buffer) is not io.FileIO:
        return stream  # buffered: empty writes never reach the descriptor
    try:
        if not stream.isatty():
            return stream
        raw = _TTYWriter(stream.fileno(), "wb", closefd=False)
    except (OSError, ValueError):
        return stream
    return io.TextIOWrapper(
        raw,
        encoding=stream.encoding,
        errors=stream.errors,
        line_buffering=stream.line_buffering,
        write_through=True,
    )


def install():
    if sys.stdout is sys.__stdout__:
        sys.stdout = sys.__stdout__ = _rewrap(sys.stdout)
    if sys.stderr is sys.__stderr__:
        sys.stderr = sys.__stderr__ = _rewrap(sys.stderr)


install()
