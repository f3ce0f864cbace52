"""Binomial deviance loss (Yi, Lei & Li 2014) in the Deep_Metric form (METRIC_LEARNING.md §4).

Per anchor on cosines: ℓ_i = mean_{k∈P_i} softplus(−s_pos·(S_ik − m)) +
mean_{k∈N_i} softplus(α·(S_ik − m)); anchors without a positive or a negative
contribute 0; L = Σ ℓ_i / B.  Deep_Metric's hard-mining branch (which divides
by β = 0) is not reproduced; a pair miner may be given instead.
"""

from __future__ import annotations

import keras
from keras import ops

from semembed.losses.metric.base import PairLoss
from semembed.losses.metric.common import masked_mean


@keras.saving.register_keras_serializable(package="semembed")
class BinomialDevianceLoss(PairLoss):
    """Binomial deviance; ``loss(labels (B,), embeddings (B, D))`` → scalar.

    Args:
        alpha: negative scale, 40 (Deep_Metric run script; parser default 30; paper's C·α differs, *unverified*).
        margin: m = 0.5 (Deep_Metric).
        pos_scale: 2 (hard-coded in Deep_Metric).
        reducer: ``anchor_mean`` (Σ ℓ_i / B).

    Batch scope: mining and the pairs see exactly the batch given (called per replica: that replica's
    batch); the ``metric`` task gives it the global batch of all replicas
    (:meth:`~semembed.training.step.StepContext.gather`), so mining sees every replica's samples.
    """

    registry_name = "binomial_deviance"
    default_distance = "cosine"
    default_reducer = "anchor_mean"
    distances = ("cosine",)

    def __init__(self, alpha: float = 40.0, margin: float = 0.5, pos_scale: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha, self.margin, self.pos_scale = float(alpha), float(margin), float(pos_scale)

    def compute(self, ctx):
        pos, neg = self.mined_pairs(ctx)
        s = ctx.mat
        lp, n_p = masked_mean(ops.softplus(-self.pos_scale * (s - self.margin)), pos, axis=1)
        ln, n_n = masked_mean(ops.softplus(self.alpha * (s - self.margin)), neg, axis=1)
        valid = ops.logical_and(n_p > 0, n_n > 0)
        values = ops.where(valid, lp + ln, ops.zeros_like(lp))
        return self.reduce(values, valid, ctx.weights, ctx)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "margin": self.margin, "pos_scale": self.pos_scale}
