"""The metric-learning benchmark figures: Recall@K, MAP@R, R-Precision (via :mod:`.retrieval`) and NMI.

Definitions as METRIC_LEARNING.md §11: Recall@K = share of queries with a
same-class item among their K nearest database items (the query itself removed
by index); MAP@R and R-Precision as pytorch-metric-learning; lone queries (no
other item of their class) are left out.  Rankings are those of
:func:`semembed.evaluation.retrieval.retrieval_metrics` (cosine of L2-normalised
features); Recall@K resolves exact ties in the query's favour (§11: a hit iff
fewer than K other-class items are strictly closer than the nearest same-class
one), MAP@R and R-Precision break ties by database index as the spec says.  NMI: k-means (scikit-learn,
k = number of query classes, fixed seed) on the query features, scored with
``normalized_mutual_info_score`` (arithmetic mean).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from semembed.errors import SemembedError
from semembed.taxonomy import Hierarchy

#: the field's K lists (METRIC_LEARNING.md §11)
RECALL_KS = {"cub": (1, 2, 4, 8), "cars": (1, 2, 4, 8), "sop": (1, 10, 100, 1000), "inshop": (1, 10, 20, 30, 40, 50)}


def flat_hierarchy(*label_arrays: Sequence) -> tuple[Hierarchy, list[np.ndarray]]:
    """A one-level taxonomy (root → every class) and the labels as its string ids."""
    labels = [np.asarray(a).astype(str) for a in label_arrays]
    classes = sorted(set(np.concatenate(labels).tolist()))
    root = "<root>"
    while root in classes:
        root += "_"
    return Hierarchy([root] * len(classes), classes, source="<flat labels>", str_ids=True), labels


def nmi_score(features: np.ndarray, labels: Sequence, *, seed: int = 0, normalize: bool = True) -> float:
    """NMI between the classes and a k-means clustering (k = number of classes) of ``features`` (N x d)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score

    x = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    if x.ndim != 2 or len(x) != len(labels):
        raise SemembedError(f"nmi_score: expected N x d features and N labels, got {x.shape} and {labels.shape}")
    k = len(np.unique(labels))
    if k < 2 or len(x) <= k:
        return float("nan")
    if normalize:
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    clusters = KMeans(n_clusters=k, random_state=seed, n_init=1).fit_predict(x)
    return float(normalized_mutual_info_score(labels, clusters))


def metric_learning_metrics(
    features: np.ndarray,
    labels: Sequence,
    *,
    recall_ks: Iterable[int] = (1, 2, 4, 8),
    query_features: np.ndarray | None = None,
    query_labels: Sequence | None = None,
    nmi: bool = True,
    seed: int = 0,
) -> dict:
    """``{"Recall@K": ..., "R-Precision": ..., "mAP@R": ..., "NMI": ...}`` of one set against itself
    (``features``, ``labels``) or of queries against a gallery (``query_*`` given; nothing excluded).

    K values above the database size are dropped.  NMI clusters the queries.
    """
    from semembed.evaluation.retrieval import retrieval_metrics

    separate = query_features is not None
    hierarchy, lab = flat_hierarchy(labels, *(() if not separate else (query_labels,)))
    n_rank = len(labels) - (0 if separate else 1)
    ks = [k for k in sorted(set(int(k) for k in recall_ks)) if 1 <= k <= n_rank]
    out = retrieval_metrics(features, lab[0], hierarchy, ks=(1,), clip_ahp=None, ap=False, recall_ks=ks,
                            map_at_r=True, similarities=("LCS_HEIGHT",),
                            query_features=query_features, query_labels=lab[1] if separate else None)
    result = {k: float(v) for k, v in out.items() if not k.startswith("P@")}
    if nmi:
        result["NMI"] = nmi_score(query_features if separate else features, query_labels if separate else labels,
                                  seed=seed)
    return result


def metrics_from_distances(rows, labels: Sequence, *, recall_ks: Iterable[int] = (1, 2, 4, 8),
                           block: int = 256, class_similarity: np.ndarray | None = None,
                           ahp_clip: int = 250) -> dict:
    """Recall@K, R-Precision and mAP@R of a set against itself from a distance, one block of queries at a time.

    ``rows(slice)`` returns the (len(slice), N) distances of those queries to all N items (smaller = closer;
    e.g. AVSL's Δ).  The query itself is removed by index; ties are broken by index (stable sort);
    queries without another item of their class are left out of every mean
    (same definitions as :func:`metric_learning_metrics`).  With ``class_similarity`` (C, C) (e.g.
    :meth:`~semembed.taxonomy.ClassPairs.lcs_height_similarity`; ``labels`` then index it) also
    the mean ``AHP@K (LCS_HEIGHT)`` of SPEC.md §3 with K = min(``ahp_clip``, N − 1), named as
    :func:`semembed.evaluation.retrieval.retrieval_metrics` names it.
    """
    from semembed.evaluation.retrieval import _safe_ratio, _trapezoid, ahp_key, best_cumsum

    labels = np.asarray(labels)
    n = len(labels)
    ks = [k for k in sorted(set(int(k) for k in recall_ks)) if 1 <= k <= n - 1]
    hits = {k: 0.0 for k in ks}
    rp_sum = map_sum = ahp_sum = 0.0
    counted = 0
    if class_similarity is not None:
        sim = np.asarray(class_similarity, np.float64)
        if labels.min(initial=0) < 0 or labels.max(initial=0) >= len(sim):
            raise SemembedError(f"metrics_from_distances: labels must index the {len(sim)} x {len(sim)} "
                                f"class similarities, got labels in [{labels.min()}, {labels.max()}]")
        clip = min(int(ahp_clip), n - 1)
        present = np.unique(labels)  # best rankings of the classes that have queries (self excluded)
        best = np.zeros((len(sim), max(clip, 0)))
        best[present] = best_cumsum(sim, present, np.bincount(labels, minlength=len(sim)), clip, True)
    for start in range(0, n, block):
        sl = slice(start, min(start + block, n))
        d = np.array(rows(sl), dtype=np.float64)
        if not np.isfinite(d).all():  # NaN distances would tie and count as hits
            raise SemembedError("the distances are not finite (NaN or inf): the model's weights or features are "
                                "broken (e.g. a diverged training); no retrieval figure can be computed")
        q = np.arange(sl.start, sl.stop)
        d[np.arange(len(q)), q] = np.inf
        order = np.argsort(d, axis=1, kind="stable")[:, :-1]  # self (inf) last
        if class_similarity is not None and clip > 0:
            gains = np.cumsum(sim[labels[q][:, None], labels[order[:, :clip]]], axis=1)
            ahp_sum += _trapezoid(_safe_ratio(gains, best[labels[q]]), clip).sum()
        rel = labels[order] == labels[q][:, None]
        r = rel.sum(axis=1)
        ok = r > 0
        for k in ks:
            hits[k] += rel[ok, :k].any(axis=1).sum()
        pos = np.arange(1, n)
        in_r = pos[None, :] <= r[:, None]
        prec = np.cumsum(rel, axis=1) / pos[None, :]
        rp_sum += (np.sum(rel & in_r, axis=1)[ok] / r[ok]).sum()
        map_sum += (np.sum(prec * (rel & in_r), axis=1)[ok] / r[ok]).sum()
        counted += int(ok.sum())
    out = {f"Recall@{k}": float(hits[k] / counted) if counted else float("nan") for k in ks}
    out["R-Precision"] = float(rp_sum / counted) if counted else float("nan")
    out["mAP@R"] = float(map_sum / counted) if counted else float("nan")
    if class_similarity is not None:
        out[ahp_key(max(clip, 1), "LCS_HEIGHT")] = float(ahp_sum / n) if clip > 0 else float("nan")
    return out
