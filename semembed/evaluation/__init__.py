"""Evaluation: retrieval and classification metrics, feature files, reports (no TensorFlow)."""

from semembed.evaluation.retrieval import SIMILARITIES, retrieval_metrics

__all__ = ["SIMILARITIES", "retrieval_metrics"]
