"""``embedding``: map images onto class embeddings (``--loss``), optionally with the ``prob`` head.

The method of Barz & Denzler (WACV 2019; with one-hot targets the cosine loss
of WACV 2020).  Per sample: the registered
:class:`~semembed.losses.ClassEmbeddingLoss` (+ ``cls_weight`` × the head's
cross-entropy), weighted by the batch's ``weight``, summed and divided by the
*global* batch size; the model's L2 regularisation is added once (split over
the replicas).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from semembed.losses import ClassEmbeddingLoss, nearest_class_scores
from semembed.training.optimizers import ParamGroup
from semembed.training.step import regularization
from semembed.training.tasks import register_task
from semembed.training.tasks.common import PerSampleLossTask, correct


@register_task("embedding")
@dataclass
class EmbeddingTask(PerSampleLossTask):
    """Class-embedding regression (``--loss``) + optional softmax head (``--cls_weight``).

    Args:
        architecture: network name (``semembed.models``).
        class_embeddings: ``(num_classes, dim)`` targets; row i = class i.
        loss: ``inv_corr`` | ``unnorm_corr`` | ``softmax_corr`` | ``mse``.
        cls_weight: weight of the ``prob`` head's cross-entropy (0: no head; papers: 0.1).
        cls_base: layer the head reads (default: the embedding output).
        input_shape: network input (H, W, C).
        top_k: also count top-k nearest-class-embedding accuracy.
        head_lr_multiplier: learning-rate factor of the head's own variables (its ReLU/BN/``prob``
            layers; 1 as the reference).  The head's variables see only the cross-entropy, which
            ``cls_weight`` scales down; ``1 / cls_weight`` lets them learn as with weight 1 while the
            network still sees the cross-entropy at ``cls_weight``.
    """

    architecture: str
    class_embeddings: np.ndarray
    loss: str = "inv_corr"
    cls_weight: float = 0.0
    cls_base: str | None = None
    input_shape: tuple | None = None
    top_k: tuple[int, ...] = ()
    head_lr_multiplier: float = 1.0

    warmup_layers = ("embedding", "prob")

    @classmethod
    def from_config(cls, config, dataset, targets):
        return cls(architecture=config.architecture, class_embeddings=targets, loss=config.loss,
                   cls_weight=config.cls_weight, cls_base=config.cls_base, input_shape=dataset.image_shape,
                   top_k=tuple(config.top_k_acc), head_lr_multiplier=config.cls_lr_multiplier)

    def __post_init__(self) -> None:
        self.metrics = ("accuracy", "embedding_loss") + tuple(f"top{k}_accuracy" for k in self.top_k) + (
            ("prob_loss", "prob_accuracy") if self.with_head else ())
        self._emb_loss = ClassEmbeddingLoss(self.class_embeddings, self.loss, reduction=None)
        self._ce = keras.losses.SparseCategoricalCrossentropy(reduction=None)

    @property
    def num_classes(self) -> int:
        return int(self.class_embeddings.shape[0])

    @property
    def with_head(self) -> bool:
        return self.cls_weight > 0

    def build_model(self) -> keras.Model:
        from semembed.models import build_embedding_model

        return build_embedding_model(
            self.architecture, int(self.class_embeddings.shape[1]), loss=self.loss,
            num_classes=self.num_classes if self.with_head else None, cls_base=self.cls_base,
            input_shape=self.input_shape,
        )

    def optimizer_groups(self, models):
        model = self.model
        if not self.with_head or self.head_lr_multiplier == 1.0:
            return super().optimizer_groups(models)
        body = {id(v) for v in keras.Model(model.inputs, model.outputs[0]).trainable_variables}
        return {"main": [ParamGroup([v for v in model.trainable_variables if id(v) in body], name="network"),
                         ParamGroup([v for v in model.trainable_variables if id(v) not in body],
                                    self.head_lr_multiplier, name="head")]}

    # === Loss ===
    def losses(self, model, images, labels, weights, global_size, training: bool):
        """(this replica's share of the loss, metric sums)."""
        outputs = model(images, training=training)
        emb, prob = (outputs[0], outputs[1]) if self.with_head else (outputs, None)
        emb = tf.cast(emb, tf.float32)
        n = tf.cast(tf.shape(labels)[0], tf.float32)
        emb_sum = tf.reduce_sum(weights * self._emb_loss(labels, emb))
        total = emb_sum
        scores = nearest_class_scores(emb, self.class_embeddings, self.loss)
        sums = {"embedding_loss": emb_sum, "accuracy": correct(scores, labels, 1), "count": n}
        for k in self.top_k:
            sums[f"top{k}_accuracy"] = correct(scores, labels, k)
        if self.with_head:
            ce_sum = tf.reduce_sum(weights * self._ce(labels, tf.cast(prob, tf.float32)))
            total = total + self.cls_weight * ce_sum
            sums["prob_loss"] = ce_sum
            sums["prob_accuracy"] = correct(tf.cast(prob, tf.float32), labels, 1)
        reg = regularization(model)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        # summed over replicas and divided by the sample count: mean data loss + regularisation
        sums["loss"] = total + reg * n
        return total / global_size + reg / replicas, sums

    def predict_step(self, batch):
        outputs = self.model(batch["image"], training=False)
        return (outputs[0], outputs[1]) if self.with_head else (outputs, None)
