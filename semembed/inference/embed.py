"""Embeddings (and class probabilities) of image files, with the model's own preprocessing."""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from semembed.errors import SemembedError

if TYPE_CHECKING:  # the model module imports TensorFlow (via the data layer); programs that only search do not
    from semembed.inference.model import InferenceModel

logger = logging.getLogger(__name__)

#: images per batch of ``embed`` / ``predict`` / ``index`` / ``search`` (flag ``--batch_size``)
DEFAULT_BATCH_SIZE = 64


@dataclass
class Embeddings:
    """What :func:`embed_images` returns; row i belongs to ``paths[i]``.

    Attributes:
        paths: the images that were read (unreadable ones left out with ``skip_unreadable``).
        features: ``len(paths) x D`` float32.
        probabilities: ``len(paths) x classes`` float32, or None for models without a ``prob`` layer.
        skipped: unreadable files that were left out.
    """

    paths: list[str]
    features: np.ndarray
    probabilities: np.ndarray | None
    skipped: list[str]


def image_batches(paths: list[str], preprocessing, batch_size: int):
    """``tf.data`` batches of ``(images, readable flags, positions)`` of ``paths``, in order."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((np.array([os.fsencode(p) for p in paths], dtype=object),
                                             np.arange(len(paths), dtype=np.int64)))
    ds = ds.map(lambda p, i: (*preprocessing.load(p), i), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def embed_images(model: "InferenceModel", paths: list[str], *, batch_size: int = DEFAULT_BATCH_SIZE,
                 progress: bool = False, skip_unreadable: bool = False) -> Embeddings:
    """Run ``model`` over the image files ``paths`` (batched, decoded in parallel).

    Args:
        model: from :func:`~semembed.inference.model.load_inference_model`.
        paths: image files (see :func:`~semembed.inference.images.list_images`).
        batch_size: images per batch.
        progress: a progress bar on stderr.
        skip_unreadable: leave unreadable files out (logged) instead of stopping.

    Raises:
        SemembedError: an unreadable image (naming it) unless ``skip_unreadable``; ``batch_size`` < 1.
    """
    import tensorflow as tf

    from semembed.inference.runner import collect

    if batch_size < 1:
        raise SemembedError(f"--batch_size must be at least 1, got {batch_size}")

    def check(batch):
        if not skip_unreadable:
            ok = batch[1].numpy()
            if not ok.all():
                bad = paths[int(batch[2].numpy()[np.flatnonzero(~ok)[0]])]
                raise SemembedError(f"cannot read image {bad} (not an image file, or corrupt); "
                                    "pass --skip_unreadable to leave such files out")

    @tf.function(reduce_retracing=True)
    def step(batch):
        feats, probs = model.run(batch[0])
        return feats, probs, batch[1]

    feats, probs, ok = collect(step, image_batches(paths, model.preprocessing, batch_size), progress=progress,
                               total=math.ceil(len(paths) / batch_size), check=check)
    keep = np.asarray(ok, dtype=bool)
    skipped = [p for p, k in zip(paths, keep) if not k]
    for p in skipped:
        logger.warning("skipped unreadable image %s", p)
    if skipped:
        feats = feats[keep]
        probs = probs[keep] if probs is not None else None
        if not keep.any():
            raise SemembedError("none of the images could be read")
    return Embeddings([p for p, k in zip(paths, keep) if k], feats, probs, skipped)


def save_embeddings(path: str, emb: Embeddings, classes: list | None = None, overwrite: bool = False,
                    fingerprint: str | None = None) -> None:
    """``.npz`` with ``feat`` (N x D), ``paths`` (N strings), for models with a ``prob`` layer ``prob`` and
    ``classes``, and ``model_fingerprint`` (:func:`~semembed.inference.model.model_fingerprint`) when given."""
    from semembed.io import atomic_path

    if not path.endswith(".npz"):
        raise SemembedError(f"--out {path}: embeddings are written as .npz (arrays feat, paths); use a name ending in .npz")
    arrays = {"feat": emb.features, "paths": np.asarray(emb.paths, dtype=str)}
    if fingerprint:
        arrays["model_fingerprint"] = np.asarray(fingerprint)
    if emb.probabilities is not None:
        arrays["prob"] = emb.probabilities
        if classes is not None:
            arrays["classes"] = np.asarray(classes)
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
