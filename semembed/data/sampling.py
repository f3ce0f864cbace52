"""Epoch orders as pure functions of (seed, epoch): shuffling, oversampling, repeats.

The reference's ``DataSequence`` draws from NumPy's global RNG; we draw from
``np.random.default_rng([seed, epoch])`` instead, so a resumed run sees exactly
the same order as an uninterrupted one.
"""

from __future__ import annotations

import numpy as np


def oversampled_indices(labels: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Indices that bring every class to the size M of the largest one.

    Classes appear in the order in which their labels first occur (as the
    reference's ``Counter``).  Without ``rng`` each member is repeated in place,
    ``np.repeat(members, ceil(M / n))[:M]``; with ``rng`` each class gets
    ``ceil(M / n)`` independent permutations of its members, cut to ``M``.
    """
    labels = np.asarray(labels)
    if labels.size == 0:
        return np.zeros(0, dtype=np.int64)
    uniq, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank_of_uniq = np.empty(len(uniq), dtype=np.int64)
    rank_of_uniq[np.argsort(first, kind="stable")] = np.arange(len(uniq))
    rank = rank_of_uniq[inverse.ravel()]                       # class rank per sample
    members = np.argsort(rank, kind="stable")                  # samples grouped by class, file order inside
    counts = np.bincount(rank, minlength=len(uniq))
    m = counts.max()
    reps = -(-m // counts)                                      # ceil(M / n) per class
    block = counts * reps                                       # entries before the cut
    cls = np.repeat(np.arange(len(uniq)), block)
    start_in = np.concatenate([[0], np.cumsum(counts)[:-1]])   # class start inside `members`
    start_out = np.concatenate([[0], np.cumsum(block)[:-1]])
    j = np.arange(block.sum()) - start_out[cls]                 # position inside the class block
    if rng is None:
        member = j // reps[cls]                                 # np.repeat: each member reps times
    else:
        member = j % counts[cls]                                # pass r = j // n lists every member once
        # sort inside each (class, pass) by a random key -> independent permutations
        rnd = rng.random(len(j))
        order = np.lexsort((rnd, j // counts[cls], cls))
        member, cls_sorted = member[order], cls[order]
        keep = (np.arange(len(order)) - start_out[cls_sorted]) < m
        return members[start_in[cls_sorted] + member][keep]
    keep = j < m
    return members[start_in[cls] + member][keep]


def epoch_order(
    labels: np.ndarray,
    epoch: int,
    seed: int,
    *,
    shuffle: bool = True,
    oversample: bool = False,
    repeats: int = 1,
) -> np.ndarray:
    """Sample indices of one (possibly repeated) epoch, a pure function of (seed, epoch).

    ``repeats`` concatenates that many independent passes (the reference's
    ``train_repeats`` sub-epochs); ``oversample`` balances the classes in each
    pass.
    """
    labels = np.asarray(labels)
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, received repeats={repeats}")
    rng = np.random.default_rng([int(seed), int(epoch)]) if shuffle else None
    parts = []
    for _ in range(repeats):
        base = oversampled_indices(labels, rng) if oversample else np.arange(len(labels), dtype=np.int64)
        parts.append(rng.permutation(base) if rng is not None else base)
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def sample_seeds(length: int, epoch: int, seed: int) -> np.ndarray:
    """Per-position seeds (length, 2) for TF stateless random ops, derived from (seed, epoch)."""
    rng = np.random.default_rng([int(seed), int(epoch), 0x5EED])
    return rng.integers(0, 2**31 - 1, size=(length, 2), dtype=np.int64)
