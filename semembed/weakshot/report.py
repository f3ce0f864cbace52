"""What ``compute_sample_weights`` writes: the weights CSV and one PNG per class.

CSV (UTF-8, header ``path,class,weight``): one row per web image in the
dataset's file order, ``path`` relative to the data root (what
``--sample_weights`` reads), ``class`` the class folder name, ``weight`` with
6 decimals.  PNG ``<class>.png``: the class's lowest-weighted images (top row)
and highest-weighted images (bottom row), each titled with its weight.
"""

from __future__ import annotations

import csv
import io
import os
import re

import numpy as np

from semembed.io import atomic_path, atomic_write_text


def weights_csv_text(rows: list[tuple[str, str, float]]) -> str:
    """CSV text of (path, class, weight) rows with the header."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", "class", "weight"])
    for path, cls, weight in rows:
        w.writerow([path, cls, f"{float(weight):.6f}"])
    return buf.getvalue()


def write_weights_csv(out: str, rows: list[tuple[str, str, float]], overwrite: bool = False) -> None:
    """Write the CSV atomically (refused when ``out`` exists and not ``overwrite``)."""
    atomic_write_text(out, weights_csv_text(rows), overwrite=overwrite)


def png_name(class_id) -> str:
    """A safe file name for a class id."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(class_id)).strip("._") or "class"


def write_class_png(out: str, paths: list[str], weights: np.ndarray, title: str, num_show: int = 8,
                    overwrite: bool = False) -> None:
    """The ``num_show`` lowest- and highest-weighted images of one class in a 2-row grid (PNG, atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from semembed.inference.thumbnails import THUMB_PIXELS, _thumbnail

    order = np.argsort(np.asarray(weights), kind="stable")
    k = max(1, min(int(num_show), len(order)))
    rows = [("lowest", order[:k]), ("highest", order[::-1][:k])]
    # wide enough for the title when a class has fewer images than num_show (9 pt ≈ 0.075 in per character)
    width = max(1.3 * k, 0.075 * len(title) + 0.4)
    fig, axes = plt.subplots(2, k, figsize=(width, 3.1), squeeze=False, layout="constrained")
    for r, (label, idx) in enumerate(rows):
        for c in range(k):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(idx):
                ax.axis("off")
                continue
            thumb = _thumbnail(paths[idx[c]], THUMB_PIXELS)
            if thumb is not None:
                ax.imshow(thumb)
            ax.set_title(f"{weights[idx[c]]:.2f}", fontsize=7)
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.suptitle(title, fontsize=9)
    with atomic_path(out, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def decile_means(weights: np.ndarray) -> tuple[float, float]:
    """(mean of the lowest 10 %, mean of the highest 10 %) of a class's weights (at least one image each):
    a cheap spread figure printed per class."""
    w = np.sort(np.asarray(weights, dtype=np.float64))
    k = max(1, len(w) // 10)
    return float(w[:k].mean()), float(w[-k:].mean())


def class_rows(dataset, data_root: str, results) -> list[tuple[str, str, float]]:
    """CSV rows (relative path, class, weight) of :func:`compute_class_weights` results, in file order."""
    files = dataset.train_files
    rows = []
    for res in results:
        for i, w in zip(res.indices, res.weights):
            rows.append((os.path.relpath(files[i], data_root), str(res.class_id), float(w)))
    return rows
