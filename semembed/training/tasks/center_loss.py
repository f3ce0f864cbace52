"""``center_loss``: softmax + center loss (Wen et al., ECCV 2016), as the reference's ``learn_center_loss.py``.

The network outputs an ``embed_dim``-d embedding (layer ``embedding``, linear); the head
ReLU → BatchNorm (``embedding_bn``) → Dense softmax (``prob``) classifies it.  Loss per sample:
cross-entropy + ``center_loss_weight`` · ½‖f(x) − c_y‖² (:mod:`semembed.losses.center`).  The
centres are a second model ``centers`` (an embedding table ``cls_centroids``): learned with the
network by the same optimiser, or fixed to a class-embedding file (``--centroids``).  Features are
the embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from semembed.losses.center import center_loss
from semembed.training.config import METHOD_DEFAULTS, method_option
from semembed.training.step import regularization
from semembed.training.tasks import register_task
from semembed.training.tasks.common import PerSampleLossTask, correct


@register_task("center_loss")
@dataclass
class CenterLossTask(PerSampleLossTask):
    """Softmax cross-entropy + weighted center loss.

    Args:
        architecture: network name.
        num_classes: number of classes.
        embed_dim: embedding size (reference default 100; a fixed centroid file sets it).
        center_loss_weight: weight of the center loss (reference default 0.1).
        centroids: fixed ``(num_classes, embed_dim)`` centres, or None to learn them.
        input_shape: network input (H, W, C).
        top_k: also count top-k accuracy.
    """

    architecture: str
    num_classes: int
    embed_dim: int = METHOD_DEFAULTS["center_loss"]["embed_dim"]
    center_loss_weight: float = METHOD_DEFAULTS["center_loss"]["center_loss_weight"]
    centroids: np.ndarray | None = None
    input_shape: tuple | None = None
    top_k: tuple[int, ...] = ()

    warmup_layers = ("embedding", "embedding_bn", "prob", "cls_centroids")

    @classmethod
    def from_config(cls, config, dataset, targets):
        fixed = targets if method_option(config, "center_loss", "fixed_centroids") else None
        dim = int(fixed.shape[1]) if fixed is not None else int(method_option(config, "center_loss", "embed_dim"))
        return cls(config.architecture, dataset.num_classes, embed_dim=dim,
                   center_loss_weight=float(method_option(config, "center_loss", "center_loss_weight")),
                   centroids=fixed, input_shape=dataset.image_shape, top_k=tuple(config.top_k_acc))

    def __post_init__(self) -> None:
        self.metrics = ("accuracy", "center_loss") + tuple(f"top{k}_accuracy" for k in self.top_k)
        self._ce = keras.losses.SparseCategoricalCrossentropy(reduction=None)

    def build_models(self) -> dict:
        from semembed.models import build_network

        net = build_network(self.embed_dim, self.architecture, input_shape=self.input_shape)
        x = keras.layers.Activation("relu", name="embedding_relu")(net.outputs[0])
        x = keras.layers.BatchNormalization(name="embedding_bn")(x)
        prob = keras.layers.Dense(self.num_classes, activation="softmax", name="prob")(x)
        model = keras.Model(net.inputs, [net.outputs[0], prob], name=net.name)
        labels = keras.Input((), dtype="int32", name="labels")
        table = keras.layers.Embedding(self.num_classes, self.embed_dim, name="cls_centroids")
        centers = keras.Model(labels, table(labels), name="centers")
        if self.centroids is not None:
            table.set_weights([np.asarray(self.centroids, dtype=np.float32)])
            table.trainable = False
        return {"model": model, "centers": centers}

    def losses(self, model, images, labels, weights, global_size, training: bool):
        emb, prob = self.models["model"](images, training=training)
        emb, prob = tf.cast(emb, tf.float32), tf.cast(prob, tf.float32)
        c = tf.cast(self.models["centers"](labels, training=training), tf.float32)
        ce_sum = tf.reduce_sum(weights * self._ce(labels, prob))
        cl_sum = tf.reduce_sum(weights * center_loss(emb, c))
        reg = regularization(self.models["model"])
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        n = tf.cast(tf.shape(labels)[0], tf.float32)
        total = ce_sum + self.center_loss_weight * cl_sum
        sums = {"loss": total + reg * n, "center_loss": cl_sum, "accuracy": correct(prob, labels, 1), "count": n}
        for k in self.top_k:
            sums[f"top{k}_accuracy"] = correct(prob, labels, k)
        return total / global_size + reg / replicas, sums

    def predict_step(self, batch):
        emb, prob = self.models["model"](batch["image"], training=False)
        return emb, prob
