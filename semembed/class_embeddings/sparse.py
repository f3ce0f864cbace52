"""Similarity factor of a tree taxonomy: ``S = B Bᵀ`` with one sparse column per node.

For a tree, s(a, b) = 1 - height(LCS)/H telescopes along the root path:
giving node v the weight ``w(v) = height(parent(v)) - height(v)`` (the root:
``H - height(root)``), the sum of w over the common ancestors of a and b is
``H - height(LCS(a, b))``.  Hence ``B[a, v] = sqrt(w(v) / H)`` for every
ancestor v of class a reproduces S exactly.  A class that is an inner node
gets one private column of weight height(a)/H so that s(a, a) = 1 as in the
reference.  B has about n · depth non-zeros, so the top eigenpairs of S
(``approx_sim``) are found from B without ever forming the n x n matrix.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp

from semembed.taxonomy.hierarchy import Hierarchy, NodeId


def similarity_factor(hierarchy: Hierarchy, classes: Sequence[NodeId]) -> sp.csr_matrix:
    """Sparse ``n x k`` matrix B with ``B @ B.T`` = the lcs-height similarity of ``classes``."""
    h = hierarchy
    h.require_tree("the sparse similarity factor")
    nodes = h.node_index(classes)
    H = float(h.max_height)
    parent = np.full(len(h.ids), -1, dtype=np.int64)
    cp = h.child_to_parent.tocoo()
    parent[cp.row] = cp.col
    weight = np.where(parent >= 0, h.heights[np.maximum(parent, 0)] - h.heights, H - h.heights).astype(np.float64)
    incidence = h.ancestor_distances(nodes).tocoo()  # class x node, ancestors incl. self
    rows, cols = incidence.row, incidence.col
    vals = np.sqrt(weight[cols] / H)
    inner = np.flatnonzero(h.heights[nodes] > 0)
    extra_cols = len(h.ids) + np.arange(len(inner))
    rows = np.concatenate([rows, inner])
    cols = np.concatenate([cols, extra_cols])
    vals = np.concatenate([vals, np.sqrt(h.heights[nodes[inner]] / H)])
    keep = vals > 0
    b = sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=(len(nodes), len(h.ids) + len(inner)))
    used = np.unique(b.indices)
    return b[:, used].tocsr()


def approx_sim_sparse(factor: sp.csr_matrix, num_dim: int, seed: int = 0, n_iter: int = 12) -> np.ndarray:
    """Top-``num_dim`` eigenpairs of ``B Bᵀ`` as ``U Σ`` from a randomised SVD of the sparse B.

    Columns are in ascending eigenvalue order like the dense method.  Where
    eigenvalues repeat across the cut any basis of that eigenspace is equally
    optimal, so the result matches the dense method in ``E Eᵀ``, not column by column.
    """
    from sklearn.utils.extmath import randomized_svd

    k = min(num_dim, min(factor.shape))
    u, s, _ = randomized_svd(
        factor, n_components=k, n_oversamples=max(32, k // 4), n_iter=n_iter,
        power_iteration_normalizer="QR", random_state=seed,
    )
    order = np.argsort(s)
    return u[:, order] * s[order][None, :]
