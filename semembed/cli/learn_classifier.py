"""``learn_classifier``: the softmax baseline as a program (the reference's ``learn_classifier.py``).

Every training flag of ``learn_image_embeddings`` plus ``--loss`` (a registered classifier loss),
``--label_smoothing`` and ``--class_list``; ``--feature_dump`` writes the penultimate features
(the input of ``prob``).  The hierarchy-aware losses (``hxe``, ``soft_labels``, ``haframe``,
``hiercos``; :mod:`semembed.losses.hierarchy`) take ``--hierarchy H [--is_a] [--str_ids]`` and
their own options (``--hxe_alpha``, ``--soft_labels_beta``, ``--haf_gamma``, ``--haf_cos_weight``,
``--hiercos_alpha``); ``haframe`` and ``hiercos`` are their own tasks (a different head).
"""

from __future__ import annotations

import argparse

from semembed.cli._common import DefaultsFormatter, parse_args, reports_errors
from semembed.cli._training import (
    add_data_flags, add_output_flags, add_schedule_flags, add_training_flags, config_kwargs, run_training,
)

def build_parser() -> argparse.ArgumentParser:
    from semembed.training.config import BASELINE_FINETUNE_INIT, TrainConfig

    d = TrainConfig()
    p = argparse.ArgumentParser(prog="learn_classifier", allow_abbrev=False,
                                formatter_class=DefaultsFormatter,
                                description="Learn an image classifier (softmax baseline) with the training core.")
    g = p.add_argument_group("Data parameters")
    add_data_flags(g, class_list=True)
    g = p.add_argument_group("Training parameters")
    g.add_argument("--loss", default=d.classifier_loss,
                   help="Classification loss, a name registered in semembed.losses.classification (softmax, hxe, "
                   "soft_labels, ...) or a hierarchy-aware head (haframe, hiercos).")
    g.add_argument("--label_smoothing", type=float, default=d.label_smoothing,
                   help="Target 1 - eps for the true class and eps/(classes - 1) for the others (the reference's smoothing).")
    add_hierarchy_flags(p)
    add_training_flags(g, d, finetune_init=BASELINE_FINETUNE_INIT)
    from semembed.cli._weakshot import add_graph_flags

    add_graph_flags(p)
    add_schedule_flags(p)
    add_output_flags(p, features="penultimate features (the input of 'prob') of the test images")
    return p


#: --flag -> (loss it belongs to, task_options key)
HIERARCHY_OPTION_FLAGS = {
    "hxe_alpha": ("hxe", "hxe_alpha"), "soft_labels_beta": ("soft_labels", "soft_labels_beta"),
    "haf_gamma": ("haframe", "haf_gamma"), "haf_cos_weight": ("haframe", "haf_cos_weight"),
    "hiercos_alpha": ("hiercos", "hiercos_alpha"),
}


def add_hierarchy_flags(p) -> None:
    from semembed.training.config import METHOD_DEFAULTS

    g = p.add_argument_group("Hierarchy-aware losses (--loss hxe | soft_labels | haframe | hiercos)")
    g.add_argument("--hierarchy", default=None, help="Taxonomy file (parent child lines; see compute_class_embedding).")
    g.add_argument("--is_a", action="store_true", help="The taxonomy file has 'child parent' lines.")
    g.add_argument("--str_ids", action="store_true", help="Taxonomy ids are strings.")
    helps = {
        "hxe_alpha": "HXE: weight exp(-alpha * depth) of each root-path term (0: plain cross-entropy)",
        "soft_labels_beta": "soft labels: targets proportional to exp(-beta * LCA height / max height)",
        "haf_gamma": "HAFrame: decay of the cosines exp(-gamma * d / d_max)",
        "haf_cos_weight": "HAFrame: weight of the squared-cosine loss (1 - weight on the cross-entropy)",
        "hiercos_alpha": "Hier-COS: weight of the auxiliary per-level loss",
    }
    for flag, (loss, key) in HIERARCHY_OPTION_FLAGS.items():
        g.add_argument(f"--{flag}", type=float, default=None,
                       help=f"{helps[flag]} (default {METHOD_DEFAULTS[loss][key]}; only with --loss {loss}).%(default).0s")


def hierarchy_options(args: argparse.Namespace) -> dict:
    """task_options of the hierarchy-aware losses; a flag the chosen --loss would ignore is an error."""
    import math

    from semembed.errors import SemembedError
    from semembed.training.config import HIERARCHY_LOSSES

    opts = {}
    for flag, (loss, key) in HIERARCHY_OPTION_FLAGS.items():
        value = getattr(args, flag)
        if value is None:
            continue
        if args.loss != loss:
            raise SemembedError(f"--{flag} applies to --loss {loss} only (this run uses --loss {args.loss})")
        positive = flag in ("soft_labels_beta", "haf_gamma")  # γ = 0: every class vector the same
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise SemembedError(f"--{flag} must be a finite number {'> 0' if positive else '>= 0'}, got {value}")
        if flag == "haf_cos_weight" and value > 1:
            raise SemembedError(f"--haf_cos_weight must be in [0, 1] (the loss is (1 - w) CE + w cos-loss), got {value}")
        opts[key] = value
    if args.loss in HIERARCHY_LOSSES:
        if not args.hierarchy:
            raise SemembedError(f"--loss {args.loss} needs --hierarchy (a taxonomy file)")
        from semembed.taxonomy import load_hierarchy

        load_hierarchy(args.hierarchy, is_a=args.is_a, str_ids=args.str_ids)  # a bad file fails before any data is read
        opts.update(hierarchy=args.hierarchy, is_a=args.is_a, str_ids=args.str_ids)
    else:
        for flag in ("hierarchy", "is_a", "str_ids"):
            if getattr(args, flag):
                raise SemembedError(f"--{flag} is used only by the hierarchy-aware losses ({', '.join(HIERARCHY_LOSSES)}); "
                                    f"this run uses --loss {args.loss}")
    return opts


def config_from_args(args: argparse.Namespace):
    from semembed.errors import SemembedError
    from semembed.training.config import TrainConfig

    if not 0.0 <= args.label_smoothing < 1.0:
        raise SemembedError(f"--label_smoothing must be in [0, 1), got {args.label_smoothing}")
    from semembed.losses.classification import classifier_loss_names  # before any data is read
    from semembed.training.config import CLASSIFIER_LOSS_TASKS

    known = sorted(classifier_loss_names() + list(CLASSIFIER_LOSS_TASKS))
    if args.loss not in known:
        raise SemembedError(f"unknown --loss {args.loss!r}; registered classifier losses: {', '.join(known)}")
    options = hierarchy_options(args)
    task = CLASSIFIER_LOSS_TASKS.get(args.loss, "classifier")
    if (task != "classifier" or args.loss in ("hxe", "soft_labels")) and args.label_smoothing:
        raise SemembedError(f"--label_smoothing is not used by --loss {args.loss}"
                            + (" (its targets come from the taxonomy)" if task == "classifier" else ""))
    kw = config_kwargs(args)
    options = {**kw.pop("task_options", {}), **options}  # --graph_simnet's and the loss's own options
    return TrainConfig(**kw, task=task, classifier_loss=args.loss if task == "classifier" else "softmax",
                       label_smoothing=args.label_smoothing, task_options=options)


@reports_errors
def main(argv: list[str] | None = None) -> int:
    return run_training(config_from_args(parse_args(build_parser(), argv)))
