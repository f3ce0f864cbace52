#!/usr/bin/env python3
"""Images per second of semembed's training input pipeline (decode + augment + batch) vs. model consumption.

Usage:
    python bench/input_pipeline.py                       # Fashion-MNIST, CIFAR-style arrays, 32-px and 224-px JPEG folders
    python bench/input_pipeline.py --target_size 32 --crop_size 32 --no_models   # the same; sizes of the 32-px folder
    python bench/input_pipeline.py --dataset NAB --data_root /data/nabirds [--target_size N --crop_size N]
    python bench/input_pipeline.py --no_models           # skip the Plain-11 / ResNet-50 step timing
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402


def pipeline_rate(ds, batch_size: int, seconds: float) -> tuple[float, int]:
    """Images/s of ``ds.train_dataset`` over successive epochs after one warm-up batch."""
    reps = max(1, -(-4000 // max(ds.num_train, 1)))  # small folders: repeat so pipeline set-up is amortised
    n, epoch = 0, 0
    it = iter(ds.train_dataset(batch_size, epoch=epoch, seed=0, repeats=reps))
    next(it)
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        try:
            x, _ = next(it)
        except StopIteration:
            epoch += 1
            it = iter(ds.train_dataset(batch_size, epoch=epoch, seed=0, repeats=reps))
            continue
        n += int(x.shape[0])
    return n / (time.perf_counter() - start), n


def make_jpeg_folder(root: str, count: int, rng: np.random.Generator, size: int = 224, classes: int = 4) -> None:
    """``count`` JPEGs of ``size`` px (shorter side; 4:3) with photo-like smooth content, in ``classes`` classes."""
    from PIL import Image

    yy, xx = np.mgrid[0:size, 0:round(size * 4 / 3)] * (224 / size)
    for split, n in (("train", count), ("test", 8)):
        for i in range(n):
            d = os.path.join(root, split, f"class{i % classes}")
            os.makedirs(d, exist_ok=True)
            ph = rng.uniform(0, 6, size=3)
            img = np.stack([127 + 100 * np.sin(xx / 17 + ph[0]), 127 + 100 * np.cos(yy / 13 + ph[1]),
                            127 + 100 * np.sin((xx + yy) / 23 + ph[2])], -1)
            img += rng.normal(0, 12, size=img.shape)
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(os.path.join(d, f"{i}.jpg"), quality=90)


def model_rate(arch: str, batch_size: int, steps: int) -> float:
    """Images/s of a Keras training step (SGD, cosine-style loss on L2-normalised output) on this machine."""
    import keras

    if arch == "plain11":  # Plain-11 of the reference (B.3): conv-ReLU-BN, avg pools, GAP, fc512, embedding
        shape = (32, 32, 3)
        layers = [keras.Input(shape)]
        for item in [64, 64, "ap", 128, 128, 128, "ap", 256, 256, 256, "ap", 512]:
            layers += ([keras.layers.AveragePooling2D(2)] if item == "ap" else
                       [keras.layers.Conv2D(item, 3, padding="same", activation="relu"), keras.layers.BatchNormalization()])
        layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(512, activation="relu"),
                   keras.layers.BatchNormalization(), keras.layers.Dense(100)]
        model = keras.Sequential(layers)
    else:
        shape = (224, 224, 3)
        base = keras.applications.ResNet50(include_top=False, weights=None, input_shape=shape)
        model = keras.Sequential([base, keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(100)])
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="cosine_similarity")
    x = np.random.default_rng(0).normal(size=(batch_size,) + shape).astype(np.float32)
    y = np.random.default_rng(1).normal(size=(batch_size, 100)).astype(np.float32)
    model.train_on_batch(x, y)  # compile/warm-up
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * batch_size / (time.perf_counter() - start)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", help="dataset name for get_dataset (default: the three built-in cases)")
    p.add_argument("--data_root", help="dataset root directory")
    p.add_argument("--batch_size", type=int, default=None, help="batch size (default 128 for arrays, 32 for files)")
    p.add_argument("--seconds", type=float, default=8.0, help="measuring time per pipeline")
    p.add_argument("--jpeg_count", type=int, default=128, help="generated 224-px JPEGs in the image-folder case")
    p.add_argument("--small_count", type=int, default=2000, help="generated 32-px JPEGs (10 classes) in the small-folder case")
    p.add_argument("--target_size", type=int, default=None,
                   help="shorter side before cropping: of --dataset, else of the 32-px folder (default there: 32)")
    p.add_argument("--crop_size", type=int, default=None,
                   help="crop size: of --dataset, else of the 32-px folder (default there: 32)")
    p.add_argument("--no_models", action="store_true", help="do not time the Plain-11 / ResNet-50 steps")
    args = p.parse_args()

    import tensorflow as tf

    from semembed.data import ArrayDataset, get_dataset

    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPU cores visible")
    results = []
    if args.dataset:
        ds = get_dataset(args.dataset, args.data_root, target_size=args.target_size, crop_size=args.crop_size)
        bs = args.batch_size or (128 if isinstance(ds, ArrayDataset) else 32)
        results.append((args.dataset, ds.image_shape, bs, *pipeline_rate(ds, bs, args.seconds)))
    else:
        fm = get_dataset("fashion-mnist", args.data_root) if args.data_root else get_dataset(*_default())
        results.append((fm.name, fm.image_shape, args.batch_size or 128, *pipeline_rate(fm, args.batch_size or 128, args.seconds)))
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, size=(20000, 32, 32, 3), dtype=np.uint8)
        y = np.arange(20000) % 100
        cifar = ArrayDataset("cifar-style 32x32 (flip+shift, as CIFAR-100)", x, y, x[:100], y[:100],
                             list(range(100)), hflip=True, shift=0.15)
        results.append((cifar.name, cifar.image_shape, args.batch_size or 128,
                        *pipeline_rate(cifar, args.batch_size or 128, args.seconds)))
        target = args.target_size or 32
        crop = args.crop_size or min(32, target)
        with tempfile.TemporaryDirectory() as tmp:
            make_jpeg_folder(tmp, args.small_count, rng, size=32, classes=10)
            small = get_dataset("imagefolder", tmp, target_size=target, crop_size=crop)
            bs = args.batch_size or 128
            results.append((f"image folder, {args.small_count} 32-px JPEGs (target {target}, crop {crop}, flip)",
                            small.image_shape, bs, *pipeline_rate(small, bs, args.seconds)))
        with tempfile.TemporaryDirectory() as tmp:
            make_jpeg_folder(tmp, args.jpeg_count, rng)
            folder = get_dataset("imagefolder", tmp, randzoom_range=(256, 480), randerase_prob=0.5)
            results.append(("image folder, 224-px JPEGs (zoom 256-480, crop 224, flip, erase)", folder.image_shape,
                            args.batch_size or 32, *pipeline_rate(folder, args.batch_size or 32, args.seconds)))

    print("\npipeline                                                            input          batch   images/s")
    for name, shape, bs, rate, _ in results:
        print(f"{name:<68}{str(shape):<15}{bs:>5}{rate:>11.0f}")
    if not args.dataset:
        small_rate, big_rate = results[-2][3], results[-1][3]
        print(f"\nimage folder read at {results[-2][1][0]} px: {small_rate:.0f} images/s, "
              f"{small_rate / big_rate:.1f}x the 224-px path ({big_rate:.0f} images/s)")

    if not args.no_models:
        plain = model_rate("plain11", 100, 5)
        resnet = model_rate("resnet50", 8, 2)
        print(f"\nconsumption (Keras train step on this CPU): Plain-11 32x32 batch 100: {plain:.0f} img/s; "
              f"ResNet-50 224x224 batch 8: {resnet:.1f} img/s")
        for name, shape, _, rate, _ in results:
            need = plain if shape[0] <= 64 else resnet
            which = "Plain-11" if shape[0] <= 64 else "ResNet-50"
            print(f"  {name[:50]:<50} pipeline/{which} = {rate / need:.1f}x")
    return 0


def _default():
    from semembed.data import default_dataset

    return default_dataset()


if __name__ == "__main__":
    sys.exit(main())
