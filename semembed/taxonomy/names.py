"""Human-readable class names and the path of a class in its taxonomy."""

from __future__ import annotations

import os

from semembed.errors import SemembedError
from semembed.taxonomy.hierarchy import Hierarchy


def read_class_names(path: str | os.PathLike, str_ids: bool = False) -> dict:
    """``{class id: name}`` from lines ``id name`` (the reference's ``class_names.txt``; ``id,name`` also accepted).

    Raises:
        SemembedError: a line without a name, an id that is not an integer (without ``str_ids``), or an
        id named twice (a taxonomy file given as names, for instance).
    """
    from semembed.io import read_lines

    path = os.fspath(path)
    names = {}
    for lineno, line in enumerate(read_lines(path, "a class-name file"), start=1):
        text = line.strip()
        if not text:
            continue
        parts = text.replace(",", " ", 1).split(maxsplit=1) if "," in text.split()[0] else text.split(maxsplit=1)
        if len(parts) != 2:
            raise SemembedError(f"{path}, line {lineno}: expected 'class_id name', got {text!r}")
        key = parts[0]
        if not str_ids:
            try:
                key = int(key)
            except ValueError:
                raise SemembedError(f"{path}, line {lineno}: class id {key!r} is not an integer "
                                    "(pass --str_ids for string ids)") from None
        if key in names:
            raise SemembedError(f"{path}, line {lineno}: class id {key!r} is named a second time (first "
                                f"{names[key]!r}, now {parts[1].strip()!r}); a class-name file has one line "
                                "'class_id name' per class (is this a taxonomy file?)")
        names[key] = parts[1].strip()
    return names


def path_to_root(hierarchy: Hierarchy, node) -> list:
    """Node ids from a root down to ``node`` (in a DAG along the deepest parent, i.e. the longest path)."""
    path = [node]
    seen = {node}
    while True:
        parents = hierarchy.parents_of(path[-1])
        if not parents:
            break
        best = max(parents, key=lambda p: hierarchy.depth(p))
        if best in seen:  # cycles are refused when loading; guard anyway
            break
        seen.add(best)
        path.append(best)
    return path[::-1]
