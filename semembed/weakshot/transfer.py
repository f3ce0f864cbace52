"""Similarity transfer: a trained SimNet's similarities among each novel class's web images → weights.

WEAKSHOT.md §2.3: SimNet in inference mode; per class, features of all its N
web images (test transform, in chunks), then S[i, j] = s(x_i, x_j) (first
x_i) over every ordered pair of the class, self-pairs included; no
cross-class pairs.  Unlike the reference, S is never held whole: rows are
computed in blocks of at most ``max_pairs`` pairs and reduced at once (row
sums or row top-k; column sums accumulate; column top-k for ``savg`` with a
fraction < 1 costs a second pass over blocks of columns), so a class of
5,000 images needs ``max_pairs`` similarities at a time, not 25 million.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semembed.weakshot.weights import WEIGHT_TYPES, normalise_one_mean, top_k_count, top_k_mean

#: pairs sent through the head at once (bounds memory: max_pairs × 2d floats of input)
DEFAULT_MAX_PAIRS = 65536
#: images per backbone call (the reference's chunk of 100)
DEFAULT_FEATURE_BATCH = 100


@dataclass
class ClassWeights:
    """Weights of one class's images, in the dataset's file order."""

    class_id: object
    indices: np.ndarray  # positions in the dataset's training list
    scores: np.ndarray  # r_i before normalisation
    weights: np.ndarray  # w_i = r_i / mean(r)


def similarity_block(head, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """(n1, n2) float64 block S[a, b] = s(first_a, second_b) (inference mode)."""
    from semembed.models.simnet import cross_pairs, same_class_probability

    _, logits = head(cross_pairs(first, second), training=False)
    s = same_class_probability(logits)
    return np.asarray(s, dtype=np.float64).reshape(len(first), len(second))


def class_scores(head, features: np.ndarray, weight_type: str = "savg", fraction: float = 1.0,
                 max_pairs: int = DEFAULT_MAX_PAIRS) -> np.ndarray:
    """r (N,) of one class from its features (N, d), streaming S in row blocks (module docstring)."""
    features = np.asarray(features, dtype=np.float32)
    n = len(features)
    if weight_type not in WEIGHT_TYPES:
        raise ValueError(f"weight_type must be one of {WEIGHT_TYPES}, received weight_type={weight_type!r}")
    if weight_type == "none" or n == 0:
        return np.ones(n)
    k = top_k_count(n, fraction)
    block = max(1, int(max_pairs) // n)
    rows = np.empty(n)
    cols = np.zeros(n) if weight_type == "savg" else None
    for start in range(0, n, block):
        stop = min(start + block, n)
        s = similarity_block(head, features[start:stop], features)  # rows start..stop of S
        rows[start:stop] = top_k_mean(s, k, axis=1)
        if cols is not None and k == n:
            cols += s.sum(axis=0)
    if cols is not None:
        if k == n:
            cols /= n
        else:  # columns i of S = s(x_j, x_i) over j: blocks with the pair order swapped
            for start in range(0, n, block):
                stop = min(start + block, n)
                c = similarity_block(head, features, features[start:stop])  # (n, b): S[:, start:stop]
                cols[start:stop] = top_k_mean(c, k, axis=0)
        return 0.5 * (rows + cols)
    return rows


def feature_function(backbone):
    """The backbone in inference mode as one ``tf.function`` for any batch size (traced once, not per class)."""
    import tensorflow as tf

    spec = tf.TensorSpec([None, *backbone.inputs[0].shape[1:]], tf.float32)
    return tf.function(lambda x: backbone(x, training=False), input_signature=[spec])


def dataset_features(backbone, dataset, indices: np.ndarray, batch_size: int = DEFAULT_FEATURE_BATCH, fn=None):
    """(kept indices, features) of the training images ``indices`` (no augmentation; unreadable files dropped).

    ``fn``: :func:`feature_function` of ``backbone``, shared across calls (a new one per call retraces).
    """
    fn = feature_function(backbone) if fn is None else fn
    feats, kept = [], []
    for batch in dataset.ordered_dataset("train", indices, batch_size):
        feats.append(np.asarray(fn(batch["image"]), dtype=np.float32))
        kept.append(np.asarray(batch["index"]))
    if not feats:
        return np.zeros(0, np.int64), np.zeros((0, int(backbone.output.shape[-1])), np.float32)
    return np.concatenate(kept).astype(np.int64), np.concatenate(feats)


def compute_class_weights(simnet, dataset, weight_type: str = "savg", fraction: float = 1.0,
                          max_pairs: int = DEFAULT_MAX_PAIRS, batch_size: int = DEFAULT_FEATURE_BATCH,
                          progress: bool = True) -> list[ClassWeights]:
    """Weights of every class of ``dataset``'s training images (the web images), one class at a time.

    Args:
        simnet: a model written by ``learn_simnet`` (:func:`semembed.models.simnet.build_simnet`).
        dataset: an :class:`~semembed.data.base.ImageDataset` (e.g. ``ImageFolder``: ``train/<class>/``).
        weight_type: ``savg`` (row + column mean, the reference's stage 3a), ``avg`` (row mean), ``none``.
        fraction: top-k fraction X of ``avgX``/``savgX`` (1: plain means).
        max_pairs: similarities computed at once (memory bound).
        batch_size: images per backbone call.
    """
    from semembed.models.simnet import simnet_parts

    backbone, head = simnet_parts(simnet)
    fn = feature_function(backbone)
    labels = np.asarray(dataset.train_labels)
    out = []
    bar = None
    if progress:
        import sys

        from tqdm.auto import tqdm

        bar = tqdm(total=len(labels), desc="similarities", file=sys.stderr, dynamic_ncols=True, leave=False)
    for c in range(dataset.num_classes):
        idx = np.flatnonzero(labels == c)
        kept, feats = dataset_features(backbone, dataset, idx, batch_size, fn) if len(idx) else (idx, None)
        scores = class_scores(head, feats, weight_type, fraction, max_pairs) if len(kept) else np.zeros(0)
        out.append(ClassWeights(dataset.classes[c], kept, scores, normalise_one_mean(scores)))
        if bar is not None:
            bar.update(len(idx))
    if bar is not None:
        bar.close()
    return out
