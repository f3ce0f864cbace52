"""In-Shop Clothes Retrieval (DeepFashion): ``Eval/list_eval_partition.txt`` (METRIC_LEARNING.md §11).

The list: line 1 = the image count (52,712 in the release), line 2 = the
header ``image_name item_id evaluation_status``, then whitespace-separated
rows ``img/... id_XXXXXXXX train|query|gallery``; image paths are relative to
the dataset root.  Training images: the ``train`` rows (3,997 items, 25,882
images); test images: the ``query`` rows (14,218) then the ``gallery`` rows
(12,612), 3,985 items.  A class is an item: the integer part of its id.
Classes are the training items (ascending), then the test items not among
them (ascending), so training labels are 0..n_train−1 (proxies need that) and
test labels follow — the spec's separate remapping of train and
query∪gallery, up to an offset.  Evaluation retrieves each query from the
gallery only, nothing excluded (``FileLists.test_is_query``).
"""

from __future__ import annotations

import os

from semembed.data.files import FileLists
from semembed.data.layouts.common import require_file
from semembed.errors import SemembedError
from semembed.io.text import read_lines

#: where the partition list lies under the dataset root (the release's layout; the root itself also accepted)
PARTITION_FILES = (os.path.join("Eval", "list_eval_partition.txt"), "list_eval_partition.txt")
STATUSES = ("train", "query", "gallery")


def _item_number(item: str, path: str, number: int) -> int:
    digits = item[3:] if item.startswith("id_") else ""
    if not digits.isdigit():
        raise SemembedError(f"{path}: line {number}: item_id {item!r} is not of the form id_<digits>")
    return int(digits)


def read_partition(path: str) -> dict[str, tuple[list[str], list[int]]]:
    """``{status: (image paths as listed, item numbers)}`` for train / query / gallery."""
    lines = read_lines(path, "In-Shop partition list")
    if len(lines) < 2 or lines[1].split()[:3] != ["image_name", "item_id", "evaluation_status"]:
        raise SemembedError(f"{path}: line 2: expected the header 'image_name item_id evaluation_status' "
                            "(line 1 holds the image count)")
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise SemembedError(f"{path}: line 1: expected the number of images, got {lines[0].strip()!r}") from None
    out: dict[str, tuple[list[str], list[int]]] = {s: ([], []) for s in STATUSES}
    rows = 0
    for number, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3:
            raise SemembedError(f"{path}: line {number}: expected 3 fields 'image_name item_id evaluation_status', "
                                f"got {len(parts)}")
        if parts[2] not in out:
            raise SemembedError(f"{path}: line {number}: evaluation_status {parts[2]!r} is not one of "
                                f"{', '.join(STATUSES)}")
        files, items = out[parts[2]]
        files.append(parts[0])
        items.append(_item_number(parts[1], path, number))
        rows += 1
    if rows != count:
        raise SemembedError(f"{path}: line 1 announces {count} images but the list has {rows} rows")
    return out


def read_inshop(root: str, classes: list[int] | None) -> FileLists:
    """Training, then query + gallery images of the In-Shop release under ``root`` (see the module docstring).

    ``classes``: item numbers to keep, in this order (e.g. a class-embedding file's ``ind2label``).
    """
    candidates = [os.path.join(root, p) for p in PARTITION_FILES]
    path = next((p for p in candidates if os.path.isfile(p)), None)
    path = require_file(path or candidates[0], "In-Shop partition list")
    parts = read_partition(path)
    if not parts["query"][0] or not parts["gallery"][0]:
        raise SemembedError(f"{path}: the list needs query and gallery rows (found {len(parts['query'][0])} "
                            f"query and {len(parts['gallery'][0])} gallery rows)")
    if classes is None:
        train_items = sorted(set(parts["train"][1]))
        seen = set(train_items)
        classes = train_items + sorted(set(parts["query"][1] + parts["gallery"][1]) - seen)
    index = {c: i for i, c in enumerate(classes)}
    out = FileLists(list(classes), [], [], [], [], test_is_query=[])
    for status in STATUSES:
        files, items = parts[status]
        dst_f, dst_l = (out.train_files, out.train_labels) if status == "train" else (out.test_files, out.test_labels)
        for f, c in zip(files, items):
            if c in index:
                dst_f.append(os.path.join(root, f))
                dst_l.append(index[c])
                if status != "train":
                    out.test_is_query.append(status == "query")
    return out
