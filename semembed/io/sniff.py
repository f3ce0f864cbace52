"""What a file is, from its first bytes: for errors that say what was given and what was expected.

``describe_file("emb.npz")`` → "a NumPy .npz archive with the arrays embedding, ind2label (a class
embedding, as compute_class_embedding writes)".  Cheap (reads a few kilobytes or a zip directory), no
TensorFlow, no Keras.
"""

from __future__ import annotations

import os
import zipfile

_HDF5 = b"\x89HDF\r\n\x1a\n"
_NPY = b"\x93NUMPY"
_IMAGES = {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image", b"BM": "a BMP image"}
#: the arrays of files the project writes, and what they are
_NPZ_KINDS = (
    ({"meta"}, "a semembed training snapshot"),
    ({"embedding", "ind2label"}, "a class embedding, as compute_class_embedding writes"),
    ({"feat"}, "a feature dump"),
    ({"feat", "paths"}, "embeddings of image files, as 'semembed embed' writes"),
)


def _few(names: list[str], n: int = 6) -> str:
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")


def _zip(path: str) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile) as exc:
        return f"a damaged zip archive ({exc})"
    if "model.weights.h5" in names:
        return "a .keras model archive"
    if names and all(n.endswith(".npy") for n in names):
        arrays = [n[: -len(".npy")] for n in names]
        kind = next((what for keys, what in reversed(_NPZ_KINDS) if keys <= set(arrays)), None)
        return f"a NumPy .npz archive with the arrays {_few(arrays)}" + (f" ({kind})" if kind else "")
    if "config.json" in names:
        return "a zip archive with config.json but no model.weights.h5 (an incomplete .keras file?)"
    return f"a zip archive (entries: {_few(names)})"


def describe_file(path: str | os.PathLike) -> str:
    """A short phrase naming what ``path`` holds ("an HDF5 file", "a Python pickle", "a JSON or text file
    starting '[3, 4'", ...); "a missing file" when it does not exist."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return "a folder"
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except FileNotFoundError:
        return "a missing file"
    except OSError as exc:
        return f"an unreadable file ({exc.strerror or exc})"
    if not head:
        return "an empty file"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return _zip(path)
    if head.startswith(_HDF5):
        return "an HDF5 file"
    if head.startswith(_NPY):
        return "a NumPy .npy array"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a Python pickle"
    for magic, what in _IMAGES.items():
        if head.startswith(magic):
            return what
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        return "a binary file of unknown format"
    start = text.lstrip()
    first = start.splitlines()[0][:40] if start else ""
    kind = "a JSON or text file" if start[:1] in "[{" else "a text file"
    return f"{kind} starting {first!r}" if first else "a text file of blank lines"


def looks_like_weights(path: str | os.PathLike) -> bool:
    """Whether ``path`` can hold Keras weights: HDF5 (``.h5``, ``.weights.h5``) or a ``.keras`` archive."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return False
    if head.startswith(_HDF5):
        return True
    if head.startswith(b"PK"):
        return describe_file(path) == "a .keras model archive"
    return False


def is_snapshot_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an ``.npz`` archive with a ``meta`` array (a semembed training snapshot)."""
    try:
        with zipfile.ZipFile(os.fspath(path)) as archive:
            return "meta.npy" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


#: what the programs that read weights accept, for their messages
WEIGHT_FORMATS = "a .keras model, a Keras-3 .weights.h5 or a Keras-2 .h5 (the reference's or our --model_dump/--weight_dump)"
