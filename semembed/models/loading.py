"""Load any model file this toolkit (or the reference) writes, for the programs that take ``--model``.

* ``.keras`` archives (``learn_image_embeddings --model_dump m.keras``, ``--snapshot_best``) load as
  they are, with this package's custom layers and losses registered.
* HDF5 files hold weights only as far as we are concerned: the legacy Keras-2 layout (the
  reference's released models, ``--model_dump m.h5``, ``--weight_dump m.h5``) and Keras 3's
  ``.weights.h5`` (``--weight_dump m.weights.h5``). The network is rebuilt from ``architecture``
  and the weights are assigned by layer name; the ``prob`` head and the embedding size are read
  from the file when not given. A stored model config is never executed.
"""

from __future__ import annotations

import os
import zipfile

from semembed.errors import SemembedError


def _dense_units(file_layers, name: str) -> int | None:
    for layer in file_layers:
        if layer.name == name and layer.arrays:
            return int(layer.arrays[-1].shape[-1])
    return None


def load_model_file(
    path: str | os.PathLike,
    architecture: str | None = None,
    num_classes: int | None = None,
    embedding_dim: int | None = None,
    input_shape: tuple | None = None,
    loss: str = "inv_corr",
    default_dim: int | None = None,
):
    """The model stored in ``path`` (``.keras``, legacy ``.h5`` or ``.weights.h5``).

    Args:
        path: the model or weight file.
        architecture: network to rebuild for HDF5 files (required for them, ignored for ``.keras``).
        num_classes: classes of the ``prob`` head; default: taken from the file's ``prob`` layer
            (no head when the file has none).
        embedding_dim: D; default: the file's ``embedding`` layer's units, else ``default_dim``.
        input_shape: (H, W, C) of the images, for rebuilt networks.
        loss: output wrapper of rebuilt networks (``inv_corr`` → ``l2norm``, as the released models).

    Raises:
        SemembedError: a missing or unreadable file, an HDF5 file without ``architecture``, or
        weights that do not fit the rebuilt network (listed).
    """
    import keras

    import semembed
    from semembed.models.legacy_h5 import load_reference_model
    from semembed.models.weight_files import read_weight_file

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise SemembedError(f"model file not found: {path}")
    if zipfile.is_zipfile(path):
        semembed.register_keras_objects()
        try:
            return keras.saving.load_model(path, compile=False)
        except (TypeError, ValueError) as exc:
            raise SemembedError(f"{path}: cannot load this .keras model ({str(exc).splitlines()[0]})") from None
    file_layers = read_weight_file(path)  # SemembedError for files that are not Keras weights
    if not architecture:
        names = ", ".join(layer.name for layer in file_layers[-3:])
        raise SemembedError(
            f"{path} holds weights only (last layers: {names}); give --architecture to rebuild the network "
            "(or use the .keras file that --model_dump writes)"
        )
    if num_classes is None:
        num_classes = _dense_units(file_layers, "prob")
    if embedding_dim is None:
        embedding_dim = _dense_units(file_layers, "embedding") or default_dim or num_classes
    if embedding_dim is None:
        raise SemembedError(f"{path}: give the embedding size (--embedding_dim); the file has no 'embedding' layer")
    return load_reference_model(path, architecture, num_classes, embedding_dim, loss=loss, input_shape=input_shape)
