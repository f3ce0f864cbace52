"""Top-K rankings of a set against itself from half of the distance matrix (pure NumPy).

When every database image is a query, d(i, j) = d(j, i): each tile (I, J),
I <= J, of the distance matrix is computed once (one matrix product of
``TILE x TILE`` images) and serves the rows of I as it is and the rows of J
transposed.  That halves the matrix products, most of the time at
N = 100,000.  A row's ranking then never exists in one piece, so each row
keeps only its candidates: the distances at most a threshold t, the
``_SAMPLE_RANK``-th smallest distance from the row to a strided sample of the
images (a separate, small product), about 2.5 x (K + 1) of them.  The top K
of the candidates is the top K of the row whenever at least K + 1 images
pass (exact, as :func:`semembed.evaluation.ranking.top_below`); the few
other rows are ranked directly.  Ties break by index as everywhere
(:mod:`semembed.evaluation.ranking`), the query is left out by index.

The distances of a tile and those of a direct row block are the same
formula on the same tie grid, from different matrix products: for float32
features they can differ by the products' rounding, as between BLAS thread
counts (see :mod:`semembed.evaluation.blocks`).
"""

from __future__ import annotations

import numpy as np

from semembed.evaluation.blocks import map_ordered
from semembed.evaluation.ranking import (_SAMPLE_RANK, Database, from_order32, order32, rank_block, rank_candidates,
                                         split_flat)

#: images per side of a tile (float32: 16 MB of distances)
TILE = 2048


def usable(db: Database, length: int) -> bool:
    """Whether :func:`symmetric_top` applies: no duplicated rows, several tiles, a short ranking."""
    n = len(db.features)
    need = length + 1
    return not db.has_duplicates and n >= 4 * TILE and n >= 16 * need and _stride(need) >= 8


def _stride(need: int) -> int:
    return max(need * 5 // 2, 400) // _SAMPLE_RANK


def symmetric_top(db: Database, length: int, classes: np.ndarray | None = None, threads: int | None = None,
                  progress: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Top ``length`` of every image's ranking against all others (itself left out).

    Args:
        db: the images (queries and database), without duplicated rows (:func:`usable`).
        length: K.
        classes: class index of every image: also return each image's smallest
            distance to another image of its class (+inf when there is none).
        threads, progress: as :func:`semembed.evaluation.blocks.map_ordered`.

    Returns:
        ``(order, dist, nearest_same)``: ``N x K`` image indices, nearest first,
        their ``N x K`` distances, and the ``N`` smallest same-class distances (or None).
    """
    feats, n = db.features, len(db.features)
    sq = db.sqnorm
    need = length + 1
    stride = _stride(need)
    cap = max(8 * need, 4 * _SAMPLE_RANK * stride)
    starts = list(range(0, n, TILE))
    nb = len(starts)
    span = [(s, min(n, s + TILE)) for s in starts]

    # thresholds: the _SAMPLE_RANK-th smallest distance to every stride-th image (itself left out)
    sample = np.arange(0, n, stride)
    thr = np.empty(n, dtype=feats.dtype)

    def sample_block(s: tuple[int, int]) -> np.ndarray:
        s0, s1 = s
        d = db.distances(feats[s0:s1], None if sq is None else sq[s0:s1], sample)
        own = np.arange(s0, s1)
        hit = own % stride == 0
        d[np.flatnonzero(hit), own[hit] // stride] = np.inf
        return np.partition(d, _SAMPLE_RANK - 1, axis=1)[:, _SAMPLE_RANK - 1]

    for (s0, s1), t in zip(span, map_ordered(sample_block, span, threads)):
        thr[s0:s1] = t

    def tile(ij: tuple[int, int]):
        (i0, i1), (j0, j1) = span[ij[0]], span[ij[1]]
        d = db.distances(feats[i0:i1], None if sq is None else sq[i0:i1], slice(j0, j1))
        if i0 == j0:
            np.fill_diagonal(d, np.inf)
        mask = d <= thr[i0:i1, None]
        if i0 != j0:
            mask |= d <= thr[None, j0:j1]
        flat = np.flatnonzero(mask)  # candidates of a row of I or of a row of J (a column of the tile)
        del mask
        v = d.reshape(-1)[flat]
        r, c = split_flat(flat, i1 - i0, j1 - j0)
        r = (r + i0).astype(np.int32)  # int32: the candidates wait for their rows' other tiles
        c = (c + j0).astype(np.int32)
        keep = v <= thr[r]
        mine = (r[keep], c[keep], v[keep])
        theirs = None
        if i0 != j0:
            keep = v <= thr[c]
            theirs = (c[keep], r[keep], v[keep])
        near = None
        if classes is not None:
            same = np.where(classes[i0:i1, None] == classes[None, j0:j1], d, np.inf)
            near = (same.min(axis=1), same.min(axis=0))
        return mine, theirs, near

    order = np.empty((n, length), dtype=np.int32 if n < 2**31 else np.intp)
    dist = np.empty((n, length), dtype=feats.dtype)
    nearest = np.full(n, np.inf, dtype=feats.dtype) if classes is not None else None
    pending: list[list] = [[] for _ in range(nb)]
    items = [(i, j) for i in range(nb) for j in range(i, nb)]
    for (i, j), (mine, theirs, near) in zip(items, map_ordered(tile, items, threads, progress)):
        # the candidates of a row arrive in any order: _finish sorts them by (distance, column)
        pending[i].append(mine)
        if theirs is not None:
            pending[j].append(theirs)
        if near is not None:
            (i0, i1), (j0, j1) = span[i], span[j]
            np.minimum(nearest[i0:i1], near[0], out=nearest[i0:i1])
            np.minimum(nearest[j0:j1], near[1], out=nearest[j0:j1])
        if j == nb - 1:  # every tile touching the rows of block i is in
            _finish(db, span[i], pending[i], length, cap, order, dist)
            pending[i] = []
    return order, dist, nearest


def _finish(db: Database, span: tuple[int, int], parts: list, length: int, cap: int, order: np.ndarray,
            dist: np.ndarray) -> None:
    """Rank the candidates of rows span[0]..span[1]-1; rows with too few or too many are ranked directly."""
    s0, s1 = span
    b, n = s1 - s0, len(db.features)
    rows = np.concatenate([p[0] for p in parts]) - s0
    cols = np.concatenate([p[1] for p in parts])
    vals = np.concatenate([p[2] for p in parts])
    ibits = max(1, int(n - 1).bit_length())
    if vals.dtype == np.float32 and max(1, int(b - 1).bit_length()) + ibits <= 32:
        # one sort of (row, distance, column) keys; the first `length` of each row's run are its top
        keys = (order32(vals).astype(np.uint64) << np.uint64(ibits)) | cols.astype(np.uint64)
        keys |= rows.astype(np.uint64) << np.uint64(32 + ibits)
        del rows, cols, vals
        keys.sort()
        counts = np.bincount((keys >> np.uint64(32 + ibits)).astype(np.intp), minlength=b)
        good = (counts >= length + 1) & (counts <= cap)
        start = np.cumsum(counts) - counts
        top = keys[(start[good, None] + np.arange(length)).reshape(-1)].reshape(-1, length)
        order[s0:s1][good] = (top & np.uint64((1 << ibits) - 1)).astype(np.intp)
        dist[s0:s1][good] = from_order32(((top >> np.uint64(ibits)) & np.uint64(0xFFFFFFFF)).astype(np.uint32))
    else:  # by row, then column, as rank_candidates needs
        by = np.lexsort((cols, rows))
        top, top_d, good = rank_candidates(rows[by], cols[by], vals[by], b, length, cap)
        order[s0:s1], dist[s0:s1] = top, top_d
    bad = np.flatnonzero(~good)
    if len(bad):
        q = s0 + bad
        d = db.distances(db.features[q], None if db.sqnorm is None else db.sqnorm[q])
        d[np.arange(len(q)), q] = np.inf
        o = rank_block(d, length)
        order[q], dist[q] = o, np.take_along_axis(d, o, axis=1)
