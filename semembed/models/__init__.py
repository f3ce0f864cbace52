"""Architecture builders, output heads and loaders for the reference's pretrained Keras-2 files.

Everything here uses Keras layers and ``keras.ops`` only, so models build and run on the
TensorFlow and the JAX backends.
"""

from semembed.models.heads import EMBEDDING_LOSSES, add_classifier, build_embedding_model, wrap_output
from semembed.models.layers import ChannelPadding, L2Normalize
from semembed.models.legacy_h5 import load_reference_model, load_weights_by_name, load_weights_strict, save_legacy_h5
from semembed.models.loading import load_model_file
from semembed.models.weight_files import read_weight_file
from semembed.models.registry import ARCHITECTURES, EXTRA_ARCHITECTURES, build_network, parse_architecture

__all__ = [
    "ARCHITECTURES",
    "EXTRA_ARCHITECTURES",
    "EMBEDDING_LOSSES",
    "ChannelPadding",
    "L2Normalize",
    "add_classifier",
    "build_embedding_model",
    "build_network",
    "load_model_file",
    "load_reference_model",
    "load_weights_by_name",
    "load_weights_strict",
    "parse_architecture",
    "read_weight_file",
    "save_legacy_h5",
    "wrap_output",
]
