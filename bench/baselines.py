#!/usr/bin/env python3
"""Benchmark: the reference's baselines against semantic embeddings on Fashion-MNIST (the paper's Table 2 in miniature).

Every method trains the same network (``simple-tiny``) with the same budget and schedule as
``hierarchy_losses.py`` (``bench/_runs.py``: the demo's Fashion-MNIST recipe, SGD 0.05 with per-step
cosine decay to 0, batch 128, ``--epochs`` x ``--steps`` steps, then PreciseBN over
``--precise_bn_batches`` training batches) on Fashion-MNIST with our clothing taxonomy, for each
seed.  Evaluated on the 10,000 test images: retrieval with the L2-normalised features (mAHP@250
with the LCS-height similarity, mAP) and classification with the method's class scores (accuracy,
mistake severity = mean LCA height of the wrong predictions, lower is better).  Prints one row per
method, mean ± std over the seeds, and writes ``runs/baselines/results.{md,json}``.

Methods: semantic embeddings + head (``embedding``, unitsphere targets, inv_corr + 0.1 CE),
softmax (``classifier``), softmax with label smoothing 0.1, DeViSE (``devise``, onto the same
unitsphere embeddings; here trained from scratch with the common SGD schedule, while the reference
fine-tunes a pretrained network with Adagrad), center loss (``center_loss``, learned centres,
100-d), label embedding (``label_embedding``, 100-d).

Usage: flock /tmp/semembed-heavy.lock python bench/baselines.py [--seeds 0,1] [--epochs 2] [--steps 234]
       python bench/baselines.py --merge_logs run1.log run2.log   # one table from the per-run lines of earlier runs
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from _runs import REPO, add_budget_flags, fashion_setup, table, train_methods  # noqa: E402

COLUMNS = [("mAHP@250", "AHP@250 (LCS_HEIGHT)"), ("mAP", "AP"), ("Accuracy", "Accuracy"),
           ("Mistake severity", "Mistake Severity")]


def methods(emb_path: str) -> dict:
    return {
        "semantic embeddings + head": dict(task="embedding", embedding=emb_path, loss="inv_corr", cls_weight=0.1,
                                           cls_lr_multiplier=10.0),  # the demo's head
        "softmax": dict(task="classifier"),
        "softmax + label smoothing 0.1": dict(task="classifier", label_smoothing=0.1),
        "DeViSE": dict(task="devise", embedding=emb_path),
        "center loss": dict(task="center_loss", task_options={"embed_dim": 100, "center_loss_weight": 0.1}),
        "label embedding": dict(task="label_embedding", task_options={"embed_dim": 100}),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_budget_flags(p)
    p.add_argument("--out_dir", default=str(REPO / "runs" / "baselines"), help="where results.md/json go (default runs/baselines)")
    p.add_argument("--merge_logs", nargs="+", default=None, help="print the table of the per-run lines of these logs")
    args = p.parse_args()
    if args.merge_logs:
        print(table(parse_logs(args.merge_logs), COLUMNS))
        return 0
    setup = fashion_setup(args.out_dir)
    if setup is None:
        return 1
    dataset, root, hierarchy, emb_path, out = setup
    from semembed.demo import evaluate_run

    start = time.perf_counter()
    runs = train_methods(args, dataset, root, methods(emb_path), lambda res: {"": evaluate_run(res, hierarchy, res.class_ids)[0]},
                         COLUMNS, out)
    text = table(runs, COLUMNS)
    total = time.perf_counter() - start
    print(text)
    print(f"total {total:.0f} s")
    (out / "results.md").write_text(text + f"\n\nseeds {args.seeds}, {args.epochs} x {args.steps} steps, {total:.0f} s\n")
    return 0


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
