"""A new training method in ~45 lines: two models, two optimisers, alternating updates.

A linear ``probe`` is fitted to the backbone's detached features (optimiser
``probe``, 10x the learning rate), then the ``backbone`` is updated through
the freshly updated probe (optimiser ``main``) - the shape of a discriminator
step followed by a generator step.  Run it: ``python docs/example_task.py``
(digits, a few seconds; the training loss falls epoch by epoch); ``python docs/example_task.py SNAPSHOT OUT.npz EPOCHS``
resumes from / writes SNAPSHOT and saves the final weights to OUT.npz.
"""

import keras
import tensorflow as tf

from semembed.training.optimizers import ParamGroup
from semembed.training.task import Task
from semembed.training.tasks import register_task
from semembed.training.tasks.common import correct, labels_of


@register_task("probe_example")
class ProbeTask(Task):
    metrics = ("accuracy",)  # besides "loss"; summed per replica, divided by "count" by the trainer

    def __init__(self, input_shape, num_classes, dim=16):
        self.input_shape, self.num_classes, self.dim = input_shape, num_classes, dim

    @classmethod
    def from_config(cls, config, dataset, targets):  # for `learn_image_embeddings --task probe_example`
        return cls(dataset.image_shape, dataset.num_classes)

    def build_models(self):
        inp = keras.Input(self.input_shape)
        x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
        x = keras.layers.Dense(self.dim)(keras.layers.GlobalAveragePooling2D()(x))
        probe = keras.Sequential([keras.Input((self.dim,)), keras.layers.Dense(self.num_classes)])
        return {"backbone": keras.Model(inp, x), "probe": probe}

    def optimizer_groups(self, models):
        return {"main": [ParamGroup(models["backbone"].trainable_variables)],
                "probe": [ParamGroup(models["probe"].trainable_variables, lr_multiplier=0.1)]}

    def train_step(self, batch, step):
        backbone, probe = self.models["backbone"], self.models["probe"]
        x, y = batch["image"], labels_of(batch)
        n_global = step.global_count(y)  # losses are sums / the global batch: replicas add up right
        ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum")

        def probe_loss(feats, y):  # step 1: the probe alone, on detached features
            return ce(y, probe(tf.stop_gradient(feats))) / n_global, {}

        step.minimize("probe", probe_loss, backbone(x, training=True), y)

        def backbone_loss(x, y):  # step 2: the backbone through the updated probe
            logits = probe(backbone(x, training=True))
            total = ce(y, logits)
            n = tf.cast(tf.shape(y)[0], tf.float32)
            return total / n_global, {"loss": total, "accuracy": correct(logits, y, 1), "count": n}

        return step.minimize("main", backbone_loss, x, y)[1]

    def eval_step(self, batch, step):
        y = labels_of(batch)
        logits = self.models["probe"](self.models["backbone"](batch["image"]))
        n = tf.cast(tf.shape(y)[0], tf.float32)
        loss = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
        return {"loss": tf.reduce_sum(loss), "accuracy": correct(logits, y, 1), "count": n}


def main(snapshot=None, out=None, epochs=4, steps=20):
    import numpy as np

    from semembed.data import get_dataset
    from semembed.training.optimizers import OptimizerConfig
    from semembed.training.schedules import LearningRateSchedule, ScheduleConfig
    from semembed.training.trainer import Trainer, set_determinism

    set_determinism(0, deterministic=True)
    ds = get_dataset("digits")
    trainer = Trainer(
        ProbeTask(ds.image_shape, ds.num_classes), tf.distribute.get_strategy(),
        train_data=lambda epoch, ctx: ds.train_dataset(32, epoch=epoch, as_dict=True),
        val_data=lambda: ds.test_dataset(128, as_dict=True),
        schedule=LearningRateSchedule(ScheduleConfig(name="SGD", sgd_lr=0.1), steps, epochs),
        steps_per_epoch=steps, optimizer={"main": OptimizerConfig("sgd"), "probe": OptimizerConfig("adam")},
        snapshot=snapshot, progress=False,
    )
    if trainer.restore():
        print(f"resumed at epoch {trainer.state.epoch + 1}", flush=True)
    for log in trainer.fit(epochs):
        print(f"epoch {log.epoch + 1}: {log.train} {log.val}", flush=True)
    if out:
        np.savez(out, *[np.asarray(v.numpy()) for m in trainer.models.values() for v in m.weights])


if __name__ == "__main__":
    import sys

    main(sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else None, *sys.argv[2:3],
         *([int(sys.argv[3])] if len(sys.argv) > 3 else []))
