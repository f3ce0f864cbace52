"""The ``semembed`` console entry point: one sub-command per reference program.

``semembed compute_class_embedding --hierarchy ...`` is the same as
``python scripts/compute_class_embedding.py --hierarchy ...``.  Sub-command
modules are imported lazily so that light commands never import TensorFlow.
"""

from __future__ import annotations

import importlib
import sys

#: sub-command name -> module under ``semembed.cli`` exposing ``main(argv)``.
COMMANDS = {
    "compute_class_embedding": "Compute target class embeddings from a taxonomy.",
    "evaluate_retrieval": "Hierarchical precision, mAHP@K, mAP and Recall@K of features.",
    "evaluate_classification_accuracy": "Accuracy, balanced and hierarchical accuracy.",
    "learn_image_embeddings": "Train a CNN to map images onto class embeddings.",
    "learn_metric": "Deep metric learning: metric losses, miners, XBM; Recall@K, MAP@R, NMI.",
    "learn_classifier": "Train the softmax baseline (label smoothing, --loss choices).",
    "learn_devise": "Train DeViSE: a linear map onto class embeddings with a hinge rank loss.",
    "learn_center_loss": "Train softmax + center loss (learned or fixed centroids).",
    "learn_labelembedding": "Train the label-embedding network (Sun et al.).",
    "learn_simnet": "Train SimNet (pair similarity) on base classes, optionally adversarially (SimTrans).",
    "compute_sample_weights": "Sample weights of web images from SimNet similarities (CSV + PNGs).",
    "plot_hierarchy": "Draw a taxonomy as an SVG/PNG graph.",
    "plot_recall_precision": "Precision-recall curves of feature files in one PNG.",
    "plot_tradeoff": "Top-1 error against mistake severity / hierarchical distance@k (PNG).",
    "embed": "Embeddings of image files with a trained model.",
    "predict": "Top-k classes of image files with probabilities and taxonomy paths.",
    "index": "Save a nearest-neighbour index of images (exact or faiss).",
    "search": "The k nearest indexed images of query images (CSV, thumbnail grid).",
    "explain": "Why an AVSL model finds two images similar: a PNG of the attribute maps.",
    "demo": "End-to-end demo on the embedded default dataset.",
}


def _usage() -> str:
    lines = ["usage: semembed <command> [flags]", "", "commands:"]
    for name, text in COMMANDS.items():
        lines.append(f"  {name:<34} {text}")
    lines.append("")
    lines.append("Run 'semembed <command> --help' for the flags of a command.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        from semembed.cli._common import pipe_safe_output

        with pipe_safe_output():
            print(_usage())
        return 0
    name = argv[0].replace("-", "_")
    if name.endswith(".py"):
        name = name[:-3]
    if name not in COMMANDS:
        print(f"error: unknown command {argv[0]!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"semembed.cli.{name}")
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
