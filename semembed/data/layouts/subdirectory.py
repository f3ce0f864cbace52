"""Images in per-class sub-directories with train/test list files (MIT67, UCMLU, RESISC45)."""

from __future__ import annotations

import os

from semembed.data.files import FileLists
from semembed.data.layouts.common import require_dir, require_file
from semembed.io.text import read_lines


def _read_list(path: str, img_dir: str, class_indices: dict) -> tuple[list[str], list[int]]:
    """Lines ``<class>/<file>`` (relative to ``img_dir``); lines of other classes are skipped."""
    files, labels = [], []
    for line in read_lines(require_file(path, "image list"), "an image list ('<class>/<file>' per line)"):
        rel = line.strip()
        if rel and os.path.dirname(rel) in class_indices:
            files.append(os.path.join(img_dir, rel))
            labels.append(class_indices[os.path.dirname(rel)])
    return files, labels


def read_subdirectory(root: str, classes: list[str] | None, img_dir: str = ".", train_list: str = "train.txt",
                      test_list: str = "test.txt") -> FileLists:
    """Classes: sorted non-hidden sub-directories of ``img_dir`` (or ``classes`` in the given order)."""
    img_dir = img_dir if os.path.isabs(img_dir) else os.path.join(root, img_dir)
    require_dir(img_dir, "image directory")
    if classes is None:
        classes = sorted(d for d in os.listdir(img_dir) if not d.startswith(".") and os.path.isdir(os.path.join(img_dir, d)))
    class_indices = {c: i for i, c in enumerate(classes)}
    train_files, train_labels = _read_list(os.path.join(root, train_list), img_dir, class_indices)
    test_files, test_labels = _read_list(os.path.join(root, test_list), img_dir, class_indices)
    return FileLists(list(classes), train_files, train_labels, test_files, test_labels)
