"""Report metrics: the reference's text table, JSON, CSV and the HP@k / mAHP plot."""

from __future__ import annotations

import json
import math
import os
from typing import Mapping, Sequence

import numpy as np

from semembed.io import atomic_path, atomic_write_text

Perf = Mapping[str, Mapping[str, float]]


def format_table(perf: Perf, metrics: Sequence[str]) -> str:
    """One row per label, one column per metric, 4 decimals, as the reference prints.

    ``--`` where a metric is missing, ``NaN`` where it is undefined.
    """
    width = max([len(lbl) for lbl in perf] + [1])
    head = " | ".join([" " * width] + [f"{m:^6s}" for m in metrics])
    lines = [head, "-" * (width + sum(3 + max(6, len(m)) for m in metrics))]

    def cell(res, m: str) -> str:
        w = max(len(m), 6)
        if m not in res:
            return f"{'--':>{w}s}"
        return f"{'NaN':>{w}s}" if math.isnan(res[m]) else f"{res[m]:>{w}.4f}"

    for lbl, res in perf.items():
        cells = [cell(res, m) for m in metrics]
        lines.append(f"{lbl:{width}s} | " + " | ".join(cells))
    return "\n".join(lines)


def _plain(value):
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return None if math.isnan(v) else v
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_json(path: str | os.PathLike, perf: Perf, overwrite: bool = False) -> None:
    """Write ``{label: {metric: value}}`` (NaN as null), atomically."""
    data = {lbl: {m: _plain(v) for m, v in res.items()} for lbl, res in perf.items()}
    atomic_write_text(path, json.dumps(data, indent=2) + "\n", overwrite=overwrite)


def write_hp_csv(path: str | os.PathLike, perf: Perf, prec_type: str = "LCS_HEIGHT", overwrite: bool = False) -> None:
    """The reference's CSV: ``k;label1;label2;…`` then HP@k of ``prec_type`` for k = 1, 2, … while all labels have it."""
    labels = list(perf)
    lines = ["k;" + ";".join(labels)]
    k = 1
    while all(f"P@{k} ({prec_type})" in perf[lbl] for lbl in labels):
        lines.append(f"{k};" + ";".join(str(float(perf[lbl][f"P@{k} ({prec_type})"])) for lbl in labels))
        k += 1
    atomic_write_text(path, "\n".join(lines) + "\n", overwrite=overwrite)


def write_metrics_csv(path: str | os.PathLike, perf: Perf, metrics: Sequence[str], overwrite: bool = False) -> None:
    """``label;metric1;metric2;…`` and one line per label (empty where missing)."""
    lines = ["label;" + ";".join(metrics)]
    for lbl, res in perf.items():
        lines.append(f"{lbl};" + ";".join(str(float(res[m])) if m in res else "" for m in metrics))
    atomic_write_text(path, "\n".join(lines) + "\n", overwrite=overwrite)


def hp_curve(metrics: Mapping[str, float], prec_type: str = "LCS_HEIGHT", kmax: int | None = None) -> np.ndarray:
    """HP@1, HP@2, … (consecutive k present in ``metrics``, up to ``kmax``)."""
    vals = []
    k = 1
    while f"P@{k} ({prec_type})" in metrics and (kmax is None or k <= kmax):
        vals.append(float(metrics[f"P@{k} ({prec_type})"]))
        k += 1
    return np.asarray(vals)


def plot_hierarchical_precision(
    curves: Mapping[str, np.ndarray],
    mahp: Mapping[str, float],
    path: str | os.PathLike,
    *,
    prec_type: str = "LCS_HEIGHT",
    mahp_name: str = "mAHP",
    overwrite: bool = True,
) -> None:
    """Save a PNG: HP@k curves (left) and a bar chart of mAHP per label (right); matplotlib Agg, atomic."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    try:
        lo = 1.0
        kmax = 1
        for lbl, curve in curves.items():
            curve = np.asarray(curve, dtype=np.float64)
            if curve.size == 0:
                continue
            ax1.plot(np.arange(1, len(curve) + 1), curve, label=lbl)
            lo = min(lo, float(curve.min()))
            kmax = max(kmax, len(curve))
        ax1.set_xlabel("k")
        ax1.set_ylabel(f"Hierarchical Precision ({prec_type})")
        ax1.set_xlim(0, kmax)
        floor = math.floor(lo * 20) / 20
        ax1.set_ylim(floor if floor >= 0.3 else 0.0, 1.0)
        ax1.grid(True)
        if curves:
            ax1.legend(fontsize="x-small")

        labels = list(mahp)
        values = [float(mahp[lbl]) for lbl in labels]
        pos = np.arange(len(labels))
        ax2.barh(pos, values, 0.8, color=[f"C{i % 10}" for i in range(len(labels))])
        ax2.set_yticks(pos, labels, fontsize="small")
        ax2.invert_yaxis()
        ax2.set_xlim(0, 1)
        ax2.set_xlabel(f"{mahp_name} ({prec_type})")
        ax2.grid(axis="x")
        for y, v in zip(pos, values):
            ax2.text(min(v, 0.98) - 0.01, y, f"{v:.1%}", va="center", ha="right", color="white", fontsize="small")
        fig.tight_layout()
        with atomic_path(path, overwrite=overwrite) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)
