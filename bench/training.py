#!/usr/bin/env python3
"""Benchmark: custom training loop vs. ``model.fit`` (images/s), and a short quality run.

Throughput: Plain-11 and ResNet-110-wfc at 32x32, batch 32, synthetic images,
1 replica and 2 logical CPU replicas (MirroredStrategy), the same model,
optimizer (SGD + momentum), loss (inv_corr on 100-d class embeddings) and data
for both loops.  Target: the custom loop is at least as fast as ``model.fit``.

Quality (``--quality``): on Fashion-MNIST, our loop against plain ``model.fit``
training the same layers on the same pipeline, and the semantic model against
the softmax baseline (see ``quality``), 2 seeds.

GPU options (``--variants``): the custom loop on one replica again with
``mixed_precision="bfloat16"`` and with ``jit_compile=True``, ratio to float32
without XLA (measured on this CPU; GPUs are where they pay off).

Usage: python bench/training.py [--steps 12] [--quality] [--quality_epochs 3] [--variants]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def worker(arch: str, replicas: int, steps: int, batch: int, variants: bool = False) -> dict:
    sys.path.insert(0, str(REPO))
    from semembed.training.strategy import make_strategy

    strategy = make_strategy(cpu_replicas=replicas)
    import keras
    import numpy as np
    import tensorflow as tf

    from semembed.losses import ClassEmbeddingLoss
    from semembed.training.schedules import LearningRateSchedule, ScheduleConfig
    from semembed.training.tasks.embedding import EmbeddingTask
    from semembed.training.trainer import Trainer

    rng = np.random.default_rng(0)
    k, d = 100, 100
    emb = rng.normal(size=(k, d)).astype("float32")
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    n = batch * (steps + 3)
    x = rng.normal(size=(n, 32, 32, 3)).astype("float32")
    y = rng.integers(0, k, size=n).astype("int32")
    task = EmbeddingTask(arch, emb, loss="inv_corr", input_shape=(32, 32, 3))

    def data(epoch, ctx):
        return tf.data.Dataset.from_tensor_slices({"image": x, "label": y}).batch(
            ctx.get_per_replica_batch_size(batch)).prefetch(2)

    out = {}
    # custom loop: 3 warm-up steps (tracing), then timed steps
    sched = LearningRateSchedule(ScheduleConfig(name="SGD", sgd_lr=0.01), steps + 3, 1)
    def custom_loop(**options) -> float:
        trainer = Trainer(EmbeddingTask(arch, emb, loss="inv_corr", input_shape=(32, 32, 3)), strategy, data, None,
                          sched, 3, progress=False, **options)
        trainer.fit(1)
        trainer.steps_per_epoch = steps
        trainer.state.epoch = 0
        t = time.perf_counter()
        trainer.fit(1)
        return steps * batch / (time.perf_counter() - t)

    out["custom_loop"] = custom_loop()
    if variants:
        out["bfloat16"] = custom_loop(mixed_precision="bfloat16")
        out["jit_compile"] = custom_loop(jit_compile=True)

    # model.fit on the same model type, optimizer, loss and data
    with strategy.scope():
        model = task.build_model()
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9, global_clipnorm=10.0),
                      loss=ClassEmbeddingLoss(emb, "inv_corr"))
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).prefetch(2)
    model.fit(ds.take(3), epochs=1, verbose=0)
    t = time.perf_counter()
    model.fit(ds.skip(3).take(steps), epochs=1, verbose=0)
    out["model_fit"] = steps * batch / (time.perf_counter() - t)
    return out


def quality(epochs: int, steps: int | None, seeds: list[int], compare_baseline: bool = True) -> None:
    """Our loop vs plain ``model.fit`` on the same layers and pipeline, and vs the softmax baseline.

    Fashion-MNIST, our clothing taxonomy's ``unitsphere`` embeddings, ``simple-tiny``, batch 128,
    SGD (momentum 0.9, global-norm clip 10) with per-step cosine decay from 0.05 to 0, the dataset's
    augmentation; ``inv_corr`` + 0.1 x the head's cross-entropy.  Prints the test accuracy of the
    nearest class embedding and of the head for both loops, and the softmax baseline's.
    """
    sys.path.insert(0, str(REPO))
    import tempfile

    import keras
    import numpy as np
    import tensorflow as tf

    from semembed.class_embeddings import compute_class_embedding, save_class_embedding
    from semembed.data import get_dataset
    from semembed.losses import ClassEmbeddingLoss
    from semembed.taxonomy import load_hierarchy
    from semembed.training.config import TrainConfig
    from semembed.training.run import train
    from semembed.training.schedules import ScheduleConfig
    from semembed.training.tasks.embedding import EmbeddingTask

    emb, _ = compute_class_embedding(load_hierarchy(REPO / "hierarchies/fashion_mnist/fashion_mnist.parent-child.txt"))
    table = emb.embedding.astype("float32")
    from semembed.taxonomy import ClassPairs

    hierarchy = load_hierarchy(REPO / "hierarchies/fashion_mnist/fashion_mnist.parent-child.txt")
    heights = ClassPairs(hierarchy, list(emb.ind2label)).lcs_heights()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/fashion.npz"
        save_class_embedding(emb, path)
        for seed in seeds:
            common = dict(dataset="fashion-mnist", architecture="simple-tiny", epochs=epochs, batch_size=128, seed=seed,
                          schedule=ScheduleConfig(name="cosine", cosine_max_lr=0.05), no_progress=True,
                          max_steps_per_epoch=steps)
            t = time.perf_counter()
            run = train(TrainConfig(task="embedding", embedding=path, cls_weight=0.1, **common))
            ours = run.final
            t_ours = time.perf_counter() - t
            pred = (run.features @ table.T).argmax(1)
            wrong = pred != run.test_labels
            sibling = heights[run.test_labels[wrong], pred[wrong]] == 1
            print(f"quality seed {seed}: nearest-embedding errors {wrong.sum()}, of which {sibling.mean():.1%} between "
                  f"siblings (LCA height 1); the head's errors {(run.probabilities.argmax(1) != run.test_labels).sum()}",
                  flush=True)
            if compare_baseline:
                demo = train(TrainConfig(task="embedding", embedding=path, cls_weight=0.1, cls_lr_multiplier=10.0,
                                         **common)).final
                base = train(TrainConfig(task="classifier", embedding="onehot", **common)).final
            else:  # bench/demo_recipes.py trains these two with the same settings
                nan = float("nan")
                demo, base = {"accuracy": nan, "prob_accuracy": nan}, {"accuracy": nan}

            # model.fit: the same layers, loss, optimizer, schedule and tf.data pipeline
            keras.utils.set_random_seed(seed)
            ds = get_dataset("fashion-mnist", classes=list(emb.ind2label))
            n_steps = min(ds.steps_per_epoch(128), steps or 10**9)
            model = EmbeddingTask("simple-tiny", table, cls_weight=0.1, input_shape=ds.image_shape).build_model()
            lr = keras.optimizers.schedules.CosineDecay(0.05, decay_steps=epochs * n_steps)
            model.compile(optimizer=keras.optimizers.SGD(lr, momentum=0.9, global_clipnorm=10.0),
                          loss=[ClassEmbeddingLoss(table, "inv_corr"), keras.losses.SparseCategoricalCrossentropy()],
                          loss_weights=[1.0, 0.1])
            data = None
            for e in range(epochs):
                part = ds.train_dataset(128, epoch=e, seed=seed).take(n_steps).map(lambda x, y: (x, (y, y)))
                data = part if data is None else data.concatenate(part)
            t = time.perf_counter()
            model.fit(data, epochs=1, verbose=0)
            t_fit = time.perf_counter() - t
            feats, probs = model.predict(ds.test_dataset(512).map(lambda x, y: x), verbose=0)
            y = np.asarray(ds.test_labels)
            fit_nearest = float(((feats @ table.T).argmax(1) == y).mean())
            fit_head = float((probs.argmax(1) == y).mean())
            rows.append((ours["accuracy"], ours["prob_accuracy"], fit_nearest, fit_head, demo["accuracy"],
                         demo["prob_accuracy"], base["accuracy"]))
            print(f"quality seed {seed}: our loop nearest {ours['accuracy']:.4f} head {ours['prob_accuracy']:.4f} "
                  f"({t_ours:.0f} s) | model.fit nearest {fit_nearest:.4f} head {fit_head:.4f} ({t_fit:.0f} s) | "
                  f"head at 10x lr nearest {demo['accuracy']:.4f} head {demo['prob_accuracy']:.4f} | "
                  f"softmax baseline {base['accuracy']:.4f}", flush=True)
    m = np.mean(rows, axis=0)
    print(f"quality mean of seeds {seeds}: our loop nearest {m[0]:.4f} head {m[1]:.4f} | model.fit nearest {m[2]:.4f} "
          f"head {m[3]:.4f} | head at 10x lr nearest {m[4]:.4f} head {m[5]:.4f} | softmax baseline {m[6]:.4f}")
    print(f"quality: our loop vs model.fit (head) {100 * (m[1] - m[3]):+.2f} points "
          f"({'within' if abs(m[1] - m[3]) <= 0.005 else 'NOT within'} 0.5); semantic head (10x lr) vs softmax "
          f"baseline {100 * (m[5] - m[6]):+.2f} points ({'within' if m[5] >= m[6] - 0.005 else 'NOT within'} 0.5)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=12, help="timed steps per configuration")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--archs", nargs="*", default=["simple", "resnet-110-wfc"], help="(none: skip the throughput part)")
    ap.add_argument("--quality", action="store_true", help="also run the Fashion-MNIST quality comparison")
    ap.add_argument("--quality_epochs", type=int, default=3)
    ap.add_argument("--quality_seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--quality_no_baseline", action="store_true",
                    help="only our loop vs model.fit (bench/demo_recipes.py trains the head at 10x and the baseline)")
    ap.add_argument("--quality_steps", type=int, default=0, help="cap on steps per epoch (0: full epochs)")
    ap.add_argument("--variants", action="store_true", help="also time bfloat16 and XLA (1 replica)")
    ap.add_argument("--worker", nargs=2, metavar=("ARCH", "REPLICAS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.steps, args.batch, args.variants)))
        return
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    for arch in args.archs:
        for replicas in (1, 2):
            variants = ["--variants"] if args.variants and replicas == 1 else []
            r = subprocess.run([sys.executable, __file__, "--worker", arch, str(replicas), "--steps", str(args.steps),
                                "--batch", str(args.batch), *variants], capture_output=True, text=True, env=env, check=True)
            res = json.loads(r.stdout.strip().splitlines()[-1])
            print(f"{arch:15s} 32x32 batch {args.batch}, {replicas} replica(s): custom loop {res['custom_loop']:7.1f} img/s, "
                  f"model.fit {res['model_fit']:7.1f} img/s, ratio {res['custom_loop'] / res['model_fit']:.2f}")
            for name in ("bfloat16", "jit_compile"):
                if name in res:
                    print(f"{arch:15s} 32x32 batch {args.batch}, 1 replica, {name:11s}: {res[name]:7.1f} img/s, "
                          f"ratio to float32 without XLA {res[name] / res['custom_loop']:.2f}")
    if args.quality:
        quality(args.quality_epochs, args.quality_steps or None, args.quality_seeds, not args.quality_no_baseline)


if __name__ == "__main__":
    main()
