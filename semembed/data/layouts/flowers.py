"""Oxford Flowers-102: ``jpg/image_%05d.jpg``, ``imagelabels.mat`` and ``setid.mat``."""

from __future__ import annotations

import os

import numpy as np

from semembed.data.files import FileLists
from semembed.data.layouts.common import map_labels, require_file
from semembed.errors import SemembedError


def read_flowers(root: str, classes: list[int] | None) -> FileLists:
    """Train = ``trnid`` then ``valid``; test = ``tstid`` (1-based image ids, .mat order)."""
    from scipy.io import loadmat

    label_path = require_file(os.path.join(root, "imagelabels.mat"), "Flowers-102 labels")
    split_path = require_file(os.path.join(root, "setid.mat"), "Flowers-102 split")
    try:
        all_labels = np.atleast_1d(loadmat(label_path, squeeze_me=True)["labels"]).astype(np.int64)
        split = loadmat(split_path, squeeze_me=True)
        train_ids = np.concatenate([np.atleast_1d(split["trnid"]), np.atleast_1d(split["valid"])]).astype(np.int64)
        test_ids = np.atleast_1d(split["tstid"]).astype(np.int64)
    except KeyError as exc:
        raise SemembedError(f"Flowers-102: missing variable {exc} in {label_path} or {split_path}") from None
    for ids in (train_ids, test_ids):
        if ids.size and (ids.min() < 1 or ids.max() > len(all_labels)):
            raise SemembedError(f"{split_path}: image ids must lie in 1..{len(all_labels)} (the length of "
                                f"'labels' in {label_path})")
    if classes is None:
        classes = sorted(int(c) for c in np.unique(all_labels))
    class_indices = {c: i for i, c in enumerate(classes)}

    def part(ids):
        labels = map_labels(all_labels[ids - 1], class_indices)
        keep = labels >= 0
        return [os.path.join(root, "jpg", f"image_{i:05d}.jpg") for i in ids[keep]], labels[keep].tolist()

    train_files, train_labels = part(train_ids)
    test_files, test_labels = part(test_ids)
    return FileLists(list(classes), train_files, train_labels, test_files, test_labels)
