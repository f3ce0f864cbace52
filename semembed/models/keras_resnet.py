"""ResNet-18…200 as built by the ``keras-resnet`` package (``rn18`` … ``rn200``).

Caffe-style v1 blocks (stride on the first conv), convs ``he_normal`` without bias, BN ε = 1e-5,
explicit ``ZeroPadding2D`` before every 3×3 conv, projection shortcut in every stage's first
block. Layer names as keras-resnet: ``conv1``, ``bn_conv1``, ``res{S}{b}_branch2a`` …, where the
block id is a letter, or ``a, b1, b2, …`` in stages flagged numerical.
"""

from __future__ import annotations

import keras

from semembed.models._common import image_input

# name -> (blocks per stage, bottleneck?, numerical block names per stage)
KERAS_RESNET_PRESETS: dict[str, tuple[tuple[int, ...], bool, tuple[bool, ...]]] = {
    "rn18": ((2, 2, 2, 2), False, (True, True, True, True)),
    "rn34": ((3, 4, 6, 3), False, (True, True, True, True)),
    "rn50": ((3, 4, 6, 3), True, (False, False, False, False)),
    "rn101": ((3, 4, 23, 3), True, (False, True, True, False)),
    "rn152": ((3, 8, 36, 3), True, (False, True, True, False)),
    "rn200": ((3, 24, 36, 3), True, (False, True, True, False)),
}


def _conv(x, filters: int, kernel: int, stride: int, name: str):
    return keras.layers.Conv2D(filters, kernel, strides=stride, use_bias=False, kernel_initializer="he_normal", name=name)(x)


def _bn(x, name: str):
    return keras.layers.BatchNormalization(epsilon=1e-5, name=name)(x)


def apply_block(x, filters: int, stage: int, block: int, bottleneck: bool, numerical: bool):
    """One keras-resnet basic/bottleneck block; ``stage`` and ``block`` count from 0."""
    stride = 2 if (block == 0 and stage > 0) else 1
    tag = f"{stage + 2}" + (f"b{block}" if (block > 0 and numerical) else chr(ord("a") + block))

    def pad(t, branch: str):
        return keras.layers.ZeroPadding2D(1, name=f"padding{tag}_{branch}")(t)

    def relu(t, suffix: str):
        return keras.layers.Activation("relu", name=f"res{tag}{suffix}_relu")(t)

    if bottleneck:
        y = relu(_bn(_conv(x, filters, 1, stride, f"res{tag}_branch2a"), f"bn{tag}_branch2a"), "_branch2a")
        y = relu(_bn(_conv(pad(y, "branch2b"), filters, 3, 1, f"res{tag}_branch2b"), f"bn{tag}_branch2b"), "_branch2b")
        y = _bn(_conv(y, filters * 4, 1, 1, f"res{tag}_branch2c"), f"bn{tag}_branch2c")
        out = filters * 4
    else:
        y = relu(_bn(_conv(pad(x, "branch2a"), filters, 3, stride, f"res{tag}_branch2a"), f"bn{tag}_branch2a"), "_branch2a")
        y = _bn(_conv(pad(y, "branch2b"), filters, 3, 1, f"res{tag}_branch2b"), f"bn{tag}_branch2b")
        out = filters
    shortcut = x
    if block == 0:
        shortcut = _bn(_conv(x, out, 1, stride, f"res{tag}_branch1"), f"bn{tag}_branch1")
    y = keras.layers.Add(name=f"res{tag}")([y, shortcut])
    return relu(y, "")


def build_keras_resnet(
    num_outputs: int,
    variant: str,
    classification: bool = False,
    no_softmax: bool = False,
    input_shape: tuple = (None, None, 3),
    name: str | None = None,
) -> keras.Model:
    """Build ``rn18`` … ``rn200`` with the reference's top-layer rules.

    With ``classification and not no_softmax`` keras-resnet's own top is used (``pool5`` +
    softmax ``fc1000``). Otherwise ``avg_pool`` + Dense named ``prob`` (classification) or
    ``embedding``, whose activation is **softmax unless no_softmax** — a reference quirk that
    also applies to embedders.
    """
    if variant not in KERAS_RESNET_PRESETS:
        raise ValueError(f"Unknown keras-resnet variant. Expected one of {sorted(KERAS_RESNET_PRESETS)}. Received: variant={variant!r}")
    blocks, bottleneck, numerical = KERAS_RESNET_PRESETS[variant]
    inputs = image_input(input_shape)
    x = keras.layers.Conv2D(64, 7, strides=2, padding="same", use_bias=False, kernel_initializer="he_normal", name="conv1")(inputs)
    x = keras.layers.Activation("relu", name="conv1_relu")(_bn(x, "bn_conv1"))
    x = keras.layers.MaxPooling2D((3, 3), strides=2, padding="same", name="pool1")(x)
    filters = 64
    for stage, count in enumerate(blocks):
        for block in range(count):
            x = apply_block(x, filters, stage, block, bottleneck, numerical[stage])
        filters *= 2
    if classification and not no_softmax:
        x = keras.layers.GlobalAveragePooling2D(name="pool5")(x)
        x = keras.layers.Dense(num_outputs, activation="softmax", name="fc1000")(x)
    else:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dense(num_outputs, activation=None if no_softmax else "softmax", name="prob" if classification else "embedding")(x)
    return keras.Model(inputs, x, name=name or variant)
