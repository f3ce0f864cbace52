"""CIFAR ResNet (He et al. 2016, §4.2): 3×3 basic blocks, option-A (pool + zero-pad) shortcuts.

Layer names follow the reference: ``conv0``/``bn0`` stem, ``res{s-b}x|y`` / ``bn{s-b}x|y`` inside
block b of stage s, ``avg{s-b}`` / ``pad{s-b}`` on downsampling shortcuts, ``avg_pool`` at the end.
Activations and adds carry Keras-2-style automatic names.
"""

from __future__ import annotations

import keras

from semembed.models._common import image_input, l2, top_name
from semembed.models.layers import ChannelPadding
from semembed.models.naming import Keras2Namer


def apply_basic_block(x, filters_in: int, filters_out: int, prefix: str, stride: int, reg, activation: str, namer: Keras2Namer):
    """conv(stride) → BN → act → conv → BN, plus the (pooled, zero-padded) identity, then act."""
    y = keras.layers.Conv2D(filters_out, 3, strides=stride, padding="same", kernel_regularizer=reg, name=f"res{prefix}x")(x)
    y = keras.layers.BatchNormalization(name=f"bn{prefix}x")(y)
    y = keras.layers.Activation(activation, name=namer("activation"))(y)
    y = keras.layers.Conv2D(filters_out, 3, padding="same", kernel_regularizer=reg, name=f"res{prefix}y")(y)
    y = keras.layers.BatchNormalization(name=f"bn{prefix}y")(y)
    shortcut = x
    if stride > 1:
        shortcut = keras.layers.AveragePooling2D((stride, stride), name=f"avg{prefix}")(shortcut)
    if filters_in < filters_out:
        delta = filters_out - filters_in
        shortcut = ChannelPadding((delta // 2, delta - delta // 2), name=f"pad{prefix}")(shortcut)
    y = keras.layers.Add(name=namer("add"))([y, shortcut])
    return keras.layers.Activation(activation, name=namer("activation"))(y)


def build_cifar_resnet(
    num_outputs: int,
    blocks_per_stage: int,
    widths: tuple[int, int, int] = (16, 32, 64),
    include_top: bool = True,
    top_activation: str | None = "softmax",
    activation: str = "relu",
    weight_decay: float = 2e-4,
    input_shape: tuple = (None, None, 3),
    name: str | None = None,
) -> keras.Model:
    """Build a CIFAR ResNet with ``6 * blocks_per_stage + 2`` layers.

    Args:
        num_outputs: width of the top Dense (when ``include_top``).
        blocks_per_stage: n (5 for ResNet-32, 18 for ResNet-110).
        widths: channels of stages 1–3; the stem has ``widths[0]`` filters.
        include_top: add the Dense ``embedding``/``prob`` after ``avg_pool``.
        top_activation: ``None`` or ``"softmax"``.
        activation: ``relu`` or ``selu``.
        weight_decay: L2 on all conv kernels and the top kernel.
        input_shape: (H, W, C); spatial sizes must halve evenly twice.
        name: model name (default ``cifar-resnet{6n}`` as in the reference).
    """
    namer = Keras2Namer()
    reg = l2(weight_decay)
    inputs = image_input(input_shape)
    x = keras.layers.Conv2D(widths[0], 3, padding="same", kernel_regularizer=reg, name="conv0")(inputs)
    x = keras.layers.BatchNormalization(name="bn0")(x)
    x = keras.layers.Activation(activation, name=namer("activation"))(x)
    previous = widths[0]
    for stage, width in enumerate(widths, start=1):
        for block in range(1, blocks_per_stage + 1):
            stride = 2 if (stage > 1 and block == 1) else 1
            x = apply_basic_block(x, previous, width, f"{stage}-{block}", stride, reg, activation, namer)
            previous = width
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if include_top:
        x = keras.layers.Dense(num_outputs, activation=top_activation, kernel_regularizer=reg, name=top_name(top_activation))(x)
    return keras.Model(inputs, x, name=name or f"cifar-resnet{2 * len(widths) * blocks_per_stage}")
