"""Run a model (or a task's prediction step) over batches and collect its outputs as NumPy arrays.

The one loop every program uses to run a network over images: ``embed``,
``predict``, ``index``/``search``, ``evaluate_classification_accuracy --model``
and the final predictions of a training run.
"""

from __future__ import annotations

import sys
from typing import Callable, Iterable

import numpy as np


def collect(step: Callable, batches: Iterable, *, progress: bool = False, total: int | None = None,
            unit: str = "batch", check: Callable | None = None) -> list[np.ndarray | None]:
    """Outputs of ``step(batch)`` for every batch, concatenated along the first axis.

    Args:
        step: a (``tf.function``-compiled) callable returning a tensor or a tuple/list of tensors;
            ``None`` entries stay ``None`` (e.g. no class probabilities).
        batches: an iterable of batches (a ``tf.data.Dataset``).
        progress: show a tqdm bar on stderr.
        total: number of batches, for the bar.
        check: called with every batch before ``step`` (e.g. to stop at an unreadable file).

    Returns:
        One array per output of ``step``, float outputs as float32 (also under mixed precision).
    """
    if progress:
        from tqdm import tqdm

        batches = tqdm(batches, total=total, file=sys.stderr, unit=unit)
    parts: list[list] | None = None
    for batch in batches:
        if check is not None:
            check(batch)
        out = step(batch)
        out = list(out) if isinstance(out, (tuple, list)) else [out]
        if parts is None:
            parts = [[] for _ in out]
        for store, value in zip(parts, out):
            if value is not None:
                arr = np.asarray(value)
                store.append(arr if arr.dtype.kind in "iubSUO" else arr.astype(np.float32))  # bfloat16/float16 too
    if parts is None:
        return []
    return [np.concatenate(p) if p else None for p in parts]
