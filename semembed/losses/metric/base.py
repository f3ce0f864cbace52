"""Base classes of the metric losses: a pair loss over (distance, miner, reducer), and a proxy loss with weights.

Every loss is called as ``loss(labels, embeddings)`` → scalar (labels (B,) int,
embeddings (B, D); float16/bfloat16 inputs are computed in float32, float64
stays float64), with an optional ``sample_weight`` (B,).  A pair loss also
accepts references — ``ref_labels``, ``ref_embeddings`` (R, D), ``ref_weights``,
``ref_self_index`` — against which the batch's anchors are compared instead
of the batch itself (cross-batch memory).

Batch scope: a loss sees exactly the batch it is given.  The ``metric`` task
gives it the *global* batch (all replicas, via
:meth:`~semembed.training.step.StepContext.gather`), so mining sees the global
batch by default.
"""

from __future__ import annotations

import keras
from keras import ops

from semembed.errors import SemembedError
from semembed.losses.metric.common import build_context, check_inputs, concrete_values, static_shape
from semembed.losses.metric.distances import get_distance
from semembed.losses.metric.miners import get_miner
from semembed.losses.metric.reducers import get_reducer


def _config_of(obj):
    return None if obj is None else obj.get_config()


class PairLoss(keras.losses.Loss):
    """Base of the losses over anchor × reference pairs (see the module docstring).

    Subclasses set ``default_distance``, ``default_reducer``, the miner kinds
    they accept (``miner_kinds``) and implement :meth:`compute`.

    Args:
        distance: name, config or :class:`~semembed.losses.metric.distances.Distance`.
        miner: name, config, :class:`~semembed.losses.metric.miners.Miner` or None.
        reducer: name, config or :class:`~semembed.losses.metric.reducers.Reducer`.
        self_threshold: also drop positives with cosine ≥ this (Deep_Metric uses 1,
            research-ms-loss/XBM 1 − 1e-5; None: exclusion by index only).
    """

    default_distance = "euclidean"
    default_reducer = "mean"
    default_miner = None
    miner_kinds: tuple[str, ...] = ("pair",)
    distances: tuple[str, ...] | None = None  # allowed distances (None: any)
    supports_references = True

    def __init__(self, *, distance=None, miner="default", reducer=None, self_threshold: float | None = None,
                 name: str | None = None, **kwargs):
        super().__init__(name=name or self.registry_name, **kwargs)
        self.distance = get_distance(self.default_distance if distance is None else distance)
        if self.distances is not None and self.distance.name not in self.distances:
            raise SemembedError(f"{type(self).__name__} is defined on {' or '.join(self.distances)}, "
                                f"got distance={self.distance.name!r}")
        self.miner = get_miner(self.default_miner if isinstance(miner, str) and miner == "default" else miner)
        if self.miner is not None and self.miner.kind not in self.miner_kinds:
            raise SemembedError(f"{type(self).__name__} takes {' or '.join(self.miner_kinds) or 'no'} miners, "
                                f"got the {self.miner.kind} miner {self.miner.name!r}")
        self.reducer = get_reducer(self.default_reducer if reducer is None else reducer)
        self.self_threshold = None if self_threshold is None else float(self_threshold)

    registry_name = "pair_loss"

    def __call__(self, y_true, y_pred, sample_weight=None, *, ref_labels=None, ref_embeddings=None,
                 ref_weights=None, ref_self_index=None):
        if ref_embeddings is not None and not self.supports_references:
            raise SemembedError(f"{type(self).__name__} needs the negatives of both pair members and cannot "
                                "compare a batch with a separate reference set (memory)")
        if (ref_embeddings is None) != (ref_labels is None):
            raise SemembedError("ref_embeddings and ref_labels must be given together")
        owner = type(self).__name__
        check_inputs(owner, y_true, y_pred, sample_weight, labels_name="labels (y_true)",
                     embeddings_name="embeddings (y_pred)")
        if ref_embeddings is not None:
            check_inputs(owner, ref_labels, ref_embeddings, ref_weights, width=(static_shape(y_pred) or (None,))[-1],
                         labels_name="ref_labels", embeddings_name="ref_embeddings", weights_name="ref_weights")
        ctx = build_context(self.distance, y_true, y_pred, sample_weight, ref_labels=ref_labels,
                            ref_embeddings=ref_embeddings, ref_weights=ref_weights, ref_self_index=ref_self_index,
                            self_threshold=self.self_threshold)
        return self.compute(ctx)

    def call(self, y_true, y_pred):
        return self(y_true, y_pred)

    def compute(self, ctx):
        raise NotImplementedError

    def mined_pairs(self, ctx):
        """(pos, neg) masks after the pair miner (the context's own without one)."""
        if self.miner is None:
            return ctx.pos, ctx.neg
        return self.miner(ctx)

    def reduce(self, values, mask, weights, ctx):
        return self.reducer(values, mask, weights, ctx.num_anchors)

    def pair_weights(self, ctx):
        return ctx.weights[:, None] * ctx.ref_weights[None, :]

    def get_config(self):
        return {"name": self.name, "distance": _config_of(self.distance), "miner": _config_of(self.miner),
                "reducer": _config_of(self.reducer), "self_threshold": self.self_threshold}


class ProxyLoss(keras.layers.Layer):
    """Base of the proxy losses: one learnable proxy per training class, owned as the weight ``proxies`` (C, D).

    Called as ``loss(labels, embeddings, sample_weight=None)`` → scalar.  The
    layer's dtype is float32 (float64 on request), also under mixed precision.
    """

    registry_name = "proxy_loss"

    def __init__(self, num_classes: int, embedding_size: int, *, proxy_initializer=None, name: str | None = None,
                 dtype="float32", **kwargs):
        super().__init__(name=name or self.registry_name, dtype=dtype, **kwargs)
        if int(num_classes) < 1 or int(embedding_size) < 1:
            raise SemembedError(f"{type(self).__name__} needs num_classes >= 1 and embedding_size >= 1, "
                                f"got {num_classes}, {embedding_size}")
        self.num_classes, self.embedding_size = int(num_classes), int(embedding_size)
        init = proxy_initializer if proxy_initializer is not None else self.default_initializer()
        self.proxies = self.add_weight(shape=(self.num_classes, self.embedding_size), initializer=init,
                                       name="proxies", trainable=True)
        self.built = True

    def default_initializer(self):
        return keras.initializers.RandomNormal(stddev=1.0)

    def __call__(self, labels, embeddings, sample_weight=None, **kwargs):
        """Checks the inputs (before Keras wraps any error), then :meth:`call`.

        Raises:
            SemembedError: ``embeddings`` not (B, embedding_size), ``labels`` not (B,), ``sample_weight`` not
                (B,), or — when the labels' values are known (NumPy, eager tensors) — a label outside
                [0, num_classes).  Traced labels (``tf.function``) cannot be checked: the ``metric`` task
                trains on training classes only, whose labels are 0..C−1.
        """
        owner = type(self).__name__
        check_inputs(owner, labels, embeddings, sample_weight, width=self.embedding_size)
        known = concrete_values(labels)
        if known is not None and known.size:
            bad = known[(known < 0) | (known >= self.num_classes)]
            if bad.size:
                raise SemembedError(f"{owner}: label {bad.ravel()[0]} is outside [0, num_classes) = [0, "
                                    f"{self.num_classes}) ({bad.size} such labels); each label must have a proxy")
        return super().__call__(labels, embeddings, sample_weight=sample_weight, **kwargs)

    def call(self, labels, embeddings, sample_weight=None, proxy_gradient_scale: float = 1.0):
        """``proxy_gradient_scale``: the proxies' gradient is multiplied by it (value unchanged); the
        ``metric`` task passes 1/N when each of N replicas computes the whole global-batch loss."""
        dtype = "float64" if self.compute_dtype == "float64" else "float32"
        emb = ops.cast(embeddings, dtype)
        labels = ops.cast(ops.reshape(labels, (-1,)), "int32")
        n = ops.shape(labels)[0]
        w = ops.ones((n,), dtype) if sample_weight is None else ops.cast(ops.reshape(sample_weight, (-1,)), dtype)
        proxies = ops.cast(self.proxies, dtype)
        if proxy_gradient_scale != 1.0:
            proxies = ops.stop_gradient(proxies) + (proxies - ops.stop_gradient(proxies)) * proxy_gradient_scale
        return self.compute(labels, emb, proxies, w)

    def compute(self, labels, embeddings, proxies, weights):
        raise NotImplementedError

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "embedding_size": self.embedding_size}
