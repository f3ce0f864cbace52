"""Class-disjoint (zero-shot) splits of any dataset: ``--train_classes`` / ``--test_classes`` (METRIC_LEARNING.md §11).

:func:`restrict_classes` keeps the training images of the training classes and
the test images of the test classes.  Labels are renumbered: the training
classes become 0..n_train−1 (in the order given; proxies and class-balanced
sampling need contiguous labels), the test classes follow (a class in both
lists keeps one label).  Images are read through the wrapped dataset, so its
normalisation and augmentation are unchanged.

Class lists are written as on the command line: comma-separated class ids of
the dataset (``ds.classes``, compared as strings), integer ranges ``a-b``
inclusive: ``0-4``, ``5,7,9``, ``001.Black_footed_Albatross,002.Laysan_Albatross``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from semembed.data.base import ImageDataset
from semembed.errors import SemembedError


def parse_class_list(text: str, known: Sequence[Any], flag: str) -> list[Any]:
    """The classes of ``known`` that ``text`` names (see the module docstring), in the order written."""
    by_name = {str(c): c for c in known}
    out: list[Any] = []
    for item in (t.strip() for t in str(text).split(",")):
        if not item:
            continue
        names = [item]
        if item not in by_name and "-" in item.strip("-"):
            a, _, b = item.partition("-")
            try:
                lo, hi = int(a), int(b)
            except ValueError:
                raise SemembedError(f"{flag}: {item!r} is neither a class of the dataset nor a range a-b of "
                                    "integer class ids") from None
            if lo > hi:
                raise SemembedError(f"{flag}: empty range {item!r}")
            names = [str(v) for v in range(lo, hi + 1)]
        for name in names:
            if name not in by_name:
                sample = ", ".join(map(str, list(known)[:8]))
                raise SemembedError(f"{flag}: the dataset has no class {name!r} (its classes: {sample}"
                                    f"{', ...' if len(known) > 8 else ''})")
            if by_name[name] in out:
                raise SemembedError(f"{flag}: class {name!r} is listed twice")
            out.append(by_name[name])
    if not out:
        raise SemembedError(f"{flag}: no class given")
    return out


class ClassSplitDataset(ImageDataset):
    """``inner`` restricted to training images of ``train_classes`` and test images of ``test_classes``."""

    def __init__(self, inner: ImageDataset, train_classes: Sequence[Any], test_classes: Sequence[Any]):
        classes = list(train_classes) + [c for c in test_classes if c not in set(train_classes)]
        new_label = {inner.class_indices[c]: i for i, c in enumerate(classes)}
        lut = np.full(inner.num_classes, -1, np.int64)
        for old, new in new_label.items():
            lut[old] = new
        train_keep = np.isin(inner.train_labels, [inner.class_indices[c] for c in train_classes])
        test_keep = np.isin(inner.test_labels, [inner.class_indices[c] for c in test_classes])
        self.train_index = np.flatnonzero(train_keep)
        self.test_index = np.flatnonzero(test_keep)
        for split, idx, names in (("training", self.train_index, train_classes), ("test", self.test_index, test_classes)):
            if len(idx) == 0:
                raise SemembedError(f"dataset {inner.name}: no {split} image belongs to the classes "
                                    f"{', '.join(map(str, names))}")
        super().__init__(inner.name, classes, lut[inner.train_labels[self.train_index]],
                         lut[inner.test_labels[self.test_index]], inner.image_shape, inner.mean, inner.std,
                         train_repeats=inner.train_repeats)
        self.inner = inner
        self.num_train_classes = len(train_classes)

    def _source(self, split, cache):
        load, needs_filter = self.inner._source(split, cache)
        index = tf.constant(self.train_index if split == "train" else self.test_index, tf.int64)
        return (lambda i: load(tf.gather(index, i))), needs_filter

    def _preprocess(self, image, seed, augment):
        return self.inner._preprocess(image, seed, augment)


def restrict_classes(ds: ImageDataset, train_classes: str | None, test_classes: str | None) -> ImageDataset:
    """``ds`` split by class (``--train_classes`` / ``--test_classes``; either alone: the other split unchanged)."""
    if not train_classes and not test_classes:
        return ds
    train = parse_class_list(train_classes, ds.classes, "--train_classes") if train_classes else list(ds.classes)
    test = parse_class_list(test_classes, ds.classes, "--test_classes") if test_classes else list(ds.classes)
    return ClassSplitDataset(ds, train, test)
