"""Flags every training program shares (learn_image_embeddings, learn_classifier, learn_devise, ...).

Each program adds its method's own flags, then :func:`config_kwargs` turns the
shared ones into :class:`~semembed.training.TrainConfig` arguments.  Defaults
are the reference's (``TrainConfig``); a program whose reference differs passes
its own (e.g. ``finetune_init``: 8 for learn_image_embeddings, 3 for the baselines).
"""

from __future__ import annotations

import argparse
import sys

from semembed.cli._checks import add_size_flags, check_architecture, check_sizes

SCHEDULES = ["SGDR", "SGD", "CLR", "ResNet-Schedule", "cosine"]


def add_data_flags(g, class_list: bool = False) -> None:
    g.add_argument("--dataset", default="default",
                   help="Dataset name (CIFAR-100, NAB, CUB, ILSVRC, iNat, Fashion-MNIST, ImageFolder, ...; see README). "
                   "Default: 'default', the embedded demo dataset (Fashion-MNIST when installed, else scikit-learn's "
                   "digits).")
    g.add_argument("--data_root", default=None, help="Root directory of the dataset (default: the dataset's standard location).")
    if class_list:
        g.add_argument("--class_list", default=None,
                       help="File with the ids of the classes to use, in this order (first word of each non-empty line).")
    add_size_flags(g)


def add_training_flags(g, d, finetune_init: int | None = None, optimizers=("sgd", "adam", "adamw")) -> None:
    """The training-core flags (architecture, schedule, optimiser, snapshots, replicas, ...)."""
    g.add_argument("--architecture", default="simple", help="Network architecture (simple, resnet-110-wfc, wrn-28-10, ...).")
    g.add_argument("--lr_schedule", default="SGDR", choices=SCHEDULES,
                   help="Learning-rate schedule: the reference's four, or cosine (ours: per-step cosine decay from "
                   "--cosine_max_lr to --cosine_min_lr over --epochs; suits short runs).")
    g.add_argument("--clipgrad", type=float, default=10.0, help="Clip the global gradient norm to this (0: off).")
    g.add_argument("--max_decay", type=float, default=0.0,
                   help="If > 0, decay the rate per step as lr/(1 + d*step) so the final rate is this fraction of the scheduled one.")
    g.add_argument("--nesterov", action="store_true", help="Nesterov momentum instead of standard momentum (0.9).")
    g.add_argument("--epochs", type=int, default=None,
                   help="Number of epochs (default: the schedule's: SGDR 372, SGD 200, CLR 240, ResNet 164).%(default).0s")
    g.add_argument("--batch_size", type=int, default=100, help="Global batch size (split over the replicas).")
    g.add_argument("--val_batch_size", type=int, default=None, help="Validation batch size (default: --batch_size).")
    g.add_argument("--snapshot", default=None,
                   help="Snapshot file written atomically after every epoch (weights, optimizer state, epoch, schedule); "
                   "if it exists, training resumes from it exactly.")
    g.add_argument("--snapshot_best", nargs="?", const="val_loss", default=None, metavar="METRIC",
                   help="Also keep the model with the best METRIC (default val_loss; e.g. val_accuracy) in "
                   "<snapshot>.best.keras (needs --snapshot).")
    g.add_argument("--initial_epoch", type=int, default=0, help="Epoch to start at (when resuming from a reference .h5 snapshot).")
    g.add_argument("--finetune", default=None,
                   help="Weights to fine-tune (.h5 of the reference or ours, .weights.h5), loaded by layer name; mismatches skipped.")
    g.add_argument("--finetune_init", type=int, default=d.finetune_init if finetune_init is None else finetune_init,
                   help="With --finetune: epochs that train only the new layers first.")
    g.add_argument("--gpus", type=int, default=1, help="GPUs to train on with MirroredStrategy (0: all visible).")
    g.add_argument("--cpu_replicas", type=int, default=0,
                   help="Split the CPU into N logical devices and train N replicas (testing/debugging multi-replica runs).")
    g.add_argument("--read_workers", type=int, default=8, help="Accepted for compatibility; tf.data decodes in parallel (AUTOTUNE).")
    g.add_argument("--queue_size", type=int, default=100, help="Accepted for compatibility; tf.data prefetches (AUTOTUNE).")
    if optimizers:
        g.add_argument("--optimizer", default=d.optimizer, choices=list(optimizers),
                       help="Optimizer; the learning rate comes from --lr_schedule.")
        g.add_argument("--momentum", type=float, default=d.momentum, help="SGD momentum (the reference's 0.9).")
    g.add_argument("--weight_decay", type=float, default=d.weight_decay,
                   help="Extra weight decay on kernels, besides the architecture's own L2: coupled L2 "
                   "(gradient of wd*sum(W^2), Keras-2 l2 style) for sgd/adam, decoupled for adamw.")
    g.add_argument("--sample_weights", default=None, metavar="CSV",
                   help="Per-image loss weights: CSV with a header and the columns 'path' (relative to --data_root "
                   "or absolute; 'index' for in-memory datasets) and 'weight'; unlisted images weigh 1.")
    g.add_argument("--m_per_class", type=int, default=d.m_per_class, metavar="M",
                   help="If > 0, batches of batch_size/M classes x M images each (m-per-class sampling).")
    g.add_argument("--mixed_precision", default=d.mixed_precision, choices=["off", "float16", "bfloat16"],
                   help="Mixed precision (Keras dtype policy; float16 with dynamic loss scaling; losses in float32).")
    g.add_argument("--jit_compile", action="store_true", help="XLA-compile the loss and gradient computation.")
    g.add_argument("--top_k_acc", type=int, nargs="+", default=[], metavar="K", help="Also report top-K accuracy.")
    g.add_argument("--seed", type=int, default=0, help="Seed of data order, augmentation and initialisation.")
    g.add_argument("--deterministic", action="store_true", help="Deterministic TensorFlow ops (bit-identical reruns and resumes; slower).")
    g.add_argument("--max_steps_per_epoch", type=int, default=None, help="Cap the steps of each epoch (quick experiments).")
    g.add_argument("--precise_bn_batches", type=int, default=0,
                   help="After training, recompute the BatchNorm statistics at the final weights over this many "
                   "training batches (PreciseBN, Wu & Johnson 2021; fvcore uses 200). Short runs need it: the moving "
                   "averages lag behind the weights (0: keep them).")


def add_schedule_flags(p) -> None:
    g = p.add_argument_group("Learning-rate schedule parameters")
    g.add_argument("--sgdr_base_len", type=int, default=12, help="SGDR: length of the first cycle in epochs.")
    g.add_argument("--sgdr_mul", type=int, default=2, help="SGDR: factor by which each cycle is longer than the last.")
    g.add_argument("--sgdr_max_lr", type=float, default=0.1, help="SGDR: maximum learning rate.")
    g.add_argument("--sgdr_min_lr", type=float, default=1e-6, help="SGDR: minimum learning rate.")
    g.add_argument("--sgd_lr", type=float, default=0.1, help="SGD: initial learning rate.")
    g.add_argument("--sgd_patience", type=int, default=10, help="SGD: epochs without val_loss improvement before the rate drops x0.1.")
    g.add_argument("--sgd_min_lr", type=float, default=1e-4, help="SGD: lowest rate of the plateau reduction.")
    g.add_argument("--sgd_schedule", default=None, help="SGD: explicit 'epoch:lr,...,epochs' schedule, 1-based, e.g. '1:0.1,31:0.01,41:0.001,50'.")
    g.add_argument("--clr_min_lr", type=float, default=1e-5, help="CLR: minimum learning rate.")
    g.add_argument("--clr_max_lr", type=float, default=0.1, help="CLR: maximum learning rate.")
    g.add_argument("--clr_step_len", type=int, default=12, help="CLR: half-cycle length in epochs.")
    g.add_argument("--cosine_max_lr", type=float, default=0.1, help="cosine: learning rate of the first step.")
    g.add_argument("--cosine_min_lr", type=float, default=0.0, help="cosine: learning rate of the last step.")


def add_output_flags(p, features: str = "test-set embeddings") -> None:
    g = p.add_argument_group("Output parameters")
    g.add_argument("--model_dump", default=None, help="Write the trained model: .keras, or legacy Keras-2 .h5 "
                   "(both carry the preprocessing and class ids for 'semembed embed/predict').")
    g.add_argument("--weight_dump", default=None, help="Write the weights: .weights.h5 (Keras 3) or legacy .h5.")
    g.add_argument("--feature_dump", default=None,
                   help=f"Write the {features} in test order: reference pickle {{'feat': {{i: vector}}}}, or .npz (feat, labels).")
    g.add_argument("--log_dir", default=None, help="TensorBoard directory (losses, metrics, learning rate per epoch).")
    g.add_argument("--no_progress", action="store_true", help="No progress bar and per-epoch lines, only the final performance.")
    g.add_argument("--overwrite", action="store_true", help="Replace existing dump files (refused otherwise).")


def config_kwargs(args: argparse.Namespace) -> dict:
    """TrainConfig arguments of the shared flags; cheap flags (names, sizes) are checked here, before any data is read."""
    from semembed.errors import SemembedError

    check_architecture(args.architecture)
    check_sizes(args.target_size, args.crop_size)
    schedule = schedule_config(args) if hasattr(args, "sgdr_base_len") else None
    best_path = None
    if args.snapshot_best:
        if not args.snapshot:
            raise SemembedError("--snapshot_best needs --snapshot (the best model goes to <snapshot>.best.keras)")
        best_path = args.snapshot + ".best.keras"
    kw = dict(
        dataset=args.dataset, data_root=args.data_root, target_size=args.target_size, crop_size=args.crop_size,
        architecture=args.architecture, clipgrad=args.clipgrad,
        nesterov=args.nesterov, epochs=args.epochs, initial_epoch=args.initial_epoch, batch_size=args.batch_size,
        val_batch_size=args.val_batch_size, snapshot=args.snapshot, snapshot_best=args.snapshot_best,
        snapshot_best_path=best_path, finetune=args.finetune, finetune_init=args.finetune_init, gpus=args.gpus,
        cpu_replicas=args.cpu_replicas, read_workers=args.read_workers, queue_size=args.queue_size,
        model_dump=args.model_dump, weight_dump=args.weight_dump, feature_dump=args.feature_dump,
        log_dir=args.log_dir, no_progress=args.no_progress, top_k_acc=tuple(args.top_k_acc), seed=args.seed,
        deterministic=args.deterministic, max_steps_per_epoch=args.max_steps_per_epoch, overwrite=args.overwrite,
        precise_bn_batches=args.precise_bn_batches,
        weight_decay=args.weight_decay, sample_weights=args.sample_weights, m_per_class=args.m_per_class,
        mixed_precision=args.mixed_precision, jit_compile=args.jit_compile,
    )
    if schedule is not None:
        kw["schedule"] = schedule
    if hasattr(args, "optimizer"):
        kw.update(optimizer=args.optimizer, momentum=args.momentum)
    if getattr(args, "class_list", None):
        kw["class_list"] = args.class_list
    from semembed.cli._weakshot import graph_task_options

    kw.update(graph_task_options(args))  # --graph_simnet (learn_classifier, learn_image_embeddings)
    return kw


def schedule_config(args: argparse.Namespace):
    """The ``ScheduleConfig`` of ``--lr_schedule`` from the flags it reads; a typed flag it would ignore
    (``--cosine_max_lr`` with SGDR, ``--sgd_patience`` with ``--sgd_schedule``) is an error naming both."""
    import dataclasses

    from semembed.cli._common import was_given
    from semembed.errors import SemembedError
    from semembed.training.schedules import ScheduleConfig, unused_schedule_fields

    unused = unused_schedule_fields(args.lr_schedule, args.sgd_schedule)
    for name, why in unused.items():
        if was_given(args, name):
            raise SemembedError(f"--{name} {why}")
    fields = [f.name for f in dataclasses.fields(ScheduleConfig)
              if f.name not in unused and f.name != "name" and hasattr(args, f.name)]  # plateau: no flag
    return ScheduleConfig(name=args.lr_schedule, **{f: getattr(args, f) for f in fields})


def run_training(config) -> int:
    """``train(config)`` with the exit statuses of the training programs (3: NaN loss, 2: bad data)."""
    config.check_flags_used()  # bad numbers and ignored flags: before TensorFlow is imported or data read
    from semembed.training.run import train
    from semembed.training.trainer import NaNLossError

    import tensorflow as tf

    try:
        train(config)
    except NaNLossError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except tf.errors.OpError as exc:  # e.g. an unreadable image with a strict dataset
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    return 0
