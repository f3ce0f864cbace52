"""The custom training loop: strategy, optimisers, schedule, snapshots, logging.

``Trainer`` drives any :class:`~semembed.training.task.Task` under any
``tf.distribute`` strategy.  The task builds its named models and says which
variables each named optimiser updates; the trainer builds the optimisers
(:mod:`semembed.training.optimizers`), sets every optimiser's learning rate
from the one schedule before each step, runs the task's per-replica step,
sums the returned metric sums over replicas and divides by their ``count``.
Options for GPUs: ``mixed_precision`` (Keras dtype policy; float16 adds
dynamic loss scaling) and ``jit_compile`` (XLA for each loss/gradient
computation).
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import keras
import tensorflow as tf

from semembed.errors import SemembedError
from semembed.training.checkpoints import (
    TrainingState,
    is_snapshot,
    load_snapshot,
    save_snapshot,
    snapshot_exists,
)
from semembed.training.optimizers import OptimizerConfig, build_optimizer_set
from semembed.training.schedules import LearningRateSchedule
from semembed.training.step import StepContext
from semembed.training.task import Task

PRECISION_POLICIES = {"off": None, "float32": None, "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}


class NaNLossError(SemembedError):
    """The training loss became NaN or infinite."""


@dataclass
class EpochLogs:
    epoch: int
    lr: float
    train: dict
    val: dict
    seconds: float


@dataclass
class Trainer:
    """Runs ``task`` on ``strategy`` with the task's optimisers and the given schedule.

    Args:
        task: the training task (models, losses, step).
        strategy: a ``tf.distribute`` strategy; build nothing before passing it.
        train_data: ``(epoch, input_context) -> tf.data.Dataset`` of one epoch of per-replica batch dicts.
        val_data: ``() -> tf.data.Dataset`` of validation batch dicts (file order), or None.
        schedule: learning-rate schedule; drives every optimiser (times its groups' multipliers).
        steps_per_epoch: number of steps of one epoch (for the schedule and progress bar).
        optimizer: one :class:`OptimizerConfig` for every optimiser of the task, or one per optimiser name.
        extra_data: ``name -> (epoch, input_context) -> tf.data.Dataset`` for the task's ``streams``
            (repeated as needed and zipped with the main stream: ``batch[name]``).
        mixed_precision: ``off`` | ``float16`` | ``bfloat16``.
        jit_compile: XLA-compile each loss/gradient computation.
        model_metadata: stored in the models the trainer saves (``--snapshot_best``).
    """

    task: Task
    strategy: tf.distribute.Strategy
    train_data: Callable[[int, tf.distribute.InputContext], tf.data.Dataset]
    val_data: Callable[[], tf.data.Dataset] | None
    schedule: LearningRateSchedule
    steps_per_epoch: int
    optimizer: OptimizerConfig | dict = field(default_factory=OptimizerConfig)
    extra_data: dict = field(default_factory=dict)
    mixed_precision: str = "off"
    jit_compile: bool = False
    snapshot: str | None = None
    snapshot_best: str | None = None
    snapshot_best_path: str | None = None
    log_dir: str | None = None
    progress: bool = True
    chief: bool = True
    history: list = field(default_factory=list)
    signature: dict = field(default_factory=dict)  # what a resumed run must share with this one
    model_metadata: dict | None = None  # stored in saved models (preprocessing, classes, task)

    def __post_init__(self) -> None:
        if self.mixed_precision not in PRECISION_POLICIES:
            raise SemembedError(f"--mixed_precision {self.mixed_precision!r}: expected off, float16 or bfloat16")
        missing = [s for s in self.task.streams if s not in self.extra_data]
        if missing:
            raise SemembedError(f"task {self.task.name!r} needs the input streams {missing}; none was given")
        policy = PRECISION_POLICIES[self.mixed_precision]
        previous = keras.config.dtype_policy()
        with self.strategy.scope():
            if policy:
                keras.config.set_dtype_policy(policy)
            try:
                self.models = dict(self.task.build_models())
            finally:
                keras.config.set_dtype_policy(previous)
            self.task.models = self.models
            self.optimizers = {}
            for name, groups in self.task.optimizer_groups(self.models).items():
                cfg = self.optimizer.get(name) if isinstance(self.optimizer, dict) else self.optimizer
                if cfg is None:
                    raise SemembedError(f"no optimizer configuration for the task's optimizer {name!r}")
                self.optimizers[name] = build_optimizer_set(name, cfg, groups, loss_scale=policy == "mixed_float16")
        self.step_context = StepContext(self.optimizers, self.models, jit_compile=self.jit_compile)
        self.state = TrainingState(signature=dict(self.signature))
        self._writer = tf.summary.create_file_writer(self.log_dir) if (self.log_dir and self.chief) else None
        self._step_fns: dict = {}
        self._eval_fn = None
        self._predict = None
        self._snapshot_write = self.snapshot

    @property
    def model(self) -> keras.Model:
        """The task's first model (features, dumps)."""
        return self.task.model

    # === State ===
    def restore(self, initial_epoch: int = 0, hint: str = "") -> bool:
        """Resume from ``self.snapshot`` when it exists; returns whether it did.

        A reference-era ``.h5`` given as ``--snapshot`` is read as weights and
        never overwritten: our snapshot goes beside it (``<name>.resume.npz``),
        and a later run with the same command resumes from that one.

        Raises:
            SemembedError: one line starting ``--snapshot FILE:`` when the file is no weight file or its
                weights do not fit the model; ``hint`` (e.g. the program's flag for another model's weights)
                is appended.
        """
        if not snapshot_exists(self.snapshot):
            self.state.epoch = initial_epoch
            return False
        if not is_snapshot(self.snapshot):
            self._snapshot_write = self.snapshot + ".resume.npz"
            if is_snapshot(self._snapshot_write):
                self._load(self._snapshot_write)
                return True
            from semembed.models import load_weights_strict

            try:
                load_weights_strict(self.model, self.snapshot)
            except SemembedError as exc:
                raise SemembedError(f"--snapshot {self.snapshot}: {_one_line(str(exc), self.snapshot)}; --snapshot "
                                    f"resumes a run of this model (its snapshot, or its weights){hint}") from None
            self.state.epoch = initial_epoch
            if self.chief:
                print(f"{self.snapshot} is a weight file, not a semembed snapshot: it is read, not overwritten; "
                      f"the snapshots of this run go to {self._snapshot_write}")
            return True
        self._load(self.snapshot)
        return True

    def _load(self, path: str) -> None:
        state = load_snapshot(path, self.models, self.optimizers, self.task.state_variables(), self.signature)
        state.signature = dict(self.signature)
        self.state = state
        if self.state.schedule:
            self.schedule.load_state(self.state.schedule)
        self.history = list(self.state.history)

    def _save_snapshot(self) -> None:
        if self._snapshot_write and self.chief:
            self.state.schedule = self.schedule.state()
            self.state.history = self.history
            save_snapshot(self._snapshot_write, self.models, self.optimizers, self.state, self.task.state_variables())

    # === Steps ===
    def _train_step_fn(self, phase: str):
        if phase not in self._step_fns:
            task, strategy, context = self.task, self.strategy, self.step_context

            def replica_step(batch):
                sums = task.train_step(batch, context)
                return tf.distribute.get_replica_context().all_reduce("sum", sums)

            @tf.function
            def step(batch):
                sums = strategy.run(replica_step, args=(batch,))
                # already summed over replicas: every replica holds the same values
                return {k: strategy.experimental_local_results(v)[0] for k, v in sums.items()}

            self._step_fns[phase] = step
        return self._step_fns[phase]

    def _eval_step_fn(self):
        if self._eval_fn is None:
            task, context = self.task, self.step_context

            @tf.function
            def step(batch):
                return task.eval_step(batch, context)

            self._eval_fn = step
        return self._eval_fn

    def _epoch_data(self, epoch: int):
        streams = self.task.streams

        def make(ctx):
            ds = self.train_data(epoch, ctx)
            if not streams:
                return ds
            extras = tuple(self.extra_data[s](epoch, ctx).repeat() for s in streams)

            def merge(main, *others):
                return {**main, **dict(zip(streams, others))}

            return tf.data.Dataset.zip((ds, *extras)).map(merge)

        return self.strategy.distribute_datasets_from_function(make)

    def set_learning_rate(self, lr: float) -> None:
        for opt in self.optimizers.values():
            opt.set_learning_rate(lr)

    # === Loop ===
    def fit(self, epochs: int, variables=None, phase: str = "main") -> list[EpochLogs]:
        """Train from ``self.state.epoch`` up to ``epochs``; snapshot after each epoch.

        ``variables`` restricts every optimiser to those variables (the fine-tuning warm-up).
        """
        allowed = None if variables is None else {id(v) for v in variables}
        self.step_context.trainable = {} if allowed is None else {n: allowed for n in self.optimizers}
        step_fn = self._train_step_fn(phase)
        shown = next((m for m in self.task.metrics if "loss" not in m), None)
        logs = []
        self.state.phase = phase
        for epoch in range(self.state.epoch, epochs):
            start = time.perf_counter()
            totals: dict[str, float] = {}
            bar = _progress(self.steps_per_epoch, f"epoch {epoch + 1}/{epochs}", self.progress and self.chief)
            lr = 0.0
            self.task.on_epoch_begin(epoch)
            for i, batch in enumerate(self._epoch_data(epoch)):
                if i >= self.steps_per_epoch:
                    break
                lr = self.schedule(epoch, i, self.state.global_step)
                self.set_learning_rate(lr)
                sums = {k: float(v) for k, v in step_fn(batch).items()}
                if not math.isfinite(sums["loss"]):
                    bar.close()
                    raise NaNLossError(
                        f"the training loss became {sums['loss']} in epoch {epoch + 1}, step {i + 1} "
                        f"(learning rate {lr:.3g}); the weights were not saved"
                        + (f"; the last good snapshot is {self._snapshot_write}"
                           if snapshot_exists(self._snapshot_write) else "")
                        + ". Try a lower learning rate or a smaller --clipgrad."
                    )
                for k, v in sums.items():
                    totals[k] = totals.get(k, 0.0) + v
                self.state.global_step += 1
                bar.update(1)
                count = max(totals.get("count", 0.0), 1.0)
                post = {"loss": f"{totals['loss'] / count:.4f}"}
                if shown in totals:
                    post[shown] = f"{totals[shown] / count:.4f}"
                bar.set_postfix(**post)
            bar.close()
            train = _means(totals)
            val = self.evaluate() if self.val_data is not None else {}
            self.schedule.end_epoch(val.get("loss", train.get("loss", math.inf)))
            entry = EpochLogs(epoch, lr, train, {f"val_{k}": v for k, v in val.items()}, time.perf_counter() - start)
            logs.append(entry)
            self.history.append({"phase": phase, "epoch": epoch, "lr": lr, **train, **entry.val})
            self._log(entry)
            self.state.epoch = epoch + 1
            self._save_best(entry)
            self._save_snapshot()
        return logs

    def evaluate(self, data: tf.data.Dataset | None = None) -> dict:
        """Mean loss and metrics on the validation data (one device, file order), plus the task's whole-set
        figures (:meth:`Task.validation_metrics`) when its ``set_validation`` is on."""
        data = self.val_data() if data is None else data
        fn = self._eval_step_fn()
        whole = bool(getattr(self.task, "set_validation", False))
        totals: dict[str, float] = {}
        parts: list[tuple] = []
        for batch in data:
            for k, v in fn(batch).items():
                totals[k] = totals.get(k, 0.0) + float(v)
            if whole:
                parts.append(tuple(t.numpy() for t in self._predict_fn()(batch)))
        out = _means(totals)
        if parts:
            import numpy as np

            features, labels, index = (np.concatenate(a) for a in zip(*parts))
            out.update(self.task.validation_metrics(features, labels, index))
        return out

    def _predict_fn(self):
        if self._predict is None:
            task = self.task

            @tf.function
            def step(batch):
                return task.predict_step(batch)[0], batch["label"], batch["index"]

            self._predict = step
        return self._predict

    def _log(self, entry: EpochLogs) -> None:
        if self.chief and self.progress:
            parts = [f"{k}: {v:.4f}" for k, v in {**entry.train, **entry.val}.items()]
            print(f"epoch {entry.epoch + 1} - {entry.seconds:.1f}s - lr: {entry.lr:.3g} - " + " - ".join(parts), flush=True)
        if self._writer is not None:
            with self._writer.as_default(step=entry.epoch):
                tf.summary.scalar("learning_rate", entry.lr)
                for k, v in {**entry.train, **entry.val}.items():
                    tf.summary.scalar(k, v)
            self._writer.flush()

    def _save_best(self, entry: EpochLogs) -> None:
        if not (self.snapshot_best and self.snapshot_best_path and self.chief):
            return
        metric = self.snapshot_best
        value = {**entry.train, **entry.val}.get(metric)
        if value is None:
            raise SemembedError(
                f"--snapshot_best {metric}: no such metric; available: {', '.join(sorted({**entry.train, **entry.val}))}"
            )
        lower_is_better = "loss" in metric
        better = self.state.best is None or (value < self.state.best if lower_is_better else value > self.state.best)
        if better:
            self.state.best = float(value)
            from semembed.training.export import save_model

            save_model(self.model, self.snapshot_best_path, overwrite=True, metadata=self.model_metadata)


def _means(totals: dict[str, float]) -> dict[str, float]:
    n = max(totals.get("count", 0.0), 1.0)
    return {k: v / n for k, v in totals.items() if k != "count"}


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def set_postfix(self, **kw) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, file=sys.stderr, dynamic_ncols=True)


def set_determinism(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy, TF and Keras; optionally make TF ops deterministic."""
    keras.utils.set_random_seed(seed)
    if deterministic:
        os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
        tf.config.experimental.enable_op_determinism()


def _one_line(message: str, path: str) -> str:
    """A weight-loading error on one line: the path prefix dropped, each listing reduced to its title and count."""
    import re

    first, *rest = message.splitlines()
    for prefix in (f"{path}: ", f"{path} "):
        if first.startswith(prefix):
            first = first[len(prefix):]
            break
    counts = [f"{m.group(1)}: {m.group(2)}" for line in rest if (m := re.match(r"\s+(.+?) \((\d+)\):", line))]
    return first + (f" ({'; '.join(counts)})" if counts else "")
