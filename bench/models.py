#!/usr/bin/env python3
"""Forward / training-step throughput of the reference architectures on this machine's CPU.

Measures images/s at batch 32 for Plain-11, ResNet-110-wfc and WRN-28-10 (32×32) and ResNet-50
(224×224), with and without XLA (``jit_compile``), and the achieved FLOP rate as a fraction of
the dense float32 matmul peak measured in the same run. FLOPs are counted analytically from the
conv/dense layer shapes (2 per multiply-add; a training step is counted as 3× the forward pass).

    python bench/models.py                 # all four models, ≈ 7 min on a busy 2-core machine
    python bench/models.py --models simple --steps 3
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from semembed.models import build_network  # noqa: E402

MODELS = {"simple": 32, "resnet-110-wfc": 32, "wrn-28-10": 32, "resnet-50": 224}


def forward_flops(model: keras.Model) -> float:
    """FLOPs of one image's forward pass through the conv and dense layers (2 per multiply-add)."""
    total = 0.0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, cout = layer.output.shape
            kh, kw = layer.kernel_size
            cin = layer.kernel.shape[2]
            total += 2.0 * h * w * kh * kw * cin * cout
        elif isinstance(layer, keras.layers.Dense):
            total += 2.0 * layer.kernel.shape[0] * layer.kernel.shape[1]
    return total


def matmul_peak(n: int = 2048, reps: int = 8) -> float:
    """Best dense float32 matmul FLOP/s (n×n) over NumPy and the backend (eager and XLA)."""
    a = np.random.rand(n, n).astype("float32")
    b = np.random.rand(n, n).astype("float32")
    candidates = [("numpy", np.matmul, a, b)]
    ta, tb = keras.ops.convert_to_tensor(a), keras.ops.convert_to_tensor(b)
    candidates.append(("backend", keras.ops.matmul, ta, tb))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        candidates.append(("xla", tf.function(tf.matmul, jit_compile=True), ta, tb))
    best = 0.0
    for _, fn, x, y in candidates:
        keras.ops.convert_to_numpy(fn(x, y))
        for _ in range(reps):
            t = time.perf_counter()
            keras.ops.convert_to_numpy(fn(x, y))
            best = max(best, 2.0 * n**3 / (time.perf_counter() - t))
    return best


def time_steps(fn, steps: int) -> float:
    fn()  # warm-up (tracing / XLA compilation)
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t) / steps


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS), help="architectures to time")
    parser.add_argument("--batch_size", type=int, default=32, help="images per step")
    parser.add_argument("--steps", type=int, default=1, help="timed steps per measurement (after one warm-up step)")
    args = parser.parse_args(argv)

    peak = matmul_peak()
    print(f"backend={keras.backend.backend()} cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f} matmul peak (2048², fp32, best of numpy/eager/XLA): {peak / 1e9:.1f} GFLOP/s")
    print(f"{'model':<16}{'size':>5}{'GFLOP/img':>10}  {'mode':<8}{'xla':<5}{'img/s':>8}{'GFLOP/s':>9}{'of peak':>9}")
    rng = np.random.default_rng(0)
    for arch in args.models:
        size = MODELS[arch]
        model = build_network(100, arch, input_shape=(size, size, 3))
        flops = forward_flops(model)
        x = rng.random((args.batch_size, size, size, 3), dtype=np.float32)
        y = rng.random((args.batch_size, 100), dtype=np.float32)
        for jit in (False, True):
            model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="mse", jit_compile=jit)
            for mode, fn, factor in (
                ("forward", lambda: model.predict_on_batch(x), 1.0),
                ("train", lambda: model.train_on_batch(x, y), 3.0),
            ):
                seconds = time_steps(fn, args.steps)
                rate = factor * flops * args.batch_size / seconds
                print(
                    f"{arch:<16}{size:>5}{flops / 1e9:>10.2f}  {mode:<8}{'yes' if jit else 'no':<5}"
                    f"{args.batch_size / seconds:>8.1f}{rate / 1e9:>9.1f}{rate / peak:>9.1%}",
                    flush=True,
                )
        del model
        keras.backend.clear_session()
    return 0


if __name__ == "__main__":
    sys.exit(main())
