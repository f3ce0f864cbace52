"""Contrastive loss (Hadsell, Chopra & LeCun 2006) as PML's ``ContrastiveLoss`` (METRIC_LEARNING.md §1).

Per pair (i, j), self excluded: on a distance d, positives ``relu(d − pos_margin)``
and negatives ``relu(neg_margin − d)``; on a similarity S, positives
``relu(pos_margin − S)`` and negatives ``relu(S − neg_margin)``.  The positive
and the negative part are reduced separately and added (PML); the default
reducer ``mean_nonzero`` averages each part over its pairs with a loss > 0.

Deep_Metric / research-xbm form (§1 [code]), ``form="deep_metric"``: on cosines,
ℓ_i = Σ_{k∈P_i} (1 − S_ik) + Σ_{k∈N_i, S_ik > m} S_ik, L = Σ_i ℓ_i / B
(defaults ``distance="cosine", pos_margin=1, neg_margin=m=0.5,
reducer="anchor_mean"``).  Its negative term is S, not S − m: the same gradient
as ``relu(S − m)``, a value larger by m per active negative.  Self is excluded
by index (``self_threshold=1`` or ``1 - 1e-5`` adds those codes' S < 1 rule).

Batch scope: the pairs (and any miner) are those of the batch the loss is
given; the ``metric`` task gives it the global batch of all replicas
(:meth:`~semembed.training.step.StepContext.gather`), so with N replicas the
pairs span every replica's samples.

Per-sample weights weight a pair by w_i·w_j (a sample of weight 0 takes
part in no pair), in the sums and the counts alike.
"""

from __future__ import annotations

import keras
from keras import ops

from semembed.errors import SemembedError
from semembed.losses.metric.base import PairLoss
from semembed.losses.metric.distances import EuclideanDistance


@keras.saving.register_keras_serializable(package="semembed")
class ContrastiveLoss(PairLoss):
    """Contrastive loss; ``loss(labels (B,), embeddings (B, D), sample_weight=None (B,))`` → scalar.

    Args:
        pos_margin: 0 (PML default); ``form="deep_metric"``: 1 (positive term 1 − S).
        neg_margin: 1 (PML default; the Proxy-Anchor repo uses 0.5 with Euclidean);
            ``form="deep_metric"``: 0.5 (Deep_Metric's default, research-xbm's fixed value).
        form: ``pml`` (default) or ``deep_metric`` (negative term S for S > m, see the module docstring).
        distance: ``euclidean`` (PML default, normalised embeddings), ``squared_euclidean`` or ``cosine``;
            ``form="deep_metric"``: ``cosine`` (the only one it is defined on).
        miner: a pair miner or None (default: every pair).
        reducer: ``mean_nonzero`` (PML default) per part; ``form="deep_metric"``: ``anchor_mean`` (Σ / B).

    Batch scope: mining and the pairs see exactly the batch given (called per replica: that replica's
    batch); the ``metric`` task gives it the global batch of all replicas
    (:meth:`~semembed.training.step.StepContext.gather`), so mining sees every replica's samples.

    Raises:
        SemembedError: an unknown ``form``, or ``form="deep_metric"`` with a distance other than cosine.
    """

    registry_name = "contrastive"
    default_reducer = "mean_nonzero"
    FORMS = ("pml", "deep_metric")

    def __init__(self, pos_margin: float | None = None, neg_margin: float | None = None, form: str = "pml",
                 **kwargs):
        if form not in self.FORMS:
            raise SemembedError(f"ContrastiveLoss form must be one of {', '.join(self.FORMS)}, got {form!r}")
        deep = form == "deep_metric"
        if deep:
            kwargs["distance"] = "cosine" if kwargs.get("distance") is None else kwargs["distance"]
            kwargs["reducer"] = "anchor_mean" if kwargs.get("reducer") is None else kwargs["reducer"]
        super().__init__(**kwargs)
        if deep and not self.distance.is_inverted:
            raise SemembedError(f"ContrastiveLoss(form='deep_metric') is defined on cosine similarities, got "
                                f"distance={self.distance.name!r}")
        self.form = form
        self.pos_margin = float((1.0 if deep else 0.0) if pos_margin is None else pos_margin)
        self.neg_margin = float((0.5 if deep else 1.0) if neg_margin is None else neg_margin)

    def compute(self, ctx):
        pos, neg = self.mined_pairs(ctx)
        d = ctx.mat
        if ctx.is_inverted:
            pos_v = ops.relu(self.pos_margin - d)
            if self.form == "deep_metric":  # S itself for S > m (Deep_Metric, research-xbm)
                neg_v = ops.where(d > self.neg_margin, d, ops.zeros_like(d))
            else:
                neg_v = ops.relu(d - self.neg_margin)
        else:
            pos_v, neg_v = ops.relu(d - self.pos_margin), ops.relu(self.neg_margin - d)
        w = self.pair_weights(ctx)
        return self.reduce(pos_v, pos, w, ctx) + self.reduce(neg_v, neg, w, ctx)

    def get_config(self):
        return {**super().get_config(), "pos_margin": self.pos_margin, "neg_margin": self.neg_margin,
                "form": self.form}


def contrastive_loss(labels, embeddings, weights=None, *, pos_margin: float = 0.0, neg_margin: float = 1.0):
    """Scalar PML contrastive loss (Euclidean, ``mean_nonzero``) of ``labels`` (B,), ``embeddings`` (B, D), ``weights`` (B,)."""
    return _default(pos_margin, neg_margin)(labels, embeddings, weights)


def _default(pos_margin, neg_margin):
    return ContrastiveLoss(pos_margin, neg_margin, distance=EuclideanDistance())
