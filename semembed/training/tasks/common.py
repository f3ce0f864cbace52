"""Pieces the built-in tasks share: batch access, top-k hit counts, the per-sample-loss step."""

from __future__ import annotations

import tensorflow as tf
from keras import ops

from semembed.training.task import Task


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


class PerSampleLossTask(Task):
    """A task whose loss is a sum of per-sample terms divided by the global batch.

    Subclasses define ``losses(model, images, labels, weights, global_size, training)``
    returning (this replica's share of the loss, metric sums); the steps follow.
    """

    def losses(self, model, images, labels, weights, global_size, training: bool):
        raise NotImplementedError

    def train_step(self, batch, step):
        labels = labels_of(batch)
        fn = lambda x, y, w, g: self.losses(self.model, x, y, w, g, True)  # noqa: E731
        _, sums, _ = step.minimize("main", fn, batch["image"], labels, weights_of(batch), step.global_count(labels))
        return sums

    def eval_step(self, batch, step):
        labels = labels_of(batch)
        n = tf.cast(tf.shape(labels)[0], tf.float32)
        return self.losses(self.model, batch["image"], labels, weights_of(batch), n, False)[1]
