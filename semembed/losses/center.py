"""Center loss (Wen et al., ECCV 2016), as the reference's ``learn_center_loss.py``: ½‖f(x) − c_y‖².

Added to the softmax cross-entropy with ``--center_loss_weight`` (reference default 0.1). The centres c are
either learned (an embedding table trained with the network, as the reference's Keras
``Embedding`` layer) or fixed to given class embeddings (``--centroids FILE``).
"""

from __future__ import annotations

from keras import ops

def center_loss(features, centers):
    """Per-sample ½‖features − centers‖² (B,) of features and their class centres, both (B, D)."""
    diff = ops.cast(features, "float32") - ops.cast(centers, "float32")
    return 0.5 * ops.sum(ops.square(diff), axis=-1)
