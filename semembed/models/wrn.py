"""Wide Residual Network WRN-d-k (Zagoruyko & Komodakis 2016), as ported by the reference.

Torch-port quirks kept: BN momentum 0.1 (Keras convention, so the running averages follow
the current batch closely), ε = 1e-5, gamma ~ U(−0.05, 0.05); 3×3 convs are ``he_normal``
without bias; no weight decay. All layers except the top Dense have automatic names.
"""

from __future__ import annotations

import keras

from semembed.models._common import image_input, top_name
from semembed.models.naming import Keras2Namer


def _bn(x, namer: Keras2Namer):
    return keras.layers.BatchNormalization(
        momentum=0.1, epsilon=1e-5, gamma_initializer=keras.initializers.RandomUniform(-0.05, 0.05), name=namer("batch_normalization")
    )(x)


def _conv(x, filters: int, namer: Keras2Namer, kernel: int = 3, stride: int = 1):
    return keras.layers.Conv2D(
        filters, kernel, strides=stride, padding="same", kernel_initializer="he_normal", use_bias=False, name=namer("conv2d")
    )(x)


def _relu(x, namer: Keras2Namer):
    return keras.layers.Activation("relu", name=namer("activation"))(x)


def apply_expansion_block(x, filters: int, stride: int, namer: Keras2Namer):
    """conv(stride) → BN → ReLU → conv, added to a strided 1×1 conv of the input (no BN)."""
    y = _conv(x, filters, namer, stride=stride)
    y = _relu(_bn(y, namer), namer)
    y = _conv(y, filters, namer)
    skip = _conv(x, filters, namer, kernel=1, stride=stride)
    return keras.layers.Add(name=namer("add"))([y, skip])


def apply_preact_block(x, filters: int, namer: Keras2Namer, dropout: float = 0.0):
    """BN → ReLU → conv → [dropout] → BN → ReLU → conv, plus identity."""
    y = _conv(_relu(_bn(x, namer), namer), filters, namer)
    if dropout > 0:
        y = keras.layers.Dropout(dropout, name=namer("dropout"))(y)
    y = _conv(_relu(_bn(y, namer), namer), filters, namer)
    return keras.layers.Add(name=namer("add"))([x, y])


def build_wrn(
    num_outputs: int,
    depth: int = 28,
    width: int = 10,
    dropout: float = 0.0,
    top_activation: str | None = None,
    input_shape: tuple = (32, 32, 3),
    name: str | None = None,
) -> keras.Model:
    """Build WRN-depth-width with a Dense ``embedding``/``prob`` top.

    Args:
        num_outputs: top width.
        depth: 6N + 4 (28 → N = 4 blocks per stage).
        width: widening factor k (stage widths 16k, 32k, 64k).
        dropout: dropout between the convs of pre-activation blocks (0 in the reference).
        top_activation: ``None`` or ``"softmax"``.
        input_shape: (H, W, C); the reference fixes (32, 32, C).
        name: model name.
    """
    if (depth - 4) % 6:
        raise ValueError(f"WRN depth must be 6N + 4. Received: depth={depth}")
    n = (depth - 4) // 6
    namer = Keras2Namer()
    inputs = image_input(input_shape)
    x = _relu(_bn(_conv(inputs, 16, namer), namer), namer)
    for index, base in enumerate((16, 32, 64)):
        x = apply_expansion_block(x, base * width, 2 if index > 0 else 1, namer)
        for _ in range(n - 1):
            x = apply_preact_block(x, base * width, namer, dropout)
        x = _relu(_bn(x, namer), namer)
    x = keras.layers.GlobalAveragePooling2D(name=namer("global_average_pooling2d"))(x)
    x = keras.layers.Dense(num_outputs, activation=top_activation, name=top_name(top_activation))(x)
    return keras.Model(inputs, x, name=name or f"wrn-{depth}-{width}")
