"""Top-k classes of images with their probabilities and their paths in a taxonomy; CSV and JSON output."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

import numpy as np

from semembed.errors import SemembedError

#: classes listed per image (flag ``--top_k``)
DEFAULT_TOP_K = 5


@dataclass
class Prediction:
    """Top-k classes of every image: ``classes[i][r]`` with ``probabilities[i][r]``, rank r = 0 the best."""

    paths: list[str]
    classes: list[list]
    probabilities: np.ndarray  # N x k
    names: list[list[str | None]]
    taxonomy_paths: list[list[list]] | None  # root -> class ids, per image and rank


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, values)`` of the k largest scores of each row, best first; ties by lower column index."""
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise SemembedError(f"scores must be 2-D (images x classes), got shape {scores.shape}")
    k = min(int(k), scores.shape[1])
    if k < 1:
        raise SemembedError(f"--top_k must be at least 1, got {k}")
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


def predict_classes(paths: list[str], probabilities: np.ndarray, classes: list, k: int = DEFAULT_TOP_K,
                    hierarchy=None, class_names: dict | None = None) -> Prediction:
    """Top-``k`` classes of each image from its class probabilities (columns in ``classes`` order)."""
    if probabilities.shape[1] != len(classes):
        raise SemembedError(f"{probabilities.shape[1]} class scores per image but {len(classes)} class ids")
    idx, vals = top_k(probabilities, k)
    table = np.empty(len(classes), dtype=object)
    table[:] = list(classes)
    top = [list(row) for row in table[idx]]
    names = [[(class_names or {}).get(c) for c in row] for row in top]
    tax = None
    if hierarchy is not None:
        from semembed.taxonomy.names import path_to_root

        hierarchy.node_index(list(classes), "the model's classes")  # every class must be in the taxonomy
        cache = {c: path_to_root(hierarchy, c) for c in set(table[idx].ravel().tolist())}
        tax = [[cache[c] for c in row] for row in top]
    return Prediction(list(paths), top, vals, names, tax)


def _label(node, class_names: dict | None) -> str:
    return f"{(class_names or {}).get(node, node)}"


def predictions_csv(pred: Prediction, class_names: dict | None = None) -> str:
    """CSV text: ``path,rank,class,name,probability[,taxonomy_path]`` (rank 1 = most probable)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    header = ["path", "rank", "class", "name", "probability"] + (["taxonomy_path"] if pred.taxonomy_paths else [])
    w.writerow(header)
    for i, path in enumerate(pred.paths):
        for r, cls in enumerate(pred.classes[i]):
            row = [path, r + 1, cls, pred.names[i][r] or "", f"{float(pred.probabilities[i, r]):.6g}"]
            if pred.taxonomy_paths:
                row.append(" > ".join(_label(n, class_names) for n in pred.taxonomy_paths[i][r]))
            w.writerow(row)
    return buf.getvalue()


def predictions_json(pred: Prediction) -> str:
    """JSON text: a list of ``{path, predictions: [{rank, class, name, probability, taxonomy_path}]}``."""
    out = []
    for i, path in enumerate(pred.paths):
        items = []
        for r, cls in enumerate(pred.classes[i]):
            item = {"rank": r + 1, "class": cls, "name": pred.names[i][r],
                    "probability": float(pred.probabilities[i, r])}
            if pred.taxonomy_paths:
                item["taxonomy_path"] = pred.taxonomy_paths[i][r]
            items.append(item)
        out.append({"path": path, "predictions": items})
    return json.dumps(out, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o))
