"""Classification metrics, flat and hierarchy-aware, and the ways to turn features into class scores.

Metric names follow the reference (SPEC.md §4) and Bertinetto et al. (CVPR 2020):

* ``Accuracy`` (top-1), ``Top-5 Accuracy``;
* ``Avg. Accuracy``: balanced accuracy, the mean over the classes present in
  ``labels`` of the per-class recall;
* ``Hierarchical Accuracy``: mean s(predicted, true) with s = 1 − height(LCS)/H;
* ``Mistake Severity``: mean height of LCA(predicted, true) over misclassified
  images (NaN when there is no mistake);
* ``Avg. Hierarchical Distance@k``: mean over all images of the mean LCA height
  between the true class and each of the top-k predictions.

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
) -> dict[str, float]:
    """Flat and hierarchical metrics of class ``scores`` (higher = better).

    Args:
        labels: ``N`` true class indices into ``classes``.
        scores: ``N x K`` scores or probabilities, column j for ``classes[j]``.
        hierarchy: taxonomy for the hierarchical metrics.
        classes: the K class ids (e.g. a class embedding's ``ind2label``).
        ks: cut-offs of ``Avg. Hierarchical Distance@k``.
        pairs: precomputed ``ClassPairs(hierarchy, classes)`` to reuse.

    Returns:
        ``{"Accuracy", "Top-5 Accuracy", "Avg. Accuracy", "Hierarchical Accuracy",
        "Mistake Severity", "Avg. Hierarchical Distance@1", ...: value}``.
    """
    labels, scores = _check(labels, scores, classes)
    pairs = pairs if pairs is not None else ClassPairs(hierarchy, classes)
    kmax = max([5, *ks])
    return metrics_from_ranking(labels, top_classes(scores, kmax), pairs, ks)


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
