"""HOPS (Hier-COS's Hierarchically Ordered Preference Score): hand-computed rankings and a per-image loop."""

from __future__ import annotations

import numpy as np
import pytest

from semembed.evaluation.classification import classification_metrics, hops_scores
from semembed.taxonomy import ClassPairs, Hierarchy, load_hierarchy


@pytest.fixture(scope="module")
def four():
    """r -> X -> {a, b}, r -> Y -> {c, d}: for a, b ranks 1st, c and d tie 2nd."""
    h = Hierarchy(["r", "r", "X", "X", "Y", "Y"], ["X", "Y", "a", "b", "c", "d"])
    return h, ClassPairs(h, ["a", "b", "c", "d"])


def scores_for(order):
    s = np.zeros(len(order))
    s[list(order)] = np.arange(len(order), 0, -1)
    return s


def test_hand_computed_rankings(four):
    # true class a: expected ranks [0, 1, 2, 2], weights [1, 1/2, 1/4, 1/8] (rank 2's interval 1/4 -> 0 in 2 steps)
    # worst ranking (reversed) differs by [2, 1, 1, 2]: 2 + 1/2 + 1/4 + 1/4 = 3
    _, pairs = four
    cases = {(0, 1, 2, 3): 1.0, (0, 1, 3, 2): 1.0,  # c and d are equally good
             (0, 2, 1, 3): 1 - (0.5 + 0.25) / 3,  # obtained [0, 2, 1, 2]
             (1, 0, 2, 3): 1 - (1 + 0.5) / 3,  # [1, 0, 2, 2]
             (2, 3, 1, 0): 0.0}
    s = np.array([scores_for(o) for o in cases])
    got = hops_scores(np.zeros(len(cases), int), s, pairs)
    np.testing.assert_allclose(got, list(cases.values()), atol=1e-12)
    # HOPS@2: worst = first two reversed [1, 0]: 1 + 1/2; positions beyond 2 weigh 0
    got2 = hops_scores(np.zeros(len(cases), int), s, pairs, k=2)
    np.testing.assert_allclose(got2, [1, 1, 1 - 0.5 / 1.5, 0, 0], atol=1e-12)
    np.testing.assert_array_equal(hops_scores(np.zeros(len(cases), int), s, pairs, k=1), [1, 1, 1, 0, 0])


def hops_loop(labels, scores, dist, k=None):
    """Per image, following the authors' notebook step by step (np.unique per row, linspace per group)."""
    n_cls = dist.shape[0]
    out = []
    for y, s in zip(labels, scores):
        uniq = sorted(set(dist[y]))
        rank = {c: uniq.index(dist[y, c]) for c in range(n_cls)}
        expected = sorted(rank.values())
        ranked = sorted(range(n_cls), key=lambda c: (-s[c], c))
        obtained = [rank[c] for c in ranked]
        worst = list(expected)
        kk = n_cls if k is None else k
        worst[:kk] = expected[:kk][::-1]
        vals = [2.0 ** -r for r in expected]
        levels = sorted(set(vals))  # ascending
        w = [0.0] * n_cls
        for i, v in enumerate(levels):
            pos = [p for p in range(n_cls) if vals[p] == v]
            nxt = 0.0 if i == 0 else (levels[i - 1] if i < len(levels) - 1 else 1.0)
            for j, p in enumerate(pos):
                w[p] = v + (nxt - v) * j / len(pos)
        worst_sum = sum(wi * abs(e - x) for wi, e, x in zip(w, expected, worst))
        if k is not None:
            w = [wi if p < k else 0.0 for p, wi in enumerate(w)]
        got = sum(wi * abs(e - o) for wi, e, o in zip(w, expected, obtained))
        out.append(min(1.0, max(0.0, 1 - got / worst_sum)))
    return np.array(out)


@pytest.mark.parametrize("k", [None, 5, 3])
def test_hops_matches_loop_on_fashion_taxonomy(repo_dir, k):
    h = load_hierarchy(repo_dir / "hierarchies/fashion_mnist/fashion_mnist.parent-child.txt")
    classes = h.leaves()
    pairs = ClassPairs(h, classes)
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 10, 60)
    scores = np.round(rng.normal(size=(60, 10)), 1)  # with ties
    scores[np.arange(60), labels] += rng.random(60)
    np.testing.assert_allclose(hops_scores(labels, scores, pairs, k=k, block_elements=70),
                               hops_loop(labels, scores, pairs.lcs_heights(), k), atol=1e-12)


def test_metrics_carry_hops(four):
    h, pairs = four
    s = np.array([scores_for(o) for o in [(0, 1, 2, 3), (1, 0, 2, 3)]])
    m = classification_metrics(np.array([0, 0]), s, h, pairs.classes, ks=(1, 2, 20), hops=True)
    assert m["HOPS"] == pytest.approx((1 + 0.5) / 2)
    assert m["HOPS@2"] == pytest.approx(0.5) and "HOPS@20" not in m
    assert "HOPS" not in classification_metrics(np.array([0, 0]), s, h, pairs.classes)
