"""Draw a taxonomy as a graph (the reference's ``plot_hierarchy.py``): Graphviz when installed, else matplotlib.

Left to right (roots on the left), inner nodes grey, leaves white, as the reference draws it.
Graphviz's ``dot`` program lays out any DAG; the Python-only fallback puts each node at the
column of its depth (longest path from a root) and each leaf on its own row in depth-first
order, an inner node at the mean row of its children (a node with several parents is placed
under the first one reached).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import numpy as np

from semembed.errors import SemembedError
from semembed.taxonomy.hierarchy import Hierarchy

ENGINES = ("auto", "graphviz", "matplotlib")
FORMATS = ("svg", "png", "pdf")


def _children(h: Hierarchy) -> list[list[int]]:
    pc = h.parent_to_child
    return [sorted(pc.indices[pc.indptr[i]:pc.indptr[i + 1]].tolist(), key=lambda j: str(h.ids[j]))
            for i in range(len(h.ids))]


def to_dot(h: Hierarchy, names: dict | None = None) -> str:
    """Graphviz DOT text of the taxonomy."""
    def quote(text) -> str:
        return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["digraph taxonomy {", "  rankdir=LR;", '  node [shape=box, style=filled, fontname="Helvetica"];']
    for i, node in enumerate(h.ids):
        fill = "#ffffff" if h.num_children[i] == 0 else "#eaeaea"
        lines.append(f"  {quote(node)} [label={quote((names or {}).get(node, node))}, fillcolor={quote(fill)}];")
    cp = h.child_to_parent.tocoo()
    for child, parent in sorted(zip(cp.row.tolist(), cp.col.tolist())):
        lines.append(f"  {quote(h.ids[parent])} -> {quote(h.ids[child])};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def layout(h: Hierarchy) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of every node: x = depth - 1, leaves on consecutive rows, inner nodes at their children's mean row."""
    children = _children(h)
    x = (h.depths - 1).astype(float)
    y = np.full(len(h.ids), np.nan)
    row = 0
    roots = sorted(np.flatnonzero(h.num_parents == 0).tolist(), key=lambda j: str(h.ids[j]))
    stack = [(r, False) for r in reversed(roots)]
    while stack:
        node, done = stack.pop()
        if done:
            placed = [y[c] for c in children[node] if not np.isnan(y[c])]
            y[node] = float(np.mean(placed)) if placed else row
            continue
        if not np.isnan(y[node]):
            continue
        if not children[node]:
            y[node] = row
            row += 1
            continue
        y[node] = -1.0  # visiting
        stack.append((node, True))
        stack.extend((c, False) for c in reversed(children[node]) if np.isnan(y[c]))
    return x, y


def draw_hierarchy(h: Hierarchy, out: str, names: dict | None = None, engine: str = "auto",
                   overwrite: bool = False) -> str:
    """Write the graph to ``out`` (``.svg``, ``.png`` or ``.pdf``); returns the engine used."""
    from semembed.io import atomic_path

    fmt = out.lower().rsplit(".", 1)[-1]
    if fmt not in FORMATS:
        raise SemembedError(f"--out {out}: use a name ending in .svg, .png or .pdf")
    if engine not in ENGINES:
        raise SemembedError(f"--engine {engine!r}: expected one of {', '.join(ENGINES)}")
    dot = shutil.which("dot")
    if engine == "graphviz" and dot is None:
        raise SemembedError("--engine graphviz: the Graphviz program 'dot' is not installed (apt-get install graphviz)")
    if engine != "matplotlib" and dot is not None:
        with atomic_path(out, overwrite=overwrite) as tmp:
            with tempfile.NamedTemporaryFile("w", suffix=".dot", delete=False, encoding="utf-8") as f:
                f.write(to_dot(h, names))
            try:
                r = subprocess.run([dot, f"-T{fmt}", f.name, "-o", tmp], capture_output=True, text=True)
            finally:
                os.unlink(f.name)
            if r.returncode:
                raise SemembedError(f"Graphviz failed: {r.stderr.strip()[:300]}")
        return "graphviz"
    _draw_matplotlib(h, out, names, fmt, overwrite)
    return "matplotlib"


def _draw_matplotlib(h: Hierarchy, out: str, names: dict | None, fmt: str, overwrite: bool) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from semembed.io import atomic_path

    x, y = layout(h)
    n_rows = int(np.nanmax(y)) + 1 if len(y) else 1
    fig, ax = plt.subplots(figsize=(2.4 * (x.max() + 1) + 1, 0.28 * n_rows + 0.8))
    cp = h.child_to_parent.tocoo()
    for child, parent in zip(cp.row, cp.col):
        ax.annotate("", xy=(x[child] - 0.02, y[child]), xytext=(x[parent] + 0.02, y[parent]),
                    arrowprops=dict(arrowstyle="-|>", color="0.45", lw=0.7, shrinkA=20, shrinkB=20))
    for i, node in enumerate(h.ids):
        fill = "#ffffff" if h.num_children[i] == 0 else "#eaeaea"
        ax.text(x[i], y[i], str((names or {}).get(node, node)), ha="center", va="center", fontsize=7,
                bbox=dict(boxstyle="round,pad=0.25", fc=fill, ec="0.3", lw=0.6))
    ax.set_xlim(-0.6, x.max() + 0.6)
    ax.set_ylim(n_rows - 0.5, -0.5)
    ax.axis("off")
    fig.tight_layout()
    with atomic_path(out, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format=fmt, dpi=100)
    plt.close(fig)
