"""What every metric loss shares: the pair context (distances, positive/negative masks) and stable LSEs.

Conventions (METRIC_LEARNING.md §0): P_i = references with anchor i's label,
self excluded **by index**; N_i = references with another label.  A batch is
its own reference set by default (self index = row number); a memory
(:class:`~semembed.losses.metric.xbm.CrossBatchMemory`) gives, per anchor, the
slot holding its own copy.  ``self_threshold`` adds the compatibility rule of
Deep_Metric / research-ms-loss: positives with cosine ≥ ``self_threshold``
(1 − 1e-5 there) are dropped too.  A reference of weight 0 takes part in no
pair.  Masks and mining are not differentiable; gradients flow through the
selected distances only.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from semembed.errors import SemembedError

#: fill value of masked logits: exp(NEG_FILL - m) is exactly 0 in float32/64, no inf - inf
NEG_FILL = -1e30


def compute_dtype(x) -> str:
    """float64 arrays and tensors (NumPy, TensorFlow, JAX) stay float64; everything else (float16, bfloat16,
    float32, integers, Python lists) is computed in float32."""
    dtype = getattr(x, "dtype", None)
    if dtype is None:  # Python lists and numbers: Keras's float32
        return "float32"
    try:
        name = keras.backend.standardize_dtype(dtype)
    except ValueError:
        return "float32"
    return "float64" if name == "float64" else "float32"


def concrete_values(x) -> np.ndarray | None:
    """``x`` as a NumPy array when its values are known now (NumPy, lists, eager tensors); None while traced
    (``tf.function``, ``jax.jit``), where a check on the values cannot run."""
    if isinstance(x, (np.ndarray, list, tuple, int, np.integer)):
        return np.asarray(x)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        if isinstance(x, tf.Tensor) and not tf.is_symbolic_tensor(x):
            return x.numpy()
    elif backend == "jax":
        import jax

        if isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer):
            return np.asarray(x)
    return None


def static_shape(x) -> tuple | None:
    """The shape of ``x`` as far as it is known before running (``None`` for unknown dimensions; ``None``
    altogether for an unknown rank)."""
    shape = getattr(x, "shape", None)
    if shape is None:
        return tuple(np.shape(x))
    try:
        return tuple(None if d is None else int(d) for d in shape)
    except (TypeError, ValueError):  # an unknown rank
        return None


def check_inputs(owner: str, labels, embeddings, weights=None, *, width: int | None = None,
                 labels_name: str = "labels", embeddings_name: str = "embeddings",
                 weights_name: str = "sample_weight") -> None:
    """Static-shape checks of a loss's inputs: ``labels`` (B,) (or (B, 1)), ``embeddings`` (B, D), D = ``width``
    when given.  Raises :class:`SemembedError` naming the argument and the expected shape; dimensions unknown
    until the step runs (``None``) are not checked."""
    e_shape, l_shape = static_shape(embeddings), static_shape(labels)
    if e_shape is None or l_shape is None:
        return
    want = f"(B, {width})" if width is not None else "(B, D)"
    if len(e_shape) != 2:
        raise SemembedError(f"{owner}: {embeddings_name} must have shape {want}, got shape {e_shape}")
    if width is not None and e_shape[1] is not None and int(e_shape[1]) != width:
        raise SemembedError(f"{owner}: {embeddings_name} must have shape {want} (embedding_size {width}), "
                            f"got width {e_shape[1]} (shape {e_shape})")
    if not (len(l_shape) == 1 or (len(l_shape) == 2 and l_shape[1] == 1)):
        raise SemembedError(f"{owner}: {labels_name} must have shape (B,) (one class per embedding), got shape {l_shape}")
    if l_shape[0] is not None and e_shape[0] is not None and int(l_shape[0]) != int(e_shape[0]):
        raise SemembedError(f"{owner}: {labels_name} has {l_shape[0]} entries but {embeddings_name} has "
                            f"{e_shape[0]} rows; expected shapes (B,) and {want} with the same B")
    w_shape = None if weights is None else static_shape(weights)
    if w_shape is not None:
        rank_ok = len(w_shape) == 1 or (len(w_shape) == 2 and w_shape[1] == 1)
        n = w_shape[0] if w_shape else None
        if not rank_ok or (n is not None and e_shape[0] is not None and n != e_shape[0]):
            raise SemembedError(f"{owner}: {weights_name} must have shape (B,) = ({e_shape[0]},) (one weight per "
                                f"embedding), got shape {w_shape}")


def masked_lse(z, mask, axis: int = -1, *, plus_one: bool = False):
    """Stable ``log Σ_{mask} e^z`` (``plus_one``: ``log(1 + Σ e^z)`` = LSE₀) along ``axis``.

    Returns ``(value, has_any)``.  LSE₀ over an empty set is exactly 0 (finite
    gradient); plain LSE over an empty set is returned as 0 with
    ``has_any = False`` (the caller decides what an empty set means).
    """
    mask = ops.cast(mask, "bool")
    z = ops.where(mask, z, ops.cast(NEG_FILL, z.dtype))
    m = ops.max(z, axis=axis, keepdims=True)
    if plus_one:
        m = ops.maximum(m, ops.cast(0.0, z.dtype))
    m = ops.stop_gradient(m)
    s = ops.sum(ops.where(mask, ops.exp(z - m), ops.cast(0.0, z.dtype)), axis=axis, keepdims=True)
    if plus_one:
        s = s + ops.exp(-m)
    has = ops.any(mask, axis=axis)
    if not plus_one:
        s = ops.where(ops.expand_dims(has, axis), s, ops.ones_like(s))
    out = ops.squeeze(m + ops.log(s), axis=axis)
    if not plus_one:
        out = ops.where(has, out, ops.zeros_like(out))
    return out, has


def masked_mean(x, mask, axis: int = -1):
    """Mean of ``x`` over ``mask`` along ``axis`` (0 where the mask is empty), and the counts."""
    maskf = ops.cast(mask, x.dtype)
    n = ops.sum(maskf, axis=axis)
    return ops.sum(x * maskf, axis=axis) / ops.maximum(n, 1.0), n


@dataclass
class PairContext:
    """Anchors (the batch) against references (the batch itself or a memory), everything a loss reads.

    Attributes:
        labels (B,), embeddings (B, D): the anchors (float32/64).
        ref_labels (R,), ref_embeddings (R, D): the references.
        weights (B,), ref_weights (R,): per-sample weights (ones by default).
        mat (B, R): ``distance(embeddings, ref_embeddings)``.
        is_inverted: ``mat`` is a similarity (larger = closer).
        pos, neg (B, R) bool: positive / negative pairs (self and weight-0 references excluded).
        same_set: the references are the anchors themselves.
    """

    labels: object
    embeddings: object
    ref_labels: object
    ref_embeddings: object
    weights: object
    ref_weights: object
    mat: object
    is_inverted: bool
    pos: object
    neg: object
    same_set: bool
    dtype: str

    @property
    def num_anchors(self):
        """Σ of the anchor weights (= B when unweighted): the "mean over all anchors" denominator."""
        return ops.sum(self.weights)

    def closeness(self):
        """``mat`` oriented so that larger = closer (similarity, or −distance)."""
        return self.mat if self.is_inverted else -self.mat


def build_context(distance, labels, embeddings, weights=None, *, ref_labels=None, ref_embeddings=None,
                  ref_weights=None, ref_self_index=None, self_threshold: float | None = None) -> PairContext:
    """The :class:`PairContext` of anchors against references (see the module docstring).

    ``ref_self_index`` (B,) int: the reference index of each anchor's own copy
    (−1: none); default: the row number when the references are the anchors.
    """
    dtype = compute_dtype(embeddings)
    emb = ops.cast(embeddings, dtype)
    labels = ops.cast(ops.reshape(labels, (-1,)), "int32")
    n = ops.shape(labels)[0]
    w = ops.ones((n,), dtype) if weights is None else ops.cast(ops.reshape(weights, (-1,)), dtype)
    same_set = ref_embeddings is None
    if same_set:
        r_emb, r_labels, r_w = emb, labels, w
        self_index = ops.arange(n, dtype="int32")
    else:
        r_emb = ops.cast(ref_embeddings, dtype)
        r_labels = ops.cast(ops.reshape(ref_labels, (-1,)), "int32")
        r_w = ops.ones((ops.shape(r_labels)[0],), dtype) if ref_weights is None else ops.cast(
            ops.reshape(ref_weights, (-1,)), dtype)
        self_index = (ops.full((n,), -1, "int32") if ref_self_index is None
                      else ops.cast(ops.reshape(ref_self_index, (-1,)), "int32"))
    mat = distance(emb, None if same_set else r_emb)
    r_count = ops.shape(r_labels)[0]
    is_self = ops.equal(ops.arange(r_count, dtype="int32")[None, :], self_index[:, None])
    usable = ops.logical_and(ops.logical_not(is_self), (r_w > 0)[None, :])
    same = ops.equal(labels[:, None], r_labels[None, :])
    pos = ops.logical_and(same, usable)
    if self_threshold is not None:
        from semembed.losses.metric.distances import cosine_similarity

        cos = ops.stop_gradient(cosine_similarity(emb, r_emb))
        pos = ops.logical_and(pos, cos < self_threshold)
    neg = ops.logical_and(ops.logical_not(same), usable)
    return PairContext(labels, emb, r_labels, r_emb, w, r_w, mat, distance.is_inverted, pos, neg, same_set, dtype)
