"""Contrastive loss (Hadsell, Chopra & LeCun 2006) as PML's ``ContrastiveLoss`` (METRIC_LEARNING.md §1).

Per ordered pair (i, j), i ≠ j, of L2-normalised embeddings at Euclidean
distance d_ij: positives (same label) ``relu(d − pos_margin)``, negatives
``relu(neg_margin − d)``.  Reduction as PML's default ``AvgNonZeroReducer``:
the positive-pair losses averaged over pairs with a loss > 0, likewise the
negatives, and the two added (an empty or all-zero part contributes 0).

Per-sample weights weight a pair by w_i·w_j (a sample of weight 0 takes part
in no pair), in the sums and the non-zero counts alike.
"""

from __future__ import annotations

import keras
from keras import ops

from semembed.losses.metric.distances import euclidean_distance


def contrastive_loss(labels, embeddings, weights=None, *, pos_margin: float = 0.0, neg_margin: float = 1.0):
    """Scalar contrastive loss of a batch: ``labels`` (B,), ``embeddings`` (B, D), ``weights`` (B,) or None."""
    embeddings = ops.cast(embeddings, "float32")
    labels = ops.reshape(labels, (-1,))
    n = ops.shape(labels)[0]
    d = euclidean_distance(embeddings)
    same = ops.equal(labels[:, None], labels[None, :])
    not_self = ops.logical_not(ops.cast(ops.eye(n), "bool"))
    pos = ops.cast(ops.logical_and(same, not_self), "float32")
    neg = ops.cast(ops.logical_not(same), "float32")
    w = ops.ones((n,), "float32") if weights is None else ops.cast(ops.reshape(weights, (-1,)), "float32")
    pair_w = w[:, None] * w[None, :]

    def avg_non_zero(values, mask):
        active = ops.cast(values > 0, "float32") * mask * pair_w
        return ops.sum(values * mask * pair_w) / ops.maximum(ops.sum(active), 1e-12) * ops.cast(
            ops.sum(active) > 0, "float32")

    return avg_non_zero(ops.relu(d - pos_margin), pos) + avg_non_zero(ops.relu(neg_margin - d), neg)


@keras.saving.register_keras_serializable(package="semembed")
class ContrastiveLoss(keras.losses.Loss):
    """Keras wrapper of :func:`contrastive_loss`; ``y_true`` = labels (B,), ``y_pred`` = embeddings (B, D).

    Args:
        pos_margin: PML default 0.
        neg_margin: PML default 1 (Proxy-Anchor's repo uses 0.5).

    The value is already reduced over pairs (a 0-d tensor); sample weights
    go through :func:`contrastive_loss`'s ``weights``.
    """

    def __init__(self, pos_margin: float = 0.0, neg_margin: float = 1.0, name: str = "contrastive", **kwargs):
        super().__init__(name=name, **kwargs)
        self.pos_margin = float(pos_margin)
        self.neg_margin = float(neg_margin)

    def call(self, y_true, y_pred):
        return contrastive_loss(y_true, y_pred, pos_margin=self.pos_margin, neg_margin=self.neg_margin)

    def get_config(self):
        return {**super().get_config(), "pos_margin": self.pos_margin, "neg_margin": self.neg_margin}
