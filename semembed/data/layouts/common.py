"""Helpers shared by the layout readers: class lists, label mapping, clear file errors."""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from semembed.errors import SemembedError
from semembed.io.text import read_lines


class ClassIdError(SemembedError):
    """A listed class id that is not of the dataset's id type (``class_id``; ``kind``: ``"int"`` or ``"str"``)."""

    def __init__(self, message: str, class_id: Any, kind: str):
        super().__init__(message)
        self.class_id, self.kind = class_id, kind


def coerce_class_ids(classes: Iterable[Any] | None, kind: type, dataset: str) -> list | None:
    """Turn a class list (e.g. ``ind2label`` of an embedding file) into ``kind`` ids (int or str)."""
    if classes is None:
        return None
    out = []
    for c in classes:
        if isinstance(c, (bytes, np.bytes_)):
            c = c.decode("utf-8")
        try:
            out.append(kind(c.item() if isinstance(c, np.generic) else c))
        except (TypeError, ValueError):
            raise ClassIdError(f"dataset {dataset}: class id {c!r} in the class list is not a valid "
                               f"{kind.__name__} id", c, kind.__name__) from None
    if len(set(out)) != len(out):
        raise SemembedError(f"dataset {dataset}: the class list contains duplicate ids")
    return out


def map_labels(ids: Sequence[Any], class_indices: dict) -> np.ndarray:
    """Labels of original ``ids`` via ``class_indices``; -1 where an id is not a class (vectorised)."""
    ids = np.asarray(ids)
    if ids.size == 0:
        return np.zeros(0, dtype=np.int64)
    uniq, inverse = np.unique(ids, return_inverse=True)
    lut = np.array([class_indices.get(u.item(), -1) for u in uniq], dtype=np.int64)  # one entry per class
    return lut[inverse.ravel()]


def require_file(path: str, what: str) -> str:
    """Return ``path`` if it is a file, else raise naming it."""
    if not os.path.isfile(path):
        raise SemembedError(f"{what} not found: expected the file {path}")
    return path


def require_dir(path: str, what: str) -> str:
    """Return ``path`` if it is a directory, else raise naming it."""
    if not os.path.isdir(path):
        raise SemembedError(f"{what} not found: expected the directory {path}")
    return path


def read_pairs(path: str, what: str) -> list[tuple[str, str]]:
    """Non-blank lines of ``<key> <value>`` (whitespace-separated), with file:line in errors."""
    require_file(path, what)
    pairs = []
    for lineno, line in enumerate(read_lines(path, what), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise SemembedError(f"{path}:{lineno}: expected two whitespace-separated fields, got {line.strip()!r}")
        pairs.append((parts[0], parts[1]))
    return pairs


def parse_int(value: str, path: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise SemembedError(f"{path}: {what} {value!r} is not an integer") from None


def read_class_directories(
    train_dir: str, test_dir: str, classes: list[str], list_files: Callable[[str], list[str]]
):
    """``FileLists`` of layouts with one sub-directory per class in a train and a test folder.

    Label i is ``classes[i]``; files are listed per class with ``list_files``.
    """
    from semembed.data.files import FileLists

    lists = FileLists(list(classes), [], [], [], [])
    for label, name in enumerate(classes):  # one directory walk per class
        for files, labels, base in ((lists.train_files, lists.train_labels, train_dir),
                                    (lists.test_files, lists.test_labels, test_dir)):
            found = list_files(os.path.join(base, name))
            files += found
            labels += [label] * len(found)
    return lists
