"""The pluggable training task: owns the model, its losses, metrics and the per-replica step.

A task is a *single-replica view* (as in TF Model Garden's ``Task``): it
builds the model, computes the loss of one replica's batch scaled for the
global batch, and returns metric sums.  The :class:`~semembed.training.trainer.Trainer`
owns the strategy, the optimizer, the loop and the checkpoints.  Other
trainings (SimNet pairs, metric-learning losses) subclass :class:`Task` and
override ``build_model``/``compute_loss``/``train_step``.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from semembed.losses import embedding_loss_fn, nearest_class_scores


class Task:
    """Interface the trainer drives.  Metric values are *sums* over the replica's batch."""

    #: layers that train during the fine-tuning warm-up (``--finetune_init``)
    warmup_layers: tuple[str, ...] = ()

    def build_model(self) -> keras.Model:
        raise NotImplementedError

    def compute_loss(self, model: keras.Model, images, labels, global_size, training: bool):
        """Return (scalar loss of this replica scaled for the global batch, dict of metric sums)."""
        raise NotImplementedError

    def train_step(self, model, optimizer, images, labels, clipnorm: float | None, variables=None):
        """One replica's step: loss, gradients, global-norm clipping, update. Returns metric sums."""
        ctx = tf.distribute.get_replica_context()
        global_size = ctx.all_reduce("sum", tf.cast(tf.shape(images)[0], tf.float32))
        variables = model.trainable_variables if variables is None else variables
        with tf.GradientTape() as tape:
            loss, sums = self.compute_loss(model, images, labels, global_size, training=True)
        grads = tape.gradient(loss, variables)
        if clipnorm:
            # clip by the norm of the *global* gradient (Keras 2's clipnorm), not the replica's part
            total = grads if ctx.num_replicas_in_sync == 1 else ctx.all_reduce("sum", grads)
            norm = tf.linalg.global_norm(total)
            scale = tf.minimum(1.0, clipnorm / tf.maximum(norm, 1e-12))
            grads = [g * scale for g in grads]
        optimizer.apply(grads, variables)
        sync_batchnorm_statistics(model, ctx)
        return sums

    def eval_step(self, model, images, labels):
        global_size = tf.cast(tf.shape(images)[0], tf.float32)
        _, sums = self.compute_loss(model, images, labels, global_size, training=False)
        return sums


def sync_batchnorm_statistics(model: keras.Model, ctx) -> None:
    """Average BN moving statistics over replicas so every replica (and the saved model) agrees.

    Each replica normalises with its own batch statistics, as a single-device
    run with the per-replica batch would; the moving averages become the mean
    of the replicas' updates (the update is linear in the batch statistics).
    """
    if ctx.num_replicas_in_sync == 1:
        return
    stats = [v for v in model.non_trainable_variables if "moving_" in v.path]
    if not stats:
        return
    averaged = ctx.all_reduce("mean", [tf.identity(v.value) for v in stats])  # tensors, not variables
    for v, a in zip(stats, averaged):
        v.assign(a)


@dataclass
class EmbeddingTask(Task):
    """Map images onto class embeddings (``--loss``), optionally with the ``prob`` head (``--cls_weight``)."""

    architecture: str
    class_embeddings: np.ndarray  # (num_classes, dim), row i = class i
    loss: str = "inv_corr"
    cls_weight: float = 0.0
    cls_base: str | None = None
    input_shape: tuple | None = None
    top_k: tuple[int, ...] = ()

    warmup_layers = ("embedding", "prob")

    @property
    def num_classes(self) -> int:
        return int(self.class_embeddings.shape[0])

    @property
    def with_head(self) -> bool:
        return self.cls_weight > 0

    def build_model(self) -> keras.Model:
        from semembed.models import build_embedding_model

        return build_embedding_model(
            self.architecture,
            int(self.class_embeddings.shape[1]),
            loss=self.loss,
            num_classes=self.num_classes if self.with_head else None,
            cls_base=self.cls_base,
            input_shape=self.input_shape,
        )


    def compute_loss(self, model, images, labels, global_size, training):
        outputs = model(images, training=training)
        emb, prob = (outputs[0], outputs[1]) if self.with_head else (outputs, None)
        labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
        emb = tf.cast(emb, tf.float32)
        table = tf.constant(self.class_embeddings, tf.float32)
        per_sample = embedding_loss_fn(self.loss)(tf.gather(table, labels), emb)
        emb_sum = tf.reduce_sum(per_sample)
        total = emb_sum
        scores = nearest_class_scores(emb, table, self.loss)
        sums = {
            "embedding_loss": emb_sum,
            "accuracy": _correct(scores, labels, 1),
            "count": tf.cast(tf.shape(labels)[0], tf.float32),
        }
        for k in self.top_k:
            sums[f"top{k}_accuracy"] = _correct(scores, labels, k)
        if self.with_head:
            prob = tf.cast(prob, tf.float32)
            ce = keras.losses.sparse_categorical_crossentropy(labels, prob)
            ce_sum = tf.reduce_sum(ce)
            total = total + self.cls_weight * ce_sum
            sums["prob_loss"] = ce_sum
            sums["prob_accuracy"] = _correct(prob, labels, 1)
        reg, replicas = _regularization(model)
        loss = total / global_size + reg / replicas
        # summed over replicas and divided by the sample count: mean data loss + regularisation
        sums["loss"] = total + reg * tf.cast(tf.shape(labels)[0], tf.float32)
        return loss, sums

    def predict_step(self, model, images):
        """Embedding (and class probabilities) of a batch, for dumps and final metrics."""
        outputs = model(images, training=False)
        return (outputs[0], outputs[1]) if self.with_head else (outputs, None)


def _regularization(model: keras.Model):
    """(sum of the model's weight-decay losses, replicas in sync); each replica adds reg / replicas."""
    reg = tf.add_n([tf.cast(x, tf.float32) for x in model.losses]) if model.losses else tf.constant(0.0)
    return reg, tf.distribute.get_strategy().num_replicas_in_sync


def _correct(scores, labels, k: int):
    k = min(int(k), int(scores.shape[-1]))
    hit = ops.in_top_k(labels, scores, k)
    return tf.reduce_sum(tf.cast(hit, tf.float32))


@dataclass
class ClassifierTask(Task):
    """Plain softmax classification (the baseline): the network's ``prob`` output with cross-entropy.

    The model has two outputs, ``[features, prob]``, where features are the
    input of the ``prob`` layer (the usual retrieval features of a classifier).
    """

    architecture: str
    num_classes: int
    input_shape: tuple | None = None
    top_k: tuple[int, ...] = ()

    warmup_layers = ("prob",)

    def build_model(self) -> keras.Model:
        from semembed.models import build_network

        net = build_network(self.num_classes, self.architecture, classification=True, input_shape=self.input_shape)
        prob = net.get_layer("prob")
        return keras.Model(net.inputs, [prob.input, prob.output], name=net.name)


    def compute_loss(self, model, images, labels, global_size, training):
        _, prob = model(images, training=training)
        labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
        prob = tf.cast(prob, tf.float32)
        ce_sum = tf.reduce_sum(keras.losses.sparse_categorical_crossentropy(labels, prob))
        reg, replicas = _regularization(model)
        n = tf.cast(tf.shape(labels)[0], tf.float32)
        sums = {"loss": ce_sum + reg * n, "accuracy": _correct(prob, labels, 1), "count": n}
        for k in self.top_k:
            sums[f"top{k}_accuracy"] = _correct(prob, labels, k)
        return ce_sum / global_size + reg / replicas, sums

    def predict_step(self, model, images):
        feats, prob = model(images, training=False)
        return feats, prob
