"""The losses the JAX test compares across backends (imported by jax_losses.py; no tests here)."""

import keras
import numpy as np


def cases():
    from semembed.losses import (BinomialDevianceLoss, ContrastiveLoss, CrossBatchMemory,
                                 GeneralizedLiftedStructureLoss, LiftedStructureLoss, MultiSimilarityLoss, NCALoss,
                                 NormalizedSoftmaxLoss, ProxyAnchorLoss, ProxyNCALoss, TripletMarginLoss)
    from semembed.losses.metric import BatchHardMiner

    p = keras.initializers.Constant(np.random.default_rng(1).normal(size=(3, 8)))
    xbm = CrossBatchMemory(ContrastiveLoss(), 8, memory_size=32, start_iteration=0)
    return {
        "contrastive": ContrastiveLoss(),
        "triplet_margin": TripletMarginLoss(0.2),
        "triplet_batch_hard": TripletMarginLoss(0.2, miner=BatchHardMiner()),
        "triplet_facenet": TripletMarginLoss(0.2, distance="squared_euclidean", miner="facenet_semihard", reducer="mean"),
        "lifted_structure": LiftedStructureLoss(),
        "generalized_lifted_structure": GeneralizedLiftedStructureLoss(),
        "binomial_deviance": BinomialDevianceLoss(),
        "nca": NCALoss(),
        "multi_similarity": MultiSimilarityLoss(),
        "proxy_anchor": ProxyAnchorLoss(3, 8, proxy_initializer=p),
        "proxy_nca": ProxyNCALoss(3, 8, proxy_initializer=p),
        "normalized_softmax": NormalizedSoftmaxLoss(3, 8, proxy_initializer=p),
        "xbm_contrastive": xbm,
    }
