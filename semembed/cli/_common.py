"""Helpers shared by the command-line programs: error reporting, closed pipes and flag types."""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
from typing import Callable, Iterator, TextIO

from semembed.errors import SemembedError


def str2bool(value: str) -> bool:
    """Parse the reference's boolean flag values (yes/no, true/false, 1/0, on/off)."""
    v = str(value).strip().lower()
    if v in ("1", "yes", "y", "true", "t", "on"):
        return True
    if v in ("0", "no", "n", "false", "f", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (yes/no, true/false, 1/0), got {value!r}")


class _PipeSafe:
    """A text stream whose reader may go away (``| head -1``, ``| true``) without harm.

    On the first ``BrokenPipeError`` its file descriptor is pointed at
    ``/dev/null``: the program carries on, writes its result files and exits
    normally, and nothing is printed about the pipe (the reader chose not to
    read).
    """

    def __init__(self, stream: TextIO):
        self._stream = stream
        self.closed_pipe = False

    def _divert(self) -> None:
        self.closed_pipe = True
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._divert()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._divert()
            with contextlib.suppress(OSError, ValueError):
                self._stream.flush()  # the buffered rest now goes to /dev/null

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


@contextlib.contextmanager
def pipe_safe_output() -> Iterator[None]:
    """Within the block, a closed stdout or stderr never raises ``BrokenPipeError``."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _PipeSafe(sys.stdout), _PipeSafe(sys.stderr)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = saved


def reports_errors(func: Callable[..., int]) -> Callable[..., int]:
    """Turn a :class:`SemembedError` (and a missing file) into ``error: ...`` and exit status 2.

    Output goes through :func:`pipe_safe_output`, so a reader that closes the
    pipe early costs neither a result file nor a traceback.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs) -> int:
        with pipe_safe_output():
            return _run_reporting(func, *args, **kwargs)

    return wrapper


def _run_reporting(func: Callable[..., int], *args, **kwargs) -> int:
    try:
        return func(*args, **kwargs)
    except SemembedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        name = exc.filename or exc
        print(f"error: file not found: {name}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
