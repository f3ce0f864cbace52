"""NABirds and CUB-200-2011: ``images.txt``, ``image_class_labels.txt``, ``train_test_split[_N].txt``."""

from __future__ import annotations

import os

import numpy as np

from semembed.data.files import FileLists
from semembed.data.layouts.common import map_labels, parse_int, read_pairs
from semembed.errors import SemembedError


def read_nab(root: str, classes: list[int] | None, split_file: str = "train_test_split.txt",
             img_dir: str = "images") -> FileLists:
    """Files in ``images.txt`` order; split flag ``0`` = test, anything else = train.

    Images missing from the split file are dropped; classes are the sorted
    integer ids of the label file (or ``classes`` in the given order); images of
    other classes are dropped.
    """
    split_path = os.path.join(root, split_file)
    is_train = {k: v != "0" for k, v in read_pairs(split_path, "train/test split file")}
    label_path = os.path.join(root, "image_class_labels.txt")
    img_labels = {k: parse_int(v, label_path, "class id") for k, v in read_pairs(label_path, "class label file")}
    if classes is None:
        classes = sorted(set(img_labels.values()))
    class_indices = {c: i for i, c in enumerate(classes)}
    list_path = os.path.join(root, "images.txt")
    entries = [(k, v) for k, v in read_pairs(list_path, "image list") if k in is_train]
    missing = [k for k, _ in entries if k not in img_labels]
    if missing:
        raise SemembedError(f"{label_path}: no class label for image id {missing[0]!r} listed in {list_path}")
    ids = [k for k, _ in entries]
    labels = map_labels([img_labels[k] for k in ids], class_indices)
    train = np.array([is_train[k] for k in ids], dtype=bool)
    paths = np.array([os.path.join(root, img_dir, v) for _, v in entries], dtype=object)
    keep = labels >= 0
    tr, te = keep & train, keep & ~train
    return FileLists(list(classes), paths[tr].tolist(), labels[tr].tolist(), paths[te].tolist(), labels[te].tolist())
