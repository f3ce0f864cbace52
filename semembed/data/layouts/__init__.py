"""Readers of the reference's on-disk dataset layouts (paths relative to ``data_root``).

Each reader returns class order, file paths and labels (``FileLists``) or, for
in-memory datasets, arrays; none of them decodes images.
"""
