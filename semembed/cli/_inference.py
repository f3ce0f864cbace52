"""Flags shared by the inference programs (embed, predict, index, search): which model, which images."""

from __future__ import annotations

import argparse

from semembed.cli._checks import pixels


def add_model_flags(p: argparse.ArgumentParser, required: bool = True) -> None:
    from semembed.inference.embed import DEFAULT_BATCH_SIZE

    g = p.add_argument_group("Model")
    g.add_argument("--model", required=required, help="Model file: a .keras model of ours (carries its preprocessing), "
                   "or weights (a reference .h5, an .h5 or .weights.h5 dump) rebuilt with --architecture.")
    g.add_argument("--architecture", default=None, help="Network of .h5 / .weights.h5 files (e.g. resnet-110-wfc); "
                   "default: the one stored with our dumps; not needed for .keras.")
    g.add_argument("--preprocessing", default=None, metavar="PRESET|JSON",
                   help="How to prepare images when the model carries no preprocessing (the reference's models) or "
                   "to override it: cifar100, nabirds, nabirds-large, cub, ilsvrc, ilsvrc-large, or a JSON file with "
                   "mean, std, crop_size[, target_size, color_mode, channels].")
    g.add_argument("--layer", default=None, help="Name or index of the layer whose output are the features "
                   "(default: the embedding; for a plain classifier the input of 'prob').")
    g.add_argument("--embedding_dim", type=int, default=None, help="Embedding size of rebuilt .h5 networks (default: read from the file).")
    g.add_argument("--crop_size", type=pixels, default=None, metavar="N", help="Override the stored network input size (N x N).")
    g.add_argument("--target_size", type=pixels, default=None, metavar="N", help="Override the stored shorter side images are resized to before the centre crop.")
    g.add_argument("--batch_size", type=int, default=DEFAULT_BATCH_SIZE, help="Images per batch.")


def add_image_flags(g, what: str = "Images") -> None:
    g.add_argument("--images", nargs="+", required=True, metavar="PATH",
                   help=f"{what}: folders (searched recursively, e.g. train/<class>/...), list files (.txt, one path "
                   "per line, relative to the list) or single image files.")
    g.add_argument("--skip_unreadable", action="store_true", help="Leave unreadable image files out (with a warning) instead of stopping.")
    g.add_argument("--no_progress", action="store_true", help="No progress bar.")


def load_model_from_args(args):
    """The ``--model`` for inference; a file that is no model (a class embedding, a feature dump) is refused
    from its first bytes, before TensorFlow is imported."""
    import os

    from semembed.errors import SemembedError
    from semembed.io.sniff import WEIGHT_FORMATS, describe_file, looks_like_weights

    if os.path.isfile(args.model) and not looks_like_weights(args.model):
        raise SemembedError(f"--model {args.model} is {describe_file(args.model)}, not a model file; "
                            f"expected {WEIGHT_FORMATS}")
    from semembed.inference.model import load_inference_model

    return load_inference_model(args.model, architecture=args.architecture, preprocessing=args.preprocessing,
                                layer=args.layer, embedding_dim=args.embedding_dim, crop_size=args.crop_size,
                                target_size=args.target_size)


def check_batch_size(args) -> None:
    from semembed.errors import SemembedError

    if args.batch_size < 1:
        raise SemembedError(f"--batch_size must be at least 1, got {args.batch_size}")
