"""Metric losses at their boundaries: bad inputs are clear errors, exact duplicates are at distance 0,
float64 tensors stay float64, the Deep_Metric contrastive form, and every docstring's batch scope."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import metric_bruteforce as bf
from semembed.errors import SemembedError
from semembed.losses import (
    BinomialDevianceLoss,
    ContrastiveLoss,
    CrossBatchMemory,
    GeneralizedLiftedStructureLoss,
    LiftedStructureLoss,
    MultiSimilarityLoss,
    NCALoss,
    NormalizedSoftmaxLoss,
    ProxyAnchorLoss,
    ProxyNCALoss,
    TripletMarginLoss,
)
from semembed.losses.metric.distances import euclidean_distance
from test_metric_losses import PAIR_CASES, data

PROXY_CLASSES = (ProxyAnchorLoss, ProxyNCALoss, NormalizedSoftmaxLoss)


# --- proxy losses: labels outside [0, C) (tester's item 3) ---
@pytest.mark.parametrize("cls", PROXY_CLASSES)
@pytest.mark.parametrize("bad", [3, 7, -1])
@pytest.mark.parametrize("kind", ["numpy", "eager"])
def test_proxy_label_outside_the_classes_is_an_error(cls, bad, kind):
    labels = np.array([0, 1, 2, bad, 1])
    labels = tf.constant(labels) if kind == "eager" else labels
    loss = cls(3, 4)
    with pytest.raises(SemembedError) as err:
        loss(labels, np.ones((5, 4), "float32"))
    assert f"label {bad}" in str(err.value) and "num_classes" in str(err.value) and "3" in str(err.value)


@pytest.mark.parametrize("cls", PROXY_CLASSES)
def test_proxy_labels_in_range_still_work_when_traced(cls):
    loss = cls(3, 4)
    x = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")
    y = np.array([0, 0, 1, 1, 2, 2])
    eager = float(loss(y, x))
    traced = float(tf.function(lambda a, b: loss(a, b))(tf.constant(y), tf.constant(x)))
    assert math.isfinite(eager) and traced == pytest.approx(eager, rel=1e-6)


# --- static shapes (item 11) ---
@pytest.mark.parametrize("make", [lambda: ProxyAnchorLoss(3, 4), lambda: ProxyNCALoss(3, 4),
                                  lambda: NormalizedSoftmaxLoss(3, 4),
                                  lambda: CrossBatchMemory(ContrastiveLoss(), 4, memory_size=16, start_iteration=0)])
def test_wrong_embedding_width_names_the_expected_shape(make):
    with pytest.raises(SemembedError, match=r"embeddings must have shape \(B, 4\).*got width 5"):
        make()(np.array([0, 1, 2]), np.ones((3, 5), "float32"))


@pytest.mark.parametrize("make", [ContrastiveLoss, MultiSimilarityLoss, TripletMarginLoss, LiftedStructureLoss,
                                  GeneralizedLiftedStructureLoss, BinomialDevianceLoss, NCALoss,
                                  lambda: ProxyAnchorLoss(3, 4),
                                  lambda: CrossBatchMemory(ContrastiveLoss(), 4, memory_size=16, start_iteration=0)])
def test_labels_and_embeddings_of_different_lengths(make):
    with pytest.raises(SemembedError, match=r"labels.* has 2 entries but embeddings.* has 3 rows"):
        make()(np.array([0, 1]), np.ones((3, 4), "float32"))


def test_other_shape_errors_name_the_argument():
    with pytest.raises(SemembedError, match=r"embeddings \(y_pred\) must have shape \(B, D\)"):
        ContrastiveLoss()(np.array([0, 1, 2]), np.ones((3, 4, 1), "float32"))
    with pytest.raises(SemembedError, match=r"sample_weight must have shape \(B,\) = \(3,\)"):
        ContrastiveLoss()(np.array([0, 1, 2]), np.ones((3, 4), "float32"), np.ones(2))
    with pytest.raises(SemembedError, match=r"ref_embeddings must have shape \(B, 4\)"):
        ContrastiveLoss()(np.array([0, 1, 2]), np.ones((3, 4), "float32"), ref_labels=np.array([0, 1]),
                          ref_embeddings=np.ones((2, 6), "float32"))


# --- distance 0 for identical vectors (item 9) ---
def test_contrastive_of_exact_duplicates_is_zero():
    # PML's mean over non-zero pairs: the duplicate positive pair has distance 0 and is not counted
    value = ContrastiveLoss()([0, 0, 1], np.array([[1, 0], [1, 0], [0, 1]], "float32"))
    assert float(value) == 0.0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("squared", [False, True])
def test_distance_of_duplicates_is_exactly_zero_with_finite_gradient(dtype, squared):
    rng = np.random.default_rng(0)
    base = rng.normal(size=(16, 64)).astype(dtype)
    x = np.concatenate([base, 3.0 * base])  # row i + 16 is row i scaled: the same unit vector
    xv = tf.Variable(x)
    with tf.GradientTape() as tape:
        d = euclidean_distance(xv, squared=squared)
        total = tf.reduce_sum(d)
    d = d.numpy()
    assert np.all(np.diag(d) == 0) and np.all(d[np.arange(16), np.arange(16) + 16] == 0)
    assert np.all(np.isfinite(tape.gradient(total, xv).numpy()))
    # every other pair: the plain difference form, written independently
    u = x.astype("float64") / np.linalg.norm(x.astype("float64"), axis=1, keepdims=True)
    for i in range(32):
        for j in range(32):
            if i % 16 != j % 16:
                want = float(np.sum((u[i] - u[j]) ** 2))
                want = want if squared else math.sqrt(want)
                assert d[i, j] == pytest.approx(want, rel=1e-5 if dtype == "float32" else 1e-12)


def test_contrastive_gradient_at_duplicates_is_finite():
    x = tf.Variable(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], "float32"))
    with tf.GradientTape() as tape:
        value = ContrastiveLoss(neg_margin=1.5)(np.array([0, 0, 1, 0]), x)
    g = tape.gradient(value, x).numpy()
    assert np.all(np.isfinite(g)) and math.isfinite(float(value))


# --- float64 tensors (item 10) ---
@pytest.mark.parametrize("name", sorted(PAIR_CASES))
def test_float64_tensors_stay_float64(name):
    make, brute = PAIR_CASES[name]
    y, x = data("float64", seed=2)
    value = make()(tf.constant(y), tf.constant(x))
    assert keras.backend.standardize_dtype(value.dtype) == "float64"
    assert float(value) == pytest.approx(brute(y, x), rel=1e-10, abs=1e-12)


def test_float64_tensors_in_a_float64_proxy_loss():
    y, x = data("float64", seed=2)
    value = ProxyNCALoss(3, 8, dtype="float64")(tf.constant(y), tf.constant(x))
    assert keras.backend.standardize_dtype(value.dtype) == "float64"


# --- the Deep_Metric / research-xbm contrastive form (item 7) ---
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_deep_metric_contrastive_counts_s_not_s_minus_m(seed):
    y, x = data("float64", seed=seed)
    spec = ContrastiveLoss(form="deep_metric")
    assert float(spec(y, x)) == pytest.approx(bf.contrastive_deep_metric(y, x, 0.5), rel=1e-10)
    # it differs from the relu(S - m) recipe by m per active negative / B: the data has such negatives
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = u @ u.T
    active = int(((y[:, None] != y[None, :]) & (s > 0.5)).sum())
    assert active > 0
    relu = ContrastiveLoss(1.0, 0.5, distance="cosine", reducer="anchor_mean")
    assert float(spec(y, x)) - float(relu(y, x)) == pytest.approx(0.5 * active / len(y), rel=1e-9)


def test_deep_metric_form_is_cosine_only_and_round_trips():
    with pytest.raises(SemembedError, match="cosine"):
        ContrastiveLoss(form="deep_metric", distance="euclidean")
    with pytest.raises(SemembedError, match="form"):
        ContrastiveLoss(form="xbm")
    loss = ContrastiveLoss(form="deep_metric", neg_margin=0.3)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    y, x = data(seed=3)
    assert again.form == "deep_metric" and float(again(y, x)) == pytest.approx(float(loss(y, x)), rel=1e-12)


# --- batch scope in every docstring (item 16) ---
@pytest.mark.parametrize("cls", [ContrastiveLoss, TripletMarginLoss, LiftedStructureLoss,
                                 GeneralizedLiftedStructureLoss, BinomialDevianceLoss, NCALoss, MultiSimilarityLoss,
                                 ProxyAnchorLoss, ProxyNCALoss, NormalizedSoftmaxLoss, CrossBatchMemory])
def test_every_loss_docstring_states_its_batch_scope(cls):
    doc = cls.__doc__
    assert "Batch scope" in doc and "global batch" in doc and "StepContext.gather" in doc, cls.__name__
