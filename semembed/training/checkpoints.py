"""Snapshots that make an interrupted run resumable exactly.

A snapshot is one NumPy ``.npz`` archive written atomically after every
epoch: every variable of every named model (weights, BN statistics, seed
generator states), every optimiser's variables (iterations, moments, loss
scale), the task's own state variables, and a JSON record of the epoch, step,
phase, schedule state, best value and history.  Since the data order and
augmentation are functions of (seed, epoch), restoring these continues the run
as if it had never stopped.  Snapshots of the first format (one model, one
optimiser) still load.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from semembed.errors import SemembedError
from semembed.io import atomic_path

FORMAT = "semembed-snapshot-2"
FORMAT_V1 = "semembed-snapshot-1"


@dataclass
class TrainingState:
    """What besides weights a resumed run needs."""

    epoch: int = 0  # next epoch to run
    global_step: int = 0
    schedule: dict = field(default_factory=dict)
    best: float | None = None
    history: list = field(default_factory=list)
    phase: str = "main"  # "warmup" while --finetune_init epochs run
    signature: dict = field(default_factory=dict)  # what must not change on resume (task, targets, batch, ...)


def _value(v) -> np.ndarray:
    return np.asarray(v.numpy() if hasattr(v, "numpy") else v)


def save_snapshot(path: str, models: dict, optimizers: dict, state: TrainingState, extra: list | None = None) -> None:
    """Write every model's and optimiser's variables plus ``state`` atomically to ``path``."""
    arrays, meta_models, meta_opts = {}, [], []
    for mi, (name, model) in enumerate(models.items()):
        for i, v in enumerate(model.variables):
            arrays[f"m{mi}_{i}"] = _value(v)
        meta_models.append({"name": name, "n": len(model.variables), "keras_name": model.name})
    for oi, (name, opt) in enumerate(optimizers.items()):
        for i, v in enumerate(opt.state_variables):
            arrays[f"o{oi}_{i}"] = _value(v)
        meta_opts.append({"name": name, "n": len(opt.state_variables)})
    extra = list(extra or [])
    for i, v in enumerate(extra):
        arrays[f"x{i}"] = _value(v)
    meta = dict(format=FORMAT, state=state.__dict__, models=meta_models, optimizers=meta_opts, n_extra=len(extra))
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def is_snapshot(path: str) -> bool:
    try:
        with np.load(path, allow_pickle=False) as z:
            return "meta" in z.files
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return False


HINT = "was it written with another --task/--architecture/--loss/--cls_weight/--optimizer?"


def _assign(path: str, what: str, variables: list, values: list) -> None:
    if len(values) != len(variables):
        raise SemembedError(f"--snapshot {path}: it holds {len(values)} {what} variables, the run being started "
                            f"has {len(variables)}; {HINT}")
    for i, (a, v) in enumerate(zip(values, variables)):
        if tuple(a.shape) != tuple(v.shape):
            raise SemembedError(f"--snapshot {path}: {what} variable {i} ({v.path}) has shape {tuple(v.shape)} in the "
                                f"run being started but {tuple(a.shape)} in the snapshot; {HINT}")
    for var, value in zip(variables, values):
        var.assign(value)


def load_snapshot(path: str, models: dict, optimizers: dict, extra: list | None = None,
                  signature: dict | None = None) -> TrainingState:
    """Restore a snapshot written by :func:`save_snapshot` into freshly built models/optimisers.

    ``signature``: what the snapshot's run must share with this one (see :func:`check_signature`).
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode("utf-8"))
            if signature:
                check_signature(path, meta.get("state", {}).get("signature", {}), signature)
            fmt = meta.get("format")
            if fmt == FORMAT_V1:
                model = next(iter(models.values()))
                _assign(path, "model", model.weights, [z[f"w{i}"] for i in range(meta["n_weights"])])
                opt = optimizers.get("main") or next(iter(optimizers.values()))
                _assign(path, "optimizer", opt.state_variables, [z[f"o{i}"] for i in range(meta["n_opt"])])
                return TrainingState(**meta["state"])
            if fmt != FORMAT:
                raise SemembedError(f"--snapshot {path}: unknown snapshot format {fmt!r}")
            names = [m["name"] for m in meta["models"]]
            if names != list(models):
                raise SemembedError(f"--snapshot {path}: it holds the models {names}, the task builds {list(models)}")
            for mi, (m, model) in enumerate(zip(meta["models"], models.values())):
                _assign(path, f"model {m['name']!r}", model.variables, [z[f"m{mi}_{i}"] for i in range(m["n"])])
            opt_names = [o["name"] for o in meta["optimizers"]]
            if opt_names != list(optimizers):
                raise SemembedError(f"--snapshot {path}: it holds the optimizers {opt_names}, the task uses {list(optimizers)}")
            for oi, (o, opt) in enumerate(zip(meta["optimizers"], optimizers.values())):
                _assign(path, f"optimizer {o['name']!r}", opt.state_variables, [z[f"o{oi}_{i}"] for i in range(o["n"])])
            _assign(path, "task state", list(extra or []), [z[f"x{i}"] for i in range(meta.get("n_extra", 0))])
    except SemembedError:
        raise  # a readable snapshot of another run: its own message (SemembedError is a ValueError)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise SemembedError(f"--snapshot {path}: not a readable semembed snapshot ({type(exc).__name__}: {exc})") from None
    return TrainingState(**meta["state"])


def check_signature(path: str, saved: dict, current: dict) -> None:
    """Refuse to resume a snapshot whose run differs in what ``current`` records (task, targets, batch size, ...)."""
    diffs = [f"{k}: {saved[k]!r} in the snapshot, {current[k]!r} now" for k in current
             if k in saved and saved[k] != current[k]]
    if diffs:
        raise SemembedError(f"--snapshot {path} was written by another run; resume with the same command, or start "
                            f"afresh with another --snapshot. Differences: " + "; ".join(diffs))


def snapshot_exists(path: str | None) -> bool:
    return bool(path) and os.path.exists(path)
