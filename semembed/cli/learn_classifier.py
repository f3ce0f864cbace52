"""``learn_classifier``: the softmax baseline as a program (the reference's ``learn_classifier.py``).

Every training flag of ``learn_image_embeddings`` plus ``--loss`` (a registered classifier loss),
``--label_smoothing`` and ``--class_list``; ``--feature_dump`` writes the penultimate features
(the input of ``prob``).
"""

from __future__ import annotations

import argparse

from semembed.cli._common import parse_args, reports_errors
from semembed.cli._training import (
    add_data_flags, add_output_flags, add_schedule_flags, add_training_flags, config_kwargs, run_training,
)

def build_parser() -> argparse.ArgumentParser:
    from semembed.training.config import BASELINE_FINETUNE_INIT, TrainConfig

    d = TrainConfig()
    p = argparse.ArgumentParser(prog="learn_classifier", allow_abbrev=False,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                description="Learn an image classifier (softmax baseline) with the training core.")
    g = p.add_argument_group("Data parameters")
    add_data_flags(g, class_list=True)
    g = p.add_argument_group("Training parameters")
    g.add_argument("--loss", default=d.classifier_loss,
                   help="Classification loss, a name registered in semembed.losses.classification (softmax, ...).")
    g.add_argument("--label_smoothing", type=float, default=d.label_smoothing,
                   help="Target 1 - eps for the true class and eps/(classes - 1) for the others (the reference's smoothing).")
    add_training_flags(g, d, finetune_init=BASELINE_FINETUNE_INIT)
    from semembed.cli._weakshot import add_graph_flags

    add_graph_flags(p)
    add_schedule_flags(p)
    add_output_flags(p, features="penultimate features (the input of 'prob') of the test images")
    return p


def config_from_args(args: argparse.Namespace):
    from semembed.errors import SemembedError
    from semembed.training.config import TrainConfig

    if not 0.0 <= args.label_smoothing < 1.0:
        raise SemembedError(f"--label_smoothing must be in [0, 1), got {args.label_smoothing}")
    from semembed.losses.classification import classifier_loss_names  # before any data is read

    if args.loss not in classifier_loss_names():
        raise SemembedError(f"unknown --loss {args.loss!r}; registered classifier losses: {', '.join(classifier_loss_names())}")
    return TrainConfig(**config_kwargs(args), task="classifier", classifier_loss=args.loss,
                       label_smoothing=args.label_smoothing)


@reports_errors
def main(argv: list[str] | None = None) -> int:
    return run_training(config_from_args(parse_args(build_parser(), argv)))
