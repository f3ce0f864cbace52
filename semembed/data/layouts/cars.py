"""Stanford Cars (merged release): ``cars_annos.mat`` with ``relative_im_path``, ``class``, ``test``."""

from __future__ import annotations

import os

import numpy as np

from semembed.data.files import FileLists
from semembed.data.layouts.common import map_labels, require_file
from semembed.errors import SemembedError


def read_cars(root: str, classes: list[int] | None) -> FileLists:
    """Classes: sorted unique 1-based ``class`` values (or ``classes``); ``test`` 1 = test set."""
    from scipy.io import loadmat

    path = require_file(os.path.join(root, "cars_annos.mat"), "Stanford Cars annotations")
    try:
        annos = loadmat(path, squeeze_me=True)["annotations"]
        rel = np.atleast_1d(annos["relative_im_path"]).astype(str)
        cls = np.atleast_1d(annos["class"]).astype(np.int64)
        test = np.atleast_1d(annos["test"]).astype(np.int64)
    except (KeyError, ValueError) as exc:
        raise SemembedError(f"{path}: expected a struct array 'annotations' with fields relative_im_path, "
                            f"class and test ({exc})") from None
    if classes is None:
        classes = sorted(int(c) for c in np.unique(cls))
    labels = map_labels(cls, {c: i for i, c in enumerate(classes)})
    paths = np.array([os.path.join(root, p) for p in rel], dtype=object)
    keep = labels >= 0
    tr, te = keep & (test == 0), keep & (test != 0)
    return FileLists(list(classes), paths[tr].tolist(), labels[tr].tolist(), paths[te].tolist(), labels[te].tolist())
