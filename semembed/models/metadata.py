"""What we store beside a model's weights: its preprocessing, class ids, task (a small JSON dict).

* ``.keras`` archives: an extra zip entry ``semembed.json`` (Keras ignores entries it does not know).
* HDF5 (legacy ``.h5`` layout, ``.weights.h5``): a root attribute ``semembed_metadata`` holding the
  JSON text (Keras 2 and Keras 3 readers ignore unknown attributes).

Files without it (the reference's released models) give ``{}``.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any

from semembed.errors import SemembedError

ZIP_ENTRY = "semembed.json"
H5_ATTRIBUTE = "semembed_metadata"


def _plain(value):
    """JSON-safe copies of NumPy scalars and arrays."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_metadata(path: str | os.PathLike, metadata: dict[str, Any]) -> None:
    """Add ``metadata`` to a model file written a moment ago (call it on the temporary file)."""
    path = os.fspath(path)
    text = json.dumps(_plain(metadata), sort_keys=True)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path, "a") as zf:
            if ZIP_ENTRY in zf.namelist():
                raise SemembedError(f"{path}: already holds {ZIP_ENTRY}")
            zf.writestr(ZIP_ENTRY, text)
        return
    import h5py

    with h5py.File(path, "a") as f:
        f.attrs[H5_ATTRIBUTE] = text


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The stored metadata of a model file, ``{}`` when it has none.

    Raises:
        SemembedError: the entry exists but is not valid JSON.
    """
    path = os.fspath(path)
    text = None
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            if ZIP_ENTRY in zf.namelist():
                text = zf.read(ZIP_ENTRY).decode("utf-8")
    else:
        import h5py

        try:
            with h5py.File(path, "r") as f:
                raw = f.attrs.get(H5_ATTRIBUTE)
        except OSError:
            return {}
        if raw is not None:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
    if text is None:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SemembedError(f"{path}: its stored semembed metadata is not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise SemembedError(f"{path}: its stored semembed metadata is not a JSON object")
    return data
