"""``ImageDataset``: the interface training and evaluation read images through.

A dataset knows its classes, labels and normalisation; it builds ``tf.data``
pipelines whose order and augmentation are a pure function of (seed, epoch).
Subclasses supply ``_source`` (how to fetch a raw image by index) and
``_preprocess`` (resize/augment/normalise one image).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import tensorflow as tf

from semembed.data.sampling import epoch_order, sample_seeds

AUTOTUNE = tf.data.AUTOTUNE


class ImageDataset:
    """Base class of every dataset; see the module docstring.

    Attributes:
        name: registry name the dataset was created with.
        classes: ordered original class ids (label i is ``classes[i]``).
        class_indices: dict original id -> label.
        train_labels, test_labels: int64 label arrays in file order.
        image_shape: (H, W, C) of the network input.
        mean, std: float32 per-channel normalisation (RGB order).
        train_repeats: passes per training epoch (the reference's ``train_repeats``; CUB-subN).
        test_is_query: None (every test image queries all others), or for query/gallery datasets
            (In-Shop) a bool array over the test images: True = query, False = gallery image.
    """

    test_is_query: np.ndarray | None = None

    def __init__(
        self,
        name: str,
        classes: Sequence[Any],
        train_labels: np.ndarray,
        test_labels: np.ndarray,
        image_shape: tuple[int, int, int],
        mean: Sequence[float],
        std: Sequence[float],
        class_indices: dict | None = None,
        train_repeats: int = 1,
    ):
        self.name = name
        self.classes = list(classes)
        self.class_indices = dict(class_indices) if class_indices is not None else {c: i for i, c in enumerate(self.classes)}
        self.train_labels = np.asarray(train_labels, dtype=np.int64)
        self.test_labels = np.asarray(test_labels, dtype=np.int64)
        self.image_shape = tuple(int(v) for v in image_shape)
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1)
        self.std = np.asarray(std, dtype=np.float32).reshape(-1)
        self.train_repeats = int(train_repeats)
        #: channels of the raw images the subclass reads (``image_shape[-1]`` unless :meth:`set_channels` changed it)
        self.source_channels = self.image_shape[-1]

    def set_channels(self, channels: int | None) -> "ImageDataset":
        """Deliver images with ``channels`` channels (1 or 3; None: unchanged), converting the raw images.

        RGB -> grey by the luma weights of :func:`tf.image.rgb_to_grayscale`, grey -> RGB by repeating the
        channel (:func:`semembed.data.augment.convert_channels`), before normalisation; ``mean``/``std``
        are converted to match (:func:`~semembed.data.augment.channel_stats`).  For a second stream or a
        model trained on images of the other kind (a grey SimNet on an RGB image folder).  Returns self.

        Raises:
            SemembedError: ``channels`` is not 1 or 3.
        """
        if channels is None or int(channels) == self.image_shape[-1]:
            return self
        channels = int(channels)
        if channels not in (1, 3):
            from semembed.errors import SemembedError

            raise SemembedError(f"dataset {self.name}: images can be given 1 or 3 channels, not {channels}")
        from semembed.data.augment import channel_stats

        self.mean, self.std = channel_stats(self.mean, self.std, channels)
        self.image_shape = (*self.image_shape[:2], channels)
        return self

    def _to_channels(self, image: tf.Tensor) -> tf.Tensor:
        """A raw image (``source_channels``) converted to ``image_shape[-1]`` channels (see :meth:`set_channels`)."""
        from semembed.data.augment import convert_channels

        return convert_channels(image, self.image_shape[-1])

    # === Sizes ===
    @property
    def num_classes(self) -> int:
        """Number of classes (classes without images count, as in the reference)."""
        return len(self.classes)

    @property
    def num_train(self) -> int:
        return len(self.train_labels)

    @property
    def num_test(self) -> int:
        return len(self.test_labels)

    def epoch_length(self, *, oversample: bool = False, repeats: int | None = None) -> int:
        """Samples per training epoch (before sharding)."""
        reps = self.train_repeats if repeats is None else int(repeats)
        if oversample and self.num_train:
            counts = np.bincount(self.train_labels)
            n = int((counts > 0).sum() * counts.max())
        else:
            n = self.num_train
        return reps * n

    def steps_per_epoch(self, batch_size: int, drop_remainder: bool = False, *, oversample: bool = False,
                        repeats: int | None = None) -> int:
        """Batches per training epoch (one pipeline; divide by the number of shards yourself)."""
        _check_batch_size(batch_size)
        n = self.epoch_length(oversample=oversample, repeats=repeats)
        return n // batch_size if drop_remainder else math.ceil(n / batch_size)

    # === Pipelines ===
    def train_dataset(
        self,
        batch_size: int,
        *,
        epoch: int = 0,
        seed: int = 0,
        augment: bool = True,
        input_context: "tf.distribute.InputContext | None" = None,
        drop_remainder: bool = False,
        oversample: bool = False,
        repeats: int | None = None,
        shuffle: bool = True,
        cache: bool = False,
        as_dict: bool = False,
        weights: np.ndarray | None = None,
        sampler=None,
    ) -> tf.data.Dataset:
        """One epoch of (float32 NHWC normalised images, int32 labels) batches.

        Order and augmentation are a pure function of (seed, epoch).  With
        ``input_context`` this pipeline takes shard ``input_pipeline_id`` of
        ``num_input_pipelines`` and ``batch_size`` is the per-replica batch.
        ``repeats`` defaults to the dataset's ``train_repeats``.  ``cache`` keeps
        the raw (encoded) images in memory after their first read.

        ``as_dict``: batches are dicts ``image``, ``label``, ``index`` (position
        in the training list) and, with ``weights`` (float, one per training
        image), ``weight``.  ``sampler`` (e.g.
        :class:`~semembed.data.samplers.MPerClassSampler`) replaces the epoch
        order; its global batches are split into contiguous per-replica blocks so
        that each class group stays on one replica.
        """
        _check_batch_size(batch_size)
        reps = self.train_repeats if repeats is None else int(repeats)
        if sampler is not None:
            order = sampler.epoch_order(self.train_labels, epoch, seed)
            if input_context is not None and input_context.num_input_pipelines > 1:
                order = sampler.shard(order, input_context.num_input_pipelines, input_context.input_pipeline_id)
            input_context, drop_remainder = None, True
        else:
            order = epoch_order(self.train_labels, epoch, seed, shuffle=shuffle, oversample=oversample, repeats=reps)
        seeds = sample_seeds(len(order), epoch, seed)
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float32)
            if weights.shape != (self.num_train,):
                raise ValueError(f"expected one weight per training image ({self.num_train}), "
                                 f"received weights.shape={weights.shape}")
        return self._pipeline("train", order, seeds, batch_size, augment, input_context, drop_remainder, cache,
                              as_dict, weights)

    def test_dataset(
        self,
        batch_size: int,
        *,
        input_context: "tf.distribute.InputContext | None" = None,
        cache: bool = False,
        as_dict: bool = False,
    ) -> tf.data.Dataset:
        """Test images in file order, no augmentation (feature dumps line up with ``test_labels``).

        ``as_dict``: batches are dicts ``image``, ``label``, ``index``.
        """
        _check_batch_size(batch_size)
        order = np.arange(self.num_test, dtype=np.int64)
        seeds = np.zeros((len(order), 2), dtype=np.int64)
        return self._pipeline("test", order, seeds, batch_size, False, input_context, False, cache, as_dict)

    def ordered_dataset(self, split: str, order: np.ndarray, batch_size: int, *, as_dict: bool = True) -> tf.data.Dataset:
        """Images of ``split`` (``"train"`` | ``"test"``) at the indices ``order``, in that order, no augmentation.

        For fixed evaluation samples and per-class passes (e.g. SimNet similarities); batches as
        :meth:`test_dataset`'s (the last one may be short).
        """
        _check_batch_size(batch_size)
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', received split={split!r}")
        order = np.asarray(order, dtype=np.int64).reshape(-1)
        n = self.num_train if split == "train" else self.num_test
        if order.size and (order.min() < 0 or order.max() >= n):
            raise ValueError(f"order holds indices outside 0..{n - 1} of the {split} split")
        seeds = np.zeros((len(order), 2), dtype=np.int64)
        return self._pipeline(split, order, seeds, batch_size, False, None, False, False, as_dict)

    def _pipeline(self, split, order, seeds, batch_size, augment, input_context, drop_remainder, cache,
                  as_dict=False, weights=None):
        labels = (self.train_labels if split == "train" else self.test_labels)[order].astype(np.int32)
        w = np.ones(len(order), np.float32) if weights is None else weights[order]
        ds = tf.data.Dataset.from_tensor_slices((order, labels, seeds, w))
        if input_context is not None and input_context.num_input_pipelines > 1:
            ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        load, ok_filter = self._source(split, cache)
        preprocess = self._preprocess
        with_weight = weights is not None

        def fetch(index, label, seed, weight):
            return load(index), label, seed, index, weight

        def readable(loaded, label, seed, index, weight):
            return loaded[1]

        def unwrap(loaded, label, seed, index, weight):
            return loaded[0], label, seed, index, weight

        def transform(image, label, seed, index, weight):
            image = preprocess(image, seed, augment)
            if not as_dict:
                return image, label
            batch = {"image": image, "label": label, "index": index}
            if with_weight:
                batch["weight"] = weight
            return batch

        ds = ds.map(fetch, num_parallel_calls=AUTOTUNE)
        if ok_filter:
            ds = ds.filter(readable).map(unwrap)
        ds = ds.map(transform, num_parallel_calls=AUTOTUNE)
        ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE)
        options = tf.data.Options()
        options.deterministic = True
        return ds.with_options(options).prefetch(AUTOTUNE)

    # === Subclass hooks ===
    def _source(self, split: str, cache: bool) -> tuple[Callable[[tf.Tensor], Any], bool]:
        """Return (index -> raw image, or (image, ok) when the bool is True; needs_filter)."""
        raise NotImplementedError

    def _preprocess(self, image: tf.Tensor, seed: tf.Tensor, augment: bool) -> tf.Tensor:
        """Raw image -> float32 normalised network input of ``image_shape``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, num_classes={self.num_classes}, "
                f"num_train={self.num_train}, num_test={self.num_test}, image_shape={self.image_shape})")


def _check_batch_size(batch_size: int) -> None:
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer, received batch_size={batch_size}")
