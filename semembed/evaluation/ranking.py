"""Blocked nearest-neighbour rankings with a deterministic tie-break (pure NumPy).

A ranking orders the database images of one query by ascending *distance*:
``-<q, x>`` of L2-normalised features (``normalize=True``, the reference's
``--norm``) or the squared Euclidean distance ``|q|² + |x|² - 2<q, x>``
(computed in that order, as the reference does).  Equal distances are broken
by ascending database index, so results never depend on the sort algorithm.

Speed trick: each distance is mapped to an order-preserving unsigned 64-bit
key whose low bits are replaced by the image index.  Sorting (or
partitioning) these keys *by value* is markedly faster than ``argsort`` and
directly yields the index order.  Distances that only differ in the bits
given up for the index (never for float32 features; about one pair in 10⁹
for float64) are detected and their rows re-ranked exactly with a stable
``argsort``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semembed.errors import SemembedError

_SIGN64 = np.uint64(1 << 63)
_SIGN32 = np.uint32(1 << 31)


@dataclass
class Database:
    """Features prepared once for repeated blocked distance computations."""

    features: np.ndarray  # N x d, normalised when ``normalize``
    normalize: bool
    sqnorm: np.ndarray | None  # |x|² for squared Euclidean distances

    @classmethod
    def build(cls, features: np.ndarray, normalize: bool, name: str = "features") -> "Database":
        feats = prepare_features(features, normalize, name)
        sq = None if normalize else np.sum(feats**2, axis=-1)
        return cls(feats, normalize, sq)

    def distances(self, queries: np.ndarray, query_sqnorm: np.ndarray | None = None) -> np.ndarray:
        """``len(queries) x N`` distances (lower = closer) in the features' dtype."""
        dots = queries @ self.features.T
        if self.normalize:
            np.negative(dots, out=dots)
            return dots
        if query_sqnorm is None:
            query_sqnorm = np.sum(queries**2, axis=-1)
        dots *= -2.0
        return (query_sqnorm[:, None] + self.sqnorm[None, :]) + dots


def prepare_features(features: np.ndarray, normalize: bool, name: str = "features") -> np.ndarray:
    """Check a feature matrix (2-D, float, finite) and L2-normalise it when asked.

    Integer features are converted to float64; float32/float64 are kept, as the
    reference computes in the dtype of the dump.
    """
    feats = np.asarray(features)
    if feats.ndim != 2:
        raise SemembedError(f"{name}: expected a 2-D array (images x dimensions), got shape {feats.shape}")
    if feats.shape[0] == 0 or feats.shape[1] == 0:
        raise SemembedError(f"{name}: empty feature matrix of shape {feats.shape}")
    if not np.issubdtype(feats.dtype, np.floating) or feats.dtype == np.float16:
        feats = feats.astype(np.float64)
    finite = np.isfinite(feats).all(axis=1)
    if not finite.all():
        rows = np.flatnonzero(~finite)
        raise SemembedError(
            f"{name}: {len(rows)} feature row(s) contain NaN or infinite values (first rows: {rows[:5].tolist()})"
        )
    if normalize:
        norms = np.linalg.norm(feats, axis=-1, keepdims=True)
        zero = np.flatnonzero(norms[:, 0] == 0)
        if len(zero):
            raise SemembedError(
                f"{name}: {len(zero)} feature row(s) are all zero and cannot be L2-normalised "
                f"(first rows: {zero[:5].tolist()}); evaluate with normalisation off"
            )
        feats = feats / norms
    return np.ascontiguousarray(feats)


def order_keys(dist: np.ndarray) -> np.ndarray:
    """Map float distances to uint64 keys with the same order (float32: exact in the top 32 bits).

    -0.0 and 0.0 get the same key.
    """
    if dist.dtype == np.float32:
        bits = (dist + np.float32(0.0)).view(np.uint32)
        keys = np.where(bits & _SIGN32, ~bits, bits | _SIGN32).astype(np.uint64)
        keys <<= np.uint64(32)
        return keys
    bits = (dist.astype(np.float64, copy=False) + 0.0).view(np.uint64)
    return np.where(bits & _SIGN64, ~bits, bits | _SIGN64)


def _packed(dist: np.ndarray) -> tuple[np.ndarray, int]:
    """Keys with the column index in the low bits; returns (keys, index bits)."""
    n = dist.shape[1]
    ibits = max(1, int(n - 1).bit_length())
    keys = order_keys(dist)
    keys &= ~np.uint64((1 << ibits) - 1)
    keys |= np.arange(n, dtype=np.uint64)[None, :]
    return keys, ibits


def _fix_collisions(sorted_keys: np.ndarray, dist: np.ndarray, ibits: int, length: int) -> np.ndarray:
    """Decode indices; re-rank exactly the rows where truncated keys merged distinct distances.

    With a partial ranking (``sorted_keys`` holds ``length + 1`` keys), a merged
    group that straddles the cut may hide a closer image beyond it, so such rows
    are re-ranked too.
    """
    mask = np.uint64((1 << ibits) - 1)
    idx = (sorted_keys & mask).astype(np.intp)
    if dist.dtype == np.float32 and ibits <= 32:
        return idx[:, :length]
    same = ((sorted_keys[:, 1:] ^ sorted_keys[:, :-1]) >> np.uint64(ibits)) == 0
    r, c = np.nonzero(same)
    if len(r):
        a = dist[r, idx[r, c]]
        b = dist[r, idx[r, c + 1]]
        bad = r[a != b]
        if sorted_keys.shape[1] > length:
            bad = np.concatenate([bad, r[c == length - 1]])
        bad = np.unique(bad)
        if len(bad):
            idx[bad, :length] = np.argsort(dist[bad], axis=1, kind="stable")[:, :length]
    return idx[:, :length]


def rank_block(dist: np.ndarray, length: int | None = None) -> np.ndarray:
    """Column indices of each row sorted by (distance, index); only the first ``length`` when given.

    ``length < n`` uses a partial sort (``np.partition``) of the packed keys.
    """
    n = dist.shape[1]
    length = n if length is None else int(length)
    if not 1 <= length <= n:
        raise SemembedError(f"ranking length {length} must be between 1 and {n}")
    keys, ibits = _packed(dist)
    if length < n:
        # one extra element shows whether the cut falls inside a collision group
        keep = length + 1
        keys = np.partition(keys, keep - 1, axis=1)[:, :keep]
    keys.sort(axis=1)
    return _fix_collisions(keys, dist, ibits, length)
