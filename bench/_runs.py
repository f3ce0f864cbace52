"""Shared by the same-budget method benchmarks (``baselines.py``, ``hierarchy_losses.py``).

Fashion-MNIST with our clothing taxonomy, ``simple-tiny``, the demo's Fashion-MNIST recipe (SGD 0.05
with per-step cosine decay to 0, batch 128, ``epochs x steps`` steps) and PreciseBN after training,
every method and seed trained by :func:`train_methods`; :func:`table` prints mean ± std per method.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TAXONOMY = REPO / "hierarchies" / "fashion_mnist" / "fashion_mnist.parent-child.txt"


def add_budget_flags(p, epochs: int = 2, steps: int = 234) -> None:
    """The flags every same-budget benchmark takes."""
    p.add_argument("--seeds", default="0,1", help="comma-separated seeds; every method runs once per seed (default 0,1)")
    p.add_argument("--epochs", type=int, default=epochs, help=f"epochs of every run (default {epochs})")
    p.add_argument("--steps", type=int, default=steps, help=f"steps per epoch (default {steps}; 234 = half an epoch of 128 images)")
    p.add_argument("--precise_bn_batches", type=int, default=100,
                   help="BN statistics recomputed over this many batches after training (0: the moving averages, "
                   "which lag far behind the weights after a few hundred steps; default 100)")
    p.add_argument("--methods", default=None, help="comma-separated subset of the method names (default: all)")


def fashion_setup(out_dir: str):
    """(dataset, root, hierarchy, unitsphere embedding path, out folder), or None without Fashion-MNIST."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from semembed.class_embeddings import compute_class_embedding, save_class_embedding
    from semembed.data import default_dataset
    from semembed.taxonomy import load_hierarchy

    dataset, root = default_dataset()
    if dataset != "fashion-mnist":
        print("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist); this benchmark needs it")
        return None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hierarchy = load_hierarchy(TAXONOMY)
    emb, _ = compute_class_embedding(hierarchy, method="unitsphere")
    emb_path = str(out / "fashion.unitsphere.pickle")
    save_class_embedding(emb, emb_path, overwrite=True)
    return dataset, root, hierarchy, emb_path, out


def train_methods(args, dataset: str, root: str, chosen: dict, evaluate: Callable, columns: list, out: Path) -> dict:
    """Train every method of ``chosen`` ({name: TrainConfig fields}) for every seed of ``args.seeds``.

    ``evaluate(result)`` returns {label suffix: metrics}; one line per run and suffix is printed and
    ``out/runs.json`` ({label: [per-seed metrics]}) is rewritten after every run.
    """
    from semembed.training.config import TrainConfig
    from semembed.training.run import train
    from semembed.training.schedules import ScheduleConfig

    schedule = ScheduleConfig(name="cosine", cosine_max_lr=0.05, cosine_min_lr=0.0)  # semembed.demo.RECIPES
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.methods:
        chosen = {k: v for k, v in chosen.items() if k in args.methods.split(",")}
    print(f"Fashion-MNIST, simple-tiny, {args.epochs} epochs x {args.steps} steps of 128, cosine from 0.05, seeds "
          f"{seeds}, PreciseBN over {args.precise_bn_batches} batches; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    runs: dict[str, list[dict]] = {}
    for name, extra in chosen.items():
        for seed in seeds:
            t0 = time.perf_counter()
            cfg = TrainConfig(dataset=dataset, data_root=root, architecture="simple-tiny", schedule=schedule,
                              epochs=args.epochs, batch_size=128, max_steps_per_epoch=args.steps, seed=seed,
                              no_progress=True, overwrite=True, precise_bn_batches=args.precise_bn_batches, **extra)
            res = train(cfg)
            for suffix, m in evaluate(res).items():
                runs.setdefault(name + suffix, []).append({k: float(m[k]) for _, k in columns})
                print(f"  {name}{suffix}, seed {seed}: " + ", ".join(f"{c} {m[k]:.4f}" for c, k in columns)
                      + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
            (out / "runs.json").write_text(json.dumps(runs, indent=1))  # after every run
    return runs


def table(runs: dict, columns: list, counts: bool = True) -> str:
    """Markdown table: one row per label (with its number of runs), mean ± std (population) over its runs."""
    lines = ["| method | " + " | ".join(c for c, _ in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, rs in runs.items():
        cells = []
        for _, key in columns:
            v = np.array([r[key] for r in rs])
            cells.append(f"{v.mean():.4f} ± {v.std():.4f}" if len(v) > 1 else f"{v.mean():.4f}")
        label = f"{name} (n={len(rs)})" if counts else name
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
