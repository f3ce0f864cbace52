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
