"""Evaluation: retrieval and classification metrics, feature files, reports (no TensorFlow)."""

from semembed.evaluation.classification import classification_metrics
from semembed.evaluation.retrieval import SIMILARITIES, retrieval_metrics

__all__ = ["SIMILARITIES", "classification_metrics", "retrieval_metrics"]
