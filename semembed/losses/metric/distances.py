"""Pairwise distance / similarity matrices between query and reference embeddings (``keras.ops``)."""

from __future__ import annotations

from keras import ops


def l2_normalize(x, eps: float = 1e-12):
    """Rows of ``x`` scaled to unit length (zero rows stay zero)."""
    return x / ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=-1, keepdims=True), eps))


def cosine_similarity(query, reference=None):
    """``(Q, R)`` cosine similarities (larger = closer)."""
    q = l2_normalize(query)
    r = q if reference is None else l2_normalize(reference)
    return ops.matmul(q, ops.transpose(r))


def euclidean_distance(query, reference=None, *, normalize: bool = True, squared: bool = False, eps: float = 1e-12):
    """``(Q, R)`` Euclidean distances (smaller = closer), of L2-normalised rows by default (PML's ``LpDistance``).

    The square root has a finite gradient at 0 (``eps`` inside).
    """
    q = l2_normalize(query) if normalize else query
    r = q if reference is None else (l2_normalize(reference) if normalize else reference)
    sq = (ops.sum(ops.square(q), axis=-1)[:, None] + ops.sum(ops.square(r), axis=-1)[None, :]
          - 2.0 * ops.matmul(q, ops.transpose(r)))
    sq = ops.maximum(sq, 0.0)
    return sq if squared else ops.sqrt(sq + eps)
