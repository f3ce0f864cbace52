"""Custom layers shared by the architectures: channel zero-padding and L2 normalisation.

Both are registered Keras serialisables (never ``Lambda`` layers), so models that
contain them save to ``.keras`` and load again in safe mode on every backend.
"""

from __future__ import annotations

import keras
from keras import ops

from semembed.errors import SemembedError


def _normalize_padding(padding) -> tuple[int, int]:
    if isinstance(padding, int):
        pair = (padding, padding)
    else:
        pair = tuple(int(p) for p in padding)
    if len(pair) != 2 or min(pair) < 0:
        raise SemembedError(
            f"ChannelPadding: padding must be a non-negative int or a pair (before, after). Received: padding={padding!r}"
        )
    return pair  # type: ignore[return-value]


@keras.saving.register_keras_serializable(package="semembed")
class ChannelPadding(keras.layers.Layer):
    """Zero-pads the channel axis by ``(before, after)`` channels (option-A ResNet shortcuts).

    Args:
        padding: int ``p`` (meaning ``(p, p)``) or a pair ``(before, after)``.
        data_format: ``"channels_last"`` (pad the last axis) or ``"channels_first"``
            (pad axis 1); ``None`` uses ``keras.config.image_data_format()``.
    """

    def __init__(self, padding: int | tuple[int, int] = 1, data_format: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.padding = _normalize_padding(padding)
        self.data_format = data_format or keras.config.image_data_format()
        if self.data_format not in ("channels_last", "channels_first"):
            raise SemembedError(
                f"ChannelPadding: data_format must be 'channels_last' or 'channels_first'. Received: data_format={data_format!r}"
            )
        self.input_spec = keras.layers.InputSpec(ndim=4)

    @property
    def _axis(self) -> int:
        return 1 if self.data_format == "channels_first" else 3

    def call(self, inputs):
        pattern = [[0, 0]] * 4
        pattern[self._axis] = list(self.padding)
        return ops.pad(inputs, pattern)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        if shape[self._axis] is not None:
            shape[self._axis] = shape[self._axis] + self.padding[0] + self.padding[1]
        return tuple(shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"padding": list(self.padding), "data_format": self.data_format})
        return config


@keras.saving.register_keras_serializable(package="semembed")
class L2Normalize(keras.layers.Layer):
    """Divides each vector by its L2 norm along the last axis: ``x / sqrt(max(sum x², eps))``.

    Same formula as ``tf.nn.l2_normalize`` used by the reference's ``l2norm`` Lambda,
    so the output of a zero vector is zero rather than NaN.

    Args:
        epsilon: lower bound of the squared norm (1e-12 as in the reference).
    """

    def __init__(self, epsilon: float = 1e-12, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, inputs):
        squared = ops.sum(ops.square(inputs), axis=-1, keepdims=True)
        return inputs * ops.rsqrt(ops.maximum(squared, ops.cast(self.epsilon, inputs.dtype)))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config["epsilon"] = self.epsilon
        return config


# Keras-2 model files name the class without a package ("ChannelPadding"); resolve that too.
keras.saving.get_custom_objects().setdefault("ChannelPadding", ChannelPadding)
