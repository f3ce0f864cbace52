"""Every metric loss against a per-anchor Python loop, the spec's closed-form facts (§13), gradients, invariances."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import metric_bruteforce as bf
from semembed.losses import (
    BinomialDevianceLoss,
    ContrastiveLoss,
    GeneralizedLiftedStructureLoss,
    LiftedStructureLoss,
    MultiSimilarityLoss,
    NCALoss,
    NormalizedSoftmaxLoss,
    ProxyAnchorLoss,
    ProxyNCALoss,
    TripletMarginLoss,
)
from semembed.losses.metric import BatchHardMiner, MultiSimilarityMiner, TripletMarginMiner
from semembed.losses.metric.common import build_context, masked_lse
from semembed.losses.metric.distances import CosineSimilarity

C, D = 3, 8


def data(dtype="float64", seed=0, labels=None):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(C), 4) if labels is None else np.asarray(labels)
    x = rng.normal(size=(len(labels), D)).astype(dtype)
    return labels, x


def proxies(dtype="float64", seed=1, c=C):
    return np.random.default_rng(seed).normal(size=(c, D)).astype(dtype)


def const(p):
    return keras.initializers.Constant(p)


# name -> (loss factory, brute force(labels, x))
PAIR_CASES = {
    "contrastive_cosine": (lambda: ContrastiveLoss(1.0, 0.5, distance="cosine", reducer="anchor_mean"),
                           lambda y, x: bf.contrastive_cosine_relu(y, x, 0.5)),
    "contrastive_deep_metric": (lambda: ContrastiveLoss(form="deep_metric"),
                                lambda y, x: bf.contrastive_deep_metric(y, x, 0.5)),
    "contrastive_deep_metric_m03": (lambda: ContrastiveLoss(neg_margin=0.3, form="deep_metric"),
                                    lambda y, x: bf.contrastive_deep_metric(y, x, 0.3)),
    "triplet_all": (lambda: TripletMarginLoss(0.3), lambda y, x: bf.triplet_all(y, x, 0.3)),
    "triplet_semihard_miner": (
        lambda: TripletMarginLoss(0.2, miner=TripletMarginMiner(0.2, "semihard"), reducer="mean"),
        lambda y, x: bf.triplet_all(y, x, 0.2, reducer="mean", miner="semihard")),
    "triplet_batch_hard": (lambda: TripletMarginLoss(0.2, miner=BatchHardMiner()),
                           lambda y, x: bf.triplet_batch_hard(y, x, 0.2)),
    "triplet_facenet": (lambda: TripletMarginLoss(0.2, distance="squared_euclidean", miner="facenet_semihard",
                                                  reducer="mean"),
                        lambda y, x: bf.triplet_facenet(y, x, 0.2)),
    "lifted_structure": (lambda: LiftedStructureLoss(), bf.lifted_original),
    "generalized_lifted_structure": (lambda: GeneralizedLiftedStructureLoss(), bf.lifted_deep_metric),
    "generalized_lifted_hermans": (lambda: GeneralizedLiftedStructureLoss(form="hermans"), bf.lifted_hermans),
    "binomial_deviance": (lambda: BinomialDevianceLoss(), bf.binomial),
    "nca": (lambda: NCALoss(), bf.nca),
    "nca_scaled": (lambda: NCALoss(4.0), lambda y, x: bf.nca(y, x, 4.0)),
    "multi_similarity": (lambda: MultiSimilarityLoss(), bf.multi_similarity),
    "multi_similarity_official": (
        lambda: MultiSimilarityLoss(beta=40.0, drop_incomplete_anchors=True),
        lambda y, x: bf.multi_similarity(y, x, beta=40.0, official=True)),
    "multi_similarity_no_mining": (lambda: MultiSimilarityLoss(miner=None),
                                   lambda y, x: bf.multi_similarity(y, x, mining=False)),
}

PROXY_CASES = {
    "proxy_anchor": (lambda p: ProxyAnchorLoss(C, D, proxy_initializer=const(p), dtype=p.dtype.name),
                     bf.proxy_anchor),
    "proxy_nca": (lambda p: ProxyNCALoss(C, D, proxy_initializer=const(p), dtype=p.dtype.name), bf.proxy_nca),
    "proxy_nca_paper": (lambda p: ProxyNCALoss(C, D, exclude_positive=True, proxy_initializer=const(p),
                                               dtype=p.dtype.name),
                        lambda y, x, q: bf.proxy_nca(y, x, q, exclude_positive=True)),
    "normalized_softmax": (lambda p: NormalizedSoftmaxLoss(C, D, proxy_initializer=const(p), dtype=p.dtype.name),
                           bf.normalized_softmax),
}


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-9), ("float32", 2e-5)])
@pytest.mark.parametrize("name", sorted(PAIR_CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_pair_losses_match_loop(name, dtype, tol, seed):
    make, brute = PAIR_CASES[name]
    y, x = data(dtype, seed)
    want = brute(y, x.astype("float64"))
    got = float(make()(y, x))
    assert got == pytest.approx(want, rel=tol, abs=tol)


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-9), ("float32", 2e-5)])
@pytest.mark.parametrize("name", sorted(PROXY_CASES))
def test_proxy_losses_match_loop(name, dtype, tol):
    make, brute = PROXY_CASES[name]
    y, x = data(dtype)
    p = proxies(dtype)
    assert float(make(p)(y, x)) == pytest.approx(brute(y, x.astype("float64"), p.astype("float64")), rel=tol, abs=tol)


def _grad(loss, y, x):
    xt = tf.Variable(x)
    with tf.GradientTape() as tape:
        value = loss(y, xt)
    return tape.gradient(value, xt).numpy()


@pytest.mark.parametrize("name", sorted(PAIR_CASES) + sorted(PROXY_CASES))
def test_gradients_match_finite_differences(name):
    y, x = data("float64", seed=3)
    if name in PAIR_CASES:
        loss = PAIR_CASES[name][0]()
    else:
        loss = PROXY_CASES[name][0](proxies("float64"))
    g = _grad(loss, y, x)
    assert np.all(np.isfinite(g))
    rng = np.random.default_rng(0)
    h = 1e-6
    for _ in range(6):
        i, j = rng.integers(len(y)), rng.integers(D)
        xp, xm = x.copy(), x.copy()
        xp[i, j] += h
        xm[i, j] -= h
        fd = (float(loss(y, xp)) - float(loss(y, xm))) / (2 * h)
        assert g[i, j] == pytest.approx(fd, rel=1e-4, abs=1e-6), (i, j)


# --- Fixture A of the spec (§13): rows of the 4x4 identity, labels [0, 0, 1, 1] ---
XA = np.eye(4, 8)
YA = np.array([0, 0, 1, 1])


@pytest.mark.parametrize("loss,value", [
    (lambda: MultiSimilarityLoss(), 0.5 * np.log(1 + np.e) + np.log(1 + 2 * np.exp(-25)) / 50),  # fact 1
    (lambda: MultiSimilarityLoss(beta=40.0), 0.5 * np.log(1 + np.e) + np.log(1 + 2 * np.exp(-20)) / 40),
    (lambda: ContrastiveLoss(1.0, 0.5, distance="cosine", reducer="anchor_mean"), 1.0),  # fact 3
    (lambda: ContrastiveLoss(form="deep_metric"), 1.0),  # fact 3, the Deep_Metric form itself
    (lambda: LiftedStructureLoss(), (np.log(4) + 1) ** 2 / 2),  # fact 4: 2.8472004
    (lambda: GeneralizedLiftedStructureLoss(), (2 / 40) * np.log(2)),  # fact 5
    (lambda: BinomialDevianceLoss(), np.log(1 + np.e) + np.log(1 + np.exp(-20))),  # fact 6
    (lambda: NCALoss(), np.log(3)),  # fact 7
    (lambda: TripletMarginLoss(0.2, distance="squared_euclidean", miner="facenet_semihard", reducer="mean"), 0.2),
    (lambda: TripletMarginLoss(0.1, miner=TripletMarginMiner(0.1, "semihard")), 0.0),  # fact 9
])
def test_fixture_a_closed_forms(loss, value):
    assert float(loss()(YA, XA)) == pytest.approx(value, rel=1e-9, abs=1e-12)
    assert float(loss()(YA, XA.astype("float32"))) == pytest.approx(value, rel=1e-6)


def test_closed_form_values_of_the_spec():
    assert 0.5 * np.log(1 + np.e) + np.log(1 + 2 * np.exp(-25)) / 50 == pytest.approx(0.6566308, abs=1e-7)
    assert (np.log(4) + 1) ** 2 / 2 == pytest.approx(2.8472004, abs=1e-7)
    assert np.log(1 + np.e) + np.log(1 + np.exp(-20)) == pytest.approx(1.3132617, abs=1e-7)


def test_proxy_anchor_fact_2():
    two = np.eye(2, 8, k=5)
    assert float(ProxyAnchorLoss(2, 8, proxy_initializer=const(two), dtype="float64")(YA, XA)) == pytest.approx(
        2 * np.log(1 + 2 * np.exp(3.2)), rel=1e-12)
    assert 2 * np.log(1 + 2 * np.exp(3.2)) == pytest.approx(7.8266467, abs=1e-7)
    three = np.eye(3, 8, k=5)
    want = np.log(1 + 2 * np.exp(3.2)) + (2 * np.log(1 + 2 * np.exp(3.2)) + np.log(1 + 4 * np.exp(3.2))) / 3
    assert want == pytest.approx(8.0543501, abs=1e-7)
    assert float(ProxyAnchorLoss(3, 8, proxy_initializer=const(three), dtype="float64")(YA, XA)) == pytest.approx(want)


@pytest.mark.parametrize("c", [2, 5])
def test_proxy_nca_fact_8_log_c(c):
    p = np.eye(c, 12, k=4)
    loss = ProxyNCALoss(c, 12, proxy_initializer=const(p), dtype="float64")
    assert float(loss(YA, np.eye(4, 12))) == pytest.approx(np.log(c), rel=1e-12)


def test_proxy_anchor_distance_form_equals_cosine_form_fact_13():
    y, x = data()
    p = proxies()
    cos_form = ProxyAnchorLoss(C, D, margin=0.1, alpha=32, proxy_initializer=const(p), dtype="float64")
    d_form = ProxyAnchorLoss(C, D, alpha=16, distance="squared_euclidean", pos_margin=1.8, neg_margin=2.2,
                             proxy_initializer=const(p), dtype="float64")
    assert float(d_form(y, x)) == pytest.approx(float(cos_form(y, x)), rel=1e-10)


def test_proxy_nca_is_cross_entropy_on_64_cos_fact_14():
    y, x = data()
    p = proxies()
    loss = ProxyNCALoss(C, D, softmax_scale=32, proxy_initializer=const(p), dtype="float64")
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    pn = p / np.linalg.norm(p, axis=1, keepdims=True)
    logits = 64 * xn @ pn.T
    ce = -(logits[np.arange(len(y)), y] - np.log(np.exp(logits).sum(axis=1))).mean()
    assert float(loss(y, x)) == pytest.approx(ce, rel=1e-10)


def test_ms_mining_is_strict_fact_15():
    # anchor 0: positive at S = 0.5, negative at exactly S = 0.4 = min_pos - eps (not kept), one at 0.45 (kept)
    s_pos, s_neg = 0.5, 0.4
    a = np.array([1.0, 0.0, 0.0])

    def at(s, z):
        return np.array([s, np.sqrt(1 - s * s), 0.0]) if z == 0 else np.array([s, 0.0, np.sqrt(1 - s * s)])

    x = np.stack([a, at(s_pos, 0), at(s_neg, 1), at(0.45, 1)])
    y = np.array([0, 0, 1, 1])
    ctx = build_context(CosineSimilarity(), y, x)
    # the cosine of the constructed points is exact up to rounding: force the tie exactly
    s = np.asarray(ctx.mat).copy()
    s[0] = [1.0, 0.5, 0.4, 0.45]
    ctx.mat = tf.constant(s)
    pos, neg = MultiSimilarityMiner(0.1)(ctx)
    assert np.asarray(neg)[0].tolist() == [False, False, False, True]
    assert np.asarray(pos)[0].tolist() == [False, True, False, False]  # 0.5 - 0.1 < max_neg 0.45


def test_lse_of_empty_set_is_zero_with_finite_gradient_fact_11():
    z = tf.Variable(np.array([[3.0, -2.0], [1.0, 5.0]]))
    mask = np.array([[False, False], [True, False]])
    with tf.GradientTape() as tape:
        v, has = masked_lse(z, mask, axis=1, plus_one=True)
        total = tf.reduce_sum(v)
    assert np.asarray(v)[0] == 0.0 and np.asarray(v)[1] == pytest.approx(np.log(1 + np.e))
    g = tape.gradient(total, z).numpy()
    assert np.all(np.isfinite(g)) and g[0].tolist() == [0.0, 0.0]


ALL_DISTINCT = np.arange(6)


@pytest.mark.parametrize("name", sorted(PAIR_CASES) + sorted(PROXY_CASES))
def test_singleton_classes_no_nan_fact_11(name):
    x = np.random.default_rng(5).normal(size=(6, D))
    if name in PAIR_CASES:
        loss = PAIR_CASES[name][0]()
    else:
        c = 6
        p = np.random.default_rng(2).normal(size=(c, D))
        cls = {"proxy_anchor": ProxyAnchorLoss, "proxy_nca": ProxyNCALoss, "proxy_nca_paper": ProxyNCALoss,
               "normalized_softmax": NormalizedSoftmaxLoss}[name]
        loss = cls(c, D, proxy_initializer=const(p), dtype="float64")
    g = _grad(loss, ALL_DISTINCT, x)
    value = float(loss(ALL_DISTINCT, x))
    assert np.isfinite(value) and np.all(np.isfinite(g))
    if name in ("multi_similarity", "multi_similarity_official", "generalized_lifted_structure", "binomial_deviance"):
        assert value == 0.0
    elif name in PAIR_CASES:
        assert value == pytest.approx(PAIR_CASES[name][1](ALL_DISTINCT, x), abs=1e-12)
    if name.startswith("proxy"):
        assert value != 0.0


def test_all_distinct_contrastive_keeps_negative_terms():
    x = np.random.default_rng(5).normal(size=(6, D))
    assert float(PAIR_CASES["contrastive_cosine"][0]()(ALL_DISTINCT, x)) == pytest.approx(
        bf.contrastive_cosine_relu(ALL_DISTINCT, x), rel=1e-12)
    assert float(ContrastiveLoss(form="deep_metric")(ALL_DISTINCT, x)) == pytest.approx(
        bf.contrastive_deep_metric(ALL_DISTINCT, x), rel=1e-12)


@pytest.mark.parametrize("name", sorted(PAIR_CASES) + sorted(PROXY_CASES))
def test_permutation_and_scale_invariance_fact_12(name):
    y, x = data(seed=4)
    if name in PAIR_CASES:
        loss = PAIR_CASES[name][0]()
    else:
        loss = PROXY_CASES[name][0](proxies())
    perm = np.random.default_rng(9).permutation(len(y))
    base = float(loss(y, x))
    assert float(loss(y[perm], x[perm])) == pytest.approx(base, rel=1e-10)
    assert float(loss(y, 3.7 * x)) == pytest.approx(base, rel=1e-10)


@pytest.mark.parametrize("name", sorted(PAIR_CASES))
def test_serialisation_round_trip(name):
    loss = PAIR_CASES[name][0]()
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    y, x = data(seed=6)
    assert type(again) is type(loss)
    assert float(again(y, x)) == pytest.approx(float(loss(y, x)), rel=1e-12)


@pytest.mark.parametrize("name", sorted(PROXY_CASES))
def test_proxy_serialisation_round_trip(name):
    loss = PROXY_CASES[name][0](proxies("float32"))
    again = type(loss).from_config(loss.get_config())
    again.set_weights(loss.get_weights())
    y, x = data("float32", seed=6)
    assert float(again(y, x)) == pytest.approx(float(loss(y, x)), rel=1e-6)


def test_float16_inputs_are_computed_in_float32():
    y, x = data("float32")
    loss = MultiSimilarityLoss()
    v = loss(y, x.astype("float16"))
    assert keras.backend.standardize_dtype(v.dtype) == "float32" and np.isfinite(float(v))
