"""Per-sample training weights from a CSV file (``--sample_weights``).

The file has a header row with a ``weight`` column and either a ``path``
column (file datasets: relative to ``--data_root`` or absolute, as
``compute_sample_weights`` writes them) or an ``index`` column (position in
the training list; in-memory datasets such as CIFAR, Fashion-MNIST, digits).
Other columns are ignored.  Weights are finite and ≥ 0; a training image the
file does not list keeps weight 1 (the count is reported); a row naming no
training image, a repeated image, a bad value or (with a ``class`` column and
paths) a class other than the image's is an error naming the line; so are a
file without rows and weights that are all 0.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass

import numpy as np

from semembed.errors import SemembedError


@dataclass
class SampleWeights:
    """Weights aligned with the training list, and how many images the file did not list."""

    weights: np.ndarray  # (num_train,) float32
    unlisted: int

    def summary(self) -> str:
        w = self.weights
        return (f"sample weights: {len(w) - self.unlisted} images listed ({self.unlisted} not listed: weight 1), "
                f"mean {w.mean():.4f}, {int((w == 0).sum())} with weight 0")


def _rows(path: str) -> tuple[list[str], list[list[str]], list[int]]:
    """(header, data rows, their 1-based line numbers in the file); blank lines skipped."""
    if not os.path.isfile(path):
        raise SemembedError(f"--sample_weights {path}: no such file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            numbered = [(reader.line_num, r) for r in reader]
    except UnicodeDecodeError:
        raise SemembedError(f"--sample_weights {path}: not a UTF-8 text (CSV) file") from None
    except csv.Error as exc:
        raise SemembedError(f"--sample_weights {path}: not a readable CSV file ({exc})") from None
    numbered = [(n, r) for n, r in numbered if any(c.strip() for c in r)]
    if not numbered:
        raise SemembedError(f"--sample_weights {path}: the file is empty")
    header = [c.strip().lower() for c in numbered[0][1]]
    return header, [r for _, r in numbered[1:]], [n for n, _ in numbered[1:]]


def read_sample_weights(path: str, dataset, data_root: str | None = None) -> SampleWeights:
    """Weights for ``dataset``'s training images (see the module docstring)."""
    header, rows, lines = _rows(path)
    if "weight" not in header or not ({"path", "index"} & set(header)):
        raise SemembedError(f"--sample_weights {path}: line 1 must be a header with the columns 'path' (or 'index') "
                            f"and 'weight'; found {header}")
    wcol = header.index("weight")
    by_path = "path" in header and hasattr(dataset, "train_files")
    if "path" in header and not by_path and "index" not in header:
        raise SemembedError(f"--sample_weights {path}: dataset {dataset.name} is held in memory and has no file "
                            "paths; give an 'index' column (position in the training list) instead of 'path'")
    kcol = header.index("path") if by_path else header.index("index")
    if not rows:
        raise SemembedError(f"--sample_weights {path}: the file has a header but no rows (no image is weighted)")
    n = dataset.num_train
    idx = np.empty(len(rows), dtype=np.int64)
    values = np.empty(len(rows), dtype=np.float64)
    keys = []
    for r, (line, row) in enumerate(zip(lines, rows)):
        if len(row) <= max(wcol, kcol):
            raise SemembedError(f"--sample_weights {path}, line {line}: expected {len(header)} columns, got {len(row)}")
        try:
            values[r] = float(row[wcol])
        except ValueError:
            raise SemembedError(f"--sample_weights {path}, line {line}: weight {row[wcol]!r} is not a number") from None
        keys.append(row[kcol].strip())
    bad = np.flatnonzero(~np.isfinite(values) | (values < 0) | (values > np.finfo(np.float32).max))
    if bad.size:
        raise SemembedError(f"--sample_weights {path}, line {lines[bad[0]]}: weight {values[bad[0]]} must be finite, "
                            ">= 0 and fit float32")
    if by_path:
        root = data_root or ""
        train = np.array([os.path.realpath(p) for p in dataset.train_files])
        wanted = np.array([os.path.realpath(k if os.path.isabs(k) else os.path.join(root, k)) for k in keys])
        order = np.argsort(train)
        pos = np.searchsorted(train[order], wanted)
        pos = np.minimum(pos, len(train) - 1)
        found = train[order][pos] == wanted
        idx = order[pos]
    else:
        for line, k in zip(lines, keys):
            if not k.lstrip("-").isdigit():
                raise SemembedError(f"--sample_weights {path}, line {line}: index {k!r} is not an integer")
        idx = np.array([int(k) for k in keys], dtype=np.int64)
        found = (idx >= 0) & (idx < n)
    if not found.all():
        first = np.flatnonzero(~found)
        raise SemembedError(f"--sample_weights {path}, line {lines[first[0]]}: {keys[first[0]]!r} is not a training image "
                            f"of dataset {dataset.name} ({len(first)} such rows)")
    if by_path and "class" in header:  # compute_sample_weights writes it: it must be the image's class
        ccol = header.index("class")
        listed = np.array([row[ccol].strip() if len(row) > ccol else "" for row in rows], dtype=object)
        names = np.array([str(c) for c in dataset.classes], dtype=object)
        actual = names[np.asarray(dataset.train_labels)[idx]]
        wrong = np.flatnonzero(listed != actual)
        if wrong.size:
            r = wrong[0]
            raise SemembedError(f"--sample_weights {path}, line {lines[r]}: class {listed[r]!r} but the image "
                                f"{keys[r]!r} is of class {actual[r]!r} in dataset {dataset.name} ({wrong.size} such "
                                "rows); the file was written for other data")
    uniq, counts = np.unique(idx, return_counts=True)
    if (counts > 1).any():
        dup = np.flatnonzero(idx == uniq[counts > 1][0])
        raise SemembedError(f"--sample_weights {path}, lines {lines[dup[0]]} and {lines[dup[1]]}: the same image twice")
    weights = np.ones(n, dtype=np.float32)
    weights[idx] = values
    if not weights.any():
        raise SemembedError(f"--sample_weights {path}: every weight is 0, so the loss would be 0 and nothing "
                            "would be learned")
    return SampleWeights(weights, n - len(idx))
