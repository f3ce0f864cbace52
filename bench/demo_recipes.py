#!/usr/bin/env python3
"""Benchmark: does each demo recipe show the published picture, over two seeds?

For every dataset the demo can pick (Fashion-MNIST, digits), runs ``semembed
demo`` with its recipe (``semembed.demo.RECIPES``) for seeds 0 and 1 and
prints, per seed and as the mean, mAHP@250, mAP and accuracy of the semantic
embeddings + head and of the softmax baseline, then the three checks of the
paper's claim: the semantic embedding beats the baseline's features on
mAHP@250 and on mAP, and the head's accuracy is within 1 point of the
baseline's.

Usage: python bench/demo_recipes.py [--datasets fashion-mnist digits] [--seeds 0 1] [--epochs N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

METRICS = (("mAHP@250", "AHP@250 (LCS_HEIGHT)"), ("mAP", "AP"), ("accuracy", "Accuracy"))
SEM, BASE = "semantic embeddings + head", "softmax baseline"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["fashion-mnist", "digits"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs (exploration)")
    ap.add_argument("--lr", type=float, default=None, help="override the recipe's learning rate (exploration)")
    args = ap.parse_args()
    from semembed.demo import DemoConfig, run_demo

    for dataset in args.datasets:
        runs = []
        for seed in args.seeds:
            start = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                res = run_demo(DemoConfig(out_dir=tmp, dataset=dataset, seed=seed, epochs=args.epochs, lr=args.lr,
                                          progress=False))
            runs.append(res)
            print(f"[{dataset} seed {seed}: {time.perf_counter() - start:.0f} s]", flush=True)
        print(f"\n{dataset}: recipe {DemoConfig(dataset=dataset, epochs=args.epochs, lr=args.lr).recipe(dataset)}")
        print("| model | seed | " + " | ".join(n for n, _ in METRICS) + " |")
        print("|---|---|" + "---|" * len(METRICS))
        means = {}
        for label in (SEM, BASE):
            for seed, res in zip(args.seeds, runs):
                print(f"| {label} | {seed} | " + " | ".join(f"{res[label][k]:.4f}" for _, k in METRICS) + " |")
            means[label] = {k: sum(r[label][k] for r in runs) / len(runs) for _, k in METRICS}
            print(f"| {label} | mean | " + " | ".join(f"{means[label][k]:.4f}" for _, k in METRICS) + " |")
        sem, base = means[SEM], means[BASE]
        checks = {
            "semantic beats baseline on mAHP@250": sem["AHP@250 (LCS_HEIGHT)"] > base["AHP@250 (LCS_HEIGHT)"],
            "semantic beats baseline on mAP": sem["AP"] > base["AP"],
            "head accuracy within 1 point of the baseline": sem["Accuracy"] >= base["Accuracy"] - 0.01,
        }
        for name, ok in checks.items():
            print(f"{dataset}: {name}: {'yes' if ok else 'NO'}")
        print(flush=True)


if __name__ == "__main__":
    main()
