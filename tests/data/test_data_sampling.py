"""Epoch orders: purity in (seed, epoch), repeats, oversampling against a loop written from the reference's definition."""

import math
from collections import Counter

import numpy as np

from semembed.data.sampling import epoch_order, oversampled_indices, sample_seeds


def _oversample_loop(labels):
    """Unshuffled oversampling straight from the definition: np.repeat(members, ceil(M/n))[:M] per class."""
    sizes = Counter(labels.tolist())  # first-appearance order
    m = max(sizes.values())
    out = []
    for lbl in sizes:
        members = np.where(labels == lbl)[0]
        out.append(np.repeat(members, math.ceil(m / len(members)))[:m])
    return np.concatenate(out)


def test_oversampled_unshuffled_matches_definition():
    labels = np.array([3, 1, 1, 3, 0, 1, 1, 1, 2, 2, 0, 3])
    np.testing.assert_array_equal(oversampled_indices(labels), _oversample_loop(labels))


def test_oversampled_shuffled_properties():
    labels = np.array([3, 1, 1, 3, 0, 1, 1, 1, 2, 2, 0, 3, 4])
    idx = oversampled_indices(labels, np.random.default_rng(0))
    m = 5
    counts = Counter(labels[idx].tolist())
    assert set(counts.values()) == {m} and len(counts) == 5
    # class blocks in first-appearance order, each of length M
    block_classes = labels[idx].reshape(5, m)[:, 0]
    np.testing.assert_array_equal(block_classes, [3, 1, 0, 2, 4])
    # a class with n members: every full pass of n entries is a permutation of its members
    for lbl in (3, 0, 2):
        members = np.where(labels == lbl)[0]
        got = idx[labels[idx] == lbl]
        n = len(members)
        for p in range(m // n):
            assert sorted(got[p * n:(p + 1) * n]) == sorted(members)


def test_epoch_order_is_pure_function_of_seed_and_epoch():
    labels = np.arange(50) % 7
    a = epoch_order(labels, 3, 11)
    np.testing.assert_array_equal(a, epoch_order(labels, 3, 11))
    assert not np.array_equal(a, epoch_order(labels, 4, 11))
    assert not np.array_equal(a, epoch_order(labels, 3, 12))
    assert sorted(a) == list(range(50))
    np.testing.assert_array_equal(epoch_order(labels, 3, 11, shuffle=False), np.arange(50))


def test_repeats_are_independent_permutations():
    labels = np.arange(20) % 4
    order = epoch_order(labels, 0, 0, repeats=3)
    assert len(order) == 60
    parts = order.reshape(3, 20)
    for p in parts:
        assert sorted(p) == list(range(20))
    assert not np.array_equal(parts[0], parts[1])


def test_oversample_with_repeats_length():
    labels = np.array([0] * 5 + [1] * 2 + [2])
    order = epoch_order(labels, 1, 2, oversample=True, repeats=2)
    assert len(order) == 2 * 3 * 5
    assert Counter(labels[order].tolist()) == {0: 10, 1: 10, 2: 10}


def test_sample_seeds_deterministic_and_distinct():
    s = sample_seeds(100, 2, 5)
    np.testing.assert_array_equal(s, sample_seeds(100, 2, 5))
    assert s.shape == (100, 2) and len({tuple(r) for r in s}) == 100
    assert not np.array_equal(s, sample_seeds(100, 3, 5))
