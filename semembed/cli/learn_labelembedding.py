"""``learn_labelembedding``: the label-embedding network (the reference's ``learn_labelembedding.py``)."""

from __future__ import annotations

import argparse

from semembed.cli._common import DefaultsFormatter, parse_args, reports_errors
from semembed.cli._training import (
    add_data_flags, add_output_flags, add_schedule_flags, add_training_flags, config_kwargs, run_training,
)


def build_parser() -> argparse.ArgumentParser:
    from semembed.training.config import BASELINE_FINETUNE_INIT, METHOD_DEFAULTS, TrainConfig

    d = TrainConfig()
    m = METHOD_DEFAULTS["label_embedding"]
    p = argparse.ArgumentParser(prog="learn_labelembedding", allow_abbrev=False,
                                formatter_class=DefaultsFormatter,
                                description="Train a label embedding network (Sun et al.).")
    g = p.add_argument_group("Data parameters")
    add_data_flags(g, class_list=True)
    g = p.add_argument_group("Label embedding parameters")
    g.add_argument("--embed_dim", type=int, default=m["embed_dim"], help="Embedding size.")
    g.add_argument("--tau", type=float, default=m["tau"], help="Softmax temperature of the second head's targets.")
    g.add_argument("--alpha", type=float, default=m["alpha"], help="Cap on the second head's true-class probability.")
    g.add_argument("--beta", type=float, default=m["beta"], help="Weight of the hard targets in the first head's loss.")
    g = p.add_argument_group("Training parameters")
    add_training_flags(g, d, finetune_init=BASELINE_FINETUNE_INIT)
    add_schedule_flags(p)
    add_output_flags(p, features="test-set embeddings")
    return p


def config_from_args(args: argparse.Namespace):
    from semembed.errors import SemembedError
    from semembed.training.config import TrainConfig

    if args.embed_dim < 1:
        raise SemembedError(f"--embed_dim must be at least 1, got {args.embed_dim}")
    if args.tau <= 0:
        raise SemembedError(f"--tau must be > 0, got {args.tau}")
    if not 0.0 <= args.beta <= 1.0:
        raise SemembedError(f"--beta must be in [0, 1], got {args.beta}")
    from semembed.validation import check_number

    check_number("--alpha", args.alpha, 0, 1, low_open=True, note=" (a cap on a probability)")
    options = {"embed_dim": args.embed_dim, "tau": args.tau, "alpha": args.alpha, "beta": args.beta}
    return TrainConfig(**config_kwargs(args), task="label_embedding", task_options=options)


@reports_errors
def main(argv: list[str] | None = None) -> int:
    return run_training(config_from_args(parse_args(build_parser(), argv)))
