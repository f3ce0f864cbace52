"""Writers of tiny fake copies of each reference on-disk layout (file names and formats as the reference reads them)."""

from __future__ import annotations

import gzip
import json
import pickle
from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, rng: np.random.Generator, size=(10, 12), fmt: str | None = None) -> np.ndarray:
    """Write a random RGB image of (width, height) ``size``; return its pixels as stored (PNG: exact)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=fmt or ("PNG" if path.suffix.lower() == ".png" else "JPEG"), quality=95)
    return np.asarray(Image.open(path).convert("RGB"))


def make_nab(root: Path, rng, split_files=("train_test_split.txt",)) -> dict:
    """NAB/CUB layout: 6 images of classes 7, 3, 12 (ids as strings, one image missing from the split)."""
    entries = [("1", "007.a/img1.jpg", 7, "1"), ("2", "003.b/img2.jpg", 3, "0"), ("3", "012.c/img3.jpg", 12, "1"),
               ("4", "007.a/img4.jpg", 7, "0"), ("5", "003.b/img5.jpg", 3, "1"), ("6", "012.c/img6.jpg", 12, None)]
    for _, rel, _, _ in entries:
        write_image(root / "images" / rel, rng)
    (root / "images.txt").write_text("".join(f"{i} {rel}\n" for i, rel, _, _ in entries) + "\n")
    (root / "image_class_labels.txt").write_text("".join(f"{i} {c}\n" for i, _, c, _ in entries))
    for name in split_files:
        (root / name).write_text("".join(f"{i} {f}\n\n" for i, _, _, f in entries if f is not None))
    return {"entries": entries}


def make_cifar(root: Path, rng, cifar10: bool, n_per_file: int = 12, bytes_keys: bool = True) -> dict:
    """CIFAR python pickles (protocol 2, bytes or str keys, like the released files)."""
    root.mkdir(parents=True, exist_ok=True)
    key = "labels" if cifar10 else "fine_labels"
    n_classes = 10 if cifar10 else 100
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"] if cifar10 else ["train", "test"]
    out = {}
    for name in names:
        data = rng.integers(0, 256, size=(n_per_file, 3072), dtype=np.uint8)
        labels = rng.integers(0, n_classes, size=n_per_file).tolist()
        k = (lambda s: s.encode()) if bytes_keys else (lambda s: s)
        with open(root / name, "wb") as f:
            pickle.dump({k("data"): data, k(key): labels, k("batch_label"): b"x"}, f, protocol=2)
        out[name] = (data, labels)
    return out


def make_fashion(root: Path, rng, n_train=20, n_test=8, gz=True) -> dict:
    """Fashion-MNIST IDX files (magic 2051 images / 2049 labels, big-endian dims)."""
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, size=n, dtype=np.uint8)
        img = np.array([2051, n, 28, 28], dtype=">i4").tobytes() + x.tobytes()
        lab = np.array([2049, n], dtype=">i4").tobytes() + y.tobytes()
        for name, blob in ((f"{prefix}-images-idx3-ubyte", img), (f"{prefix}-labels-idx1-ubyte", lab)):
            if gz:
                with gzip.open(root / (name + ".gz"), "wb") as f:
                    f.write(blob)
            else:
                (root / name).write_bytes(blob)
        out[prefix] = (x, y)
    return out


def make_inat(root: Path, rng, year: str = "2018") -> dict:
    """iNat JSON files: categories 5 (Aves), 2 (Insecta), 9 (Aves); annotations out of id order."""
    cats = [{"id": 5, "name": "Sparrow", "supercategory": "Aves"},
            {"id": 2, "name": "Beetle", "supercategory": "Insecta"},
            {"id": 9, "name": "Crow", "supercategory": "Aves"}]
    out = {}
    for split, anns in (("train", [(11, 9), (12, 2), (13, 5), (14, 9)]), ("val", [(21, 5), (22, 2), (23, 9)])):
        images = []
        for img_id, _ in anns:
            rel = f"{split}_val_images/{img_id}.jpg"
            write_image(root / rel, rng)
            images.append({"id": img_id, "file_name": rel})
        data = {"images": images, "categories": cats,
                "annotations": [{"id": 100 + i, "image_id": a, "category_id": c} for i, (a, c) in enumerate(anns)]}
        (root / f"{split}{year}.json").write_text(json.dumps(data))
        out[split] = anns
    return out


def make_subdirectory(root: Path, rng, img_dir=".", train_list="train.txt", test_list="test.txt") -> None:
    """Per-class folders (incl. a hidden one) plus list files; one listed class is not a folder."""
    base = root / img_dir
    for cls in ("beach", "airport", "forest"):
        for i in range(3):
            write_image(base / cls / f"{cls}_{i}.jpg", rng)
    (base / ".hidden").mkdir(parents=True)
    (root / train_list).write_text("forest/forest_0.jpg\nbeach/beach_0.jpg\n\nairport/airport_1.jpg\nforest/forest_2.jpg\n"
                                   "unknown/x.jpg\n")
    (root / test_list).write_text("airport/airport_0.jpg\nbeach/beach_2.jpg\n")


def make_inshop(root: Path, rng, train=(1, 3, 5), test=(2, 4), n_train=6, n_query=2, n_gallery=6, size=(36, 36)) -> list:
    """In-Shop release layout: ``Eval/list_eval_partition.txt`` and ``img/<item>/<n>.jpg``; returns its rows.

    Rows are interleaved by status as in the real list (query, gallery and train rows mixed), each
    item's images share a base colour so that a network can learn them.
    """
    rows = []
    for item in sorted((*train, *test)):
        base = rng.integers(0, 255, size=(*size, 3))
        counts = [("train", n_train)] if item in train else [("query", n_query), ("gallery", n_gallery)]
        for status, n in counts:
            for i in range(n):
                name = f"img/WOMEN/Dresses/id_{item:08d}/{status}_{i:02d}.jpg"
                img = np.clip(base + rng.normal(0, 15, size=base.shape), 0, 255).astype(np.uint8)
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(img).save(root / name, format="JPEG")
                rows.append((name, f"id_{item:08d}", status))
    order = rng.permutation(len(rows))
    rows = [rows[i] for i in order]
    (root / "Eval").mkdir(exist_ok=True)
    text = [str(len(rows)), "image_name item_id evaluation_status"] + [" ".join(r) for r in rows]
    (root / "Eval" / "list_eval_partition.txt").write_text("\n".join(text) + "\n")
    return rows
