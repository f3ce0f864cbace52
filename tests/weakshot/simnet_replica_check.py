"""Run in a subprocess: the SimNet step (with the web stream and β > 0) on 2 replicas vs. one device.

The backbone has no BatchNorm (the core normalises per replica); the pair head's BatchNorm sees the
global batch's pairs on every replica.  Prints a JSON line with the largest weight differences.
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

from semembed.models.simnet import AllPairs, build_discriminator, build_pair_head  # noqa: E402
from semembed.training.optimizers import OptimizerConfig  # noqa: E402
from semembed.training.schedules import LearningRateSchedule, ScheduleConfig  # noqa: E402
from semembed.training.tasks.simnet import SimNetTask  # noqa: E402
from semembed.training.trainer import Trainer  # noqa: E402

B, STEPS = 8, 3
rng = np.random.default_rng(0)
X = rng.normal(size=(B * STEPS, 6, 6, 2)).astype("float32")
Y = rng.integers(0, 3, size=B * STEPS).astype("int32")
XW = rng.normal(size=(B * STEPS, 6, 6, 2)).astype("float32") + 0.5
YW = rng.integers(0, 2, size=B * STEPS).astype("int32")


class TinySimNetTask(SimNetTask):
    def build_models(self):
        keras.utils.set_random_seed(1)
        inp = keras.Input((6, 6, 2))
        x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
        x = keras.layers.GlobalAveragePooling2D()(x)
        backbone = keras.Model(inp, keras.layers.Dense(5)(x), name="backbone")
        head = build_pair_head(5)
        images = keras.Input((6, 6, 2))
        z, logits = head(AllPairs(name="pairs")(backbone(images)))
        return {"simnet": keras.Model(images, [z, logits], name="simnet"), "discriminator": build_discriminator(5)}


def stream(x, y):
    def make(epoch, ctx):
        return tf.data.Dataset.from_tensor_slices({"image": x, "label": y}).batch(ctx.get_per_replica_batch_size(B))
    return make


def run(strategy):
    sched = LearningRateSchedule(ScheduleConfig(name="SGD", sgd_lr=0.2), STEPS, 1)
    opt = OptimizerConfig("sgd", clipnorm=1.0, weight_decay=1e-3)
    trainer = Trainer(TinySimNetTask("tiny", (6, 6, 2), web=True, beta=0.5), strategy, stream(X, Y), None, sched,
                      STEPS, optimizer={"main": opt, "discriminator": OptimizerConfig("sgd", clipnorm=1.0)},
                      extra_data={"web": stream(XW, YW)}, progress=False)
    logs = trainer.fit(1)
    return trainer, logs[0].train


def weights(trainer):
    return [np.asarray(w) for m in trainer.models.values() for w in m.weights]


mirrored, m_logs = run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
single, s_logs = run(tf.distribute.get_strategy())
start = TinySimNetTask("tiny", (6, 6, 2), web=True).build_models()
moved = max(float(np.abs(a - np.asarray(b)).max()) for a, b in zip(weights(single),
                                                                     [w for m in start.values() for w in m.weights]))
print(json.dumps({
    "diff_vs_single": max(float(np.abs(a - b).max()) for a, b in zip(weights(mirrored), weights(single))),
    "moved": moved,
    "metric_diff": max(abs(m_logs[k] - s_logs[k]) for k in s_logs),
}))
