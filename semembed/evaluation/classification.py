"""Classification metrics, flat and hierarchy-aware, and the ways to turn features into class scores.

Metric names follow the reference (SPEC.md §4) and Bertinetto et al. (CVPR 2020):

* ``Accuracy`` (top-1), ``Top-5 Accuracy``;
* ``Avg. Accuracy``: balanced accuracy, the mean over the classes present in
  ``labels`` of the per-class recall;
* ``Hierarchical Accuracy``: mean s(predicted, true) with s = 1 − height(LCS)/H;
* ``Mistake Severity``: mean height of LCA(predicted, true) over misclassified
  images (NaN when there is no mistake);
* ``Avg. Hierarchical Distance@k``: mean over all images of the mean LCA height
  between the true class and each of the top-k predictions;
* ``HOPS`` / ``HOPS@k`` (with ``hops=True``): the Hierarchically Ordered Preference Score of
  Sani & Anand (Hier-COS, 2025), see :func:`hops_scores`.

Scores are "higher = better"; classes are ranked by descending score with
ties broken by class index (the reference's ``argsort()[::-1]`` breaks them the
other way round, which only matters for exactly tied scores).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from semembed.errors import SemembedError
from semembed.evaluation.ranking import rank_block
from semembed.taxonomy import ClassPairs, Hierarchy


def top_classes(scores: np.ndarray, k: int, block_elements: int = 1 << 22) -> np.ndarray:
    """``N x k`` class indices by descending score, ties by index (partial sort, in row blocks)."""
    scores = np.asarray(scores)
    n, m = scores.shape
    k = min(int(k), m)
    block = max(1, block_elements // max(m, 1))
    out = np.empty((n, k), dtype=np.intp)
    dtype = scores.dtype if scores.dtype in (np.float32, np.float64) else np.float64
    for s in range(0, n, block):
        neg = -(scores[s : s + block].astype(dtype)) + 0.0  # -0.0 -> 0.0
        out[s : s + block] = rank_block(neg, None if k >= m else k)[:, :k]
    return out


def _check(labels: np.ndarray, scores: np.ndarray, classes: Sequence) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels)
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise SemembedError(f"scores: expected an array of shape (images, classes), got {scores.shape}")
    if labels.ndim != 1 or len(labels) != len(scores):
        raise SemembedError(f"labels: expected {len(scores)} labels (one per row of scores), got shape {labels.shape}")
    if scores.shape[1] != len(classes):
        raise SemembedError(f"scores have {scores.shape[1]} columns but {len(classes)} classes are given")
    if not np.issubdtype(labels.dtype, np.integer):
        raise SemembedError(f"labels: expected integer class indices, got dtype {labels.dtype}")
    if len(labels) == 0:
        raise SemembedError("labels: no images to evaluate")
    if labels.min() < 0 or labels.max() >= len(classes):
        raise SemembedError(f"labels: class indices must lie in 0..{len(classes) - 1}")
    if not np.issubdtype(scores.dtype, np.number) or not np.isfinite(scores).all():
        bad = np.flatnonzero(~np.isfinite(scores.astype(np.float64)).all(axis=1))
        raise SemembedError(f"scores: {len(bad)} row(s) contain NaN or infinite values (first rows: {bad[:5].tolist()})")
    return labels.astype(np.intp), scores


def balanced_accuracy(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> float:
    """Mean over the classes present in ``labels`` of per-class recall (the reference's 'Avg. Accuracy')."""
    hits = np.bincount(labels, weights=predicted == labels, minlength=num_classes)
    present = np.bincount(labels, minlength=num_classes)
    return float(np.mean(hits[present > 0] / present[present > 0]))


def metrics_from_ranking(
    labels: np.ndarray, ranked: np.ndarray, pairs: ClassPairs, ks: Iterable[int] = (1, 5)
) -> dict[str, float]:
    """All metrics from ``ranked`` (N x ≥max(ks) class indices, best first)."""
    top1 = ranked[:, 0]
    hit = top1 == labels
    out = {"Accuracy": float(hit.mean())}
    if ranked.shape[1] >= 5:
        out["Top-5 Accuracy"] = float((ranked[:, :5] == labels[:, None]).any(axis=1).mean())
    out["Avg. Accuracy"] = balanced_accuracy(labels, top1, len(pairs.classes))
    sim = pairs.lcs_height_similarity()
    out["Hierarchical Accuracy"] = float(sim[labels, top1].mean())
    dist = pairs.lcs_heights()
    wrong = ~hit
    out["Mistake Severity"] = float(dist[labels[wrong], top1[wrong]].mean()) if wrong.any() else float("nan")
    for k in sorted(set(int(k) for k in ks)):
        if k <= ranked.shape[1]:
            out[f"Avg. Hierarchical Distance@{k}"] = float(dist[labels[:, None], ranked[:, :k]].mean())
    return out


def classification_metrics(
    labels: np.ndarray,
    scores: np.ndarray,
    hierarchy: Hierarchy,
    classes: Sequence,
    *,
    ks: Iterable[int] = (1, 5),
    pairs: ClassPairs | None = None,
    hops: bool = False,
) -> dict[str, float]:
    """Flat and hierarchical metrics of class ``scores`` (higher = better).

    Args:
        labels: ``N`` true class indices into ``classes``.
        scores: ``N x K`` scores or probabilities, column j for ``classes[j]``.
        hierarchy: taxonomy for the hierarchical metrics.
        classes: the K class ids (e.g. a class embedding's ``ind2label``).
        ks: cut-offs of ``Avg. Hierarchical Distance@k``.
        pairs: precomputed ``ClassPairs(hierarchy, classes)`` to reuse.
        hops: also ``HOPS`` (whole ranking) and ``HOPS@k`` for each k in ``ks`` with 1 < k < K.

    Returns:
        ``{"Accuracy", "Top-5 Accuracy", "Avg. Accuracy", "Hierarchical Accuracy",
        "Mistake Severity", "Avg. Hierarchical Distance@1", ...: value}``.
    """
    labels, scores = _check(labels, scores, classes)
    pairs = pairs if pairs is not None else ClassPairs(hierarchy, classes)
    kmax = max([5, *ks])
    out = metrics_from_ranking(labels, top_classes(scores, kmax), pairs, ks)
    if hops:
        num = len(classes)
        out["HOPS"] = float(hops_scores(labels, scores, pairs).mean())
        for k in sorted(set(int(k) for k in ks)):
            if 1 < k < num:
                out[f"HOPS@{k}"] = float(hops_scores(labels, scores, pairs, k=k).mean())
    return out


def preference_ranks(distances: np.ndarray) -> np.ndarray:
    """C x C dense ranks of each row's class distances, ascending (0 = the class itself / the closest)."""
    d = np.asarray(distances)
    order = np.argsort(d, axis=1, kind="stable")
    srt = np.take_along_axis(d, order, axis=1)
    dense = np.concatenate([np.zeros((len(d), 1), np.int64), np.cumsum(np.diff(srt, axis=1) > 0, axis=1)], axis=1)
    ranks = np.empty_like(dense)
    np.put_along_axis(ranks, order, dense, axis=1)
    return ranks


def hops_weights(expected: np.ndarray) -> np.ndarray:
    """HOPS position weights for rows of sorted expected ranks (the official ``generate_weights``).

    The positions holding rank r share the interval from 2⁻ʳ down to 2⁻⁽ʳ⁺¹⁾ in equal steps
    (the deepest rank decays towards 0); rank 0 weighs 1 when the row has more than one rank.
    """
    e = np.asarray(expected)
    n_pos = e.shape[1]
    first = np.argmax(e[:, :, None] == e[:, None, :], axis=2)  # first position holding the same rank
    count = (e[:, :, None] == e[:, None, :]).sum(axis=2)
    j = np.arange(n_pos)[None, :] - first
    rmax = e.max(axis=1, keepdims=True)
    start = np.power(2.0, -e.astype(np.float64))
    end = np.where(e == rmax, 0.0, np.power(2.0, -(e + 1.0)))
    w = start + (end - start) * j / count
    return np.where((e == 0) & (rmax > 0), 1.0, w)


def hops_scores(labels: np.ndarray, scores: np.ndarray, pairs: ClassPairs, k: int | None = None,
                block_elements: int = 1 << 22) -> np.ndarray:
    """Per-image HOPS (Hierarchically Ordered Preference Score; Sani & Anand, Hier-COS 2025).

    The taxonomy orders the classes for the true class y by dense rank of their LCA height
    (the class itself 0, its siblings next, ...).  With E the sorted expected ranks, O the ranks of
    the predicted ranking, w the :func:`hops_weights` of E and W the ranking that reverses E
    (its first k positions for HOPS@k), HOPS = clip(1 − Σ w|E − O| / Σ w|E − W|, 0, 1), positions
    beyond k weighing 0 in the numerator; HOPS@1 is 1 when the top prediction has rank 0.
    Follows the authors' analysis notebook (``Code for Analysis (HOPS, FPA, Tree).ipynb``), except
    for exactly tied scores: ours rank the lower class index first (as every other metric here),
    the notebook's ``np.argsort(logits)[:, ::-1]`` the higher one; untied scores give the same value.

    Args:
        labels: N true class indices.
        scores: N x K class scores, higher = better (ties broken by class index).
        pairs: ``ClassPairs`` of the K classes.
        k: cut-off (None: the whole ranking).

    Returns:
        N scores in [0, 1].
    """
    labels = np.asarray(labels, dtype=np.intp)
    scores = np.asarray(scores)
    num = scores.shape[1]
    ranks = preference_ranks(pairs.lcs_heights())
    expected = np.sort(ranks, axis=1)
    weights = hops_weights(expected)
    kk = num if k is None else min(int(k), num)
    worst_rank = expected.copy()
    worst_rank[:, :kk] = expected[:, :kk][:, ::-1]
    worst = (weights * np.abs(expected - worst_rank)).sum(axis=1)
    if k is not None:
        weights = weights.copy()
        weights[:, kk:] = 0.0
    out = np.empty(len(labels))
    block = max(1, block_elements // max(num, 1))
    for s in range(0, len(labels), block):
        y = labels[s : s + block]
        ranked = top_classes(scores[s : s + block], num if kk > 1 else 1)
        obtained = ranks[y[:, None], ranked]
        if kk == 1:
            out[s : s + block] = obtained[:, 0] == 0
            continue
        diff = (weights[y] * np.abs(expected[y][:, : ranked.shape[1]] - obtained)).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            val = np.where(worst[y] > 0, 1.0 - diff / np.where(worst[y] > 0, worst[y], 1.0), 1.0)
        out[s : s + block] = np.clip(val, 0.0, 1.0)
    return out


def conditional_risk_scores(probs: np.ndarray, hierarchy: Hierarchy, classes: Sequence, pairs: ClassPairs | None = None) -> np.ndarray:
    """Negated expected LCA-height cost of predicting each class under ``probs`` (Bertinetto et al.'s CRM).

    risk[n, j] = Σᵢ p[n, i] · height(LCA(i, j)); ranking by ``-risk`` picks the
    prediction with the least expected hierarchical mistake.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != len(classes):
        raise SemembedError(f"probabilities: expected shape (images, {len(classes)}), got {probs.shape}")
    pairs = pairs if pairs is not None else ClassPairs(hierarchy, classes)
    return -(probs @ pairs.lcs_heights().astype(np.float64))


def as_probabilities(scores: np.ndarray, atol: float = 1e-3) -> tuple[np.ndarray, bool]:
    """Return ``scores`` if every row is a distribution, else their softmax; the flag says which."""
    s = np.asarray(scores, dtype=np.float64)
    if (s >= 0).all() and np.allclose(s.sum(axis=1), 1.0, atol=atol):
        return s, True
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True), False


def nearest_centroid_scores(features: np.ndarray, centroids: np.ndarray, block_elements: int = 1 << 22) -> np.ndarray:
    """Negated squared Euclidean distance of each feature to each class centroid (the reference's ``--centroids``)."""
    x = np.asarray(features, dtype=np.float64)
    c = np.asarray(centroids, dtype=np.float64)
    if x.ndim != 2 or c.ndim != 2 or x.shape[1] != c.shape[1]:
        raise SemembedError(f"features {x.shape} and centroids {c.shape} must be 2-D with the same dimension")
    csq = np.sum(c**2, axis=1)
    out = np.empty((len(x), len(c)))
    block = max(1, block_elements // max(len(c), 1))
    for s in range(0, len(x), block):
        xb = x[s : s + block]
        d = np.sum(xb**2, axis=1)[:, None] + csq[None, :] - 2.0 * (xb @ c.T)
        out[s : s + block] = -np.maximum(d, 0.0)
    return out


def scale_features(train: np.ndarray, test: np.ndarray, normalize: bool) -> tuple[np.ndarray, np.ndarray]:
    """The reference's SVM input scaling: L2 rows (``--norm``) or divide by the training max-abs per dimension."""
    train = np.asarray(train, dtype=np.float64)
    test = np.asarray(test, dtype=np.float64)
    if normalize:
        for name, a in (("training", train), ("test", test)):
            if (np.linalg.norm(a, axis=1) == 0).any():
                raise SemembedError(f"{name} features contain all-zero rows that cannot be L2-normalised")
        return (train / np.linalg.norm(train, axis=1, keepdims=True),
                test / np.linalg.norm(test, axis=1, keepdims=True))
    xmax = np.maximum(1e-8, np.abs(train).max(axis=0, keepdims=True))
    return train / xmax, test / xmax


def svm_scores(
    train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray, num_classes: int,
    *, C: float = 0.1, normalize: bool = False, seed: int = 0,
) -> np.ndarray:
    """Decision values (``N x num_classes``) of a linear SVM (one-vs-rest ``LinearSVC``) trained on features."""
    from sklearn.svm import LinearSVC

    train_labels = np.asarray(train_labels)
    if len(train_labels) != len(train_features):
        raise SemembedError(f"{len(train_labels)} training labels for {len(train_features)} training feature rows")
    if C <= 0:
        raise SemembedError(f"--C must be positive, got {C}")
    xtr, xte = scale_features(train_features, test_features, normalize)
    svm = LinearSVC(C=C, random_state=seed)
    svm.fit(xtr, train_labels)
    dec = svm.decision_function(xte)
    if dec.ndim == 1:  # two classes
        dec = np.stack([-dec, dec], axis=1)
    out = np.full((len(xte), num_classes), np.finfo(np.float64).min)  # classes without training images
    out[:, svm.classes_] = dec
    return out
