"""Miners: which pairs or triplets a loss uses (pytorch-metric-learning's ``miners``, METRIC_LEARNING.md §2, §6).

A miner returns *masks* over the anchor × reference grid, not lists of
indices: index tuples have a data-dependent length, which XLA and JAX cannot
compile, while masks have the static shapes every ``keras.ops`` backend needs.
Used on its own, ``miner(labels (B,), embeddings (B, D))`` (= :meth:`Miner.mine`)
mines the batch with the miner's own distance (PML's defaults; ``distance=`` to
change it) and returns the masks; PML's index tuples are one call away
(:func:`pair_indices`, :func:`triplet_indices`, eager only)::

    pos, neg = MultiSimilarityMiner()(labels, embeddings)
    a1, p, a2, n = pair_indices(pos, neg)            # PML's (a1, p, a2, n)
    a, p, n = triplet_indices(BatchHardMiner()(labels, embeddings))

* pair miners (:class:`MultiSimilarityMiner`, :class:`PairMarginMiner`) →
  ``(pos, neg)`` bool (B, R): the pairs (a1, p) and (a2, n) kept;
* triplet miners (:class:`BatchHardMiner`, :class:`TripletMarginMiner`) →
  bool (B, R, R): triplet (a, p, n) kept;
* :class:`SemiHardNegativeMiner` (FaceNet / ``tf.addons`` rule) → inside a
  loss, for every positive pair (a, p) the distance of its chosen negative,
  (B, R); on its own (:meth:`~SemiHardNegativeMiner.mine`), the triplet mask
  (B, R, R) of (a, p, chosen n).

Inside a loss the miner reads the loss's
:class:`~semembed.losses.metric.common.PairContext` (its distance, self
exclusion and references): ``miner(ctx)`` (= :meth:`Miner.from_context`).
Batch scope: a miner sees the batch it is given — the ``metric`` task's losses
give it the global batch of all replicas.

Mining is not differentiable (masks under stop-gradient); the loss's gradient
flows through the selected distances.  Ties in arg-max/arg-min go to the lower index.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from semembed.errors import SemembedError


def _stop(x):
    return ops.stop_gradient(x)


class Miner:
    """Base of the miners (see the module docstring)."""

    name = ""
    kind = "pair"  # pair | triplet | negative
    #: distance of :meth:`mine` when none is given (PML's default for the miner)
    default_distance = "euclidean"

    def __call__(self, labels_or_context, embeddings=None, **kwargs):
        """``miner(ctx)`` inside a loss (:meth:`from_context`), or ``miner(labels, embeddings, ...)`` (:meth:`mine`)."""
        from semembed.losses.metric.common import PairContext

        if isinstance(labels_or_context, PairContext):
            if embeddings is not None or kwargs:
                raise SemembedError(f"{type(self).__name__}(ctx) takes the pair context alone")
            return self.from_context(labels_or_context)
        if embeddings is None:
            raise SemembedError(f"{type(self).__name__}: call it as miner(labels (B,), embeddings (B, D))")
        return self.mine(labels_or_context, embeddings, **kwargs)

    def mine(self, labels, embeddings, *, distance=None, ref_labels=None, ref_embeddings=None):
        """Mine a batch on its own: ``labels`` (B,), ``embeddings`` (B, D) against themselves (self excluded by
        index) or against ``ref_labels`` (R,), ``ref_embeddings`` (R, D).

        Args:
            distance: name or :class:`~semembed.losses.metric.distances.Distance`; default
                :attr:`default_distance` (PML's default for this miner), on L2-normalised embeddings.

        Returns:
            The masks of :meth:`from_context` (pair miners: ``(pos, neg)`` (B, R); triplet miners: (B, R, R)),
            as backend tensors; :func:`pair_indices` / :func:`triplet_indices` give PML's index tuples.

        Raises:
            SemembedError: shapes that do not match ((B,), (B, D)), or a distance the miner is not defined on.
        """
        from semembed.losses.metric.common import build_context, check_inputs, static_shape
        from semembed.losses.metric.distances import get_distance

        owner = type(self).__name__
        check_inputs(owner, labels, embeddings)
        if (ref_labels is None) != (ref_embeddings is None):
            raise SemembedError(f"{owner}: ref_labels and ref_embeddings must be given together")
        if ref_embeddings is not None:
            check_inputs(owner, ref_labels, ref_embeddings, width=(static_shape(embeddings) or (None,))[-1],
                         labels_name="ref_labels", embeddings_name="ref_embeddings")
        dist = get_distance(self.default_distance if distance is None else distance)
        ctx = build_context(dist, labels, embeddings, ref_labels=ref_labels, ref_embeddings=ref_embeddings)
        return self.masks_from_context(ctx)

    def from_context(self, ctx):
        """What a loss reads from its pair context (see the module docstring)."""
        raise NotImplementedError

    def masks_from_context(self, ctx):
        """The masks :meth:`mine` returns (default: :meth:`from_context`'s)."""
        return self.from_context(ctx)

    def get_config(self) -> dict:
        return {"name": self.name}


class MultiSimilarityMiner(Miner):
    """MS pair mining (Wang et al. CVPR 2019, §6), strict inequalities, on cosine similarities.

    Keep negative k of anchor i iff S_ik + ε > min_{j∈P_i} S_ij; keep positive k
    iff S_ik − ε < max_{j∈N_i} S_ij.  An anchor without positives keeps no
    negative (min over ∅ = +∞), one without negatives keeps no positive.

    Args:
        epsilon: ε, 0.1 (paper, research-ms-loss, PML).
    """

    name = "multi_similarity"
    default_distance = "cosine"

    def __init__(self, epsilon: float = 0.1):
        self.epsilon = float(epsilon)

    def from_context(self, ctx):
        if not ctx.is_inverted:
            raise SemembedError("MultiSimilarityMiner mines on similarities: use distance='cosine'")
        s = _stop(ctx.mat)
        big = ops.cast(1e30, s.dtype)
        min_pos = ops.min(ops.where(ctx.pos, s, big), axis=1, keepdims=True)
        max_neg = ops.max(ops.where(ctx.neg, s, -big), axis=1, keepdims=True)
        neg = ops.logical_and(ctx.neg, s + self.epsilon > min_pos)
        pos = ops.logical_and(ctx.pos, s - self.epsilon < max_neg)
        return pos, neg

    def get_config(self):
        return {"name": self.name, "epsilon": self.epsilon}


class PairMarginMiner(Miner):
    """Pairs that violate a margin (PML ``PairMarginMiner``, defaults pos 0.2, neg 0.8).

    Distances: positives with d > pos_margin, negatives with d < neg_margin;
    similarities: positives with S < pos_margin, negatives with S > neg_margin.
    """

    name = "pair_margin"

    def __init__(self, pos_margin: float = 0.2, neg_margin: float = 0.8):
        self.pos_margin, self.neg_margin = float(pos_margin), float(neg_margin)

    def from_context(self, ctx):
        d = _stop(ctx.mat)
        if ctx.is_inverted:
            return ops.logical_and(ctx.pos, d < self.pos_margin), ops.logical_and(ctx.neg, d > self.neg_margin)
        return ops.logical_and(ctx.pos, d > self.pos_margin), ops.logical_and(ctx.neg, d < self.neg_margin)

    def get_config(self):
        return {"name": self.name, "pos_margin": self.pos_margin, "neg_margin": self.neg_margin}


class BatchHardMiner(Miner):
    """Per anchor, its hardest positive and hardest negative (Hermans et al. 2017; PML ``BatchHardMiner``).

    One triplet per anchor that has both; returns the (B, R, R) triplet mask.
    """

    name = "batch_hard"
    kind = "triplet"

    def from_context(self, ctx):
        c = _stop(ctx.closeness())  # larger = closer
        big = ops.cast(1e30, c.dtype)
        hard_p = ops.argmin(ops.where(ctx.pos, c, big), axis=1)  # least close positive
        hard_n = ops.argmax(ops.where(ctx.neg, c, -big), axis=1)  # closest negative
        r = ops.shape(c)[1]
        ok = ops.logical_and(ops.any(ctx.pos, axis=1), ops.any(ctx.neg, axis=1))
        onehot_p = ops.cast(ops.one_hot(hard_p, r), "bool")
        onehot_n = ops.cast(ops.one_hot(hard_n, r), "bool")
        return onehot_p[:, :, None] & onehot_n[:, None, :] & ok[:, None, None]


class TripletMarginMiner(Miner):
    """Triplets by their margin m_t = d_an − d_ap (S_ap − S_an for similarities); PML ``TripletMarginMiner``.

    ``all``: every triplet; ``hard``: m_t ≤ 0; ``semihard``: 0 < m_t ≤ margin;
    ``easy``: m_t > margin.  PML defaults: margin 0.2, ``all``; Proxy-Anchor
    repo's triplet baseline: margin 0.1, ``semihard``.
    """

    name = "triplet_margin"
    kind = "triplet"
    TYPES = ("all", "hard", "semihard", "easy")

    def __init__(self, margin: float = 0.2, type_of_triplets: str = "all"):
        if type_of_triplets not in self.TYPES:
            raise SemembedError(f"type_of_triplets must be one of {', '.join(self.TYPES)}, got {type_of_triplets!r}")
        self.margin, self.type_of_triplets = float(margin), type_of_triplets

    def from_context(self, ctx):
        c = _stop(ctx.closeness())
        valid = ctx.pos[:, :, None] & ctx.neg[:, None, :]
        if self.type_of_triplets == "all":
            return valid
        m_t = c[:, :, None] - c[:, None, :]  # closeness(ap) − closeness(an)
        if self.type_of_triplets == "easy":
            cond = m_t > self.margin
        elif self.type_of_triplets == "hard":
            cond = m_t <= 0
        else:
            cond = ops.logical_and(m_t > 0, m_t <= self.margin)
        return ops.logical_and(valid, cond)

    def get_config(self):
        return {"name": self.name, "margin": self.margin, "type_of_triplets": self.type_of_triplets}


class SemiHardNegativeMiner(Miner):
    """FaceNet's semi-hard negative per positive pair, the TensorFlow ``triplet_semihard_loss`` rule (§2).

    For each positive pair (a, p): the closest negative farther than p
    (min d_an with d_an > d_ap); if none, the farthest negative; if anchor a
    has no negative, a negative distance of 0.  Returns the chosen negative's
    distance, (B, R) (defined on distances only).
    """

    name = "facenet_semihard"
    kind = "negative"
    default_distance = "squared_euclidean"  # FaceNet (TF-contrib's triplet_semihard_loss)

    def _choice(self, ctx):
        """(index of the chosen negative per (a, p) (B, R), whether anchor a has a negative (B, 1))."""
        if ctx.is_inverted:
            raise SemembedError("SemiHardNegativeMiner works on distances: use distance='euclidean' or 'squared_euclidean'")
        ds = _stop(ctx.mat)
        big = ops.cast(1e30, ds.dtype)
        farther = ctx.neg[:, None, :] & (ds[:, None, :] > ds[:, :, None])  # (a, p, n)
        masked = ops.where(farther, ds[:, None, :], big)
        semi = ops.argmin(masked, axis=2)  # (a, p)
        has_semi = ops.any(farther, axis=2)
        far = ops.argmax(ops.where(ctx.neg, ds, -big), axis=1)  # (a,)
        idx = ops.cast(ops.where(has_semi, semi, far[:, None]), "int32")
        return idx, ops.any(ctx.neg, axis=1)[:, None]

    def from_context(self, ctx):
        idx, has_neg = self._choice(ctx)
        chosen = ops.take_along_axis(ctx.mat, idx, axis=1)
        return ops.where(has_neg, chosen, ops.zeros_like(chosen))

    def masks_from_context(self, ctx):
        """On its own (:meth:`Miner.mine`): the triplets (a, p, n*) as a (B, R, R) mask — every positive pair
        of an anchor that has a negative, with its chosen negative n*."""
        idx, has_neg = self._choice(ctx)
        onehot = ops.cast(ops.one_hot(idx, ops.shape(ctx.mat)[1]), "bool")  # (a, p, n)
        return onehot & (ctx.pos & has_neg)[:, :, None]


MINERS = {cls.name: cls for cls in (MultiSimilarityMiner, PairMarginMiner, BatchHardMiner, TripletMarginMiner,
                                    SemiHardNegativeMiner)}


def get_miner(spec) -> Miner | None:
    """A :class:`Miner` from an instance, a name, a config dict, or None."""
    if spec is None or isinstance(spec, Miner):
        return spec
    if isinstance(spec, dict):
        spec = dict(spec)
        name = spec.pop("name")
        kwargs = spec
    else:
        name, kwargs = spec, {}
    if name not in MINERS:
        raise SemembedError(f"unknown miner {name!r}; known: {', '.join(MINERS)}")
    return MINERS[name](**kwargs)


def pair_indices(pos, neg) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """PML's pair tuple ``(a1, p, a2, n)`` of a pair miner's masks (eager only)."""
    a1, p = np.nonzero(np.asarray(pos))
    a2, n = np.nonzero(np.asarray(neg))
    return a1, p, a2, n


def triplet_indices(mask) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PML's triplet tuple ``(a, p, n)`` of a triplet miner's mask (eager only)."""
    return tuple(np.nonzero(np.asarray(mask)))
