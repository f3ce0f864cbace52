"""Average precision-recall curve of nearest-neighbour retrieval (the reference's ``plot_recall_precision.py``).

Every image queries all others (ranked as :mod:`semembed.evaluation.ranking`, itself removed);
relevant = same class.  At the k-th relevant image, found at rank r, a query reaches recall k/R
(R: its relevant images) with precision k/r.  Per query and recall bin (``bins`` equal bins of
[0, 1], plotted at their centres) the highest precision reached in the bin is kept, as the
reference keeps the highest precision per recall level; the curve is the mean over the queries
that reach the bin.  Queries without a relevant image are left out of the curve; their AP is 0
(as in ``AP``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from semembed.errors import SemembedError
from semembed.evaluation.ranking import Database, prepare_features, rank_block

#: recall bins of the curve (the reference plots every distinct recall level; bins make queries comparable)
DEFAULT_BINS = 100


def precision_recall_curve(features: np.ndarray, labels: Sequence, *, normalize: bool = False,
                           bins: int = DEFAULT_BINS, block_elements: int = 1 << 22
                           ) -> tuple[np.ndarray, np.ndarray, float]:
    """``(recall bin centres, mean precision per bin, mAP)`` of all-against-all retrieval.

    Args:
        features: ``N x d`` features.
        labels: N class labels (any hashable values).
        normalize: rank by dot product of L2-normalised features (else squared Euclidean distance).
        bins: number of recall bins.

    Raises:
        SemembedError: fewer than two images, ``bins`` < 1, labels of the wrong length.
    """
    if bins < 1:
        raise SemembedError(f"--bins must be at least 1, got {bins}")
    feats = prepare_features(features, normalize, "features")
    _, cls = np.unique(np.asarray(labels), return_inverse=True)
    cls = cls.ravel()
    n = len(feats)
    if len(cls) != n:
        raise SemembedError(f"{len(cls)} labels for {n} feature rows")
    if n < 2:
        raise SemembedError("need at least two images to rank")
    relevant = np.bincount(cls)[cls] - 1
    sq = None if normalize else np.sum(feats**2, axis=1)
    db = Database(feats, normalize, sq, None if normalize else float(sq.max()))
    best = np.full((n, bins), np.nan)
    ap = np.zeros(n)
    block = max(1, min(n, block_elements // n))
    for s0 in range(0, n, block):
        s1 = min(n, s0 + block)
        b = s1 - s0
        dist = db.distances(feats[s0:s1], None if sq is None else sq[s0:s1])
        dist[np.arange(b), s0 + np.arange(b)] = np.inf  # the query itself goes last and is cut off
        order = rank_block(dist)[:, : n - 1]
        del dist
        rel = cls[order] == cls[s0:s1, None]
        rows, cols = np.nonzero(rel)
        kth = np.arange(len(rows)) - np.searchsorted(rows, np.arange(b))[rows] + 1
        prec = kth / (cols + 1.0)
        r_q = relevant[s0 + rows]
        ap[s0:s1] = np.bincount(rows, prec, minlength=b) / np.maximum(relevant[s0:s1], 1)
        recall = kth / r_q
        cell = np.minimum((recall * bins).astype(np.intp), bins - 1)
        flat = np.full(b * bins, -np.inf)
        np.maximum.at(flat, rows * bins + cell, prec)
        flat[np.isneginf(flat)] = np.nan
        best[s0:s1] = flat.reshape(b, bins)
    has = ~np.isnan(best)
    counts = has.sum(axis=0)
    mean = np.where(counts > 0, np.nansum(best, axis=0) / np.maximum(counts, 1), np.nan)
    centres = (np.arange(bins) + 0.5) / bins
    keep = counts > 0
    return centres[keep], mean[keep], float(ap.mean())
