"""PyramidNet (Han et al. 2017): residual blocks whose width grows linearly by α/(3n) per block.

Follows the reference port of the Torch code: widths are ``round(c)`` of a float accumulator
(Python rounding, repeated float addition), shortcuts are average pooling + zero channel padding
at the end, there is no activation after the add. Only ``conv0``, ``bn0``, ``bn4``, ``act4``,
``avg_pool`` and the top are named; everything else gets Keras-2-style automatic names.
"""

from __future__ import annotations

import keras

from semembed.models._common import image_input, l2, top_name
from semembed.models.layers import ChannelPadding
from semembed.models.naming import Keras2Namer


def pyramid_widths(depth: int, alpha: int, bottleneck: bool) -> list[int]:
    """Block widths in order (before the ×4 bottleneck expansion), exactly as the reference rounds them."""
    n = (depth - 2) // 9 if bottleneck else (depth - 2) // 6
    step = float(alpha) / (3 * n)
    channels = 16.0
    widths = []
    for _ in range(3 * n):
        channels += step
        widths.append(round(channels))
    return widths


class _Ctx:
    def __init__(self, namer: Keras2Namer, reg, activation: str):
        self.namer, self.reg, self.activation = namer, reg, activation

    def bn(self, x):
        return keras.layers.BatchNormalization(name=self.namer("batch_normalization"))(x)

    def conv(self, x, filters: int, kernel: int, stride: int = 1):
        return keras.layers.Conv2D(
            filters, kernel, strides=stride, padding="same" if kernel > 1 else "valid",
            kernel_initializer="glorot_normal", kernel_regularizer=self.reg, name=self.namer("conv2d"),
        )(x)

    def act(self, x):
        return keras.layers.Activation(self.activation, name=self.namer("activation"))(x)


def _shortcut(x, channels_out: int, stride: int, ctx: _Ctx):
    if stride > 1:
        x = keras.layers.AveragePooling2D(stride, name=ctx.namer("average_pooling2d"))(x)
    channels_in = int(x.shape[-1])
    if channels_in < channels_out:
        x = ChannelPadding((0, channels_out - channels_in), name=ctx.namer("channel_padding"))(x)
    return x


def apply_basic_block(x, width: int, stride: int, ctx: _Ctx):
    """BN → conv3×3(stride) → BN → act → conv3×3 → BN, plus shortcut."""
    s = ctx.conv(ctx.bn(x), width, 3, stride)
    s = ctx.conv(ctx.act(ctx.bn(s)), width, 3)
    s = ctx.bn(s)
    return keras.layers.Add(name=ctx.namer("add"))([s, _shortcut(x, width, stride, ctx)])


def apply_bottleneck_block(x, width: int, stride: int, ctx: _Ctx):
    """BN → 1×1 w → BN → act → 3×3 w (stride) → BN → act → 1×1 4w → BN, plus shortcut."""
    s = ctx.conv(ctx.bn(x), width, 1)
    s = ctx.conv(ctx.act(ctx.bn(s)), width, 3, stride)
    s = ctx.conv(ctx.act(ctx.bn(s)), width * 4, 1)
    s = ctx.bn(s)
    return keras.layers.Add(name=ctx.namer("add"))([s, _shortcut(x, width * 4, stride, ctx)])


def build_pyramidnet(
    num_outputs: int,
    depth: int,
    alpha: int,
    bottleneck: bool = True,
    top_activation: str | None = None,
    activation: str = "relu",
    weight_decay: float = 2e-4,
    input_shape: tuple = (32, 32, 3),
    name: str | None = None,
) -> keras.Model:
    """Build PyramidNet-depth-alpha with a Dense ``embedding``/``prob`` top.

    Args:
        num_outputs: top width.
        depth: 9n + 2 (bottleneck) or 6n + 2 (basic).
        alpha: total width increase.
        bottleneck: bottleneck (×4) or basic blocks.
        top_activation: ``None`` or ``"softmax"``.
        activation: ``relu`` or ``selu``.
        weight_decay: L2 on conv kernels and the top kernel.
        input_shape: (H, W, C).
        name: model name (default ``pyramidnet-{depth}-{alpha}``).
    """
    n = (depth - 2) // 9 if bottleneck else (depth - 2) // 6
    reg = l2(weight_decay)
    ctx = _Ctx(Keras2Namer(), reg, activation)
    block = apply_bottleneck_block if bottleneck else apply_basic_block
    inputs = image_input(input_shape)
    x = keras.layers.Conv2D(16, 3, padding="same", kernel_initializer="glorot_normal", kernel_regularizer=reg, name="conv0")(inputs)
    x = keras.layers.BatchNormalization(name="bn0")(x)
    for i, width in enumerate(pyramid_widths(depth, alpha, bottleneck)):
        stride = 2 if i in (n, 2 * n) else 1
        x = block(x, width, stride, ctx)
    x = keras.layers.BatchNormalization(name="bn4")(x)
    x = keras.layers.Activation(activation, name="act4")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = keras.layers.Dense(num_outputs, activation=top_activation, kernel_regularizer=reg, name=top_name(top_activation))(x)
    return keras.Model(inputs, x, name=name or f"pyramidnet-{depth}-{alpha}")
