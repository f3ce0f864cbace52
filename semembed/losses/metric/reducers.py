"""Reducers: per-element losses → one scalar (pytorch-metric-learning's ``reducers``, METRIC_LEARNING.md §0).

Every loss produces *elements* (anchors, pairs or triplets) with a value, a
mask of the elements that exist and a weight each; a reducer turns them into
a scalar.  The denominators, named as the spec names them:

* ``mean`` — over the elements that have a term (for per-anchor losses: the
  anchors that produced a term, **#valid**; for pairs/triplets: every mined one);
* ``anchor_mean`` — Σ values / Σ anchor weights: **B**, all anchors including
  those that contribute 0 (Deep_Metric, research-ms-loss, PML v2.8.1 MS);
* ``mean_nonzero`` — over the elements whose value is > 0 (PML's ``AvgNonZeroReducer``);
* ``sum``;
* :class:`ThresholdReducer` ``(low, high)`` — mean over the elements with low < value < high (PML).

An empty denominator gives 0 (never NaN).
"""

from __future__ import annotations

from keras import ops

from semembed.errors import SemembedError


class Reducer:
    name = ""

    def __call__(self, values, mask, weights, num_anchors):
        """``values``, ``mask``, ``weights``: one shape; ``num_anchors``: Σ anchor weights (scalar)."""
        maskf = ops.cast(mask, values.dtype) * weights
        return self.reduce(values * maskf, maskf, values, num_anchors)

    def reduce(self, weighted, maskf, values, num_anchors):
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"name": self.name}


def _ratio(num, den):
    return ops.where(den > 0, num / ops.where(den > 0, den, ops.ones_like(den)), ops.zeros_like(num))


class MeanReducer(Reducer):
    name = "mean"

    def reduce(self, weighted, maskf, values, num_anchors):
        return _ratio(ops.sum(weighted), ops.sum(maskf))


class AnchorMeanReducer(Reducer):
    name = "anchor_mean"

    def reduce(self, weighted, maskf, values, num_anchors):
        return _ratio(ops.sum(weighted), ops.cast(num_anchors, weighted.dtype))


class AvgNonZeroReducer(Reducer):
    name = "mean_nonzero"

    def reduce(self, weighted, maskf, values, num_anchors):
        return _ratio(ops.sum(weighted), ops.sum(maskf * ops.cast(values > 0, values.dtype)))


class SumReducer(Reducer):
    name = "sum"

    def reduce(self, weighted, maskf, values, num_anchors):
        return ops.sum(weighted)


class ThresholdReducer(Reducer):
    """Mean over the elements with ``low < value < high`` (PML ``ThresholdReducer``; None: no bound)."""

    name = "threshold"

    def __init__(self, low: float | None = None, high: float | None = None):
        if low is None and high is None:
            raise SemembedError("ThresholdReducer needs low and/or high")
        self.low, self.high = low, high

    def reduce(self, weighted, maskf, values, num_anchors):
        keep = ops.ones_like(values)
        if self.low is not None:
            keep = keep * ops.cast(values > self.low, values.dtype)
        if self.high is not None:
            keep = keep * ops.cast(values < self.high, values.dtype)
        return _ratio(ops.sum(weighted * keep), ops.sum(maskf * keep))

    def get_config(self) -> dict:
        return {"name": self.name, "low": self.low, "high": self.high}


REDUCERS = {cls.name: cls for cls in (MeanReducer, AnchorMeanReducer, AvgNonZeroReducer, SumReducer, ThresholdReducer)}


def get_reducer(spec) -> Reducer:
    """A :class:`Reducer` from an instance, a name or a config dict."""
    if isinstance(spec, Reducer):
        return spec
    if isinstance(spec, dict):
        spec = dict(spec)
        name = spec.pop("name")
    else:
        name = spec
    if name not in REDUCERS:
        raise SemembedError(f"unknown reducer {name!r}; known: {', '.join(REDUCERS)}")
    return REDUCERS[name](**spec) if isinstance(spec, dict) else REDUCERS[name]()
