"""Optimisers of a task: SGD (momentum / Nesterov), Adam, AdamW, Adagrad, with parameter groups.

A task names its optimisers (``"main"``, ``"discriminator"``, ...) and gives
each a list of :class:`ParamGroup` (variables + learning-rate multiplier, e.g.
proxies at 100× the backbone's rate).  Keras 3 optimisers have no parameter
groups, so an :class:`OptimizerSet` holds one Keras optimiser per group and
drives all of them from one schedule value.

Per step (:meth:`OptimizerSet.apply`), in this order:

1. coupled weight decay (``decay="l2"``, the reference's Keras-2 ``l2(λ)``):
   the gradient of λ·Σ‖W‖² over the group's kernels (variables of rank ≥ 2),
   i.e. ``g += 2λW``, split evenly over the replicas;
2. clipping by the norm of the *global* gradient (all replicas summed;
   Keras 2's ``clipnorm`` semantics, the reference's ``--clipgrad``);
3. the update of each group at ``lr × multiplier``; ``decay="decoupled"``
   (AdamW, SGDW) uses Keras' decoupled ``weight_decay`` on the kernels.

With ``loss_scale=True`` (float16 mixed precision) each Keras optimiser is a
``keras.optimizers.LossScaleOptimizer``: gradients of the scaled loss are
unscaled for clipping, re-scaled (exactly: the scale is a power of two) and
handed to it, so it skips non-finite steps and adapts the scale as usual.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import keras
import tensorflow as tf

from semembed.errors import SemembedError

OPTIMIZERS = ("sgd", "adam", "adamw", "adagrad")
DECAY_MODES = ("l2", "decoupled")


@dataclass
class OptimizerConfig:
    """Hyper-parameters of one named optimiser (defaults: the reference's SGD, momentum 0.9, clip 10).

    Args:
        name: ``sgd`` | ``adam`` | ``adamw`` | ``adagrad`` (Keras 2's: accumulators start at 0, as the
            reference's DeViSE used it).
        momentum, nesterov: SGD only.
        beta_1, beta_2, epsilon: Adam/AdamW (Keras defaults 0.9, 0.999, 1e-7).
        weight_decay: λ ≥ 0, applied to kernels (rank ≥ 2) only.
        decay: ``l2`` (coupled, gradient of λ·Σ‖W‖²) or ``decoupled`` (W ← W − lr·λ·W);
            ``None``: decoupled for AdamW, ``l2`` otherwise.
        clipnorm: clip the global gradient norm to this (None or 0: off).
    """

    name: str = "sgd"
    momentum: float = 0.9
    nesterov: bool = False
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7
    weight_decay: float = 0.0
    decay: str | None = None
    clipnorm: float | None = 10.0

    def __post_init__(self) -> None:
        self.name = self.name.lower()
        if self.name not in OPTIMIZERS:
            raise SemembedError(f"--optimizer {self.name!r}: expected one of {', '.join(OPTIMIZERS)}")
        if self.decay is None:
            self.decay = "decoupled" if self.name == "adamw" else "l2"
        if self.decay not in DECAY_MODES:
            raise SemembedError(f"weight decay mode {self.decay!r}: expected one of {', '.join(DECAY_MODES)}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise SemembedError(f"--weight_decay must be finite and >= 0, got {self.weight_decay}")
        if not 0 <= self.momentum < 1:
            raise SemembedError(f"--momentum must be in [0, 1), got {self.momentum}")
        for name in ("beta_1", "beta_2"):
            if not 0 <= getattr(self, name) < 1:
                raise SemembedError(f"{name} must be in [0, 1), got {getattr(self, name)}")


@dataclass
class ParamGroup:
    """Variables one optimiser updates at ``lr × lr_multiplier``."""

    variables: Sequence
    lr_multiplier: float = 1.0
    name: str = "default"


def _keras_optimizer(cfg: OptimizerConfig, decoupled_decay: float) -> keras.optimizers.Optimizer:
    kw = dict(learning_rate=0.1, weight_decay=decoupled_decay or None)
    if cfg.name == "sgd":
        return keras.optimizers.SGD(momentum=cfg.momentum, nesterov=cfg.nesterov, **kw)
    if cfg.name == "adagrad":
        # Keras 2 (the reference) started the squared-gradient sums at 0; Keras 3 defaults to 0.1
        return keras.optimizers.Adagrad(initial_accumulator_value=0.0, epsilon=cfg.epsilon, **kw)
    if cfg.name == "adam":
        return keras.optimizers.Adam(beta_1=cfg.beta_1, beta_2=cfg.beta_2, epsilon=cfg.epsilon, **kw)
    kw["weight_decay"] = decoupled_decay  # AdamW requires a number
    return keras.optimizers.AdamW(beta_1=cfg.beta_1, beta_2=cfg.beta_2, epsilon=cfg.epsilon, **kw)


def _is_kernel(v) -> bool:
    return len(v.shape) >= 2


@dataclass
class OptimizerSet:
    """One named optimiser of a task: a Keras optimiser per parameter group (build inside the strategy scope)."""

    name: str
    config: OptimizerConfig
    groups: list[ParamGroup]
    loss_scale: bool = False
    optimizers: list = field(init=False)

    def __post_init__(self) -> None:
        seen: dict[int, int] = {}
        for i, g in enumerate(self.groups):
            for v in g.variables:
                if id(v) in seen:
                    raise SemembedError(f"optimizer {self.name!r}: variable {v.path} is in two parameter groups")
                seen[id(v)] = i
        decoupled = self.config.weight_decay if self.config.decay == "decoupled" else 0.0
        self.optimizers = []
        for g in self.groups:
            opt = _keras_optimizer(self.config, decoupled)
            if decoupled:
                opt.exclude_from_weight_decay(var_list=[v for v in g.variables if not _is_kernel(v)])
            if self.loss_scale:
                opt = keras.optimizers.LossScaleOptimizer(opt)
            opt.build(list(g.variables))
            self.optimizers.append(opt)
        self._group_of = seen

    @property
    def variables(self) -> list:
        """Every trainable variable this optimiser updates, group by group."""
        return [v for g in self.groups for v in g.variables]

    @property
    def state_variables(self) -> list:
        """The optimisers' own variables (iterations, moments, loss scale), for snapshots."""
        out = []
        for opt in self.optimizers:
            out.extend(opt.variables)
        return out

    def set_learning_rate(self, lr: float) -> None:
        for g, opt in zip(self.groups, self.optimizers):
            opt.learning_rate.assign(lr * g.lr_multiplier)

    def scale_loss(self, loss):
        """The loss to differentiate (multiplied by the dynamic loss scale under float16)."""
        return self.optimizers[0].scale_loss(loss) if self.loss_scale else loss

    def _loss_scale(self):
        return tf.cast(self.optimizers[0].dynamic_scale, tf.float32) if self.loss_scale else None

    def apply(self, grads: Sequence, variables: Sequence) -> tf.Tensor:
        """Decay, clip (global norm over all replicas) and apply; returns the global gradient norm.

        Must run in a replica context (inside ``strategy.run``); ``variables``
        may be a subset of :attr:`variables` (the fine-tuning warm-up).
        """
        ctx = tf.distribute.get_replica_context()
        replicas = ctx.num_replicas_in_sync
        scale = self._loss_scale()
        grads = [tf.zeros_like(v) if g is None else tf.cast(g, v.dtype) for g, v in zip(grads, variables)]
        if scale is not None:
            grads = [g / scale for g in grads]
        lam = self.config.weight_decay if self.config.decay == "l2" else 0.0
        if lam:
            grads = [g + (2.0 * lam / replicas) * v if _is_kernel(v) else g for g, v in zip(grads, variables)]
        total = grads if replicas == 1 else ctx.all_reduce("sum", grads)
        norm = tf.linalg.global_norm(total)
        clip = self.config.clipnorm
        if clip:
            factor = tf.minimum(1.0, clip / tf.maximum(norm, 1e-12))
            grads = [g * factor for g in grads]
        if scale is not None:
            grads = [g * scale for g in grads]
        by_group: dict[int, tuple[list, list]] = {}
        for g, v in zip(grads, variables):
            idx = self._group_of.get(id(v))
            if idx is None:
                raise SemembedError(f"optimizer {self.name!r} does not update variable {v.path}")
            by_group.setdefault(idx, ([], []))
            by_group[idx][0].append(g)
            by_group[idx][1].append(v)
        for idx, (gs, vs) in sorted(by_group.items()):
            self.optimizers[idx].apply(gs, vs)
        return norm


def build_optimizer_set(name: str, config: OptimizerConfig, groups: Sequence[ParamGroup] | Sequence,
                        loss_scale: bool = False) -> OptimizerSet:
    """An :class:`OptimizerSet`; ``groups`` may also be a plain variable list (one group, multiplier 1)."""
    groups = list(groups)
    if groups and not isinstance(groups[0], ParamGroup):
        groups = [ParamGroup(groups)]
    return OptimizerSet(name, config, groups, loss_scale=loss_scale)
