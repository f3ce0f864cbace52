"""ILSVRC 2012: ``ILSVRC2012_img_train/<wnid>/...`` and ``ILSVRC2012_img_val/<wnid>/...``."""

from __future__ import annotations

import os
import re

from semembed.data.files import FileLists
from semembed.data.layouts.common import read_class_directories, require_dir

# Keras 2.2 ``list_pictures(dir, 'JPE?G|jpe?g')`` matches the lower-cased file name from its start.
_PICTURE = re.compile(r"[\w]+\.(?:jpe?g)")


def list_pictures(directory: str) -> list[str]:
    """Files below ``directory`` (recursive) whose lower-cased name starts like ``<word>.jp(e)g``, sorted."""
    found = [os.path.join(root, f) for root, _, files in os.walk(directory) for f in files
             if _PICTURE.match(f.lower())]
    return sorted(found)


def read_ilsvrc(root: str, classes: list[str] | None) -> FileLists:
    """Classes: sorted sub-directories of the train folder, or ``classes`` in the given order."""
    train_dir = require_dir(os.path.join(root, "ILSVRC2012_img_train"), "ILSVRC training images")
    test_dir = require_dir(os.path.join(root, "ILSVRC2012_img_val"), "ILSVRC validation images (in per-class folders)")
    if classes is None:
        classes = sorted(d for d in os.listdir(train_dir) if os.path.isdir(os.path.join(train_dir, d)))
    return read_class_directories(train_dir, test_dir, classes, list_pictures)
