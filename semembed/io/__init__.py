"""File helpers shared by every stage: atomic writes and a safe pickle reader."""

from semembed.io.atomic import atomic_path, atomic_write_bytes, atomic_write_text, check_overwrite
from semembed.io.safe_pickle import load_pickle, loads_pickle

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "check_overwrite", "load_pickle", "loads_pickle"]
