"""Registered, backend-agnostic Keras losses (``keras.ops`` only)."""

from semembed.losses.embedding import (
    CORRELATION_LOSSES,
    EMBEDDING_LOSS_NAMES,
    ClassEmbeddingLoss,
    embedding_loss_fn,
    inv_correlation,
    nearest_class_scores,
    squared_distance,
)

__all__ = [
    "CORRELATION_LOSSES",
    "EMBEDDING_LOSS_NAMES",
    "ClassEmbeddingLoss",
    "embedding_loss_fn",
    "inv_correlation",
    "nearest_class_scores",
    "squared_distance",
]
