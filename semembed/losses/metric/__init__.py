"""Deep metric learning, split as pytorch-metric-learning is (METRIC_LEARNING.md).

* :mod:`~semembed.losses.metric.distances` — cosine / Euclidean / squared Euclidean, each knows if larger = closer;
* :mod:`~semembed.losses.metric.miners` — pair and triplet miners (masks; index tuples on request);
* :mod:`~semembed.losses.metric.reducers` — per-element losses → scalar (named denominators);
* one module per loss family: :mod:`.contrastive`, :mod:`.triplet`, :mod:`.lifted`,
  :mod:`.binomial`, :mod:`.nca`, :mod:`.multi_similarity`, :mod:`.proxies`;
* :mod:`~semembed.losses.metric.xbm` — cross-batch memory around any pair loss.

Every loss is called as ``loss(labels (B,), embeddings (B, D))`` → scalar and
sees whatever batch it is given; the ``metric`` task gives it the *global*
batch (:meth:`semembed.training.step.StepContext.gather`).
"""

from __future__ import annotations

from semembed.errors import SemembedError
from semembed.losses.metric.base import PairLoss, ProxyLoss
from semembed.losses.metric.binomial import BinomialDevianceLoss
from semembed.losses.metric.contrastive import ContrastiveLoss, contrastive_loss
from semembed.losses.metric.distances import (
    CosineSimilarity,
    EuclideanDistance,
    SquaredEuclideanDistance,
    cosine_similarity,
    euclidean_distance,
    get_distance,
)
from semembed.losses.metric.lifted import GeneralizedLiftedStructureLoss, LiftedStructureLoss
from semembed.losses.metric.miners import (
    MINERS,
    BatchHardMiner,
    MultiSimilarityMiner,
    PairMarginMiner,
    SemiHardNegativeMiner,
    TripletMarginMiner,
    get_miner,
)
from semembed.losses.metric.multi_similarity import MultiSimilarityLoss
from semembed.losses.metric.nca import NCALoss
from semembed.losses.metric.proxies import NormalizedSoftmaxLoss, ProxyAnchorLoss, ProxyNCALoss
from semembed.losses.metric.reducers import ThresholdReducer, get_reducer
from semembed.losses.metric.triplet import TripletMarginLoss
from semembed.losses.metric.xbm import CrossBatchMemory

#: ``--loss`` name -> class
METRIC_LOSSES = {cls.registry_name: cls for cls in (
    ContrastiveLoss, TripletMarginLoss, LiftedStructureLoss, GeneralizedLiftedStructureLoss,
    BinomialDevianceLoss, NCALoss, MultiSimilarityLoss, ProxyAnchorLoss, ProxyNCALoss, NormalizedSoftmaxLoss,
)}


def is_proxy_loss(name: str) -> bool:
    """Whether the ``--loss`` name is a proxy loss (owns weights, needs the class count)."""
    return issubclass(get_metric_loss_class(name), ProxyLoss)


def get_metric_loss_class(name: str) -> type:
    """The loss class registered as ``name``."""
    try:
        return METRIC_LOSSES[name]
    except KeyError:
        raise SemembedError(f"unknown metric loss {name!r}; known: {', '.join(METRIC_LOSSES)}") from None


def build_metric_loss(name: str, *, num_classes: int | None = None, embedding_size: int | None = None, **kwargs):
    """The loss ``name`` with ``kwargs``; proxy losses also need ``num_classes`` and ``embedding_size``."""
    cls = get_metric_loss_class(name)
    if issubclass(cls, ProxyLoss):
        if num_classes is None or embedding_size is None:
            raise SemembedError(f"loss {name!r} needs num_classes and embedding_size")
        return cls(num_classes, embedding_size, **kwargs)
    return cls(**kwargs)


__all__ = [
    "BatchHardMiner", "BinomialDevianceLoss", "ContrastiveLoss", "CosineSimilarity", "CrossBatchMemory",
    "EuclideanDistance", "GeneralizedLiftedStructureLoss", "LiftedStructureLoss", "METRIC_LOSSES", "MINERS",
    "MultiSimilarityLoss", "MultiSimilarityMiner", "NCALoss", "NormalizedSoftmaxLoss", "PairLoss",
    "PairMarginMiner", "ProxyAnchorLoss", "ProxyLoss", "ProxyNCALoss", "SemiHardNegativeMiner",
    "SquaredEuclideanDistance", "ThresholdReducer", "TripletMarginLoss", "TripletMarginMiner", "build_metric_loss",
    "contrastive_loss", "cosine_similarity", "euclidean_distance", "get_distance", "get_metric_loss_class",
    "get_miner", "get_reducer", "is_proxy_loss",
]
