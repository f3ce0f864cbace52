"""Hierarchy-aware classification losses: HXE, soft labels, a HAFrame-style fixed frame, Hier-COS.

Each method is a NumPy *construction* from the taxonomy (done once, outside the graph) and a
per-sample ``keras.ops`` loss (runs under ``tf.function``, XLA and JAX).  Classes are given by
their taxonomy ids in column order; they must not be ancestors of each other.

* **HXE** (Bertinetto et al., "Making Better Mistakes", CVPR 2020, §3.1): p(class) factorised
  along its root path, p(C) = Π p(C⁽ˡ⁾ | C⁽ˡ⁺¹⁾), node probabilities being sums of leaf
  probabilities; L = −Σₗ λ(C⁽ˡ⁾) log p(C⁽ˡ⁾ | C⁽ˡ⁺¹⁾) with λ(C) = exp(−α·depth(C)), depth
  counted from the root (root 0).  The paper writes λ(C) = exp(−α h(C)) and says the weights
  "discount information down the hierarchy"; its official code
  (``better_mistakes/trees.py: get_exponential_weighting``) weights the edge above a node by
  exp(−α·its distance from the root), so larger α discounts the fine-grained terms and trades
  top-1 accuracy for milder mistakes, which is what the paper reports.  We follow the code.  The
  official code also divides the weights by their sum over the tree (a constant factor);
  we do not, so that α = 0 is exactly the cross-entropy.  Trees only.
* **Soft labels** (same paper, §3.2): targets y_c ∝ exp(−β d(y, c)), d the LCA height divided by
  the largest one over the class pairs (official ``better_mistakes/model/labels.py``);
  cross-entropy against them.  β → ∞ gives one-hot targets.
* **HAFrame** (Liang & Davis, ICCV 2023): cosines s(a, b) = (1 − s_min)·exp(−γ d(a, b)/d_max) +
  s_min with the most negative s_min on the grid linspace(−1/(K−1), −1, 100) that keeps the
  Gram matrix positive semi-definite (official ``HAFrame/solve_HAF.py``); the fixed class
  vectors are its square root V√Λ (unit rows).  Loss: (1 − w)·CE(f Wᵀ) + w·Σ_c (cos(f, W_c) −
  s(y, c))² (``losses.py: MixedLoss_CEandGeneralSCSL``; defaults γ = 2, w = 0.4, their CIFAR-100 run).
* **Hier-COS** (Sani & Anand, 2025; official ``util/hiercos_construction.py``): one orthonormal
  basis vector per node except the root (the identity basis); class c's subspace is spanned by
  its ancestors and itself, its score the norm of the projection ‖P_c x‖.  Loss: KL(t_y ‖
  softmax(|x|)) with t_y on the root path, level l of L weighted ∝ exp(2/(L − l + 1)), plus
  α·L_aux: per level of the tree, Σ_j |onehot_j − |x_j|/‖x_level‖| where the class reaches the
  level, Σ_j |x_j| where it does not (α = 0.05 in their runs).  The official code averages each
  level's term over the images that reach it; we sum the levels per image and average over the
  batch (the same when all classes are at one depth).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from keras import ops

from semembed.errors import SemembedError
from semembed.losses.classification import EPSILON, cross_entropy, register_classifier_loss
from semembed.models.layers import subspace_norms as hiercos_scores  # (B, C) class scores ‖P_c x‖

# === Taxonomy constructions (NumPy) ===


def class_nodes(hierarchy, classes: Sequence) -> np.ndarray:
    """Node numbers of ``classes`` (ids converted to the taxonomy's id type: ``--str_ids`` or integers)."""
    ids = [c if c in hierarchy.index else hierarchy.parse_id(c) for c in classes]
    return hierarchy.node_index(ids)


def _paths(hierarchy, classes: Sequence, purpose: str) -> tuple[np.ndarray, np.ndarray]:
    """(C x max_depth root paths, -1 padded at the end; class node numbers) for a tree; checks the classes."""
    hierarchy.require_tree(purpose)
    nodes = class_nodes(hierarchy, classes)
    paths = hierarchy.ancestors_by_depth(nodes)  # paths[c, d] = ancestor at depth d (roots at 0)
    on_path = np.zeros((len(nodes), len(hierarchy.ids)), dtype=bool)
    rows, cols = np.nonzero(paths >= 0)
    on_path[rows, paths[rows, cols]] = True
    inner = on_path[:, nodes] & ~np.eye(len(nodes), dtype=bool)
    if inner.any():
        a, b = np.argwhere(inner)[0]
        raise SemembedError(f"{hierarchy.source}: class {classes[b]!r} is an ancestor of class {classes[a]!r}; "
                            f"{purpose} needs classes that are not ancestors of each other (e.g. the leaves)")
    return paths, nodes


def hxe_matrices(hierarchy, classes: Sequence, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """(A, D): A (C x M) 1 where node m is an ancestor-or-self of class c; D (C x M) the HXE coefficients.

    With node probabilities p_m = (probs @ A)_m, the loss of class y is Σ_m D[y, m] log p_m:
    each path edge (parent u → node v) contributes −λ(v) (log p_v − log p_u), λ(v) = exp(−α depth(v)).
    M counts only the nodes above some class.  Raises for a DAG.
    """
    if not np.isfinite(alpha) or alpha < 0:
        raise SemembedError(f"--hxe_alpha must be a finite number >= 0, got {alpha}")
    paths, _ = _paths(hierarchy, classes, "the hierarchical cross-entropy (HXE)")
    used = np.unique(paths[paths >= 0])
    col = np.full(len(hierarchy.ids), -1)
    col[used] = np.arange(len(used))
    num_classes, max_depth = paths.shape
    A = np.zeros((num_classes, len(used)), dtype=np.float64)
    D = np.zeros_like(A)
    lam = np.exp(-float(alpha) * np.arange(max_depth))
    for d in range(max_depth):  # loop over depth levels only, vectorised over the classes
        rows = np.flatnonzero(paths[:, d] >= 0)
        c = col[paths[rows, d]]
        A[rows, c] = 1.0
        D[rows, c] -= lam[d]  # -λ(v) log p_v
        if d > 0:  # +λ(v) log p_parent
            D[rows, col[paths[rows, d - 1]]] += lam[d]
    return A.astype(np.float32), D.astype(np.float32)


def soft_label_targets(distances: np.ndarray, beta: float) -> np.ndarray:
    """C x C targets, row y = softmax_c(−β d(y, c) / max d); ``beta = inf`` gives the identity."""
    d = np.asarray(distances, dtype=np.float64)
    if not beta > 0 or np.isnan(beta):
        raise SemembedError(f"--soft_labels_beta must be > 0, got {beta}")
    dmax = d.max()
    if dmax <= 0 or np.isinf(beta):
        return (d == d.min(axis=1, keepdims=True)).astype(np.float64) / (d == d.min(axis=1, keepdims=True)).sum(1, keepdims=True)
    logits = -beta * d / dmax
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def haframe_similarity(distances: np.ndarray, gamma: float = 2.0, grid: int = 100) -> tuple[np.ndarray, float]:
    """(K x K cosines, s_min): exponential-decay map of the LCA distances shifted as far down as PSD allows.

    s_min is searched, as in the official code (``HAFrame/solve_HAF.py``), on ``grid`` = 100 evenly spaced
    values from −1/(K−1) to −1 (eigenvalues below 1e-6 in magnitude counting as 0), so it is the lowest
    PSD grid point, not the exact boundary (e.g. −0.4074 where −0.4124 is no longer PSD)."""
    d = np.asarray(distances, dtype=np.float64)
    k = len(d)
    if k < 2:
        raise SemembedError("the hierarchy-aware frame needs at least two classes")
    dmax = d.max() or 1.0
    decay = np.exp(-float(gamma) * d / dmax)
    best = None
    for s in np.linspace(-1.0 / (k - 1), -1.0, grid):
        sim = (1.0 - s) * decay + s
        w = np.linalg.eigvalsh(sim)
        if (w[np.abs(w) >= 1e-6] >= 0).all():
            best = s if best is None else min(best, s)
    if best is None:
        raise SemembedError("no shift of the hierarchy-aware cosines gives a positive semi-definite Gram matrix")
    return (1.0 - best) * decay + best, float(best)


def haframe_frame(similarity: np.ndarray) -> np.ndarray:
    """K x K fixed class vectors W (rows) with W Wᵀ = similarity: V √Λ, tiny eigenvalues set to 0."""
    w, v = np.linalg.eigh(np.asarray(similarity, dtype=np.float64))
    w = np.where(np.abs(w) < 1e-6, 0.0, w)
    if w.min() < 0:
        raise SemembedError("the hierarchy-aware cosine matrix is not positive semi-definite")
    return v * np.sqrt(w)[None, :]


@dataclass
class HierCOSStructure:
    """Hier-COS construction for C classes in a D-dimensional space (one axis per non-root node).

    Attributes:
        subspace: C x D, 1 where axis j spans class c's subspace (its ancestors and itself).
        targets: C x D target distribution t_c of the KL term.
        path: C x D, 1 on the axes of class c's root path (its one-hot per level).
        reaches: C x D, 1 where the level of axis j is on class c's path (else that level is pushed to 0).
        levels: D level numbers (1 = children of the root).
        node_ids: the taxonomy id of each axis.
    """

    subspace: np.ndarray
    targets: np.ndarray
    path: np.ndarray
    reaches: np.ndarray
    levels: np.ndarray
    node_ids: list


def hiercos_structure(hierarchy, classes: Sequence) -> HierCOSStructure:
    """Axes, class subspaces and targets of Hier-COS for a tree (a single root gets no axis)."""
    paths, _ = _paths(hierarchy, classes, "Hier-COS")
    single_root = len(np.unique(paths[:, 0])) == 1
    start = 1 if single_root else 0
    sub = paths[:, start:]
    used = np.unique(sub[sub >= 0])
    if not len(used):
        raise SemembedError(f"{hierarchy.source}: Hier-COS needs classes below the root")
    col = np.full(len(hierarchy.ids), -1)
    col[used] = np.arange(len(used))
    c, dim = len(paths), len(used)
    level = np.empty(dim, dtype=np.int64)
    subspace = np.zeros((c, dim))
    targets = np.zeros((c, dim))
    depth_of_class = (sub >= 0).sum(axis=1)  # L: path length without the root
    reached_levels = np.zeros((c, sub.shape[1] + 1), dtype=bool)
    for lvl in range(sub.shape[1]):  # loop over levels, vectorised over classes
        rows = np.flatnonzero(sub[:, lvl] >= 0)
        axes = col[sub[rows, lvl]]
        level[axes] = lvl + 1
        subspace[rows, axes] = 1.0
        big_l = depth_of_class[rows]
        targets[rows, axes] = np.exp(2.0 / (big_l - lvl))  # exp(1/arr)², arr = L - l + 1 for level l = lvl + 1
        reached_levels[rows, lvl + 1] = True
    targets /= targets.sum(axis=1, keepdims=True)
    reaches = reached_levels[:, level].astype(np.float64)
    return HierCOSStructure(subspace.astype(np.float32), targets.astype(np.float32), subspace.astype(np.float32),
                            reaches.astype(np.float32), level, [hierarchy.ids[i] for i in used])


# === Losses (keras.ops, per sample) ===


def hierarchical_cross_entropy(labels, probs, ancestors, coefficients):
    """Per-sample HXE of ``probs`` (B x C softmax) for int ``labels`` (B,); matrices from :func:`hxe_matrices`."""
    probs = ops.cast(probs, "float32")
    node_p = ops.clip(ops.matmul(probs, ops.cast(ancestors, "float32")), EPSILON, 1.0)
    coef = ops.take(ops.cast(coefficients, "float32"), ops.cast(labels, "int32"), axis=0)
    return ops.sum(coef * ops.log(node_p), axis=-1)


def soft_label_cross_entropy(labels, probs, targets):
    """Per-sample −Σ_c t_{y,c} log p_c with the rows of ``targets`` (C x C) from :func:`soft_label_targets`."""
    return cross_entropy(ops.take(ops.cast(targets, "float32"), ops.cast(labels, "int32"), axis=0), probs)


def haframe_loss(labels, features, frame, similarity, cos_weight: float = 0.4):
    """Per-sample (1 − w)·CE(softmax(f Wᵀ)) + w·Σ_c (cos(f, W_c) − s(y, c))² (HAFrame's mixed loss).

    Args:
        labels: (B,) int class indices.
        features: (B, K) transformed features f.
        frame: (K, K) fixed class vectors W (unit rows).
        similarity: (K, K) their cosines s.
        cos_weight: w, the weight of the squared-cosine term.
    """
    f = ops.cast(features, "float32")
    w = ops.cast(frame, "float32")
    y = ops.cast(labels, "int32")
    logits = ops.matmul(f, ops.transpose(w))
    logp = logits - ops.logsumexp(logits, axis=-1, keepdims=True)
    ce = -ops.take_along_axis(logp, y[:, None], axis=-1)[:, 0]
    wn = w / ops.maximum(ops.norm(w, axis=-1, keepdims=True), 1e-12)
    fn = f / ops.maximum(ops.norm(f, axis=-1, keepdims=True), 1e-8)
    cos = ops.matmul(fn, ops.transpose(wn))
    target = ops.take(ops.cast(similarity, "float32"), y, axis=0)
    return (1.0 - cos_weight) * ce + cos_weight * ops.sum(ops.square(cos - target), axis=-1)


def hiercos_loss(labels, features, structure: HierCOSStructure, alpha: float = 0.05, levels_onehot=None):
    """Per-sample Hier-COS loss KL(t_y ‖ softmax(|x|)) + α·L_aux (module docstring)."""
    x = ops.cast(features, "float32")
    y = ops.cast(labels, "int32")
    ax = ops.abs(x)
    t = ops.take(ops.cast(structure.targets, "float32"), y, axis=0)
    logq = ax - ops.logsumexp(ax, axis=-1, keepdims=True)
    kl = ops.sum(ops.where(t > 0, t * (ops.log(ops.maximum(t, 1e-30)) - logq), 0.0), axis=-1)
    if levels_onehot is None:
        levels_onehot = level_membership(structure.levels)
    g = ops.cast(levels_onehot, "float32")  # D x num_levels
    level_norm = ops.sqrt(ops.matmul(ops.square(x), g) + 1e-12)  # B x num_levels
    norm_of_axis = ops.matmul(level_norm, ops.transpose(g))  # B x D
    cos = ax / norm_of_axis
    reach = ops.take(ops.cast(structure.reaches, "float32"), y, axis=0)
    onehot = ops.take(ops.cast(structure.path, "float32"), y, axis=0)
    aux = ops.sum(reach * ops.abs(onehot - cos) + (1.0 - reach) * ax, axis=-1)
    return kl + alpha * aux


def level_membership(levels: np.ndarray) -> np.ndarray:
    """D x (number of levels) one-hot of each axis's level."""
    levels = np.asarray(levels)
    out = np.zeros((len(levels), int(levels.max())), dtype=np.float32)
    out[np.arange(len(levels)), levels - 1] = 1.0
    return out


# === Registered classifier losses (learn_classifier --loss hxe | soft_labels) ===


def _option(config, method: str, name: str) -> float:
    """``config.task_options[name]``, else the default written once in ``training.config.METHOD_DEFAULTS``."""
    from semembed.training.config import METHOD_DEFAULTS  # the registry's factories receive a TrainConfig

    opts = getattr(config, "task_options", {}) or {}
    return float(opts.get(name, METHOD_DEFAULTS[method][name]))


def hierarchy_from_options(options: dict, what: str):
    """The taxonomy named by ``options['hierarchy']`` (with ``is_a`` / ``str_ids``); an error names ``what``."""
    path = (options or {}).get("hierarchy")
    if not path:
        raise SemembedError(f"{what} needs --hierarchy (a taxonomy file)")
    from semembed.taxonomy import load_hierarchy

    return load_hierarchy(path, is_a=bool(options.get("is_a")), str_ids=bool(options.get("str_ids")))


def _class_ids(class_ids, num_classes: int, what: str):
    if class_ids is None or len(class_ids) != num_classes:
        raise SemembedError(f"{what} needs the {num_classes} class ids of the dataset in label order")
    return list(class_ids)


@register_classifier_loss("hxe")
def hxe_loss(num_classes: int, config=None, class_ids=None):
    """Factory: HXE with ``task_options['hxe_alpha']`` on the taxonomy ``task_options['hierarchy']``."""
    opts = getattr(config, "task_options", {}) or {}
    h = hierarchy_from_options(opts, "--loss hxe")
    A, D = hxe_matrices(h, _class_ids(class_ids, num_classes, "--loss hxe"), _option(config, "hxe", "hxe_alpha"))

    def fn(labels, probs):
        return hierarchical_cross_entropy(labels, probs, A, D)

    return fn


@register_classifier_loss("soft_labels")
def soft_labels_loss(num_classes: int, config=None, class_ids=None):
    """Factory: cross-entropy against soft labels with ``task_options['soft_labels_beta']``."""
    from semembed.taxonomy import ClassPairs

    opts = getattr(config, "task_options", {}) or {}
    h = hierarchy_from_options(opts, "--loss soft_labels")
    ids = _class_ids(class_ids, num_classes, "--loss soft_labels")
    dist = ClassPairs(h, [h.ids[i] for i in class_nodes(h, ids)]).lcs_heights()
    targets = soft_label_targets(dist, _option(config, "soft_labels", "soft_labels_beta")).astype(np.float32)

    def fn(labels, probs):
        return soft_label_cross_entropy(labels, probs, targets)

    return fn


# === Keras loss objects (the functions above with their matrices as config; Keras reduction and sample_weight) ===

import keras  # noqa: E402


class _MatrixLoss(keras.losses.Loss):
    """Base: a per-sample function of (int labels, predictions) with constant matrices kept in the config."""

    matrices: tuple[str, ...] = ()

    def __init__(self, reduction="sum_over_batch_size", name=None, dtype=None, **arrays):
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        for key in self.matrices:
            setattr(self, key, np.asarray(arrays[key], dtype=np.float32))

    def get_config(self):
        return {**super().get_config(), **{k: getattr(self, k).tolist() for k in self.matrices}}


@keras.saving.register_keras_serializable(package="semembed")
class HierarchicalCrossEntropy(_MatrixLoss):
    """:func:`hierarchical_cross_entropy` as a Keras loss: ``HierarchicalCrossEntropy(*hxe_matrices(h, classes, α))``."""

    matrices = ("ancestors", "coefficients")

    def __init__(self, ancestors, coefficients, **kwargs):
        super().__init__(ancestors=ancestors, coefficients=coefficients, **kwargs)

    def call(self, y_true, y_pred):
        return hierarchical_cross_entropy(ops.reshape(y_true, (-1,)), y_pred, self.ancestors, self.coefficients)


@keras.saving.register_keras_serializable(package="semembed")
class SoftLabelCrossEntropy(_MatrixLoss):
    """:func:`soft_label_cross_entropy` as a Keras loss: ``SoftLabelCrossEntropy(soft_label_targets(d, β))``."""

    matrices = ("targets",)

    def __init__(self, targets, **kwargs):
        super().__init__(targets=targets, **kwargs)

    def call(self, y_true, y_pred):
        return soft_label_cross_entropy(ops.reshape(y_true, (-1,)), y_pred, self.targets)


@keras.saving.register_keras_serializable(package="semembed")
class HAFrameLoss(_MatrixLoss):
    """:func:`haframe_loss` as a Keras loss on the transformed features."""

    matrices = ("frame", "similarity")

    def __init__(self, frame, similarity, cos_weight: float = 0.4, **kwargs):
        super().__init__(frame=frame, similarity=similarity, **kwargs)
        self.cos_weight = float(cos_weight)

    def call(self, y_true, y_pred):
        return haframe_loss(ops.reshape(y_true, (-1,)), y_pred, self.frame, self.similarity, self.cos_weight)

    def get_config(self):
        return {**super().get_config(), "cos_weight": self.cos_weight}
