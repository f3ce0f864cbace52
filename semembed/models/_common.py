"""Small helpers shared by the builders: input layers, top-layer naming, regularisers."""

from __future__ import annotations

import keras

from semembed.errors import SemembedError


def image_input(input_shape: tuple, name: str = "input_1") -> keras.KerasTensor:
    """A channels-last image input; checks that ``input_shape`` is (H, W, C)."""
    shape = tuple(input_shape)
    if len(shape) != 3 or shape[-1] is None:
        raise SemembedError(f"input_shape must be (height, width, channels) with known channels. Received: input_shape={input_shape!r}")
    return keras.Input(shape=shape, name=name)


def top_name(activation: str | None) -> str:
    """The reference names the final Dense ``prob`` when it is a softmax, else ``embedding``."""
    return "prob" if activation == "softmax" else "embedding"


def l2(weight: float | None):
    """``keras.regularizers.L2(weight)`` (λ·Σw², as Keras 2's ``l2``), or ``None`` for no decay."""
    return keras.regularizers.L2(weight) if weight else None
