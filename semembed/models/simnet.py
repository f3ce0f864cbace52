"""SimNet: a pair model over any backbone of the registry (SimTrans, WEAKSHOT.md §2.2).

A batch of B images gives B feature vectors f (the input of the backbone's
``prob`` layer, i.e. its pooled/penultimate feature, d wide); :class:`AllPairs`
forms all B² ordered pairs, self-pairs included, in the reference's order —
flat pair k = i·B + j holds ``[f(x_j); f(x_i)]`` (first x_j, second x_i), so
the B² outputs reshaped row-major to B × B give ``M[i, j] = s(x_j, x_i)``
(§6.1-2).  The head is the reference's head 4 with its sizes scaled to d
(2048-d ResNet-50: 4096 → 4096 → 2048 → 2048 → 2): Dense 2d, BN, ReLU →
Dense d, BN, ReLU (the *pair feature* z the discriminator reads) → Dense d,
BN, ReLU → Dense 2 (logits; index 1 = "same class").  s(a, b) = softmax[1].
BatchNorm as PyTorch's (ε 1e-5, momentum 0.1 ↔ Keras 0.9).

The discriminator (``domain_bn = 1``): Dense d → LayerNorm (ε 1e-5) → ReLU →
Dense 2, on the pair features (domain 0 = base pairs, 1 = web pairs).

The saved SimNet is one functional model ``images → [pair features, logits]``
whose layers ``backbone`` (images → features) and ``pair_head``
(pairs → [z, logits]) are used separately for large similarity matrices.
"""

from __future__ import annotations

import keras
from keras import ops

from semembed.errors import SemembedError

BACKBONE, PAIRS, HEAD = "backbone", "pairs", "pair_head"
BN_EPSILON, BN_MOMENTUM, LN_EPSILON = 1e-5, 0.9, 1e-5


@keras.saving.register_keras_serializable(package="semembed")
class AllPairs(keras.layers.Layer):
    """(B, d) features → (B², 2d) pairs; row k = i·B + j is ``[x_j; x_i]`` (WEAKSHOT.md §2.2)."""

    def call(self, x):
        return all_pairs(x)

    def compute_output_shape(self, input_shape):
        b = None if input_shape[0] is None else input_shape[0] ** 2
        return (b, None if input_shape[-1] is None else 2 * input_shape[-1])


def all_pairs(x):
    """(B, d) → (B², 2d): row k = i·B + j is ``[x_j; x_i]`` (self-pairs included)."""
    b = ops.shape(x)[0]
    first = ops.tile(x, [b, 1])  # row i·B + j -> x[j]
    second = ops.repeat(x, b, axis=0)  # row i·B + j -> x[i]
    return ops.concatenate([first, second], axis=-1)


def pair_targets(labels):
    """(B²,) float targets of :class:`AllPairs` rows: 1 where label[j] == label[i] (diagonal always 1)."""
    labels = ops.reshape(labels, [-1])
    b = ops.shape(labels)[0]
    first = ops.tile(labels, [b])
    second = ops.repeat(labels, b)
    return ops.cast(ops.equal(first, second), "float32")


def cross_pairs(first, second):
    """(n1·n2, 2d) rows ``[first_a; second_b]`` at a·n2 + b (the similarity-matrix order S[a, b] = s(first_a, second_b))."""
    n1, n2 = ops.shape(first)[0], ops.shape(second)[0]
    return ops.concatenate([ops.repeat(first, n2, axis=0), ops.tile(second, [n1, 1])], axis=-1)


def build_pair_head(feature_dim: int, name: str = HEAD) -> keras.Model:
    """Head 4 of the reference at width ``d = feature_dim``: 2d → 2d → d (pair feature) → d → 2."""
    d = int(feature_dim)
    if d < 1:
        raise SemembedError(f"feature_dim must be a positive integer. Received: feature_dim={feature_dim!r}")
    inp = keras.Input((2 * d,), name="pair_input")
    x = inp
    z = None
    for i, units in enumerate((2 * d, d, d), start=1):
        x = keras.layers.Dense(units, name=f"{name}_fc{i}")(x)
        x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn{i}")(x)
        x = keras.layers.Activation("relu", name=f"{name}_relu{i}")(x)
        if i == 2:
            z = x
    logits = keras.layers.Dense(2, name=f"{name}_logits", dtype="float32")(x)
    return keras.Model(inp, [z, logits], name=name)


def build_discriminator(feature_dim: int, name: str = "discriminator") -> keras.Model:
    """Domain discriminator on pair features: Dense d → LayerNorm(ε 1e-5) → ReLU → Dense 2 (logits)."""
    d = int(feature_dim)
    inp = keras.Input((d,), name="pair_feature")
    x = keras.layers.Dense(d, name=f"{name}_fc1")(inp)
    x = keras.layers.LayerNormalization(epsilon=LN_EPSILON, name=f"{name}_ln")(x)
    x = keras.layers.Activation("relu", name=f"{name}_relu")(x)
    logits = keras.layers.Dense(2, name=f"{name}_logits", dtype="float32")(x)
    return keras.Model(inp, logits, name=name)


def build_backbone(architecture: str, input_shape: tuple) -> keras.Model:
    """The registry network cut at its pooled/penultimate feature (the input of ``prob``), named ``backbone``.

    Layer names are the classifier's, so a ``learn_classifier`` dump initialises it by name.
    """
    from semembed.models.registry import build_network

    net = build_network(1, architecture, classification=True, input_shape=input_shape)
    try:
        feats = net.get_layer("prob").input
    except ValueError:
        feats = net.output
    if len(feats.shape) != 2:
        raise SemembedError(f"architecture {architecture!r}: its feature before the classifier has shape "
                            f"{tuple(feats.shape)}, expected (batch, d)")
    return keras.Model(net.inputs[0], feats, name=BACKBONE)


def build_simnet(architecture: str, input_shape: tuple) -> keras.Model:
    """SimNet over ``architecture``: ``images (B, H, W, C) → [pair features (B², d), logits (B², 2)]``.

    Args:
        architecture: any name of :mod:`semembed.models.registry`.
        input_shape: (H, W, C) of the images.

    Returns:
        a functional model with the layers ``backbone``, ``pairs`` (:class:`AllPairs`) and ``pair_head``.
    """
    backbone = build_backbone(architecture, input_shape)
    head = build_pair_head(int(backbone.output.shape[-1]))
    images = keras.Input(tuple(input_shape), name="images")
    z, logits = head(AllPairs(name=PAIRS)(backbone(images)))
    return keras.Model(images, [z, logits], name="simnet")


def simnet_parts(simnet: keras.Model) -> tuple[keras.Model, keras.Model]:
    """(backbone, pair head) of a SimNet built by :func:`build_simnet` (or loaded from its file)."""
    try:
        return simnet.get_layer(BACKBONE), simnet.get_layer(HEAD)
    except ValueError:
        raise SemembedError(f"model {simnet.name!r} is not a SimNet (it has no '{BACKBONE}' and '{HEAD}' layers); "
                            "give a model written by learn_simnet") from None


def same_class_probability(logits):
    """s = softmax(logits)[..., 1] (float32)."""
    return ops.softmax(ops.cast(logits, "float32"), axis=-1)[..., 1]


def batch_similarity(backbone: keras.Model, head: keras.Model, images, training: bool = False):
    """M (B, B) with ``M[i, j] = s(x_j, x_i)`` for a batch (the graph loss's A, WEAKSHOT.md §2.5)."""
    f = backbone(images, training=training)
    b = ops.shape(f)[0]
    _, logits = head(all_pairs(f), training=training)
    return ops.reshape(same_class_probability(logits), [b, b])
