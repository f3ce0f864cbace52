"""``metric``: deep metric learning with a pair loss on the *global* batch.

The backbone's L2-normalised embedding (``embedding_dim``) is trained with a
registered metric loss (:mod:`semembed.losses.metric`; today ``contrastive``)
over every sample of the global batch: each replica gathers the embeddings of
all replicas (:meth:`~semembed.training.step.StepContext.gather`), computes the
whole loss, and back-propagates into its own rows only, so N replicas give the
gradient of one device with the same global batch.  Pair with the m-per-class
sampler (``--m_per_class``) so every batch has positives.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import tensorflow as tf

from semembed.errors import SemembedError
from semembed.losses.metric import contrastive_loss
from semembed.training.step import regularization
from semembed.training.task import Task
from semembed.training.tasks import register_task
from semembed.training.tasks.common import labels_of, weights_of

METRIC_LOSSES = {"contrastive": contrastive_loss}


@register_task("metric")
@dataclass
class MetricLearningTask(Task):
    """Metric learning on the global batch.

    Args:
        architecture: network name (``semembed.models``).
        embedding_dim: size of the L2-normalised embedding.
        loss: a key of ``METRIC_LOSSES``.
        loss_kwargs: keyword arguments of the loss (e.g. ``neg_margin``).
        input_shape: network input (H, W, C).
    """

    architecture: str
    embedding_dim: int = 128
    loss: str = "contrastive"
    loss_kwargs: dict = field(default_factory=dict)
    input_shape: tuple | None = None

    metrics = ()

    @classmethod
    def from_config(cls, config, dataset, targets):
        return cls(config.architecture, embedding_dim=config.embedding_dim, input_shape=dataset.image_shape)

    def __post_init__(self) -> None:
        if self.loss not in METRIC_LOSSES:
            raise SemembedError(f"unknown metric loss {self.loss!r}; known: {', '.join(METRIC_LOSSES)}")
        self._loss_fn = METRIC_LOSSES[self.loss]

    def build_model(self) -> keras.Model:
        from semembed.models import build_embedding_model

        return build_embedding_model(self.architecture, self.embedding_dim, loss="inv_corr",
                                     input_shape=self.input_shape)

    def loss_value(self, labels, embeddings, weights):
        return self._loss_fn(labels, embeddings, weights, **self.loss_kwargs)

    def train_step(self, batch, step):
        labels, weights = labels_of(batch), weights_of(batch)
        all_labels, all_weights = step.gather(labels), step.gather(weights)
        model, replicas = self.model, step.num_replicas

        def fn(images, y_all, w_all):
            emb = tf.cast(model(images, training=True), tf.float32)
            value = self.loss_value(y_all, step.gather(emb), w_all)
            reg = regularization(model)
            n = tf.cast(tf.shape(images)[0], tf.float32)
            return value + reg / replicas, {"loss": (value + reg) * n, "count": n}

        _, sums, _ = step.minimize("main", fn, batch["image"], all_labels, all_weights, jit=False)
        return sums

    def eval_step(self, batch, step):
        labels = labels_of(batch)
        emb = tf.cast(self.model(batch["image"], training=False), tf.float32)
        n = tf.cast(tf.shape(labels)[0], tf.float32)
        value = self.loss_value(labels, emb, weights_of(batch)) + regularization(self.model)
        return {"loss": value * n, "count": n}

    def predict_step(self, batch):
        return self.model(batch["image"], training=False), None
