"""Contrastive loss against a loop over every ordered pair (METRIC_LEARNING.md §1, PML semantics)."""

from __future__ import annotations

import numpy as np
import pytest

from semembed.losses import ContrastiveLoss, contrastive_loss


def brute_force(labels, emb, weights, pos_margin, neg_margin):
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    pos, neg = [], []
    for i in range(len(labels)):
        for j in range(len(labels)):
            if i == j:
                continue
            d = np.sqrt(max(((e[i] - e[j]) ** 2).sum(), 0.0) + 1e-12)
            w = weights[i] * weights[j]
            if labels[i] == labels[j]:
                pos.append((max(d - pos_margin, 0.0), w))
            else:
                neg.append((max(neg_margin - d, 0.0), w))

    def avg_non_zero(items):
        active = sum(w for v, w in items if v > 0)
        return sum(v * w for v, w in items) / active if active > 0 else 0.0

    return avg_non_zero(pos) + avg_non_zero(neg)


@pytest.mark.parametrize("pos_margin,neg_margin", [(0.0, 1.0), (0.2, 0.5), (0.0, 3.0)])
def test_matches_pair_loop(pos_margin, neg_margin):
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(10, 5)).astype("float32")
    labels = np.array([0, 0, 1, 1, 1, 2, 3, 3, 4, 0])
    weights = rng.uniform(0, 2, size=10).astype("float32")
    weights[3] = 0.0
    want = brute_force(labels, emb.astype("float64"), weights, pos_margin, neg_margin)
    got = float(contrastive_loss(labels, emb, weights, pos_margin=pos_margin, neg_margin=neg_margin))
    assert got == pytest.approx(want, rel=1e-5)
    unweighted = brute_force(labels, emb.astype("float64"), np.ones(10), pos_margin, neg_margin)
    loss = ContrastiveLoss(pos_margin, neg_margin)
    assert float(loss(labels, emb)) == pytest.approx(unweighted, rel=1e-5)
    assert ContrastiveLoss.from_config(loss.get_config()).neg_margin == neg_margin


def test_closed_form_two_points_and_no_positives():
    # two unit vectors at 90 degrees: d = sqrt(2)
    emb = np.array([[1.0, 0.0], [0.0, 1.0]], "float32")
    assert float(contrastive_loss(np.array([0, 0]), emb)) == pytest.approx(np.sqrt(2), rel=1e-5)
    assert float(contrastive_loss(np.array([0, 1]), emb, neg_margin=2.0)) == pytest.approx(2 - np.sqrt(2), rel=1e-5)
    assert float(contrastive_loss(np.array([0, 1]), emb, neg_margin=1.0)) == 0.0  # all negatives beyond the margin
