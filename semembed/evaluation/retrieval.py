"""Retrieval metrics: hierarchical precision, AHP, mAP (reference) and Recall@K, R-precision, MAP@R.

All scores are ``*_score``-like: higher is better.  Definitions (SPEC.md §3, §9):

* Ranking of query q: the database images by ascending distance (ties, and
  distances equal up to floating-point noise, by index: see
  :mod:`semembed.evaluation.ranking`), q itself removed (all-against-all mode).  σᵢ = sim(class(q),
  class(rᵢ)); β = the similarities of class(q) to all ranked images, sorted
  descending (the best possible ranking, a function of the class only).
* ``P@k (T)`` = Σᵢ≤ₖ σᵢ / Σᵢ≤ₖ βᵢ (``T`` = WUP or LCS_HEIGHT), averaged over queries.
  When Σᵢ≤ₖ βᵢ = 0 every ranking is optimal and HP@k = 1 (the reference divides by zero).
* ``AHP@K`` = (1/K)·(Σₖ HP@k − (HP@1 + HP@K)/2), ``AHP`` with K = the whole ranking.
* ``AP``: scikit-learn average precision of the ranking, relevant = same class
  (mean precision at the relevant positions; 0 without any relevant image).
  Ties are broken by index, so AP is that of the strict ranking; scikit-learn
  would instead pool tied scores (identical when there are no ties).
* ``Recall@K`` (1 when a same-class image is among the K nearest; exact ties
  in the query's favour, METRIC_LEARNING.md §11: 1 iff fewer than K
  other-class images are strictly closer than the nearest same-class one,
  distances compared on the tie grid of :mod:`semembed.evaluation.ranking`),
  ``R-Precision`` and ``mAP@R`` (pytorch-metric-learning): R = number of
  same-class database images; queries with R = 0 are left out of these means,
  which are NaN (undefined) when every query has R = 0 (e.g. every class a
  singleton).  The returned :class:`RetrievalMetrics` says how many were left
  out (``queries_without_positive`` of ``num_queries``).

Work per block of queries (blocks on several threads, :mod:`.blocks`): one
matrix product; a partial sort when only the top K matters; for AP (and then
R-Precision and mAP@R) the positions of the relevant images from a sort of
each row's values (:mod:`.positions`); a full ranking only for the full AHP;
never an N × N matrix or per-image Python code.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from semembed.errors import SemembedError
from semembed.evaluation.labels import encode_labels, label_ids
from semembed.evaluation.blocks import map_blocks
from semembed.evaluation.positions import SortedPrefix, largest_per_row, ranking_positions
from semembed.evaluation import symmetric
from semembed.evaluation.ranking import Database, prepare_features, rank_block, top_below
from semembed.taxonomy import ClassPairs, Hierarchy

#: similarity names in the reference's column order
SIMILARITIES = ("WUP", "LCS_HEIGHT")
#: query x database distances per block (one block per thread): full rankings and AP keep several
#: arrays of that size, top-K rankings only the float distances and a mask (2**23: the fastest
#: at N = 100,000 on 2 cores, against 2**21 to 2**25)
FULL_BLOCK_ELEMENTS = 1 << 22
TOP_BLOCK_ELEMENTS = 1 << 23


def hp_key(k: int, sim: str) -> str:
    return f"P@{k} ({sim})"


def ahp_key(clip: int | None, sim: str) -> str:
    return f"AHP{'' if not clip else f'@{clip}'} ({sim})"


def best_cumsum(
    sim: np.ndarray, rows: np.ndarray, counts: np.ndarray, length: int, exclude_self: bool, chunk: int = 256
) -> np.ndarray:
    """Cumulated similarities of the best ranking for the classes ``rows``: ``len(rows) x length``.

    The best ranking of class c lists the database images by descending
    sim(c, ·): value sim[c, c'] ``counts[c']`` times (one fewer for c'=c when
    the query itself is removed).  Built with ``np.repeat``, no per-image work.
    """
    out = np.empty((len(rows), length), dtype=np.float64)
    for s in range(0, len(rows), chunk):  # bounded memory for many classes
        r = rows[s : s + chunk]
        vals = sim[r]
        cnt = np.broadcast_to(counts, vals.shape).copy()
        if exclude_self:
            cnt[np.arange(len(r)), r] -= 1
        order = np.argsort(-vals, axis=1, kind="stable")
        vals = np.take_along_axis(vals, order, axis=1)
        cnt = np.cumsum(np.take_along_axis(cnt, order, axis=1), axis=1)
        np.minimum(cnt, length, out=cnt)
        reps = np.diff(cnt, axis=1, prepend=0)
        out[s : s + chunk] = np.cumsum(np.repeat(vals.ravel(), reps.ravel()).reshape(len(r), length), axis=1)
    return out


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.ones(np.broadcast_shapes(num.shape, den.shape), dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _trapezoid(hp: np.ndarray, k: int) -> np.ndarray:
    """AHP@k of each row of an HP curve (trapezoidal rule, step 1/k)."""
    return hp[:, :k].mean(axis=1) - (hp[:, 0] + hp[:, k - 1]) / (2.0 * k)


def _first_positions(rows: np.ndarray, nrows: int) -> np.ndarray:
    return np.searchsorted(rows, np.arange(nrows))


class _Accumulator:
    """Sums (and optionally per-query values) of metrics over blocks."""

    def __init__(self, keep: bool):
        self.keep = keep
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.values: dict[str, list[np.ndarray]] = {}

    def add(self, name: str, values: np.ndarray, valid: np.ndarray | None = None) -> None:
        used = values if valid is None else values[valid]
        self.sums[name] = self.sums.get(name, 0.0) + float(np.sum(used))
        self.counts[name] = self.counts.get(name, 0) + len(used)
        if self.keep:
            v = values.astype(np.float64, copy=True)
            if valid is not None:
                v[~valid] = np.nan
            self.values.setdefault(name, []).append(v)

    def mean(self, name: str) -> float:
        return self.sums[name] / self.counts[name] if self.counts[name] else float("nan")


class RetrievalMetrics(dict):
    """``{metric name: mean}``, plus how many queries had no same-class database image.

    Those queries are left out of ``Recall@K``, ``R-Precision`` and ``mAP@R``
    (NaN when all are left out) and score 0 in ``AP``, as in the reference.
    """

    num_queries: int = 0
    queries_without_positive: int = 0

    def note(self) -> str | None:
        """A one-line note on the left-out queries (None when there are none)."""
        n, left = self.num_queries, self.queries_without_positive
        if not left:
            return None
        pml = [m for m in self if m.startswith("Recall@") or m in ("R-Precision", "mAP@R")]
        text = f"{left} of {n} queries have no image of their class in the database"
        if pml:
            text += (f"; {', '.join(pml)} " + ("are undefined (NaN)" if left == n else f"leave them out (mean of {n - left})"))
        if "AP" in self:
            text += "; AP counts them as 0 (as the reference)"
        return text


def retrieval_metrics(
    features: np.ndarray,
    labels: Sequence,
    hierarchy: Hierarchy,
    *,
    classes: Sequence | None = None,
    normalize: bool = True,
    ks: Iterable[int] = (1, 10, 50, 100),
    clip_ahp: int | None = 250,
    full_ahp: bool = False,
    ap: bool = True,
    recall_ks: Iterable[int] = (),
    map_at_r: bool = False,
    r_precision: bool | None = None,
    query_features: np.ndarray | None = None,
    query_labels: Sequence | None = None,
    per_query: bool = False,
    similarities: Sequence[str] = SIMILARITIES,
    block_elements: int | None = None,
    progress: bool = False,
    threads: int | None = None,
):
    """Retrieval metrics of ``features`` (the database) with their ``labels``.

    Args:
        features: ``N x d`` database features (float32 stays float32, as in the reference).
        labels: class id of every row (or, with ``classes``, an index into ``classes``).
        hierarchy: the taxonomy giving the class similarities.
        classes: optional class list; then ``labels`` are integer indices into it.
        normalize: rank by dot product of L2-normalised features (True) or by
            squared Euclidean distance (False).
        ks: cut-offs of ``P@k (WUP)`` / ``P@k (LCS_HEIGHT)``.
        clip_ahp: K of ``AHP@K`` (None/0: no clipped AHP).
        full_ahp: also ``AHP`` over the whole ranking (needs full sorts).
        ap: also ``AP`` (mAP; needs full sorts).
        recall_ks: cut-offs of ``Recall@K``.
        map_at_r: also ``mAP@R``; ``r_precision`` (default: same as ``map_at_r``) ``R-Precision``.
        query_features, query_labels: a separate query set; by default every
            database image is a query and is removed from its own ranking (by index).
        per_query: also return the per-query values.
        similarities: which of WUP / LCS_HEIGHT to report.
        block_elements: about how many query x database distances each thread holds at once
            (default 2**22 with AP or full rankings, 2**23 for top-K only).
        progress: show a progress bar on stderr.
        threads: blocks of queries ranked at once on that many CPU threads
            (default: the cores this process may use; :mod:`semembed.evaluation.blocks`).

    Returns:
        :class:`RetrievalMetrics`, ``{metric name: mean}`` with the reference's names (``"P@1 (WUP)"``,
        ``"AHP@250 (LCS_HEIGHT)"``, ``"AHP (WUP)"``, ``"AP"``) and
        ``"Recall@K"``, ``"R-Precision"``, ``"mAP@R"``.  With ``per_query``, a
        pair ``(means, {metric name: array of per-query values})`` (NaN for
        queries left out of a mean).

    Examples:
        >>> m = retrieval_metrics(feats, labels, load_hierarchy("cifar.parent-child.txt"))
        >>> m["AHP@250 (LCS_HEIGHT)"]
    """
    sims = [s.upper() for s in similarities]
    for s in sims:
        if s not in SIMILARITIES:
            raise SemembedError(f"similarities: unknown similarity {s!r}; expected WUP or LCS_HEIGHT")
    if r_precision is None:
        r_precision = map_at_r
    separate = query_features is not None or query_labels is not None
    if separate and (query_features is None or query_labels is None):
        raise SemembedError("query_features and query_labels must be given together")

    db_feats = prepare_features(features, normalize, "features")
    db_ids = label_ids(labels, classes, "labels")
    if len(db_ids) != len(db_feats):
        raise SemembedError(f"labels: {len(db_ids)} labels for {len(db_feats)} feature rows")
    if separate:
        q_feats = prepare_features(query_features, normalize, "query_features")
        if q_feats.shape[1] != db_feats.shape[1]:
            raise SemembedError(
                f"query_features have {q_feats.shape[1]} dimensions, the database features {db_feats.shape[1]}"
            )
        q_ids = label_ids(query_labels, classes, "query_labels")
        if len(q_ids) != len(q_feats):
            raise SemembedError(f"query_labels: {len(q_ids)} labels for {len(q_feats)} query feature rows")
        class_ids, (db_cls, q_cls) = encode_labels(hierarchy, db_ids, q_ids, names=("labels", "query_labels"))
    else:
        q_feats = db_feats
        class_ids, (db_cls,) = encode_labels(hierarchy, db_ids, names=("labels",))
        q_cls = db_cls
    q_feats = q_feats.astype(db_feats.dtype, copy=False)

    n_db, n_q = len(db_feats), len(q_feats)
    exclude_self = not separate
    m_len = n_db - 1 if exclude_self else n_db  # images in each ranking
    if m_len < 1:
        raise SemembedError("need at least two images to rank (one query and one other image)")

    ks = sorted({int(k) for k in ks})
    recall_ks = sorted({int(k) for k in recall_ks})
    clip = int(clip_ahp) if clip_ahp else 0
    for name, vals in (("ks", ks), ("recall_ks", recall_ks), ("clip_ahp", [clip] if clip else [])):
        for k in vals:
            if not 1 <= k <= m_len:
                raise SemembedError(
                    f"{name}: cut-off {k} must be between 1 and the {m_len} images in each ranking"
                )

    pairs = ClassPairs(hierarchy, class_ids)
    sim_mats = {
        "WUP": pairs.wup_similarity() if "WUP" in sims else None,
        "LCS_HEIGHT": pairs.lcs_height_similarity() if "LCS_HEIGHT" in sims else None,
    }
    n_cls = len(class_ids)
    counts = np.bincount(db_cls, minlength=n_cls)
    relevant = counts[q_cls] - (1 if exclude_self else 0)

    hp_len = max([*ks, clip] or [1])
    # AP comes from the positions of the relevant images (each row sorted up to its farthest relevant image);
    # R-Precision and mAP@R too when those positions are there, else from a top-max(R) ranking
    from_positions = ap and not full_ahp
    top_len = max([hp_len, *recall_ks])
    if (map_at_r or r_precision) and not from_positions:
        top_len = max(top_len, int(relevant.max()), 1)
    length = m_len if full_ahp else min(top_len, m_len)
    curve_len = m_len if full_ahp else hp_len

    best_tables = {}
    if not full_ahp:
        all_rows = np.arange(n_cls)
        for s in sims:
            best_tables[s] = best_cumsum(sim_mats[s], all_rows, counts, curve_len, exclude_self)

    q_sq = None if normalize else np.sum(q_feats**2, axis=-1)
    db = Database(db_feats, normalize, None if normalize else np.sum(db_feats**2, axis=-1),
                  None if normalize else float(q_sq.max()))
    if block_elements is None:
        block_elements = FULL_BLOCK_ELEMENTS if (ap or full_ahp) else TOP_BLOCK_ELEMENTS
    block = int(max(1, min(n_q, block_elements // max(n_db, 1))))
    ks_idx = np.asarray(ks, dtype=np.intp) - 1
    # database images grouped by class (ascending index within a class): each query's relevant images
    members = np.argsort(db_cls, kind="stable")
    class_start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    need_pairs = from_positions or bool(recall_ks)

    def rank_queries(s0: int, s1: int, out: list, has_rel: np.ndarray) -> tuple[np.ndarray, tuple | None]:
        """Top ``length`` of queries s0..s1-1 and, for AP, (row, position) of every relevant image."""
        b = s1 - s0
        rows = np.arange(b)
        dist = db.distances(q_feats[s0:s1], None if q_sq is None else q_sq[s0:s1])
        if exclude_self:
            dist[rows, s0 + rows] = np.inf  # the query itself goes last and is cut off
        qc = q_cls[s0:s1]
        if need_pairs:  # (row, column) of every relevant image: the database images of the query's class
            cnt = counts[qc]
            pr = np.repeat(rows, cnt)
            offs = np.arange(len(pr)) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(class_start[qc], cnt)
            pc = members[offs]
            if exclude_self:
                keep = pc != s0 + pr
                pr, pc = pr[keep], pc[keep]
        prefix = None
        if from_positions:  # each row's distances sorted up to its farthest relevant image (and the top K)
            thresholded = 1 < length < n_db - 1
            prefix = SortedPrefix(dist, largest_per_row(b, pr, dist[pr, pc], dist.dtype),
                                  at_least=length + 1 if thresholded else 0)
        if length >= n_db - 1:
            order = rank_block(dist)[:, :length]
        elif prefix is not None and thresholded:  # the (length+1)-th smallest distance: few get through
            order = top_below(dist, length, prefix.nth(length))
        else:
            order = rank_block(dist, length)
        if recall_ks:  # ties in the query's favour: a hit iff the K-th smallest distance >= the nearest positive
            nearest_pos = np.full(b, np.inf, dtype=dist.dtype)
            np.minimum.at(nearest_pos, pr, dist[pr, pc])
            for k in recall_ks:
                kth = dist[rows, order[:, k - 1]]
                out.append((f"Recall@{k}", (kth >= nearest_pos).astype(np.float64), has_rel))
        if from_positions:
            return order, (pr, ranking_positions(dist, pr, pc, prefix))
        return order, None

    # all against all, top K only: half the distance matrix, each tile serving both its rows and columns
    sym = None
    if not separate and not from_positions and length < m_len and symmetric.usable(db, length):
        sym = symmetric.symmetric_top(db, length, db_cls if recall_ks else None, threads, progress)

    def run_block(s0: int, s1: int) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
        """Per-query values of queries s0..s1-1: (metric, values, valid or None)."""
        out = []
        b = s1 - s0
        qc = q_cls[s0:s1]
        r_q = relevant[s0:s1]
        has_rel = r_q > 0
        if sym is not None:
            order = sym[0][s0:s1]
            for k in recall_ks:  # ties in the query's favour: a hit iff the K-th distance >= the nearest positive
                out.append((f"Recall@{k}", (sym[1][s0:s1, k - 1] >= sym[2][s0:s1]).astype(np.float64), has_rel))
        else:
            order, positions = rank_queries(s0, s1, out, has_rel)
        rc = db_cls[order]
        del order

        for s in sims:
            mat = sim_mats[s]
            sigma = mat.ravel()[qc[:, None] * n_cls + rc[:, :curve_len]]
            np.cumsum(sigma, axis=1, out=sigma)
            if full_ahp:
                uq, inv = np.unique(qc, return_inverse=True)
                best = best_cumsum(mat, uq, counts, curve_len, exclude_self)[inv.ravel()]
            else:
                best = best_tables[s][qc]
            hp = _safe_ratio(sigma, best)
            del sigma, best
            for k, col in zip(ks, hp[:, ks_idx].T):
                out.append((hp_key(k, s), col, None))
            if full_ahp:
                out.append((ahp_key(None, s), _trapezoid(hp, m_len), None))
            if clip:
                out.append((ahp_key(clip, s), _trapezoid(hp, clip), None))
            del hp

        if from_positions:  # relevant images by row, then by position: nth = rank among the row's relevant
            pr, pos = positions
            srt = np.argsort(pr * np.int64(n_db + 1) + pos, kind="stable")
            rr, cc = pr[srt], pos[srt] - 1
        elif ap or map_at_r or r_precision:
            rel = rc == qc[:, None]
            rr, cc = np.nonzero(rel)
        if ap or map_at_r:
            nth = np.arange(len(rr)) - _first_positions(rr, b)[rr] + 1
            prec = nth / (cc + 1.0)
            denom = np.maximum(r_q, 1)
            if ap:
                out.append(("AP", np.bincount(rr, prec, minlength=b) / denom, None))
            if map_at_r:
                within = cc < r_q[rr]
                out.append(("mAP@R", np.bincount(rr[within], prec[within], minlength=b) / denom, has_rel))
        if r_precision:
            hits = np.bincount(rr[cc < r_q[rr]], minlength=b)
            out.append(("R-Precision", hits / np.maximum(r_q, 1), has_rel))
        return out

    acc = _Accumulator(per_query)
    for values in map_blocks(run_block, n_q, block, threads, progress):
        for name, vals, valid in values:
            acc.add(name, vals, valid)

    names = []
    for s in sims:
        names += [hp_key(k, s) for k in ks]
        if full_ahp:
            names.append(ahp_key(None, s))
        if clip:
            names.append(ahp_key(clip, s))
    if ap:
        names.append("AP")
    names += [f"Recall@{k}" for k in recall_ks]
    if r_precision:
        names.append("R-Precision")
    if map_at_r:
        names.append("mAP@R")
    means = RetrievalMetrics((name, acc.mean(name)) for name in names)
    means.num_queries = n_q
    means.queries_without_positive = int(np.count_nonzero(relevant <= 0))
    if per_query:
        return means, {name: np.concatenate(acc.values[name]) for name in names}
    return means
