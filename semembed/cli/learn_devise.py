"""``learn_devise``: DeViSE (the reference's ``learn_devise.py``): hinge rank loss onto class embeddings, Adagrad.

With ``--init_weights`` (a pretrained network, loaded by layer name) the new projection trains alone
for ``--init_epochs`` at ``--init_lr``, then everything for ``--ft_epochs`` at ``--ft_lr`` (decayed
per step with ``--max_decay``); without it a fresh network trains ``--ft_epochs`` at ``--ft_lr``.
"""

from __future__ import annotations

import argparse

from semembed.cli._common import DefaultsFormatter, parse_args, reports_errors
from semembed.cli._training import add_data_flags, add_output_flags, add_training_flags, config_kwargs, run_training

def build_parser() -> argparse.ArgumentParser:
    from semembed.training.config import METHOD_DEFAULTS, TrainConfig

    d = TrainConfig()
    DEFAULTS = METHOD_DEFAULTS["devise"]
    p = argparse.ArgumentParser(prog="learn_devise", allow_abbrev=False,
                                formatter_class=DefaultsFormatter,
                                description="Learn to map images onto class embeddings with DeViSE's hinge rank loss.")
    g = p.add_argument_group("Data parameters")
    add_data_flags(g)
    g.add_argument("--embedding", required=True, help="Class-embedding file (compute_class_embedding); its rows are "
                   "L2-normalised and its ind2label restricts and orders the classes.")
    g = p.add_argument_group("DeViSE parameters")
    g.add_argument("--margin", type=float, default=DEFAULTS["margin"], help="Margin of the hinge rank loss.")
    g.add_argument("--init_weights", default=None, help="Pretrained weights (loaded by layer name) to start from; "
                   "then the projection trains alone first.")
    g.add_argument("--init_epochs", type=int, default=DEFAULTS["init_epochs"], help="Epochs of the projection alone (with --init_weights).")
    g.add_argument("--ft_epochs", type=int, default=DEFAULTS["ft_epochs"], help="Epochs of the whole network.")
    g.add_argument("--init_lr", type=float, default=DEFAULTS["init_lr"], help="Adagrad learning rate of the projection phase.")
    g.add_argument("--ft_lr", type=float, default=DEFAULTS["ft_lr"], help="Adagrad learning rate of the whole-network phase.")
    g.add_argument("--max_decay", type=float, default=0.0, help="If > 0, decay --ft_lr per step so the final rate is this fraction of it.")
    g = p.add_argument_group("Training parameters")
    _training_flags(g, d)
    add_output_flags(p, features="test-set embeddings (the projection's output)")
    p.set_defaults(clipgrad=0.0)  # the reference's DeViSE does not clip
    return p


def _training_flags(g, d) -> None:
    """The core's flags without those DeViSE fixes (schedule, optimiser, epochs, fine-tuning)."""
    tmp = argparse.ArgumentParser(add_help=False)
    add_training_flags(tmp, d, optimizers=())
    skip = {"--lr_schedule", "--max_decay", "--epochs", "--finetune", "--finetune_init", "--nesterov",
            "--initial_epoch"}
    for action in tmp._actions:
        if action.option_strings and not set(action.option_strings) & skip:
            g._add_action(action)


def config_from_args(args: argparse.Namespace):
    from semembed.errors import SemembedError
    from semembed.training.config import TrainConfig
    from semembed.training.schedules import ScheduleConfig

    from semembed.validation import check_number

    check_number("--margin", args.margin, 0)
    for flag in ("init_epochs", "ft_epochs"):
        if getattr(args, flag) < 0:
            raise SemembedError(f"--{flag} must be >= 0, got {getattr(args, flag)}")
    if args.ft_epochs < 1:
        raise SemembedError(f"--ft_epochs must be at least 1, got {args.ft_epochs}")
    for flag in ("init_lr", "ft_lr"):
        if getattr(args, flag) <= 0:
            raise SemembedError(f"--{flag} must be > 0, got {getattr(args, flag)}")
    for name, value in (("lr_schedule", "SGD"), ("sgdr_base_len", 12), ("sgdr_mul", 2), ("sgdr_max_lr", 0.1),
                        ("sgdr_min_lr", 1e-6), ("sgd_lr", args.ft_lr), ("sgd_patience", 10), ("sgd_min_lr", 1e-4),
                        ("sgd_schedule", None), ("clr_min_lr", 1e-5), ("clr_max_lr", 0.1), ("clr_step_len", 12),
                        ("cosine_max_lr", 0.1), ("cosine_min_lr", 0.0), ("epochs", args.ft_epochs), ("finetune", args.init_weights), ("initial_epoch", 0),
                        ("finetune_init", args.init_epochs if args.init_weights else 0), ("nesterov", False)):
        setattr(args, name, value)
    kw = config_kwargs(args)
    kw["schedule"] = ScheduleConfig(name="SGD", sgd_schedule=f"1:{args.ft_lr!r},{args.ft_epochs}",
                                    max_decay=args.max_decay)
    kw["epochs"] = args.ft_epochs
    return TrainConfig(**kw, task="devise", embedding=args.embedding, optimizer="adagrad",
                       task_options={"margin": args.margin}, warmup_lr=args.init_lr)


@reports_errors
def main(argv: list[str] | None = None) -> int:
    return run_training(config_from_args(parse_args(build_parser(), argv)))
