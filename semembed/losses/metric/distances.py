"""Pairwise distances and similarities between query and reference embeddings (METRIC_LEARNING.md §0).

Each :class:`Distance` builds a ``(Q, R)`` matrix and says whether larger
means closer (``is_inverted``, as pytorch-metric-learning's ``BaseDistance``):

* ``cosine`` — S = x̂·ŷ (larger = closer);
* ``euclidean`` — d = sqrt(‖x̂‖² + ‖ŷ‖² − 2x̂·ŷ) (smaller = closer), exactly 0 for identical vectors
  (values within the Gram form's rounding error are set to 0, see :func:`euclidean_distance`);
* ``squared_euclidean`` — d².

Embeddings are L2-normalised first (x̂ = x / sqrt(max(‖x‖², 1e-12)), PML's
default ``normalize_embeddings=True``); ``normalize=False`` keeps them raw
(Euclidean distances only).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from semembed.errors import SemembedError

#: squared distances at most this many machine epsilons × (‖x‖² + ‖y‖²) are rounding noise of the Gram form: 0
ROUNDING_TOLERANCE = 16.0


def l2_normalize(x, eps: float = 1e-12):
    """Rows of ``x`` scaled to unit length (zero rows stay zero)."""
    return x / ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=-1, keepdims=True), eps))


def cosine_similarity(query, reference=None):
    """``(Q, R)`` cosine similarities (larger = closer)."""
    q = l2_normalize(query)
    r = q if reference is None else l2_normalize(reference)
    return ops.matmul(q, ops.transpose(r))


def euclidean_distance(query, reference=None, *, normalize: bool = True, squared: bool = False):
    """``(Q, R)`` Euclidean distances (smaller = closer), of L2-normalised rows by default (PML's ``LpDistance``).

    Computed from the Gram matrix, d² = ‖x‖² + ‖y‖² − 2x·y, whose rounding error is about
    ε·(‖x‖² + ‖y‖²) (ε: the dtype's machine epsilon): squared distances below
    :data:`ROUNDING_TOLERANCE` × that are set to exactly 0, so identical vectors (duplicates, and each
    row with itself) are at distance exactly 0 — PML's "mean over non-zero pairs" does not count them —
    with a zero gradient.  Elsewhere the square root's gradient is finite (d² above the tolerance).
    """
    q = l2_normalize(query) if normalize else query
    r = q if reference is None else (l2_normalize(reference) if normalize else reference)
    q_sq, r_sq = ops.sum(ops.square(q), axis=-1)[:, None], ops.sum(ops.square(r), axis=-1)[None, :]
    sq = q_sq + r_sq - 2.0 * ops.matmul(q, ops.transpose(r))
    eps = float(np.finfo(keras.backend.standardize_dtype(sq.dtype)).eps)
    zero = sq <= ops.stop_gradient(ROUNDING_TOLERANCE * eps * (q_sq + r_sq))
    sq = ops.where(zero, ops.zeros_like(sq), sq)
    if squared:
        return sq
    return ops.where(zero, ops.zeros_like(sq), ops.sqrt(ops.where(zero, ops.ones_like(sq), sq)))


class Distance:
    """A query x reference matrix function; ``is_inverted``: larger values mean closer."""

    name = ""
    is_inverted = False

    def __init__(self, normalize: bool = True):
        self.normalize = bool(normalize)

    def __call__(self, query, reference=None):
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"name": self.name, "normalize": self.normalize}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(normalize={self.normalize})"


class CosineSimilarity(Distance):
    """Cosine similarity of L2-normalised embeddings, in [−1, 1] (larger = closer)."""

    name = "cosine"
    is_inverted = True

    def __init__(self, normalize: bool = True):
        if not normalize:
            raise SemembedError("distance cosine always normalises the embeddings (normalize=False is meaningless)")
        super().__init__(True)

    def __call__(self, query, reference=None):
        return cosine_similarity(query, reference)


class EuclideanDistance(Distance):
    """Euclidean distance (of L2-normalised embeddings by default), in [0, 2] (smaller = closer)."""

    name = "euclidean"
    squared = False

    def __call__(self, query, reference=None):
        return euclidean_distance(query, reference, normalize=self.normalize, squared=self.squared)


class SquaredEuclideanDistance(EuclideanDistance):
    """Squared Euclidean distance (of L2-normalised embeddings by default), in [0, 4]."""

    name = "squared_euclidean"
    squared = True


DISTANCES = {cls.name: cls for cls in (CosineSimilarity, EuclideanDistance, SquaredEuclideanDistance)}


def get_distance(spec) -> Distance:
    """A :class:`Distance` from an instance, a name (``cosine``, ``euclidean``, ``squared_euclidean``) or a config dict."""
    if isinstance(spec, Distance):
        return spec
    if isinstance(spec, dict):
        spec = dict(spec)
        name = spec.pop("name")
        if name not in DISTANCES:
            raise SemembedError(f"unknown distance {name!r}; known: {', '.join(DISTANCES)}")
        return DISTANCES[name](**spec)
    if spec not in DISTANCES:
        raise SemembedError(f"unknown distance {spec!r}; known: {', '.join(DISTANCES)}")
    return DISTANCES[spec]()
