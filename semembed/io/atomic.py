"""Atomic output files: write to a temporary file beside the target, then rename.

A crash or Ctrl-C never leaves a half-written result, and existing results are
not silently replaced.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from semembed.errors import SemembedError


def _default_mode() -> int:
    """Permissions a normally created file gets (mkstemp's temporary files are 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_FILE_MODE = _default_mode()


def check_overwrite(path: str | os.PathLike, overwrite: bool, flag: str = "--overwrite") -> None:
    """Refuse to replace an existing file unless ``overwrite`` is set."""
    if not overwrite and Path(path).exists():
        raise SemembedError(f"{os.fspath(path)} exists already; pass {flag} to replace it")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = True) -> Iterator[str]:
    """Yield a temporary path in the target's directory; rename it onto ``path`` on success.

    The temporary name ends with the target's whole name, so libraries that
    choose a format by extension (Keras' ``.keras``/``.weights.h5``) behave as
    for the target.
    """
    target = Path(path)
    check_overwrite(target, overwrite)
    parent = target.parent if str(target.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=f"-{target.name}", dir=parent)
    os.close(fd)
    try:
        yield tmp
        if os.path.isfile(tmp):
            os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(path: str | os.PathLike, text: str, overwrite: bool = True) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)
