"""One worker of a 2-process MultiWorkerMirroredStrategy run on localhost (TF_CONFIG set by the test).

Trains a tiny embedding model (with the prob head) for a few steps on its
shard of fixed data and saves its final weights to argv[1].
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from semembed.training.schedules import LearningRateSchedule, ScheduleConfig  # noqa: E402
from semembed.training.strategy import is_chief, make_strategy  # noqa: E402

strategy = make_strategy()
assert isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy), type(strategy)

import keras  # noqa: E402

from semembed.models import add_classifier, wrap_output  # noqa: E402
from semembed.training.tasks.embedding import EmbeddingTask  # noqa: E402
from semembed.training.trainer import Trainer  # noqa: E402

B, STEPS, K, D = 8, 3, 4, 5
rng = np.random.default_rng(0)
X = rng.normal(size=(B * STEPS, 6, 6, 2)).astype("float32")
Y = rng.integers(0, K, size=B * STEPS).astype("int32")
E = np.eye(K, D, dtype="float32")


class TinyTask(EmbeddingTask):
    def build_model(self):
        keras.utils.set_random_seed(3)
        inp = keras.Input((6, 6, 2))
        x = keras.layers.Conv2D(3, 3, padding="same", activation="relu", kernel_regularizer=keras.regularizers.L2(1e-3))(inp)
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dense(D, name="embedding")(x)
        return add_classifier(wrap_output(keras.Model(inp, x), "inv_corr"), K)


def train_data(epoch, ctx):
    ds = tf.data.Dataset.from_tensor_slices({"image": X, "label": Y}).shard(ctx.num_input_pipelines, ctx.input_pipeline_id)
    return ds.batch(ctx.get_per_replica_batch_size(B))


sched = LearningRateSchedule(ScheduleConfig(name="SGD", sgd_lr=0.3), STEPS, 1)
trainer = Trainer(TinyTask("tiny", E, cls_weight=0.1), strategy, train_data, None, sched, STEPS,
                  progress=False, chief=is_chief(strategy))
logs = trainer.fit(1)
np.savez(sys.argv[1], *trainer.model.get_weights(), steps=trainer.state.global_step, loss=logs[0].train["loss"])
print("worker done", strategy.num_replicas_in_sync, trainer.state.global_step)
