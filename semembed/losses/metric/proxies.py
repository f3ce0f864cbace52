"""Proxy losses: one learnable proxy per training class (METRIC_LEARNING.md §8, §9).

Each is a Keras layer that owns its proxies as the weight ``proxies`` (C, D)
and is called as ``loss(labels (B,), embeddings (B, D), sample_weight=None)`` →
scalar; labels must lie in [0, C).  Proxies train with their own learning
rate through the task's ``ParamGroup(lr_multiplier=...)``.  A proxy loss mines
no pairs between samples, but it sees only the batch it is given: Proxy-NCA
and the normalised softmax are means of per-sample terms (equal replica
batches average to the global batch's value), while Proxy-Anchor's per-proxy
LSE and its set of present proxies depend on the whole batch.  The ``metric``
task gives every proxy loss the global batch
(:meth:`~semembed.training.step.StepContext.gather`) and scales the proxies'
gradient by 1/N on each of the N replicas.

* :class:`ProxyAnchorLoss` (Kim et al. CVPR 2020), PML form:
  L = (1/|P⁺|) Σ_{p∈P⁺} log(1 + Σ_{x∈X_p⁺} e^{−α(s(x,p) − δ)}) + (1/C) Σ_p log(1 + Σ_{x∈X_p⁻} e^{α(s(x,p) + δ)}),
  P⁺ = proxies of classes present in the batch; the negative part averages over
  **all** C proxies.  With ``distance="squared_euclidean"`` (AVSL's form):
  positive terms e^{α(d² − m_pos)}, negative e^{−α(d² − m_neg)}.
* :class:`ProxyNCALoss` (Movshovitz-Attias et al. ICCV 2017), PML form:
  loss_i = −log softmax_{y_i}(−s·‖x̂_i − p̂_c‖²) (positive proxy in the
  denominator); ``exclude_positive=True``: the paper's form (may be negative).
* :class:`NormalizedSoftmaxLoss` (Zhai & Wu 2019; PML): cross-entropy on cos(x, w_c)/T.

A sample of weight w enters Proxy-Anchor's sums as w·e^z (weight 0: absent)
and the other two as a weighted mean over anchors.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from semembed.errors import SemembedError
from semembed.losses.metric.base import ProxyLoss
from semembed.losses.metric.common import masked_lse
from semembed.losses.metric.distances import cosine_similarity, euclidean_distance


def _weighted_mean(values, weights):
    den = ops.sum(weights)
    return ops.where(den > 0, ops.sum(values * weights) / ops.where(den > 0, den, ops.ones_like(den)),
                     ops.zeros_like(den))


@keras.saving.register_keras_serializable(package="semembed")
class ProxyAnchorLoss(ProxyLoss):
    """Proxy-Anchor loss.

    Args:
        num_classes: C, the number of training classes.
        embedding_size: D.
        margin: δ = 0.1 (paper, repo, PML).
        alpha: α = 32 (paper, repo, PML).
        distance: ``cosine`` (default) or ``squared_euclidean`` (then α is the distance
            scale and ``pos_margin``/``neg_margin`` = 2 ∓ 2δ by default, 1.8 / 2.2).
        Proxies: N(0, 2/C) (the repo's Kaiming-normal fan_out; PML likewise).

    Batch scope: each proxy's LSE runs over every sample of the batch given and P⁺ is the classes present
    in it, so a replica's batch gives another value than the global batch; the ``metric`` task passes the
    global batch (:meth:`~semembed.training.step.StepContext.gather`).

    Raises:
        SemembedError: (when called) embeddings not (B, embedding_size), labels not (B,), or a known label
            outside [0, num_classes).
    """

    registry_name = "proxy_anchor"

    def __init__(self, num_classes: int, embedding_size: int, margin: float = 0.1, alpha: float = 32.0,
                 distance: str = "cosine", pos_margin: float | None = None, neg_margin: float | None = None, **kwargs):
        if distance not in ("cosine", "squared_euclidean"):
            raise SemembedError(f"ProxyAnchorLoss distance must be cosine or squared_euclidean, got {distance!r}")
        self.margin, self.alpha, self.distance = float(margin), float(alpha), distance
        self.pos_margin = 2.0 - 2.0 * self.margin if pos_margin is None else float(pos_margin)
        self.neg_margin = 2.0 + 2.0 * self.margin if neg_margin is None else float(neg_margin)
        super().__init__(num_classes, embedding_size, **kwargs)

    def default_initializer(self):
        return keras.initializers.RandomNormal(stddev=math.sqrt(2.0 / self.num_classes))

    def compute(self, labels, embeddings, proxies, weights):
        if self.distance == "cosine":
            s = cosine_similarity(embeddings, proxies)
            pos_z, neg_z = -self.alpha * (s - self.margin), self.alpha * (s + self.margin)
        else:
            d2 = euclidean_distance(embeddings, proxies, squared=True)
            pos_z, neg_z = self.alpha * (d2 - self.pos_margin), -self.alpha * (d2 - self.neg_margin)
        onehot = ops.equal(labels[:, None], ops.arange(self.num_classes, dtype="int32")[None, :])
        present = (weights > 0)[:, None]
        log_w = ops.log(ops.where(weights > 0, weights, ops.ones_like(weights)))[:, None]
        pos_c, has_pos = masked_lse(pos_z + log_w, ops.logical_and(onehot, present), axis=0, plus_one=True)
        neg_c, _ = masked_lse(neg_z + log_w, ops.logical_and(ops.logical_not(onehot), present), axis=0, plus_one=True)
        n_pos = ops.sum(ops.cast(has_pos, pos_c.dtype))
        return ops.sum(pos_c) / ops.maximum(n_pos, 1.0) + ops.sum(neg_c) / self.num_classes

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "alpha": self.alpha, "distance": self.distance,
                "pos_margin": self.pos_margin, "neg_margin": self.neg_margin}


@keras.saving.register_keras_serializable(package="semembed")
class ProxyNCALoss(ProxyLoss):
    """Proxy-NCA loss.

    Args:
        num_classes, embedding_size: C, D.
        softmax_scale: s = 32 (Proxy-Anchor repo / PML; the constant 2s of ‖x̂ − p̂‖² = 2 − 2cos cancels).
        exclude_positive: the paper's denominator without the positive proxy (default False: PML's).
        Proxies: N(0, 1) (PML).

    Batch scope: a weighted mean of per-sample terms (no mining), so equal replica batches average to the
    global batch's value; the ``metric`` task passes the global batch
    (:meth:`~semembed.training.step.StepContext.gather`).

    Raises:
        SemembedError: (when called) embeddings not (B, embedding_size), labels not (B,), or a known label
            outside [0, num_classes).
    """

    registry_name = "proxy_nca"

    def __init__(self, num_classes: int, embedding_size: int, softmax_scale: float = 32.0,
                 exclude_positive: bool = False, **kwargs):
        self.softmax_scale, self.exclude_positive = float(softmax_scale), bool(exclude_positive)
        super().__init__(num_classes, embedding_size, **kwargs)

    def compute(self, labels, embeddings, proxies, weights):
        logits = -self.softmax_scale * euclidean_distance(embeddings, proxies, squared=True)
        onehot = ops.equal(labels[:, None], ops.arange(self.num_classes, dtype="int32")[None, :])
        denom_mask = ops.logical_not(onehot) if self.exclude_positive else ops.ones_like(onehot)
        lse, _ = masked_lse(logits, denom_mask, axis=1)
        target = ops.sum(ops.where(onehot, logits, ops.zeros_like(logits)), axis=1)
        return _weighted_mean(lse - target, weights)

    def get_config(self):
        return {**super().get_config(), "softmax_scale": self.softmax_scale, "exclude_positive": self.exclude_positive}


@keras.saving.register_keras_serializable(package="semembed")
class NormalizedSoftmaxLoss(ProxyLoss):
    """Normalised softmax (NormFace / Zhai & Wu 2019): cross-entropy on cos(x, w_c) / T.

    Args:
        num_classes, embedding_size: C, D.
        temperature: T = 0.05 (PML default).
        Class weights: N(0, 1) (only their direction matters).

    Batch scope: a weighted mean of per-sample terms (no mining), so equal replica batches average to the
    global batch's value; the ``metric`` task passes the global batch
    (:meth:`~semembed.training.step.StepContext.gather`).

    Raises:
        SemembedError: (when called) embeddings not (B, embedding_size), labels not (B,), or a known label
            outside [0, num_classes).
    """

    registry_name = "normalized_softmax"

    def __init__(self, num_classes: int, embedding_size: int, temperature: float = 0.05, **kwargs):
        if temperature <= 0:
            raise SemembedError(f"NormalizedSoftmaxLoss temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        super().__init__(num_classes, embedding_size, **kwargs)

    def compute(self, labels, embeddings, proxies, weights):
        logits = cosine_similarity(embeddings, proxies) / self.temperature
        onehot = ops.equal(labels[:, None], ops.arange(self.num_classes, dtype="int32")[None, :])
        lse, _ = masked_lse(logits, ops.ones_like(onehot), axis=1)
        target = ops.sum(ops.where(onehot, logits, ops.zeros_like(logits)), axis=1)
        return _weighted_mean(lse - target, weights)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}
