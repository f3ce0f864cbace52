"""Target class embeddings whose dot products (or distances) reproduce taxonomy similarities."""

from semembed.class_embeddings.compute import METHODS, EmbeddingReport, compute_class_embedding, deviation
from semembed.class_embeddings.store import ClassEmbedding, load_class_embedding, save_class_embedding

__all__ = [
    "METHODS",
    "ClassEmbedding",
    "EmbeddingReport",
    "compute_class_embedding",
    "deviation",
    "load_class_embedding",
    "save_class_embedding",
]
