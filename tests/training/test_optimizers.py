"""Optimiser sets: learning-rate multipliers, coupled L2 / decoupled decay, global-norm clipping, vs NumPy."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from semembed.errors import SemembedError
from semembed.training.optimizers import OptimizerConfig, ParamGroup, build_optimizer_set


def variables():
    rng = np.random.default_rng(0)
    w = keras.Variable(rng.normal(size=(3, 2)).astype("float32"), name="kernel")
    b = keras.Variable(rng.normal(size=(2,)).astype("float32"), name="bias")
    p = keras.Variable(rng.normal(size=(4, 2)).astype("float32"), name="proxies")
    return w, b, p


def grads_for(vs, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=tuple(v.shape)).astype("float32") for v in vs]


def test_lr_multiplier_and_coupled_l2_plain_sgd():
    w, b, p = variables()
    w0, b0, p0 = (np.array(v.numpy()) for v in (w, b, p))
    cfg = OptimizerConfig("sgd", momentum=0.0, weight_decay=0.01, clipnorm=None)
    opt = build_optimizer_set("main", cfg, [ParamGroup([w, b]), ParamGroup([p], lr_multiplier=100.0)])
    opt.set_learning_rate(0.001)
    g = grads_for([w, b, p])
    opt.apply(g, [w, b, p])
    np.testing.assert_allclose(w.numpy(), w0 - 0.001 * (g[0] + 2 * 0.01 * w0), rtol=1e-6)
    np.testing.assert_allclose(b.numpy(), b0 - 0.001 * g[1], rtol=1e-6)  # no decay on 1-D variables
    np.testing.assert_allclose(p.numpy(), p0 - 0.1 * (g[2] + 2 * 0.01 * p0), rtol=1e-6)


def test_global_norm_clipping_over_all_groups():
    w, b, p = variables()
    w0, p0 = np.array(w.numpy()), np.array(p.numpy())
    opt = build_optimizer_set("main", OptimizerConfig("sgd", momentum=0.0, clipnorm=0.5),
                              [ParamGroup([w, b]), ParamGroup([p], lr_multiplier=2.0)])
    opt.set_learning_rate(1.0)
    g = grads_for([w, b, p])
    norm = np.sqrt(sum((x.astype("float64") ** 2).sum() for x in g))
    got = float(opt.apply(g, [w, b, p]))
    assert got == pytest.approx(norm, rel=1e-5)
    np.testing.assert_allclose(w.numpy(), w0 - g[0] * 0.5 / norm, rtol=1e-5)
    np.testing.assert_allclose(p.numpy(), p0 - 2.0 * g[2] * 0.5 / norm, rtol=1e-5)


def test_adamw_decoupled_decay_one_step():
    w, b, _ = variables()
    w0, b0 = np.array(w.numpy()), np.array(b.numpy())
    cfg = OptimizerConfig("adamw", weight_decay=0.1, clipnorm=None)
    assert cfg.decay == "decoupled"
    opt = build_optimizer_set("main", cfg, [w, b])
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-7
    opt.set_learning_rate(lr)
    g = grads_for([w, b])
    opt.apply(g, [w, b])
    for v, v0, gi, decay in ((w, w0, g[0], True), (b, b0, g[1], False)):
        x = v0 * (1 - lr * 0.1) if decay else v0  # W <- W - lr*wd*W, kernels only
        m, s = (1 - b1) * gi, (1 - b2) * gi**2
        step = lr * np.sqrt(1 - b2) / (1 - b1) * m / (np.sqrt(s) + eps)
        np.testing.assert_allclose(v.numpy(), x - step, rtol=1e-5, atol=1e-7)


def test_bad_configuration_is_refused():
    with pytest.raises(SemembedError, match="--optimizer"):
        OptimizerConfig("rmsprop")
    w, b, _ = variables()
    with pytest.raises(SemembedError, match="two parameter groups"):
        build_optimizer_set("main", OptimizerConfig(), [ParamGroup([w]), ParamGroup([w, b])])
