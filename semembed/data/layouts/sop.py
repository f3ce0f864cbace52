"""Stanford Online Products (Oh Song et al. 2016): ``Ebay_train.txt`` / ``Ebay_test.txt`` (METRIC_LEARNING.md §11).

Each list: a header line (``image_id class_id super_class_id path``), then
whitespace-separated rows with 1-based ids and a path relative to the root.
The split is zero-shot by construction: 11,318 training classes (59,551
images), 11,316 test classes (60,502 images, ids 11,319-22,634).  Classes are
the sorted ``class_id`` values, so training labels come first.
"""

from __future__ import annotations

import os

from semembed.data.files import FileLists
from semembed.data.layouts.common import require_file
from semembed.errors import SemembedError
from semembed.io.text import read_lines


def _read_list(path: str) -> tuple[list[str], list[int]]:
    lines = read_lines(path, "Stanford Online Products list")
    if not lines or lines[0].split()[:2] != ["image_id", "class_id"]:
        raise SemembedError(f"{path}: line 1: expected the header 'image_id class_id super_class_id path'")
    files, ids = [], []
    for number, line in enumerate(lines[1:], start=2):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 4:
            raise SemembedError(f"{path}: line {number}: expected 4 fields 'image_id class_id super_class_id path', "
                                f"got {len(parts)}")
        try:
            ids.append(int(parts[1]))
        except ValueError:
            raise SemembedError(f"{path}: line {number}: class_id {parts[1]!r} is not an integer") from None
        files.append(parts[3])
    return files, ids


def read_sop(root: str, classes: list[int] | None) -> FileLists:
    """Classes: sorted ``class_id`` values of both lists (or ``classes``); files relative to ``root``."""
    train_files, train_ids = _read_list(require_file(os.path.join(root, "Ebay_train.txt"), "SOP training list"))
    test_files, test_ids = _read_list(require_file(os.path.join(root, "Ebay_test.txt"), "SOP test list"))
    if classes is None:
        classes = sorted(set(train_ids) | set(test_ids))
    index = {c: i for i, c in enumerate(classes)}
    out = FileLists(list(classes), [], [], [], [])
    for files, ids, dst_f, dst_l in ((train_files, train_ids, out.train_files, out.train_labels),
                                     (test_files, test_ids, out.test_files, out.test_labels)):
        for f, c in zip(files, ids):
            if c in index:
                dst_f.append(os.path.join(root, f))
                dst_l.append(index[c])
    return out
