"""Range checks of numeric settings and output paths, raising :class:`SemembedError` that name the flag.

Configs (``TrainConfig``, ``ScheduleConfig``, ``DemoConfig``, ...) call these so that the Python API and
the command-line programs refuse the same values with the same words: ``--epochs must be a positive
integer, got 0``.  ``None`` means "the default" wherever a setting is optional; 0 is never read as None.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Mapping

from semembed.errors import SemembedError


def _int_text(minimum: int) -> str:
    return "a positive integer" if minimum == 1 else f">= {minimum}"


def check_int(flag: str, value, minimum: int = 1, *, optional: bool = False, note: str = "") -> None:
    """``value`` must be an integer >= ``minimum`` (or None when ``optional``).

    Messages: "--epochs must be a positive integer, got 0", "--gpus must be >= 0, got -1".

    ``note`` is appended to the message (e.g. "; leave it out for the schedule's default").
    """
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise SemembedError(f"{flag} must be {_int_text(minimum)}, got {value!r}{note}")


def check_number(flag: str, value, low: float | None = None, high: float | None = None, *,
                 low_open: bool = False, high_open: bool = False, optional: bool = False, note: str = "") -> None:
    """``value`` must be a finite number in the range given by ``low``/``high`` (open ends with ``*_open``).

    Messages: "--momentum must be in [0, 1), got 1.5", "--sgd_lr must be > 0, got 0.0",
    "--weight_decay must be finite and >= 0, got nan".
    """
    if value is None and optional:
        return
    number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    finite = number and math.isfinite(value)
    ok = finite
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if ok:
        return
    if low is not None and high is not None:
        text = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        text = f"{'>' if low_open else '>='} {low:g}"
    elif high is not None:
        text = f"{'<' if high_open else '<='} {high:g}"
    else:
        text = ""
    if not finite:
        if not number or not text:
            text = f"a finite number{' ' + text if text else ''}"
        else:
            text = f"finite and {text}"
    raise SemembedError(f"{flag} must be {text}, got {value!r}{note}")


def integer_class_list(text: str) -> list[int] | None:
    """The integer ids a ``--train_classes``-style list names ("0-4,7" -> [0, 1, 2, 3, 4, 7]); None when an
    item is not an integer or an integer range (class names need the dataset to be resolved)."""
    ids: list[int] = []
    for item in (t.strip() for t in str(text).split(",")):
        if not item:
            continue
        a, sep, b = item.partition("-")
        try:
            ids.extend(range(int(a), int(b) + 1) if sep else [int(a)])
        except ValueError:
            return None
    return ids


def check_disjoint_classes(train_text: str, test_text: str, shared: list) -> None:
    """Refuse a zero-shot split whose ``--train_classes`` and ``--test_classes`` share the classes ``shared``."""
    if shared:
        more = ", ..." if len(shared) > 10 else ""
        raise SemembedError(f"--train_classes {train_text} and --test_classes {test_text} share {len(shared)} "
                            f"class(es): {', '.join(map(str, shared[:10]))}{more}; a zero-shot split tests on "
                            "classes never trained on, so the lists must be disjoint (give --train_classes alone "
                            "to test on every class)")


def check_model_file(flag: str, path: "str | os.PathLike") -> None:
    """``path`` must exist and hold Keras weights (``.keras``, ``.weights.h5``, ``.h5``), from its first bytes.

    Raises:
        SemembedError: "--flag X: no such file", or "--flag X is <what it is>, not a model file; expected ...".
    """
    from semembed.io.sniff import WEIGHT_FORMATS, describe_file, looks_like_weights

    if not os.path.isfile(path):
        raise SemembedError(f"{flag} {os.fspath(path)}: no such file")
    if not looks_like_weights(path):
        raise SemembedError(f"{flag} {os.fspath(path)} is {describe_file(path)}, not a model file; "
                            f"expected {WEIGHT_FORMATS}")


def check_distinct_outputs(outputs: Mapping[str, "str | os.PathLike | None"]) -> None:
    """Refuse two outputs (flag -> path; None: not written) that name the same file, after resolving the paths.

    Writing both would leave only the second, or fail half-way with "exists already".
    """
    seen: dict[str, str] = {}
    for flag, path in outputs.items():
        if path is None or os.fspath(path) == "":
            continue
        key = os.path.normcase(os.path.realpath(os.fspath(path)))
        if key in seen:
            raise SemembedError(f"{seen[key]} and {flag} name the same file {os.fspath(path)}; give each output "
                                "its own path")
        seen[key] = flag
