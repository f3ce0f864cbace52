"""``haframe``: a HAFrame-style fixed hierarchy-aware classifier frame (Liang & Davis, ICCV 2023).

The network's penultimate features go through a learned transformation ``haf_transform`` to K
dimensions (K classes); the classifier ``haframe`` is fixed to the frame W of
:func:`semembed.losses.hierarchy.haframe_frame`, whose pairwise cosines follow the LCA distances;
the loss is HAFrame's mix of cross-entropy and squared cosine error
(:func:`~semembed.losses.hierarchy.haframe_loss`).  Options (``TrainConfig.task_options``):
``hierarchy``, ``is_a``, ``str_ids``, ``haf_gamma`` (2.0) and ``haf_cos_weight`` (0.4), defaults in
:data:`semembed.training.config.METHOD_DEFAULTS`.  Features dumped: the transformed features.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from semembed.training.step import regularization
from semembed.training.tasks import register_task
from semembed.training.tasks.classifier import ClassifierTask
from semembed.training.tasks.common import correct, labels_of, weights_of


@register_task("haframe")
@dataclass
class HAFrameTask(ClassifierTask):
    """Fixed hierarchy-aware frame on the architecture's network.

    Args (besides :class:`ClassifierTask`'s):
        frame: K x K fixed class vectors (rows).
        similarity: K x K their cosines.
        cos_weight: weight of the squared-cosine term (HAFrame's ``--loss-schedule``).
    """

    frame: np.ndarray | None = None
    similarity: np.ndarray | None = None
    cos_weight: float = 0.4

    warmup_layers = ("haf_transform",)

    @classmethod
    def from_config(cls, config, dataset, targets):
        from semembed.losses.hierarchy import class_nodes, haframe_frame, haframe_similarity, hierarchy_from_options
        from semembed.taxonomy import ClassPairs
        from semembed.training.config import method_option

        h = hierarchy_from_options(config.task_options, "--loss haframe")
        h.require_tree("--loss haframe (its LCA distances)")  # as HXE and Hier-COS; the README says so
        nodes = class_nodes(h, list(dataset.classes))
        dist = ClassPairs(h, [h.ids[i] for i in nodes]).lcs_heights()
        sim, _ = haframe_similarity(dist, float(method_option(config, "haframe", "haf_gamma")))
        return cls(config.architecture, dataset.num_classes, input_shape=dataset.image_shape,
                   top_k=tuple(config.top_k_acc), loss_config=config, frame=haframe_frame(sim).astype(np.float32),
                   similarity=sim.astype(np.float32), cos_weight=float(method_option(config, "haframe", "haf_cos_weight")))

    def build_model(self) -> keras.Model:
        from semembed.models import build_network

        net = build_network(self.num_classes, self.architecture, classification=True, input_shape=self.input_shape)
        penultimate = net.get_layer("prob").input
        feats = keras.layers.Dense(self.num_classes, name="haf_transform")(penultimate)
        frame = keras.layers.Dense(self.num_classes, use_bias=False, trainable=False, name="haframe")
        logits = frame(feats)
        prob = keras.layers.Activation("softmax", name="prob", dtype="float32")(logits)
        frame.kernel.assign(np.asarray(self.frame, dtype=np.float32).T)
        return keras.Model(net.inputs, [feats, prob], name=net.name)

    def losses(self, model, images, labels, weights, global_size, training: bool):
        from semembed.losses.hierarchy import haframe_loss

        feats, prob = model(images, training=training)
        frame = tf.transpose(tf.cast(model.get_layer("haframe").kernel, tf.float32))
        per = haframe_loss(labels, tf.cast(feats, tf.float32), frame, self.similarity, self.cos_weight)
        loss_sum = tf.reduce_sum(weights * per)
        reg = regularization(model)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        n = tf.cast(tf.shape(labels)[0], tf.float32)
        prob = tf.cast(prob, tf.float32)
        sums = {"loss": loss_sum + reg * n, "accuracy": correct(prob, labels, 1), "count": n}
        for k in self.top_k:
            sums[f"top{k}_accuracy"] = correct(prob, labels, k)
        return loss_sum / global_size + reg / replicas, sums
