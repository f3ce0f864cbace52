#!/usr/bin/env python3
"""The README's AVSL explanation figure: train AVSL on the Fashion-MNIST zero-shot split, explain a test pair.

Runs the programs as a user would (subprocesses): ``semembed learn_metric --method avsl`` on classes 0-4
(``simple-tiny``, D = 64, top-k 16, Adam 1e-3, P = 5 x K = 16, 300 steps: ``bench/metric_learning.py``'s
setting), then ``semembed explain`` on two test images of unseen classes (default: a sneaker and an ankle
boot, both "shoes" in our taxonomy).  Writes ``docs/images/avsl_explain.png`` and prints explain's output.

Usage: flock /tmp/semembed-heavy.lock python bench/avsl_explain.py [--pair 7 9] [--out docs/images/avsl_explain.png]
       [--reuse]  (the trained model is kept in runs/avsl_explain/)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def semembed(*args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    r = subprocess.run([sys.executable, "-m", "semembed", *args], capture_output=True, text=True, env=env, cwd=REPO)
    if r.returncode:
        sys.exit(f"semembed {args[0]} failed:\n{r.stderr[-3000:]}")
    return r.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pair", type=int, nargs=2, default=[7, 9], help="Fashion-MNIST classes of the two test images")
    ap.add_argument("--out", default=str(REPO / "docs" / "images" / "avsl_explain.png"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reuse", action="store_true", help="use runs/avsl_explain/avsl_s<seed>.keras if it exists")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    import numpy as np
    from PIL import Image

    from semembed.data import default_dataset
    from semembed.data.layouts.memory import load_fashion_mnist

    name, root = default_dataset()
    if name != "fashion-mnist":
        sys.exit("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist); this figure needs it")
    with tempfile.TemporaryDirectory() as tmp:
        model = str(REPO / "runs" / "avsl_explain" / f"avsl_s{args.seed}.keras")  # kept: --reuse redraws only
        if not (args.reuse and os.path.exists(model)):
            os.makedirs(os.path.dirname(model), exist_ok=True)
            semembed("learn_metric", "--method", "avsl", "--dataset", "fashion-mnist", "--train_classes", "0-4",
                     "--test_classes", "5-9", "--architecture", "simple-tiny", "--embeddings_dim", "64",
                     "--topk_corr", "16", "--optimizer", "adam", "--sgd_lr", "1e-3", "--lr_schedule", "SGD",
                     "--classes_per_batch", "5", "--images_per_class", "16", "--epochs", "3",
                     "--max_steps_per_epoch", "100", "--seed", str(args.seed), "--no_progress", "--model_dump", model,
                     "--overwrite")
        _, _, images, labels = load_fashion_mnist(root)  # the raw 28 x 28 uint8 test images
        paths = []
        for c in args.pair:
            i = int(np.flatnonzero(np.asarray(labels) == c)[0])
            p = os.path.join(tmp, f"class{c}.png")
            Image.fromarray(np.asarray(images[i]).reshape(28, 28).astype(np.uint8)).save(p)
            paths.append(p)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        print(semembed("explain", "--model", model, "--images", *paths, "--out", args.out, "--overwrite"))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
