"""Map per-image labels to rows of a class list, checking them against the taxonomy."""

from __future__ import annotations

from typing import Hashable, Sequence

import numpy as np

from semembed.errors import SemembedError
from semembed.taxonomy import Hierarchy


def label_ids(labels: Sequence, classes: Sequence | None, name: str = "labels") -> np.ndarray:
    """Class id of every image as a NumPy array.

    With ``classes`` the labels are integer indices into it (the dataset's
    label order, e.g. a class embedding's ``ind2label``); otherwise they are
    class ids of the taxonomy already.
    """
    lab = np.asarray(labels)
    if lab.ndim != 1:
        raise SemembedError(f"{name}: expected one label per image (1-D), got shape {lab.shape}")
    if classes is None:
        return lab
    if lab.size and not np.issubdtype(lab.dtype, np.integer):
        raise SemembedError(
            f"{name}: with a class list the labels must be integer indices into it, got dtype {lab.dtype}"
        )
    bad = (lab < 0) | (lab >= len(classes))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SemembedError(
            f"{name}: label index {int(lab[i])} of image {i} is outside the {len(classes)} classes"
        )
    table = np.empty(len(classes), dtype=object)
    table[:] = list(classes)
    out = table[lab]
    try:  # keep a plain dtype when the ids allow it (faster unique)
        return np.asarray(out.tolist())
    except (TypeError, ValueError):
        return out


def encode_labels(
    hierarchy: Hierarchy, *label_arrays: np.ndarray, names: Sequence[str] = ()
) -> tuple[list[Hashable], list[np.ndarray]]:
    """Distinct class ids (sorted) of all arrays and each array's row indices into them.

    Unknown ids are an error naming them and the array they came from.
    """
    sizes = [len(a) for a in label_arrays]
    allids = np.concatenate([np.asarray(a) for a in label_arrays]) if label_arrays else np.array([])
    try:
        uniq, inv = np.unique(allids, return_inverse=True)
    except TypeError:
        raise SemembedError("labels mix incomparable types (e.g. numbers and strings)") from None
    ids: list[Hashable] = [hierarchy.parse_id(x) if isinstance(x, str) and not hierarchy.str_ids else x for x in uniq.tolist()]
    if hierarchy.str_ids:
        ids = [str(x) for x in ids]
    missing = [x for x in ids if x not in hierarchy.index]
    if missing:
        which = []
        for nm, arr in zip(names or [f"labels {i}" for i in range(len(label_arrays))], label_arrays):
            if np.isin(np.asarray(arr).astype(str), np.asarray(missing).astype(str)).any():
                which.append(nm)
        shown = ", ".join(map(repr, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise SemembedError(
            f"{' and '.join(which) or 'labels'}: {len(missing)} class id(s) not in taxonomy "
            f"{hierarchy.source}: {shown}"
        )
    if len(set(ids)) != len(ids):  # e.g. '3' and 3 both given for an integer taxonomy
        raise SemembedError("labels name the same class in two spellings (e.g. 3 and '3')")
    parts = np.split(inv.ravel().astype(np.intp), np.cumsum(sizes)[:-1])
    return ids, parts
