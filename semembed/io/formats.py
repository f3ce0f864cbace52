"""Output formats chosen by file extension, checked before any work is done."""

from __future__ import annotations

import os

from semembed.errors import SemembedError

#: ``--feature_dump`` extensions (:func:`semembed.training.export.save_features`): .npz, or the reference's pickle
FEATURE_DUMP_FORMATS = {".npz": "NumPy .npz (feat, labels, classes)",
                        ".pickle": "the reference's pickle {'feat': {i: vector}}", ".pkl": "the same pickle"}


def check_feature_dump_path(path: str | os.PathLike) -> None:
    """Refuse a ``--feature_dump`` whose extension is not one of :data:`FEATURE_DUMP_FORMATS`.

    Raises:
        SemembedError: naming the path, its extension and the accepted ones.
    """
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in FEATURE_DUMP_FORMATS:
        raise SemembedError(f"--feature_dump {os.fspath(path)}: unknown extension {ext or '(none)'!r}; accepted: "
                            + "; ".join(f"{e} ({what})" for e, what in FEATURE_DUMP_FORMATS.items()))


def check_model_dump_path(path: str | os.PathLike, flag: str = "--model_dump") -> None:
    """Refuse a model or weight dump that is neither ``.keras`` (``--model_dump`` only) nor ``.h5`` / ``.hdf5``
    (``.weights.h5``: Keras 3 weights; other ``.h5``: the reference's Keras-2 layout).

    Raises:
        SemembedError: naming the flag, the path and the accepted extensions.
    """
    low = os.fspath(path).lower()
    ok = low.endswith((".h5", ".hdf5")) or (flag == "--model_dump" and low.endswith(".keras"))
    if not ok:
        accepted = ".keras (Keras 3) or .h5 (legacy Keras 2)" if flag == "--model_dump" else \
            ".weights.h5 (Keras 3) or .h5 (legacy Keras 2)"
        raise SemembedError(f"{flag} {os.fspath(path)}: use a name ending in {accepted}")
