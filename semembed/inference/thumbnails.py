"""A PNG grid of search results: one row per query, the query then its k nearest images."""

from __future__ import annotations

import os

import numpy as np

#: queries shown in the grid (flag ``--grid_queries``)
DEFAULT_GRID_QUERIES = 16
THUMB_PIXELS = 96


def _thumbnail(path: str, size: int) -> np.ndarray | None:
    from PIL import Image

    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            img.thumbnail((size, size))
            return np.asarray(img)
    except Exception:  # an image that cannot be shown gets an empty cell
        return None


def write_result_grid(out: str, queries: list[str], results: list[list[str]], scores: np.ndarray,
                      overwrite: bool = False, max_queries: int = DEFAULT_GRID_QUERIES) -> int:
    """Draw queries (first column) and their results (by rank, score above) into ``out`` (PNG, atomically).

    Returns the number of query rows drawn (at most ``max_queries``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from semembed.io import atomic_path

    rows = min(len(queries), max_queries)
    cols = 1 + max((len(r) for r in results[:rows]), default=0)
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.45 * rows), squeeze=False)
    for i in range(rows):
        cells = [(queries[i], "query")] + [(p, f"{r + 1}: {scores[i, r]:.3f}") for r, p in enumerate(results[i])]
        for j in range(cols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(cells):
                ax.axis("off")
                continue
            path, title = cells[j]
            thumb = _thumbnail(path, THUMB_PIXELS)
            if thumb is not None:
                ax.imshow(thumb, cmap="gray" if thumb.ndim == 2 else None)
            ax.set_title(title, fontsize=7)
            if j == 0:
                ax.set_ylabel(os.path.basename(path)[:18], fontsize=6)
                for spine in ax.spines.values():
                    spine.set_edgecolor("tab:red")
                    spine.set_linewidth(2)
    fig.tight_layout()
    with atomic_path(out, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return rows
