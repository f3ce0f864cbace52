"""Output wrappers and the classification head the embedding trainer puts on a network.

``inv_corr`` → ``L2Normalize`` layer named ``l2norm``; ``softmax_corr`` → softmax ``Activation``
named ``softmax``; ``mse``/``unnorm_corr`` → the network's own output (``embedding``). With
``num_classes`` the ``prob`` head (ReLU → BN → Dense softmax, L2 5e-4) reads the wrapped output
or a chosen base layer, giving ``Model(inputs, [embedding_output, prob])`` as released.
"""

from __future__ import annotations

import keras

from semembed.errors import SemembedError
from semembed.models.layers import L2Normalize
from semembed.models.naming import Keras2Namer
from semembed.models.registry import build_network

EMBEDDING_LOSSES = ("inv_corr", "softmax_corr", "mse", "unnorm_corr")
CLS_WEIGHT_DECAY = 5e-4


def wrap_output(model: keras.Model, loss: str = "inv_corr") -> keras.Model:
    """Add the reference's output wrapper for ``loss`` (see module docstring)."""
    if loss not in EMBEDDING_LOSSES:
        raise SemembedError(f"unknown embedding loss {loss!r}; expected one of: {', '.join(EMBEDDING_LOSSES)}")
    if loss == "inv_corr":
        out = L2Normalize(name="l2norm")(model.output)
    elif loss == "softmax_corr":
        out = keras.layers.Activation("softmax", name="softmax")(model.output)
    else:
        return model
    return keras.Model(model.inputs, out, name=model.name)


def _base_tensor(model: keras.Model, cls_base: str | int | None):
    if cls_base is None:
        return model.outputs[0]
    if isinstance(cls_base, int) or (isinstance(cls_base, str) and cls_base.lstrip("-").isdigit()):
        index = int(cls_base)
        if not -len(model.layers) <= index < len(model.layers):
            raise SemembedError(f"cls_base index {index} out of range: the model has {len(model.layers)} layers")
        return model.layers[index].output
    try:
        return model.get_layer(cls_base).output
    except ValueError:
        raise SemembedError(f"cls_base: no layer named {cls_base!r} in model {model.name!r}") from None


def add_classifier(model: keras.Model, num_classes: int, cls_base: str | int | None = None) -> keras.Model:
    """``cls_model``: ReLU → BatchNormalization → Dense(num_classes, softmax, L2 5e-4) named ``prob``.

    The ReLU and BN get the Keras-2 automatic names the reference's file would carry
    (counters continue after the model's own ``activation_N``/``batch_normalization_N``).
    """
    if int(num_classes) < 1:
        raise SemembedError(f"num_classes must be a positive integer. Received: num_classes={num_classes!r}")
    namer = Keras2Namer.continuing(layer.name for layer in model.layers)
    x = keras.layers.Activation("relu", name=namer("activation"))(_base_tensor(model, cls_base))
    x = keras.layers.BatchNormalization(name=namer("batch_normalization"))(x)
    prob = keras.layers.Dense(
        int(num_classes), activation="softmax", kernel_regularizer=keras.regularizers.L2(CLS_WEIGHT_DECAY), name="prob"
    )(x)
    return keras.Model(model.inputs, [model.outputs[0], prob], name=model.name)


def build_embedding_model(
    architecture: str,
    embedding_dim: int,
    loss: str = "inv_corr",
    num_classes: int | None = None,
    cls_base: str | int | None = None,
    input_shape: tuple | None = None,
    input_channels: int = 3,
) -> keras.Model:
    """The model ``learn_image_embeddings`` trains: network + output wrapper [+ ``prob`` head].

    Args:
        architecture: any name in ``ARCHITECTURES``.
        embedding_dim: output units of the network (D).
        loss: ``inv_corr`` | ``softmax_corr`` | ``mse`` | ``unnorm_corr``.
        num_classes: add the ``prob`` classification head with this many classes.
        cls_base: layer name or index the head reads instead of the embedding output.
        input_shape: (H, W, C) override; otherwise (None, None, ``input_channels``).
        input_channels: input channels when ``input_shape`` is not given.

    Returns:
        Single-output model (output layer ``l2norm``/``softmax``/``embedding``), or two outputs
        ``[embedding_output, prob]`` when ``num_classes`` is given.
    """
    net = build_network(embedding_dim, architecture, input_channels=input_channels, input_shape=input_shape)
    if net.output.shape[-1] != embedding_dim:
        raise SemembedError(
            f"architecture {architecture!r} outputs {net.output.shape[-1]}-d features (no top layer), "
            f"not embedding_dim={embedding_dim}; use its '-fc' variant (e.g. 'resnet-110-fc') for other sizes"
        )
    model = wrap_output(net, loss)
    if num_classes is not None:
        model = add_classifier(model, num_classes, cls_base)
    return model
