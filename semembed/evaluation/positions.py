"""Positions of chosen images in each query's ranking, without ranking every image (pure NumPy).

AP, R-precision and MAP@R only need where the relevant (same-class) images
land in each ranking.  The position of image j in the ranking of row r (by
distance, ties by lower index; :mod:`semembed.evaluation.ranking`) is

    pos(r, j) = 1 + #{l : d[r, l] < d[r, j]} + #{l < j : d[r, l] == d[r, j]},

a count, found by a binary search in the row sorted (:class:`SortedPrefix`,
:func:`count_below`); the row need not be sorted beyond its farthest chosen
image, nor carry image indices:

* float32 rows of at least ``KEYED_MIN_WIDTH`` images are sorted as 64-bit
  (distance, column) keys, and only up to the farthest chosen image when a
  sample says that this is at most ``DENSE_FRACTION`` of the row: the search
  for (d[r, j], j) gives both counts at once;
* other rows are sorted as values (``np.sort``, about twice as fast as
  keys); the second count is zero unless another image has exactly the same
  distance, which the sorted values show: then it is counted in the row (a few
  such images per row), or the row is ranked in full
  (:func:`semembed.evaluation.ranking.rank_block`).
"""

from __future__ import annotations

import sys

import numpy as np

from semembed.evaluation.ranking import _packed, from_order32, order32, rank_block

#: a row with more chosen images tied with another image than this is ranked in full
TIES_COUNTED_PER_ROW = 8
#: distances compared at once when counting ties directly
_TIE_CHUNK_ELEMENTS = 1 << 20
#: values per group of the coarse level of :func:`count_below`
_GROUP = 64
#: rows with more of their values up to the limit than this share are sorted in full (:class:`SortedPrefix`)
DENSE_FRACTION = 0.4
#: float32 rows at least this wide are sorted as (distance, column) keys; narrower ones, where ties are
#: rarer and cheap to count, as values (measured: keys 17% faster at N = 100,000, 20% slower at 10,000)
KEYED_MIN_WIDTH = 1 << 15
#: every this many columns are sampled to judge that share
_SAMPLE_STRIDE = 16


def _lift(flat: np.ndarray, base: np.ndarray, values: np.ndarray, top: int,
          limit: np.ndarray | int | None = None) -> np.ndarray:
    """Largest c with flat[base + c - 1] < value (ascending values from base), by steps top, top/2, ... 1.

    Without ``limit`` every probe must be in range (padding of +inf after each row); else c <= limit.
    """
    count = np.zeros(len(base), dtype=np.intp)
    base = base - 1
    step = top
    while step:
        cand = count + step  # are the first `cand` values all below?
        probe = flat[base + (cand if limit is None else np.minimum(cand, limit))]
        take = probe < values
        if limit is not None:
            take &= cand <= limit
        np.add(count, step, out=count, where=take)
        step >>= 1
    return count


def count_below(sorted_rows: np.ndarray, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``#{l : sorted_rows[rows[i], l] < values[i]}`` for each i (a lower bound per row).

    Args:
        sorted_rows: ``b x n``, each row sorted ascending (floats or unsigned keys).
        rows: row of each search (``m`` integers in ``[0, b)``).
        values: ``m`` values to place.

    Returns:
        ``m`` counts in ``[0, n]``, ``np.searchsorted(sorted_rows[rows[i]], values[i])``
        for every i at once: binary lifting on every 64th value of each row
        (a small array that stays in cache), then within a group of 64.
    """
    b, n = sorted_rows.shape
    rows = np.asarray(rows, dtype=np.intp)
    if n == 0:
        return np.zeros(len(rows), dtype=np.intp)
    if n < 4 * _GROUP:
        return _lift(sorted_rows.reshape(-1), rows * n, values, 1 << (n.bit_length() - 1), n)
    nc = n // _GROUP
    width = (1 << nc.bit_length()) - 1  # >= nc; the padding (+inf, or the largest key) is never below a value
    top = np.inf if sorted_rows.dtype.kind == "f" else np.iinfo(sorted_rows.dtype).max
    coarse = np.full((b, width), top, dtype=sorted_rows.dtype)
    coarse[:, :nc] = sorted_rows[:, _GROUP - 1 :: _GROUP][:, :nc]  # coarse[r, i] = sorted[r, 64(i+1) - 1]
    groups = _lift(coarse.reshape(-1), rows * width, values, (width + 1) // 2)
    start = groups * _GROUP  # sorted[start - 1] < value <= sorted[start + 63] (when they exist)
    window = np.minimum(_GROUP - 1, n - start)
    return start + _lift(sorted_rows.reshape(-1), rows * n + start, values, _GROUP // 2, window)


class SortedPrefix:
    """Each row of ``dist`` sorted up to a limit: all that positions and top-K thresholds need.

    float32 distances of rows at least ``KEYED_MIN_WIDTH`` wide are sorted as
    64-bit keys that order (distance, column): the order key of the distance
    (:func:`keys_of`) and the column, so that a search for (distance, column)
    gives the exact position, ties included.
    Rows where a column sample says that at most ``DENSE_FRACTION`` of the
    values are ``<= limit`` only sort those: their keys, with the row in the
    top bits, are gathered into one array and sorted once (no padding).  The
    other rows are sorted in full, row by row; so are narrower float32 rows and
    float64 distances (whose value and index do not fit in 64 bits), as values:
    :func:`ranking_positions` then counts ties separately.

    Args:
        dist: ``b x n`` distances.
        limit: ``b`` values; every value searched later in row r must be ``<= limit[r]``.
        at_least: the limit is raised (from the sample) until every row holds at
            least this many values, so that :meth:`nth` works up to ``at_least - 1``.
    """

    def __init__(self, dist: np.ndarray, limit: np.ndarray, at_least: int = 0):
        b, n = dist.shape
        self.ibits = max(1, int(n - 1).bit_length())
        rbits = max(1, int(b - 1).bit_length())
        self.keyed = (dist.dtype == np.float32 and n >= KEYED_MIN_WIDTH and self.ibits + rbits <= 32
                      and sys.byteorder == "little")
        dense = np.ones(b, dtype=bool)
        stride = _SAMPLE_STRIDE
        if self.keyed and n >= 32 * stride:  # narrow rows, and float64, are sorted in full
            limit = np.asarray(limit, dtype=dist.dtype).copy()
            sample = np.ascontiguousarray(dist[:, ::stride])
            if at_least:
                k = min(3 * at_least // (2 * stride) + 4, sample.shape[1])  # about 1.5 x at_least values below
                np.maximum(limit, np.partition(sample, k - 1, axis=1)[:, k - 1], out=limit)
            dense = np.count_nonzero(sample <= limit[:, None], axis=1) * stride > DENSE_FRACTION * n
        self.count = np.zeros(b, dtype=np.intp)
        self.start = np.zeros(b, dtype=np.intp)
        self.keys = np.empty(0, dtype=np.uint64)
        if not dense.all():
            cut = np.where(dense, -np.inf, limit).astype(dist.dtype)
            flat = np.flatnonzero(dist <= cut[:, None])  # row-major: by row, then column
            count = np.diff(np.searchsorted(flat, np.arange(b + 1) * n))
            rows = np.repeat(np.arange(b), count)
            short = ~dense & (count < at_least)  # the sample misjudged them: sorted in full
            if short.any():
                dense |= short
                keep = ~dense[rows]
                flat, rows = flat[keep], rows[keep]
                count[short] = 0
            self.count, self.start = count, np.cumsum(count) - count
            # the key puts the distance's order key between the row and the column (flat = row * n + column)
            keys = order32(dist.reshape(-1)[flat]).astype(np.uint64) << np.uint64(self.ibits)
            flat -= rows * n
            keys |= (rows.astype(np.uint64) << np.uint64(32 + self.ibits)) | flat.astype(np.uint64)
            del rows, flat
            keys.sort()
            self.keys = keys
        self.dense = dense
        self.slot = np.cumsum(dense) - 1  # row -> row of `full` (for dense rows)
        whole = dist if dense.all() else dist[dense]
        if self.keyed:  # the order key in the high half, the column in the low half
            self.full = _packed(whole)[0] if len(whole) else np.empty((0, n), dtype=np.uint64)
            self.full.sort(axis=1)
        else:
            self.full = np.sort(whole, axis=1)

    def count_below(self, rows: np.ndarray, values: np.ndarray, cols: np.ndarray | None = None) -> np.ndarray:
        """Images before ``(values[i], cols[i])`` in row ``rows[i]`` in (distance, index) order
        (float32), or ``#{l : dist[rows[i], l] < values[i]}`` (float64); ``values[i] <= limit[rows[i]]``."""
        out = np.empty(len(rows), dtype=np.intp)
        dense = self.dense[rows]
        sel = np.flatnonzero(dense)
        if len(sel):
            r = rows[sel]
            needles = keys_of(values[sel], cols[sel]) if self.keyed else values[sel]
            out[sel] = count_below(self.full, self.slot[r], needles)
        sel = np.flatnonzero(~dense)
        if len(sel):
            r = rows[sel]
            needles = order32(values[sel]).astype(np.uint64) << np.uint64(self.ibits)
            needles |= (r.astype(np.uint64) << np.uint64(32 + self.ibits)) | cols[sel].astype(np.uint64)
            order = np.argsort(needles)  # ascending needles: each search starts where the last ended
            found = np.empty(len(sel), dtype=np.intp)
            found[order] = np.searchsorted(self.keys, needles[order])
            out[sel] = found - self.start[r]
        return out

    def value_at(self, rows: np.ndarray, k: np.ndarray) -> np.ndarray:
        """The (k+1)-th smallest distance of each row (+inf beyond the row, or beyond what a row holds)."""
        out = np.full(len(rows), np.inf, dtype=np.float32 if self.keyed else self.full.dtype)
        dense = self.dense[rows]
        sel = np.flatnonzero(dense & (k < self.full.shape[1]))
        if len(sel):
            held = self.full[self.slot[rows[sel]], k[sel]]
            out[sel] = distances_of(held) if self.keyed else held
        sel = np.flatnonzero(~dense & (k < self.count[rows]))
        if len(sel):
            held = self.keys[self.start[rows[sel]] + k[sel]] >> np.uint64(self.ibits)
            out[sel] = from_order32((held & np.uint64(0xFFFFFFFF)).astype(np.uint32))
        return out

    def nth(self, k: int) -> np.ndarray:
        """The (k+1)-th smallest distance of every row (``k < at_least``)."""
        rows = np.arange(len(self.dense))
        return self.value_at(rows, np.full(len(rows), k))


def keys_of(values: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """64-bit keys of float32 distances and their columns, ordered as (distance, column)."""
    key = order32(values).astype(np.uint64) << np.uint64(32)
    key |= np.asarray(cols).astype(np.uint64)
    return key


def distances_of(keys: np.ndarray) -> np.ndarray:
    """The float32 distances of :func:`keys_of`'s keys."""
    return from_order32((keys >> np.uint64(32)).astype(np.uint32))


def ranking_positions(dist: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                      prefix: SortedPrefix | None = None) -> np.ndarray:
    """1-based position of image ``cols[i]`` in the ranking of row ``rows[i]`` of ``dist``.

    Args:
        dist: ``b x n`` distances (lower = closer), e.g. on the tie grid of
            :class:`semembed.evaluation.ranking.Database`; an excluded image
            set to +inf lands after every finite distance.
        rows, cols: ``m`` (row, column) pairs with finite distances.
        prefix: the rows sorted up to at least each row's largest
            ``dist[rows[i], cols[i]]`` (default: built here).

    Returns:
        ``m`` positions: one plus the place of ``cols[i]`` in
        ``rank_block(dist)[rows[i]]`` (ties broken by lower index).
    """
    rows = np.asarray(rows, dtype=np.intp)
    cols = np.asarray(cols, dtype=np.intp)
    b, n = dist.shape
    values = dist[rows, cols]
    if prefix is None:
        prefix = SortedPrefix(dist, largest_per_row(b, rows, values, dist.dtype))
    if prefix.keyed:  # keys hold the column: the count is the exact position
        return prefix.count_below(rows, values, cols) + 1
    below = prefix.count_below(rows, values)  # values: every row sorted in full
    pos = below + 1
    # another image at exactly the same distance sits right after the first of the group
    tied = np.flatnonzero(prefix.value_at(rows, below + 1) == values)
    if not len(tied):
        return pos
    per_row = np.bincount(rows[tied], minlength=b)
    many = per_row[rows[tied]] > TIES_COUNTED_PER_ROW
    few = tied[~many]
    chunk = max(1, _TIE_CHUNK_ELEMENTS // n)
    cols_before = np.arange(n)
    for s in range(0, len(few), chunk):  # #{l < j : d[r, l] == d[r, j]}, pair by pair
        t = few[s : s + chunk]
        same = dist[rows[t]] == values[t, None]
        same &= cols_before < cols[t, None]
        pos[t] += np.count_nonzero(same, axis=1)
    if many.any():
        full_rows = np.unique(rows[tied[many]])
        order = rank_block(dist[full_rows])
        place = np.empty_like(order)
        np.put_along_axis(place, order, np.broadcast_to(np.arange(n), order.shape), axis=1)
        slot = np.full(b, -1, dtype=np.intp)
        slot[full_rows] = np.arange(len(full_rows))
        redo = np.flatnonzero(slot[rows] >= 0)
        pos[redo] = place[slot[rows[redo]], cols[redo]] + 1
    return pos


def largest_per_row(b: int, rows: np.ndarray, values: np.ndarray, dtype) -> np.ndarray:
    """The largest of ``values`` in each of ``b`` rows (-inf for rows without any)."""
    out = np.full(b, -np.inf, dtype=dtype)
    np.maximum.at(out, rows, values)
    return out
