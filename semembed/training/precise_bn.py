"""Precise BatchNorm statistics: recompute the population statistics after training.

A BatchNorm layer's moving mean and variance are an exponential average (Keras
momentum 0.99: about the last 100 steps) of statistics taken while the weights
moved.  After a short run they lag far behind the final weights: on
Fashion-MNIST, ``simple-tiny`` trained 234 steps with cosine decay scores 0.79
in training mode (batch statistics) and 0.26 in inference mode; the first BN
layer's moving variance is 2.1 x the true one.  Recomputing the statistics at
the final weights with a plain average over ``num_batches`` training batches
gives back 0.79.  This is "PreciseBN" (Wu & Johnson, "Rethinking 'Batch' in
BatchNorm", 2021, §3; fvcore's ``update_bn_stats``, 200 batches).

Only the BN statistics change: every other non-trainable variable (e.g. AVSL's
link buffers, a classifier's counters) is restored after the forward passes.
Layers with ``trainable=False`` (``--freeze_bn``) keep their statistics.

A task whose training forward is not one call of its model on an image batch
passes ``forward``: SimNet sends a base batch and a web batch through its
backbone in one call and its pair head sees the pairs within each batch only
(``SimNetTask.precise_bn_forward``), so its statistics are those of that
forward, not of ``model(images)``.
"""

from __future__ import annotations

from typing import Callable, Iterable

import keras
import numpy as np

from semembed.errors import SemembedError


def batchnorm_layers(model: keras.Model) -> list:
    """The trainable BatchNormalization layers of ``model`` (nested models included)."""
    return [l for l in model._flatten_layers(include_self=False)
            if isinstance(l, keras.layers.BatchNormalization) and l.trainable]


def recompute_batchnorm_statistics(model: keras.Model, images: Iterable, num_batches: int,
                                   forward: Callable[[object], object] | None = None) -> int:
    """Set every BN layer's moving mean/variance to the average over ``num_batches`` batches of ``images``.

    Args:
        model: a Keras model; called as ``model(x, training=True)`` (eagerly, one batch at a time).
        images: an iterable of image batches (B, H, W, C), e.g. the training pipeline with its augmentation;
            with ``forward``, of whatever ``forward`` takes (e.g. the training batch dicts).
        num_batches: batches to average (> 0); fewer when ``images`` ends first.
        forward: runs the training forward of ``model``'s layers on one item of ``images`` (default
            ``model(x, training=True)``); it must call each BN layer at most once per item, in training
            mode (a BN layer it never calls keeps its statistics).

    Returns:
        The number of batches used (0 when the model has no trainable BN layer: nothing changes).

    Raises:
        SemembedError: ``num_batches`` < 1, or ``images`` yields no batch.
    """
    if num_batches < 1:
        raise SemembedError(f"--precise_bn_batches must be >= 1 to recompute BN statistics, got {num_batches}")
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    stats = {id(v) for l in layers for v in (l.moving_mean, l.moving_variance)}
    others = [v for v in model.non_trainable_variables if id(v) not in stats]
    kept = [np.asarray(v) for v in others]
    momenta = [l.momentum for l in layers]
    used = 0
    try:
        for x in images:
            if used == num_batches:
                break
            for layer in layers:  # moving = moving * i/(i+1) + batch / (i+1): the running mean of the batches
                layer.momentum = used / (used + 1.0)
            if forward is None:
                model(x, training=True)
            else:
                forward(x)
            used += 1
    finally:
        for layer, m in zip(layers, momenta):
            layer.momentum = m
        for v, value in zip(others, kept):
            v.assign(value)
    if not used:
        raise SemembedError("--precise_bn_batches: the training data yielded no batch")
    return used
