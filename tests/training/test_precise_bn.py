"""PreciseBN (semembed.training.precise_bn) against numpy batch statistics."""

import keras
import numpy as np
import pytest

from semembed.errors import SemembedError
from semembed.training.precise_bn import recompute_batchnorm_statistics


class Counter(keras.layers.Layer):
    """A layer with its own non-trainable state that a training forward changes (like AVSL's link buffers)."""

    def build(self, shape):
        self.count = self.add_weight(shape=(), initializer="zeros", trainable=False, name="count")

    def call(self, x, training=False):
        if training:
            self.count.assign(self.count + 1.0)
        return x


def _model(frozen_second: bool = False):
    keras.utils.set_random_seed(0)
    inp = keras.Input((3,))
    h = keras.layers.Dense(4, name="dense")(inp)
    b1 = keras.layers.BatchNormalization(name="bn1")
    x = Counter(name="counter")(b1(h))
    b2 = keras.layers.BatchNormalization(name="bn2")
    if frozen_second:
        b2.trainable = False
    out = b2(keras.layers.Dense(2, name="dense2")(x))
    return keras.Model(inp, out)


def test_statistics_are_the_average_of_the_batch_statistics():
    model = _model()
    rng = np.random.default_rng(0)
    batches = [rng.normal(2.0, 3.0, size=(8, 3)).astype("float32") for _ in range(5)]
    used = recompute_batchnorm_statistics(model, iter(batches), num_batches=4)
    assert used == 4
    w, b = (np.asarray(v) for v in model.get_layer("dense").weights)
    h = [x @ w + b for x in batches[:4]]
    bn1 = model.get_layer("bn1")
    np.testing.assert_allclose(np.asarray(bn1.moving_mean), np.mean([x.mean(0) for x in h], 0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(bn1.moving_variance), np.mean([x.var(0) for x in h], 0), rtol=1e-4)
    assert bn1.momentum == 0.99  # restored
    assert float(np.asarray(model.get_layer("counter").count)) == 0.0  # other state restored


def test_frozen_layers_keep_their_statistics_and_errors():
    model = _model(frozen_second=True)
    bn2 = model.get_layer("bn2")
    before = np.asarray(bn2.moving_mean).copy()
    recompute_batchnorm_statistics(model, [np.ones((4, 3), "float32")], num_batches=3)
    np.testing.assert_array_equal(np.asarray(bn2.moving_mean), before)
    assert not np.allclose(np.asarray(model.get_layer("bn1").moving_mean), 0.0)
    with pytest.raises(SemembedError, match="--precise_bn_batches must be >= 1"):
        recompute_batchnorm_statistics(model, [], 0)
    with pytest.raises(SemembedError, match="yielded no batch"):
        recompute_batchnorm_statistics(model, [], 5)
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    assert recompute_batchnorm_statistics(plain, [np.ones((2, 3), "float32")], 2) == 0


def test_warmup_variables_of_avsl_and_proxy_anchor():
    """--warmup_epochs trains AVSL's embedder + collector (§10) and Proxy-Anchor's embedding layer + proxies (§8)."""
    from semembed.training.tasks.avsl import AVSLTask
    from semembed.training.tasks.metric import MetricLearningTask

    task = AVSLTask("simple-tiny", (28, 28, 1), 3, embeddings_dim=8, topk_corr=2)
    models = task.build_models()
    got = {v.path for v in task.warmup_variables(models)}
    want = {v.path for v in task.layer.kernels + task.layer.biases + task.layer.prob_a + task.layer.prob_b
            + task.proxy_layer.proxies}
    assert got == want
    trunk = {v.path for v in models["model"].trainable_variables} - want
    assert trunk and not trunk & got

    task = MetricLearningTask("simple-tiny", embedding_dim=8, loss="proxy_anchor", num_classes=3,
                              input_shape=(28, 28, 1))
    models = task.build_models()
    got = {v.path for v in task.warmup_variables(models)}
    last = [l for l in models["model"].layers if l.trainable_weights][-1]
    assert got == {v.path for v in last.trainable_variables} | {v.path for v in models["proxies"].trainable_variables}
    assert last.name == "embedding"
