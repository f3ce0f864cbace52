"""Hierarchy-aware losses (HXE, soft labels, HAFrame frame and loss, Hier-COS) against NumPy loops
written from the papers' definitions, on the shipped Fashion-MNIST taxonomy (leaves at depths 2-4)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from semembed.errors import SemembedError
from semembed.losses.hierarchy import (
    haframe_frame, haframe_loss, haframe_similarity, hierarchical_cross_entropy, hiercos_loss, hiercos_scores,
    hiercos_structure, hxe_matrices, soft_label_cross_entropy, soft_label_targets,
)
from semembed.taxonomy import ClassPairs, load_hierarchy

FASHION = "hierarchies/fashion_mnist/fashion_mnist.parent-child.txt"


@pytest.fixture(scope="module")
def tree(repo_dir):
    path = repo_dir / FASHION
    parent = {}
    for line in path.read_text().splitlines():
        a, b = line.split()
        parent[int(b)] = int(a)
    h = load_hierarchy(path)
    return h, parent, h.leaves()


def root_path(parent, c):
    """[c, parent(c), ..., root] from the file's parent links."""
    out = [c]
    while out[-1] in parent:
        out.append(parent[out[-1]])
    return out


def lca_height(parent, a, b):
    """Height of LCA(a, b): longest path down to a leaf, from the file's child lists."""
    pa, pb = root_path(parent, a), root_path(parent, b)
    lca = next(x for x in pa if x in pb)
    children = {}
    for ch, p in parent.items():
        children.setdefault(p, []).append(ch)

    def height(v):
        return 0 if v not in children else 1 + max(height(c) for c in children[v])

    return 0 if a == b else height(lca)


def random_probs(rng, n, c):
    logits = rng.normal(size=(n, c)) * 2
    e = np.exp(logits - logits.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


# === HXE ===

def hxe_loop(probs, labels, parent, classes, alpha):
    out = []
    for p, y in zip(probs, labels):
        path = root_path(parent, classes[y])  # leaf ... root
        def node_p(v):
            return sum(p[j] for j, c in enumerate(classes) if v in root_path(parent, c))
        total = 0.0
        depth_of = {v: len(path) - 1 - i for i, v in enumerate(path)}
        for v, u in zip(path[:-1], path[1:]):  # edge u -> v
            total -= math.exp(-alpha * depth_of[v]) * math.log(node_p(v) / node_p(u))
        out.append(total)
    return np.array(out)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.5])
def test_hxe_matches_loop(tree, alpha):
    h, parent, classes = tree
    rng = np.random.default_rng(1)
    probs, labels = random_probs(rng, 40, 10), rng.integers(0, 10, 40)
    A, D = hxe_matrices(h, classes, alpha)
    got = np.asarray(hierarchical_cross_entropy(labels, probs, A, D))
    np.testing.assert_allclose(got, hxe_loop(probs.astype(np.float64), labels, parent, classes, alpha), rtol=2e-5, atol=2e-5)


def test_hxe_alpha_zero_is_cross_entropy(tree):
    h, _, classes = tree
    rng = np.random.default_rng(2)
    probs, labels = random_probs(rng, 30, 10), rng.integers(0, 10, 30)
    A, D = hxe_matrices(h, classes, 0.0)
    got = np.asarray(hierarchical_cross_entropy(labels, probs, A, D))
    np.testing.assert_allclose(got, -np.log(probs[np.arange(30), labels]), rtol=1e-5)


def test_hxe_needs_a_tree_and_leaf_classes(tmp_path, tree):
    dag = tmp_path / "dag.txt"
    dag.write_text("r a\nr b\na x\nb x\na y\n")
    h = load_hierarchy(dag, str_ids=True)
    with pytest.raises(SemembedError, match="needs a tree.*'x' has 2 parents"):
        hxe_matrices(h, ["x", "y"], 0.1)
    h, _, _ = tree
    with pytest.raises(SemembedError, match="108 is an ancestor of class 0"):
        hxe_matrices(h, [0, 108], 0.1)
    with pytest.raises(SemembedError, match="hxe_alpha"):
        hxe_matrices(h, [0, 1], -1)


# === soft labels ===

def test_soft_labels_match_loop(tree):
    h, parent, classes = tree
    beta = 4.0
    d = np.array([[lca_height(parent, a, b) for b in classes] for a in classes], dtype=float)
    want_t = np.exp(-beta * d / d.max())
    want_t /= want_t.sum(1, keepdims=True)
    t = soft_label_targets(ClassPairs(h, classes).lcs_heights(), beta)
    np.testing.assert_allclose(t, want_t, rtol=1e-12)
    rng = np.random.default_rng(3)
    probs, labels = random_probs(rng, 25, 10), rng.integers(0, 10, 25)
    want = [-sum(want_t[y, c] * math.log(p[c]) for c in range(10)) for p, y in zip(probs.astype(float), labels)]
    np.testing.assert_allclose(np.asarray(soft_label_cross_entropy(labels, probs, t.astype(np.float32))), want, rtol=1e-5)


def test_soft_labels_large_beta_are_one_hot(tree):
    h, _, classes = tree
    d = ClassPairs(h, classes).lcs_heights()
    for beta in (1e4, np.inf):
        np.testing.assert_allclose(soft_label_targets(d, beta), np.eye(10), atol=1e-300)
    assert soft_label_targets(d, 0.01).min() > 0.09  # small beta: nearly uniform


# === HAFrame ===

def test_haframe_gram_is_psd_and_follows_the_lca_order(tree):
    h, parent, classes = tree
    d = np.array([[lca_height(parent, a, b) for b in classes] for a in classes], dtype=float)
    sim, s_min = haframe_similarity(ClassPairs(h, classes).lcs_heights(), gamma=2.0)
    assert -1.0 <= s_min <= -1.0 / 9
    assert np.linalg.eigvalsh(sim).min() > -1e-9
    W = haframe_frame(sim)
    np.testing.assert_allclose(W @ W.T, sim, atol=1e-10)
    np.testing.assert_allclose(np.linalg.norm(W, axis=1), 1.0, atol=1e-10)
    cos = (W @ W.T) / np.outer(np.linalg.norm(W, axis=1), np.linalg.norm(W, axis=1))
    for a in range(10):
        for b in range(10):
            for c in range(10):
                if d[a, b] < d[a, c]:
                    assert cos[a, b] > cos[a, c]
                elif d[a, b] == d[a, c]:
                    assert cos[a, b] == pytest.approx(cos[a, c], abs=1e-9)
    # the shift is as far down as PSD allows on the grid: the next grid value breaks it
    grid = np.linspace(-1 / 9, -1, 100)
    nxt = grid[np.searchsorted(-grid, -s_min) + 1]
    decay = np.exp(-2.0 * d / d.max())
    assert np.linalg.eigvalsh((1 - nxt) * decay + nxt).min() < -1e-6


def test_haframe_loss_matches_loop(tree):
    h, _, classes = tree
    sim, _ = haframe_similarity(ClassPairs(h, classes).lcs_heights())
    W = haframe_frame(sim)
    rng = np.random.default_rng(4)
    f, labels = rng.normal(size=(20, 10)), rng.integers(0, 10, 20)
    want = []
    for x, y in zip(f, labels):
        logits = W @ x
        ce = -(logits[y] - math.log(sum(math.exp(v) for v in logits)))
        sq = sum((x @ W[c] / (np.linalg.norm(x) * np.linalg.norm(W[c])) - sim[y, c]) ** 2 for c in range(10))
        want.append(0.6 * ce + 0.4 * sq)
    got = haframe_loss(labels, f.astype(np.float32), W.astype(np.float32), sim.astype(np.float32), 0.4)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-5)


# === Hier-COS ===

def hiercos_loop(x, y, parent, classes, alpha):
    """Hier-COS loss of one image from the definitions: axes = non-root nodes, levels = depth."""
    nodes = sorted({v for c in classes for v in root_path(parent, c)[:-1]})  # every node but the root
    level = {v: len(root_path(parent, v)) - 1 for v in nodes}
    xs = dict(zip(nodes, x))
    path = root_path(parent, classes[y])[:-1][::-1]  # level 1 .. L
    L = len(path)
    t = {v: math.exp(1 / (L - i)) ** 2 for i, v in enumerate(path)}
    z = sum(t.values())
    t = {v: w / z for v, w in t.items()}
    lse = math.log(sum(math.exp(abs(xs[v])) for v in nodes))
    kl = sum(w * (math.log(w) - (abs(xs[v]) - lse)) for v, w in t.items())
    aux = 0.0
    for lvl in range(1, max(level.values()) + 1):
        at = [v for v in nodes if level[v] == lvl]
        norm = math.sqrt(sum(xs[v] ** 2 for v in at))
        if lvl <= L:
            aux += sum(abs((1.0 if v == path[lvl - 1] else 0.0) - abs(xs[v]) / norm) for v in at)
        else:
            aux += sum(abs(xs[v]) for v in at)
    scores = [math.sqrt(sum(xs[v] ** 2 for v in root_path(parent, c)[:-1])) for c in classes]
    return kl + alpha * aux, scores, nodes


def test_hiercos_matches_loop(tree):
    h, parent, classes = tree
    st = hiercos_structure(h, classes)
    rng = np.random.default_rng(5)
    x, labels = rng.normal(size=(15, len(st.node_ids))), rng.integers(0, 10, 15)
    _, _, nodes = hiercos_loop(x[0], 0, parent, classes, 0.05)
    assert sorted(st.node_ids) == nodes and len(nodes) == 17
    order = [st.node_ids.index(v) for v in nodes]  # our axes in the loop's node order
    got = np.asarray(hiercos_loss(labels, x.astype(np.float32), st, 0.05))
    got_scores = np.asarray(hiercos_scores(x.astype(np.float32), st.subspace))
    for i, (row, y) in enumerate(zip(x, labels)):
        want, scores, _ = hiercos_loop(row[order], y, parent, classes, 0.05)
        assert got[i] == pytest.approx(want, rel=1e-4)
        np.testing.assert_allclose(got_scores[i], scores, rtol=1e-5)


def test_hiercos_ideal_features_rank_by_hierarchy(tree):
    """x = the target direction of class y: y scores highest, and closer classes score higher."""
    h, parent, classes = tree
    st = hiercos_structure(h, classes)
    d = ClassPairs(h, classes).lcs_heights()
    scores = np.asarray(hiercos_scores(st.path.astype(np.float32), st.subspace))
    for y in range(10):
        assert scores[y].argmax() == y
        for a in range(10):
            for b in range(10):
                if d[y, a] < d[y, b] and a != y:
                    assert scores[y, a] >= scores[y, b] - 1e-6


def test_keras_loss_objects_reduce_and_round_trip(tree):
    import keras

    from semembed.losses.hierarchy import HAFrameLoss, HierarchicalCrossEntropy, SoftLabelCrossEntropy

    h, _, classes = tree
    rng = np.random.default_rng(6)
    probs, labels = random_probs(rng, 8, 10), rng.integers(0, 10, 8)
    d = ClassPairs(h, classes).lcs_heights()
    sim, _ = haframe_similarity(d)
    W = haframe_frame(sim)
    feats = rng.normal(size=(8, 10)).astype(np.float32)
    cases = [
        (HierarchicalCrossEntropy(*hxe_matrices(h, classes, 0.4)), probs,
         hierarchical_cross_entropy(labels, probs, *hxe_matrices(h, classes, 0.4))),
        (SoftLabelCrossEntropy(soft_label_targets(d, 4.0)), probs,
         soft_label_cross_entropy(labels, probs, soft_label_targets(d, 4.0).astype(np.float32))),
        (HAFrameLoss(W, sim, 0.3), feats, haframe_loss(labels, feats, W.astype(np.float32), sim.astype(np.float32), 0.3)),
    ]
    w = rng.random(8).astype(np.float32)
    for loss, pred, per in cases:
        per = np.asarray(per)
        assert float(loss(labels, pred)) == pytest.approx(per.mean(), rel=1e-5)
        assert float(loss(labels, pred, sample_weight=w)) == pytest.approx((per * w).mean(), rel=1e-5)
        again = keras.losses.deserialize(keras.losses.serialize(loss))
        assert type(again) is type(loss) and float(again(labels, pred)) == pytest.approx(per.mean(), rel=1e-5)
