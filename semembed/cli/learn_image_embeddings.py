"""``learn_image_embeddings``: train a CNN to map images onto class embeddings (reference flags)."""

from __future__ import annotations

import argparse

from semembed.cli._common import DefaultsFormatter, parse_args, reports_errors
from semembed.cli._training import (
    SCHEDULES, add_data_flags, add_output_flags, add_schedule_flags, add_training_flags, config_kwargs, run_training,
)

__all__ = ["SCHEDULES", "build_parser", "config_from_args", "main"]


def build_parser() -> argparse.ArgumentParser:
    from semembed.training.config import TrainConfig

    d = TrainConfig()  # the defaults, written once
    p = argparse.ArgumentParser(
        prog="learn_image_embeddings", allow_abbrev=False,
        description="Learn to map images onto class embeddings with a custom training loop under "
        "tf.distribute (one device, --gpus N, --cpu_replicas N, or a TF_CONFIG cluster).",
        formatter_class=DefaultsFormatter,
    )
    g = p.add_argument_group("Data parameters")
    add_data_flags(g)
    g.add_argument("--embedding", default=None,
                   help="Class-embedding file from compute_class_embedding (.pickle or .npz); its ind2label "
                   "restricts and orders the classes. 'onehot' trains with one-hot targets (the cosine loss). "
                   "Required for --task embedding; optional for the other tasks (default there: all classes).")
    g = p.add_argument_group("Training parameters")
    g.add_argument("--loss", default="inv_corr", choices=["mse", "inv_corr", "unnorm_corr", "softmax_corr"],
                   help="inv_corr: 1 - <target, L2-normalised output>; mse: squared distance; unnorm_corr: "
                   "inv_corr without normalisation; softmax_corr: softmax output instead of normalisation.")
    g.add_argument("--cls_weight", type=float, default=0.0,
                   help="If > 0, add the classification head 'prob' and weight its cross-entropy by this (papers: 0.1).")
    g.add_argument("--cls_lr_multiplier", type=float, default=d.cls_lr_multiplier,
                   help="Learning-rate factor of the head's own layers (ReLU/BN/prob); 1/cls_weight lets them learn as "
                   "with weight 1 while the network sees the cross-entropy at --cls_weight.")
    g.add_argument("--cls_base", default=None, help="Name or index of the layer the classification head reads (default: the embedding output).")
    g.add_argument("--task", default=d.task,
                   help="Training method, a registered task: embedding (class embeddings, the reference's), "
                   "classifier (softmax baseline), metric (contrastive loss on the global batch), devise, "
                   "center_loss, label_embedding (see also their own programs).")
    g.add_argument("--embedding_dim", type=int, default=d.embedding_dim, help="Embedding size of --task metric.")
    add_training_flags(g, d)
    from semembed.cli._weakshot import add_graph_flags

    add_graph_flags(p)
    add_schedule_flags(p)
    add_output_flags(p)
    return p


def config_from_args(args: argparse.Namespace):
    """The run's :class:`TrainConfig`; cheap flags (names, sizes) are checked here, before any data is read."""
    from semembed.errors import SemembedError
    from semembed.training.config import TrainConfig

    kwargs = config_kwargs(args)  # checks the cheap flags first
    if args.embedding is None and args.task.lower() == "embedding":
        raise SemembedError("--task embedding needs --embedding FILE (from compute_class_embedding) or 'onehot'")
    config = TrainConfig(**kwargs, embedding=args.embedding or "onehot", loss=args.loss, cls_weight=args.cls_weight,
                         cls_base=args.cls_base, cls_lr_multiplier=args.cls_lr_multiplier, task=args.task.lower(),
                         embedding_dim=args.embedding_dim)
    config.check_flags_used()
    return config


@reports_errors
def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    return run_training(config_from_args(args))
