#!/usr/bin/env python3
"""Benchmark: the reference's baselines against semantic embeddings on Fashion-MNIST (the paper's Table 2 in miniature).

Every method trains the same network (``simple-tiny``) with the same budget and schedule as the
demo (SGD, lr 0.05, batch 128, ``--epochs`` x ``--steps`` steps) on Fashion-MNIST with our
clothing taxonomy, for each seed.  Evaluated on the 10,000 test images: retrieval with the
L2-normalised features (mAHP@250 with the LCS-height similarity, mAP) and classification with the
method's class scores (accuracy, mistake severity = mean LCA height of the wrong predictions,
lower is better).  Prints one row per method, mean ± std over the seeds, and writes
``runs/baselines/results.{md,json}``.

Methods: semantic embeddings + head (``embedding``, unitsphere targets, inv_corr + 0.1 CE),
softmax (``classifier``), softmax with label smoothing 0.1, DeViSE (``devise``, onto the same
unitsphere embeddings; here trained from scratch with the common SGD schedule, while the reference
fine-tunes a pretrained network with Adagrad), center loss (``center_loss``, learned centres,
100-d), label embedding (``label_embedding``, 100-d).

Usage: flock /tmp/semembed-heavy.lock python bench/baselines.py [--seeds 0,1] [--epochs 3] [--steps 150]
       python bench/baselines.py --merge_logs run1.log run2.log   # one table from the per-run lines of earlier runs
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

COLUMNS = [("mAHP@250", "AHP@250 (LCS_HEIGHT)"), ("mAP", "AP"), ("Accuracy", "Accuracy"),
           ("Mistake severity", "Mistake Severity")]


def methods(emb_path: str) -> dict:
    return {
        "semantic embeddings + head": dict(task="embedding", embedding=emb_path, loss="inv_corr", cls_weight=0.1),
        "softmax": dict(task="classifier"),
        "softmax + label smoothing 0.1": dict(task="classifier", label_smoothing=0.1),
        "DeViSE": dict(task="devise", embedding=emb_path),
        "center loss": dict(task="center_loss", task_options={"embed_dim": 100, "center_loss_weight": 0.1}),
        "label embedding": dict(task="label_embedding", task_options={"embed_dim": 100}),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--steps", type=int, default=150, help="steps per epoch")
    p.add_argument("--methods", default=None, help="comma-separated subset of the method names")
    p.add_argument("--out_dir", default=str(REPO / "runs" / "baselines"))
    p.add_argument("--merge_logs", nargs="+", default=None, help="print the table of the per-run lines of these logs")
    args = p.parse_args()
    if args.merge_logs:
        print(table(parse_logs(args.merge_logs)))
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from semembed.class_embeddings import compute_class_embedding, save_class_embedding
    from semembed.data import default_dataset
    from semembed.demo import evaluate_run, taxonomy_for
    from semembed.taxonomy import load_hierarchy
    from semembed.training.config import TrainConfig
    from semembed.training.run import train
    from semembed.training.schedules import ScheduleConfig

    dataset, root = default_dataset()
    if dataset != "fashion-mnist":
        print("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist); this benchmark needs it")
        return 1
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hierarchy = load_hierarchy(taxonomy_for(dataset))
    emb, _ = compute_class_embedding(hierarchy, method="unitsphere")
    emb_path = str(out / "fashion.unitsphere.pickle")
    save_class_embedding(emb, emb_path, overwrite=True)
    schedule = ScheduleConfig(name="SGD", sgd_schedule=None, sgd_lr=0.05, sgd_patience=10**6)
    seeds = [int(s) for s in args.seeds.split(",")]
    chosen = methods(emb_path)
    if args.methods:
        chosen = {k: v for k, v in chosen.items() if k in args.methods.split(",")}
    print(f"Fashion-MNIST, simple-tiny, {args.epochs} epochs x {args.steps} steps of 128, seeds {seeds}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    results: dict[str, list[dict]] = {}
    start = time.perf_counter()
    for name, extra in chosen.items():
        for seed in seeds:
            t0 = time.perf_counter()
            cfg = TrainConfig(dataset=dataset, data_root=root, architecture="simple-tiny", schedule=schedule,
                              epochs=args.epochs, batch_size=128, max_steps_per_epoch=args.steps, seed=seed,
                              no_progress=True, overwrite=True, **extra)
            res = train(cfg)
            metrics, _ = evaluate_run(res, hierarchy, res.class_ids)
            results.setdefault(name, []).append({k: float(metrics[k]) for _, k in COLUMNS})
            print(f"  {name}, seed {seed}: " + ", ".join(f"{c} {metrics[k]:.4f}" for c, k in COLUMNS)
                  + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
            (out / "results.json").write_text(json.dumps(results, indent=1))  # after every run
    text = table(results)
    total = time.perf_counter() - start
    print(text)
    print(f"total {total:.0f} s")
    (out / "results.md").write_text(text + f"\n\n{len(seeds)} seeds, {args.epochs} x {args.steps} steps, {total:.0f} s\n")
    return 0


def table(results: dict) -> str:
    """Markdown table: one row per method, mean ± std (population) over its runs."""
    lines = ["| method | " + " | ".join(c for c, _ in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name, runs in results.items():
        cells = []
        for _, key in COLUMNS:
            v = np.array([r[key] for r in runs])
            cells.append(f"{v.mean():.4f} ± {v.std():.4f}" if len(v) > 1 else f"{v.mean():.4f}")
        lines.append(f"| {name} (n={len(runs)}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_logs(paths: list[str]) -> dict:
    """Per-run lines ``  <method>, seed <s>: mAHP@250 x, mAP y, ...`` of earlier runs (values to 4 decimals)."""
    import re

    results: dict[str, list[dict]] = {}
    pattern = re.compile(r"^  (.+), seed (\d+): (.+) \(\d+ s\)$")
    for path in paths:
        for line in Path(path).read_text().splitlines():
            m = pattern.match(line)
            if not m:
                continue
            values = dict(item.rsplit(" ", 1) for item in m.group(3).split(", "))
            results.setdefault(m.group(1), []).append({key: float(values[col]) for col, key in COLUMNS})
    return results


if __name__ == "__main__":
    sys.exit(main())
