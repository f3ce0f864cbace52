"""ImageNet backbones from ``keras.applications`` (random init): ResNet-50/101/152 and NASNet-A large.

Layer names are the current keras.applications names (``conv1_conv``, ``conv2_block1_1_conv``, …);
``semembed.models.legacy_h5`` maps the Keras-2.2-era ResNet-50 names onto them.
"""

from __future__ import annotations

import keras

from semembed.models._common import image_input

_RESNETS = {50: "ResNet50", 101: "ResNet101", 152: "ResNet152"}


def build_applications_resnet(
    num_outputs: int,
    depth: int,
    top_activation: str | None = None,
    top_name: str = "embedding",
    input_shape: tuple = (None, None, 3),
    name: str | None = None,
) -> keras.Model:
    """keras.applications ResNet-{50,101,152} without top → GAP ``avg_pool`` → Dense ``top_name`` (no decay).

    Args:
        num_outputs: top width.
        depth: 50, 101 or 152.
        top_activation: ``None`` or ``"softmax"``.
        top_name: ``"prob"`` for classifiers, ``"embedding"`` otherwise (reference rule).
        input_shape: (H, W, C).
        name: model name.
    """
    if depth not in _RESNETS:
        raise ValueError(f"ResNet depth must be one of {sorted(_RESNETS)}. Received: depth={depth}")
    inputs = image_input(input_shape)
    backbone = getattr(keras.applications, _RESNETS[depth])(include_top=False, weights=None, input_tensor=inputs)
    features = backbone.output
    if isinstance(backbone.layers[-1], keras.layers.AveragePooling2D):  # very old keras-applications added a 7×7 pool
        features = backbone.layers[-2].output
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features)
    x = keras.layers.Dense(num_outputs, activation=top_activation, name=top_name)(x)
    return keras.Model(inputs, x, name=name or f"resnet{depth}")


def build_nasnet_large(
    num_outputs: int,
    top_activation: str | None = None,
    top_name: str = "embedding",
    input_shape: tuple = (224, 224, 3),
    name: str | None = None,
) -> keras.Model:
    """NASNet-A large without top, global average pooling (4032-d) → Dense ``top_name``."""
    inputs = image_input(input_shape)
    backbone = keras.applications.NASNetLarge(include_top=False, weights=None, input_tensor=inputs, pooling="avg")
    x = keras.layers.Dense(num_outputs, activation=top_activation, name=top_name)(backbone.output)
    return keras.Model(inputs, x, name=name or "nasnet-a")
