#!/usr/bin/env python3
"""Benchmark: custom training loop vs. ``model.fit`` (images/s), and a short quality run.

Throughput: Plain-11 and ResNet-110-wfc at 32x32, batch 32, synthetic images,
1 replica and 2 logical CPU replicas (MirroredStrategy), the same model,
optimizer (SGD + momentum), loss (inv_corr on 100-d class embeddings) and data
for both loops.  Target: the custom loop is at least as fast as ``model.fit``.

Quality (``--quality``): the demo's comparison with a larger budget on
Fashion-MNIST — semantic embeddings + head vs. softmax baseline, same epochs;
prints mAHP@250, accuracy and balanced accuracy of both.

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


def quality(epochs: int, steps: int | None) -> None:
    sys.path.insert(0, str(REPO))
    import tempfile

    from semembed.demo import DemoConfig, run_demo

    with tempfile.TemporaryDirectory() as tmp:
        res = run_demo(DemoConfig(out_dir=tmp, epochs=epochs, max_steps_per_epoch=steps, progress=False))
    for label, m in res.items():
        print(f"quality {label}: mAHP@250 {m['AHP@250 (LCS_HEIGHT)']:.4f}, accuracy {m['Accuracy']:.4f}, "
              f"balanced accuracy {m['Avg. Accuracy']:.4f}, mistake severity {m['Mistake Severity']:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=12, help="timed steps per configuration")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--archs", nargs="+", default=["simple", "resnet-110-wfc"])
    ap.add_argument("--quality", action="store_true", help="also run the Fashion-MNIST quality comparison")
    ap.add_argument("--quality_epochs", type=int, default=3)
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
        quality(args.quality_epochs, args.quality_steps or None)


if __name__ == "__main__":
    main()
