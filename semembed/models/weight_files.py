"""Read weight files into a flat, ordered list of ``(layer name, [(variable name, array)])``.

Understands the Keras-2 legacy HDF5 layout (full-model files with weights under
``model_weights`` and weights-only files; ``layer_names``/``weight_names`` attributes, datasets
named ``layer/kernel:0``; nested sub-models flattened), Keras-3 ``.weights.h5`` files and
``.keras`` archives. Never deserialises a stored model config, so no stored Lambda runs.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass, field

import h5py
import numpy as np

from semembed.errors import SemembedError
from semembed.io.sniff import WEIGHT_FORMATS, describe_file, looks_like_weights


@dataclass
class FileLayer:
    """One layer's weights as stored: variable names (``None`` when the file has none) and arrays."""

    name: str
    var_names: list[str | None] = field(default_factory=list)
    arrays: list[np.ndarray] = field(default_factory=list)

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(tuple(a.shape) for a in self.arrays)


def _decode(value) -> str:
    return value.decode("utf8") if isinstance(value, (bytes, np.bytes_)) else str(value)


def read_str_list_attr(group: h5py.Group, name: str) -> list[str]:
    """A list-of-strings attribute, including Keras 2's chunked form (``name0``, ``name1``, …)."""
    if name in group.attrs:
        return [_decode(v) for v in np.atleast_1d(group.attrs[name])]
    values: list[str] = []
    chunk = 0
    while f"{name}{chunk}" in group.attrs:
        values.extend(_decode(v) for v in np.atleast_1d(group.attrs[f"{name}{chunk}"]))
        chunk += 1
    return values


def _split_weight_name(weight_name: str, layer_name: str) -> tuple[str, str]:
    """``"res2a_branch2a/kernel:0"`` → (``"res2a_branch2a"``, ``"kernel"``)."""
    parts = weight_name.split("/")
    var = parts[-1].split(":")[0]
    owner = parts[-2] if len(parts) >= 2 else layer_name
    return owner, var


def _read_legacy(root: h5py.Group, path: str) -> list[FileLayer]:
    group = root["model_weights"] if "model_weights" in root else root
    layer_names = read_str_list_attr(group, "layer_names")
    layers: list[FileLayer] = []
    for lname in layer_names:
        if lname not in group:
            raise SemembedError(f"{path}: layer {lname!r} is listed in 'layer_names' but has no group")
        lgroup = group[lname]
        weight_names = read_str_list_attr(lgroup, "weight_names")
        if not weight_names:
            continue
        owners = [_split_weight_name(w, lname) for w in weight_names]
        nested = any(owner != lname for owner, _ in owners) and len({o for o, _ in owners}) > 1
        for wname, (owner, var) in zip(weight_names, owners):
            if wname not in lgroup:
                raise SemembedError(f"{path}: weight {wname!r} of layer {lname!r} is listed in 'weight_names' but missing")
            target = owner if nested else lname
            if not layers or layers[-1].name != target:
                layers.append(FileLayer(target))
            layers[-1].var_names.append(var)
            layers[-1].arrays.append(np.asarray(lgroup[wname][()]))
    return layers


def _natural_key(key: str) -> tuple[str, int]:
    """Keras 3 keys are ``<class>``, ``<class>_1``, … in model order; h5py lists them alphabetically."""
    stem, _, suffix = key.rpartition("_")
    return (stem, int(suffix)) if stem and suffix.isdigit() else (key, 0)


def _read_keras3(group: h5py.Group, layers: list[FileLayer]) -> list[FileLayer]:
    """Keras-3 layout: ``layers/<key>/vars/<i>`` with the layer name in ``vars.attrs['name']``."""
    for key in sorted(group.get("layers", {}), key=_natural_key):
        sub = group["layers"][key]
        if "vars" in sub and len(sub["vars"]):
            name = _decode(sub["vars"].attrs.get("name", key))
            idx = sorted(sub["vars"], key=int)
            layers.append(FileLayer(name, [None] * len(idx), [np.asarray(sub["vars"][i][()]) for i in idx]))
        if "layers" in sub:
            _read_keras3(sub, layers)
    return layers


def _read_h5(handle, path: str) -> list[FileLayer]:
    with h5py.File(handle, "r") as f:
        if "layer_names" in f.attrs or "layer_names0" in f.attrs or "model_weights" in f:
            return _read_legacy(f, path)
        if "layers" in f:
            return _read_keras3(f, [])
    raise SemembedError(f"{path}: not a Keras weight file (no 'model_weights', 'layer_names' or 'layers' entry)")


def read_weight_file(path: str | os.PathLike) -> list[FileLayer]:
    """Layers that carry weights, in file order, from a legacy ``.h5``, a ``.weights.h5`` or a ``.keras`` file."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise SemembedError(f"weight file not found: {path}")
    if not looks_like_weights(path):
        raise SemembedError(f"{path} is {describe_file(path)}, not a weight file; expected {WEIGHT_FORMATS}")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return _read_h5(io.BytesIO(archive.read("model.weights.h5")), path)
    try:
        return _read_h5(path, path)
    except OSError as exc:
        raise SemembedError(f"{path}: cannot read as HDF5 ({exc})") from None
