"""Lifted structure losses (METRIC_LEARNING.md §3).

* :class:`LiftedStructureLoss` — Oh Song et al. CVPR 2016 as PML implements it:
  for every positive pair (i, j),
  J_ij = log(Σ_{k∈N_i} e^{m_neg − D_ik} + Σ_{l∈N_j} e^{m_neg − D_jl}) + D_ij − m_pos,
  loss = mean over positive pairs of [J_ij]₊² / 2 (= 1/(2|P̂|)·Σ over unordered pairs of [J]₊²).
  The log term is 0 when neither member has a negative.  Needs the
  negatives of both pair members, so it takes no separate reference set (no XBM).
* :class:`GeneralizedLiftedStructureLoss` — ``form="deep_metric"`` (default, the
  issue's "modified" lifted structure of the Deep_Metric repository, §3b):
  per anchor on cosines, ℓ_i = (2/β)·log Σ_{P_i} e^{−βS} + (2/α)·log Σ_{N_i} e^{αS},
  anchors without a positive or a negative contribute 0; L = Σ ℓ_i / B.
  ``form="hermans"`` (PML's ``GeneralizedLiftedStructureLoss``, Hermans et al.):
  [LSE_{P_i}(D − m_pos) + LSE_{N_i}(m_neg − D)]₊ per anchor (an empty LSE is 0), mean over B.
"""

from __future__ import annotations

import keras
from keras import ops

from semembed.errors import SemembedError
from semembed.losses.metric.base import PairLoss
from semembed.losses.metric.common import NEG_FILL, masked_lse


@keras.saving.register_keras_serializable(package="semembed")
class LiftedStructureLoss(PairLoss):
    """Original lifted structure loss; ``loss(labels (B,), embeddings (B, D))`` → scalar.

    Args:
        neg_margin: α = 1 (paper, PML default).
        pos_margin: 0 (PML default).
        distance: ``euclidean`` (paper; of normalised embeddings here, ``{"name": "euclidean",
            "normalize": False}`` for the paper's raw features).
        reducer: ``mean`` over positive pairs.

    Batch scope: mining and the pairs see exactly the batch given (called per replica: that replica's
    batch); the ``metric`` task gives it the global batch of all replicas
    (:meth:`~semembed.training.step.StepContext.gather`), so mining sees every replica's samples.
    """

    registry_name = "lifted_structure"
    default_reducer = "mean"
    distances = ("euclidean", "squared_euclidean")
    supports_references = False

    def __init__(self, neg_margin: float = 1.0, pos_margin: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.neg_margin, self.pos_margin = float(neg_margin), float(pos_margin)

    def compute(self, ctx):
        pos, neg = self.mined_pairs(ctx)
        d = ctx.mat
        per_anchor, has = masked_lse(self.neg_margin - d, neg, axis=1)  # log Σ_{N_i} e^{m − D_ik}
        fill = ops.cast(NEG_FILL, d.dtype)
        li = ops.where(has, per_anchor, fill)
        both = ops.logaddexp(li[:, None], li[None, :])
        any_neg = ops.logical_or(has[:, None], has[None, :])
        log_term = ops.where(any_neg, both, ops.zeros_like(both))
        j = log_term + d - self.pos_margin
        values = ops.square(ops.relu(j)) / 2.0
        return self.reduce(values, pos, self.pair_weights(ctx), ctx)

    def get_config(self):
        return {**super().get_config(), "neg_margin": self.neg_margin, "pos_margin": self.pos_margin}


@keras.saving.register_keras_serializable(package="semembed")
class GeneralizedLiftedStructureLoss(PairLoss):
    """Per-anchor ("generalized"/"modified") lifted structure loss; ``loss(labels, embeddings)`` → scalar.

    Args:
        form: ``deep_metric`` (default; §3b) or ``hermans`` (PML).
        alpha: negative scale of ``deep_metric``, 40 (Deep_Metric run script; its parser default is 30).
        beta: positive scale of ``deep_metric``, 2 (Deep_Metric, fixed).
        neg_margin, pos_margin: margins of ``hermans``, 1 and 0 (PML defaults).
        distance: ``cosine`` for ``deep_metric`` (required), ``euclidean`` by default for ``hermans``.
        reducer: ``anchor_mean`` (Σ ℓ_i / B).

    Batch scope: mining and the pairs see exactly the batch given (called per replica: that replica's
    batch); the ``metric`` task gives it the global batch of all replicas
    (:meth:`~semembed.training.step.StepContext.gather`), so mining sees every replica's samples.
    """

    registry_name = "generalized_lifted_structure"
    default_reducer = "anchor_mean"
    FORMS = ("deep_metric", "hermans")

    def __init__(self, alpha: float = 40.0, beta: float = 2.0, neg_margin: float = 1.0, pos_margin: float = 0.0,
                 form: str = "deep_metric", distance=None, **kwargs):
        if form not in self.FORMS:
            raise SemembedError(f"GeneralizedLiftedStructureLoss form must be one of {', '.join(self.FORMS)}, got {form!r}")
        if distance is None:
            distance = "cosine" if form == "deep_metric" else "euclidean"
        super().__init__(distance=distance, **kwargs)
        if form == "deep_metric" and not self.distance.is_inverted:
            raise SemembedError("GeneralizedLiftedStructureLoss(form='deep_metric') is defined on distance='cosine'")
        if form == "hermans" and self.distance.is_inverted:
            raise SemembedError("GeneralizedLiftedStructureLoss(form='hermans') is defined on a distance, not cosine")
        self.form = form
        self.alpha, self.beta = float(alpha), float(beta)
        self.neg_margin, self.pos_margin = float(neg_margin), float(pos_margin)

    def compute(self, ctx):
        pos, neg = self.mined_pairs(ctx)
        s = ctx.mat
        if self.form == "deep_metric":
            lp, has_p = masked_lse(-self.beta * s, pos, axis=1)
            ln, has_n = masked_lse(self.alpha * s, neg, axis=1)
            valid = ops.logical_and(has_p, has_n)
            values = (2.0 / self.beta) * lp + (2.0 / self.alpha) * ln
            values = ops.where(valid, values, ops.zeros_like(values))
        else:
            lp, _ = masked_lse(s - self.pos_margin, pos, axis=1)
            ln, _ = masked_lse(self.neg_margin - s, neg, axis=1)
            values = ops.relu(lp + ln)
            valid = ops.logical_or(ops.any(pos, axis=1), ops.any(neg, axis=1))
        return self.reduce(values, valid, ctx.weights, ctx)

    def get_config(self):
        cfg = super().get_config()
        return {**cfg, "alpha": self.alpha, "beta": self.beta, "neg_margin": self.neg_margin,
                "pos_margin": self.pos_margin, "form": self.form}
