"""Run in a subprocess: 2 replicas on 2 logical CPUs vs. one device with the same global batch.

Prints a JSON line with the largest weight differences.  Usage:
python replica_check.py {plain|head|contrastive|multi_similarity|xbm|proxy_anchor|avsl|avsl_batch|probe}

plain/head: the embedding task (with BN); contrastive: the metric task's pair
loss on the gathered global batch; probe: docs/example_task.py's two models
with two optimisers and alternating updates; avsl / avsl_batch: AVSL's losses on the
gathered batch with proxies / the batch as columns, and its link buffers (means over the global batch).
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from semembed.training.strategy import split_cpu  # noqa: E402

split_cpu(2)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from semembed.models import add_classifier, wrap_output  # noqa: E402
from semembed.training.optimizers import OptimizerConfig  # noqa: E402
from semembed.training.schedules import LearningRateSchedule, ScheduleConfig  # noqa: E402
from semembed.training.tasks.embedding import EmbeddingTask  # noqa: E402
from semembed.training.tasks.avsl import AVSLTask  # noqa: E402
from semembed.training.tasks.metric import MetricLearningTask  # noqa: E402
from semembed.training.trainer import Trainer  # noqa: E402

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "docs")))
from example_task import ProbeTask  # noqa: E402

MODE = sys.argv[1]
if MODE == "contrastive_local":  # sensitivity check: without the gather each replica sees only its own pairs
    from semembed.training.step import StepContext

    StepContext.gather = lambda self, x: x
    MODE = "contrastive"
B, STEPS, K, D = 8, 4, 5, 6
rng = np.random.default_rng(0)
X = rng.normal(size=(B * STEPS, 6, 6, 2)).astype("float32")
Y = rng.integers(0, K, size=B * STEPS).astype("int32")
E = rng.normal(size=(K, D)).astype("float32")
E /= np.linalg.norm(E, axis=1, keepdims=True)
if MODE.startswith("avsl"):  # three stages of 8, 4 and 2 px
    X = rng.normal(size=(B * STEPS, 8, 8, 2)).astype("float32")


class TinyTask(EmbeddingTask):
    def build_model(self):
        keras.utils.set_random_seed(1)
        inp = keras.Input((6, 6, 2))
        x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", kernel_regularizer=keras.regularizers.L2(1e-2))(inp)
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dense(D, name="embedding", kernel_regularizer=keras.regularizers.L2(1e-2))(x)
        model = wrap_output(keras.Model(inp, x), "inv_corr")
        return add_classifier(model, K) if self.with_head else model


class TinyMetricTask(MetricLearningTask):
    def build_model(self):  # no BN: the pair loss on the global batch must match one device exactly
        keras.utils.set_random_seed(1)
        inp = keras.Input((6, 6, 2))
        x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", kernel_regularizer=keras.regularizers.L2(1e-2))(inp)
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dense(D, name="embedding")(x)
        return wrap_output(keras.Model(inp, x), "inv_corr")


class TinyAVSLTask(AVSLTask):
    def build_avsl_model(self):  # no BN: every level's loss on the global batch must match one device exactly
        from semembed.models.avsl import AVSLEmbedder

        keras.utils.set_random_seed(1)
        inp = keras.Input((8, 8, 2))
        f0 = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
        f1 = keras.layers.Conv2D(5, 3, padding="same", activation="relu")(keras.layers.AveragePooling2D(2)(f0))
        f2 = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(keras.layers.AveragePooling2D(2)(f1))
        out = AVSLEmbedder(D, topk_corr=3, name="avsl")([f0, f1, f2])
        return keras.Model(inp, out)


class SeededProbeTask(ProbeTask):
    def build_models(self):
        keras.utils.set_random_seed(1)
        return super().build_models()


def make_task():
    if MODE == "contrastive":
        return TinyMetricTask("tiny", embedding_dim=D, loss_kwargs={"neg_margin": 1.2})
    if MODE == "multi_similarity":  # mining on the global batch
        return TinyMetricTask("tiny", embedding_dim=D, loss="multi_similarity", loss_kwargs={"beta": 10.0})
    if MODE == "xbm":  # the memory receives the same global batch on every replica
        return TinyMetricTask("tiny", embedding_dim=D, loss="multi_similarity", xbm_size=12, xbm_start=1)
    if MODE == "proxy_anchor":  # proxies' gradient summed over replicas = one device's
        return TinyMetricTask("tiny", embedding_dim=D, loss="proxy_anchor", num_classes=K)
    if MODE.startswith("avsl"):
        keras.utils.set_random_seed(2)  # the proxies
        return TinyAVSLTask("tiny", (8, 8, 2), K, embeddings_dim=D, topk_corr=3, collector_lr_multiplier=10.0,
                            use_proxy=MODE == "avsl")
    if MODE == "probe":
        return SeededProbeTask((6, 6, 2), K, dim=D)
    return TinyTask("tiny", E, loss="inv_corr", cls_weight=0.1 if MODE == "head" else 0.0)


def train_data(epoch, ctx):
    per_replica = ctx.get_per_replica_batch_size(B)
    return tf.data.Dataset.from_tensor_slices({"image": X, "label": Y}).batch(per_replica)


def run(strategy):
    sched = LearningRateSchedule(ScheduleConfig(name="SGD", sgd_lr=0.5), STEPS, 1)
    opt = OptimizerConfig("sgd", clipnorm=0.05, weight_decay=1e-3)
    if MODE == "probe":
        opt = {"main": opt, "probe": OptimizerConfig("adam", clipnorm=1.0)}
    trainer = Trainer(make_task(), strategy, train_data, None, sched, STEPS, optimizer=opt, progress=False,
                      jit_compile=os.environ.get("JIT") == "1", mixed_precision=os.environ.get("PRECISION", "off"))
    trainer.fit(1)
    return trainer


def all_weights(trainer):
    return [w for m in trainer.models.values() for w in m.weights]


def emulate_per_replica_bn():
    """One device, each global batch split in two halves normalised separately (as the replicas do)."""
    task = make_task()
    model = task.build_model()
    opt = keras.optimizers.SGD(0.5, momentum=0.9)
    for s in range(STEPS):
        xs, ys = X[s * B:(s + 1) * B], Y[s * B:(s + 1) * B]
        with tf.GradientTape() as tape:
            ones = tf.ones([B // 2])
            parts = [task.losses(model, xs[h:h + B // 2], ys[h:h + B // 2], ones, float(B), True)[0] for h in (0, B // 2)]
            reg = tf.add_n(model.losses)
            loss = parts[0] + parts[1] - reg  # each part carries the whole regularisation once
            loss += 1e-3 * tf.add_n([tf.reduce_sum(v ** 2) for v in model.trainable_variables if len(v.shape) >= 2])
        grads = tape.gradient(loss, model.trainable_variables)
        norm = tf.linalg.global_norm(grads)
        grads = [g * tf.minimum(1.0, 0.05 / norm) for g in grads]
        opt.apply(grads, model.trainable_variables)
    return model


mirrored = run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
single = run(tf.distribute.get_strategy())
replica_values = [
    [np.asarray(t) for t in v.values] for v in all_weights(mirrored) if hasattr(v, "values")
] or [[np.asarray(t) for t in v.value.values] for v in all_weights(mirrored)]
spread = max(float(np.abs(a[0] - a[1]).max()) for a in replica_values)
out = {"replica_spread": spread}
if MODE != "head":
    out["diff_vs_single"] = max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
                                for a, b in zip(all_weights(mirrored), all_weights(single)))
else:
    ref = emulate_per_replica_bn()
    out["trainable_diff_vs_emulation"] = max(
        float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in zip(mirrored.model.trainable_weights, ref.trainable_weights)
    )
    out["diff_vs_single_full_batch"] = max(
        float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in zip(mirrored.model.trainable_weights, single.model.trainable_weights)
    )
fresh = make_task()
fresh_weights = [w for m in fresh.build_models().values() for w in m.weights]
out["moved"] = max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in zip(all_weights(mirrored), fresh_weights))
if MODE == "probe":  # each of the two models moved
    n_backbone = len(mirrored.models["backbone"].weights)
    out["moved_min"] = min(max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in pairs) for pairs in (
        list(zip(all_weights(mirrored), fresh_weights))[:n_backbone], list(zip(all_weights(mirrored), fresh_weights))[n_backbone:]))
print(json.dumps(out))
