"""In-memory datasets (CIFAR, Fashion-MNIST, digits): Keras-style affine augmentation.

As the reference's ``TinyDatasetGenerator``: training images get a random
horizontal flip and shift (and, for CIFAR-10, zoom) with "nearest" fill, then
every image is standardised with the mean and std fitted on the training array
(per channel over all pixels, population std, plus Keras' epsilon).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from semembed.data import augment as aug
from semembed.data.base import ImageDataset
from semembed.data.constants import FIT_EPSILON


def fit_mean_std(images: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and population std over all pixels of an NHWC array (float64 accumulation)."""
    c = images.shape[-1]
    n = 0
    s = np.zeros(c)
    s2 = np.zeros(c)
    for start in range(0, len(images), chunk):  # chunks of images keep memory flat on 50k×3072 arrays
        block = images[start:start + chunk].reshape(-1, c).astype(np.float64)
        n += len(block)
        s += block.sum(axis=0)
        s2 += np.square(block).sum(axis=0)
    mean = s / max(n, 1)
    var = np.maximum(s2 / max(n, 1) - mean ** 2, 0.0)
    return mean.astype(np.float32), np.sqrt(var).astype(np.float32)


class ArrayDataset(ImageDataset):
    """A dataset whose images are NHWC arrays in memory (pixel values 0-255)."""

    def __init__(
        self,
        name: str,
        x_train: np.ndarray,
        y_train: np.ndarray,
        x_test: np.ndarray,
        y_test: np.ndarray,
        classes: Sequence[Any],
        *,
        class_indices: dict | None = None,
        hflip: bool = True,
        shift: float = 0.15,
        zoom: float = 0.0,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ):
        if x_train.ndim != 4 or x_test.ndim != 4 or x_train.shape[1:] != x_test.shape[1:]:
            raise ValueError(f"expected NHWC arrays of equal image shape, received x_train.shape={x_train.shape}, "
                             f"x_test.shape={x_test.shape}")
        if mean is None or std is None:
            fitted_mean, fitted_std = fit_mean_std(x_train)
            mean = fitted_mean if mean is None else mean
            std = fitted_std + FIT_EPSILON if std is None else std
        super().__init__(name, classes, y_train, y_test, x_train.shape[1:], mean, std, class_indices=class_indices)
        self.x_train = x_train
        self.x_test = x_test
        self.hflip = hflip
        self.shift = float(shift)
        self.zoom = float(zoom)

    def _source(self, split, cache):
        images = tf.convert_to_tensor(self.x_train if split == "train" else self.x_test)
        return (lambda i: tf.gather(images, i)), False

    def _preprocess(self, image, seed, augment):
        image = self._to_channels(tf.cast(image, tf.float32))
        if augment:
            s_flip, s_affine = aug.split_seed(seed, 2)
            image = aug.keras_affine(image, s_affine, shift=self.shift, zoom=self.zoom)
            if self.hflip:
                image = aug.random_hflip(image, s_flip)
        image = aug.normalize(image, tf.constant(self.mean), tf.constant(self.std))
        return tf.ensure_shape(image, self.image_shape)
