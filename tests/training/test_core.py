"""The training core: task registry, mixed precision, a two-model task's exact resume, per-sample weights."""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from semembed.errors import SemembedError
from semembed.models import wrap_output
from semembed.training.optimizers import OptimizerConfig
from semembed.training.schedules import LearningRateSchedule, ScheduleConfig
from semembed.training.tasks import get_task, list_tasks
from semembed.training.tasks.embedding import EmbeddingTask
from semembed.training.trainer import Trainer
from tests.conftest import REPO, kill_after_epoch, script_env

EXAMPLE = str(REPO / "docs" / "example_task.py")


def test_registry():
    assert {"embedding", "classifier", "metric"} <= set(list_tasks())
    assert get_task("embedding") is EmbeddingTask
    with pytest.raises(SemembedError, match="unknown task 'nope'; known: .*classifier"):
        get_task("nope")


class TinyTask(EmbeddingTask):
    def build_model(self):
        keras.utils.set_random_seed(2)
        inp = keras.Input((8, 8, 1))
        x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        x = keras.layers.Dense(4, name="embedding")(x)
        return wrap_output(keras.Model(inp, x), "inv_corr")


def tiny_run(precision: str):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 4, size=256).astype("int32")
    x += y[:, None, None, None] * 0.5  # learnable
    task = TinyTask("tiny", np.eye(4, dtype="float32"))
    data = lambda epoch, ctx: tf.data.Dataset.from_tensor_slices({"image": x, "label": y}).batch(32)  # noqa: E731
    sched = LearningRateSchedule(ScheduleConfig(name="SGD", sgd_lr=0.1), 8, 4)
    trainer = Trainer(task, tf.distribute.get_strategy(), data, None, sched, 8, mixed_precision=precision,
                      optimizer=OptimizerConfig("sgd"), progress=False)
    trainer.fit(4)
    return trainer, [h["loss"] for h in trainer.history]


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_mixed_precision_follows_float32(precision):
    _, ref = tiny_run("off")
    trainer, got = tiny_run(precision)
    conv = [layer for layer in trainer.model.layers if isinstance(layer, keras.layers.Conv2D)][0]
    assert conv.compute_dtype == precision and conv.kernel.dtype == "float32"  # really mixed
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    assert ref[-1] < ref[0] - 0.05  # the float32 run learns
    np.testing.assert_allclose(got, ref, rtol=0.05, atol=0.01)
    if precision == "float16":
        assert isinstance(trainer.optimizers["main"].optimizers[0], keras.optimizers.LossScaleOptimizer)


def weights_of(path):
    with np.load(path) as z:
        return [z[k] for k in sorted(z.files, key=lambda k: int(k.split("_")[1]))]


def test_two_model_two_optimizer_task_resumes_bit_identically(tmp_path):
    env = script_env()
    full = subprocess.run([sys.executable, EXAMPLE, "", tmp_path / "full.npz", "10"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert full.returncode == 0, full.stderr[-3000:]
    snap = tmp_path / "snap.npz"
    cmd = [sys.executable, EXAMPLE, str(snap), str(tmp_path / "resumed.npz"), "10"]
    epoch = kill_after_epoch(cmd, snap)
    assert 2 <= epoch < 10
    with np.load(snap) as z:
        meta = json.loads(bytes(z["meta"]).decode())
    assert [m["name"] for m in meta["models"]] == ["backbone", "probe"]
    assert [o["name"] for o in meta["optimizers"]] == ["main", "probe"]
    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed at epoch {epoch + 1}" in resumed.stdout
    a, b = weights_of(tmp_path / "full.npz"), weights_of(tmp_path / "resumed.npz")
    assert len(a) == len(b) > 4
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


class TwoStreamTask(EmbeddingTask):
    """Counts what arrives in the second stream: labels of the 'web' batches are all 7."""

    streams = ("web",)

    def __post_init__(self):
        super().__post_init__()
        self.metrics = ("web_seen", "web_label")

    build_model = TinyTask.build_model

    def train_step(self, batch, step):
        sums = super().train_step(batch, step)
        web = tf.cast(tf.shape(batch["web"]["label"])[0], tf.float32)
        return {**sums, "web_seen": web, "web_label": tf.reduce_sum(tf.cast(batch["web"]["label"], tf.float32))}


def test_second_input_stream_is_zipped_and_repeated():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 4, size=64).astype("int32")
    main = lambda e, ctx: tf.data.Dataset.from_tensor_slices({"image": x, "label": y}).batch(16)  # noqa: E731
    web = lambda e, ctx: tf.data.Dataset.from_tensor_slices(  # noqa: E731
        {"image": x[:8], "label": np.full(8, 7, "int32")}).batch(4)  # 2 batches, repeated to match 4 steps
    sched = LearningRateSchedule(ScheduleConfig(name="SGD", sgd_lr=0.1), 4, 1)
    task = TwoStreamTask("tiny", np.eye(4, dtype="float32"))
    with pytest.raises(SemembedError, match="needs the input streams"):
        Trainer(task, tf.distribute.get_strategy(), main, None, sched, 4, progress=False)
    trainer = Trainer(task, tf.distribute.get_strategy(), main, None, sched, 4, extra_data={"web": web},
                      progress=False)
    trainer.fit(1)
    h = trainer.history[0]
    assert h["web_seen"] == pytest.approx(16 / 64) and h["web_label"] == pytest.approx(16 * 7 / 64)


def test_head_learning_rate_multiplier_groups_only_the_head():
    task = EmbeddingTask("simple-tiny", np.eye(4, dtype="float32"), cls_weight=0.1, input_shape=(8, 8, 1),
                         head_lr_multiplier=10.0)
    trainer = Trainer(task, tf.distribute.get_strategy(), None, None,
                      LearningRateSchedule(ScheduleConfig(name="SGD", sgd_lr=0.1), 1, 1), 1, progress=False)
    groups = trainer.optimizers["main"].groups
    head = {v.path.split("/")[0] for v in groups[1].variables}
    assert groups[1].lr_multiplier == 10.0 and "prob" in head and len(head) == 2  # prob + the head's BN
    body = {v.path.split("/")[0] for v in groups[0].variables}
    assert "embedding" in body and not head & body
    assert len(groups[0].variables) + len(groups[1].variables) == len(trainer.model.trainable_variables)
    trainer.set_learning_rate(0.05)
    rates = [float(o.learning_rate.numpy()) for o in trainer.optimizers["main"].optimizers]
    assert rates == pytest.approx([0.05, 0.5])
