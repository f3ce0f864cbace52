"""The one reader of text input files (taxonomies, class lists, label files, image lists, JSON).

Every text file is read as UTF-8 with a leading byte-order mark removed (as
Windows editors write it), and any file that is not UTF-8 text ends in a
:class:`SemembedError` naming the file, the line and what was expected instead
of a ``UnicodeDecodeError`` traceback.
"""

from __future__ import annotations

import codecs
import os

from semembed.errors import SemembedError


def _describe_undecodable(path: str, data: bytes, exc: UnicodeDecodeError, what: str) -> str:
    if b"\0" in data[:8192]:
        return (f"{path}: a binary file (e.g. .npz, .npy or a pickle), not a text file; "
                f"expected {what} as UTF-8 text")
    line = data.count(b"\n", 0, exc.start) + 1
    column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
    return (f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at column {column}); "
            f"expected {what} as UTF-8 text (convert it, e.g. with iconv -f latin1 -t utf-8)")


def read_text(path: str | os.PathLike, what: str) -> str:
    """The file's text: UTF-8, byte-order mark stripped; clear errors naming ``path`` and ``what``.

    ``what`` says what the file should hold, e.g. ``"a taxonomy file"``.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise SemembedError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise SemembedError(f"{path}: is a directory, expected {what}") from None
    except PermissionError:
        raise SemembedError(f"{path}: permission denied, cannot read {what}") from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    if b"\0" in data[:8192]:
        raise SemembedError(_describe_undecodable(path, data, UnicodeDecodeError("utf-8", data, 0, 1, ""), what))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SemembedError(_describe_undecodable(path, data, exc, what)) from None


def read_lines(path: str | os.PathLike, what: str) -> list[str]:
    """The file's lines (see :func:`read_text`); line ``i`` of the file is element ``i - 1``.

    Only ``\\n`` (and ``\\r\\n``) end a line, so numbers match what an editor shows.
    """
    text = read_text(path, what)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]
