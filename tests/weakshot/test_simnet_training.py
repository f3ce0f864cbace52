"""SimNet training: the signs of the adversarial updates, β = 0 independence, two replicas = one device."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO, script_env


@pytest.fixture(scope="module")
def adversarial():
    import tensorflow as tf

    from semembed.training.optimizers import OptimizerConfig
    from semembed.training.schedules import LearningRateSchedule, ScheduleConfig
    from semembed.training.tasks.simnet import SimNetTask
    from semembed.training.trainer import Trainer

    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    xa = rng.random((8, 8, 8, 3)).astype("float32")
    ya = np.array([0, 0, 1, 1, 2, 2, 0, 1], "int32")
    xb = (rng.random((8, 8, 8, 3)) * 0.5 + 0.5).astype("float32")

    def data(epoch, ctx):
        return tf.data.Dataset.from_tensor_slices({"image": xa, "label": ya}).batch(8)

    task = SimNetTask("simple-tiny", (8, 8, 3), web=True, beta=5.0)
    trainer = Trainer(task, tf.distribute.get_strategy(), data, None,
                      LearningRateSchedule(ScheduleConfig(name="SGD", sgd_lr=0.05), 1, 1), 1,
                      optimizer={"main": OptimizerConfig("sgd"), "discriminator": OptimizerConfig("sgd")},
                      extra_data={"web": data}, progress=False)
    trainer.set_learning_rate(0.05)
    return task, trainer.step_context, tf.constant(xa), tf.constant(ya), tf.constant(xb)


def test_discriminator_step_lowers_its_loss(adversarial):
    task, step, xa, ya, xb = adversarial
    _, _, z, domain = task.simnet_losses(step, xa, ya, xb)
    before = float(task.discriminator_loss(step, z, domain)[1])
    step.minimize("discriminator", lambda z, d: task.discriminator_loss(step, z, d), z, domain)
    assert float(task.discriminator_loss(step, z, domain)[1]) < before


def test_simnet_step_raises_the_domain_term(adversarial):
    task, step, xa, ya, xb = adversarial
    dom = lambda: float(task.simnet_losses(step, xa, ya, xb)[1]["domain_loss"]) / 8  # noqa: E731
    before = dom()
    disc = [np.asarray(v) for v in task.models["discriminator"].weights]
    step.minimize("main", lambda xa, ya, xb: task.simnet_losses(step, xa, ya, xb)[:2], xa, ya, xb)
    assert dom() > before  # SimNet minimises L_sim - beta * L_dom: the domain confusion grows
    for a, b in zip(disc, task.models["discriminator"].weights):  # the discriminator was not touched
        np.testing.assert_array_equal(a, np.asarray(b))


def test_with_beta_zero_simnet_gradient_ignores_the_discriminator(adversarial):
    import tensorflow as tf

    task, step, xa, ya, xb = adversarial
    task.beta = 0.0
    try:
        variables = task.models["simnet"].trainable_variables

        def grads():
            with tf.GradientTape() as tape:
                loss = task.simnet_losses(step, xa, ya, xb, training=False)[0]
            return [np.asarray(g) for g in tape.gradient(loss, variables)]

        g1 = grads()
        for v in task.models["discriminator"].trainable_variables:
            v.assign(v * 3.0 + 0.1)
        for a, b in zip(g1, grads()):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    finally:
        task.beta = 5.0


def test_two_replicas_equal_one_device():
    r = subprocess.run([sys.executable, str(REPO / "tests" / "weakshot" / "simnet_replica_check.py")],
                       capture_output=True, text=True, env=script_env(), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["moved"] > 1e-3  # the steps did something
    assert out["diff_vs_single"] < 1e-5, out
    assert out["metric_diff"] < 1e-4, out


def test_precise_bn_averages_the_statistics_of_the_training_forward():
    """PreciseBN of SimNet = the mean over batches of numpy statistics of base+web images and within-stream pairs."""
    import keras
    import tensorflow as tf

    from semembed.models.simnet import simnet_parts
    from semembed.training.tasks.simnet import SimNetTask
    from semembed.weakshot.simnet_training import recompute_simnet_batchnorm

    keras.utils.set_random_seed(3)
    task = SimNetTask("simple-tiny", (8, 8, 3), web=True, beta=0.1)
    task.models = task.build_models()
    rng = np.random.default_rng(1)
    xa = rng.random((18, 8, 8, 3)).astype("float32")  # 3 base batches of 6
    xb = (rng.random((8, 8, 8, 3)) * 2.0 - 0.5).astype("float32")  # 2 web batches of 4, repeated
    base = tf.data.Dataset.from_tensor_slices({"image": xa, "label": np.arange(18) % 3}).batch(6)
    web = tf.data.Dataset.from_tensor_slices({"image": xb, "label": np.arange(8) % 2}).batch(4)
    backbone, head = simnet_parts(task.models["simnet"])
    first_bn, head_bn = backbone.get_layer("bn1"), head.get_layer("pair_head_bn1")

    assert recompute_simnet_batchnorm(task, base, web, num_batches=3) == 3
    got = [np.asarray(v).copy() for v in (first_bn.moving_mean, first_bn.moving_variance,
                                          head_bn.moving_mean, head_bn.moving_variance)]
    assert first_bn.momentum == 0.99 and head_bn.momentum == 0.9  # restored

    conv = keras.Model(backbone.inputs[0], backbone.get_layer("conv1").output)
    w, b = (np.asarray(v, dtype=np.float64) for v in head.get_layer("pair_head_fc1").weights)
    stats, crossing = [], []
    for k in range(3):
        a, wb = xa[6 * k:6 * k + 6], xb[4 * (k % 2):4 * (k % 2) + 4]
        x = np.concatenate([a, wb])
        c = np.asarray(conv(x), dtype=np.float64)
        f = np.asarray(backbone(x, training=True), dtype=np.float64)  # batch statistics: moving ones unused
        within = [np.concatenate([g[j], g[i]]) for g in (f[:6], f[6:]) for i in range(len(g)) for j in range(len(g))]
        every = [np.concatenate([f[j], f[i]]) for i in range(10) for j in range(10)]
        h, h_all = np.array(within) @ w + b, np.array(every) @ w + b
        stats.append([c.mean((0, 1, 2)), c.var((0, 1, 2)), h.mean(0), h.var(0)])
        crossing.append(h_all.mean(0))
    want = [np.mean([s[i] for s in stats], axis=0) for i in range(4)]
    for g, e in zip(got, want):
        np.testing.assert_allclose(g, e, rtol=2e-4, atol=2e-5)
    # pairs across the streams (simnet(images) on the joint batch) would give other statistics
    assert np.abs(np.mean(crossing, axis=0) - want[2]).max() > 1e-2
