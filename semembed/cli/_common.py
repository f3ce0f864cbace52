"""Helpers shared by the command-line programs: error reporting, closed pipes and flag types."""

from __future__ import annotations

import argparse
import contextlib
import difflib
import functools
import os
import sys
from typing import Callable, Iterator, TextIO

from semembed.errors import SemembedError


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: X)" only where the help does not already say what the default is."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.required and action.option_strings and text and "(required)" not in text:
            text = text + " (required)"
        if "default" in text.lower() or any(action.default is x for x in (None, False, argparse.SUPPRESS)) \
                or action.default in ([], ()):
            return text
        return super()._get_help_string(action)


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parser.parse_args`` that reports a misspelt flag as unknown (with a suggestion).

    Plain argparse stops at a missing required flag first, so ``--hierachy``
    would only be reported as "--hierarchy is required".
    """
    tokens = sys.argv[1:] if argv is None else list(argv)
    tokens = tokens[:tokens.index("--")] if "--" in tokens else tokens
    if any(t in ("-h", "--help") for t in tokens):
        parser.parse_args(argv)  # the help with the required flags shown as such (it exits)
    required = [a for a in parser._actions if a.required]
    for action in required:
        action.required = False
    try:
        _, unknown = parser.parse_known_args(argv)
    finally:
        for action in required:
            action.required = True
    if unknown:
        flags = [o for a in parser._actions for o in a.option_strings]
        words = []
        for word in unknown:
            close = difflib.get_close_matches(word.split("=", 1)[0], flags, n=1) if word.startswith("-") else []
            words.append(f"{word} (did you mean {close[0]}?)" if close else word)
        parser.error("unrecognized arguments: " + " ".join(words))
    args = parser.parse_args(argv)
    args._given = given_dests(parser, sys.argv[1:] if argv is None else argv)
    return args


def given_dests(parser: argparse.ArgumentParser, argv: list[str]) -> frozenset[str]:
    """The ``dest`` of every option typed in ``argv`` (``--flag value`` or ``--flag=value``; flags are never
    abbreviated here), whatever its value: ``--cosine_max_lr 0.1`` is given even though 0.1 is the default."""
    dests = set()
    for token in argv:
        if token == "--":
            break
        if token.startswith("-"):
            action = parser._option_string_actions.get(token.split("=", 1)[0])
            if action is not None:
                dests.add(action.dest)
    return frozenset(dests)


def was_given(args: argparse.Namespace, dest: str) -> bool:
    """Whether the flag of ``dest`` was typed (recorded by :func:`parse_args`; False for other namespaces)."""
    return dest in getattr(args, "_given", ())


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
