"""Positions of chosen images in each query's ranking, without ranking every image (pure NumPy).

AP, R-precision and MAP@R only need where the relevant (same-class) images
land in each ranking.  The position of image j in the ranking of row r (by
distance, ties by lower index; :mod:`semembed.evaluation.ranking`) is

    pos(r, j) = 1 + #{l : d[r, l] < d[r, j]} + #{l < j : d[r, l] == d[r, j]}.

The first count is a binary search of d[r, j] among the row's *values*
sorted (``np.sort``: no index to carry, about twice as fast as sorting keys
that hold the index too).  The second is zero unless another image has
exactly the same distance, which the sorted values show; then it is counted
directly in the row (a few such images per row), or, in rows with many of
them, the row is ranked in full with :func:`semembed.evaluation.ranking.rank_block`.
"""

from __future__ import annotations

import numpy as np

from semembed.evaluation.ranking import rank_block

#: a row with more chosen images tied with another image than this is ranked in full
TIES_COUNTED_PER_ROW = 8
#: distances compared at once when counting ties directly
_TIE_CHUNK_ELEMENTS = 1 << 20
#: values per group of the coarse level of :func:`count_below`
_GROUP = 64


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
        sorted_rows: ``b x n``, each row sorted ascending.
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
    width = (1 << nc.bit_length()) - 1  # >= nc; the padding (+inf) is never below a value
    coarse = np.full((b, width), np.inf, dtype=sorted_rows.dtype)
    coarse[:, :nc] = sorted_rows[:, _GROUP - 1 :: _GROUP][:, :nc]  # coarse[r, i] = sorted[r, 64(i+1) - 1]
    groups = _lift(coarse.reshape(-1), rows * width, values, (width + 1) // 2)
    start = groups * _GROUP  # sorted[start - 1] < value <= sorted[start + 63] (when they exist)
    window = np.minimum(_GROUP - 1, n - start)
    return start + _lift(sorted_rows.reshape(-1), rows * n + start, values, _GROUP // 2, window)


def ranking_positions(dist: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                      ordered: np.ndarray | None = None) -> np.ndarray:
    """1-based position of image ``cols[i]`` in the ranking of row ``rows[i]`` of ``dist``.

    Args:
        dist: ``b x n`` distances (lower = closer), e.g. on the tie grid of
            :class:`semembed.evaluation.ranking.Database`; an excluded image
            set to +inf lands after every finite distance.
        rows, cols: ``m`` (row, column) pairs with finite distances.
        ordered: ``np.sort(dist, axis=1)`` when the caller has it already.

    Returns:
        ``m`` positions: one plus the place of ``cols[i]`` in
        ``rank_block(dist)[rows[i]]`` (ties broken by lower index).
    """
    rows = np.asarray(rows, dtype=np.intp)
    cols = np.asarray(cols, dtype=np.intp)
    b, n = dist.shape
    values = dist[rows, cols]
    if ordered is None:
        ordered = np.sort(dist, axis=1)
    below = count_below(ordered, rows, values)
    pos = below + 1
    # another image at exactly the same distance sits right after the first of the group
    tied = np.flatnonzero((below + 1 < n) & (ordered[rows, np.minimum(below + 1, n - 1)] == values))
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
