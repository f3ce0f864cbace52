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


def approx_sim_sparse(
    factor: sp.csr_matrix, num_dim: int, seed: int = 0, tol: float = 1e-8, max_iter: int = 100
) -> np.ndarray:
    """Top-``num_dim`` eigenpairs of ``S = B Bᵀ`` by subspace iteration on the sparse B, as ``U √Λ``.

    Block power iteration with ``num_dim + oversampling`` vectors, a
    Rayleigh-Ritz step each round, and a stop once every wanted Ritz pair has
    a residual ‖S v − θ v‖ below ``tol`` times the largest eigenvalue.  Each round costs
    two sparse products and one thin QR; memory is a few ``n x (num_dim +
    oversampling)`` blocks.  Columns are in ascending eigenvalue order like the
    dense method.  Where eigenvalues repeat across the cut any basis of that
    eigenspace is equally optimal, so the result matches the dense method in
    ``E Eᵀ``, not column by column.
    """
    n = factor.shape[0]
    k = min(num_dim, n)
    p = min(n, k + max(16, k // 8))
    bt = factor.T.tocsr()
    rng = np.random.default_rng(seed)
    q, _ = _orthonormalize(factor @ (bt @ rng.standard_normal((n, p))))
    for _ in range(max_iter):
        z = factor @ (bt @ q)  # S q
        theta, w = np.linalg.eigh(q.T @ z)  # Rayleigh-Ritz on span(q)
        top, wk = theta[-k:], w[:, -k:]
        q_next, gram = _orthonormalize(z)
        # cheap estimate ‖S v − θ v‖² = ‖z w‖² − θ² (v = q w; zᵀz comes with the orthonormalisation),
        # accurate only to about √eps · θ: confirm with the exact residual when it looks converged
        scale = max(float(theta[-1]), 1e-300)
        res2 = np.einsum("ij,ij->j", wk, gram @ wk) - top**2
        if np.sqrt(max(float(res2.max()), 0.0)) <= max(tol, 1e-6) * scale:
            residual = z @ wk - (q @ wk) * top[None, :]
            if np.sqrt(np.einsum("ij,ij->j", residual, residual).max()) <= tol * scale:
                break
        q = q_next
    vecs = q @ w[:, -k:]
    return vecs * np.sqrt(np.clip(top, 0.0, None))[None, :]


def _orthonormalize(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal basis of span(z) and zᵀz: Cholesky-QR (two GEMMs), thin QR if z is too ill-conditioned."""
    import scipy.linalg

    gram = z.T @ z
    try:
        r = scipy.linalg.cholesky(gram, lower=False, check_finite=False)
        r_inv = scipy.linalg.solve_triangular(r, np.eye(r.shape[0]), lower=False, check_finite=False)
        q = z @ r_inv  # one GEMM; much faster than a triangular solve with n right-hand sides
        if np.abs(q[:, :4].T @ q[:, :4] - np.eye(min(4, q.shape[1]))).max() < 1e-6:
            return q, gram
    except np.linalg.LinAlgError:
        pass
    return scipy.linalg.qr(z, mode="economic", check_finite=False)[0], gram
