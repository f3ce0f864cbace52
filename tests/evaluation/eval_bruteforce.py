"""Slow per-query retrieval metrics written straight from the definitions (SPEC.md §3, §9).

One Python loop per query and per position; only for small test inputs.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import average_precision_score


def distances(qf, dbf, normalize, grid_bits=40):
    """Distances rounded to the documented tie grid: 2^(ceil(log2 scale) - grid_bits).

    scale = 1 for normalised features, max|q|² + max|x|² otherwise; the
    rounding makes distances that differ by floating-point noise equal.
    """
    qf = np.asarray(qf, dtype=np.float64)
    dbf = np.asarray(dbf, dtype=np.float64)
    if normalize:
        qf = qf / np.linalg.norm(qf, axis=1, keepdims=True)
        dbf = dbf / np.linalg.norm(dbf, axis=1, keepdims=True)
        raw = np.array([[-math.fsum(a * b) for b in dbf] for a in qf])
        scale = 1.0
    else:
        raw = np.array([[math.fsum((a - b) ** 2) for b in dbf] for a in qf])
        scale = max(math.fsum(a * a) for a in qf) + max(math.fsum(b * b) for b in dbf)
    grid = 2.0 ** (math.ceil(math.log2(scale)) - grid_bits) if scale > 0 else 2.0**-grid_bits
    return np.round(raw / grid) * grid


def rankings(dist, exclude_self):
    """For each query the database indices by (distance, index), the query removed by index."""
    out = []
    for q in range(dist.shape[0]):
        others = [j for j in range(dist.shape[1]) if not (exclude_self and j == q)]
        out.append(sorted(others, key=lambda j: (dist[q, j], j)))
    return out


def per_query_metrics(dist, q_cls, db_cls, sims, ks, clip, exclude_self, recall_ks=()):
    """dict metric -> list of per-query values (None where a metric leaves the query out)."""
    res = {}
    ranks = rankings(dist, exclude_self)
    for q, ranking in enumerate(ranks):
        c = q_cls[q]
        for name, sim in sims.items():
            sigma = [sim[c, db_cls[j]] for j in ranking]
            beta = sorted(sigma, reverse=True)
            hp = []
            for k in range(1, len(ranking) + 1):
                b = sum(beta[:k])
                hp.append(sum(sigma[:k]) / b if b > 0 else 1.0)
            for k in ks:
                res.setdefault(f"P@{k} ({name})", []).append(hp[k - 1])
            kk = len(hp)
            res.setdefault(f"AHP ({name})", []).append((sum(hp) - (hp[0] + hp[kk - 1]) / 2) / kk)
            if clip:
                res.setdefault(f"AHP@{clip} ({name})", []).append((sum(hp[:clip]) - (hp[0] + hp[clip - 1]) / 2) / clip)
        rel = [db_cls[j] == c for j in ranking]
        n_rel = sum(rel)
        # AP: average precision over relevant positions
        if n_rel:
            hits, total = 0, 0.0
            for i, r in enumerate(rel, 1):
                if r:
                    hits += 1
                    total += hits / i
            ap = total / n_rel
        else:
            ap = 0.0
        res.setdefault("AP", []).append(ap)
        if n_rel:  # Recall@K, ties in the query's favour (METRIC_LEARNING.md §11)
            nearest_pos = min(dist[q, j] for j in ranking if db_cls[j] == c)
            closer_neg = sum(1 for j in ranking if db_cls[j] != c and dist[q, j] < nearest_pos)
        for k in recall_ks:
            res.setdefault(f"Recall@{k}", []).append(float(closer_neg < k) if n_rel else None)
        if n_rel:
            rp = sum(rel[:n_rel]) / n_rel
            hits, total = 0, 0.0
            for i, r in enumerate(rel[:n_rel], 1):
                if r:
                    hits += 1
                    total += hits / i
            mapr = total / n_rel
        else:
            rp = mapr = None
        res.setdefault("R-Precision", []).append(rp)
        res.setdefault("mAP@R", []).append(mapr)
    return res


def sklearn_ap(dist_row_ranking, rel):
    """scikit-learn's AP for a strict ranking (scores = minus position)."""
    scores = -np.arange(len(rel), dtype=np.float64)
    if not any(rel):
        return 0.0
    return float(average_precision_score(np.asarray(rel, dtype=int), scores))


def means(per_query):
    out = {}
    for k, vals in per_query.items():
        used = [v for v in vals if v is not None]
        out[k] = sum(used) / len(used) if used else float("nan")  # undefined without any query
    return out
