"""Plain-11 (``simple``): a VGG-style stack of 3×3 conv → act → BN with average pooling."""

from __future__ import annotations

import keras

from semembed.models._common import image_input, l2, top_name

PLAIN11_SPEC = (64, 64, "ap", 128, 128, 128, "ap", 256, 256, 256, "ap", 512, "gap", "fc512")


def build_plain(
    num_outputs: int,
    spec: tuple = PLAIN11_SPEC,
    activation: str = "relu",
    top_activation: str | None = None,
    weight_decay: float = 5e-4,
    input_shape: tuple = (32, 32, 3),
    name: str | None = None,
) -> keras.Model:
    """Build the plain network described by ``spec`` (item i of the spec gives layer names ``…i``).

    Args:
        num_outputs: width of the final Dense (``embedding``, or ``prob`` if softmax).
        spec: ints are 3×3 conv widths, ``"ap"``/``"mp"`` 2×2 average/max pooling, ``"gap"``
            global average pooling (``avg_pool``), ``"fcN"`` a Dense of N units.
        activation: activation inside every conv and hidden Dense (``relu`` or ``selu``).
        top_activation: ``None`` or ``"softmax"`` for the final Dense (which has no regulariser).
        weight_decay: L2 factor on every conv kernel and hidden Dense kernel.
        input_shape: (H, W, C).
        name: model name; also prefixes every layer name with ``name + "_"``.
    """
    prefix = "" if name is None else name + "_"
    reg = l2(weight_decay)
    inputs = image_input(input_shape)
    x = inputs
    flattened = False
    for i, item in enumerate(spec, start=1):
        if item in ("ap", "mp"):
            pool = keras.layers.AveragePooling2D if item == "ap" else keras.layers.MaxPooling2D
            x = pool(pool_size=(2, 2), name=f"{prefix}{item}{i}")(x)
        elif item == "gap":
            x = keras.layers.GlobalAveragePooling2D(name=f"{prefix}avg_pool")(x)
            flattened = True
        elif isinstance(item, str) and item.startswith("fc"):
            if not flattened:
                x = keras.layers.Flatten(name=f"{prefix}flatten")(x)
                flattened = True
            x = keras.layers.Dense(int(item[2:]), activation=activation, kernel_regularizer=reg, name=f"{prefix}fc{i}")(x)
            x = keras.layers.BatchNormalization(name=f"{prefix}bn{i}")(x)
        else:
            x = keras.layers.Conv2D(int(item), (3, 3), padding="same", activation=activation, kernel_regularizer=reg, name=f"{prefix}conv{i}")(x)
            x = keras.layers.BatchNormalization(name=f"{prefix}bn{i}")(x)
    if not flattened:
        x = keras.layers.Flatten(name=f"{prefix}flatten")(x)
    x = keras.layers.Dense(num_outputs, activation=top_activation, name=prefix + top_name(top_activation))(x)
    return keras.Model(inputs, x, name=name or "plainnet")
