"""The precision-recall curve against a per-query loop over scikit-learn's precision_recall_curve."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, precision_recall_curve as sk_pr

from semembed.evaluation.curves import precision_recall_curve


@pytest.mark.parametrize("normalize", [True, False])
def test_pr_curve_matches_sklearn_per_query(normalize):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 60)
    feats = rng.standard_normal((60, 5)) + labels[:, None] * 0.8
    labels[0] = 9  # a singleton: left out of the curve, AP 0
    bins = 10
    recall, precision, m_ap = precision_recall_curve(feats, labels, normalize=normalize, bins=bins)
    f = feats / np.linalg.norm(feats, axis=1, keepdims=True) if normalize else feats
    per_bin = [[] for _ in range(bins)]
    aps = []
    for q in range(60):
        others = [j for j in range(60) if j != q]
        score = np.array([f[q] @ f[j] if normalize else -np.sum((f[q] - f[j]) ** 2) for j in others])
        rel = np.array([labels[j] == labels[q] for j in others])
        if not rel.any():
            aps.append(0.0)
            continue
        aps.append(average_precision_score(rel, score))
        p, r, _ = sk_pr(rel, score)
        cell_best = {}
        for pi, ri in zip(p[:-1], r[:-1]):  # sklearn's points at each threshold (no ties here)
            if ri == 0:
                continue
            c = min(int(ri * bins), bins - 1)
            cell_best[c] = max(cell_best.get(c, 0.0), pi)
        for c, v in cell_best.items():
            per_bin[c].append(v)
    want = [(c + 0.5) / bins for c in range(bins) if per_bin[c]]
    np.testing.assert_allclose(recall, want)
    np.testing.assert_allclose(precision, [np.mean(v) for v in per_bin if v], rtol=1e-10)
    assert m_ap == pytest.approx(np.mean(aps), rel=1e-10)
