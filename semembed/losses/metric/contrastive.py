"""Contrastive loss (Hadsell, Chopra & LeCun 2006) as PML's ``ContrastiveLoss`` (METRIC_LEARNING.md §1).

Per pair (i, j), self excluded: on a distance d, positives ``relu(d − pos_margin)``
and negatives ``relu(neg_margin − d)``; on a similarity S, positives
``relu(pos_margin − S)`` and negatives ``relu(S − neg_margin)``.  The positive
and the negative part are reduced separately and added (PML); the default
reducer ``mean_nonzero`` averages each part over its pairs with a loss > 0.

Deep_Metric / research-xbm form (§1 [code]): ``distance="cosine",
pos_margin=1, neg_margin=0.5, reducer="anchor_mean"`` — Σ over pairs / B.  Its
negative term is S rather than S − m: same gradient, value larger by m per
active negative.

Per-sample weights weight a pair by w_i·w_j (a sample of weight 0 takes
part in no pair), in the sums and the counts alike.
"""

from __future__ import annotations

import keras
from keras import ops

from semembed.losses.metric.base import PairLoss
from semembed.losses.metric.distances import EuclideanDistance


@keras.saving.register_keras_serializable(package="semembed")
class ContrastiveLoss(PairLoss):
    """Contrastive loss; ``loss(labels (B,), embeddings (B, D))`` → scalar.

    Args:
        pos_margin: 0 (PML default).
        neg_margin: 1 (PML default; the Proxy-Anchor repo uses 0.5 with Euclidean).
        distance: ``euclidean`` (PML default, normalised embeddings), ``squared_euclidean`` or ``cosine``.
        miner: a pair miner or None (default: every pair).
        reducer: ``mean_nonzero`` (PML default) per part.
    """

    registry_name = "contrastive"
    default_reducer = "mean_nonzero"

    def __init__(self, pos_margin: float = 0.0, neg_margin: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.pos_margin = float(pos_margin)
        self.neg_margin = float(neg_margin)

    def compute(self, ctx):
        pos, neg = self.mined_pairs(ctx)
        d = ctx.mat
        if ctx.is_inverted:
            pos_v, neg_v = ops.relu(self.pos_margin - d), ops.relu(d - self.neg_margin)
        else:
            pos_v, neg_v = ops.relu(d - self.pos_margin), ops.relu(self.neg_margin - d)
        w = self.pair_weights(ctx)
        return self.reduce(pos_v, pos, w, ctx) + self.reduce(neg_v, neg, w, ctx)

    def get_config(self):
        return {**super().get_config(), "pos_margin": self.pos_margin, "neg_margin": self.neg_margin}


def contrastive_loss(labels, embeddings, weights=None, *, pos_margin: float = 0.0, neg_margin: float = 1.0):
    """Scalar PML contrastive loss (Euclidean, ``mean_nonzero``) of ``labels`` (B,), ``embeddings`` (B, D), ``weights`` (B,)."""
    return _default(pos_margin, neg_margin)(labels, embeddings, weights)


def _default(pos_margin, neg_margin):
    return ContrastiveLoss(pos_margin, neg_margin, distance=EuclideanDistance())
