"""Read taxonomy files (``parent child`` or ``child parent`` per line) and class lists.

Errors name the file and line and say what was expected, e.g.
``hier.txt:12: expected two ids 'parent child', found 3 ('a b c')``.
"""

from __future__ import annotations

import os
from typing import Hashable

import numpy as np

from semembed.errors import SemembedError
from semembed.io.text import read_lines

NodeId = Hashable  # int, or str with --str_ids


def _convert(token: str, str_ids: bool, where: str) -> NodeId:
    if str_ids:
        return token
    try:
        return int(token)
    except ValueError:
        raise SemembedError(
            f"{where}: {token!r} is not an integer id (pass --str_ids for string ids such as WordNet's)"
        ) from None


def read_relations(
    path: str | os.PathLike, is_a: bool = False, str_ids: bool = False
) -> tuple[list[NodeId], list[NodeId], list[int]]:
    """Parse a relation file into parallel lists ``(parents, children, line_numbers)``.

    Blank lines are ignored and duplicate lines tolerated.  ``is_a`` swaps the
    column order to ``child parent``.
    """
    path = os.fspath(path)
    order = "child parent" if is_a else "parent child"
    lines = read_lines(path, "taxonomy file")
    parents: list[NodeId] = []
    children: list[NodeId] = []
    line_numbers: list[int] = []
    for number, line in enumerate(lines, start=1):
        tokens = line.split()
        if not tokens:
            continue
        where = f"{path}:{number}"
        if len(tokens) != 2:
            raise SemembedError(
                f"{where}: expected two ids '{order}', found {len(tokens)} ({line.strip()!r})"
            )
        a = _convert(tokens[0], str_ids, where)
        b = _convert(tokens[1], str_ids, where)
        parent, child = (b, a) if is_a else (a, b)
        if parent == child:
            raise SemembedError(f"{where}: self-loop: node {parent!r} is its own parent")
        parents.append(parent)
        children.append(child)
        line_numbers.append(number)
    if not parents:
        raise SemembedError(f"{path}: empty taxonomy file (expected lines '{order}')")
    return parents, children, line_numbers


def read_class_list(path: str | os.PathLike, str_ids: bool = False,
                    flag: str | None = None) -> tuple[list[NodeId], list[int]]:
    """Read class ids (the first word of each non-empty line) in file order.

    Returns ``(ids, line_numbers)``.  A repeated id is an error: label ``i``
    must mean exactly one class.  ``flag`` (e.g. ``"--class_list"``): every message starts
    ``FLAG FILE`` (``, line N`` for a line) instead of ``FILE:N``.

    Raises:
        SemembedError: a missing or unreadable file, a non-integer id without ``str_ids``, a repeated id,
            no id at all.
    """
    path = os.fspath(path)
    where = (lambda n: f"{flag} {path}, line {n}") if flag else (lambda n: f"{path}:{n}")
    whole = f"{flag} {path}" if flag else path
    if flag and not os.path.exists(path):
        raise SemembedError(f"{whole}: no such file; expected a class list (one class id per line)")
    try:
        lines = read_lines(path, "class list")
    except SemembedError as exc:
        raise SemembedError(f"{flag}: {exc}" if flag else str(exc)) from None
    ids: list[NodeId] = []
    numbers: list[int] = []
    seen: dict[NodeId, int] = {}
    for number, line in enumerate(lines, start=1):
        tokens = line.split()
        if not tokens:
            continue
        cid = _convert(tokens[0], str_ids, where(number))
        if cid in seen:
            raise SemembedError(f"{where(number)}: class {cid!r} is listed twice (first on line {seen[cid]})")
        seen[cid] = number
        ids.append(cid)
        numbers.append(number)
    if not ids:
        raise SemembedError(f"{whole}: empty class list")
    return ids, numbers


def sort_ids(ids: list[NodeId]) -> list[NodeId]:
    """Sort ids numerically when they are integers, lexicographically otherwise."""
    if ids and isinstance(ids[0], (int, np.integer)):
        return sorted(ids)
    return sorted(ids, key=str)
