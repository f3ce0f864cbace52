"""NCA loss (Goldberger et al. 2004), PML's ``NCALoss`` (METRIC_LEARNING.md §5).

On squared Euclidean distances of normalised embeddings, self excluded:
loss_i = −log Σ_{j∈P_i} softmax_j(−s·d²_i·) = LSE_{k≠i}(−s d²_ik) − LSE_{j∈P_i}(−s d²_ij);
anchors without positives are dropped; mean over the remaining anchors
(**#valid**); a batch of ≤ 1 sample gives 0.  On a similarity the logits are +s·S.
Deep_Metric's kNN-NCA is not provided (its code is broken; see the spec).
"""

from __future__ import annotations

import keras
from keras import ops

from semembed.losses.metric.base import PairLoss
from semembed.losses.metric.common import masked_lse


@keras.saving.register_keras_serializable(package="semembed")
class NCALoss(PairLoss):
    """NCA; ``loss(labels (B,), embeddings (B, D))`` → scalar.

    Args:
        softmax_scale: s = 1 (PML default).
        distance: ``squared_euclidean`` (PML's ``LpDistance(power=2)``).
        reducer: ``mean`` over anchors with a positive.

    Batch scope: mining and the pairs see exactly the batch given (called per replica: that replica's
    batch); the ``metric`` task gives it the global batch of all replicas
    (:meth:`~semembed.training.step.StepContext.gather`), so mining sees every replica's samples.
    """

    registry_name = "nca"
    default_distance = "squared_euclidean"
    default_reducer = "mean"

    def __init__(self, softmax_scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.softmax_scale = float(softmax_scale)

    def compute(self, ctx):
        pos, neg = self.mined_pairs(ctx)
        logits = self.softmax_scale * ctx.closeness()
        everyone, _ = masked_lse(logits, ops.logical_or(pos, neg), axis=1)
        positives, has = masked_lse(logits, pos, axis=1)
        values = ops.where(has, everyone - positives, ops.zeros_like(everyone))
        return self.reduce(values, has, ctx.weights, ctx)

    def get_config(self):
        return {**super().get_config(), "softmax_scale": self.softmax_scale}
