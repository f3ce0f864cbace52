"""``learn_center_loss``: softmax + center loss (the reference's ``learn_center_loss.py``)."""

from __future__ import annotations

import argparse

from semembed.cli._common import DefaultsFormatter, parse_args, reports_errors
from semembed.cli._training import (
    add_data_flags, add_output_flags, add_schedule_flags, add_training_flags, config_kwargs, run_training,
)


def build_parser() -> argparse.ArgumentParser:
    from semembed.training.config import BASELINE_FINETUNE_INIT, METHOD_DEFAULTS, TrainConfig

    d = TrainConfig()
    p = argparse.ArgumentParser(prog="learn_center_loss", allow_abbrev=False,
                                formatter_class=DefaultsFormatter,
                                description="Learn image embeddings with softmax + center loss (Wen et al.).")
    g = p.add_argument_group("Data parameters")
    add_data_flags(g, class_list=True)
    g = p.add_argument_group("Center loss parameters")
    g.add_argument("--embed_dim", type=int, default=METHOD_DEFAULTS["center_loss"]["embed_dim"], help="Size of the learned embeddings (with --centroids: their dimension).")
    g.add_argument("--centroids", default=None, help="Class-embedding file: fixed class centres instead of learned ones "
                   "(its ind2label restricts and orders the classes).")
    g.add_argument("--center_loss_weight", type=float, default=METHOD_DEFAULTS["center_loss"]["center_loss_weight"],
                   help="Weight of the center loss (the softmax loss weighs 1).")
    g = p.add_argument_group("Training parameters")
    add_training_flags(g, d, finetune_init=BASELINE_FINETUNE_INIT)
    add_schedule_flags(p)
    add_output_flags(p, features="test-set embeddings")
    return p


def config_from_args(args: argparse.Namespace, argv: list[str] | None = None):
    from semembed.errors import SemembedError
    from semembed.training.config import TrainConfig

    if args.center_loss_weight < 0:
        raise SemembedError(f"--center_loss_weight must be >= 0, got {args.center_loss_weight}")
    if args.embed_dim < 1:
        raise SemembedError(f"--embed_dim must be at least 1, got {args.embed_dim}")
    if args.centroids and args.class_list:
        raise SemembedError("--class_list is not used with --centroids (its ind2label gives the classes)")
    if args.centroids and argv is not None and "--embed_dim" in argv:
        raise SemembedError("--embed_dim is not used with --centroids (the centroids' dimension is)")
    options = {"embed_dim": args.embed_dim, "center_loss_weight": args.center_loss_weight,
               "fixed_centroids": bool(args.centroids)}
    return TrainConfig(**config_kwargs(args), task="center_loss", embedding=args.centroids or "onehot",
                       task_options=options)


@reports_errors
def main(argv: list[str] | None = None) -> int:
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    return run_training(config_from_args(parse_args(build_parser(), argv), argv))
