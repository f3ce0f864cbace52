"""The hinge rank loss of DeViSE (Frome et al., NeurIPS 2013), as the reference's ``devise_ranking_loss``.

loss(x, y) = Σ_{j≠y} max(0, margin − ⟨t_y, f(x)⟩ + ⟨t_j, f(x)⟩), with the class embeddings t
L2-normalised and f(x) the network's linear (unnormalised) output.  The reference sums over all j
and subtracts the j = y term, which is exactly ``margin``; the two are equal.
"""

from __future__ import annotations

import numpy as np
from keras import ops

def normalized_class_embeddings(embedding: np.ndarray) -> np.ndarray:
    """Rows L2-normalised (as learn_devise.py does with the file's embedding)."""
    emb = np.asarray(embedding, dtype=np.float32)
    return emb / np.linalg.norm(emb, axis=-1, keepdims=True)


def devise_rank_loss(labels, outputs, class_embeddings, margin: float):
    """Per-sample hinge rank loss (B,) of outputs (B, D) against the (C, D) normalised class embeddings."""
    outputs = ops.cast(outputs, "float32")
    emb = ops.convert_to_tensor(class_embeddings, dtype="float32")
    sims = ops.matmul(outputs, ops.transpose(emb))  # (B, C)
    true = ops.take_along_axis(sims, ops.expand_dims(ops.cast(labels, "int32"), -1), axis=1)
    return ops.sum(ops.relu(margin - true + sims), axis=-1) - margin
