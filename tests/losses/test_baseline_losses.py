"""The baselines' losses against plain NumPy loops written from their definitions."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from semembed.errors import SemembedError
from semembed.losses.center import center_loss
from semembed.losses.classification import get_classifier_loss, register_classifier_loss
from semembed.losses.devise import devise_rank_loss, normalized_class_embeddings
from semembed.losses.label_embedding import label_embedding_loss


def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_softmax_loss_with_the_references_label_smoothing(eps):
    rng = np.random.default_rng(0)
    probs = np.stack([_softmax(z) for z in rng.standard_normal((6, 5))])
    labels = rng.integers(0, 5, 6)

    class Cfg:
        label_smoothing = eps

    got = np.asarray(get_classifier_loss("softmax", 5, Cfg())(labels, probs.astype(np.float32)))
    for i in range(6):
        want = 0.0
        for c in range(5):
            t = 1 - eps if c == labels[i] else eps / 4
            want -= t * np.log(probs[i, c])
        assert got[i] == pytest.approx(want, rel=1e-5)


def test_classifier_loss_registry():
    with pytest.raises(SemembedError, match="unknown classifier --loss 'nope'"):
        get_classifier_loss("nope", 3)

    @register_classifier_loss("test_double_ce")
    def factory(num_classes, config):
        base = get_classifier_loss("softmax", num_classes, config)
        return lambda y, p: 2.0 * base(y, p)

    p = np.array([[0.2, 0.8]], np.float32)
    assert float(get_classifier_loss("test_double_ce", 2)(np.array([1]), p)[0]) == pytest.approx(-2 * np.log(0.8), rel=1e-6)


def test_devise_rank_loss():
    rng = np.random.default_rng(1)
    emb = normalized_class_embeddings(rng.standard_normal((4, 3)))
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-6)
    out = rng.standard_normal((5, 3)).astype(np.float32)
    labels = rng.integers(0, 4, 5)
    got = np.asarray(devise_rank_loss(labels, out, emb, margin=0.3))
    for i in range(5):
        t = emb[labels[i]] @ out[i]
        want = sum(max(0.0, 0.3 - t + emb[j] @ out[i]) for j in range(4) if j != labels[i])
        assert got[i] == pytest.approx(want, rel=1e-5, abs=1e-6)


def test_center_loss():
    rng = np.random.default_rng(2)
    f, c = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    got = np.asarray(center_loss(f.astype(np.float32), c.astype(np.float32)))
    for i in range(4):
        assert got[i] == pytest.approx(0.5 * sum((f[i, d] - c[i, d]) ** 2 for d in range(6)), rel=1e-5)


def _label_embedding_numpy(labels, o1, o2, emb, tau, alpha, beta):
    n, c = o1.shape
    log_sm = lambda z: z - z.max() - np.log(np.exp(z - z.max()).sum())  # noqa: E731
    correct = [int(np.argmax(o2[i]) == labels[i]) for i in range(n)]
    out = []
    for i in range(n):
        y = labels[i]
        l1 = -log_sm(o1[i])[y]
        l2 = -(_softmax(emb[i]) * log_sm(o1[i])).sum()
        l3 = -log_sm(o2[i])[y]
        l4 = -(_softmax(o2[i] / tau) * log_sm(emb[i])).sum() * correct[i] * n / (sum(correct) + 1e-8)
        l5 = max(0.0, _softmax(o2[i])[y] - alpha)
        out.append(beta * l1 + (1 - beta) * l2 + l3 + l4 + l5)
    return np.array(out)


def test_label_embedding_loss_values_and_stopped_gradients():
    rng = np.random.default_rng(3)
    n, c = 6, 4
    labels = rng.integers(0, c, n)
    o1, o2 = rng.standard_normal((n, c)) * 2, rng.standard_normal((n, c)) * 2
    o2[0, labels[0]] = 10.0  # a confidently correct row: the alpha cap and the mask are active
    emb = rng.standard_normal((n, c))
    got = np.asarray(label_embedding_loss(labels, *(x.astype(np.float32) for x in (o1, o2, emb)), tau=2.0, alpha=0.9, beta=0.5))
    np.testing.assert_allclose(got, _label_embedding_numpy(labels, o1, o2, emb, 2.0, 0.9, 0.5), rtol=1e-5)
    # the label embedding learns only from L_emb_o2: d/dE = (softmax(E) - softmax(o2/tau)) * mask * n / sum(mask)
    e = tf.Variable(emb.astype(np.float32))
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(label_embedding_loss(labels, o1.astype(np.float32), o2.astype(np.float32), e, 2.0, 0.9, 0.5))
    grad = tape.gradient(total, e).numpy()
    correct = np.array([np.argmax(o2[i]) == labels[i] for i in range(n)], float)
    for i in range(n):
        want = (_softmax(emb[i]) - _softmax(o2[i] / 2.0)) * correct[i] * n / (correct.sum() + 1e-8)
        np.testing.assert_allclose(grad[i], want, rtol=1e-4, atol=1e-6)


def test_adagrad_step_keras2_semantics():
    """One step: accumulators start at 0 (Keras 2): p - lr * g / sqrt(g^2 + eps)."""
    from semembed.training.optimizers import OptimizerConfig, _keras_optimizer

    opt = _keras_optimizer(OptimizerConfig(name="adagrad", clipnorm=None), 0.0)
    opt.learning_rate.assign(0.5)
    v = tf.Variable([1.0, -2.0])
    g = np.array([0.3, -4.0], np.float32)
    for step in range(2):
        before = v.numpy().copy()
        opt.apply([tf.constant(g)], [v])
        acc = (step + 1) * g**2
        np.testing.assert_allclose(v.numpy(), before - 0.5 * g / np.sqrt(acc + 1e-7), rtol=1e-5)
