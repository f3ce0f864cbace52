"""Embedding algorithms: place n classes so that dot products (or distances) match the taxonomy.

Each function takes a dense target matrix and returns an ``n x d`` float64
array; :mod:`semembed.class_embeddings.sparse` handles taxonomies too large
for a dense ``n x n`` matrix.

Costs (n classes):

* ``unitsphere``: lower Cholesky factor of S, O(n³/3) time, O(n²) memory.
  Equals the reference's successive placement (which is O(n⁴)) to rounding.
* ``approx_sim``: symmetric eigendecomposition of S, O(n³) (only the top
  ``num_dim`` eigenpairs are computed when ``num_dim`` is given).
* ``spheres``: successive intersection of hyperspheres = Cholesky factor of the
  Gram matrix of the distances relative to class 0, O(n³/3).
* ``mds``: classical multidimensional scaling, O(n³).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.linalg

from semembed.errors import SemembedError


def _check_square(m: np.ndarray, name: str) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise SemembedError(f"{name} must be a non-empty square matrix, got shape {m.shape}")
    return m


def _cholesky(matrix: np.ndarray, message: Callable[[int | None], str]) -> np.ndarray:
    """Lower Cholesky factor; on failure a SemembedError with ``message(order of the failing minor)``."""
    try:
        return scipy.linalg.cholesky(matrix, lower=True, check_finite=False)
    except np.linalg.LinAlgError as exc:
        raise SemembedError(message(_leading_minor_failure(exc))) from None


def _leading_minor_failure(exc: Exception) -> int | None:
    """Parse the failing leading-minor order (1-based) from a LAPACK Cholesky error."""
    text = str(exc)
    digits = "".join(ch if ch.isdigit() else " " for ch in text).split()
    return int(digits[0]) if digits else None


def unitsphere(similarity: np.ndarray) -> np.ndarray:
    """Rows of unit length with ``E @ E.T == S`` (the lower Cholesky factor of S).

    Class 0 lies at e₁ and class c uses coordinates 0..c only, with a
    positive coordinate c — exactly the reference's placement.
    """
    s = _check_square(similarity, "similarity")
    return _cholesky(
        s,
        lambda k: f"unitsphere: cannot place {f'class #{k} (row {k - 1})' if k else 'a class'}: the similarity "
        "matrix is not positive definite (two classes with similarity 1, or an inconsistent taxonomy); "
        "try --method approx_sim",
    )


def eigen_embedding(matrix: np.ndarray, num_dim: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs of a symmetric matrix, largest ``num_dim`` kept, in ascending order."""
    n = matrix.shape[0]
    if num_dim is not None and num_dim < n:
        vals, vecs = scipy.linalg.eigh(matrix, subset_by_index=[n - num_dim, n - 1], check_finite=False)
    else:
        vals, vecs = scipy.linalg.eigh(matrix, check_finite=False)
    return vals, vecs


def approx_sim(similarity: np.ndarray, num_dim: int | None = None) -> np.ndarray:
    """``Q √Λ`` of ``S = Q Λ Qᵀ``, keeping the ``num_dim`` largest eigenvalues (all when None).

    Columns are in ascending eigenvalue order, as in the reference.  A
    negative eigenvalue (beyond rounding) means S is not positive
    semi-definite and is an error.
    """
    s = _check_square(similarity, "similarity")
    _check_num_dim(num_dim, s.shape[0])
    vals, vecs = eigen_embedding(s, num_dim)
    return scale_by_sqrt_eigenvalues(vals, vecs)


def scale_by_sqrt_eigenvalues(vals: np.ndarray, vecs: np.ndarray) -> np.ndarray:
    """``vecs * sqrt(vals)``; eigenvalues below -rounding are an error (S not PSD)."""
    tol = 1e-10 * max(1.0, float(np.abs(vals).max(initial=0.0))) * max(1, vecs.shape[0]) ** 0.5
    if (vals < -tol).any():
        raise SemembedError(
            f"approx_sim: the similarity matrix is not positive semi-definite "
            f"(smallest eigenvalue {vals.min():.3g})"
        )
    return vecs * np.sqrt(np.clip(vals, 0.0, None))[None, :]


def _check_num_dim(num_dim: int | None, n: int) -> None:
    if num_dim is not None and num_dim < 1:
        raise SemembedError(f"--num_dim must be a positive integer, got {num_dim}")


def spheres(distance: np.ndarray) -> np.ndarray:
    """``n x (n-1)`` embedding whose Euclidean distances equal ``distance``.

    Class 0 sits at the origin, class 1 on the first axis, and class c is the
    intersection of the spheres around classes 0..c-1 with positive coordinate
    c-1: row c is row c-1 of the Cholesky factor of the Gram matrix
    ``G[i, j] = (d(0,i)² + d(0,j)² - d(i,j)²) / 2``.
    """
    d = _check_square(distance, "distance")
    n = d.shape[0]
    out = np.zeros((n, max(n - 1, 0)))
    if n == 1:
        return out
    d2 = d**2
    gram = (d2[0, 1:, None] + d2[0, None, 1:] - d2[1:, 1:]) / 2.0
    out[1:] = _cholesky(
        gram,
        lambda k: f"spheres: failed to place {f'class #{k + 1}' if k else 'a class'}: the hyperspheres around the "
        "classes placed so far do not intersect (distances violate the triangle inequality or two classes coincide)",
    )
    return out


def mds(distance: np.ndarray, num_dim: int | None = None) -> np.ndarray:
    """Classical MDS: eigenvectors of the double-centred ``-d²/2`` scaled by √eigenvalue.

    Eigenvalues not above machine epsilon are dropped; the ``num_dim`` largest
    are kept in descending order (the reference's default is n - 1).
    """
    d = _check_square(distance, "distance")
    n = d.shape[0]
    _check_num_dim(num_dim, n)
    num_dim = n - 1 if num_dim is None else num_dim
    d2 = d**2
    b = d2 - d2.mean(axis=0, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    b *= -0.5
    b = (b + b.T) / 2.0
    vals, vecs = scipy.linalg.eigh(b, check_finite=False)
    keep = vals > np.finfo(np.float64).eps
    vals, vecs = vals[keep], vecs[:, keep]
    order = np.argsort(vals)[::-1][:num_dim]
    return vecs[:, order] * np.sqrt(vals[order])[None, :]
