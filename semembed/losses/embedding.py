"""Losses between a network's embedding output and the target embedding of each image's class.

Pure ``keras.ops``, so they run under ``tf.function``, XLA and the JAX backend.
Each loss returns per-sample values; the trainer sums them and divides by the
global batch size (see :mod:`semembed.training.task`).

* ``inv_corr`` (also ``unnorm_corr`` and ``softmax_corr``, which differ only in
  the model's output wrapper): 1 − ⟨φ_y, f(x)⟩.  With one-hot targets and an
  L2-normalised output this is the cosine loss of Barz & Denzler (WACV 2020).
* ``mse``: squared Euclidean distance ‖φ_y − f(x)‖² (summed over dimensions,
  as in the reference's ``squared_distance``).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

CORRELATION_LOSSES = ("inv_corr", "unnorm_corr", "softmax_corr")
EMBEDDING_LOSS_NAMES = CORRELATION_LOSSES + ("mse",)


@keras.saving.register_keras_serializable(package="semembed")
def inv_correlation(y_true, y_pred):
    """1 − ⟨y_true, y_pred⟩ along the last axis."""
    y_true = ops.cast(y_true, y_pred.dtype)
    return 1.0 - ops.sum(y_true * y_pred, axis=-1)


@keras.saving.register_keras_serializable(package="semembed")
def squared_distance(y_true, y_pred):
    """‖y_true − y_pred‖² along the last axis."""
    y_true = ops.cast(y_true, y_pred.dtype)
    return ops.sum(ops.square(y_true - y_pred), axis=-1)


def embedding_loss_fn(loss: str):
    """The per-sample function behind a ``--loss`` name."""
    if loss in CORRELATION_LOSSES:
        return inv_correlation
    if loss == "mse":
        return squared_distance
    raise ValueError(f"unknown embedding loss {loss!r}; expected one of {', '.join(EMBEDDING_LOSS_NAMES)}")


@keras.saving.register_keras_serializable(package="semembed")
class ClassEmbeddingLoss(keras.losses.Loss):
    """Loss of an embedding output against the class embedding of integer labels.

    Args:
        class_embeddings: ``(num_classes, dim)`` target embeddings; row i is class i.
        loss: ``inv_corr`` | ``unnorm_corr`` | ``softmax_corr`` | ``mse``.

    ``y_true`` holds integer class indices (any shape that flattens to the
    batch); the base class applies ``sample_weight`` and ``reduction``.
    """

    def __init__(self, class_embeddings, loss: str = "inv_corr", reduction="sum_over_batch_size", name=None, dtype=None):
        super().__init__(name=name or loss, reduction=reduction, dtype=dtype)
        self.loss = loss
        self._fn = embedding_loss_fn(loss)
        self.class_embeddings = np.asarray(class_embeddings, dtype=np.float32)

    def call(self, y_true, y_pred):
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        targets = ops.take(ops.convert_to_tensor(self.class_embeddings, dtype=y_pred.dtype), labels, axis=0)
        return self._fn(targets, y_pred)

    def get_config(self):
        config = super().get_config()
        config.update(class_embeddings=self.class_embeddings.tolist(), loss=self.loss)
        return config


def nearest_class_scores(embeddings, class_embeddings, loss: str = "inv_corr"):
    """Scores (higher = closer) of every class for every embedding.

    Dot products for the correlation losses, negative squared distances for
    ``mse`` — the reference's nearest-class-embedding accuracy.
    """
    class_embeddings = ops.convert_to_tensor(class_embeddings, dtype=embeddings.dtype)
    dots = ops.matmul(embeddings, ops.transpose(class_embeddings))
    if loss == "mse":
        sq = ops.sum(ops.square(class_embeddings), axis=-1)
        return 2.0 * dots - sq[None, :]  # -‖e - c‖² up to a per-row constant
    return dots
