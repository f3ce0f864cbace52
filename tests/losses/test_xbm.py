"""Cross-batch memory (METRIC_LEARNING.md §7, fact 16): start iteration, ring layouts, the memory term."""

from __future__ import annotations

import math

import numpy as np
import pytest

import metric_bruteforce as bf
from semembed.errors import SemembedError
from semembed.losses import ContrastiveLoss, CrossBatchMemory, LiftedStructureLoss, MultiSimilarityLoss


def batches(n, b=4, d=6, seed=0):
    rng = np.random.default_rng(seed)
    return [(np.array([0, 0, 1, 1][:b] if b == 4 else rng.integers(0, 3, b)), rng.normal(size=(b, d)).astype("float32"))
            for _ in range(n)]


def dm_contrastive():
    return ContrastiveLoss(1.0, 0.5, distance="cosine", reducer="anchor_mean")


def test_before_start_batch_loss_then_twice_the_batch_loss():
    xbm = CrossBatchMemory(dm_contrastive(), 6, memory_size=32, start_iteration=2)
    (y1, x1), (y2, x2), (y3, x3) = batches(3)
    assert float(xbm(y1, x1)) == pytest.approx(float(dm_contrastive()(y1, x1)), rel=1e-6)
    assert float(xbm(y2, x2)) == pytest.approx(float(dm_contrastive()(y2, x2)), rel=1e-6)
    assert int(np.asarray(xbm.filled)) == 0  # nothing enqueued before the start
    # t = 3 > start: the memory holds only this batch; its self pairs are removed by slot
    assert float(xbm(y3, x3)) == pytest.approx(2 * float(dm_contrastive()(y3, x3)), rel=1e-6)
    assert int(np.asarray(xbm.filled)) == 4


@pytest.mark.parametrize("ring,expected,ptr", [
    ("xbm", [1, 1, 1, 1, 2, 2, 3, 3, 3, 3], 0),
    ("fifo", [3, 3, 1, 1, 2, 2, 2, 2, 3, 3], 2),
])
def test_ring_layout_after_three_batches(ring, expected, ptr):
    xbm = CrossBatchMemory(dm_contrastive(), 2, memory_size=10, start_iteration=0, ring=ring)
    for k in (1, 2, 3):
        emb = np.full((4, 2), float(k), "float32")
        emb[:, 1] = np.arange(4)  # distinct rows
        xbm(np.full(4, k), emb)
    assert np.asarray(xbm.memory_labels).tolist() == expected
    assert int(np.asarray(xbm.ptr)) == ptr
    mem = np.asarray(xbm.memory)
    if ring == "xbm":  # batch 2's first half in slots 4-5, batch 3 whole in 6-9
        assert mem[4:6, 1].tolist() == [0, 1] and mem[6:10, 1].tolist() == [0, 1, 2, 3]
    else:  # batch 3 in slots 8, 9, 0, 1
        assert mem[[8, 9, 0, 1], 1].tolist() == [0, 1, 2, 3]


def test_memory_term_matches_a_loop_over_memory_references():
    (y1, x1), (y2, x2) = batches(2, seed=3)
    xbm = CrossBatchMemory(MultiSimilarityLoss(), 6, memory_size=16, start_iteration=0)
    xbm(y1, x1)
    got = float(xbm(y2, x2)) - float(MultiSimilarityLoss()(y2, x2))
    # loop: anchors of batch 2 against every memory row (batches 1 and 2) except the anchor's own slot
    ys, xs = np.concatenate([y1, y2]), np.concatenate([x1, x2]).astype("float64")
    total = 0.0
    for a in range(4, 8):
        others = [k for k in range(8) if k != a]
        s = {k: bf.cos(xs[a], xs[k]) for k in others}
        pos = [k for k in others if ys[k] == ys[a]]
        neg = [k for k in others if ys[k] != ys[a]]
        min_pos, max_neg = min(s[k] for k in pos), max(s[k] for k in neg)
        kp = [k for k in pos if s[k] - 0.1 < max_neg]
        kn = [k for k in neg if s[k] + 0.1 > min_pos]
        total += math.log(1 + sum(math.exp(-2 * (s[k] - 0.5)) for k in kp)) / 2
        total += math.log(1 + sum(math.exp(50 * (s[k] - 0.5)) for k in kn)) / 50
    assert got == pytest.approx(total / 4, rel=1e-5)


def test_refuses_losses_without_references_and_oversized_batches():
    with pytest.raises(SemembedError, match="pair loss that takes references"):
        CrossBatchMemory(LiftedStructureLoss(), 4)
    xbm = CrossBatchMemory(dm_contrastive(), 6, memory_size=3, start_iteration=0)
    with pytest.raises(SemembedError, match="does not fit"):
        xbm(*batches(1)[0])
