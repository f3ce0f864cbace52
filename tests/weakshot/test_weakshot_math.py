"""SimTrans pieces against independent computations: pair order, weights, rescaling, graph loss, sampler."""

from __future__ import annotations

import math

import numpy as np
import pytest

from semembed.weakshot.weights import scores_from_matrix, top_k_mean, weights_from_matrix

# === Pair indexing (WEAKSHOT.md §2.2, §6.1-2) ===


def test_all_pairs_order_and_targets_against_a_loop():
    from semembed.models.simnet import all_pairs, pair_targets

    rng = np.random.default_rng(0)
    b, d = 5, 3
    x = rng.normal(size=(b, d)).astype("float32")
    y = np.array([0, 1, 0, 2, 1])
    got, tgt = np.asarray(all_pairs(x)), np.asarray(pair_targets(y))
    for i in range(b):
        for j in range(b):
            k = i * b + j
            np.testing.assert_array_equal(got[k], np.concatenate([x[j], x[i]]))  # (first x_j, second x_i)
            assert tgt[k] == float(y[j] == y[i])
    # the spec's example: [a, b] -> (a,a), (b,a), (a,b), (b,b); labels [0, 1] -> [1, 0, 0, 1]
    ab = np.array([[1.0], [2.0]], "float32")
    np.testing.assert_array_equal(np.asarray(all_pairs(ab)), [[1, 1], [2, 1], [1, 2], [2, 2]])
    np.testing.assert_array_equal(np.asarray(pair_targets(np.array([0, 1]))), [1, 0, 0, 1])


def test_cross_pairs_against_a_loop():
    from semembed.models.simnet import cross_pairs

    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(3, 2)).astype("float32"), rng.normal(size=(4, 2)).astype("float32")
    got = np.asarray(cross_pairs(a, b))
    for i in range(3):
        for j in range(4):
            np.testing.assert_array_equal(got[i * 4 + j], np.concatenate([a[i], b[j]]))


@pytest.fixture(scope="module")
def tiny_simnet():
    import keras

    from semembed.models.simnet import build_simnet

    keras.utils.set_random_seed(3)
    return build_simnet("simple-tiny", (8, 8, 3))


def test_simnet_shapes_and_batch_matrix_convention(tiny_simnet):
    from semembed.models.simnet import batch_similarity, same_class_probability, simnet_parts

    backbone, head = simnet_parts(tiny_simnet)
    d = int(backbone.output.shape[-1])
    assert [int(w) for w in (head.get_layer("pair_head_fc1").units, head.get_layer("pair_head_fc2").units,
                             head.get_layer("pair_head_fc3").units)] == [2 * d, d, d]  # 2d -> 2d -> d -> d -> 2
    x = np.random.default_rng(2).random((4, 8, 8, 3)).astype("float32")
    z, logits = tiny_simnet(x, training=False)
    assert tuple(z.shape) == (16, d) and tuple(logits.shape) == (16, 2)
    m = np.asarray(batch_similarity(backbone, head, x))
    f = np.asarray(backbone(x, training=False))
    for i in range(4):
        for j in range(4):  # M[i, j] = s(x_j, x_i), each pair alone through the head
            _, lg = head(np.concatenate([f[j], f[i]])[None], training=False)
            np.testing.assert_allclose(m[i, j], float(np.asarray(same_class_probability(lg))[0]), rtol=1e-5, atol=1e-6)


def test_discriminator_layout():
    from semembed.models.simnet import build_discriminator

    disc = build_discriminator(6)
    kinds = [type(l).__name__ for l in disc.layers[1:]]
    assert kinds == ["Dense", "LayerNormalization", "Activation", "Dense"]
    assert disc.get_layer("discriminator_ln").epsilon == 1e-5 and disc.output.shape[-1] == 2


# === Weight formulas (§2.3, §6.6-9) ===

SPEC_S = np.array([[1, .8, .1], [.6, 1, .2], [.1, .3, 1]])


def test_weight_formulas_match_the_spec_values():
    np.testing.assert_allclose(weights_from_matrix(SPEC_S, "avg"), [1.1176, 1.0588, 0.8235], atol=1e-4)
    np.testing.assert_allclose(weights_from_matrix(SPEC_S, "savg"), [1.0588, 1.1471, 0.7941], atol=1e-4)


@pytest.mark.parametrize("kind", ["avg", "savg", "none"])
@pytest.mark.parametrize("fraction", [1.0, 0.5, 0.2])
def test_weights_against_loops(kind, fraction):
    rng = np.random.default_rng(4)
    s = rng.random((7, 7))
    k = max(int(math.floor(fraction * 7)), 1)
    r = np.empty(7)
    for i in range(7):
        row = sorted(s[i], reverse=True)[:k]
        col = sorted(s[:, i], reverse=True)[:k]
        r[i] = {"avg": np.mean(row), "savg": 0.5 * (np.mean(row) + np.mean(col)), "none": 1.0}[kind]
    w = weights_from_matrix(s, kind, fraction)
    np.testing.assert_allclose(w, r / r.mean(), rtol=1e-12)
    assert abs(w.mean() - 1) < 1e-12


def test_weight_invariants():
    np.testing.assert_allclose(weights_from_matrix(np.full((5, 5), 0.3), "savg"), np.ones(5))
    s = np.random.default_rng(5).random((6, 6))
    sym = (s + s.T) / 2
    np.testing.assert_allclose(weights_from_matrix(sym, "avg"), weights_from_matrix(sym, "savg"))
    np.testing.assert_allclose(top_k_mean(s, 6), s.mean(axis=1))


@pytest.mark.parametrize("kind,fraction", [("avg", 1.0), ("savg", 1.0), ("savg", 0.4), ("avg", 0.4)])
def test_streamed_class_scores_equal_the_full_matrix(tiny_simnet, kind, fraction):
    from semembed.models.simnet import same_class_probability, simnet_parts
    from semembed.weakshot.transfer import class_scores

    _, head = simnet_parts(tiny_simnet)
    f = np.random.default_rng(6).normal(size=(9, int(head.inputs[0].shape[-1]) // 2)).astype("float32")
    full = np.empty((9, 9))
    for i in range(9):  # S[i, j] = s(x_i, x_j), pair by pair
        rows = np.stack([np.concatenate([f[i], f[j]]) for j in range(9)])
        full[i] = np.asarray(same_class_probability(head(rows, training=False)[1]))
    want = scores_from_matrix(full, kind, fraction)
    for max_pairs in (9, 20, 1000):  # one row, two rows, everything per block
        np.testing.assert_allclose(class_scores(head, f, kind, fraction, max_pairs), want, rtol=1e-5, atol=1e-7)


# === Rescaling and graph loss (§2.5, §6.11-13) ===


def test_rescaling_closed_form_and_shape():
    from semembed.losses.denoising import rescale_similarity

    a = np.array([0.0, 0.1, 0.25, 0.5, 0.75, 1.0])
    g = np.asarray(rescale_similarity(a, -4.0))
    np.testing.assert_allclose(g, [0, 0.3358, 0.6439, 0.8808, 0.9679, 1], atol=1e-4)
    assert abs(g[3] - 1 / (1 + math.exp(-2))) < 1e-6
    dense = np.asarray(rescale_similarity(np.linspace(0, 1, 101), -4.0))
    assert np.all(np.diff(dense) > 0) and np.all(np.diff(dense, 2) < 0)  # increasing, concave
    np.testing.assert_array_equal(np.asarray(rescale_similarity(a, 0.0)), a)


def test_graph_loss_against_a_double_loop():
    from semembed.losses.denoising import graph_loss, rescale_similarity

    rng = np.random.default_rng(7)
    h, a = rng.normal(size=(6, 4)).astype("float32"), rng.random((6, 6)).astype("float32")
    mask = (rng.random((6, 6)) > 0.5).astype("float32")
    for m in (None, mask):
        want = sum(a[i, j] * (1 if m is None else m[i, j]) * np.sum((h[i] - h[j]) ** 2)
                   for i in range(6) for j in range(6)) / 36
        np.testing.assert_allclose(float(graph_loss(h, a, m)), want, rtol=1e-5)
    np.testing.assert_allclose(float(graph_loss(h, a)), float(graph_loss(h, a.T)), rtol=1e-5)
    assert float(graph_loss(np.ones((4, 3), "float32"), a[:4, :4])) == 0.0
    spec = float(graph_loss(np.array([[0, 0], [3, 4]], "float32"), rescale_similarity(np.full((2, 2), 0.5), -4.0)))
    assert abs(spec - 11.0100) < 1e-3


# === Pair-batch sampler (§2.2, §6.17) ===


def test_class_subset_sampler():
    from semembed.data.samplers import ClassSubsetSampler

    labels = np.repeat(np.arange(30), 20)  # 600 images, 30 classes
    s = ClassSubsetSampler(20, 50)
    order = s.epoch_order(labels, 3, 1)
    assert len(order) == 600 // 50 * 50
    uses = np.bincount(order, minlength=600)
    for c in range(30):  # a class's images are used in turn: no image twice before all were used once
        u = uses[labels == c]
        assert u.max() - u.min() <= 1
    for batch in order.reshape(-1, 50):
        cls = labels[batch]
        assert len(np.unique(cls)) <= 20
        assert np.all(np.diff(cls) >= 0)  # class groups contiguous
    np.testing.assert_array_equal(order, s.epoch_order(labels, 3, 1))
    assert not np.array_equal(order, s.epoch_order(labels, 4, 1))
    web = ClassSubsetSampler(2, 50).epoch_order(labels, 0, 0)
    assert all(len(np.unique(labels[b])) <= 2 for b in web.reshape(-1, 50))
    few = ClassSubsetSampler(20, 10).epoch_order(np.array([0, 0, 1]), 0, 0)  # classes run dry: cycles
    assert len(few) == 10 and set(few) <= {0, 1, 2}
