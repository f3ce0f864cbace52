"""Datasets of image files: parallel decode, the reference's resize/zoom/erase/crop, bad-file handling.

Per image (reference order): decode as RGB -> resize the shorter side to the
default size (training: a random size in ``randzoom_range``) -> normalise ->
optional BGR -> random flip -> random erasing -> random (training) or centre
crop, reflect-padding images smaller than the crop.  Files are read and decoded
in the ``tf.data`` graph; everything after the resize is computed on the crop
only (bit-identical to the order above, see ``augment.crop_flip_erase``).

A file that cannot be read or decoded is skipped with a warning and counted in
``skipped`` (one warning per file); with ``strict=True`` the pipeline stops with
an error naming the file.
"""

from __future__ import annotations

import io
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import tensorflow as tf

from semembed.data import augment as aug
from semembed.data.base import ImageDataset
from semembed.data.constants import RANDERASE_PARAMS
from semembed.errors import SemembedError

logger = logging.getLogger(__name__)


@dataclass
class FileLists:
    """What a layout reader returns: class order, file paths and labels of both splits."""

    classes: list
    train_files: list[str]
    train_labels: list[int]
    test_files: list[str]
    test_labels: list[int]
    class_indices: dict | None = None
    #: query/gallery datasets (In-Shop): whether each test image is a query (else a gallery image)
    test_is_query: list[bool] | None = None


@dataclass
class SkipCounter:
    """Thread-safe record of unreadable files (the pipeline decodes in parallel)."""

    files: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, path: str, reason: str) -> bool:
        with self.lock:
            new = path not in self.files
            self.files[path] = reason
            return new

    def __len__(self) -> int:
        return len(self.files)


NOT_AN_IMAGE = "not an image file, or corrupt"  # neither TensorFlow nor PIL decodes it


def decode_rgb(data: bytes) -> np.ndarray:
    """Decode encoded image bytes to uint8 RGB (TensorFlow first, PIL for what it cannot read, e.g. CMYK)."""
    try:
        return tf.io.decode_image(data, channels=3, expand_animations=False).numpy()
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as tf_exc:
        from PIL import Image

        try:
            with Image.open(io.BytesIO(data)) as img:
                return np.asarray(img.convert("RGB"))
        except Exception:
            raise ValueError(NOT_AN_IMAGE) from None


class FileDataset(ImageDataset):
    """A dataset read from image files, preprocessed as the reference's ``FileDatasetGenerator``.

    Args:
        name: registry name.
        lists: class order, files and labels (from a layout reader).
        cropsize: (width, height) of the network input, as the reference.
        default_target_size: shorter side before cropping (-1: no resize).
        randzoom_range: (a, b): training resizes the shorter side to randint(a, b).
        randerase_prob: probability of random erasing at training time.
        mean, std: RGB normalisation constants (0-255 scale).
        color_mode: "rgb" or "bgr" (channels reversed after normalisation).
        strict: stop at the first unreadable file instead of skipping it.
        train_repeats: passes over the training list per epoch.
    """

    def __init__(
        self,
        name: str,
        lists: FileLists,
        *,
        cropsize: tuple[int, int] = (224, 224),
        default_target_size: int = 256,
        randzoom_range: tuple[int, int] | None = None,
        randerase_prob: float = 0.0,
        randerase_params: dict | None = None,
        mean: Sequence[float],
        std: Sequence[float],
        color_mode: str = "rgb",
        strict: bool = False,
        train_repeats: int = 1,
    ):
        width, height = cropsize
        super().__init__(name, lists.classes, lists.train_labels, lists.test_labels, (height, width, 3), mean, std,
                         class_indices=lists.class_indices, train_repeats=train_repeats)
        if color_mode not in ("rgb", "bgr"):
            raise SemembedError(f"color_mode must be 'rgb' or 'bgr', received color_mode={color_mode!r}")
        self.train_files = [os.fspath(f) for f in lists.train_files]
        if lists.test_is_query is not None:
            self.test_is_query = np.asarray(lists.test_is_query, dtype=bool)
        self.test_files = [os.fspath(f) for f in lists.test_files]
        self.default_target_size = int(default_target_size)
        self.randzoom_range = tuple(int(v) for v in randzoom_range) if randzoom_range else None
        self.randerase_prob = float(randerase_prob)
        self.randerase_params = dict(RANDERASE_PARAMS if randerase_params is None else randerase_params)
        self.color_mode = color_mode
        self.strict = bool(strict)
        self.skipped = SkipCounter()
        self._byte_cache: dict[str, dict[int, bytes]] = {"train": {}, "test": {}}
        self._path_arrays: dict[str, np.ndarray] = {}

    @property
    def num_skipped(self) -> int:
        """Number of distinct unreadable files met so far."""
        return len(self.skipped)

    # === Reading ===
    def _read(self, split: str, index: int, cache: bool) -> tuple[np.ndarray, bool]:
        path = (self.train_files if split == "train" else self.test_files)[index]
        try:
            data = self._byte_cache[split].get(index) if cache else None
            if data is None:
                with open(path, "rb") as f:
                    data = f.read()
                if cache:
                    self._byte_cache[split][index] = data
            image = decode_rgb(data)
            if image.ndim != 3 or image.shape[0] == 0 or image.shape[1] == 0:
                raise ValueError(f"empty image of shape {image.shape}")
            return image, True
        except (OSError, ValueError) as exc:
            reason = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            if self.strict:
                raise SemembedError(f"unreadable image {path} ({reason})") from None
            if self.skipped.add(path, reason):
                count = f"; {len(self.skipped)} skipped so far" if len(self.skipped) > 1 else ""
                logger.warning("warning: skipping unreadable image %s (%s)%s", path, reason, count)
            return np.zeros((1, 1, 3), np.uint8), False

    def _source(self, split, cache):
        if cache:  # bytes kept in a Python dict: read and decode per image in Python
            def load(index):
                return self._python_load(split, index, cache)

            return load, True
        paths = self._paths(split)

        def load(index):
            # read + decode in the graph (parallel, no GIL); anything TensorFlow cannot read goes to the
            # Python reader, which tries PIL, logs and counts the file, or raises with strict=True
            image, ok = _try_decode(tf.gather(paths, index))
            shape = tf.shape(image)
            ok = ok & (shape[0] > 0) & (shape[1] > 0)
            return tf.cond(ok, lambda: (image, ok), lambda: self._python_load(split, index, False))

        return load, True

    def _python_load(self, split, index, cache):
        image, ok = tf.numpy_function(
            lambda i: self._read(split, int(i), cache), [index], (tf.uint8, tf.bool), stateful=False
        )
        image.set_shape([None, None, 3])
        ok.set_shape([])
        return image, ok

    def _paths(self, split: str) -> tf.Tensor:
        """The split's file paths as a string tensor (a new one per pipeline: it may be built inside a graph)."""
        if split not in self._path_arrays:
            files = self.train_files if split == "train" else self.test_files
            self._path_arrays[split] = np.array([os.fsencode(f) for f in files], dtype=object)
        return tf.constant(self._path_arrays[split], dtype=tf.string)

    # === Preprocessing ===
    def _preprocess(self, image, seed, augment):
        s_zoom, s_flip, s_erase, s_crop = aug.split_seed(seed, 4)
        image = self._to_channels(tf.ensure_shape(tf.cast(image, tf.float32), [None, None, 3]))
        if augment and self.randzoom_range is not None:
            a, b = self.randzoom_range
            image = aug.resize_shorter_side(image, tf.random.stateless_uniform([], s_zoom, a, b, dtype=tf.int32))
        elif self.default_target_size > 0:
            image = aug.resize_shorter_side(image, tf.constant(self.default_target_size))
        # normalise -> flip -> erase (on the whole resized image) -> crop, computed on the crop only
        h, w, _ = self.image_shape
        return aug.crop_flip_erase(
            image, h, w, mean=tf.constant(self.mean), std=tf.constant(self.std), bgr=self.color_mode == "bgr",
            crop_seed=s_crop if augment else None, flip_seed=s_flip if augment else None,
            erase_seed=s_erase if augment else None, erase_prob=self.randerase_prob, erase_params=self.randerase_params)


def _try_decode(path: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(uint8 HxWx3 image, True) for a file TensorFlow reads and decodes, else (0x0x3 image, False); never raises."""
    good = tf.data.Dataset.from_tensors(path).map(
        lambda p: (tf.io.decode_image(tf.io.read_file(p), channels=3, expand_animations=False), True)
    ).ignore_errors()
    failed = tf.data.Dataset.from_tensors((tf.zeros([0, 0, 3], tf.uint8), False))
    return good.concatenate(failed).take(1).get_single_element()
