"""``metric``: deep metric learning with any loss of :mod:`semembed.losses.metric` on the *global* batch.

The backbone's L2-normalised embedding (``embedding_dim``) is trained with a
registered metric loss over every sample of the global batch: each replica
gathers the embeddings of all replicas
(:meth:`~semembed.training.step.StepContext.gather`), computes the whole loss
and back-propagates into its own rows only, so N replicas give the gradient of
one device with the same global batch; mining sees the global batch.

* Proxy losses (``proxy_anchor``, ``proxy_nca``, ``normalized_softmax``) keep
  their proxies in a second model ``proxies`` (saved with snapshots) trained at
  ``proxy_lr_multiplier`` × the rate; as every replica computes the whole
  loss, the proxies' gradient is scaled by 1/N so that the sum over replicas
  is the one-device gradient.
* ``xbm_size > 0`` wraps the pair loss in a
  :class:`~semembed.losses.metric.xbm.CrossBatchMemory` (state in snapshots).
* ``freeze_bn``: BatchNorm runs in inference mode and its statistics stay fixed.
* ``class_embeddings`` with ``embedding_weight > 0``: + weight × (1 − ⟨φ_y, x̂⟩)
  (the semantic-embedding loss onto the class embeddings; the embedding then
  has their dimension).

Pair with m-per-class batches (``--classes_per_batch P --images_per_class K``)
so that every batch has positives.

No test loss is reported: on a zero-shot split the test classes have no
proxies, and the test images come in file order (batches of one class, no
negatives for a pair loss), so such a value says nothing about retrieval.
What the papers watch is retrieval on the test classes: with
``snapshot_best`` one of ``val_Recall@1``, ``val_mAP@R``, ``val_R-Precision``
(:data:`~semembed.training.config.METRIC_SNAPSHOT_BEST`) the task computes
those figures of the whole test set each epoch (:meth:`validation_metrics`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from semembed.errors import SemembedError
from semembed.losses.metric import METRIC_LOSSES, CrossBatchMemory, ProxyLoss, build_metric_loss, get_miner
from semembed.training.optimizers import ParamGroup
from semembed.training.step import regularization
from semembed.training.task import Task
from semembed.training.tasks import register_task
from semembed.training.tasks.common import labels_of, weights_of

#: proxies' learning-rate multiplier when none is given: Proxy-Anchor's repo trains them at 100x
DEFAULT_PROXY_LR = {"proxy_anchor": 100.0}


class ProxyHolder(keras.Model):
    """A model that only holds a proxy loss layer, so that its proxies are built, optimised and snapshotted."""

    def __init__(self, loss_layer, **kwargs):
        super().__init__(**kwargs)
        self.loss_layer = loss_layer

    def call(self, inputs):
        return inputs


@register_task("metric")
@dataclass
class MetricLearningTask(Task):
    """Metric learning on the global batch.

    Args:
        architecture: network name (``semembed.models``).
        embedding_dim: size of the L2-normalised embedding.
        loss: a key of ``METRIC_LOSSES``.
        loss_kwargs: the loss's hyperparameters (e.g. ``neg_margin``).
        input_shape: network input (H, W, C).
        num_classes: training classes (proxy losses).
        miner, miner_kwargs, distance: override the loss's default miner / distance.
        proxy_lr_multiplier: proxies' rate multiplier (None: 100 for proxy_anchor, else 1).
        xbm_size, xbm_start, xbm_weight, xbm_ring: cross-batch memory (0: none).
        freeze_bn: BatchNorm frozen.
        class_embeddings, embedding_weight: optional semantic-embedding term.
    """

    architecture: str
    embedding_dim: int = 128
    loss: str = "contrastive"
    loss_kwargs: dict = field(default_factory=dict)
    input_shape: tuple | None = None
    num_classes: int | None = None
    miner: str | None = None
    miner_kwargs: dict = field(default_factory=dict)
    distance: str | None = None
    proxy_lr_multiplier: float | None = None
    xbm_size: int = 0
    xbm_start: int = 0
    xbm_weight: float = 1.0
    xbm_ring: str = "fifo"
    freeze_bn: bool = False
    class_embeddings: np.ndarray | None = None
    embedding_weight: float = 0.0

    metrics = ()
    test_is_query = None  # In-Shop: which test images are queries (the rest: the gallery)

    @classmethod
    def from_config(cls, config, dataset, targets):
        from semembed.training.config import METRIC_SNAPSHOT_BEST

        m = config.metric
        use_targets = m.embedding_weight > 0
        if use_targets and config.embedding == "onehot":
            raise SemembedError("--embedding_weight needs --embedding FILE (the class embeddings to add as targets)")
        if config.snapshot_best and config.snapshot_best not in METRIC_SNAPSHOT_BEST:
            raise SemembedError(
                f"--snapshot_best {config.snapshot_best}: the metric task reports no test loss (on a zero-shot "
                "split the test classes have no proxies, and file-order test batches hold one class, so pair "
                f"losses see no negatives); choose one of {', '.join(METRIC_SNAPSHOT_BEST)} (val_*: retrieval "
                "on the test images each epoch, as the papers pick their best epoch; loss: the training loss)")
        num_classes = int(np.max(dataset.train_labels)) + 1 if dataset.num_train else 0
        task = cls(config.architecture, embedding_dim=targets.shape[1] if use_targets else config.embedding_dim,
                   loss=m.loss, loss_kwargs=dict(m.loss_kwargs), input_shape=dataset.image_shape,
                   num_classes=num_classes, miner=m.miner, miner_kwargs=dict(m.miner_kwargs), distance=m.distance,
                   proxy_lr_multiplier=m.proxy_lr_multiplier, xbm_size=m.xbm_size, xbm_start=m.xbm_start,
                   xbm_weight=m.xbm_weight, xbm_ring=m.xbm_ring, freeze_bn=m.freeze_bn,
                   class_embeddings=targets if use_targets else None, embedding_weight=m.embedding_weight)
        task.set_validation = bool(config.snapshot_best and config.snapshot_best.startswith("val_"))
        task.test_is_query = None if dataset.test_is_query is None else np.asarray(dataset.test_is_query)
        return task

    def __post_init__(self) -> None:
        if self.loss not in METRIC_LOSSES:
            raise SemembedError(f"unknown metric loss {self.loss!r}; known: {', '.join(METRIC_LOSSES)}")
        self.is_proxy = issubclass(METRIC_LOSSES[self.loss], ProxyLoss)
        if self.is_proxy and self.miner:
            raise SemembedError(f"--miner: the proxy loss {self.loss} mines no pairs")
        if self.is_proxy and self.distance and self.loss != "proxy_anchor":
            raise SemembedError(f"--distance: the proxy loss {self.loss} has a fixed distance")
        if self.is_proxy and self.xbm_size:
            raise SemembedError(f"--xbm_size: cross-batch memory wraps pair losses, not the proxy loss {self.loss}")
        if not self.is_proxy and self.proxy_lr_multiplier is not None:
            raise SemembedError(f"--proxy_lr_multiplier: --loss {self.loss} has no proxies")
        if self.embedding_weight and self.class_embeddings is not None:
            self._targets = tf.constant(np.asarray(self.class_embeddings, np.float32))
        self.loss_obj = None
        self.xbm = None
        if not self.is_proxy:  # no weights: build now, so bad hyperparameters fail before any data is read
            self.loss_obj = self._make_loss()
            if self.xbm_size and not self.loss_obj.supports_references:
                raise SemembedError(f"--xbm_size: the loss {self.loss} needs the negatives of both pair members "
                                    "and cannot be paired with a cross-batch memory")

    def _make_loss(self):
        kwargs = dict(self.loss_kwargs)
        if self.miner == "none":
            kwargs["miner"] = None
        elif self.miner is not None:
            kwargs["miner"] = get_miner({"name": self.miner, **self.miner_kwargs})
        if self.distance is not None:
            kwargs["distance"] = self.distance
        try:
            return build_metric_loss(self.loss, num_classes=self.num_classes, embedding_size=self.embedding_dim,
                                     **kwargs)
        except TypeError as exc:  # an argument the loss does not take
            raise SemembedError(f"--loss {self.loss}: {exc}") from None

    # === Models ===
    def build_models(self):
        models = {"model": self.build_model()}
        if self.is_proxy:
            self.loss_obj = self._make_loss()
            models["proxies"] = ProxyHolder(self.loss_obj, name="proxies")
        elif self.xbm_size:
            self.xbm = CrossBatchMemory(self.loss_obj, self.embedding_dim, memory_size=self.xbm_size,
                                        start_iteration=self.xbm_start, weight=self.xbm_weight, ring=self.xbm_ring)
        return models

    def build_model(self) -> keras.Model:
        from semembed.models import build_embedding_model

        model = build_embedding_model(self.architecture, self.embedding_dim, loss="inv_corr",
                                      input_shape=self.input_shape)
        if self.freeze_bn:
            for layer in model._flatten_layers(include_self=False):
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.trainable = False
        return model

    warmup_description = ("the embedding layer", "the proxies")

    def warmup_variables(self, models):
        """Proxy-Anchor's warm-up (§8): the embedding layer (the model's last weighted layer) and the proxies."""
        weighted = [l for l in models["model"].layers if l.trainable_weights]
        out = list(weighted[-1].trainable_variables) if weighted else []
        return out + (list(models["proxies"].trainable_variables) if "proxies" in models else [])

    def optimizer_groups(self, models):
        groups = [ParamGroup(list(models["model"].trainable_variables), name="model")]
        if "proxies" in models:
            mult = self.proxy_lr_multiplier
            mult = DEFAULT_PROXY_LR.get(self.loss, 1.0) if mult is None else mult
            groups.append(ParamGroup(list(models["proxies"].trainable_variables), lr_multiplier=mult, name="proxies"))
        return {"main": groups}

    def state_variables(self):
        return self.xbm.state_variables() if self.xbm is not None else []

    # === Losses ===
    def loss_value(self, labels, embeddings, weights, *, training: bool = True, replicas: int = 1):
        """The loss of a batch of training images (labels 0..C−1, each with its proxy)."""
        if self.is_proxy:
            value = self.loss_obj(labels, embeddings, sample_weight=weights, proxy_gradient_scale=1.0 / replicas)
        elif training and self.xbm is not None:
            value = self.xbm(labels, embeddings, sample_weight=weights)
        else:
            value = self.loss_obj(labels, embeddings, weights)
        if self.embedding_weight:
            targets = tf.gather(self._targets, tf.minimum(labels, tf.shape(self._targets)[0] - 1))
            semantic = 1.0 - tf.reduce_sum(targets * tf.math.l2_normalize(embeddings, axis=-1), axis=-1)
            value = value + self.embedding_weight * tf.reduce_sum(weights * semantic) / tf.maximum(
                tf.reduce_sum(weights), 1e-12)
        return value

    def train_step(self, batch, step):
        labels, weights = labels_of(batch), weights_of(batch)
        all_labels, all_weights = step.gather(labels), step.gather(weights)
        model, replicas = self.model, step.num_replicas

        def fn(images, y_all, w_all):
            emb = tf.cast(model(images, training=True), tf.float32)
            value = self.loss_value(y_all, step.gather(emb), w_all, training=True, replicas=replicas)
            reg = regularization(model)
            n = tf.cast(tf.shape(images)[0], tf.float32)
            return value + reg / replicas, {"loss": (value + reg) * n, "count": n}

        _, sums, _ = step.minimize("main", fn, batch["image"], all_labels, all_weights, jit=False)
        return sums

    def eval_step(self, batch, step):
        """No per-batch test figure (see the module docstring): the count only, so nothing is reported as a
        test loss; retrieval figures come from :meth:`validation_metrics`."""
        return {"count": tf.cast(tf.shape(labels_of(batch))[0], tf.float32)}

    def validation_metrics(self, features, labels, index) -> dict:
        """Recall@1, R-Precision and mAP@R of the test images (each against the others, self excluded; In-Shop:
        queries against the gallery), cosine ranking; computed each epoch when ``set_validation`` is on."""
        from semembed.evaluation.metric_learning import metric_learning_metrics

        labels = np.asarray(labels)
        if len(labels) < 2:
            return {}
        if self.test_is_query is not None:
            q = self.test_is_query[np.asarray(index)]
            return metric_learning_metrics(features[~q], labels[~q], query_features=features[q],
                                           query_labels=labels[q], recall_ks=(1,), nmi=False)
        return metric_learning_metrics(features, labels, recall_ks=(1,), nmi=False)

    def predict_step(self, batch):
        return self.model(batch["image"], training=False), None
