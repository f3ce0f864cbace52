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
