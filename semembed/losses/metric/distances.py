"""Pairwise distances and similarities between query and reference embeddings (METRIC_LEARNING.md §0).

Each :class:`Distance` builds a ``(Q, R)`` matrix and says whether larger
means closer (``is_inverted``, as pytorch-metric-learning's ``BaseDistance``):

* ``cosine`` — S = x̂·ŷ (larger = closer);
* ``euclidean`` — d = sqrt(max(‖x̂‖² + ‖ŷ‖² − 2x̂·ŷ, 0)) (smaller = closer);
* ``squared_euclidean`` — d².

Embeddings are L2-normalised first (x̂ = x / sqrt(max(‖x‖², 1e-12)), PML's
default ``normalize_embeddings=True``); ``normalize=False`` keeps them raw
(Euclidean distances only).
"""

from __future__ import annotations

from keras import ops

from semembed.errors import SemembedError


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
