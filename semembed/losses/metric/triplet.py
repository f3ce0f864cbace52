"""Triplet margin loss with a miner (Schroff et al. 2015; PML ``TripletMarginLoss``; METRIC_LEARNING.md §2).

Per triplet (a, p, n): ``relu(d_ap − d_an + margin)`` on a distance
(``relu(S_an − S_ap + margin)`` on a similarity).  Which triplets:

* a triplet miner (:class:`~semembed.losses.metric.miners.TripletMarginMiner`,
  :class:`~semembed.losses.metric.miners.BatchHardMiner`) or, by default,
  every valid triplet;
* ``miner="facenet_semihard"``: one negative per positive pair by the
  TensorFlow ``triplet_semihard_loss`` rule (§2) — with
  ``distance="squared_euclidean", margin=0.2, reducer="mean"`` this is
  FaceNet's loss, the mean over **all** ordered positive pairs (zeros included).

Reducer: ``mean_nonzero`` (PML: over triplets with a loss > 0; 0 if none).
A triplet weighs w_a·w_p·w_n.
"""

from __future__ import annotations

import keras
from keras import ops

from semembed.losses.metric.base import PairLoss


@keras.saving.register_keras_serializable(package="semembed")
class TripletMarginLoss(PairLoss):
    """Triplet margin loss; ``loss(labels (B,), embeddings (B, D))`` → scalar.

    Args:
        margin: 0.05 (PML default; Proxy-Anchor repo 0.1; FaceNet 0.2 on squared L2; TF 1.0).
        distance: ``euclidean`` (PML default), ``squared_euclidean`` or ``cosine``.
        miner: triplet miner, ``facenet_semihard`` or None (all triplets).
        reducer: ``mean_nonzero`` (PML default).
        swap: also use d_pn when it is closer than d_an (PML's ``swap``).

    Batch scope: mining and the pairs see exactly the batch given (called per replica: that replica's
    batch); the ``metric`` task gives it the global batch of all replicas
    (:meth:`~semembed.training.step.StepContext.gather`), so mining sees every replica's samples.
    """

    registry_name = "triplet_margin"
    default_reducer = "mean_nonzero"
    miner_kinds = ("triplet", "negative")

    def __init__(self, margin: float = 0.05, swap: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.margin = float(margin)
        self.swap = bool(swap)

    def compute(self, ctx):
        d = ctx.mat
        sign = -1.0 if ctx.is_inverted else 1.0  # values in "distance" orientation
        if self.miner is not None and self.miner.kind == "negative":
            d_an = self.miner(ctx)
            values = ops.relu(sign * (d - d_an) + self.margin)
            return self.reduce(values, ctx.pos, self.pair_weights(ctx), ctx)
        mask = ctx.pos[:, :, None] & ctx.neg[:, None, :]
        if self.miner is not None:
            mask = mask & self.miner(ctx)
        d_ap, d_an = d[:, :, None], d[:, None, :]
        if self.swap and ctx.same_set:  # d(p, n) from the same matrix when it is the closer one
            d_pn = d[None, :, :]
            d_an = ops.minimum(d_an, d_pn) if not ctx.is_inverted else ops.maximum(d_an, d_pn)
        values = ops.relu(sign * (d_ap - d_an) + self.margin)
        w = ctx.weights[:, None, None] * ctx.ref_weights[None, :, None] * ctx.ref_weights[None, None, :]
        return self.reduce(values, mask, w, ctx)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "swap": self.swap}
