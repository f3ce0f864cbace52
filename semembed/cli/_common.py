"""Helpers shared by the command-line programs: error reporting and flag types."""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Callable

from semembed.errors import SemembedError


def str2bool(value: str) -> bool:
    """Parse the reference's boolean flag values (yes/no, true/false, 1/0, on/off)."""
    v = str(value).strip().lower()
    if v in ("1", "yes", "y", "true", "t", "on"):
        return True
    if v in ("0", "no", "n", "false", "f", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (yes/no, true/false, 1/0), got {value!r}")


def reports_errors(func: Callable[..., int]) -> Callable[..., int]:
    """Turn a :class:`SemembedError` (and a missing file) into ``error: ...`` and exit status 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs) -> int:
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

    return wrapper
