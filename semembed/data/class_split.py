"""Class-disjoint (zero-shot) splits of any dataset: ``--train_classes`` / ``--test_classes`` (METRIC_LEARNING.md §11).

:func:`restrict_classes` keeps the training images of the training classes and
the test images of the test classes.  Labels are renumbered: the training
classes become 0..n_train−1 (in the order given; proxies and class-balanced
sampling need contiguous labels), the test classes follow (with one list alone,
a class on both sides keeps one label).  Images are read through the wrapped dataset, so its
normalisation and augmentation are unchanged.

Both lists given must be disjoint (an error names the shared classes); one list alone keeps the other
split's images of every class.  ``pool=True`` takes every image of a class from both splits instead (the
CUB-200-2011 and Cars196 zero-shot protocol: ``--dataset CUB --train_classes 1-100
--test_classes 101-200 --zero_shot_images all``).

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
from semembed.validation import check_disjoint_classes


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
    """``inner`` restricted to training images of ``train_classes`` and test images of ``test_classes``.

    ``pool=True``: every image of a class, from both of ``inner``'s splits (the
    CUB-200-2011 / Cars196 zero-shot protocol: classes 1-100 train, 101-200 test, all images).
    ``train_index``/``test_index``: (split 0 = train / 1 = test of ``inner``, index) rows.
    """

    def __init__(self, inner: ImageDataset, train_classes: Sequence[Any], test_classes: Sequence[Any],
                 pool: bool = False):
        classes = list(train_classes) + [c for c in test_classes if c not in set(train_classes)]
        lut = np.full(inner.num_classes, -1, np.int64)
        for i, c in enumerate(classes):
            lut[inner.class_indices[c]] = i

        def pick(names, splits):
            ids = [inner.class_indices[c] for c in names]
            rows = [np.stack([np.full(int(np.isin(lab, ids).sum()), s), np.flatnonzero(np.isin(lab, ids))], 1)
                    for s, lab in ((0, inner.train_labels), (1, inner.test_labels)) if s in splits]
            return np.concatenate(rows).astype(np.int64)

        self.train_index = pick(train_classes, (0, 1) if pool else (0,))
        self.test_index = pick(test_classes, (0, 1) if pool else (1,))
        for split, idx, names in (("training", self.train_index, train_classes), ("test", self.test_index, test_classes)):
            if len(idx) == 0:
                raise SemembedError(f"dataset {inner.name}: no {split} image belongs to the classes "
                                    f"{', '.join(map(str, names))}")
        super().__init__(inner.name, classes, self._labels(inner, lut, self.train_index),
                         self._labels(inner, lut, self.test_index), inner.image_shape, inner.mean, inner.std,
                         train_repeats=inner.train_repeats)
        self.inner = inner
        self.pool = pool
        if inner.test_is_query is not None:  # query/gallery datasets (In-Shop): keep the roles
            if pool:
                raise SemembedError(f"dataset {inner.name}: --zero_shot_images all would mix its query/gallery "
                                    "test images with training images; use --zero_shot_images split")
            self.test_is_query = inner.test_is_query[self.test_index[:, 1]]
        self.num_train_classes = len(train_classes)

    @staticmethod
    def _labels(inner, lut, rows):
        labels = np.where(rows[:, 0] == 0, inner.train_labels[np.minimum(rows[:, 1], inner.num_train - 1)],
                          inner.test_labels[np.minimum(rows[:, 1], inner.num_test - 1)] if inner.num_test else 0)
        return lut[labels]

    def _source(self, split, cache):
        rows = self.train_index if split == "train" else self.test_index
        which = tf.constant(rows[:, 0], tf.int64)
        index = tf.constant(rows[:, 1], tf.int64)
        used = sorted(set(rows[:, 0].tolist()))
        loads = {s: self.inner._source("train" if s == 0 else "test", cache) for s in used}
        needs_filter = any(f for _, f in loads.values())
        if len(used) == 1:
            load_one = loads[used[0]][0]
            return (lambda i: load_one(tf.gather(index, i))), needs_filter

        def load(i):
            j = tf.gather(index, i)
            return tf.cond(tf.equal(tf.gather(which, i), 0), lambda: loads[0][0](j), lambda: loads[1][0](j))

        return load, needs_filter

    def _preprocess(self, image, seed, augment):
        return self.inner._preprocess(image, seed, augment)

    def set_channels(self, channels):
        self.inner.set_channels(channels)
        self.image_shape, self.mean, self.std = self.inner.image_shape, self.inner.mean, self.inner.std
        return self


def restrict_classes(ds: ImageDataset, train_classes: str | None, test_classes: str | None,
                     pool: bool = False) -> ImageDataset:
    """``ds`` split by class (``--train_classes`` / ``--test_classes``; either alone: the other split unchanged).

    Raises:
        SemembedError: an unknown or repeated class, or both lists given and sharing a class.

    ``pool`` (``--zero_shot_images all``): each side takes every image of its classes from both splits.
    """
    if not train_classes and not test_classes:
        if pool:
            raise SemembedError("--zero_shot_images all needs --train_classes and --test_classes")
        return ds
    train = parse_class_list(train_classes, ds.classes, "--train_classes") if train_classes else list(ds.classes)
    test = parse_class_list(test_classes, ds.classes, "--test_classes") if test_classes else list(ds.classes)
    if pool and set(train) & set(test):
        raise SemembedError("--zero_shot_images all needs disjoint --train_classes and --test_classes "
                            "(a class in both would put the same images in training and test)")
    if train_classes and test_classes:
        check_disjoint_classes(train_classes, test_classes, [c for c in test if c in set(train)])
    return ClassSplitDataset(ds, train, test, pool=pool)
