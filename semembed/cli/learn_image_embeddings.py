"""``learn_image_embeddings``: train a CNN to map images onto class embeddings (reference flags)."""

from __future__ import annotations

import argparse
import sys

from semembed.cli._checks import add_size_flags, check_architecture, check_sizes
from semembed.cli._common import DefaultsFormatter, parse_args, reports_errors

SCHEDULES = ["SGDR", "SGD", "CLR", "ResNet-Schedule", "cosine"]


def build_parser() -> argparse.ArgumentParser:
    from semembed.training.config import TrainConfig

    d = TrainConfig()  # the defaults, written once
    p = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="learn_image_embeddings",
        description="Learn to map images onto class embeddings with a custom training loop under "
        "tf.distribute (one device, --gpus N, --cpu_replicas N, or a TF_CONFIG cluster).",
        formatter_class=DefaultsFormatter,
    )
    g = p.add_argument_group("Data parameters")
    g.add_argument("--dataset", default="default",
                   help="Dataset name (CIFAR-100, NAB, CUB, ILSVRC, iNat, Fashion-MNIST, ImageFolder, ...; see README). "
                   "'default' is the embedded demo dataset (Fashion-MNIST when installed, else scikit-learn's digits).")
    g.add_argument("--data_root", default=None, help="Root directory of the dataset (default: the dataset's standard location).")
    g.add_argument("--embedding", default=None,
                   help="Class-embedding file from compute_class_embedding (.pickle or .npz); its ind2label "
                   "restricts and orders the classes. 'onehot' trains with one-hot targets (the cosine loss). "
                   "Required for --task embedding; optional for the other tasks (default there: all classes).%(default).0s")
    add_size_flags(g)
    g = p.add_argument_group("Training parameters")
    g.add_argument("--architecture", default="simple", help="Network architecture (simple, resnet-110-wfc, wrn-28-10, ...).")
    g.add_argument("--loss", default="inv_corr", choices=["mse", "inv_corr", "unnorm_corr", "softmax_corr"],
                   help="inv_corr: 1 - <target, L2-normalised output>; mse: squared distance; unnorm_corr: "
                   "inv_corr without normalisation; softmax_corr: softmax output instead of normalisation.")
    g.add_argument("--cls_weight", type=float, default=0.0,
                   help="If > 0, add the classification head 'prob' and weight its cross-entropy by this (papers: 0.1).")
    g.add_argument("--cls_lr_multiplier", type=float, default=d.cls_lr_multiplier,
                   help="Learning-rate factor of the head's own layers (ReLU/BN/prob); 1/cls_weight lets them learn as "
                   "with weight 1 while the network sees the cross-entropy at --cls_weight.")
    g.add_argument("--cls_base", default=None, help="Name or index of the layer the classification head reads (default: the embedding output).")
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
    g.add_argument("--finetune_init", type=int, default=8,
                   help="With --finetune: epochs that train only the new layers ('embedding', 'prob') first.")
    g.add_argument("--gpus", type=int, default=1, help="GPUs to train on with MirroredStrategy (0: all visible).")
    g.add_argument("--cpu_replicas", type=int, default=0,
                   help="Split the CPU into N logical devices and train N replicas (testing/debugging multi-replica runs).")
    g.add_argument("--read_workers", type=int, default=8, help="Accepted for compatibility; tf.data decodes in parallel (AUTOTUNE).")
    g.add_argument("--queue_size", type=int, default=100, help="Accepted for compatibility; tf.data prefetches (AUTOTUNE).")
    g.add_argument("--task", default=d.task,
                   help="Training method, a registered task: embedding (class embeddings, the reference's), "
                   "classifier (softmax baseline), metric (contrastive loss on the global batch).")
    g.add_argument("--optimizer", default=d.optimizer, choices=["sgd", "adam", "adamw"],
                   help="Optimizer; the learning rate comes from --lr_schedule.")
    g.add_argument("--momentum", type=float, default=d.momentum, help="SGD momentum (the reference's 0.9).")
    g.add_argument("--weight_decay", type=float, default=d.weight_decay,
                   help="Extra weight decay on kernels, besides the architecture's own L2: coupled L2 "
                   "(gradient of wd*sum(W^2), Keras-2 l2 style) for sgd/adam, decoupled for adamw.")
    g.add_argument("--embedding_dim", type=int, default=d.embedding_dim, help="Embedding size of --task metric.")
    g.add_argument("--sample_weights", default=None, metavar="CSV",
                   help="Per-image loss weights: CSV with a header and the columns 'path' (relative to --data_root "
                   "or absolute; 'index' for in-memory datasets) and 'weight'; unlisted images weigh 1.")
    g.add_argument("--m_per_class", type=int, default=d.m_per_class, metavar="M",
                   help="If > 0, batches of batch_size/M classes x M images each (m-per-class sampling).")
    g.add_argument("--mixed_precision", default=d.mixed_precision, choices=["off", "float16", "bfloat16"],
                   help="Mixed precision (Keras dtype policy; float16 with dynamic loss scaling; losses in float32).")
    g.add_argument("--jit_compile", action="store_true", help="XLA-compile the loss and gradient computation.")
    g.add_argument("--top_k_acc", type=int, nargs="+", default=[], metavar="K", help="Also report top-K nearest-class-embedding accuracy.")
    g.add_argument("--seed", type=int, default=0, help="Seed of data order, augmentation and initialisation.")
    g.add_argument("--deterministic", action="store_true", help="Deterministic TensorFlow ops (bit-identical reruns and resumes; slower).")
    g.add_argument("--max_steps_per_epoch", type=int, default=None, help="Cap the steps of each epoch (quick experiments).")
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
    g.add_argument("--cosine_max_lr", type=float, default=d.schedule.cosine_max_lr, help="cosine: learning rate of the first step.")
    g.add_argument("--cosine_min_lr", type=float, default=d.schedule.cosine_min_lr, help="cosine: learning rate of the last step.")
    g = p.add_argument_group("Output parameters")
    g.add_argument("--model_dump", default=None, help="Write the trained model: .keras, or legacy Keras-2 .h5.")
    g.add_argument("--weight_dump", default=None, help="Write the weights: .weights.h5 (Keras 3) or legacy .h5.")
    g.add_argument("--feature_dump", default=None,
                   help="Write test-set embeddings in test order: reference pickle {'feat': {i: vector}}, or .npz (feat, labels).")
    g.add_argument("--log_dir", default=None, help="TensorBoard directory (losses, metrics, learning rate per epoch).")
    g.add_argument("--no_progress", action="store_true", help="No progress bar and per-epoch lines, only the final performance.")
    g.add_argument("--overwrite", action="store_true", help="Replace existing dump files (refused otherwise).")
    return p


def config_from_args(args: argparse.Namespace):
    """The run's :class:`TrainConfig`; cheap flags (names, sizes) are checked here, before any data is read."""
    check_architecture(args.architecture)
    check_sizes(args.target_size, args.crop_size)
    from semembed.errors import SemembedError

    if args.embedding is None and args.task.lower() == "embedding":
        raise SemembedError("--task embedding needs --embedding FILE (from compute_class_embedding) or 'onehot'")
    from semembed.training.config import TrainConfig
    from semembed.training.schedules import ScheduleConfig

    schedule = ScheduleConfig(
        name=args.lr_schedule, sgdr_base_len=args.sgdr_base_len, sgdr_mul=args.sgdr_mul, sgdr_max_lr=args.sgdr_max_lr,
        sgdr_min_lr=args.sgdr_min_lr, sgd_lr=args.sgd_lr, sgd_patience=args.sgd_patience, sgd_min_lr=args.sgd_min_lr,
        sgd_schedule=args.sgd_schedule, clr_min_lr=args.clr_min_lr, clr_max_lr=args.clr_max_lr,
        clr_step_len=args.clr_step_len, max_decay=args.max_decay, cosine_max_lr=args.cosine_max_lr,
        cosine_min_lr=args.cosine_min_lr,
    )
    best_path = None
    if args.snapshot_best:
        from semembed.errors import SemembedError

        if not args.snapshot:
            raise SemembedError("--snapshot_best needs --snapshot (the best model goes to <snapshot>.best.keras)")
        best_path = args.snapshot + ".best.keras"
    config = TrainConfig(
        dataset=args.dataset, data_root=args.data_root, target_size=args.target_size, crop_size=args.crop_size,
        embedding=args.embedding or "onehot", architecture=args.architecture,
        loss=args.loss, cls_weight=args.cls_weight, cls_base=args.cls_base, schedule=schedule, clipgrad=args.clipgrad,
        nesterov=args.nesterov, epochs=args.epochs, initial_epoch=args.initial_epoch, batch_size=args.batch_size,
        val_batch_size=args.val_batch_size, snapshot=args.snapshot, snapshot_best=args.snapshot_best,
        snapshot_best_path=best_path, finetune=args.finetune, finetune_init=args.finetune_init, gpus=args.gpus,
        cpu_replicas=args.cpu_replicas, read_workers=args.read_workers, queue_size=args.queue_size,
        model_dump=args.model_dump, weight_dump=args.weight_dump, feature_dump=args.feature_dump,
        log_dir=args.log_dir, no_progress=args.no_progress, top_k_acc=tuple(args.top_k_acc), seed=args.seed,
        deterministic=args.deterministic, max_steps_per_epoch=args.max_steps_per_epoch, overwrite=args.overwrite,
        cls_lr_multiplier=args.cls_lr_multiplier, task=args.task.lower(), optimizer=args.optimizer,
        momentum=args.momentum, weight_decay=args.weight_decay,
        embedding_dim=args.embedding_dim, sample_weights=args.sample_weights, m_per_class=args.m_per_class,
        mixed_precision=args.mixed_precision, jit_compile=args.jit_compile,
    )
    config.check_flags_used()
    return config


@reports_errors
def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    config = config_from_args(args)
    return run_training(config)


def run_training(config) -> int:
    """Train as configured; exit status 3 for a NaN loss, 2 for an unreadable input."""
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
