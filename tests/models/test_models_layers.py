"""ChannelPadding and L2Normalize against NumPy, and their serialisation."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from semembed.errors import SemembedError
from semembed.models import ChannelPadding, L2Normalize


def test_channel_padding_matches_numpy_pad():
    x = np.random.default_rng(0).random((2, 3, 4, 5)).astype("float32")
    out = keras.ops.convert_to_numpy(ChannelPadding((2, 3))(x))
    np.testing.assert_array_equal(out, np.pad(x, [(0, 0), (0, 0), (0, 0), (2, 3)]))
    out = keras.ops.convert_to_numpy(ChannelPadding(1, data_format="channels_first")(x))
    np.testing.assert_array_equal(out, np.pad(x, [(0, 0), (1, 1), (0, 0), (0, 0)]))


def test_channel_padding_shapes_and_errors():
    layer = ChannelPadding((0, 5))
    assert layer.compute_output_shape((None, 8, 8, 3)) == (None, 8, 8, 8)
    assert layer.compute_output_shape((None, 8, 8, None)) == (None, 8, 8, None)
    with pytest.raises(SemembedError, match="padding"):
        ChannelPadding((1, 2, 3))
    with pytest.raises(SemembedError, match="padding"):
        ChannelPadding(-1)


def test_channel_padding_config_and_legacy_name():
    layer = ChannelPadding((1, 2), name="pad2-1")
    clone = ChannelPadding.from_config(layer.get_config())
    assert clone.padding == (1, 2) and clone.data_format == "channels_last" and clone.name == "pad2-1"
    # A Keras-2 model config names the class without a package.
    legacy = {"class_name": "ChannelPadding", "config": {"padding": [3, 4], "data_format": "channels_last", "name": "pad3-1"}}
    restored = keras.layers.deserialize(legacy)
    assert isinstance(restored, ChannelPadding) and restored.padding == (3, 4)
    assert keras.saving.get_registered_name(ChannelPadding) == "semembed>ChannelPadding"


def test_l2normalize_matches_definition():
    x = np.random.default_rng(1).normal(size=(5, 7)).astype("float32")
    x[2] = 0.0
    out = keras.ops.convert_to_numpy(L2Normalize()(x))
    expected = x / np.sqrt(np.maximum((x.astype(np.float64) ** 2).sum(-1, keepdims=True), 1e-12))
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(out[2], 0.0)
    np.testing.assert_allclose(np.linalg.norm(out[[0, 1, 3, 4]], axis=-1), 1.0, rtol=1e-6)


def test_l2normalize_config_round_trip():
    layer = L2Normalize(epsilon=1e-6, name="l2norm")
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(clone, L2Normalize) and clone.epsilon == 1e-6 and clone.name == "l2norm"
