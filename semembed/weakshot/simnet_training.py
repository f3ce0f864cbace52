"""``train_simnet``: what ``learn_simnet`` does, as a library call (WEAKSHOT.md §2.2).

Base data: any registry dataset (restricted by ``class_list``) or an image
folder; pair batches of ``classes_per_batch`` classes (:class:`ClassSubsetSampler`).
With ``web_root`` (an image folder whose ``train/<class>/`` holds the novel
web images) a second stream of web batches of ``web_classes_per_batch``
classes enters every step: the web images share SimNet's BatchNorm and,
with β > 0, the adversarial domain loss.  The backbone can start from a
classifier (``init_classifier``; the reference starts from the classifier
trained on the web images, §2.1).  Each epoch is evaluated on fixed pair
batches of the base test set (pair F1 of "same class"); at the end also on
the novel test images (``web_root/test``) when there are any.  With
``config.precise_bn_batches`` the BN statistics are first recomputed at the
final weights over that many training batches (:func:`recompute_simnet_batchnorm`),
so the final metrics and the saved model use them.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field

import numpy as np

from semembed.errors import SemembedError
from semembed.io import check_overwrite
from semembed.training.config import TrainConfig
from semembed.validation import check_int, check_model_file, check_number
from semembed.weakshot.config import SIMNET_DEFAULTS


@dataclass
class SimNetOptions:
    """The SimNet-specific settings (defaults: :data:`~semembed.weakshot.config.SIMNET_DEFAULTS`)."""

    web_root: str | None = None
    beta: float | None = None  # None: SIMNET_DEFAULTS["beta"] with a web folder, else 0
    classes_per_batch: int = SIMNET_DEFAULTS["classes_per_batch"]
    web_classes_per_batch: int | None = None  # None: SIMNET_DEFAULTS's (with a web folder only)
    discriminator_lr_multiplier: float | None = None  # None: SIMNET_DEFAULTS's (with a web folder only)
    init_classifier: str | None = None
    eval_batches: int = SIMNET_DEFAULTS["eval_batches"]
    eval_classes: int = SIMNET_DEFAULTS["eval_classes"]
    eval_per_class: int = SIMNET_DEFAULTS["eval_per_class"]

    def check(self) -> float:
        """Refuse values out of range (naming the flag) and web settings without ``web_root``; returns the
        adversarial weight beta in use (the web defaults are filled in)."""
        beta = self.beta
        if beta is None:
            beta = SIMNET_DEFAULTS["beta"] if self.web_root else 0.0
        elif not self.web_root and beta != 0:
            raise SemembedError(f"--beta {beta}: the adversarial loss needs the novel web images (--web_root)")
        if not self.web_root:
            for name in ("web_classes_per_batch", "discriminator_lr_multiplier"):
                if getattr(self, name) is not None:
                    raise SemembedError(f"--{name} {getattr(self, name)}: it applies to the web stream, which "
                                        "needs the novel web images (--web_root)")
        check_number("--beta", beta, 0)
        check_int("--classes_per_batch", self.classes_per_batch, 2,
                  note=" (SimNet learns from pairs of the same and of different classes in each batch)")
        for name in ("web_classes_per_batch", "eval_batches", "eval_classes", "eval_per_class"):
            check_int(f"--{name}", getattr(self, name), 1, optional=True)
        check_number("--discriminator_lr_multiplier", self.discriminator_lr_multiplier, 0, optional=True)
        if self.web_root:  # values first, then the files they name
            from semembed.data.layouts.imagefolder import check_image_folder_root

            check_image_folder_root("--web_root", self.web_root)
        if self.init_classifier:
            check_model_file("--init_classifier", self.init_classifier)
        return beta

    def resolved(self) -> "SimNetOptions":
        """A copy with the web settings left at None set to their defaults."""
        import dataclasses

        return dataclasses.replace(self, **{k: SIMNET_DEFAULTS[k] for k in ("web_classes_per_batch",
                                                                             "discriminator_lr_multiplier")
                                            if getattr(self, k) is None})


@dataclass
class SimNetResult:
    model: object
    history: list
    final: dict = field(default_factory=dict)  # base_pair_f1, novel_pair_f1, ...


def step_schedule(lr: float, interval: int, epochs: int) -> str:
    """The reference's lr₀·0.5^⌊epoch/interval⌋ as an ``--sgd_schedule`` text ("1:lr,26:lr/2,...,epochs")."""
    check_number("--lr", lr, 0, low_open=True)
    check_int("--lr_interval", interval, 1)
    check_int("--epochs", epochs, 1)
    parts = [f"{e * interval + 1}:{lr * 0.5 ** e!r}" for e in range(math.ceil(epochs / interval))]
    return ",".join(parts + [str(epochs)])


def evaluation_order(labels: np.ndarray, options: SimNetOptions, seed: int) -> tuple[np.ndarray, int]:
    """(indices, batch size) of the fixed evaluation pair batches, drawn once (seed-dependent)."""
    from semembed.data.samplers import ClassSubsetSampler

    bs = options.eval_classes * options.eval_per_class
    sampler = ClassSubsetSampler(options.eval_classes, bs, length=bs * options.eval_batches)
    return sampler.epoch_order(labels, 0, seed + 7919), bs


def pair_f1(trainer, dataset, options: SimNetOptions, seed: int) -> dict:
    """Mean over the fixed evaluation batches of the test split: pair F1, accuracy, loss."""
    if dataset.num_test == 0:
        return {}
    order, bs = evaluation_order(dataset.test_labels, options, seed)
    return trainer.evaluate(dataset.ordered_dataset("test", order, bs))


def recompute_simnet_batchnorm(task, base, web, num_batches: int) -> int:
    """PreciseBN for SimNet: its BN statistics averaged over ``num_batches`` training batches at the final weights.

    Args:
        task: the trained :class:`~semembed.training.tasks.simnet.SimNetTask`.
        base: the base stream's batch dicts (``image``, ...), e.g. one training epoch.
        web: the web stream's batch dicts (repeated and zipped with ``base`` as in training), or None.
        num_batches: batches to average (>= 1); at most the length of ``base``.

    Each base batch (with its web batch) goes through :meth:`SimNetTask.precise_bn_forward`: base and web
    images through the backbone in one call, the pairs within each stream through the head, so the
    statistics are those of the training forward (not of ``simnet(images)``, whose pairs would cross
    the streams).  Returns the number of batches used.
    """
    from semembed.training.precise_bn import recompute_batchnorm_statistics

    data = base
    if web is not None:
        import tensorflow as tf

        data = tf.data.Dataset.zip((base, web.repeat())).map(lambda a, b: {**a, "web": b})
    return recompute_batchnorm_statistics(task.models["simnet"], data, num_batches, forward=task.precise_bn_forward)


def simnet_signature(config: TrainConfig, options: SimNetOptions, beta: float, class_ids: list) -> dict:
    """What a snapshot's SimNet run must share with the run resuming it (as ``run_signature`` for the others)."""
    import hashlib
    import os

    classes = hashlib.sha256(repr([str(c) for c in class_ids]).encode("utf-8")).hexdigest()[:16]
    return {"task": "simnet", "dataset": config.dataset, "classes": classes,
            "architecture": config.architecture, "batch_size": config.batch_size, "seed": config.seed,
            "beta": float(beta), "web_root": os.path.abspath(options.web_root) if options.web_root else None,
            "classes_per_batch": options.classes_per_batch, "web_classes_per_batch": options.web_classes_per_batch,
            "discriminator_lr_multiplier": float(options.discriminator_lr_multiplier)}


def train_simnet(config: TrainConfig, options: SimNetOptions) -> SimNetResult:
    """Train SimNet as configured; writes ``config.model_dump`` (the SimNet, ``.keras``)."""
    config.check_values()
    if config.model_dump:
        check_overwrite(config.model_dump, config.overwrite)
    beta = options.check()
    options = options.resolved()

    from semembed.training.strategy import is_chief, make_strategy

    strategy = make_strategy(config.gpus, config.cpu_replicas)
    from semembed.training.trainer import Trainer, set_determinism

    set_determinism(config.seed, config.deterministic)

    from semembed.data import get_dataset
    from semembed.data.samplers import ClassSubsetSampler
    from semembed.training.run import load_targets, model_metadata, resolve_dataset
    from semembed.training.schedules import LearningRateSchedule
    from semembed.training.tasks.simnet import SimNetTask

    name, root = resolve_dataset(config)
    sizes = dict(target_size=config.target_size, crop_size=config.crop_size)
    _, class_ids, ds = load_targets("onehot", name, root, config.class_list, **sizes)
    web = None
    if options.web_root:
        # the web images take the base set's channel count (an RGB folder beside grey Fashion-MNIST)
        web = get_dataset("ImageFolder", options.web_root, channels=ds.image_shape[-1], require_test=False,
                          **sizes)
        if web.image_shape != ds.image_shape:
            (h, w, _), (bh, bw, _) = web.image_shape, ds.image_shape
            raise SemembedError(f"--web_root {options.web_root}: its images are {h}x{w} pixels, the base "
                                f"dataset's {bh}x{bw}; give both the same size with --target_size/--crop_size")
        if web.num_train < 2:
            raise SemembedError(f"--web_root {options.web_root}: {web.num_train} image(s) under train/<class>/; the "
                                "web stream needs at least 2 (pairs, and the domain loss over batches)")
        if config.data_root and os.path.realpath(options.web_root) == os.path.realpath(config.data_root):
            print(f"warning: --web_root {options.web_root} is the base --data_root: the novel classes are the base "
                  "classes (the web stream and the novel pair F1 use the base images)", file=sys.stderr)
        if web.num_test == 0:
            print(f"note: --web_root {options.web_root} has no test images (test/<class>/): the novel pair F1 is "
                  "not computed", file=sys.stderr)
        web_classes = len(np.unique(web.train_labels))
        if web_classes < 2:
            print(f"warning: --web_root {options.web_root}: one class with images under train/; its web pairs are "
                  "all of the same class (the domain loss still applies)", file=sys.stderr)
        elif options.web_classes_per_batch > web_classes:
            print(f"warning: --web_classes_per_batch {options.web_classes_per_batch} is more than the {web_classes} "
                  f"web classes with images; web batches draw from all {web_classes}", file=sys.stderr)
    base_classes = len(np.unique(ds.train_labels))
    source = f"--class_list {config.class_list}" if config.class_list else f"dataset {name}"
    if base_classes < 2:
        raise SemembedError(f"{source}: {base_classes} base class(es) with training images; SimNet learns from pairs "
                            "of the same and of different classes and needs at least 2")
    if options.classes_per_batch > base_classes:
        print(f"warning: --classes_per_batch {options.classes_per_batch} is more than the {base_classes} base "
              f"classes with training images ({source}); batches draw from all {base_classes}", file=sys.stderr)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise SemembedError(f"--batch_size {config.batch_size} is not divisible by the {replicas} replicas")
    per_replica = config.batch_size // replicas
    sampler = ClassSubsetSampler(options.classes_per_batch, config.batch_size)
    sampler.check(ds.train_labels, replicas)
    steps = sampler.num_batches(ds.num_train)
    if web is not None:  # the reference zips the two streams: an epoch is the shorter one
        web_sampler = ClassSubsetSampler(options.web_classes_per_batch, config.batch_size)
        steps = min(steps, web_sampler.num_batches(web.num_train))
    if config.max_steps_per_epoch:
        steps = min(steps, config.max_steps_per_epoch)
    epochs = SIMNET_DEFAULTS["epochs"] if config.epochs is None else config.epochs
    schedule = LearningRateSchedule(config.schedule, steps, epochs)
    task = SimNetTask(config.architecture, ds.image_shape, web=web is not None, beta=beta,
                      discriminator_lr_multiplier=options.discriminator_lr_multiplier)

    def train_data(epoch, ctx):
        return ds.train_dataset(per_replica, epoch=epoch, seed=config.seed, input_context=ctx, as_dict=True,
                                sampler=sampler)

    extra = {}
    if web is not None:
        extra["web"] = lambda epoch, ctx: web.train_dataset(per_replica, epoch=epoch, seed=config.seed + 1,
                                                             input_context=ctx, as_dict=True, sampler=web_sampler)
    val_order, val_bs = evaluation_order(ds.test_labels, options, config.seed)
    val_data = (lambda: ds.ordered_dataset("test", val_order, val_bs)) if ds.num_test else None
    optimizer = config.optimizer_config()
    metadata = {**model_metadata(config, ds, class_ids), "task": "simnet", "beta": beta,
                "web_root": options.web_root}
    trainer = Trainer(
        task=task, strategy=strategy, train_data=train_data, val_data=val_data, schedule=schedule,
        steps_per_epoch=steps, optimizer={"main": optimizer, "discriminator": optimizer}, extra_data=extra,
        mixed_precision=config.mixed_precision, jit_compile=config.jit_compile, snapshot=config.snapshot,
        log_dir=config.log_dir, progress=not config.no_progress, chief=is_chief(strategy), model_metadata=metadata,
        signature=simnet_signature(config, options, beta, class_ids),
    )
    if trainer.restore(hint=" (to start SimNet's backbone from a learn_classifier model, use --init_classifier)"):
        print(f"Resuming from snapshot {config.snapshot} at epoch {trainer.state.epoch + 1}")
    elif options.init_classifier:
        from semembed.models import load_weights_by_name
        from semembed.models.simnet import simnet_parts

        report = load_weights_by_name(simnet_parts(trainer.model)[0], options.init_classifier, skip_mismatch=True)
        if not report["loaded"]:
            raise SemembedError(f"--init_classifier {options.init_classifier}: no layer fits the {config.architecture} "
                                "backbone by name and shape (was it trained with this --architecture?)")
        print(f"Backbone initialised from {options.init_classifier} ({len(report['loaded'])} layers)")
        if report["unfilled"]:
            print(f"warning: --init_classifier {options.init_classifier}: {len(report['unfilled'])} backbone "
                  f"layer(s) left at their random initialisation: {unfilled_reasons(report)}", file=sys.stderr)
    trainer.fit(epochs)
    if config.precise_bn_batches:
        bs = config.batch_size  # one device, the global batch (as learn_classifier's --precise_bn_batches)
        base = ds.train_dataset(bs, epoch=epochs, seed=config.seed, as_dict=True, sampler=sampler)
        web_batches = None if web is None else web.train_dataset(bs, epoch=epochs, seed=config.seed + 1,
                                                                 as_dict=True, sampler=web_sampler)
        used = recompute_simnet_batchnorm(task, base, web_batches, config.precise_bn_batches)
        if used:
            print(f"Recomputed the BatchNorm statistics over {used} training batches (--precise_bn_batches)")

    final = {}
    if val_data is not None:
        final.update({f"base_{k}": v for k, v in trainer.evaluate().items()})
    if web is not None:
        final.update({f"novel_{k}": v for k, v in pair_f1(trainer, web, options, config.seed).items()})
    if trainer.chief:
        if config.model_dump:
            from semembed.training.export import save_model

            save_model(trainer.model, config.model_dump, overwrite=config.overwrite, metadata=metadata)
        if final:
            print("Final pair metrics: " + ", ".join(f"{k}: {v:.4f}" for k, v in final.items()))
    return SimNetResult(trainer.model, trainer.history, final)


def unfilled_reasons(report: dict) -> str:
    """``layer (why), ...`` for the model layers :func:`~semembed.models.load_weights_by_name` left unfilled.

    A kernel whose only difference is its third axis (input channels) says so: a grey classifier
    (1 channel) beside an RGB SimNet (3), or the other way round.
    """
    import re

    why = {}
    for message in report["mismatched"]:  # "file_layer -> model_layer: weight: file shape (..) != model shape (..)"
        head, _, reason = message.partition(": ")
        target = head.split(" -> ")[-1]
        m = re.search(r"file shape \(([^)]*)\) != model shape \(([^)]*)\)", reason)
        if m:
            a = [int(v) for v in m.group(1).split(",") if v.strip()]
            b = [int(v) for v in m.group(2).split(",") if v.strip()]
            if len(a) == len(b) == 4 and a[:2] == b[:2] and a[3] == b[3] and a[2] != b[2]:
                reason = f"shape mismatch, {a[2]} vs {b[2]} input channels (file vs model)"
            else:
                reason = f"shape mismatch, {reason}"
        why[target] = reason
    return ", ".join(f"{name} ({why.get(name, 'no layer of that name and shape in the file')})"
                     for name in report["unfilled"])
