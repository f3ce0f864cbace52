"""Fixtures for the model tests: an independent Keras-2 HDF5 writer."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

def write_keras2_h5(
    path: Path,
    layers: list[tuple[str, list[tuple[str, np.ndarray]]]],
    full_model: bool = False,
    model_config: dict | None = None,
    nested: dict[str, list[str]] | None = None,
) -> None:
    """Write the legacy Keras-2 layout as documented (written here with h5py only).

    ``layers``: (layer name, [(weight name like ``"conv1/kernel:0"``, array)]) in model order;
    layers with no weights are listed too. Full-model files put the weights under
    ``model_weights`` and carry ``model_config`` (JSON) and an ``optimizer_weights`` group.
    ``nested`` maps a group name to the inner layer names stored inside it (a sub-model).
    """
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.2.4"
        f.attrs["backend"] = b"tensorflow"
        if full_model:
            f.attrs["model_config"] = json.dumps(model_config or {"class_name": "Model", "config": {}}).encode()
            f.attrs["training_config"] = b"{}"
            f.create_group("optimizer_weights").create_dataset("SGD/iterations:0", data=np.int64(5))
            group = f.create_group("model_weights")
        else:
            group = f
        group.attrs["layer_names"] = np.array([name.encode() for name, _ in layers])
        for name, weights in layers:
            g = group.create_group(name)
            g.attrs["weight_names"] = np.array([w.encode() for w, _ in weights], dtype="S") if weights else np.array([], dtype="S1")
            for wname, arr in weights:
                g.create_dataset(wname, data=arr)


@pytest.fixture(scope="session")
def keras2_h5():
    """The independent legacy writer above, as a fixture (tests/<area> has no package)."""
    return write_keras2_h5
