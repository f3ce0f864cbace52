"""Cross-Batch Memory (XBM; Wang, Zhang, Huang & Scott, CVPR 2020), research-xbm semantics (METRIC_LEARNING.md §7).

A ring buffer of the K most recent (detached) embeddings and labels.  At
iteration t (1-based, counted by the memory itself), when t > ``start_iteration``:
(1) the batch is enqueued; (2) L = ℓ(batch, batch) + w·ℓ(batch anchors, memory
references).  Before that, L = ℓ(batch, batch) and nothing is enqueued.  The
memory holds the current batch, whose own copies are excluded **by slot index**
(``ref_self_index``); only the anchors carry gradient.

Ring: ``ring="fifo"`` (default) is a true modular FIFO; ``ring="xbm"`` is the
research-xbm quirk: a batch that does not fit at ``ptr`` goes into the **last**
b slots and ``ptr`` returns to 0; until the last slot has been written only
slots [0, ptr) count.  (research-xbm tests "full" by a non-zero label in the last
slot; here it is whether that slot was written.)

Works with every pair loss that takes references (all but the original
lifted structure).  The memory's state (embeddings, labels, pointer, fill,
iteration) lives in non-trainable variables, saved with snapshots.  Under
several replicas give it the global batch: every replica then writes the same
values (the variables aggregate as ``only_first_replica``).  Memory entries
weigh 1 (sample weights are not stored).
"""

from __future__ import annotations

import keras
from keras import ops

from semembed.errors import SemembedError
from semembed.losses.metric.base import PairLoss
from semembed.losses.metric.common import check_inputs


@keras.saving.register_keras_serializable(package="semembed")
class CrossBatchMemory(keras.layers.Layer):
    """XBM around a pair loss; ``xbm(labels (B,), embeddings (B, D), sample_weight=None)`` → scalar.

    Args:
        loss: a :class:`~semembed.losses.metric.base.PairLoss` (or its serialised config).
        embedding_size: D.
        memory_size: K = 8192 (research-xbm defaults.py; its SOP config 55 000).
        start_iteration: 2000 (research-xbm defaults.py; SOP config 1000).
        weight: w = 1.0 (research-xbm).
        ring: ``fifo`` (default) or ``xbm`` (the research-xbm pointer quirk).

    Batch scope: the batch term and the enqueued rows are the batch given; the ``metric`` task passes the
    global batch (:meth:`~semembed.training.step.StepContext.gather`), so the batch term mines every
    replica's samples and every replica enqueues the same global batch.
    """

    RINGS = ("fifo", "xbm")

    def __init__(self, loss, embedding_size: int, memory_size: int = 8192, start_iteration: int = 2000,
                 weight: float = 1.0, ring: str = "fifo", name: str = "xbm", **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(name=name, **kwargs)
        if isinstance(loss, dict):
            loss = keras.saving.deserialize_keras_object(loss)
        if not isinstance(loss, PairLoss) or not loss.supports_references:
            raise SemembedError(f"CrossBatchMemory wraps a pair loss that takes references, got {loss!r}")
        if ring not in self.RINGS:
            raise SemembedError(f"CrossBatchMemory ring must be fifo or xbm, got {ring!r}")
        if int(memory_size) < 1:
            raise SemembedError(f"CrossBatchMemory memory_size must be >= 1, got {memory_size}")
        self.loss = loss
        self.embedding_size, self.memory_size = int(embedding_size), int(memory_size)
        self.start_iteration, self.weight, self.ring = int(start_iteration), float(weight), ring
        state = dict(trainable=False, aggregation="only_first_replica")
        self.memory = self.add_weight(shape=(self.memory_size, self.embedding_size), initializer="zeros",
                                      name="memory", **state)
        self.memory_labels = self.add_weight(shape=(self.memory_size,), initializer="zeros", dtype="int32",
                                             name="memory_labels", **state)
        self.ptr = self.add_weight(shape=(), initializer="zeros", dtype="int32", name="ptr", **state)
        self.filled = self.add_weight(shape=(), initializer="zeros", dtype="int32", name="filled", **state)
        self.iteration = self.add_weight(shape=(), initializer="zeros", dtype="int32", name="iteration", **state)
        self.built = True

    def state_variables(self) -> list:
        return [self.memory, self.memory_labels, self.ptr, self.filled, self.iteration]

    def enqueue_slots(self, batch: int):
        """(slots of the new batch (b,), new ptr, new fill) for a batch of ``batch`` rows (no writing)."""
        k = self.memory_size
        ptr, filled = ops.convert_to_tensor(self.ptr), ops.convert_to_tensor(self.filled)
        steps = ops.arange(batch, dtype="int32")
        if self.ring == "fifo":
            slots = (ptr + steps) % k
            return slots, (ptr + batch) % k, ops.minimum(filled + batch, k)
        overflow = ptr + batch > k
        start = ops.where(overflow, k - batch, ptr)
        new_ptr = ops.where(overflow, 0, ptr + batch)
        full = ops.logical_or(filled >= k, start + batch >= k)
        return start + steps, new_ptr, ops.where(full, k, new_ptr)

    def valid_slots(self, filled):
        return ops.arange(self.memory_size, dtype="int32") < filled

    def __call__(self, labels, embeddings, sample_weight=None, **kwargs):
        """Checks the inputs' static shapes (before Keras wraps any error), then :meth:`call`.

        Raises:
            SemembedError: ``embeddings`` not (B, embedding_size), ``labels`` or ``sample_weight`` not (B,).
        """
        check_inputs(type(self).__name__, labels, embeddings, sample_weight, width=self.embedding_size)
        return super().__call__(labels, embeddings, sample_weight=sample_weight, **kwargs)

    def call(self, labels, embeddings, sample_weight=None):
        labels = ops.cast(ops.reshape(labels, (-1,)), "int32")
        emb = ops.cast(embeddings, "float32")
        batch = labels.shape[0] if labels.shape[0] is not None else emb.shape[0]
        if batch is None:  # e.g. a gathered global batch: known only when the step runs
            batch = ops.shape(labels)[0]
        elif batch > self.memory_size:
            raise SemembedError(f"CrossBatchMemory: a batch of {batch} does not fit a memory of {self.memory_size}")
        t = ops.convert_to_tensor(self.iteration) + 1
        enabled = t > self.start_iteration
        slots, new_ptr, new_filled = self.enqueue_slots(batch)
        detached = ops.stop_gradient(emb)
        new_memory = ops.where(enabled, ops.scatter_update(ops.convert_to_tensor(self.memory), slots[:, None], detached),
                               ops.convert_to_tensor(self.memory))
        new_labels = ops.where(enabled, ops.scatter_update(ops.convert_to_tensor(self.memory_labels), slots[:, None],
                                                           labels), ops.convert_to_tensor(self.memory_labels))
        new_ptr = ops.where(enabled, new_ptr, ops.convert_to_tensor(self.ptr))
        new_filled = ops.where(enabled, new_filled, ops.convert_to_tensor(self.filled))
        self.memory.assign(new_memory)
        self.memory_labels.assign(new_labels)
        self.ptr.assign(new_ptr)
        self.filled.assign(new_filled)
        self.iteration.assign(t)
        batch_loss = self.loss(labels, emb, sample_weight)
        mem_loss = self.loss(labels, emb, sample_weight, ref_labels=new_labels, ref_embeddings=ops.stop_gradient(new_memory),
                             ref_weights=ops.cast(self.valid_slots(new_filled), "float32"), ref_self_index=slots)
        return batch_loss + ops.where(enabled, self.weight * mem_loss, ops.zeros_like(mem_loss))

    def get_config(self):
        return {**super().get_config(), "loss": keras.saving.serialize_keras_object(self.loss),
                "embedding_size": self.embedding_size, "memory_size": self.memory_size,
                "start_iteration": self.start_iteration, "weight": self.weight, "ring": self.ring}
