"""``hiercos``: Hier-COS, features composed of orthogonal per-node subspaces (Sani & Anand, 2025).

The network's penultimate features are mapped by ``hiercos_embedding`` to one axis per taxonomy
node (the root excepted); class c's score is the norm of the projection onto the axes of its
root path, ‖P_c x‖, and the loss is Hier-COS's KL + α·auxiliary term
(:func:`semembed.losses.hierarchy.hiercos_loss`).  Options (``TrainConfig.task_options``):
``hierarchy``, ``is_a``, ``str_ids``, ``hiercos_alpha`` (0.05).  Features dumped: the node-axis
features x; the model's second output ``prob`` is the softmax of the class scores (a fixed
:class:`~semembed.models.layers.SubspaceNorms` layer), so ``predict`` and ``evaluate
--layer prob`` classify with it, and CRM and the metrics that need a distribution have one; the
ranking is that of the scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from semembed.models.layers import SubspaceNorms

from semembed.training.step import regularization
from semembed.training.tasks import register_task
from semembed.training.tasks.classifier import ClassifierTask
from semembed.training.tasks.common import correct


@register_task("hiercos")
@dataclass
class HierCOSTask(ClassifierTask):
    """Hier-COS on the architecture's network.

    Args (besides :class:`ClassifierTask`'s):
        structure: :class:`~semembed.losses.hierarchy.HierCOSStructure` of the classes.
        alpha: weight of the auxiliary loss.
    """

    structure: object = None
    alpha: float = 0.05

    warmup_layers = ("hiercos_embedding",)

    @classmethod
    def from_config(cls, config, dataset, targets):
        from semembed.losses.hierarchy import hierarchy_from_options, hiercos_structure
        from semembed.training.config import method_option

        h = hierarchy_from_options(config.task_options, "--loss hiercos")
        return cls(config.architecture, dataset.num_classes, input_shape=dataset.image_shape,
                   top_k=tuple(config.top_k_acc), loss_config=config,
                   structure=hiercos_structure(h, list(dataset.classes)),
                   alpha=float(method_option(config, "hiercos", "hiercos_alpha")))

    def __post_init__(self) -> None:
        from semembed.losses.hierarchy import level_membership

        super().__post_init__()
        self._levels = level_membership(self.structure.levels)

    def build_model(self) -> keras.Model:
        from semembed.models import build_network

        net = build_network(self.num_classes, self.architecture, classification=True, input_shape=self.input_shape)
        penultimate = net.get_layer("prob").input
        dim = self.structure.subspace.shape[1]
        x = keras.layers.Dense(dim, name="hiercos_embedding", dtype="float32")(penultimate)
        scores_layer = SubspaceNorms(self.num_classes, name="hiercos_scores", dtype="float32")
        scores = scores_layer(x)
        scores_layer.subspace.assign(np.asarray(self.structure.subspace, dtype=np.float32))
        prob = keras.layers.Activation("softmax", name="prob", dtype="float32")(scores)
        return keras.Model(net.inputs, [x, prob], name=net.name)

    def losses(self, model, images, labels, weights, global_size, training: bool):
        from semembed.losses.hierarchy import hiercos_loss

        x, prob = model(images, training=training)
        x = tf.cast(x, tf.float32)
        per = hiercos_loss(labels, x, self.structure, self.alpha, self._levels)
        loss_sum = tf.reduce_sum(weights * per)
        reg = regularization(model)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        n = tf.cast(tf.shape(labels)[0], tf.float32)
        prob = tf.cast(prob, tf.float32)
        sums = {"loss": loss_sum + reg * n, "accuracy": correct(prob, labels, 1), "count": n}
        for k in self.top_k:
            sums[f"top{k}_accuracy"] = correct(prob, labels, k)
        return loss_sum / global_size + reg / replicas, sums
