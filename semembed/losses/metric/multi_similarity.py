"""Multi-Similarity loss (Wang et al. CVPR 2019) with its pair mining (METRIC_LEARNING.md §6).

Per anchor, on cosines, over the pairs kept by the miner (default
:class:`~semembed.losses.metric.miners.MultiSimilarityMiner`, ε = 0.1):
ℓ_i = (1/α)·log(1 + Σ_{kept P_i} e^{−α(S−λ)}) + (1/β)·log(1 + Σ_{kept N_i} e^{β(S−λ)}).

Reduction: Σ ℓ_i / B (``anchor_mean``; research-ms-loss and PML v2.8.1).
PML keeps whichever part an anchor has; ``drop_incomplete_anchors=True`` is the
official code's rule (an anchor that keeps no positive or no negative
contributes 0).  ``self_threshold=1 - 1e-5`` reproduces its self exclusion.
An anchor without any positive contributes 0 (the official code crashes).
"""

from __future__ import annotations

import keras
from keras import ops

from semembed.losses.metric.base import PairLoss
from semembed.losses.metric.common import masked_lse
from semembed.losses.metric.miners import MultiSimilarityMiner


@keras.saving.register_keras_serializable(package="semembed")
class MultiSimilarityLoss(PairLoss):
    """MS loss; ``loss(labels (B,), embeddings (B, D))`` → scalar.

    Args:
        alpha: 2 (paper, all codes).
        beta: 50 (PML and the Proxy-Anchor repo; research-ms-loss/XBM: 40).
        base: λ = 0.5 (codes; the paper text per PML's docs: 1).
        miner: ``MultiSimilarityMiner(epsilon=0.1)`` by default; None: no mining.
        drop_incomplete_anchors: official rule (False: PML's).
        reducer: ``anchor_mean`` (Σ ℓ_i / B).

    Batch scope: mining and the pairs see exactly the batch given (called per replica: that replica's
    batch); the ``metric`` task gives it the global batch of all replicas
    (:meth:`~semembed.training.step.StepContext.gather`), so mining sees every replica's samples.
    """

    registry_name = "multi_similarity"
    default_distance = "cosine"
    default_reducer = "anchor_mean"
    distances = ("cosine",)

    def __init__(self, alpha: float = 2.0, beta: float = 50.0, base: float = 0.5, miner="default",
                 drop_incomplete_anchors: bool = False, **kwargs):
        if isinstance(miner, str) and miner == "default":
            miner = MultiSimilarityMiner(0.1)
        super().__init__(miner=miner, **kwargs)
        self.alpha, self.beta, self.base = float(alpha), float(beta), float(base)
        self.drop_incomplete_anchors = bool(drop_incomplete_anchors)

    def compute(self, ctx):
        pos, neg = self.mined_pairs(ctx)
        s = ctx.mat
        lp, has_p = masked_lse(-self.alpha * (s - self.base), pos, axis=1, plus_one=True)
        ln, has_n = masked_lse(self.beta * (s - self.base), neg, axis=1, plus_one=True)
        values = lp / self.alpha + ln / self.beta
        if self.drop_incomplete_anchors:
            valid = ops.logical_and(has_p, has_n)
            values = ops.where(valid, values, ops.zeros_like(values))
        else:
            valid = ops.logical_or(has_p, has_n)
        return self.reduce(values, valid, ctx.weights, ctx)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta, "base": self.base,
                "drop_incomplete_anchors": self.drop_incomplete_anchors}
