"""``learn_simnet``: train SimNet (the pair model of SimTrans) on base-class pairs, optionally adversarially.

Base data: ``--dataset``/``--data_root`` (any registry dataset, ``--class_list`` restricts it; an
``ImageFolder`` of ``train/<class>/``, ``test/<class>/``); ``--web_root``: the novel classes' image
folder (web images in ``train/<class>/``), which adds the web stream and the domain loss (``--beta``).
"""

from __future__ import annotations

import argparse

from semembed.cli._common import DefaultsFormatter, parse_args, reports_errors
from semembed.cli._training import add_data_flags
from semembed.training.config import TrainConfig
from semembed.weakshot.config import SIMNET_DEFAULTS as D


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="learn_simnet", allow_abbrev=False,
                                formatter_class=DefaultsFormatter,
                                description="Learn SimNet: P(same class) of image pairs, from clean base classes "
                                "(SimTrans; section 2.2 of WEAKSHOT.md, the project's spec of the reference code, not shipped in the "
                                "checkout). The model is written to --model_dump.")
    g = p.add_argument_group("Data parameters")
    add_data_flags(g, class_list=True)
    g.add_argument("--web_root", default=None,
                   help="Image folder of the novel classes (web images in train/<class>/, clean test images in "
                   "test/<class>/): web batches share SimNet's BatchNorm, feed the adversarial loss, and the novel "
                   "pair F1 is reported at the end.")
    g = p.add_argument_group("Training parameters")
    g.add_argument("--architecture", default="simple", help="Backbone architecture (simple, simple-tiny, resnet-50, ...).")
    g.add_argument("--init_classifier", default=None, metavar="FILE",
                   help="Initialise the backbone from a classifier of the same architecture (learn_classifier "
                   "--model_dump; the reference uses the one trained on the web images), by layer name.")
    g.add_argument("--epochs", type=int, default=D["epochs"], help="Number of epochs.")
    g.add_argument("--batch_size", type=int, default=D["batch_size"], help="Images per batch of each stream (global).")
    g.add_argument("--classes_per_batch", type=int, default=D["classes_per_batch"],
                   help="Base classes per batch (>= 2; at most the base classes, else all of them with a warning).")
    g.add_argument("--web_classes_per_batch", type=int, default=None,
                   help=f"Novel classes per web batch (default {D['web_classes_per_batch']}; needs --web_root).")
    g.add_argument("--beta", type=float, default=None,
                   help=f"Weight of the adversarial domain loss (default {D['beta']} with --web_root, see "
                   "semembed.weakshot.config; 0: the released script).")
    g.add_argument("--discriminator_lr_multiplier", type=float, default=None,
                   help="The discriminator's learning rate relative to SimNet's (default "
                   f"{D['discriminator_lr_multiplier']}; needs --web_root).")
    g.add_argument("--lr", type=float, default=D["lr"], help="Initial learning rate (SGD with momentum).")
    g.add_argument("--lr_interval", type=int, default=D["lr_interval"], help="Halve the learning rate every N epochs.")
    g.add_argument("--momentum", type=float, default=0.9, help="SGD momentum.")
    g.add_argument("--weight_decay", type=float, default=D["weight_decay"],
                   help="Coupled L2 weight decay on kernels (besides the architecture's own).")
    g.add_argument("--clipgrad", type=float, default=10.0, help="Clip the global gradient norm to this (0: off).")
    g.add_argument("--snapshot", default=None,
                   help="Snapshot file written after every epoch; if it exists, training resumes from it exactly.")
    g.add_argument("--gpus", type=int, default=1, help="GPUs to train on with MirroredStrategy (0: all visible).")
    g.add_argument("--cpu_replicas", type=int, default=0, help="Split the CPU into N logical devices (testing).")
    g.add_argument("--mixed_precision", default="off", choices=["off", "float16", "bfloat16"], help="Mixed precision.")
    g.add_argument("--jit_compile", action="store_true", help="XLA-compile the loss and gradient computation.")
    g.add_argument("--seed", type=int, default=0, help="Seed of data order, augmentation and initialisation.")
    g.add_argument("--deterministic", action="store_true", help="Deterministic TensorFlow ops (bit-identical resumes).")
    g.add_argument("--max_steps_per_epoch", type=int, default=None, help="Cap the steps of each epoch.")
    g.add_argument("--precise_bn_batches", type=int, default=TrainConfig.precise_bn_batches,
                   help="After training, recompute the BatchNorm statistics at the final weights over this many "
                   "training batches, each a base batch with its web batch as in training (PreciseBN, Wu & Johnson "
                   "2021); the final pair F1 and the saved SimNet use them (0: keep the moving averages).")
    g = p.add_argument_group("Output parameters")
    g.add_argument("--model_dump", required=True, help="Write the SimNet here (.keras).")
    g.add_argument("--log_dir", default=None, help="TensorBoard directory.")
    g.add_argument("--no_progress", action="store_true", help="No progress bar and per-epoch lines.")
    g.add_argument("--overwrite", action="store_true", help="Replace an existing --model_dump.")
    return p


def config_from_args(args: argparse.Namespace):
    from semembed.cli._checks import check_architecture, check_sizes
    from semembed.errors import SemembedError
    from semembed.training.config import TrainConfig
    from semembed.training.schedules import ScheduleConfig
    from semembed.weakshot.simnet_training import SimNetOptions, step_schedule

    check_architecture(args.architecture)
    check_sizes(args.target_size, args.crop_size)
    if not args.model_dump.endswith(".keras"):
        raise SemembedError(f"--model_dump {args.model_dump}: use a name ending in .keras")
    if args.batch_size < 2:
        raise SemembedError(f"--batch_size must be >= 2 (pairs), got {args.batch_size}")
    schedule = ScheduleConfig(name="SGD", sgd_schedule=step_schedule(args.lr, args.lr_interval, args.epochs))
    config = TrainConfig(
        task="simnet", dataset=args.dataset, data_root=args.data_root, class_list=args.class_list,
        target_size=args.target_size, crop_size=args.crop_size, architecture=args.architecture, schedule=schedule,
        clipgrad=args.clipgrad, momentum=args.momentum, weight_decay=args.weight_decay, epochs=args.epochs,
        batch_size=args.batch_size, snapshot=args.snapshot, gpus=args.gpus, cpu_replicas=args.cpu_replicas,
        mixed_precision=args.mixed_precision, jit_compile=args.jit_compile, seed=args.seed,
        deterministic=args.deterministic, max_steps_per_epoch=args.max_steps_per_epoch,
        precise_bn_batches=args.precise_bn_batches, model_dump=args.model_dump,
        log_dir=args.log_dir, no_progress=args.no_progress, overwrite=args.overwrite)
    options = SimNetOptions(web_root=args.web_root, beta=args.beta, classes_per_batch=args.classes_per_batch,
                            web_classes_per_batch=args.web_classes_per_batch,
                            discriminator_lr_multiplier=args.discriminator_lr_multiplier,
                            init_classifier=args.init_classifier)
    config.check_values()  # before TensorFlow is imported or any data read
    options.check()
    return config, options


@reports_errors
def main(argv: list[str] | None = None) -> int:
    config, options = config_from_args(parse_args(build_parser(), argv))
    from semembed.weakshot.simnet_training import train_simnet

    import tensorflow as tf

    try:
        train_simnet(config, options)
    except tf.errors.OpError as exc:
        import sys

        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    return 0
