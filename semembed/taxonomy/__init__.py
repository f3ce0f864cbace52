"""Taxonomy files, node statistics and class-pair similarity matrices (no TensorFlow)."""

from semembed.taxonomy.hierarchy import Hierarchy, load_hierarchy
from semembed.taxonomy.semantic import ClassPairs, class_similarity

__all__ = ["ClassPairs", "Hierarchy", "class_similarity", "load_hierarchy"]
