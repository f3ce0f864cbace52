"""Learning-rate schedules of the reference (SPEC.md §5), as plain functions of the epoch/step.

A schedule gives the learning rate of each epoch (and optionally of each step
within it); the trainer writes it into the optimizer before every step.  Pure
Python: tested value by value against the formulas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from semembed.errors import SemembedError

SCHEDULES = ("SGDR", "SGD", "CLR", "ResNet-Schedule", "cosine")
#: Keras 2's ReduceLROnPlateau: an epoch counts as an improvement only below best - 1e-4
PLATEAU_MIN_DELTA = 1e-4


@dataclass
class ScheduleConfig:
    """The reference's schedule flags with their defaults."""

    name: str = "SGDR"
    sgdr_base_len: int = 12
    sgdr_mul: int = 2
    sgdr_max_lr: float = 0.1
    sgdr_min_lr: float = 1e-6
    sgd_lr: float = 0.1
    sgd_patience: int = 10
    sgd_min_lr: float = 1e-4
    sgd_schedule: str | None = None
    plateau: bool = True  # SGD without sgd_schedule: x0.1 after sgd_patience epochs without improvement (the
    # reference's ReduceLROnPlateau); False: sgd_lr throughout (learn_metric's default, see its --sgd_patience)
    clr_min_lr: float = 1e-5
    clr_max_lr: float = 0.1
    clr_step_len: int = 12
    max_decay: float = 0.0
    cosine_max_lr: float = 0.1  # ours (not the reference's): per-step cosine decay over the whole run
    cosine_min_lr: float = 0.0

    def check(self) -> None:
        """Refuse a rate, length or patience out of range, and a setting the chosen schedule would ignore.

        "Given" means "differs from the default" here; the command line knows which flags were typed
        (:func:`unused_schedule_fields` there).

        Raises:
            SemembedError: naming the flag (``--sgdr_max_lr must be > 0, got 0.0``, or
                ``--cosine_max_lr is used by --lr_schedule cosine only; ...``).
        """
        from semembed.validation import check_int, check_number

        if self.name not in SCHEDULES:
            raise SemembedError(f"unknown --lr_schedule {self.name!r}; expected one of {', '.join(SCHEDULES)}")
        default = ScheduleConfig(name=self.name)
        for name, why in unused_schedule_fields(self.name, self.sgd_schedule).items():
            if getattr(self, name) != getattr(default, name):
                raise SemembedError(f"--{name} {why}")
        check_number("--max_decay", self.max_decay, 0, 1,
                     note=" (the final rate as a fraction of the scheduled one; 0: no decay)")
        if self.name == "SGDR":
            check_int("--sgdr_base_len", self.sgdr_base_len, 1)
            check_int("--sgdr_mul", self.sgdr_mul, 1)
            _check_range("sgdr", self.sgdr_min_lr, self.sgdr_max_lr)
        elif self.name == "SGD":
            if self.sgd_schedule:
                steps, epochs = parse_sgd_schedule(self.sgd_schedule)
                for epoch, lr in steps:
                    check_number(f"--sgd_schedule {self.sgd_schedule!r}: the rate of epoch {epoch}", lr, 0, low_open=True)
                check_int(f"--sgd_schedule {self.sgd_schedule!r}: the number of epochs", epochs, 1)
            else:
                check_number("--sgd_lr", self.sgd_lr, 0, low_open=True)
                check_int("--sgd_patience", self.sgd_patience, 0)
                check_number("--sgd_min_lr", self.sgd_min_lr, 0)
        elif self.name == "CLR":
            check_int("--clr_step_len", self.clr_step_len, 1)
            _check_range("clr", self.clr_min_lr, self.clr_max_lr)
        elif self.name == "cosine":
            _check_range("cosine", self.cosine_min_lr, self.cosine_max_lr)


def _check_range(prefix: str, min_lr: float, max_lr: float) -> None:
    from semembed.validation import check_number

    check_number(f"--{prefix}_max_lr", max_lr, 0, low_open=True)
    check_number(f"--{prefix}_min_lr", min_lr, 0)
    if min_lr > max_lr:
        raise SemembedError(f"--{prefix}_min_lr {min_lr:g} is above --{prefix}_max_lr {max_lr:g}")


#: the settings each schedule reads (``max_decay`` applies to every schedule)
SCHEDULE_FIELDS: dict[str, tuple[str, ...]] = {
    "SGDR": ("sgdr_base_len", "sgdr_mul", "sgdr_max_lr", "sgdr_min_lr"),
    "SGD": ("sgd_lr", "sgd_patience", "sgd_min_lr", "sgd_schedule"),
    "CLR": ("clr_min_lr", "clr_max_lr", "clr_step_len"),
    "ResNet-Schedule": (),
    "cosine": ("cosine_max_lr", "cosine_min_lr"),
}
#: SGD's plateau settings, which an explicit --sgd_schedule replaces
_PLATEAU_FIELDS = ("sgd_lr", "sgd_patience", "sgd_min_lr")


def unused_schedule_fields(name: str, sgd_schedule: str | None = None) -> dict[str, str]:
    """``{setting: why it is not used}`` for the schedule ``name`` (with or without an explicit ``sgd_schedule``)."""
    unused = {}
    for owner, fields in SCHEDULE_FIELDS.items():
        if owner != name:
            unused.update({f: f"is used by --lr_schedule {owner} only; this run uses --lr_schedule {name}, "
                           "which would ignore it" for f in fields})
    if name == "SGD" and sgd_schedule:
        unused.update({f: "is used by the plateau reduction of --lr_schedule SGD only; --sgd_schedule gives the "
                       "rates of this run" for f in _PLATEAU_FIELDS})
    return unused


def sgdr_lr(epoch: int, base_len: int = 12, mul: int = 2, max_lr: float = 0.1, min_lr: float = 1e-6) -> float:
    """SGDR: epoch 0 of a cycle uses max_lr, epoch i ≥ 1 uses min + ½(max−min)(1 + cos(π(i+1)/T))."""
    start, length = 0, base_len
    while epoch >= start + length:
        start += length
        length *= mul
    i = epoch - start
    if i == 0:
        return max_lr
    return min_lr + 0.5 * (max_lr - min_lr) * (1.0 + math.cos(math.pi * (i + 1) / length))


def sgdr_epochs(base_len: int = 12, mul: int = 2, cycles: int = 5) -> int:
    """Default SGDR length: 5 cycles (12 + 24 + 48 + 96 + 192 = 372 epochs)."""
    return sum(base_len * mul**c for c in range(cycles))


def parse_sgd_schedule(text: str) -> tuple[list[tuple[int, float]], int]:
    """``"1:0.1,31:0.01,41:0.001,50"`` → ([(1, 0.1), (31, 0.01), (41, 0.001)], 50 epochs)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    steps: list[tuple[int, float]] = []
    try:
        for part in parts[:-1]:
            e, lr = part.split(":")
            steps.append((int(e), float(lr)))
        epochs = int(parts[-1])
    except (ValueError, IndexError):
        raise SemembedError(
            f"--sgd_schedule {text!r}: expected 'epoch:lr,epoch:lr,...,total_epochs' (1-based epochs), "
            "e.g. '1:0.1,31:0.01,41:0.001,50'"
        ) from None
    if not steps or steps[0][0] != 1 or any(b[0] <= a[0] for a, b in zip(steps, steps[1:])):
        raise SemembedError(f"--sgd_schedule {text!r}: epochs must start at 1 and increase")
    return steps, epochs


def step_schedule_lr(epoch: int, steps: list[tuple[int, float]]) -> float:
    """Learning rate of 0-based ``epoch`` under an explicit 1-based ``epoch:lr`` list."""
    lr = steps[0][1]
    for start, value in steps:
        if epoch + 1 >= start:
            lr = value
    return lr


def clr_lr(step: int, steps_per_epoch: int, min_lr: float = 1e-5, max_lr: float = 0.1, step_len: int = 12) -> float:
    """Triangular cyclic learning rate; a half cycle is ``step_len`` epochs (per-step)."""
    half = step_len * steps_per_epoch
    cycle = math.floor(1 + step / (2 * half))
    x = abs(step / half - 2 * cycle + 1)
    return min_lr + (max_lr - min_lr) * max(0.0, 1.0 - x)


def cosine_lr(step: int, total_steps: int, max_lr: float = 0.1, min_lr: float = 0.0) -> float:
    """Per-step cosine decay (Loshchilov & Hutter's annealing without restarts): max at step 0, min at the end.

    lr = min + ½(max − min)(1 + cos(π·step/total)).  Unlike the reference's
    per-epoch SGDR, whose last epoch of a cycle runs at ``min_lr`` throughout,
    every step of a short run trains.
    """
    t = min(max(step, 0), total_steps) / max(total_steps, 1)
    return min_lr + 0.5 * (max_lr - min_lr) * (1.0 + math.cos(math.pi * t))


def resnet_lr(epoch: int) -> float:
    """ResNet-Schedule: 0.01 in epoch 0 (warm-up), 0.1 until 80, 0.01 until 120, then 0.001."""
    if epoch == 0:
        return 0.01
    if epoch < 80:
        return 0.1
    if epoch < 120:
        return 0.01
    return 0.001


@dataclass
class LearningRateSchedule:
    """Learning rate for (epoch, step) plus the plateau state of the SGD schedule.

    ``state()``/``load_state()`` make the plateau reduction resumable.
    """

    config: ScheduleConfig
    steps_per_epoch: int
    epochs: int
    plateau_lr: float = field(init=False)
    best_loss: float = field(default=math.inf, init=False)
    wait: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.config.name not in SCHEDULES:
            raise SemembedError(f"unknown --lr_schedule {self.config.name!r}; expected one of {', '.join(SCHEDULES)}")
        self.plateau_lr = self.config.sgd_lr
        self._steps = parse_sgd_schedule(self.config.sgd_schedule)[0] if self.config.sgd_schedule else None
        decay = self.config.max_decay
        total = self.steps_per_epoch * self.epochs
        self.decay = (1.0 / decay - 1.0) / total if decay > 0 and total > 0 else 0.0

    def epoch_lr(self, epoch: int, step_in_epoch: int = 0) -> float:
        c = self.config
        if c.name == "SGDR":
            return sgdr_lr(epoch, c.sgdr_base_len, c.sgdr_mul, c.sgdr_max_lr, c.sgdr_min_lr)
        if c.name == "SGD":
            return step_schedule_lr(epoch, self._steps) if self._steps else self.plateau_lr
        if c.name == "CLR":
            return clr_lr(epoch * self.steps_per_epoch + step_in_epoch, self.steps_per_epoch, c.clr_min_lr, c.clr_max_lr, c.clr_step_len)
        if c.name == "cosine":
            return cosine_lr(epoch * self.steps_per_epoch + step_in_epoch, self.steps_per_epoch * self.epochs,
                             c.cosine_max_lr, c.cosine_min_lr)
        return resnet_lr(epoch)

    def __call__(self, epoch: int, step_in_epoch: int, global_step: int) -> float:
        """The rate for one step; ``--max_decay`` divides by (1 + δ·global_step)."""
        return self.epoch_lr(epoch, step_in_epoch) / (1.0 + self.decay * global_step)

    def end_epoch(self, val_loss: float) -> None:
        """Plateau reduction for the SGD schedule (×0.1 after ``sgd_patience`` epochs, floor sgd_min_lr);
        nothing with ``plateau=False`` (a constant rate)."""
        if self.config.name != "SGD" or self._steps or not self.config.plateau:
            return
        if val_loss < self.best_loss - PLATEAU_MIN_DELTA:
            self.best_loss, self.wait = val_loss, 0
            return
        self.wait += 1
        if self.wait >= self.config.sgd_patience and self.plateau_lr > self.config.sgd_min_lr:
            self.plateau_lr = max(self.plateau_lr * 0.1, self.config.sgd_min_lr)
            self.wait = 0

    def state(self) -> dict:
        return {"plateau_lr": self.plateau_lr, "best_loss": self.best_loss, "wait": self.wait}

    def load_state(self, state: dict) -> None:
        self.plateau_lr = float(state["plateau_lr"])
        self.best_loss = float(state["best_loss"])
        self.wait = int(state["wait"])


def default_epochs(config: ScheduleConfig) -> int:
    """Epoch count of the reference when ``--epochs`` is not given."""
    if config.name == "SGDR":
        return sgdr_epochs(config.sgdr_base_len, config.sgdr_mul)
    if config.name == "SGD":
        return parse_sgd_schedule(config.sgd_schedule)[1] if config.sgd_schedule else 200
    if config.name == "CLR":
        return 240
    if config.name == "cosine":
        raise SemembedError("--lr_schedule cosine needs --epochs (it decays over the whole run)")
    return 164
