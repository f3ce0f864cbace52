"""Registered, backend-agnostic Keras losses (``keras.ops`` only): one module per family.

* :mod:`semembed.losses.embedding` — class-embedding targets (``inv_corr``, ``mse``, ...)
* :mod:`semembed.losses.metric` — deep metric learning (distances, miners, reducers, pair and proxy losses, XBM)
* :mod:`semembed.losses.hierarchy` — hierarchy-aware classification (HXE, soft labels, HAFrame, Hier-COS)
"""

from semembed.losses.embedding import (
    CORRELATION_LOSSES,
    EMBEDDING_LOSS_NAMES,
    ClassEmbeddingLoss,
    embedding_loss_fn,
    inv_correlation,
    nearest_class_scores,
    squared_distance,
)
from semembed.losses.metric import (
    METRIC_LOSSES,
    BinomialDevianceLoss,
    ContrastiveLoss,
    CrossBatchMemory,
    GeneralizedLiftedStructureLoss,
    LiftedStructureLoss,
    MultiSimilarityLoss,
    MultiSimilarityMiner,
    NCALoss,
    NormalizedSoftmaxLoss,
    ProxyAnchorLoss,
    ProxyNCALoss,
    TripletMarginLoss,
    contrastive_loss,
)
from semembed.losses import hierarchy  # noqa: E402,F401  (registers the hxe / soft_labels classifier losses)

__all__ = [
    "METRIC_LOSSES",
    "BinomialDevianceLoss",
    "ContrastiveLoss",
    "CrossBatchMemory",
    "GeneralizedLiftedStructureLoss",
    "LiftedStructureLoss",
    "MultiSimilarityLoss",
    "MultiSimilarityMiner",
    "NCALoss",
    "NormalizedSoftmaxLoss",
    "ProxyAnchorLoss",
    "ProxyNCALoss",
    "TripletMarginLoss",
    "contrastive_loss",
    "CORRELATION_LOSSES",
    "EMBEDDING_LOSS_NAMES",
    "ClassEmbeddingLoss",
    "embedding_loss_fn",
    "inv_correlation",
    "nearest_class_scores",
    "squared_distance",
]
