"""The custom training loop: strategy, optimizer, schedule, snapshots, logging.

``Trainer`` drives any :class:`~semembed.training.task.Task` under any
``tf.distribute`` strategy.  Per-replica losses are scaled by the *global*
batch (summed over replicas, so a short last batch weighs right) and
regularisation by the replica count; gradients are clipped by the norm of the
global gradient; metric sums are reduced across replicas.
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
from semembed.training.checkpoints import TrainingState, is_snapshot, load_snapshot, save_snapshot, snapshot_exists
from semembed.training.schedules import LearningRateSchedule
from semembed.training.task import Task



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
    """Runs ``task`` on ``strategy`` with SGD + momentum and the given schedule.

    Args:
        task: the training task (model, losses, step).
        strategy: a ``tf.distribute`` strategy; build nothing before passing it.
        train_data: ``(epoch, input_context) -> tf.data.Dataset`` of one epoch of per-replica batches.
        val_data: ``() -> tf.data.Dataset`` of validation batches (file order), or None.
        schedule: learning-rate schedule.
        steps_per_epoch: number of steps of one epoch (for the schedule and progress bar).
    """

    task: Task
    strategy: tf.distribute.Strategy
    train_data: Callable[[int, tf.distribute.InputContext], tf.data.Dataset]
    val_data: Callable[[], tf.data.Dataset] | None
    schedule: LearningRateSchedule
    steps_per_epoch: int
    momentum: float = 0.9
    nesterov: bool = False
    clipnorm: float | None = 10.0
    snapshot: str | None = None
    snapshot_best: str | None = None
    snapshot_best_path: str | None = None
    log_dir: str | None = None
    progress: bool = True
    chief: bool = True
    history: list = field(default_factory=list)

    def __post_init__(self) -> None:
        with self.strategy.scope():
            self.model = self.task.build_model()
            self.optimizer = keras.optimizers.SGD(learning_rate=0.1, momentum=self.momentum, nesterov=self.nesterov)
            self.optimizer.build(self.model.trainable_variables)
        self.state = TrainingState()
        self._writer = tf.summary.create_file_writer(self.log_dir) if (self.log_dir and self.chief) else None
        self._step_fns: dict = {}
        self._eval_fn = None

    # === State ===
    def restore(self, initial_epoch: int = 0) -> bool:
        """Resume from ``self.snapshot`` when it exists; returns whether it did."""
        if not snapshot_exists(self.snapshot):
            self.state.epoch = initial_epoch
            return False
        if is_snapshot(self.snapshot):
            self.state = load_snapshot(self.snapshot, self.model, self.optimizer)
            if self.state.schedule:
                self.schedule.load_state(self.state.schedule)
        else:  # a reference-era full-model .h5: weights only, continue at --initial_epoch
            from semembed.models import load_weights_strict

            load_weights_strict(self.model, self.snapshot)
            self.state.epoch = initial_epoch
        self.history = list(self.state.history)
        return True

    def _save_snapshot(self) -> None:
        if self.snapshot and self.chief:
            self.state.schedule = self.schedule.state()
            self.state.history = self.history
            save_snapshot(self.snapshot, self.model, self.optimizer, self.state)

    # === Steps ===
    def _train_step_fn(self, variables_key: str, variables):
        if variables_key not in self._step_fns:
            task, model, opt, clip, strategy = self.task, self.model, self.optimizer, self.clipnorm, self.strategy

            def replica_step(images, labels):
                sums = task.train_step(model, opt, images, labels, clip, variables)
                return tf.distribute.get_replica_context().all_reduce("sum", sums)

            @tf.function
            def step(images, labels):
                sums = strategy.run(replica_step, args=(images, labels))
                # already summed over replicas: every replica holds the same values
                return {k: strategy.experimental_local_results(v)[0] for k, v in sums.items()}

            self._step_fns[variables_key] = step
        return self._step_fns[variables_key]

    def _eval_step_fn(self):
        if self._eval_fn is None:
            task, model = self.task, self.model

            @tf.function
            def step(images, labels):
                return task.eval_step(model, images, labels)

            self._eval_fn = step
        return self._eval_fn

    # === Loop ===
    def fit(self, epochs: int, variables=None, phase: str = "main") -> list[EpochLogs]:
        """Train from ``self.state.epoch`` up to ``epochs``; snapshot after each epoch."""
        variables = self.model.trainable_variables if variables is None else variables
        step_fn = self._train_step_fn(phase, variables)
        logs = []
        self.state.phase = phase
        for epoch in range(self.state.epoch, epochs):
            start = time.perf_counter()
            dist = self.strategy.distribute_datasets_from_function(lambda ctx, e=epoch: self.train_data(e, ctx))
            totals: dict[str, float] = {}
            bar = _progress(self.steps_per_epoch, f"epoch {epoch + 1}/{epochs}", self.progress and self.chief)
            lr = 0.0
            for i, (images, labels) in enumerate(dist):
                if i >= self.steps_per_epoch:
                    break
                lr = self.schedule(epoch, i, self.state.global_step)
                self.optimizer.learning_rate.assign(lr)
                sums = {k: float(v) for k, v in step_fn(images, labels).items()}
                if not math.isfinite(sums["loss"]):
                    bar.close()
                    raise NaNLossError(
                        f"the training loss became {sums['loss']} in epoch {epoch + 1}, step {i + 1} "
                        f"(learning rate {lr:.3g}); the weights were not saved"
                        + (f"; the last good snapshot is {self.snapshot}" if snapshot_exists(self.snapshot) else "")
                        + ". Try a lower learning rate or a smaller --clipgrad."
                    )
                for k, v in sums.items():
                    totals[k] = totals.get(k, 0.0) + v
                self.state.global_step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{totals['loss'] / totals['count']:.4f}", acc=f"{totals['accuracy'] / totals['count']:.4f}")
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
        """Mean loss and metrics on the validation data (one device, file order)."""
        data = self.val_data() if data is None else data
        fn = self._eval_step_fn()
        totals: dict[str, float] = {}
        for images, labels in data:
            for k, v in fn(images, labels).items():
                totals[k] = totals.get(k, 0.0) + float(v)
        return _means(totals)

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

            save_model(self.model, self.snapshot_best_path, overwrite=True)


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
