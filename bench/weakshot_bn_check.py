#!/usr/bin/env python3
"""Diagnostic: are bench/weakshot.py's figures held back by lagging BatchNorm statistics?

For one seed, on the folders of ``bench/weakshot.py`` (same sizes and settings), trains the noisy baseline
(row a) and the β = 0 SimNet from it, then measures each twice on the *same* weights: in inference mode with
the moving averages the training left, and after PreciseBN over ``--precise_bn_batches`` training batches
(the baseline: ``run.py``'s batches; SimNet: base + web batches through ``SimNetTask.precise_bn_forward``).
Baseline: novel test top-1; SimNet: pair F1 of "same class" (s > 0.5) on the fixed base and novel test pair
batches, and the AUROC of its ``savg`` weights for telling clean web images from outliers.

Usage: flock /tmp/semembed-heavy.lock python bench/weakshot_bn_check.py [--seed 1] [--precise_bn_batches 100]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--precise_bn_batches", type=int, default=100)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--simnet_epochs", type=int, default=6)
    p.add_argument("--base_per_class", type=int, default=600)
    p.add_argument("--web_per_class", type=int, default=300)
    p.add_argument("--out_dir", default=str(REPO / "runs" / "weakshot_bn_check"))
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from weakshot import write_folders  # bench/weakshot.py

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    clean = write_folders(out / "data", args.base_per_class, args.web_per_class)
    base_root, novel_root = str(out / "data" / "base"), str(out / "data" / "novel")

    from sklearn.metrics import roc_auc_score

    from semembed.data import get_dataset
    from semembed.models import load_model_file
    from semembed.training.config import TrainConfig
    from semembed.training.precise_bn import recompute_batchnorm_statistics
    from semembed.training.run import train
    from semembed.training.schedules import ScheduleConfig
    from semembed.training.tasks.simnet import SimNetTask
    from semembed.weakshot.report import class_rows
    from semembed.weakshot.simnet_training import (SimNetOptions, evaluation_order, recompute_simnet_batchnorm,
                                                   step_schedule, train_simnet)
    from semembed.weakshot.transfer import compute_class_weights

    e, seed, n = args.epochs, args.seed, args.precise_bn_batches
    sizes = dict(target_size=28, crop_size=28)
    novel = get_dataset("ImageFolder", novel_root, **sizes)
    base = get_dataset("ImageFolder", base_root, **sizes)

    # --- row (a): the noisy baseline ---
    t = time.perf_counter()
    baseline = out / f"baseline_s{seed}.keras"
    schedule = ScheduleConfig(name="SGD", sgd_schedule=f"1:0.05,{int(e * 0.7) + 1}:0.005,{e}")
    r = train(TrainConfig(task="classifier", dataset="ImageFolder", data_root=novel_root, architecture="simple-tiny",
                          schedule=schedule, epochs=e, batch_size=32, seed=seed, no_progress=True, overwrite=True,
                          model_dump=str(baseline), **sizes))
    model = load_model_file(str(baseline))
    labels = np.asarray(novel.test_labels)

    def top1(training: bool) -> float:
        probs = np.concatenate([np.asarray(model(b["image"], training=training)[-1])  # outputs: feature, prob
                                for b in novel.test_dataset(500, as_dict=True)])
        return float(np.mean(probs.argmax(1) == labels))

    moving, batch_stats = top1(False), top1(True)  # batch statistics of 500 test images (reference only)
    model = load_model_file(str(baseline))  # top1(True) moved the moving averages: reload
    data = novel.train_dataset(32, epoch=e, seed=seed, as_dict=True)
    used = recompute_batchnorm_statistics(model, (b["image"] for b in data), n)
    precise = top1(False)
    print(f"seed {seed} (a) baseline top-1: run {r.final['accuracy']:.4f}; inference, moving averages {moving:.4f}; "
          f"PreciseBN over {used} batches {precise:.4f}; batch statistics {batch_stats:.4f} "
          f"[{time.perf_counter() - t:.0f}s]", flush=True)

    # --- SimNet beta 0 from the baseline ---
    t = time.perf_counter()
    cfg = TrainConfig(task="simnet", dataset="ImageFolder", data_root=base_root, architecture="simple-tiny",
                      epochs=args.simnet_epochs, batch_size=50, weight_decay=1e-4,
                      schedule=ScheduleConfig(name="SGD", sgd_schedule=step_schedule(5e-3, 25, args.simnet_epochs)),
                      seed=seed, no_progress=True, overwrite=True, **sizes)
    options = SimNetOptions(web_root=novel_root, beta=0.0, init_classifier=str(baseline))
    res = train_simnet(cfg, options)
    task = SimNetTask("simple-tiny", base.image_shape, web=True, beta=0.0)
    task.models = {"simnet": res.model}

    def f1(ds) -> float:
        order, bs = evaluation_order(ds.test_labels, options, seed)
        vals = [task.eval_step(b, None) for b in ds.ordered_dataset("test", order, bs)]
        return sum(float(v["pair_f1"]) for v in vals) / sum(float(v["count"]) for v in vals)

    def weights_auroc() -> float:
        rows = class_rows(novel, novel_root, compute_class_weights(res.model, novel, progress=False))
        return float(roc_auc_score([clean[p] for p, _, _ in rows], [w for _, _, w in rows]))

    before = (f1(base), f1(novel), weights_auroc())
    from semembed.data.samplers import ClassSubsetSampler

    bs = 50
    base_batches = base.train_dataset(bs, epoch=args.simnet_epochs, seed=seed, as_dict=True,
                                      sampler=ClassSubsetSampler(options.classes_per_batch, bs))
    web_batches = novel.train_dataset(bs, epoch=args.simnet_epochs, seed=seed + 1, as_dict=True,
                                      sampler=ClassSubsetSampler(options.web_classes_per_batch, bs))
    used = recompute_simnet_batchnorm(task, base_batches, web_batches, n)
    after = (f1(base), f1(novel), weights_auroc())
    print(f"seed {seed} SimNet beta=0 (run: base F1 {res.final.get('base_pair_f1', float('nan')):.4f}, novel F1 "
          f"{res.final.get('novel_pair_f1', float('nan')):.4f}) [{time.perf_counter() - t:.0f}s]")
    for name, b, a in zip(("base pair F1", "novel pair F1", "weight AUROC"), before, after):
        print(f"  {name}: moving averages {b:.4f}; PreciseBN over {used} batches {a:.4f}")
    print(f"{time.perf_counter() - t0:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
