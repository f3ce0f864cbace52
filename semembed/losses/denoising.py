"""Denoising terms of SimTrans (WEAKSHOT.md §2.5): the similarity rescaling g and the graph loss.

``rescale_similarity``: g(a) = (e^{μa} − 1)/(e^{μ} − 1); g(0) = 0, g(1) = 1,
increasing, concave for μ < 0 (the reference's μ = −4 lifts small
similarities: g(0.5) = 1/(1 + e^{μ/2}) ≈ 0.881); μ = 0 is the identity.

``graph_loss``: L = (1/B²)·Σ_{i,j} Ã[i, j]·‖h_i − h_j‖² over every pair of the
batch (diagonal included, contributing 0), on raw features; only the
symmetric part of Ã matters.  The sample-weighted cross-entropy of §2.3,
(1/B)·Σ w_i·CE_i, is the training core's per-sample weights (``--sample_weights``).
"""

from __future__ import annotations

import math

from keras import ops

#: the reference's rescaling exponent (alternate_with_GCN.py, --mu)
DEFAULT_MU = -4.0


def rescale_similarity(a, mu: float = DEFAULT_MU):
    """Ã = g(A) elementwise (see the module docstring); ``mu`` = 0 returns ``a``."""
    if mu == 0:
        return a
    return ops.expm1(mu * a) / math.expm1(mu)


def squared_distances(h):
    """(B, B) matrix ‖h_i − h_j‖² (float32; clipped at 0 against rounding)."""
    h = ops.cast(h, "float32")
    sq = ops.sum(h * h, axis=-1)
    d = sq[:, None] + sq[None, :] - 2.0 * ops.matmul(h, ops.transpose(h))
    return ops.maximum(d, 0.0)


def graph_loss(h, adjacency, mask=None):
    """(1/B²)·Σ Ã ⊙ D for features ``h`` (B, d) and rescaled adjacency ``adjacency`` (B, B).

    ``mask`` (B, B), optional: the reference's ``max(C, eye)`` (1 keeps a pair); default all pairs.
    """
    d = squared_distances(h)
    a = ops.cast(adjacency, "float32")
    if mask is not None:
        a = a * ops.cast(mask, "float32")
    b = ops.cast(ops.shape(d)[0], "float32")
    return ops.sum(a * d) / (b * b)
