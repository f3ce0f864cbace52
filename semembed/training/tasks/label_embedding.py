"""``label_embedding``: the label-embedding network (Sun et al. 2017), as the reference's ``learn_labelembedding.py``.

The network outputs an ``embed_dim``-d embedding (``embedding``); ReLU → BatchNorm
(``embedding_bn``) give the features of two heads: ``logits`` (o1; its softmax is the layer
``prob`` users predict with) and a second model ``out2`` (o2) that sees the features with the
gradient stopped.  A third model ``labelembeddings`` holds the C × C label embedding (identity
at first).  Loss: :func:`semembed.losses.label_embedding.label_embedding_loss`.  Features are the
embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf

from semembed.losses.label_embedding import label_embedding_loss
from semembed.training.config import METHOD_DEFAULTS, method_option
from semembed.training.step import regularization
from semembed.training.tasks import register_task
from semembed.training.tasks.common import PerSampleLossTask, correct


@register_task("label_embedding")
@dataclass
class LabelEmbeddingTask(PerSampleLossTask):
    """Label-embedding network.

    Args:
        architecture: network name.
        num_classes: number of classes.
        embed_dim: embedding size (reference default 100).
        tau, alpha, beta: the loss's temperature, confidence cap and mixing weight (reference: 2, 0.9, 0.5).
        input_shape: network input (H, W, C).
        top_k: also count top-k accuracy.
    """

    architecture: str
    num_classes: int
    embed_dim: int = METHOD_DEFAULTS["label_embedding"]["embed_dim"]
    tau: float = METHOD_DEFAULTS["label_embedding"]["tau"]
    alpha: float = METHOD_DEFAULTS["label_embedding"]["alpha"]
    beta: float = METHOD_DEFAULTS["label_embedding"]["beta"]
    input_shape: tuple | None = None
    top_k: tuple[int, ...] = ()

    warmup_layers = ("embedding", "embedding_bn", "logits")

    @classmethod
    def from_config(cls, config, dataset, targets):
        def opt(name):
            return method_option(config, "label_embedding", name)

        return cls(config.architecture, dataset.num_classes, embed_dim=int(opt("embed_dim")), tau=float(opt("tau")),
                   alpha=float(opt("alpha")), beta=float(opt("beta")), input_shape=dataset.image_shape,
                   top_k=tuple(config.top_k_acc))

    def __post_init__(self) -> None:
        self.metrics = ("accuracy",) + tuple(f"top{k}_accuracy" for k in self.top_k)

    def build_models(self) -> dict:
        from semembed.models import build_network

        c = self.num_classes
        net = build_network(self.embed_dim, self.architecture, input_shape=self.input_shape)
        x = keras.layers.Activation("relu", name="embedding_relu")(net.outputs[0])
        feats = keras.layers.BatchNormalization(name="embedding_bn")(x)
        logits = keras.layers.Dense(c, name="logits")(feats)
        prob = keras.layers.Activation("softmax", name="prob")(logits)
        model = keras.Model(net.inputs, [net.outputs[0], prob, logits, feats], name=net.name)
        f_in = keras.Input((self.embed_dim,), name="features")
        out2 = keras.Model(f_in, keras.layers.Dense(c, name="out2")(f_in), name="out2")
        lab = keras.Input((), dtype="int32", name="labels")
        table = keras.layers.Embedding(c, c, embeddings_initializer="identity", name="labelembeddings")
        label_emb = keras.Model(lab, table(lab), name="labelembeddings")
        return {"model": model, "out2": out2, "labelembeddings": label_emb}

    def losses(self, model, images, labels, weights, global_size, training: bool):
        _, prob, out1, feats = self.models["model"](images, training=training)
        out2 = self.models["out2"](tf.stop_gradient(feats), training=training)
        emb = self.models["labelembeddings"](labels, training=training)
        per_sample = label_embedding_loss(labels, out1, out2, emb, self.tau, self.alpha, self.beta)
        loss_sum = tf.reduce_sum(weights * per_sample)
        reg = regularization(self.models["model"])
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        n = tf.cast(tf.shape(labels)[0], tf.float32)
        prob = tf.cast(prob, tf.float32)
        sums = {"loss": loss_sum + reg * n, "accuracy": correct(prob, labels, 1), "count": n}
        for k in self.top_k:
            sums[f"top{k}_accuracy"] = correct(prob, labels, k)
        return loss_sum / global_size + reg / replicas, sums

    def predict_step(self, batch):
        emb, prob, _, _ = self.models["model"](batch["image"], training=False)
        return emb, prob
