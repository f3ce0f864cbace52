"""File helpers shared by every stage: atomic writes, a safe pickle reader and the text reader."""

from semembed.io.atomic import atomic_path, atomic_write_bytes, atomic_write_text, check_overwrite
from semembed.io.safe_pickle import load_pickle, loads_pickle
from semembed.io.text import read_lines, read_text

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "check_overwrite", "load_pickle", "loads_pickle",
           "read_lines", "read_text"]
