"""DenseNet for CIFAR (Huang et al. 2017) as in the reference's DenseNet port (titu1994).

Quirks kept: BN ε = 1.1e-5; the 3×3 convs of dense layers carry **no** L2, the initial conv,
the bottleneck 1×1 and transition convs L2 1e-4; all convs ``he_normal`` without bias; the
top Dense has no regulariser and every layer has an automatic name.
"""

from __future__ import annotations

import keras

from semembed.models._common import image_input, l2
from semembed.models.naming import Keras2Namer


class _Ctx:
    def __init__(self, namer: Keras2Namer, weight_decay: float):
        self.namer, self.reg = namer, l2(weight_decay)

    def bn_relu(self, x):
        x = keras.layers.BatchNormalization(epsilon=1.1e-5, name=self.namer("batch_normalization"))(x)
        return keras.layers.Activation("relu", name=self.namer("activation"))(x)

    def conv(self, x, filters: int, kernel: int, regularized: bool = True):
        return keras.layers.Conv2D(
            filters, kernel, padding="same", kernel_initializer="he_normal", use_bias=False,
            kernel_regularizer=self.reg if regularized else None, name=self.namer("conv2d"),
        )(x)


def apply_dense_layer(x, growth_rate: int, bottleneck: bool, ctx: _Ctx):
    """BN → ReLU → [1×1 conv 4k → BN → ReLU] → 3×3 conv k (unregularised)."""
    y = ctx.bn_relu(x)
    if bottleneck:
        y = ctx.bn_relu(ctx.conv(y, 4 * growth_rate, 1))
    return ctx.conv(y, growth_rate, 3, regularized=False)


def apply_dense_block(x, layers: int, growth_rate: int, bottleneck: bool, ctx: _Ctx):
    for _ in range(layers):
        y = apply_dense_layer(x, growth_rate, bottleneck, ctx)
        x = keras.layers.Concatenate(axis=-1, name=ctx.namer("concatenate"))([x, y])
    return x


def apply_transition(x, filters: int, ctx: _Ctx):
    """BN → ReLU → 1×1 conv → 2×2 average pooling (stride 2)."""
    x = ctx.conv(ctx.bn_relu(x), filters, 1)
    return keras.layers.AveragePooling2D((2, 2), strides=(2, 2), name=ctx.namer("average_pooling2d"))(x)


def build_densenet(
    num_outputs: int,
    depth: int,
    growth_rate: int,
    initial_filters: int | None = None,
    bottleneck: bool = False,
    compression: float = 1.0,
    dense_blocks: int = 3,
    weight_decay: float = 1e-4,
    top_activation: str | None = None,
    input_shape: tuple = (32, 32, 3),
    name: str | None = None,
) -> keras.Model:
    """Build DenseNet(-BC)-depth-k with an (automatically named) Dense top.

    Args:
        num_outputs: top width.
        depth: 3N + 4; N layers per block (N/2 with bottleneck).
        growth_rate: k.
        initial_filters: filters of the first conv (default 2k).
        bottleneck: BC variant's 1×1 bottleneck in each dense layer.
        compression: θ; transitions output ⌊c·θ⌋ channels.
        dense_blocks: number of dense blocks.
        weight_decay: L2 of the regularised convs.
        top_activation: ``None`` or ``"softmax"``.
        input_shape: (H, W, C).
        name: model name (default ``densenet``).
    """
    if (depth - 4) % 3:
        raise ValueError(f"DenseNet depth must be 3N + 4. Received: depth={depth}")
    per_block = (depth - 4) // 3
    if bottleneck:
        per_block //= 2
    filters = initial_filters if initial_filters and initial_filters > 0 else 2 * growth_rate
    ctx = _Ctx(Keras2Namer(), weight_decay)
    inputs = image_input(input_shape)
    x = ctx.conv(inputs, filters, 3)
    for block in range(dense_blocks):
        x = apply_dense_block(x, per_block, growth_rate, bottleneck, ctx)
        filters += per_block * growth_rate
        if block < dense_blocks - 1:
            filters = int(filters * compression)
            x = apply_transition(x, filters, ctx)
    x = ctx.bn_relu(x)
    x = keras.layers.GlobalAveragePooling2D(name=ctx.namer("global_average_pooling2d"))(x)
    x = keras.layers.Dense(num_outputs, activation=top_activation, name=ctx.namer("dense"))(x)
    return keras.Model(inputs, x, name=name or "densenet")
