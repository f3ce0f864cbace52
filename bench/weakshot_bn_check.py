#!/usr/bin/env python3
"""Diagnostic: are bench/weakshot.py's figures held back by lagging BatchNorm statistics?

Per seed, on the folders of ``bench/weakshot.py`` (same sizes and settings), trains the noisy baseline
(row a) and the β = 0 SimNet from it, then measures each on the *same* weights with different BN statistics:

* baseline: novel test top-1 with the moving averages the training left, and after PreciseBN over
  ``--precise_bn_batches`` training batches (``run.py``'s batches);
* SimNet: with its moving averages; after PreciseBN over base + web batches through
  ``SimNetTask.precise_bn_forward`` (the training forward: what ``learn_simnet --precise_bn_batches`` does);
  after PreciseBN over web batches only and over base batches only (each stream alone through backbone and
  head).  For each: pair F1 of "same class" (s > 0.5) on the fixed base and novel test pair batches, the
  novel pairs' ROC AUC (threshold-free), the mean s of their same-class and other-class pairs, and the AUROC
  of the ``savg`` weights for telling clean web images from outliers (what rows b-e use).

Usage: flock /tmp/semembed-heavy.lock python bench/weakshot_bn_check.py [--seeds 1] [--precise_bn_batches 100]
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
    p.add_argument("--seeds", default="1")
    p.add_argument("--precise_bn_batches", type=int, default=100)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--simnet_epochs", type=int, default=6)
    p.add_argument("--base_per_class", type=int, default=600)
    p.add_argument("--web_per_class", type=int, default=300)
    p.add_argument("--reuse", action="store_true", help="reuse baselines and SimNets of an earlier run in --out_dir")
    p.add_argument("--out_dir", default=str(REPO / "runs" / "weakshot_bn_check"))
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from weakshot import row_schedule, simnet_config, write_folders  # bench/weakshot.py: the same settings

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    clean = write_folders(out / "data", args.base_per_class, args.web_per_class)
    base_root, novel_root = str(out / "data" / "base"), str(out / "data" / "novel")

    from sklearn.metrics import roc_auc_score

    from semembed.data import get_dataset
    from semembed.data.samplers import ClassSubsetSampler
    from semembed.models import load_model_file
    from semembed.models.simnet import all_pairs, pair_targets, same_class_probability, simnet_parts
    from semembed.training.config import TrainConfig
    from semembed.training.precise_bn import recompute_batchnorm_statistics
    from semembed.training.run import train
    from semembed.training.tasks.simnet import SimNetTask
    from semembed.weakshot.report import class_rows
    from semembed.weakshot.simnet_training import (SimNetOptions, evaluation_order, recompute_simnet_batchnorm,
                                                   train_simnet)
    from semembed.weakshot.transfer import compute_class_weights

    e, n = args.epochs, args.precise_bn_batches
    sizes = dict(target_size=28, crop_size=28)
    novel = get_dataset("ImageFolder", novel_root, **sizes)
    base = get_dataset("ImageFolder", base_root, **sizes)
    options = SimNetOptions(web_root=novel_root, beta=0.0, web_classes_per_batch=2)

    for seed in [int(s) for s in args.seeds.split(",")]:
        # --- row (a): the noisy baseline ---
        t = time.perf_counter()
        baseline = out / f"baseline_s{seed}.keras"
        if not (args.reuse and baseline.exists()):
            train(TrainConfig(task="classifier", dataset="ImageFolder", data_root=novel_root,
                              architecture="simple-tiny", schedule=row_schedule(0.05, e), epochs=e, batch_size=32,
                              seed=seed,
                              no_progress=True, overwrite=True, model_dump=str(baseline), **sizes))
        model = load_model_file(str(baseline))
        labels = np.asarray(novel.test_labels)

        def top1() -> float:
            probs = np.concatenate([np.asarray(model(b["image"], training=False)[-1])  # outputs: feature, prob
                                    for b in novel.test_dataset(500, as_dict=True)])
            return float(np.mean(probs.argmax(1) == labels))

        moving = top1()
        used = recompute_batchnorm_statistics(
            model, (b["image"] for b in novel.train_dataset(32, epoch=e, seed=seed, as_dict=True)), n)
        print(f"seed {seed} (a) baseline top-1: moving averages {moving:.4f}; PreciseBN over {used} batches "
              f"{top1():.4f} [{time.perf_counter() - t:.0f}s]", flush=True)

        # --- SimNet beta 0 from the baseline ---
        t = time.perf_counter()
        path = out / f"simnet_beta0_s{seed}.keras"
        if not (args.reuse and path.exists()):
            cfg = simnet_config(base_root, path, seed, args.simnet_epochs, 5e-3)
            options.init_classifier = str(baseline)
            train_simnet(cfg, options)
        print(f"seed {seed} SimNet beta=0 [{time.perf_counter() - t:.0f}s]", flush=True)

        def pair_stats(simnet, ds) -> tuple:
            backbone, head = simnet_parts(simnet)
            order, bs = evaluation_order(ds.test_labels, options, seed)
            s, y, f1 = [], [], []
            for b in ds.ordered_dataset("test", order, bs):
                _, logits = head(all_pairs(backbone(b["image"], training=False)), training=False)
                si, yi = np.asarray(same_class_probability(logits)), np.asarray(pair_targets(b["label"])) == 1
                pred = si > 0.5
                f1.append(2 * np.sum(pred & yi) / max(2 * np.sum(pred & yi) + np.sum(pred != yi), 1))
                s.append(si), y.append(yi)
            s, y = np.concatenate(s), np.concatenate(y)  # F1: mean over the batches, as the training's report
            return float(np.mean(f1)), roc_auc_score(y, s), s[y].mean(), s[~y].mean()

        def weights_auroc(simnet) -> float:
            rows = class_rows(novel, novel_root, compute_class_weights(simnet, novel, progress=False))
            return float(roc_auc_score([clean[p] for p, _, _ in rows], [w for _, _, w in rows]))

        def stream(ds, classes):
            return ds.train_dataset(50, epoch=args.simnet_epochs, seed=seed + (ds is novel), as_dict=True,
                                    sampler=ClassSubsetSampler(classes, 50))

        variants = {  # name: (task with a web stream, PreciseBN call)
            "moving averages": (False, None),
            "PreciseBN base+web (training forward)": (True, lambda task: recompute_simnet_batchnorm(
                task, stream(base, options.classes_per_batch), stream(novel, options.web_classes_per_batch), n)),
            "PreciseBN web batches only": (False, lambda task: recompute_simnet_batchnorm(
                task, stream(novel, options.web_classes_per_batch), None, n)),
            "PreciseBN base batches only": (False, lambda task: recompute_simnet_batchnorm(
                task, stream(base, options.classes_per_batch), None, n)),
        }
        print(f"| seed {seed}: SimNet statistics | base pair F1 | novel pair F1 | novel pair ROC AUC | "
              "novel mean s same / other | weight AUROC |\n|---|---|---|---|---|---|")
        for name, (web, fn_) in variants.items():
            simnet = load_model_file(str(path))
            task = SimNetTask("simple-tiny", base.image_shape, web=web, beta=0.0)
            task.models = {"simnet": simnet}
            used = fn_(task) if fn_ else 0
            f1_base = pair_stats(simnet, base)[0]
            f1, auc, same, other = pair_stats(simnet, novel)
            label = name + (f" ({used} batches)" if used else "")
            print(f"| {label} | {f1_base:.4f} | {f1:.4f} | {auc:.4f} | {same:.3f} / {other:.3f} | "
                  f"{weights_auroc(simnet):.4f} |", flush=True)
    print(f"{time.perf_counter() - t0:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
