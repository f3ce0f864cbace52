"""The accuracy / mistake-severity trade-off plot of Bertinetto et al. (CVPR 2020, Fig. 3) from result JSON files.

One panel per y metric — ``Mistake Severity`` and ``Avg. Hierarchical Distance@k`` — against top-1
error (1 − ``Accuracy``); one point per evaluated label (e.g. every run of an α or β sweep).
Labels that share a *series* (the text before the first " α", " β", "=" or " seed") are joined by
a line in the order given, and ``... (CRM)`` rows are drawn hollow, so sweeps and their CRM
counterparts read as curves, as in the papers.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Mapping, Sequence

from semembed.errors import SemembedError

#: y metrics of the panels (those present in the results are drawn)
TRADEOFF_METRICS = ("Mistake Severity", "Avg. Hierarchical Distance@1", "Avg. Hierarchical Distance@5",
                    "Avg. Hierarchical Distance@20")


def read_results(paths: Sequence[str | os.PathLike]) -> dict[str, dict]:
    """Merge ``{label: {metric: value}}`` JSON files (``evaluate_classification_accuracy --json``), in order."""
    out: dict[str, dict] = {}
    for path in paths:
        try:
            with open(path, encoding="utf-8-sig") as f:
                data = json.load(f)
        except FileNotFoundError:
            raise SemembedError(f"--json {path}: file not found") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SemembedError(f"--json {path}: not a JSON results file ({exc})") from None
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise SemembedError(f"--json {path}: expected {{label: {{metric: value}}}} as evaluate_classification_accuracy writes")
        for label, metrics in data.items():
            if label in out:
                raise SemembedError(f"--json {path}: label {label!r} already read from an earlier file")
            if "Accuracy" not in metrics:
                raise SemembedError(f"--json {path}: label {label!r} has no 'Accuracy'")
            out[label] = metrics
    if not out:
        raise SemembedError("no results to plot")
    return out


def series_of(label: str) -> str:
    """The sweep a label belongs to: ``"HXE α=0.5 (CRM)"`` -> ``"HXE (CRM)"``."""
    crm = label.endswith("(CRM)")
    base = label[: -len("(CRM)")].strip() if crm else label
    base = re.split(r"\s+(?:α|β|alpha|beta|seed)|=", base, maxsplit=1)[0].strip()
    return f"{base} (CRM)" if crm else base


def sweep_value(label: str) -> str:
    """The setting that tells a sweep's points apart: ``"HXE α=0.5 (CRM)"`` -> ``"α=0.5"`` (else the label)."""
    base = label[: -len("(CRM)")].strip() if label.endswith("(CRM)") else label
    rest = base[len(series_of(base)):].strip()
    return rest or base


def plot_tradeoff(results: Mapping[str, Mapping[str, float]], out: str | os.PathLike, *,
                  metrics: Sequence[str] = TRADEOFF_METRICS, overwrite: bool = False, title: str | None = None) -> list[str]:
    """Write the trade-off PNG; returns the y metrics drawn.

    Args:
        results: ``{label: {metric: value}}``; ``Accuracy`` is required, missing or null y values are skipped.
        out: the PNG path (written atomically).
        metrics: candidate y metrics, one panel each when any label has it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from semembed.io import atomic_path

    def ok(v) -> bool:
        return v is not None and not (isinstance(v, float) and math.isnan(v))

    drawn = [m for m in metrics if any(ok(r.get(m)) for r in results.values())]
    if not drawn:
        raise SemembedError(f"none of the metrics {', '.join(metrics)} is in the results")
    series: dict[str, list[str]] = {}
    for label in results:
        series.setdefault(series_of(label), []).append(label)
    fig, axes = plt.subplots(1, len(drawn), figsize=(4.6 * len(drawn), 4.2), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    base_color: dict[str, str] = {}
    for ax, metric in zip(axes[0], drawn):
        for name, labels in series.items():
            root = name[: -len(" (CRM)")] if name.endswith("(CRM)") else name
            color = base_color.setdefault(root, colors[len(base_color) % len(colors)])
            kept = [l for l in labels if ok(results[l].get(metric))]
            if not kept:
                continue
            xs = [1.0 - results[l]["Accuracy"] for l in kept]
            ys = [results[l][metric] for l in kept]
            crm = name.endswith("(CRM)")
            ax.plot(xs, ys, "--" if crm else "-", color=color, alpha=0.6, linewidth=1)
            ax.scatter(xs, ys, s=36, facecolors="none" if crm else color, edgecolors=color, label=name, zorder=3)
            if len(kept) > 1:  # a sweep: each point named by its setting ("α=0.5")
                for x, y, l in zip(xs, ys, kept):
                    ax.annotate(sweep_value(l), (x, y), textcoords="offset points", xytext=(4, 3), fontsize=6,
                                color=color)
        ax.set_xlabel("top-1 error")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(out, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return drawn
