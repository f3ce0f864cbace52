"""Read the reference toolkit's pickles without executing arbitrary code.

Class-embedding files (``embedding``/``ind2label``/``label2ind``) and feature
dumps (``{'feat': {i: vector}}``) contain only NumPy arrays, lists, dicts,
numbers and strings.  :func:`load_pickle` allows exactly the globals needed to
rebuild those (under NumPy 1 and NumPy 2 module names) and refuses everything
else with a clear error.
"""

from __future__ import annotations

import io
import os
import pickle
from typing import Any

import numpy as np

from semembed.errors import SemembedError

_NUMPY2 = np.lib.NumpyVersion(np.__version__) >= "2.0.0"

# (module, name) pairs a plain NumPy/builtin pickle may reference.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "complex"),
    ("builtins", "slice"),
    ("builtins", "bytearray"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, source: str):
        super().__init__(file, encoding="latin1")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            if _NUMPY2 and module.startswith("numpy.core."):
                module = "numpy._core." + module[len("numpy.core."):]  # NumPy 1 files under NumPy 2
            elif not _NUMPY2 and module.startswith("numpy._core."):
                module = "numpy.core." + module[len("numpy._core."):]  # NumPy 2 files under NumPy 1
            return super().find_class(module, name)
        raise SemembedError(
            f"{self._source}: refusing to unpickle {module}.{name}: this file holds more than the "
            "plain arrays, lists, dicts, numbers and strings of an embedding or feature file "
            "(pickles can execute code; convert it to .npz if you trust it)"
        )


def loads_pickle(data: bytes, source: str = "<bytes>") -> Any:
    """Unpickle ``data`` with the restricted unpickler (``source`` names it in errors)."""
    try:
        return _RestrictedUnpickler(io.BytesIO(data), source).load()
    except SemembedError:
        raise
    except Exception as exc:  # truncated, not a pickle, ...
        raise SemembedError(f"{source}: not a readable pickle file ({type(exc).__name__}: {exc})") from None


def load_pickle(path: str | os.PathLike) -> Any:
    """Read a pickle file that may only contain plain data (see module docstring)."""
    with open(path, "rb") as f:
        data = f.read()
    return loads_pickle(data, source=os.fspath(path))
