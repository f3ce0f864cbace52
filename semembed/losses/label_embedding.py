"""The label-embedding network's loss (Sun et al., "Label Embedding Network", 2017), as the reference.

Two heads on the batch-normalised features: ``o1`` (logits of the classifier, trained into the
network) and ``o2`` (logits of a second classifier on the features with the gradient stopped).
A C × C label-embedding matrix E (initialised to the identity, learned) gives each class a soft
target distribution softmax(E_y).  Per sample, with τ (``--tau``), α (``--alpha``), β (``--beta``):

    β·CE(y, softmax(o1)) + (1 − β)·CE(sg[softmax(E_y)], o1)         (o1 learns from y and E)
    + CE(y, softmax(o2))                                             (o2 learns from y)
    + CE(sg[softmax(o2 / τ)], E_y) · m · B / (Σ m + 1e-8)            (E learns from o2, correct rows only)
    + max(0, softmax(o2)_y − α)                                      (o2 kept from over-confidence)

where CE(t, z) = −Σ t · log_softmax(z), sg stops the gradient and m = [argmax o2 = y].
"""

from __future__ import annotations

from keras import ops

def _soft_ce(logits, target_probs):
    return -ops.sum(target_probs * ops.log_softmax(logits, axis=-1), axis=-1)


def label_embedding_loss(labels, out1, out2, label_emb, tau: float, alpha: float, beta: float):
    """Per-sample loss (B,) from the logits ``out1``, ``out2`` (B, C) and the rows E_y ``label_emb`` (B, C)."""
    labels = ops.cast(labels, "int32")
    out1, out2, label_emb = (ops.cast(t, "float32") for t in (out1, out2, label_emb))
    c = ops.shape(out1)[-1]
    onehot = ops.one_hot(labels, c)
    soft_target = ops.stop_gradient(ops.softmax(label_emb, axis=-1))
    tau_probs = ops.stop_gradient(ops.softmax(out2 / tau, axis=-1))
    l_o1_y = _soft_ce(out1, onehot)
    l_o1_emb = _soft_ce(out1, soft_target)
    l_o2_y = _soft_ce(out2, onehot)
    mask = ops.stop_gradient(ops.cast(ops.equal(ops.argmax(out2, axis=-1), labels), "float32"))
    n = ops.cast(ops.shape(mask)[0], "float32")
    l_emb_o2 = _soft_ce(label_emb, tau_probs) * mask * (n / (ops.sum(mask) + 1e-8))
    l_re = ops.relu(ops.sum(ops.softmax(out2, axis=-1) * onehot, axis=-1) - alpha)
    return beta * l_o1_y + (1.0 - beta) * l_o1_emb + l_o2_y + l_emb_o2 + l_re
