"""Blocked nearest-neighbour rankings with a deterministic tie-break (pure NumPy).

A ranking orders the database images of one query by ascending *distance*:
``-<q, x>`` of L2-normalised features (``normalize=True``, the reference's
``--norm``) or the squared Euclidean distance ``|q|² + |x|² - 2<q, x>``
(computed in that order, as the reference does).  Equal distances are broken
by ascending database index, so results never depend on the sort algorithm.

Ties up to floating-point noise: a matrix product's rounding depends on the
BLAS kernel (FMA or not, blocking, the position of a column in its tile), so
two mathematically equal distances may come out a few ulps apart, in an order
that differs between machines.  Distances are therefore rounded to a grid of
``2^-40`` (float64) or ``2^-20`` (float32) times their scale (1 for
normalised features; ``max|q|² + max|x|²``, rounded up to a power of two,
for squared Euclidean distances) before ranking: differences below it count
as ties and are broken by index.  Database rows that are exact duplicates get
bit-identical distances (copied from the first copy), whatever the kernel.

Speed trick: each distance is mapped to an order-preserving unsigned 64-bit
key whose low bits are replaced by the image index.  Sorting (or
partitioning) these keys *by value* is markedly faster than ``argsort`` and
directly yields the index order.  Distances that only differ in the bits
given up for the index (never for float32 features; about one pair in 10⁹
for float64) are detected and their rows re-ranked exactly with a stable
``argsort``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from semembed.errors import SemembedError

_INT64_MIN = np.int64(-(2**63))
_INT32_MIN = np.int32(-(2**31))


#: log2 of the tie grid relative to the distance scale, per feature dtype
TIE_GRID_BITS = {np.dtype(np.float64): 40, np.dtype(np.float32): 20}


def tie_grid(dtype: np.dtype, scale: float = 1.0) -> float:
    """Spacing of the grid distances are rounded to: ``2^(ceil(log2 scale) - bits)``."""
    exponent = int(np.ceil(np.log2(scale))) if scale > 0 else 0
    return float(np.ldexp(1.0, exponent - TIE_GRID_BITS[np.dtype(dtype)]))


def snap_to_grid(dist: np.ndarray, grid: float) -> np.ndarray:
    """Round ``dist`` in place to the nearest multiple of ``grid`` (a power of two).

    Adding and subtracting ``1.5 * 2^(p-1) * grid`` (p: mantissa digits) rounds
    to nearest-even multiples for ``|dist| < 2^(p-2) * grid``.
    """
    magic = dist.dtype.type(1.5 * np.ldexp(grid, np.finfo(dist.dtype).nmant))
    dist += magic
    dist -= magic
    return dist


def duplicate_rows(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, firsts)``: each row that repeats an earlier row exactly (bytewise), and that earlier row.

    A 64-bit hash of each row's bytes finds the candidates; only rows that
    share a hash are compared exactly (``np.unique`` of their bytes), so
    hash collisions cannot merge different rows.
    """
    feats = np.ascontiguousarray(features)
    n = len(feats)
    none = np.empty(0, dtype=np.intp)
    if n < 2:
        return none, none
    words = feats.reshape(n, -1).view(np.uint8).reshape(n, -1)
    if words.shape[1] % 4 == 0:
        words = words.view(np.uint32)
    hashes = np.empty(n, dtype=np.uint64)
    mult = np.random.default_rng(0x5E3).integers(1, 2**63, size=words.shape[1], dtype=np.uint64) | np.uint64(1)
    for s in range(0, n, 4096):  # wrap-around integer products: a multilinear hash of the words
        hashes[s : s + 4096] = words[s : s + 4096].astype(np.uint64) @ mult
    order = np.argsort(hashes, kind="stable")
    shared = hashes[order[1:]] == hashes[order[:-1]]
    if not shared.any():
        return none, none
    cand = np.unique(np.concatenate([order[1:][shared], order[:-1][shared]]))  # ascending row index
    sub = np.ascontiguousarray(feats[cand]).reshape(len(cand), -1)
    rows_as_bytes = sub.view(np.dtype((np.void, sub.dtype.itemsize * sub.shape[1]))).ravel()
    _, first, inverse = np.unique(rows_as_bytes, return_index=True, return_inverse=True)
    firsts = cand[first[inverse.ravel()]]
    dup = firsts != cand
    return cand[dup], firsts[dup]


@dataclass
class Database:
    """Features prepared once for repeated blocked distance computations.

    ``query_sqnorm_max``: the largest ``|q|²`` of the queries to come (squared
    Euclidean distances only), part of the tie grid's scale.
    """

    features: np.ndarray  # N x d, normalised when ``normalize``
    normalize: bool
    sqnorm: np.ndarray | None  # |x|² for squared Euclidean distances
    query_sqnorm_max: float | None = None

    def __post_init__(self) -> None:
        self._features_t = np.ascontiguousarray(self.features.T)  # d x N: the faster GEMM layout
        if self.normalize:
            scale = 1.0
        else:
            db_max = float(self.sqnorm.max()) if len(self.sqnorm) else 0.0
            q_max = db_max if self.query_sqnorm_max is None else float(self.query_sqnorm_max)
            scale = db_max + q_max
        self.grid = tie_grid(self.features.dtype, scale)
        self._dup_rows, self._dup_firsts = duplicate_rows(self.features)

    @classmethod
    def build(cls, features: np.ndarray, normalize: bool, name: str = "features") -> "Database":
        feats = prepare_features(features, normalize, name)
        sq = None if normalize else np.sum(feats**2, axis=-1)
        return cls(feats, normalize, sq)

    def distances(self, queries: np.ndarray, query_sqnorm: np.ndarray | None = None,
                  cols: slice | np.ndarray | None = None) -> np.ndarray:
        """``len(queries) x N`` distances (lower = closer) in the features' dtype, on the tie grid.

        ``cols``: only these database images (then duplicated rows are not made equal).
        """
        feats_t = self._features_t if cols is None else self._features_t[:, cols]
        # the factor (-1 or -2, exact in floating point) goes on the small query block, not the product
        if self.normalize:
            dist = np.negative(queries) @ feats_t
        else:
            if query_sqnorm is None:
                query_sqnorm = np.sum(queries**2, axis=-1)
            dots = (queries * queries.dtype.type(-2.0)) @ feats_t
            dist = (query_sqnorm[:, None] + (self.sqnorm if cols is None else self.sqnorm[cols])[None, :]) + dots
        if len(self._dup_rows) and cols is None:
            dist[:, self._dup_rows] = dist[:, self._dup_firsts]
        return snap_to_grid(dist, self.grid)

    @property
    def has_duplicates(self) -> bool:
        return bool(len(self._dup_rows))


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

    -0.0 and 0.0 get the same key.  (Used by tests; :func:`_packed` inlines it.)
    """
    if dist.dtype == np.float32:
        i = (dist + np.float32(0.0)).view(np.int32)
        key = (i ^ ((i >> 31) | _INT32_MIN)).view(np.uint32).astype(np.uint64)
        return key << np.uint64(32)
    i = (dist.astype(np.float64, copy=False) + 0.0).view(np.int64)
    return (i ^ ((i >> 63) | _INT64_MIN)).view(np.uint64)


def order32(values: np.ndarray) -> np.ndarray:
    """uint32 keys of float32 values in the same order (-0.0 and 0.0 get the same key)."""
    i = (np.asarray(values, dtype=np.float32) + np.float32(0.0)).view(np.int32)
    return (i ^ ((i >> 31) | _INT32_MIN)).view(np.uint32)


def from_order32(keys: np.ndarray) -> np.ndarray:
    """The float32 values of :func:`order32` keys (uint32)."""
    keys = np.asarray(keys, dtype=np.uint32)
    top = np.uint32(0x80000000)
    return np.where(keys & top, keys ^ top, ~keys).view(np.float32)


def _packed(dist: np.ndarray) -> tuple[np.ndarray, int]:
    """Keys with the column index in the low bits; returns (keys, index bits).

    A float's bits, read as a signed integer i, map to an unsigned order key by
    ``i ^ ((i >> sign) | MIN)``: negative numbers get all bits flipped, others
    only the sign bit.  float32 keys go straight into the high half of each
    64-bit word (little-endian view), the index into the low half.
    """
    b, n = dist.shape
    ibits = max(1, int(n - 1).bit_length())
    if dist.dtype == np.float32 and ibits <= 32 and sys.byteorder == "little":
        out = np.empty((b, n), dtype=np.uint64)
        words = out.view(np.uint32).reshape(b, n, 2)
        words[:, :, 0] = np.arange(n, dtype=np.uint32)
        i = (dist + np.float32(0.0)).view(np.int32)
        t = i >> 31
        t |= _INT32_MIN
        np.bitwise_xor(i, t, out=words[:, :, 1].view(np.int32))
        return out, 32
    i = (dist.astype(np.float64, copy=True) + 0.0).view(np.int64)
    t = i >> 63
    t |= _INT64_MIN
    i ^= t
    del t
    keys = i.view(np.uint64)
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
    if dist.dtype == np.float32 and (ibits == 32 or ibits <= 29):  # float32 keys are exact
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


_SAMPLE_RANK = 40  # order statistic of the column sample used as a threshold


def _top_by_threshold(dist: np.ndarray, length: int) -> np.ndarray | None:
    """Top ``length`` of each row via a sampled threshold, or None when not worthwhile.

    The ``_SAMPLE_RANK``-th smallest distance of a strided column sample is a
    threshold t below which about 2.5 x ``length`` images fall; then
    :func:`top_below`.
    """
    b, n = dist.shape
    need = length + 1
    stride = max(need * 5 // 2, 400) // _SAMPLE_RANK
    if stride < 8 or n < 16 * need:
        return None
    sample = np.ascontiguousarray(dist[:, ::stride])
    if sample.shape[1] <= _SAMPLE_RANK:
        return None
    thr = np.partition(sample, _SAMPLE_RANK - 1, axis=1)[:, _SAMPLE_RANK - 1]
    return top_below(dist, length, thr, cap=max(8 * need, 4 * _SAMPLE_RANK * stride))


def top_below(dist: np.ndarray, length: int, thr: np.ndarray, cap: int | None = None) -> np.ndarray:
    """Top ``length`` of each row (by distance, then index), ranking only the candidates ``d <= thr``.

    Only the candidates of each row (padded to a small matrix) are ranked;
    rows where fewer than ``length + 1`` or more than ``cap`` (default
    8·(length + 1)) candidates pass are ranked with a full partition instead.
    Exact: every image of the true top ``length`` has ``d <= t`` when at least
    ``length + 1`` images do (the extra one guards a tie at the cut).

    Args:
        dist: ``b x n`` distances; thr: ``b`` thresholds, e.g. the
            ``length + 1``-th smallest distance of each row.
    """
    b, n = dist.shape
    flat = np.flatnonzero(dist <= thr[:, None])  # much faster than a 2-D np.nonzero
    rows, cols = split_flat(flat, b, n)
    out, _, good = rank_candidates(rows, cols, dist.reshape(-1)[flat], b, length, cap)
    bad = np.flatnonzero(~good)
    if len(bad):
        out[bad] = _rank_keys(dist[bad], length)
    return out


def split_flat(flat: np.ndarray, b: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.divmod(flat, n)`` for ascending indices into a ``b x n`` array, without dividing."""
    rows = np.repeat(np.arange(b), np.diff(np.searchsorted(flat, np.arange(b + 1) * n)))
    return rows, flat - rows * n


def rank_candidates(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, b: int, length: int,
                    cap: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top ``length`` of each of ``b`` rows among candidate (row, column, distance) triples.

    The candidates of a row must be all its images below some threshold, listed
    by row and, within a row, by ascending column (ties then break by index).

    Returns:
        ``(columns, distances, good)``: ``b x length`` arrays, valid in the rows
        where ``good`` (at least ``length + 1`` and at most ``cap`` (default
        8·(length + 1)) candidates); other rows are left for the caller to rank.
    """
    need = length + 1
    cap = 8 * need if cap is None else cap
    counts = np.bincount(rows, minlength=b)
    good = (counts >= need) & (counts <= cap)
    out = np.zeros((b, length), dtype=np.intp)
    out_d = np.full((b, length), np.inf, dtype=values.dtype)
    if good.any():
        width = int(counts[good].max())
        if not good.all():
            keep = good[rows]
            rows, cols, values = rows[keep], cols[keep], values[keep]
        kept_start = np.concatenate([[0], np.cumsum(np.where(good, counts, 0))[:-1]])
        pos = np.arange(len(rows)) - kept_start[rows]
        grow = np.flatnonzero(good)
        slot = np.full(b, -1, dtype=np.intp)
        slot[grow] = np.arange(len(grow))
        cand_d = np.full((len(grow), width), np.inf, dtype=values.dtype)
        cand_i = np.zeros((len(grow), width), dtype=np.intp)
        srow = slot[rows]
        cand_d[srow, pos] = values
        cand_i[srow, pos] = cols
        # candidate columns are in ascending image order, so ties still break by index
        order = _rank_keys(cand_d, length)
        out[grow] = np.take_along_axis(cand_i, order, axis=1)
        out_d[grow] = np.take_along_axis(cand_d, order, axis=1)
    return out, out_d, good


def rank_block(dist: np.ndarray, length: int | None = None) -> np.ndarray:
    """Column indices of each row sorted by (distance, index); only the first ``length`` when given.

    ``length == 1`` is ``np.argmin`` (its first occurrence); other ``length < n``
    rank only candidates below a sampled threshold (wide rows) or use a partial
    sort (``np.partition``) of the packed keys.
    """
    n = dist.shape[1]
    length = n if length is None else int(length)
    if not 1 <= length <= n:
        raise SemembedError(f"ranking length {length} must be between 1 and {n}")
    if length == 1:  # the first occurrence of the smallest distance: ties go to the lower index
        return np.argmin(dist, axis=1)[:, None]
    if length < n:
        top = _top_by_threshold(dist, length)
        if top is not None:
            return top
    return _rank_keys(dist, length)


def _rank_keys(dist: np.ndarray, length: int) -> np.ndarray:
    n = dist.shape[1]
    keys, ibits = _packed(dist)
    if length < n:
        # one extra element shows whether the cut falls inside a collision group
        keep = length + 1
        keys = np.partition(keys, keep - 1, axis=1)[:, :keep]
    keys.sort(axis=1)
    return _fix_collisions(keys, dist, ibits, length)
