"""A generic image folder: ``train/<class>/*`` and ``test/<class>/*``."""

from __future__ import annotations

import os

from semembed.data.files import FileLists
from semembed.data.layouts.common import read_class_directories, require_dir

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".ppm", ".tif", ".tiff")


def _files(directory: str) -> list[str]:
    if not os.path.isdir(directory):
        return []
    return sorted(os.path.join(r, f) for r, _, fs in os.walk(directory) for f in fs
                  if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith("."))


#: the spellings of the ``ImageFolder`` dataset name (lower case) that the registry accepts
IMAGE_FOLDER_NAMES = ("imagefolder", "image_folder", "image-folder")


def read_image_folder(root: str, classes: list[str] | None, require_test: bool = True) -> FileLists:
    """Classes: sorted non-hidden sub-directories of ``train/``, then those only in ``test/`` (or ``classes``).

    ``require_test=False``: a missing ``test/`` is an empty test split (programs that read ``train/`` only).

    A test class absent from ``train/`` (the zero-shot ``train/<class>``, ``test/<class>`` layout of
    the AVSL release) follows the training classes, so training labels stay 0..n_train-1.
    Files are sorted per class.
    """
    check_image_folder_root("--data_root", root)  # callers with another flag (--web_root) check it first
    train_dir = require_dir(os.path.join(root, "train"), "ImageFolder training directory")
    test_dir = os.path.join(root, "test")
    if require_test:
        require_dir(test_dir, "ImageFolder test directory")
    if classes is None:
        def subdirs(d):
            if not os.path.isdir(d):
                return []
            return sorted(c for c in os.listdir(d) if not c.startswith(".") and os.path.isdir(os.path.join(d, c)))

        train_classes = subdirs(train_dir)
        known = set(train_classes)
        classes = train_classes + [c for c in subdirs(test_dir) if c not in known]
    return read_class_directories(train_dir, test_dir, classes, _files)


def check_image_folder_root(flag: str, root: str) -> None:
    """Refuse ``root`` (given with ``flag``) unless it is a directory holding ``train/``; one line naming the flag.

    A folder one level too deep (``.../novel/train``: its sub-folders are classes, it has no ``train/``)
    gets a hint to its parent, the folder that holds ``train/<class>/``.

    Raises:
        SemembedError: ``root`` is not a directory, or has no ``train/`` sub-directory.
    """
    from semembed.errors import SemembedError

    if not os.path.isdir(root):
        raise SemembedError(f"{flag} {root}: not a directory; expected an image folder that holds train/<class>/")
    if os.path.isdir(os.path.join(root, "train")):
        return
    parent = os.path.dirname(os.path.abspath(root))
    hint = ""
    if os.path.basename(os.path.normpath(root)) in ("train", "test") or os.path.isdir(os.path.join(parent, "train")):
        hint = f"; did you mean its parent {parent}? (give the folder that holds train/<class>/, not train/ itself)"
    raise SemembedError(f"{flag} {root}: no train/ sub-directory; expected the folder that holds "
                        f"train/<class>/ (and test/<class>/){hint}")
