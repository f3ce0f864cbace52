"""What a task's per-replica step can call: gradients and updates, global-batch gathering, counts.

A :class:`StepContext` is handed to ``Task.train_step``/``eval_step`` inside
``strategy.run``.  It hides the replica arithmetic:

* :meth:`StepContext.global_count` — samples of the whole global batch (all
  replicas; a short last batch counts right);
* :meth:`StepContext.gather` — the global batch of a tensor, for pair and
  triplet losses that must see every replica's samples; only this replica's
  own rows carry gradient, so the gradients summed over replicas equal the
  gradient of one device computing the same loss on the global batch;
* :meth:`StepContext.minimize` — loss → gradients (XLA-compiled with
  ``--jit_compile``) → the named optimiser's decay, global-norm clipping and
  update → BatchNorm statistics averaged over replicas.
"""

from __future__ import annotations

from typing import Callable, Sequence

import keras
import tensorflow as tf


class StepContext:
    """Per-replica helpers of one training/evaluation step (see the module docstring)."""

    def __init__(self, optimizers: dict, models: dict, jit_compile: bool = False,
                 trainable: dict | None = None):
        self.optimizers = optimizers
        self.models = models
        self.jit_compile = jit_compile
        self.trainable = trainable or {}
        self._grad_fns: dict = {}

    # === Replicas ===
    @property
    def replica_context(self):
        return tf.distribute.get_replica_context()

    @property
    def num_replicas(self) -> int:
        ctx = self.replica_context
        return 1 if ctx is None else ctx.num_replicas_in_sync

    def global_count(self, x) -> tf.Tensor:
        """float32 number of rows of ``x`` summed over the replicas."""
        n = tf.cast(tf.shape(x)[0], tf.float32)
        return n if self.num_replicas == 1 else self.replica_context.all_reduce("sum", n)

    def gather(self, x) -> tf.Tensor:
        """``x`` of every replica concatenated along axis 0, in replica order.

        This replica's rows are ``x`` itself (gradient flows into them); the
        other replicas' rows are constants.  One device: ``x`` unchanged.
        """
        if self.num_replicas == 1:
            return x
        ctx = self.replica_context
        n = tf.shape(x)[0]
        sizes = ctx.all_gather(tf.reshape(n, [1]), axis=0)
        everything = ctx.all_gather(tf.stop_gradient(x), axis=0)
        offset = tf.reduce_sum(sizes[: ctx.replica_id_in_sync_group])
        return tf.concat([everything[:offset], x, everything[offset + n:]], axis=0)

    # === Updates ===
    def _gradient_fn(self, key, loss_fn: Callable, variables: Sequence, optimizer):
        if key not in self._grad_fns:
            def grads(*args):
                with tf.GradientTape() as tape:
                    loss, aux = loss_fn(*args)
                    scaled = optimizer.scale_loss(loss)
                return loss, aux, tape.gradient(scaled, variables)

            self._grad_fns[key] = tf.function(grads, jit_compile=True) if self.jit_compile else grads
        return self._grad_fns[key]

    def minimize(self, optimizer: str, loss_fn: Callable, *args, variables: Sequence | None = None,
                 jit: bool = True):
        """Differentiate ``loss_fn(*args) -> (loss, aux)`` and update with optimiser ``optimizer``.

        ``loss`` is this replica's share (gradients are summed over replicas).
        ``variables`` defaults to the optimiser's (restricted to the current
        phase's trainable set).  ``jit=False`` keeps XLA off for a loss that
        calls :meth:`gather` (collectives cannot be compiled under a
        multi-device strategy).  Returns ``(loss, aux, global gradient norm)``.
        """
        opt = self.optimizers[optimizer]
        if variables is None:
            variables = opt.variables
            allowed = self.trainable.get(optimizer)
            if allowed is not None:
                variables = [v for v in variables if id(v) in allowed]
        use_jit = jit or self.num_replicas == 1
        key = (optimizer, id(loss_fn), len(variables), use_jit)
        if use_jit:
            fn = self._gradient_fn(key, loss_fn, variables, opt)
        else:
            saved, self.jit_compile = self.jit_compile, False
            fn = self._gradient_fn(key, loss_fn, variables, opt)
            self.jit_compile = saved
        loss, aux, grads = fn(*args)
        norm = opt.apply(grads, variables)
        for model in self.models.values():
            sync_batchnorm_statistics(model, self.replica_context)
        return loss, aux, norm


def sync_batchnorm_statistics(model: keras.Model, ctx) -> None:
    """Average BN moving statistics over replicas so every replica (and the saved model) agrees.

    Each replica normalises with its own batch statistics, as a single-device
    run with the per-replica batch would; the moving averages become the mean
    of the replicas' updates (the update is linear in the batch statistics).
    """
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return
    stats = [v for v in model.non_trainable_variables if "moving_" in v.path]
    if not stats:
        return
    averaged = ctx.all_reduce("mean", [tf.identity(v.value) for v in stats])  # tensors, not variables
    for v, a in zip(stats, averaged):
        v.assign(a)


def regularization(model: keras.Model) -> tf.Tensor:
    """Sum of the model's weight-decay losses (its layers' regularisers), float32."""
    return tf.add_n([tf.cast(x, tf.float32) for x in model.losses]) if model.losses else tf.constant(0.0)
