"""Miners on their own: ``miner(labels, embeddings)`` → masks, ``pair_indices``/``triplet_indices`` → PML's
index tuples, against mining loops written from the rules (METRIC_LEARNING.md §2, §6; PML's miners)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from semembed.errors import SemembedError
from semembed.losses.metric import (
    BatchHardMiner,
    MultiSimilarityMiner,
    PairMarginMiner,
    SemiHardNegativeMiner,
    TripletMarginMiner,
)
from semembed.losses.metric.miners import pair_indices, triplet_indices


def batch(seed=0, n_per_class=4, classes=3, dim=6):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), n_per_class)
    return labels, rng.normal(size=(len(labels), dim))  # float64: no rounding ties with the loops


def unit(v):
    return v / math.sqrt(float(np.dot(v, v)))


def cos(a, b):
    return float(np.dot(unit(a), unit(b)))


def dist(a, b, squared=False):
    d2 = float(np.sum((unit(a) - unit(b)) ** 2))
    return d2 if squared else math.sqrt(d2)


def pos_neg(labels, i):
    return ([j for j in range(len(labels)) if j != i and labels[j] == labels[i]],
            [j for j in range(len(labels)) if labels[j] != labels[i]])


def ms_loop(labels, x, eps):
    pairs_p, pairs_n = [], []
    for i in range(len(labels)):
        pos, neg = pos_neg(labels, i)
        min_pos = min((cos(x[i], x[k]) for k in pos), default=math.inf)
        max_neg = max((cos(x[i], x[k]) for k in neg), default=-math.inf)
        pairs_n += [(i, k) for k in neg if cos(x[i], x[k]) + eps > min_pos]
        pairs_p += [(i, k) for k in pos if cos(x[i], x[k]) - eps < max_neg]
    return pairs_p, pairs_n


def pair_margin_loop(labels, x, pos_margin, neg_margin):
    pairs_p, pairs_n = [], []
    for i in range(len(labels)):
        pos, neg = pos_neg(labels, i)
        pairs_p += [(i, k) for k in pos if dist(x[i], x[k]) > pos_margin]
        pairs_n += [(i, k) for k in neg if dist(x[i], x[k]) < neg_margin]
    return pairs_p, pairs_n


def batch_hard_loop(labels, x):
    out = []
    for a in range(len(labels)):
        pos, neg = pos_neg(labels, a)
        if pos and neg:
            p = max(pos, key=lambda k: dist(x[a], x[k]))
            n = min(neg, key=lambda k: dist(x[a], x[k]))
            out.append((a, p, n))
    return out


def triplet_margin_loop(labels, x, margin, kind):
    out = []
    for a in range(len(labels)):
        pos, neg = pos_neg(labels, a)
        for p in pos:
            for n in neg:
                m = dist(x[a], x[n]) - dist(x[a], x[p])
                keep = {"all": True, "hard": m <= 0, "semihard": 0 < m <= margin, "easy": m > margin}[kind]
                if keep:
                    out.append((a, p, n))
    return out


def facenet_loop(labels, x):
    out = []
    for a in range(len(labels)):
        pos, neg = pos_neg(labels, a)
        if not neg:
            continue
        for p in pos:
            dap = dist(x[a], x[p], squared=True)
            farther = [n for n in neg if dist(x[a], x[n], squared=True) > dap]
            if farther:
                n = min(farther, key=lambda k: dist(x[a], x[k], squared=True))
            else:
                n = max(neg, key=lambda k: dist(x[a], x[k], squared=True))
            out.append((a, p, n))
    return out


def as_pairs(rows, cols):
    return sorted(zip(rows.tolist(), cols.tolist()))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("eps", [0.1, 0.3])
def test_multi_similarity_miner_matches_the_loop(seed, eps):
    labels, x = batch(seed)
    pos, neg = MultiSimilarityMiner(eps)(labels, x)  # the call the tester tried
    a1, p, a2, n = pair_indices(pos, neg)
    want_p, want_n = ms_loop(labels, x, eps)
    assert as_pairs(a1, p) == sorted(want_p) and as_pairs(a2, n) == sorted(want_n)
    assert want_n and want_p  # the rule keeps some pairs here, and drops others
    assert len(want_n) < sum(len(pos_neg(labels, i)[1]) for i in range(len(labels)))


@pytest.mark.parametrize("seed", [0, 1])
def test_pair_margin_miner_matches_the_loop(seed):
    labels, x = batch(seed)
    a1, p, a2, n = pair_indices(*PairMarginMiner(1.2, 1.3).mine(labels, x))
    want_p, want_n = pair_margin_loop(labels, x, 1.2, 1.3)
    assert as_pairs(a1, p) == sorted(want_p) and as_pairs(a2, n) == sorted(want_n)
    assert want_p and want_n


@pytest.mark.parametrize("seed", [0, 1])
def test_batch_hard_miner_matches_the_loop(seed):
    labels, x = batch(seed)
    got = sorted(zip(*(t.tolist() for t in triplet_indices(BatchHardMiner()(labels, x)))))
    assert got == sorted(batch_hard_loop(labels, x))


@pytest.mark.parametrize("kind", ["all", "hard", "semihard", "easy"])
def test_triplet_margin_miner_matches_the_loop(kind):
    labels, x = batch(3)
    got = sorted(zip(*(t.tolist() for t in triplet_indices(TripletMarginMiner(0.3, kind)(labels, x)))))
    want = sorted(triplet_margin_loop(labels, x, 0.3, kind))
    assert got == want and want


@pytest.mark.parametrize("seed", [0, 4])
def test_facenet_semihard_miner_gives_one_negative_per_positive_pair(seed):
    labels, x = batch(seed)
    got = sorted(zip(*(t.tolist() for t in triplet_indices(SemiHardNegativeMiner()(labels, x)))))
    assert got == sorted(facenet_loop(labels, x))


def test_mining_against_references_and_another_distance():
    labels, x = batch(5)
    ref_labels, ref = labels[:6], x[:6] + 0.3
    pos, neg = PairMarginMiner(0.9, 1.1)(labels, x, ref_labels=ref_labels, ref_embeddings=ref)
    assert np.asarray(pos).shape == (12, 6)
    for i in range(12):
        for k in range(6):  # no self pairs against a separate reference set
            same = labels[i] == ref_labels[k]
            d = dist(x[i], ref[k])
            assert bool(np.asarray(pos)[i, k]) == (same and d > 0.9)
            assert bool(np.asarray(neg)[i, k]) == (not same and d < 1.1)
    pos_c, _ = PairMarginMiner(0.5, 0.2).mine(labels, x, distance="cosine")  # similarities: S < 0.5 for positives
    for i in range(12):
        for k in pos_neg(labels, i)[0]:
            assert bool(np.asarray(pos_c)[i, k]) == (cos(x[i], x[k]) < 0.5)


def test_miner_misuse_is_a_clear_error():
    labels, x = batch()
    with pytest.raises(SemembedError, match="miner\\(labels"):
        MultiSimilarityMiner()(labels)
    with pytest.raises(SemembedError, match="labels has 11 entries"):
        MultiSimilarityMiner()(labels[:-1], x)
    with pytest.raises(SemembedError, match="similarities"):
        MultiSimilarityMiner().mine(labels, x, distance="euclidean")
