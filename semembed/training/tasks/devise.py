"""``devise``: DeViSE (Frome et al., NeurIPS 2013), as the reference's ``learn_devise.py``.

The network ends in a linear layer ``embedding`` onto the (L2-normalised) class embeddings and is
trained with the hinge rank loss of :mod:`semembed.losses.devise`, with Adagrad.  With
``--init_weights`` (our ``--finetune``) only the projection trains first, for ``--init_epochs``
at ``--init_lr``; then the whole network for ``--ft_epochs`` at ``--ft_lr``.  Features are the
projection's output; classes are predicted by the most similar class embedding (dot product).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from semembed.losses.devise import devise_rank_loss, normalized_class_embeddings
from semembed.training.config import METHOD_DEFAULTS, method_option
from semembed.training.step import regularization
from semembed.training.tasks import register_task
from semembed.training.tasks.common import PerSampleLossTask, correct


@register_task("devise")
@dataclass
class DeviseTask(PerSampleLossTask):
    """Linear projection onto class embeddings with the hinge rank loss.

    Args:
        architecture: network name (``semembed.models``).
        class_embeddings: ``(num_classes, dim)`` targets (normalised here, as the reference).
        margin: hinge margin (reference default 0.1).
        input_shape: network input (H, W, C).
        top_k: also count top-k accuracy.
    """

    architecture: str
    class_embeddings: np.ndarray
    margin: float = METHOD_DEFAULTS["devise"]["margin"]
    input_shape: tuple | None = None
    top_k: tuple[int, ...] = ()

    warmup_layers = ("embedding",)

    @classmethod
    def from_config(cls, config, dataset, targets):
        return cls(config.architecture, targets, margin=float(method_option(config, "devise", "margin")),
                   input_shape=dataset.image_shape, top_k=tuple(config.top_k_acc))

    def __post_init__(self) -> None:
        self.metrics = ("accuracy",) + tuple(f"top{k}_accuracy" for k in self.top_k)
        self.targets = normalized_class_embeddings(self.class_embeddings)

    def build_model(self) -> keras.Model:
        from semembed.models import build_embedding_model

        # "mse" keeps the network's linear output layer 'embedding' as it is (no normalisation)
        return build_embedding_model(self.architecture, int(self.targets.shape[1]), loss="mse",
                                     input_shape=self.input_shape)

    def losses(self, model, images, labels, weights, global_size, training: bool):
        out = tf.cast(model(images, training=training), tf.float32)
        per_sample = devise_rank_loss(labels, out, self.targets, self.margin)
        loss_sum = tf.reduce_sum(weights * per_sample)
        reg = regularization(model)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        n = tf.cast(tf.shape(labels)[0], tf.float32)
        scores = tf.matmul(out, tf.constant(self.targets.T))
        sums = {"loss": loss_sum + reg * n, "accuracy": correct(scores, labels, 1), "count": n}
        for k in self.top_k:
            sums[f"top{k}_accuracy"] = correct(scores, labels, k)
        return loss_sum / global_size + reg / replicas, sums

    def predict_step(self, batch):
        out = tf.cast(self.model(batch["image"], training=False), tf.float32)
        return out, tf.nn.softmax(tf.matmul(out, tf.constant(self.targets.T)))
