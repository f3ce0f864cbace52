"""Which image files a user means: folders (searched recursively), list files, single files."""

from __future__ import annotations

import os
import sys
from typing import Sequence

from semembed.errors import SemembedError

#: file name endings taken as images when a folder is searched (case-insensitive)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
#: endings of list files: one image path per line (relative paths: to the list file's folder)
LIST_EXTENSIONS = (".txt", ".lst", ".list")


def _folder(path: str) -> list[str]:
    found = []
    for root, dirs, files in os.walk(path, followlinks=True):
        dirs.sort()
        found += [os.path.join(root, f) for f in sorted(files)
                  if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith(".")]
    return found


def _list_file(path: str) -> list[str]:
    from semembed.io import read_lines

    base = os.path.dirname(os.path.abspath(path))
    out = []
    for lineno, line in enumerate(read_lines(path, "a list of image files"), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        full = entry if os.path.isabs(entry) else os.path.join(base, entry)
        if os.path.isdir(full):
            raise SemembedError(f"{path}, line {lineno}: {entry} is a folder; a list file names image files, one per line "
                                "(give the folder itself to --images to search it)")
        if not os.path.isfile(full):
            raise SemembedError(f"{path}, line {lineno}: image file not found: {entry}")
        out.append(os.path.normpath(full))
    return out


def list_images(inputs: Sequence[str], flag: str = "--images") -> list[str]:
    """Image paths of ``inputs`` in a stable order (folders sorted, lists in file order).

    An image given more than once (twice in a list, or a folder and a file in it) keeps every
    occurrence, so that output rows stay aligned with the inputs (and with a label file kept
    beside a list); a warning on stderr says how many repeat.

    Raises:
        SemembedError: an input that does not exist, a list line naming a missing file, or no image at all.
    """
    paths: list[str] = []
    for item in inputs:
        if os.path.isdir(item):
            found = _folder(item)
            if not found:
                raise SemembedError(f"{flag} {item}: the folder holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
            paths += found
        elif os.path.isfile(item):
            paths += _list_file(item) if item.lower().endswith(LIST_EXTENSIONS) else [item]
        else:
            raise SemembedError(f"{flag} {item}: no such file or folder")
    if not paths:
        raise SemembedError(f"{flag}: no image files given")
    repeated = len(paths) - len({os.path.realpath(p) for p in paths})
    if repeated:
        print(f"warning: {flag}: {repeated} of the {len(paths)} images are given more than once; each occurrence "
              "gets its own row", file=sys.stderr)
    return paths
