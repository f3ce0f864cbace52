"""Sample weights from a class's similarity matrix (WEAKSHOT.md §2.3).

For one novel class with N web images and S[i, j] = s(x_i, x_j) (first x_i):

* ``avg`` (the reference's ``avgX``; X = ``fraction``, k = ⌊X·N⌋ ≥ 1):
  r_i = mean of the k largest entries of row i; X = 1 is the row mean,
  self-similarity included.
* ``savg`` (``savgX``): r_i = ½·(top-k mean of row i + top-k mean of column i).
* ``none``: r_i = 1.
* Normalisation ``one_mean``: w_i = r_i / mean(r) — the weights of each class
  average exactly 1; no temperature, no clipping.

Stage 3a of the reference uses ``savg`` (``savg1``), stage 3b ``avg`` (``avg1``).
"""

from __future__ import annotations

import numpy as np

from semembed.errors import SemembedError

WEIGHT_TYPES = ("avg", "savg", "none")


def top_k_count(n: int, fraction: float) -> int:
    """k = ⌊fraction·n⌋, at least 1."""
    if not 0.0 < fraction <= 1.0:
        raise SemembedError(f"--fraction must be in (0, 1], got {fraction}")
    return max(int(np.floor(fraction * n)), 1)


def top_k_mean(values: np.ndarray, k: int, axis: int = 1) -> np.ndarray:
    """Mean of the k largest entries along ``axis`` (k = length: the plain mean)."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[axis]
    if k >= n:
        return values.mean(axis=axis)
    part = np.partition(values, n - k, axis=axis)
    return np.take(part, np.arange(n - k, n), axis=axis).mean(axis=axis)


def normalise_one_mean(r: np.ndarray) -> np.ndarray:
    """w = r / mean(r) (all ones when the mean is 0)."""
    r = np.asarray(r, dtype=np.float64)
    m = r.mean() if r.size else 0.0
    return np.ones_like(r) if m <= 0 else r / m


def scores_from_matrix(similarity: np.ndarray, weight_type: str = "savg", fraction: float = 1.0) -> np.ndarray:
    """Un-normalised r (N,) from a full N × N matrix (small classes, tests)."""
    s = np.asarray(similarity, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise SemembedError(f"expected a square similarity matrix, received shape {s.shape}")
    if weight_type not in WEIGHT_TYPES:
        raise SemembedError(f"unknown weight type {weight_type!r}; expected one of {', '.join(WEIGHT_TYPES)}")
    if weight_type == "none":
        return np.ones(len(s))
    k = top_k_count(len(s), fraction)
    rows = top_k_mean(s, k, axis=1)
    return rows if weight_type == "avg" else 0.5 * (rows + top_k_mean(s, k, axis=0))


def weights_from_matrix(similarity: np.ndarray, weight_type: str = "savg", fraction: float = 1.0) -> np.ndarray:
    """Normalised weights (N,), class mean 1 (see the module docstring)."""
    return normalise_one_mean(scores_from_matrix(similarity, weight_type, fraction))
