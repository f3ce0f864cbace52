"""Deterministic Keras-2-style automatic layer names (``conv2d_1``, ``batch_normalization_7``, ...).

The reference left many layers unnamed, so Keras 2.2 named them ``<snake_class>_<uid>`` with a
per-class counter starting at 1 in a fresh session. Builders here reproduce those names
explicitly: the result does not depend on what else was built in the session, and a released
``.h5`` written from a fresh session matches by name.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Iterable

# Keras class -> the snake-case prefix Keras 2 used for its automatic names.
AUTO_PREFIXES = (
    "conv2d",
    "batch_normalization",
    "dense",
    "activation",
    "add",
    "concatenate",
    "average_pooling2d",
    "max_pooling2d",
    "global_average_pooling2d",
    "zero_padding2d",
    "channel_padding",
    "dropout",
    "input",
)

_AUTO_NAME = re.compile(r"^(?P<prefix>[a-z][a-z0-9_]*?)(?:_(?P<uid>\d+))?$")


class Keras2Namer:
    """Hands out ``<prefix>_<n>`` names with one counter per prefix, starting after ``start``."""

    def __init__(self, start: dict[str, int] | None = None):
        self._counters: dict[str, int] = defaultdict(int, start or {})

    def __call__(self, prefix: str) -> str:
        self._counters[prefix] += 1
        return f"{prefix}_{self._counters[prefix]}"

    @classmethod
    def continuing(cls, names: Iterable[str]) -> "Keras2Namer":
        """A namer whose counters continue after the highest ``<prefix>_<n>`` among ``names``."""
        start: dict[str, int] = defaultdict(int)
        for name in names:
            m = _AUTO_NAME.match(name)
            if m and m.group("uid") and m.group("prefix") in AUTO_PREFIXES:
                start[m.group("prefix")] = max(start[m.group("prefix")], int(m.group("uid")))
        return cls(start)


def auto_prefix(name: str, prefixes: Iterable[str] = AUTO_PREFIXES) -> str | None:
    """The automatic-name prefix of ``name`` (``"conv2d"`` for ``"conv2d_12"``), else ``None``.

    Accepts both Keras 2 (``conv2d_1`` first) and Keras 3 (``conv2d`` first) styles.
    """
    m = _AUTO_NAME.match(name)
    if m and m.group("prefix") in tuple(prefixes):
        return m.group("prefix")
    return None
