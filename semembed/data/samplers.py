"""Batch samplers: the m-per-class (P classes × K images) batches metric learning needs.

Semantics of pytorch-metric-learning's ``MPerClassSampler`` (METRIC_LEARNING.md
§11): each global batch draws ``batch_size / m`` distinct classes uniformly at
random and ``m`` images of each, without replacement (with replacement for a
class with fewer than ``m`` images); an epoch has ``num_images // batch_size``
batches (at least one).  The order is a pure function of (seed, epoch), so a
resumed run sees the same batches.  Within a batch the images of one class are
contiguous, so splitting the global batch into contiguous per-replica blocks
of a multiple of ``m`` keeps every class group on one replica.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semembed.errors import SemembedError


@dataclass(frozen=True)
class MPerClassSampler:
    """P × m batches.

    Args:
        m: images per class in a batch (≥ 1).
        batch_size: the *global* batch size, a multiple of ``m``.
        length: images per epoch before rounding down to whole batches
            (default: the number of training images).
        flags: the command-line flags that set these batches, as the user gave them (for error
            messages; default ``--batch_size B --m_per_class M``, learn_image_embeddings' flags).
    """

    m: int
    batch_size: int
    length: int | None = None
    flags: str = ""

    def __post_init__(self) -> None:
        if self.m < 1:
            raise SemembedError(f"--m_per_class must be >= 1, got {self.m}")
        if self.batch_size % self.m:
            raise SemembedError(f"--batch_size {self.batch_size} is not a multiple of --m_per_class {self.m}")

    @property
    def classes_per_batch(self) -> int:
        return self.batch_size // self.m

    @property
    def described(self) -> str:
        return self.flags or f"--batch_size {self.batch_size} --m_per_class {self.m}"

    def num_batches(self, num_images: int) -> int:
        return max((self.length or num_images) // self.batch_size, 1)

    def check(self, labels: np.ndarray, replicas: int = 1) -> None:
        """Raise a clear error when the labels or the replica split cannot give such batches."""
        present = len(np.unique(labels))
        p = self.classes_per_batch
        if present < p:
            raise SemembedError(f"batches of {p} classes x {self.m} images ({self.described}) need {p} classes "
                                f"per batch, the training set has {present}")
        small = int((np.bincount(np.unique(labels, return_inverse=True)[1]) < self.m).sum())
        if small:
            import sys

            print(f"warning: {self.m} images per class ({self.described}): {small} classes have fewer than "
                  f"{self.m} training images; their images repeat within a batch (drawn with replacement)",
                  file=sys.stderr)
        per_replica = self.batch_size // replicas
        if self.batch_size % replicas or per_replica % self.m:
            raise SemembedError(f"batches of {p} classes x {self.m} images ({self.described}) over {replicas} "
                                f"replicas: each replica would get {self.batch_size / replicas:g} images, not whole "
                                f"classes of {self.m} (class groups would be split); the classes per batch ({p}) "
                                f"must be a multiple of the {replicas} replicas")

    def epoch_order(self, labels: np.ndarray, epoch: int, seed: int) -> np.ndarray:
        """Indices of one epoch, ``num_batches × batch_size`` long, class groups contiguous."""
        labels = np.asarray(labels)
        self.check(labels)
        rng = np.random.default_rng([int(seed), int(epoch), 0x4D50])
        classes, inverse = np.unique(labels, return_inverse=True)
        members = np.argsort(inverse, kind="stable")
        counts = np.bincount(inverse, minlength=len(classes))
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        nb, p, m = self.num_batches(len(labels)), self.classes_per_batch, self.m
        # P distinct classes per batch: the first P of a random permutation of the classes
        chosen = np.argsort(rng.random((nb, len(classes))), axis=1)[:, :p].ravel()  # (nb*P,) class numbers
        out = np.empty((nb * p, m), dtype=np.int64)
        slot_order = np.argsort(chosen, kind="stable")
        uses = np.bincount(chosen, minlength=len(classes))
        bounds = np.concatenate([[0], np.cumsum(uses)])
        for c in np.flatnonzero(uses):  # a loop over classes, each vectorised over its draws
            n, t = counts[c], uses[c]
            slots = slot_order[bounds[c]:bounds[c + 1]]
            if n >= m:
                per_perm = n // m  # chunks of m from independent permutations: no repeats inside a chunk
                perms = -(-t // per_perm)
                keys = rng.random((perms, n))
                chunks = np.argsort(keys, axis=1)[:, : per_perm * m].reshape(-1, m)[:t]
            else:
                chunks = rng.integers(0, n, size=(t, m))
            out[slots] = members[starts[c] + chunks]
        return out.ravel()

    def shard(self, order: np.ndarray, num_shards: int, index: int) -> np.ndarray:
        """Shard ``index`` of ``num_shards``: its contiguous block of every global batch."""
        if self.batch_size % num_shards:
            raise SemembedError(f"--batch_size {self.batch_size} is not divisible by {num_shards} input pipelines")
        return order.reshape(-1, num_shards, self.batch_size // num_shards)[:, index].ravel()


def fit_classes_per_batch(wanted: int, present: int, replicas: int = 1) -> int:
    """The classes per batch P when none was given: the largest P ≤ min(``wanted``, ``present``) that is a
    multiple of ``replicas`` (each replica takes whole classes).

    Args:
        wanted: the default P (learn_metric: 16, research-ms-loss's 16 × 5).
        present: classes with training images.
        replicas: replicas the global batch is split over.

    Raises:
        SemembedError: fewer training classes than replicas.
    """
    p = min(int(wanted), int(present))
    p -= p % max(int(replicas), 1)
    if p < 1:
        raise SemembedError(f"{present} training classes cannot be split over {replicas} replicas (each replica "
                            "takes whole classes of a batch); use fewer replicas")
    return p


def class_balanced_sampler(m: int, batch_size: int, labels: np.ndarray, replicas: int = 1, *, auto: bool = False,
                           flags: str = "") -> tuple[MPerClassSampler, str | None]:
    """The checked P × m sampler of a run, and a line saying how P was chosen (None when it was given).

    Args:
        m: images per class K.
        batch_size: P × m; with ``auto`` P = ``batch_size / m`` is a default, lowered by
            :func:`fit_classes_per_batch` to the classes of ``labels`` and the replicas.
        labels: the training labels.
        replicas: replicas the global batch is split over.
        flags: the flags that set the batches, for error messages.

    Raises:
        SemembedError: too few classes or a replica split through a class group (see :meth:`MPerClassSampler.check`).
    """
    note = None
    if auto:
        wanted, present = batch_size // m, len(np.unique(labels))
        p = fit_classes_per_batch(wanted, present, replicas)
        note = (f"Batches of {p} classes x {m} images (--classes_per_batch not given: min({wanted}, the {present} "
                "training classes)" + (f", a multiple of the {replicas} replicas" if replicas > 1 else "") + ")")
        batch_size = p * m
    sampler = MPerClassSampler(m, batch_size, flags=flags)
    sampler.check(labels, replicas)
    return sampler, note


@dataclass(frozen=True)
class ClassSubsetSampler:
    """SimNet pair batches (WEAKSHOT.md §2.2): each batch draws from at most ``classes_per_batch`` classes.

    Per global batch: ``classes_per_batch`` distinct classes at random (all of
    them when there are fewer), then each of the ``batch_size`` slots picks one of
    them uniformly (a multinomial count per class, ~2.5 images each for the
    reference's 20 classes × 50 slots) and takes the next image of a random
    permutation of that class, so no image repeats within an epoch until its
    class runs dry (then a new permutation starts).  An epoch has
    ``num_images // batch_size`` batches (at least one), all full; within a
    batch the images of a class are contiguous.  A pure function of (seed, epoch).

    Args:
        classes_per_batch: classes per batch (the reference: 20 base, 2 web).
        batch_size: the *global* batch size.
        length: images per epoch before rounding down to whole batches (default: all).
    """

    classes_per_batch: int
    batch_size: int
    length: int | None = None

    def __post_init__(self) -> None:
        if self.classes_per_batch < 1:
            raise SemembedError(f"classes per batch must be >= 1, got {self.classes_per_batch}")
        if self.batch_size < 1:
            raise SemembedError(f"--batch_size must be >= 1, got {self.batch_size}")

    def num_batches(self, num_images: int) -> int:
        return max((self.length or num_images) // self.batch_size, 1)

    def check(self, labels: np.ndarray, replicas: int = 1) -> None:
        if len(labels) == 0:
            raise SemembedError("the pair sampler got no images")
        if self.batch_size % replicas:
            raise SemembedError(f"--batch_size {self.batch_size} is not divisible by the {replicas} replicas")

    def epoch_order(self, labels: np.ndarray, epoch: int, seed: int) -> np.ndarray:
        """Indices of one epoch, ``num_batches × batch_size`` long."""
        labels = np.asarray(labels)
        self.check(labels)
        rng = np.random.default_rng([int(seed), int(epoch), 0x5349])
        classes, inverse = np.unique(labels, return_inverse=True)
        nb, c = self.num_batches(len(labels)), min(self.classes_per_batch, len(classes))
        picked = np.argsort(rng.random((nb, len(classes))), axis=1)[:, :c]  # (nb, c) class numbers
        slot_class = np.sort(np.take_along_axis(picked, rng.integers(0, c, size=(nb, self.batch_size)), axis=1),
                             axis=1).ravel()
        members = np.argsort(inverse, kind="stable")
        counts = np.bincount(inverse, minlength=len(classes))
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        slots = np.argsort(slot_class, kind="stable")  # slots grouped by class, in epoch order
        uses = np.bincount(slot_class, minlength=len(classes))
        bounds = np.concatenate([[0], np.cumsum(uses)])
        out = np.empty(slot_class.size, dtype=np.int64)
        for k in np.flatnonzero(uses):  # a loop over classes, each vectorised over its draws
            n, t = counts[k], uses[k]
            perms = np.argsort(rng.random((-(-t // n), n)), axis=1).ravel()[:t]
            out[slots[bounds[k]:bounds[k + 1]]] = members[starts[k] + perms]
        return out

    def shard(self, order: np.ndarray, num_shards: int, index: int) -> np.ndarray:
        """Shard ``index`` of ``num_shards``: its contiguous block of every global batch."""
        if self.batch_size % num_shards:
            raise SemembedError(f"--batch_size {self.batch_size} is not divisible by {num_shards} input pipelines")
        return order.reshape(-1, num_shards, self.batch_size // num_shards)[:, index].ravel()
