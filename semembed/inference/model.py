"""Load any model file for inference: the network, its preprocessing, class ids, which outputs to use.

Formats (``semembed.models.load_model_file``): our ``.keras`` models, the reference's
released Keras-2 ``.h5`` files and ``.h5`` / ``.weights.h5`` dumps (rebuilt from
``architecture``; the dumps of tasks with a head of their own by that task,
:mod:`semembed.training.rebuild`).  Our models carry their preprocessing and class ids
(``semembed.models.metadata``); for the reference's, give a preset
(``Preprocessing.preset``) or a JSON file.

Outputs: *features* are the model's first output, unless that is the ``prob``
layer (a plain classifier: then ``prob``'s input, the penultimate features, as
the reference's ``learn_classifier`` dumps), or the output of ``layer`` when
given.  *Probabilities* are the output of a layer named ``prob`` when there is one.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from semembed.data.preprocessing import Preprocessing
from semembed.errors import SemembedError


@dataclass
class InferenceModel:
    """A network ready to run on images.

    Attributes:
        network: ``keras.Model`` from the image input to ``[features, probabilities]`` (the latter
            only when ``has_probabilities``).
        preprocessing: how images are prepared for it.
        classes: class ids of the probability columns (from the model file; None when unknown).
        path: the file it came from.
        metadata: everything stored with the model (``{}`` for the reference's files).
    """

    network: object
    preprocessing: Preprocessing
    classes: list | None
    path: str
    has_probabilities: bool
    metadata: dict = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """What embedding space the features are in: :func:`model_fingerprint` of the feature network."""
        return model_fingerprint(self.network)

    @property
    def feature_dim(self) -> int:
        return int(self.network.outputs[0].shape[-1])

    def run(self, images):
        """``(features, probabilities or None)`` of a batch of preprocessed images (tensors)."""
        out = self.network(images, training=False)
        if self.has_probabilities:
            return out[0], out[1]
        return (out[0] if isinstance(out, (list, tuple)) else out), None


def _layer_output(model, layer: str | int):
    try:
        index = int(layer)
    except (TypeError, ValueError):
        try:
            return model.get_layer(str(layer)).output
        except ValueError:
            names = ", ".join(l.name for l in model.layers[-6:])
            raise SemembedError(f"--layer {layer!r}: the model has no such layer (its last layers: {names})") from None
    if not -len(model.layers) <= index < len(model.layers):
        raise SemembedError(f"--layer {index}: the model has {len(model.layers)} layers")
    return model.layers[index].output


def _find_layer(model, name: str):
    for layer in model.layers:
        if layer.name == name:
            return layer
    return None


def split_outputs(model, layer: str | int | None = None):
    """``(features tensor, probabilities tensor or None)`` of a loaded Keras model (see module docstring)."""
    prob_layer = _find_layer(model, "prob")
    prob = prob_layer.output if prob_layer is not None else None
    if layer is not None:
        return _layer_output(model, layer), prob
    first = model.outputs[0]
    if prob is not None and first is prob:
        return prob_layer.input, prob
    return first, prob


def load_inference_model(
    path: str | os.PathLike,
    *,
    architecture: str | None = None,
    preprocessing: Preprocessing | str | None = None,
    layer: str | int | None = None,
    embedding_dim: int | None = None,
    num_classes: int | None = None,
    crop_size: int | None = None,
    target_size: int | None = None,
    check_size: bool = True,
) -> InferenceModel:
    """Load ``path`` for inference.

    Args:
        path: ``.keras``, legacy ``.h5`` or ``.weights.h5``.
        architecture: network of HDF5 files (default: the one stored with our dumps).
        preprocessing: overrides the stored one: a :class:`Preprocessing`, a preset name
            (``cifar100``, ``nabirds``, ``cub``, ``ilsvrc``) or a JSON file. Required for files
            without stored preprocessing (the reference's).
        layer: name or index of the layer whose output are the features.
        embedding_dim, num_classes: sizes of rebuilt HDF5 networks (default: read from the file).
        crop_size, target_size: override the stored sizes (e.g. a fine-tuned 448-px model).
        check_size: refuse a network whose fixed input size differs from the preprocessing's crop
            (callers that check it themselves, with their own flags in the message, pass False).

    Raises:
        SemembedError: a missing/unreadable file, no preprocessing known, a wrong layer.
    """
    from semembed.models import load_model_file
    from semembed.models.metadata import read_metadata

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise SemembedError(f"model file not found: {path}")
    from semembed.io.sniff import WEIGHT_FORMATS, describe_file, looks_like_weights

    if not looks_like_weights(path):
        raise SemembedError(f"{path} is {describe_file(path)}, not a model file; expected {WEIGHT_FORMATS}")
    meta = read_metadata(path)
    if isinstance(preprocessing, str):
        prep = Preprocessing.parse(preprocessing)
    elif preprocessing is not None:
        prep = preprocessing
    elif meta.get("preprocessing"):
        prep = Preprocessing.from_dict(meta["preprocessing"], f"{path} (stored preprocessing)")
    else:
        raise SemembedError(
            f"{path} carries no preprocessing (a model of the reference toolkit?); give --preprocessing "
            "cifar100|nabirds|nabirds-large|cub|ilsvrc|ilsvrc-large or a JSON file with mean, std, crop_size")
    if crop_size is not None or target_size is not None:
        prep = prep.replace(crop_size=crop_size, target_size=target_size)
    architecture = architecture or meta.get("architecture")
    classes = meta.get("classes")
    from semembed.training.rebuild import TASK_BUILT, rebuild_task_network

    if meta.get("task") in TASK_BUILT and architecture and not zipfile.is_zipfile(path):  # a head of its own
        model = rebuild_task_network(path, meta, architecture, prep.input_shape)
    else:
        model = load_model_file(path, architecture, num_classes=num_classes, embedding_dim=embedding_dim,
                                input_shape=prep.input_shape, loss=meta.get("loss") or "inv_corr",
                                default_dim=len(classes) if classes else None)
    import keras

    features, prob = split_outputs(model, layer)
    outputs = [features] + ([prob] if prob is not None else [])
    network = keras.Model(model.inputs[0], outputs)
    want = tuple(network.inputs[0].shape[1:4])
    if want[2] is not None and want[2] != prep.channels:
        raise SemembedError(f"{path} takes {want[2]}-channel images but its preprocessing gives {prep.channels}")
    if check_size and None not in want[:2] and want[:2] != tuple(prep.crop_size):
        raise SemembedError(f"{path} takes {want[0]}x{want[1]} images but the preprocessing crops "
                            f"{prep.crop_size[0]}x{prep.crop_size[1]}; set --crop_size {want[0]}")
    if prob is not None and classes is not None and int(prob.shape[-1]) != len(classes):
        classes = None
    return InferenceModel(network, prep, list(classes) if classes is not None else None, path, prob is not None, meta)


def model_fingerprint(network) -> str:
    """SHA-256 (first 16 hex digits) of the feature layer's name and the weights (shapes and values, in order)
    of the network that computes the features: stored with embeddings and indexes, so that ``search`` refuses queries embedded by another
    model.  The same weights give the same fingerprint whichever file format they were loaded from."""
    import hashlib

    h = hashlib.sha256()
    history = getattr(network.outputs[0], "_keras_history", None)  # which layer gives the features (--layer)
    h.update(f"{getattr(history[0], 'name', '') if history else ''}:{network.outputs[0].shape}".encode())
    for w in network.weights:
        a = np.ascontiguousarray(np.asarray(w), dtype=np.float32)
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def class_names_for(model: InferenceModel, n: int) -> list:
    """Class ids of the probability columns: the stored ones, else 0..n-1."""
    return list(model.classes) if model.classes is not None else list(np.arange(n).tolist())
