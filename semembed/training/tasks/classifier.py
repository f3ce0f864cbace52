"""``classifier``: the softmax baseline (the network's ``prob`` output with a classification loss).

The model has two outputs, ``[features, prob]``; features are the input of
the ``prob`` layer (a classifier's usual retrieval features, the reference's
``learn_classifier`` feature dump).  The loss is a registered name of
:mod:`semembed.losses.classification` (``softmax``: cross-entropy, optionally
with the reference's label smoothing); new losses register there.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf

from semembed.training.step import regularization
from semembed.training.tasks import register_task
from semembed.training.tasks.common import PerSampleLossTask, correct


@register_task("classifier")
@dataclass
class ClassifierTask(PerSampleLossTask):
    """Softmax cross-entropy on the architecture's classification network.

    Args:
        architecture: network name (``semembed.models``).
        num_classes: number of classes.
        input_shape: network input (H, W, C).
        top_k: also count top-k accuracy.
        loss: registered classifier loss (``semembed.losses.classification``).
        loss_config: the run's TrainConfig, from which the loss reads its options (``label_smoothing``, ...).
    """

    architecture: str
    num_classes: int
    input_shape: tuple | None = None
    top_k: tuple[int, ...] = ()
    loss: str = "softmax"
    loss_config: object = None
    class_ids: tuple = ()  # the dataset's class ids in label order (hierarchy-aware losses need them)

    warmup_layers = ("prob",)

    @classmethod
    def from_config(cls, config, dataset, targets):
        return cls(config.architecture, dataset.num_classes, input_shape=dataset.image_shape,
                   top_k=tuple(config.top_k_acc), loss=config.classifier_loss, loss_config=config,
                   class_ids=tuple(dataset.classes))

    def __post_init__(self) -> None:
        self.metrics = ("accuracy",) + tuple(f"top{k}_accuracy" for k in self.top_k)
        from semembed.losses.classification import get_classifier_loss

        self._loss = get_classifier_loss(self.loss, self.num_classes, self.loss_config,
                                         class_ids=self.class_ids or None)

    def build_model(self) -> keras.Model:
        from semembed.models import build_network

        net = build_network(self.num_classes, self.architecture, classification=True, input_shape=self.input_shape)
        prob = net.get_layer("prob")
        return keras.Model(net.inputs, [prob.input, prob.output], name=net.name)

    def losses(self, model, images, labels, weights, global_size, training: bool):
        _, prob = model(images, training=training)
        prob = tf.cast(prob, tf.float32)
        ce_sum = tf.reduce_sum(weights * self._loss(labels, prob))
        reg = regularization(model)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        n = tf.cast(tf.shape(labels)[0], tf.float32)
        sums = {"loss": ce_sum + reg * n, "accuracy": correct(prob, labels, 1), "count": n}
        for k in self.top_k:
            sums[f"top{k}_accuracy"] = correct(prob, labels, k)
        return ce_sum / global_size + reg / replicas, sums

    def predict_step(self, batch):
        return self.model(batch["image"], training=False)
