"""Snapshots that make an interrupted run resumable exactly.

A snapshot is one NumPy ``.npz`` archive written atomically after every
epoch: the model's weights, the optimizer's variables (momentum, iteration
count), and a JSON record of the epoch, the schedule's plateau state and the
best validation value.  Since the data order and augmentation are functions
of (seed, epoch), restoring these continues the run as if it had never stopped.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import keras
import numpy as np

from semembed.errors import SemembedError
from semembed.io import atomic_path

FORMAT = "semembed-snapshot-1"


@dataclass
class TrainingState:
    """What besides weights a resumed run needs."""

    epoch: int = 0  # next epoch to run
    global_step: int = 0
    schedule: dict = field(default_factory=dict)
    best: float | None = None
    history: list = field(default_factory=list)
    phase: str = "main"  # "warmup" while --finetune_init epochs run


def save_snapshot(path: str, model: keras.Model, optimizer: keras.optimizers.Optimizer, state: TrainingState) -> None:
    """Write weights, optimizer variables and state atomically to ``path``."""
    arrays = {f"w{i}": np.asarray(w) for i, w in enumerate(model.get_weights())}
    arrays.update({f"o{i}": np.asarray(v.numpy() if hasattr(v, "numpy") else v) for i, v in enumerate(optimizer.variables)})
    meta = dict(format=FORMAT, state=state.__dict__, n_weights=len(model.weights), n_opt=len(optimizer.variables),
                model=model.name)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def is_snapshot(path: str) -> bool:
    try:
        with np.load(path, allow_pickle=False) as z:
            return "meta" in z.files
    except (OSError, ValueError):
        return False


def load_snapshot(path: str, model: keras.Model, optimizer: keras.optimizers.Optimizer) -> TrainingState:
    """Restore a snapshot written by :func:`save_snapshot` into a freshly built model/optimizer."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode("utf-8"))
            weights = [z[f"w{i}"] for i in range(meta["n_weights"])]
            opt_values = [z[f"o{i}"] for i in range(meta["n_opt"])]
    except (OSError, ValueError, KeyError) as exc:
        raise SemembedError(f"--snapshot {path}: not a readable semembed snapshot ({exc})") from None
    if meta.get("format") != FORMAT:
        raise SemembedError(f"--snapshot {path}: unknown snapshot format {meta.get('format')!r}")
    if len(weights) != len(model.weights) or any(w.shape != tuple(v.shape) for w, v in zip(weights, model.weights)):
        raise SemembedError(
            f"--snapshot {path}: its {len(weights)} weights do not fit the model being trained "
            f"({len(model.weights)} weights); was it written with another --architecture/--loss/--cls_weight?"
        )
    model.set_weights(weights)
    if len(opt_values) != len(optimizer.variables):
        raise SemembedError(f"--snapshot {path}: optimizer state does not match ({len(opt_values)} vs {len(optimizer.variables)})")
    for var, value in zip(optimizer.variables, opt_values):
        var.assign(value)
    return TrainingState(**meta["state"])


def snapshot_exists(path: str | None) -> bool:
    return bool(path) and os.path.exists(path)
