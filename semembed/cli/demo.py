"""``semembed demo``: semantic embeddings vs. a softmax baseline on the embedded default dataset."""

from __future__ import annotations

import argparse

from semembed.cli._common import DefaultsFormatter, parse_args, reports_errors


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="semembed demo",
        description="End-to-end demo, offline: compute class embeddings from the shipped taxonomy, train a "
        "semantic-embedding model (with classification head) and a softmax baseline with the same budget on the "
        "default dataset (Fashion-MNIST from Debian's files, the Keras cache or a download, else scikit-learn's digits), evaluate both "
        "(retrieval and classification) and write a comparison table and a hierarchical-precision plot.",
        formatter_class=DefaultsFormatter,
    )
    p.add_argument("--out_dir", default="runs/demo", help="Directory for the embedding, results.{md,json,csv} and the PNG plot.")
    p.add_argument("--dataset", default=None, choices=["fashion-mnist", "digits"],
                   help="Dataset (default: Fashion-MNIST when its files are installed, cached or downloadable, else scikit-learn's "
                   "digits; the demo says which and why).%(default).0s")
    p.add_argument("--architecture", default="simple-tiny", help="Network of both models (see learn_image_embeddings --help).")
    p.add_argument("--epochs", type=int, default=None, help="Training epochs of each model (default: the dataset's recipe: "
                   "Fashion-MNIST 3, digits 30).%(default).0s")
    p.add_argument("--batch_size", type=int, default=None, help="Batch size (default: the recipe's: Fashion-MNIST 128, "
                   "digits 32).%(default).0s")
    p.add_argument("--max_steps_per_epoch", type=int, default=None,
                   help="Cap on steps per epoch (default and 0: whole epochs).%(default).0s")
    p.add_argument("--lr", type=float, default=None, help="Peak learning rate of SGD (momentum 0.9) with per-step cosine "
                   "decay (default: the recipe's, 0.05).%(default).0s")
    p.add_argument("--seed", type=int, default=0, help="Random seed.")
    p.add_argument("--overwrite", action="store_true", help="Replace the results of an earlier demo in --out_dir.")
    p.add_argument("--no_progress", action="store_true", help="No progress bars.")
    return p


@reports_errors
def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    from semembed.demo import DemoConfig, run_demo

    run_demo(DemoConfig(out_dir=args.out_dir, dataset=args.dataset, architecture=args.architecture, epochs=args.epochs,
                        batch_size=args.batch_size, max_steps_per_epoch=args.max_steps_per_epoch,
                        lr=args.lr, seed=args.seed, overwrite=args.overwrite, progress=not args.no_progress))
    return 0
