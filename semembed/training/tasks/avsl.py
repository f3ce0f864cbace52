"""``avsl``: Attributable Visual Similarity Learning (Zhang et al. CVPR 2022; METRIC_LEARNING.md §10).

The model (:func:`semembed.models.avsl.build_avsl_model`) is the backbone cut at
its last three stages plus the AVSL embedder, whose output per image is
``[e_0, e_1, e_2, c_0, c_1, c_2]`` (B, 6·D); the link buffers are its
non-trainable weights (snapshots and ``.keras`` files keep them) and are
updated by every training forward.  A second model ``proxies`` holds one C × D
proxy matrix per level.  Loss: PA_final(Δ) + Σ_l w_l·PA(δ_l) on the global batch
(:func:`avsl_loss`), the columns being the proxies (``use_proxy``, the official
recipes' mode) or the batch itself (``use_proxy=False``; no proxies model).

Optimiser groups (the paper trains trunk, embedder and collector at their own
rates): ``trunk`` at the base rate, ``embedder`` (the 1×1 convolutions) at
``embedder_lr_multiplier`` ×, ``collector`` (proxies, a_l, b_l) at
``collector_lr_multiplier`` ×.  Defaults 1 and 100: our backbones train from
scratch (the paper's trunk rate is for a pretrained ResNet-50), and the
proxies get Proxy-Anchor's 100× rule (Cars/SOP recipes: collector ≈ 100–400 × trunk).
CUB's recipe is ``--sgd_lr 1e-5 --embedder_lr_multiplier 55 --collector_lr_multiplier 11``.

Test metrics (:meth:`AVSLTask.test_metrics`) rank by the AVSL distance Δ,
computed in row chunks so that 10,000 images fit in memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from semembed.errors import SemembedError
from semembed.losses.metric.avsl import avsl_loss, chunked_distances
from semembed.training.config import AVSL_DEFAULTS
from semembed.training.optimizers import ParamGroup
from semembed.training.step import regularization
from semembed.training.task import Task
from semembed.training.tasks import register_task
from semembed.training.tasks.common import labels_of, weights_of



class AVSLProxies(keras.layers.Layer):
    """One C × D proxy matrix per level, Kaiming-normal (a = √5, fan_in): N(0, 1/(3D)) (§10)."""

    def __init__(self, num_classes: int, dim: int, levels: int = 3, **kwargs):
        super().__init__(**kwargs)
        init = keras.initializers.RandomNormal(stddev=1.0 / math.sqrt(3.0 * dim))
        self.proxies = [self.add_weight(shape=(num_classes, dim), initializer=init, name=f"proxies_{l}")
                        for l in range(levels)]


class _Holder(keras.Model):
    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        self.holder = layer

    def call(self, inputs):
        return inputs


def _scale_gradient(x, scale: float):
    """x in value, ``scale`` × its gradient (one copy of a loss per replica: each adds 1/N)."""
    if scale == 1.0:
        return x
    return x * scale + ops.stop_gradient(x * (1.0 - scale))


@register_task("avsl")
@dataclass
class AVSLTask(Task):
    """AVSL on a registry backbone.  Options: :data:`AVSL_DEFAULTS` (names = the official flags)."""

    architecture: str
    input_shape: tuple
    num_classes: int
    embeddings_dim: int = 512
    feature_dim_list: tuple | None = None
    avsl_m: float = 0.5
    topk_corr: int = 128
    prob_gamma: float = 10.0
    index_p: float = 2.0
    pa_alpha: float = 16.0
    pa_pos_margin: float = 1.8
    pa_neg_margin: float = 2.2
    final_pa_alpha: float = 16.0
    final_pa_pos_margin: float = 1.8
    final_pa_neg_margin: float = 2.2
    loss0_weight: float = 0.5
    loss1_weight: float = 1.0
    loss2_weight: float = 0.5
    embedder_lr_multiplier: float = 1.0
    collector_lr_multiplier: float = 100.0
    use_proxy: bool = True

    metrics = ()

    @classmethod
    def from_config(cls, config, dataset, targets):
        unknown = set(config.task_options) - set(AVSL_DEFAULTS)
        if unknown:
            raise SemembedError(f"--method avsl: unknown options {sorted(unknown)}")
        num_classes = int(np.max(dataset.train_labels)) + 1 if dataset.num_train else 0
        task = cls(config.architecture, tuple(dataset.image_shape), num_classes, **config.task_options)
        task.set_validation = bool(config.snapshot_best and config.snapshot_best.startswith("val_"))
        return task

    def __post_init__(self):
        if self.embeddings_dim < 1 or self.topk_corr < 1:
            raise SemembedError(f"--embeddings_dim and --topk_corr must be >= 1, got {self.embeddings_dim}, "
                                f"{self.topk_corr}")
        if not 0.0 <= self.avsl_m < 1.0:
            raise SemembedError(f"--avsl_m must be in [0, 1), got {self.avsl_m}")
        if self.index_p <= 0:
            raise SemembedError(f"--index_p must be > 0, got {self.index_p}")
        positive = ("prob_gamma", "pa_alpha", "final_pa_alpha", "embedder_lr_multiplier", "collector_lr_multiplier")
        for name in positive + ("loss0_weight", "loss1_weight", "loss2_weight", "pa_pos_margin", "pa_neg_margin",
                                "final_pa_pos_margin", "final_pa_neg_margin"):
            value = float(getattr(self, name))
            if not math.isfinite(value) or value < 0 or (name in positive and value == 0):
                raise SemembedError(f"--{name} must be a finite number {'> 0' if name in positive else '>= 0'}, "
                                    f"got {value}")
        for prefix in ("pa", "final_pa"):
            pos, neg = getattr(self, f"{prefix}_pos_margin"), getattr(self, f"{prefix}_neg_margin")
            if pos >= neg:
                raise SemembedError(f"--{prefix}_pos_margin {pos} must be below --{prefix}_neg_margin {neg}")
        if self.topk_corr > self.embeddings_dim:
            raise SemembedError(f"--topk_corr {self.topk_corr} exceeds --embeddings_dim {self.embeddings_dim} "
                                "(links kept per column of a D x D matrix)")

    # === Models ===
    def build_avsl_model(self) -> keras.Model:
        """Backbone + AVSL embedder (:func:`semembed.models.avsl.build_avsl_model`)."""
        from semembed.models.avsl import build_avsl_model

        return build_avsl_model(self.architecture, self.input_shape, self.embeddings_dim, avsl_m=self.avsl_m,
                                topk_corr=self.topk_corr, prob_gamma=self.prob_gamma, index_p=self.index_p)

    def build_models(self):
        from semembed.models.avsl import avsl_layer

        model = self.build_avsl_model()
        self.layer = avsl_layer(model)
        dims = tuple(int(k.shape[0]) for k in self.layer.kernels)
        if self.feature_dim_list is not None and tuple(self.feature_dim_list) != dims:
            raise SemembedError(f"--feature_dim_list {' '.join(map(str, self.feature_dim_list))} does not match "
                                f"the channels of {self.architecture}'s last three stages: {' '.join(map(str, dims))}")
        if not self.use_proxy:  # the batch is its own column set (§10)
            self.proxy_layer = None
            return {"model": model}
        self.proxy_layer = AVSLProxies(max(self.num_classes, 1), self.embeddings_dim, len(dims), name="avsl_proxies")
        return {"model": model, "proxies": _Holder(self.proxy_layer, name="proxies")}

    def optimizer_groups(self, models):
        layer = self.layer
        embedder = list(layer.kernels) + list(layer.biases)
        proxies = list(self.proxy_layer.proxies) if self.proxy_layer is not None else []
        collector = proxies + list(layer.prob_a) + list(layer.prob_b)
        own = {id(v) for v in embedder + collector}
        trunk = [v for v in models["model"].trainable_variables if id(v) not in own]
        return {"main": [ParamGroup(trunk, name="trunk"),
                         ParamGroup(embedder, lr_multiplier=self.embedder_lr_multiplier, name="embedder"),
                         ParamGroup(collector, lr_multiplier=self.collector_lr_multiplier, name="collector")]}

    warmup_description = ("the embedder", "the collector (proxies, gates a, b)")

    def warmup_variables(self, models):
        """The official warm-up (§10, 5 epochs in its recipes): embedder and collector step, the trunk stays."""
        groups = self.optimizer_groups(models)["main"]
        return [v for g in groups if g.name != "trunk" for v in g.variables]

    # === Losses ===
    def loss_terms(self, labels, outputs, weights, replicas: int = 1):
        embs, certs = self.layer.split(outputs)
        scale = 1.0 / replicas
        proxies = None if self.proxy_layer is None else [_scale_gradient(p, scale) for p in self.proxy_layer.proxies]
        a = [_scale_gradient(x, scale) for x in self.layer.prob_a]
        b = [_scale_gradient(x, scale) for x in self.layer.prob_b]
        links = [ops.convert_to_tensor(v) for v in self.layer.links]
        return avsl_loss(labels, embs, certs, proxies, links, a, b,
                         level_weights=(self.loss0_weight, self.loss1_weight, self.loss2_weight),
                         topk=self.topk_corr, gamma=self.prob_gamma, p=self.index_p,
                         level_pa=(self.pa_alpha, self.pa_pos_margin, self.pa_neg_margin),
                         final_pa=(self.final_pa_alpha, self.final_pa_pos_margin, self.final_pa_neg_margin),
                         weights=weights)

    def train_step(self, batch, step):
        labels, weights = labels_of(batch), weights_of(batch)
        all_labels, all_weights = step.gather(labels), step.gather(weights)
        model, replicas = self.model, step.num_replicas
        if replicas > 1:  # link matrices of the global batch: every replica's buffers get the same update
            self.layer.link_reducer = lambda a, n: _global_batch_mean(step, a, n)

        def fn(images, y_all, w_all):
            out = model(images, training=True)  # updates the link buffers first (§10)
            total, _, _ = self.loss_terms(y_all, step.gather(tf.cast(out, tf.float32)), w_all, replicas)
            reg = regularization(model)
            n = tf.cast(tf.shape(images)[0], tf.float32)
            return total + reg / replicas, {"loss": (total + reg) * n, "count": n}

        _, sums, _ = step.minimize("main", fn, batch["image"], all_labels, all_weights, jit=False)
        return sums

    def eval_step(self, batch, step):
        """No per-batch test figure, as the metric task: the test classes are not the training classes (no
        proxies), and batches in file order hold one class; retrieval figures come from
        :meth:`validation_metrics` (ranked by Δ)."""
        return {"count": tf.cast(tf.shape(labels_of(batch))[0], tf.float32)}

    def validation_metrics(self, features, labels, index) -> dict:
        """Recall@1, R-Precision and mAP@R of the test images ranked by Δ; each epoch when ``set_validation``."""
        labels = np.asarray(labels)
        return avsl_retrieval_metrics(self.model, features, labels, recall_ks=(1,)) if len(labels) > 1 else {}

    def predict_step(self, batch):
        return self.model(batch["image"], training=False), None

    # === Evaluation ===
    def test_metrics(self, features: np.ndarray, labels, *, seed: int = 0, class_similarity=None) -> dict:
        """Recall@1/2/4/8, R-Precision, MAP@R (and with ``class_similarity`` mAHP@250) of the test images
        ranked by Δ (chunked)."""
        return avsl_retrieval_metrics(self.model, features, labels, class_similarity=class_similarity)


def _global_batch_mean(step, a, n):
    """The global batch's mean from each replica's mean ``a`` over its ``n`` images."""
    ctx = step.replica_context
    n = tf.cast(n, a.dtype)
    return ctx.all_reduce("sum", a * n) / ctx.all_reduce("sum", n)


def avsl_parts(model, features: np.ndarray):
    """([e_l], [c_l]) numpy arrays of a (N, 2·L·D) feature matrix of an AVSL model."""
    from semembed.models.avsl import avsl_layer

    layer = avsl_layer(model)
    embs, certs = layer.split(ops.convert_to_tensor(np.asarray(features, np.float32)))
    return [ops.convert_to_numpy(e) for e in embs], [ops.convert_to_numpy(c) for c in certs]


def avsl_retrieval_metrics(model, features: np.ndarray, labels, recall_ks=(1, 2, 4, 8),
                           class_similarity: np.ndarray | None = None) -> dict:
    """The metric-learning figures of one set against itself under the AVSL distance of ``model``
    (:func:`~semembed.evaluation.metric_learning.metrics_from_distances`; ``class_similarity``: also mAHP@250)."""
    from semembed.evaluation.metric_learning import metrics_from_distances
    from semembed.models.avsl import avsl_layer

    layer = avsl_layer(model)
    parts = avsl_parts(model, features)
    links = [ops.convert_to_numpy(v) for v in layer.links]
    a = [ops.convert_to_numpy(v) for v in layer.prob_a]
    b = [ops.convert_to_numpy(v) for v in layer.prob_b]

    def rows(sl):
        return chunked_distances(([e[sl] for e in parts[0]], [c[sl] for c in parts[1]]), parts, links, a, b,
                                 topk=layer.topk_corr, gamma=layer.prob_gamma, p=layer.index_p)

    return metrics_from_distances(rows, np.asarray(labels), recall_ks=recall_ks, class_similarity=class_similarity)
