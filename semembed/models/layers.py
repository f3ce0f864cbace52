"""Custom layers shared by the architectures: channel zero-padding, L2 normalisation, subspace norms.

All are registered Keras serialisables (never ``Lambda`` layers), so models that
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


def subspace_norms(features, subspace):
    """(B, C) norms ‖P_c x‖ = sqrt(Σ_j subspace[c, j]·x_j² + 1e-12) of the projections of ``features``
    (B, D) onto C axis-aligned subspaces given by the 0/1 rows of ``subspace`` (C, D): Hier-COS's class
    scores (Sani & Anand 2025, §3)."""
    x = ops.cast(features, "float32")
    return ops.sqrt(ops.matmul(ops.square(x), ops.transpose(ops.cast(subspace, "float32"))) + 1e-12)


@keras.saving.register_keras_serializable(package="semembed")
class SubspaceNorms(keras.layers.Layer):
    """Scores ``subspace_norms(x, S)`` with a fixed (non-trainable) C x D matrix ``S`` of axis memberships.

    Hier-COS models end in it (followed by a softmax named ``prob``), so that ``predict`` and
    ``evaluate_classification_accuracy --layer prob`` classify with them as with any classifier.

    Args:
        num_classes: C, the number of subspaces.
    """

    def __init__(self, num_classes: int, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)

    def build(self, input_shape):
        self.subspace = self.add_weight(shape=(self.num_classes, int(input_shape[-1])), initializer="zeros",
                                        trainable=False, name="subspace")

    def call(self, inputs):
        return subspace_norms(inputs, self.subspace)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self) -> dict:
        config = super().get_config()
        config["num_classes"] = self.num_classes
        return config


# Keras-2 model files name the class without a package ("ChannelPadding"); resolve that too.
keras.saving.get_custom_objects().setdefault("ChannelPadding", ChannelPadding)
