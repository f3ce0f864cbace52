"""Pieces the built-in tasks share: batch access, top-k hit counts."""

from __future__ import annotations

import tensorflow as tf
from keras import ops


def labels_of(batch: dict) -> tf.Tensor:
    """int32 labels of a batch, flattened."""
    return tf.cast(tf.reshape(batch["label"], [-1]), tf.int32)


def weights_of(batch: dict) -> tf.Tensor:
    """float32 per-sample weights of a batch (ones when it has none)."""
    if "weight" in batch:
        return tf.cast(tf.reshape(batch["weight"], [-1]), tf.float32)
    return tf.ones([tf.shape(batch["label"])[0]], tf.float32)


def correct(scores, labels, k: int) -> tf.Tensor:
    """Number of rows whose label is among the ``k`` highest scores."""
    k = min(int(k), int(scores.shape[-1]))
    return tf.reduce_sum(tf.cast(ops.in_top_k(labels, scores, k), tf.float32))
