"""AVSL's embedder (Zhang et al. CVPR 2022; METRIC_LEARNING.md §10): multi-level embeddings, attribute maps,
their certainty and the cross-level link matrices, over three stages of any backbone of the registry.

* :func:`stage_outputs` finds a network's stages: the last layer at each of its
  last ``levels`` spatial sizes (CIFAR ResNets: the three stages; ResNet-50:
  layer2/3/4, i.e. conv3/4/5 at 28/14/7 px for 224 px input).
* :class:`AVSLEmbedder` (a Keras layer): per level l a 1×1 convolution C_l → D
  (Kaiming-normal fan_out, bias 0) applied to GAP + GMP of F_l (no BN, no
  normalisation) → e_l; the attribute activation maps (CAMs, no gradient) and
  their certainty c_l; at every training forward the link buffers Ē_l (D × D,
  non-trainable weights named ``moving_links_l``, so snapshots and ``.keras``
  files keep them and the core averages them over replicas like BN statistics)
  take m·Ē + (1−m)·A (the first update copies A); the reliability parameters
  a_l (init 1), b_l (init 0) of the propagated similarity
  (:func:`semembed.losses.metric.avsl.avsl_distance`) live here too.
  Its output is ``[e_0, …, e_{L−1}, c_0, …, c_{L−1}]`` concatenated, (B, 2·L·D):
  what the similarity needs of an image (feature dumps hold it).
* :func:`build_avsl_model`: backbone stages → embedder, a functional model.
"""

from __future__ import annotations

import keras
from keras import ops

from semembed.errors import SemembedError


def stage_outputs(net: keras.Model, levels: int = 3) -> list:
    """The output tensors of the last layer at each of ``net``'s last ``levels`` spatial sizes (4-D outputs).

    Raises:
        SemembedError: the network has fewer than ``levels`` spatial sizes or an unknown input size.
    """
    last: dict = {}
    order: list = []
    for layer in net.layers:
        try:
            out = layer.output
        except (AttributeError, ValueError):
            continue
        if isinstance(out, (list, tuple)) or len(out.shape) != 4:
            continue
        size = tuple(out.shape[1:3])
        if None in size:
            raise SemembedError(f"AVSL needs a fixed input size to find the stages of {net.name} "
                                "(give --crop_size)")
        if size not in last:
            order.append(size)
        last[size] = out
    if len(order) < levels:
        raise SemembedError(f"AVSL needs {levels} stages but {net.name} has {len(order)} spatial sizes {order}")
    return [last[s] for s in order[-levels:]]


def linearised_max_map(f):
    """Z of F (B, H, W, C): per channel zero except at the first spatial argmax, which holds H·W·max (§10)."""
    b, h, w, c = ops.shape(f)
    flat = ops.reshape(f, (-1, h * w, c))
    idx = ops.argmax(flat, axis=1)  # (B, C), first maximum
    onehot = ops.transpose(ops.one_hot(idx, h * w, dtype=f.dtype), (0, 2, 1))  # (B, HW, C)
    z = onehot * ops.max(flat, axis=1, keepdims=True) * float(h * w)
    return ops.reshape(z, (-1, h, w, c))


def certainty(cam):
    """Node reliability of maps (B, H, W, D) → (B, D): min along the width subtracted (the code's row-wise
    quirk), flattened, divided by the L1 norm (floor 1e-12), unbiased standard deviation over H·W (§10)."""
    _, h, w, d = ops.shape(cam)
    x = cam - ops.min(cam, axis=2, keepdims=True)
    x = ops.reshape(x, (-1, h * w, d))
    x = x / ops.maximum(ops.sum(ops.abs(x), axis=1, keepdims=True), 1e-12)
    mean = ops.mean(x, axis=1, keepdims=True)
    return ops.sqrt(ops.sum(ops.square(x - mean), axis=1) / float(h * w - 1))


def link_matrix(cam_low, cam_high):
    """A (D_low × D_high): CAMs of level l average-pooled to level l+1's size, flattened, L2-normalised over
    positions, ⟨·,·⟩ over positions averaged over the batch (§10).  Sizes must divide."""
    _, h, w, d = ops.shape(cam_low)
    _, h2, w2, d2 = ops.shape(cam_high)
    if h % h2 or w % w2:
        raise SemembedError(f"AVSL: level sizes {h}x{w} and {h2}x{w2} do not divide (average pooling)")
    fh, fw = h // h2, w // w2
    pooled = ops.mean(ops.reshape(cam_low, (-1, h2, fh, w2, fw, d)), axis=(2, 4))
    lo = ops.reshape(pooled, (-1, h2 * w2, d))
    hi = ops.reshape(cam_high, (-1, h2 * w2, d2))
    lo = lo / ops.maximum(ops.sqrt(ops.sum(ops.square(lo), axis=1, keepdims=True)), 1e-12)
    hi = hi / ops.maximum(ops.sqrt(ops.sum(ops.square(hi), axis=1, keepdims=True)), 1e-12)
    n = ops.cast(ops.shape(lo)[0], lo.dtype)
    return ops.einsum("bpm,bpn->mn", lo, hi) / n


@keras.saving.register_keras_serializable(package="semembed")
class AVSLEmbedder(keras.layers.Layer):
    """AVSL's embedder and collector state (see the module docstring).

    Args:
        embeddings_dim: D = 512 (``--embeddings_dim``, the official recipes).
        avsl_m: link momentum m = 0.5 (``--avsl_m``).
        topk_corr: k = 128 (``--topk_corr``), prob_gamma: γ = 10, index_p: p = 2 (kept for the similarity).

    Call: ``embedder([F_0, …, F_{L−1}], training=…)`` with F_l (B, H_l, W_l, C_l) → (B, 2·L·D).
    """

    def __init__(self, embeddings_dim: int = 512, avsl_m: float = 0.5, topk_corr: int = 128,
                 prob_gamma: float = 10.0, index_p: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        self.embeddings_dim, self.avsl_m = int(embeddings_dim), float(avsl_m)
        self.topk_corr, self.prob_gamma, self.index_p = int(topk_corr), float(prob_gamma), float(index_p)

    def build(self, input_shape):
        d = self.embeddings_dim
        self.levels = len(input_shape)
        init = keras.initializers.VarianceScaling(2.0, mode="fan_out", distribution="untruncated_normal")
        self.kernels = [self.add_weight(shape=(int(s[-1]), d), initializer=init, name=f"embedder_kernel_{l}")
                        for l, s in enumerate(input_shape)]
        self.biases = [self.add_weight(shape=(d,), initializer="zeros", name=f"embedder_bias_{l}")
                       for l in range(self.levels)]
        self.prob_a = [self.add_weight(shape=(d,), initializer="ones", name=f"prob_a_{l}") for l in range(self.levels)]
        self.prob_b = [self.add_weight(shape=(d,), initializer="zeros", name=f"prob_b_{l}") for l in range(self.levels)]
        self.links = [self.add_weight(shape=(d, d), initializer="zeros", trainable=False, name=f"moving_links_{l}")
                      for l in range(self.levels - 1)]
        self.link_count = self.add_weight(shape=(), initializer="zeros", trainable=False, name="moving_link_count")

    def attributes(self, features):
        """(embeddings [e_l (B, D)], certainties [c_l (B, D)], CAMs [(B, H_l, W_l, D)]) of the stage maps."""
        embs, certs, cams = [], [], []
        for f, k, b in zip(features, self.kernels, self.biases):
            f = ops.cast(f, self.compute_dtype)
            pooled = ops.mean(f, axis=(1, 2)) + ops.max(f, axis=(1, 2))
            embs.append(ops.matmul(pooled, ops.cast(k, f.dtype)) + ops.cast(b, f.dtype))
            fd = ops.stop_gradient(f)
            cam = ops.stop_gradient(ops.einsum("bhwc,cd->bhwd", fd + linearised_max_map(fd), ops.cast(k, f.dtype))
                                    + ops.cast(b, f.dtype))
            cams.append(cam)
            certs.append(ops.stop_gradient(certainty(ops.cast(cam, "float32"))))
        return embs, certs, cams

    #: ``f(A, n) -> A`` of the whole global batch from this replica's batch mean A over n images; set by
    #: the training step under ``tf.distribute`` (None: one device, A is already the batch's)
    link_reducer = None

    def update_links(self, cams) -> None:
        """Ē_l ← A_l on the first update, m·Ē_l + (1 − m)·A_l afterwards (A_l: the global batch's mean)."""
        first = ops.equal(self.link_count, 0.0)
        for l, var in enumerate(self.links):
            a = link_matrix(ops.cast(cams[l], "float32"), ops.cast(cams[l + 1], "float32"))
            if self.link_reducer is not None:
                a = self.link_reducer(a, ops.shape(cams[l])[0])
            var.assign(ops.where(first, a, self.avsl_m * var + (1.0 - self.avsl_m) * a))
        self.link_count.assign(self.link_count + 1.0)

    def call(self, features, training=False):
        embs, certs, cams = self.attributes(features)
        if training:
            self.update_links(cams)
        return ops.concatenate([ops.cast(x, "float32") for x in embs + certs], axis=-1)

    def split(self, outputs):
        """The model's (B, 2·L·D) output → ([e_l], [c_l])."""
        d, n = self.embeddings_dim, self.levels
        parts = [outputs[:, i * d:(i + 1) * d] for i in range(2 * n)]
        return parts[:n], parts[n:]

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 2 * len(input_shape) * self.embeddings_dim)

    def get_config(self):
        return {**super().get_config(), "embeddings_dim": self.embeddings_dim, "avsl_m": self.avsl_m,
                "topk_corr": self.topk_corr, "prob_gamma": self.prob_gamma, "index_p": self.index_p}


def build_avsl_model(architecture: str, input_shape: tuple, embeddings_dim: int = 512, *, levels: int = 3,
                     avsl_m: float = 0.5, topk_corr: int = 128, prob_gamma: float = 10.0,
                     index_p: float = 2.0) -> keras.Model:
    """Backbone ``architecture`` (registry name) cut at its last ``levels`` stages, then :class:`AVSLEmbedder`
    (layer name ``avsl``).  ``input_shape`` (H, W, C) must be fixed.  Output (B, 2·levels·D)."""
    from semembed.models.registry import build_network

    net = build_network(embeddings_dim, architecture, input_shape=tuple(input_shape))
    stages = stage_outputs(net, levels)
    for l, f in enumerate(stages):
        h, w = f.shape[1], f.shape[2]
        if h is not None and w is not None and h * w < 2:  # the certainty's unbiased std of one value is NaN
            raise SemembedError(f"--architecture {architecture} at {input_shape[0]}x{input_shape[1]} px: its stage "
                                f"{l} for AVSL is {h}x{w}; the attribute maps need at least 2 positions (a larger "
                                "--crop_size, e.g. 64 for ResNet-50)")
    out = AVSLEmbedder(embeddings_dim, avsl_m=avsl_m, topk_corr=topk_corr, prob_gamma=prob_gamma,
                       index_p=index_p, name="avsl")(stages)
    return keras.Model(net.input, out, name=f"avsl-{net.name}")


def avsl_layer(model: keras.Model) -> AVSLEmbedder:
    """The :class:`AVSLEmbedder` of a model built by :func:`build_avsl_model` (or loaded from one)."""
    for layer in model.layers:
        if isinstance(layer, AVSLEmbedder):
            return layer
    raise SemembedError(f"model {model.name} has no AVSL embedder layer (not trained with --method avsl)")
