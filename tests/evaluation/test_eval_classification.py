"""Classification metrics against per-image loops, scipy and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.metrics import balanced_accuracy_score
from sklearn.svm import LinearSVC

from semembed.errors import SemembedError
from semembed.evaluation.classification import (
    as_probabilities,
    classification_metrics,
    conditional_risk_scores,
    nearest_centroid_scores,
    svm_scores,
    top_classes,
)
from semembed.taxonomy import ClassPairs, load_hierarchy


def _brute(labels, scores, pairs):
    """Per-image loops from the definitions; ties broken by the lower class index."""
    n, k = scores.shape
    sim = pairs.lcs_height_similarity()
    dist = pairs.lcs_heights()
    ranked = [sorted(range(k), key=lambda j: (-scores[i, j], j)) for i in range(n)]
    top1 = [r[0] for r in ranked]
    acc = np.mean([t == y for t, y in zip(top1, labels)])
    top5 = np.mean([y in r[:5] for r, y in zip(ranked, labels)])
    mistakes = [dist[y, t] for t, y in zip(top1, labels) if t != y]
    return {
        "Accuracy": acc,
        "Top-5 Accuracy": top5,
        "Avg. Accuracy": balanced_accuracy_score(labels, top1),
        "Hierarchical Accuracy": np.mean([sim[y, t] for t, y in zip(top1, labels)]),
        "Mistake Severity": np.mean(mistakes) if mistakes else np.nan,
        "Avg. Hierarchical Distance@1": np.mean([dist[y, r[0]] for r, y in zip(ranked, labels)]),
        "Avg. Hierarchical Distance@5": np.mean([np.mean([dist[y, j] for j in r[:5]]) for r, y in zip(ranked, labels)]),
    }


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize("taxonomy", ["tree", "dag"])
def test_metrics_match_bruteforce(taxonomy, tree_file, dag_file):
    rng = np.random.default_rng(2)
    h = load_hierarchy(tree_file) if taxonomy == "tree" else load_hierarchy(dag_file, str_ids=True)
    classes = h.leaves()
    pairs = ClassPairs(h, classes)
    labels = rng.integers(0, len(classes), 80)
    labels[labels == 0] = 1  # class 0 absent from the test set: not part of the balanced accuracy
    scores = np.round(rng.standard_normal((80, len(classes))), 1)  # includes tied scores
    scores[np.arange(0, 80, 3), labels[::3]] += 2.0
    got = classification_metrics(labels, scores, h, classes)
    want = _brute(labels, scores, pairs)
    assert set(got) == set(want)
    for name, value in want.items():
        assert got[name] == pytest.approx(value, abs=1e-12), name


def test_perfect_predictions_have_no_mistakes(tree_file):
    h = load_hierarchy(tree_file)
    classes = h.leaves()
    labels = np.arange(len(classes))
    got = classification_metrics(labels, np.eye(len(classes)), h, classes)
    assert got["Accuracy"] == got["Hierarchical Accuracy"] == got["Avg. Accuracy"] == 1.0
    assert np.isnan(got["Mistake Severity"]) and got["Avg. Hierarchical Distance@1"] == 0.0


def test_top_classes_partial_equals_full_sort():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, (30, 40)).astype(np.float32)
    want = np.array([np.lexsort((np.arange(40), -row)) for row in s.astype(np.float64)])
    np.testing.assert_array_equal(top_classes(s, 7, block_elements=200), want[:, :7])
    np.testing.assert_array_equal(top_classes(s, 40), want)


def test_conditional_risk_is_expected_lca_cost(tree_file):
    rng = np.random.default_rng(4)
    h = load_hierarchy(tree_file)
    classes = h.leaves()
    dist = ClassPairs(h, classes).lcs_heights()
    p = rng.dirichlet(np.ones(len(classes)), 6)
    got = conditional_risk_scores(p, h, classes)
    for n in range(6):
        for j in range(len(classes)):
            assert -got[n, j] == pytest.approx(sum(p[n, i] * dist[i, j] for i in range(len(classes))))
    q, was = as_probabilities(p)
    assert was and q is not None
    s, was = as_probabilities(np.log(p) + 3.0)
    assert not was
    np.testing.assert_allclose(s, p, atol=1e-12)


def test_nearest_centroid_matches_cdist():
    rng = np.random.default_rng(8)
    x, c = rng.standard_normal((25, 6)), rng.standard_normal((9, 6))
    np.testing.assert_allclose(nearest_centroid_scores(x, c, block_elements=40), -cdist(x, c, "sqeuclidean"), atol=1e-10)


@pytest.mark.parametrize("normalize", [False, True])
def test_svm_matches_sklearn_on_scaled_features(normalize):
    rng = np.random.default_rng(9)
    ytr = rng.integers(0, 4, 120)
    xtr = rng.standard_normal((120, 5)) + 2 * np.eye(4, 5)[ytr]
    xte = rng.standard_normal((30, 5))
    got = svm_scores(xtr, ytr, xte, num_classes=5, C=0.5, normalize=normalize)
    if normalize:
        a, b = xtr / np.linalg.norm(xtr, axis=1)[:, None], xte / np.linalg.norm(xte, axis=1)[:, None]
    else:
        m = np.abs(xtr).max(axis=0)
        a, b = xtr / m, xte / m
    ref = LinearSVC(C=0.5, random_state=0).fit(a, ytr).decision_function(b)
    np.testing.assert_allclose(got[:, :4], ref, atol=1e-10)
    assert (got[:, 4] < ref.min()).all()  # a class without training images is never predicted


def test_bad_inputs(tree_file):
    h = load_hierarchy(tree_file)
    classes = h.leaves()
    with pytest.raises(SemembedError, match="columns"):
        classification_metrics(np.zeros(3, int), np.zeros((3, 2)), h, classes)
    with pytest.raises(SemembedError, match="class indices"):
        classification_metrics(np.full(3, 99), np.zeros((3, len(classes))), h, classes)
    s = np.zeros((3, len(classes)))
    s[1, 2] = np.nan
    with pytest.raises(SemembedError, match="NaN"):
        classification_metrics(np.zeros(3, int), s, h, classes)
