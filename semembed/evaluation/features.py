"""Read feature dumps and per-image label files.

Feature files:

* the reference's pickle ``{'feat': {i: vector}}`` (or a plain dict of image
  id → vector), read with the restricted unpickler; integer ids ``0..N-1``
  are put in id order, other ids keep the file's order and are returned;
* ``.npy`` (an ``N x d`` array);
* ``.npz`` with an array named ``feat`` or ``features``, or a single unnamed
  array (``arr_0``, as ``np.savez(path, x)`` writes); any other ``.npz`` is refused;
  ``--feature_dump``'s ``.npz`` also holds ``labels`` (one per row), which are
  then used when no label file is given, and may hold ``classes`` (the class
  ids that ``labels`` index).

Label files (one class id per feature row): a JSON list (or a JSON object
image id → class id for dumps with non-integer ids), ``.npy``, or text with
one id per line.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Hashable

import numpy as np

from semembed.errors import SemembedError
from semembed.io import load_pickle, read_text
from semembed.io.sniff import describe_file
from semembed.taxonomy import Hierarchy


#: the feature files every reader accepts, for its messages
FEATURE_FORMATS = ("a .npy array, an .npz with an array 'feat' or 'features' (as --feature_dump and 'semembed "
                   "embed' write) or the reference's pickle {'feat': {i: vector}}")


@dataclass
class FeatureFile:
    features: np.ndarray  # N x d
    ids: list[Hashable] | None  # image ids for dumps whose keys are not 0..N-1
    labels: np.ndarray | None = None  # labels stored with the features (.npz 'labels')
    classes: np.ndarray | None = None  # class ids that 'labels' index (.npz 'classes')


def _require(path: str) -> None:
    if not os.path.isfile(path):
        raise SemembedError(f"feature file not found: {path}")


def _stack_dict(path: str, feats: dict) -> FeatureFile:
    if not feats:
        raise SemembedError(f"{path}: the feature dict is empty")
    keys = list(feats.keys())
    try:
        vectors = [np.asarray(v).ravel() for v in feats.values()]
        sizes = {v.shape[0] for v in vectors}
        if len(sizes) != 1:
            raise SemembedError(f"{path}: feature vectors have different lengths {sorted(sizes)[:5]}")
        mat = np.stack(vectors)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, SemembedError):
            raise
        raise SemembedError(f"{path}: feature values are not numeric vectors ({exc})") from None
    if all(isinstance(k, (int, np.integer)) for k in keys):
        k = np.asarray(keys, dtype=np.int64)
        if np.array_equal(np.sort(k), np.arange(len(k))):
            return FeatureFile(mat[np.argsort(k)], None)
    return FeatureFile(mat, keys)


def load_features(path: str | os.PathLike) -> FeatureFile:
    """Read a feature file (see module docstring) as an ``N x d`` array."""
    path = os.fspath(path)
    _require(path)
    low = path.lower()
    try:
        if low.endswith(".npy"):
            arr = np.load(path, allow_pickle=False)
            out = FeatureFile(arr, None)
        elif low.endswith(".npz"):
            with np.load(path, allow_pickle=False) as z:
                names = [n for n in ("feat", "features") if n in z.files] or (
                    ["arr_0"] if z.files == ["arr_0"] else [])
                if not names:
                    raise SemembedError(f"{path}: expected an array named 'feat' or 'features' (or a single unnamed "
                                        f"array, 'arr_0' as np.savez(path, x) writes), found {z.files}")
                out = FeatureFile(z[names[0]], None)
                if "labels" in z.files and names[0] != "labels":
                    out.labels = z["labels"]
                    out.classes = z["classes"] if "classes" in z.files else None
        else:
            try:
                data = load_pickle(path)
            except SemembedError as exc:
                if "refusing" in str(exc):  # a pickle that would run code: say that, not "a text file"
                    raise
                raise SemembedError(f"{path} is {describe_file(path)}, not a feature file; expected {FEATURE_FORMATS}") \
                    from None
            if isinstance(data, dict) and "feat" in data:
                data = data["feat"]
            if isinstance(data, dict):
                out = _stack_dict(path, data)
            elif isinstance(data, np.ndarray):
                out = FeatureFile(data, None)
            else:
                raise SemembedError(
                    f"{path}: expected a dict {{'feat': {{i: vector}}}} or an array, found {type(data).__name__}"
                )
    except (OSError, ValueError, EOFError) as exc:
        if isinstance(exc, SemembedError):
            raise
        raise SemembedError(f"{path} is {describe_file(path)}: cannot read features ({exc}); expected "
                            f"{FEATURE_FORMATS}") from None
    if out.features.ndim != 2:
        raise SemembedError(f"{path}: features must be 2-D (images x dimensions), got shape {out.features.shape}")
    if not np.issubdtype(out.features.dtype, np.number):
        raise SemembedError(f"{path}: features are not numeric (dtype {out.features.dtype})")
    if out.labels is not None and (out.labels.ndim != 1 or len(out.labels) != len(out.features)):
        raise SemembedError(f"{path}: 'labels' has shape {out.labels.shape} but there are "
                            f"{len(out.features)} feature rows")
    return out


def stored_labels(ff: FeatureFile, path: str, hierarchy: Hierarchy | None,
                  classes: list[Hashable] | None) -> np.ndarray:
    """Class ids of the labels stored in a feature file (see :func:`load_features`).

    Labels index the file's ``classes`` when it has them, else ``classes``
    (``--classes_from``) when given; otherwise they are class ids.
    """
    from semembed.evaluation.labels import label_ids

    table = ff.classes.tolist() if ff.classes is not None else classes
    if table is not None:
        return _convert(label_ids(ff.labels, table, f"{path} (stored labels)").tolist(), hierarchy, path)
    return _convert(ff.labels.tolist(), hierarchy, path)


def _convert(tokens: list, hierarchy: Hierarchy | None, path: str) -> np.ndarray:
    """Class ids of the taxonomy's type (strings or integers)."""
    if hierarchy is not None and hierarchy.str_ids:
        return np.asarray([str(t) for t in tokens])
    try:
        return np.asarray(tokens, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        if hierarchy is None:
            return np.asarray([str(t) for t in tokens])
        bad = next(t for t in tokens if not _is_int(t))
        raise SemembedError(
            f"{path}: label {bad!r} is not an integer class id (use --str_ids for string ids)"
        ) from None


def _is_int(token) -> bool:
    try:
        int(token)
        return not isinstance(token, float) or float(token).is_integer()
    except (TypeError, ValueError):
        return False


def load_labels(
    path: str | os.PathLike, hierarchy: Hierarchy | None = None, ids: list[Hashable] | None = None
) -> np.ndarray:
    """Read one class id per feature row (JSON list/object, ``.npy`` or text lines).

    ``ids``: image ids of a feature dump; required order for a JSON object.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise SemembedError(f"label file not found: {path}")
    low = path.lower()
    if low.endswith(".npy"):
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise SemembedError(f"{path}: cannot read labels ({exc})") from None
        if arr.ndim != 1:
            raise SemembedError(f"{path}: expected a 1-D array of labels, got shape {arr.shape}")
        if np.issubdtype(arr.dtype, np.floating):
            if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
                raise SemembedError(f"{path}: labels must be class ids, found non-integer numbers")
            arr = arr.astype(np.int64)
        return _convert(arr.tolist(), hierarchy, path)
    text = read_text(path, "a label file (JSON list, .npy, or one class id per line)")
    if low.endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SemembedError(f"{path}: invalid JSON ({exc})") from None
        if isinstance(data, dict):
            if ids is None:
                raise SemembedError(f"{path}: a JSON object of labels needs a feature dump with image ids; give a list")
            keyed = {str(k): v for k, v in data.items()}
            missing = [i for i in ids if str(i) not in keyed]
            if missing:
                raise SemembedError(f"{path}: no label for image id(s) {missing[:5]}")
            data = [keyed[str(i)] for i in ids]
        if not isinstance(data, list) or any(isinstance(x, (list, dict)) for x in data):
            raise SemembedError(f"{path}: expected a JSON list with one class id per image")
        return _convert(data, hierarchy, path)
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    tokens = []
    for no, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            raise SemembedError(f"{path}:{no}: empty line; expected one class id per line")
        tokens.append(parts[0])
    for no, tok in enumerate(tokens, 1):
        if hierarchy is not None and not hierarchy.str_ids and not _is_int(tok):
            raise SemembedError(f"{path}:{no}: {tok!r} is not an integer class id (use --str_ids for string ids)")
    return _convert(tokens, hierarchy, path)
