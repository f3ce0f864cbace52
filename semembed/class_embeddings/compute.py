"""Compute class embeddings from a taxonomy and measure how well they fit.

``compute_class_embedding`` picks the algorithm (:mod:`.methods`) and, for
large trees, the sparse factor path (:mod:`.sparse`); ``deviation`` reports
the reference's max/mean absolute deviation figures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import scipy.sparse as sp

from semembed.class_embeddings import methods
from semembed.class_embeddings.sparse import approx_sim_sparse, similarity_factor
from semembed.class_embeddings.store import ClassEmbedding
from semembed.errors import SemembedError
from semembed.taxonomy.hierarchy import Hierarchy, NodeId
from semembed.taxonomy.semantic import ClassPairs

METHODS = ("unitsphere", "approx_sim", "spheres", "mds")
Solver = Literal["auto", "dense", "sparse"]

#: above this many classes ``approx_sim`` on a tree uses the sparse factor (no n x n matrix)
SPARSE_THRESHOLD = 10_000
#: above this many classes the deviation is estimated from a random sample of pairs
EXACT_DEVIATION_LIMIT = 20_000


@dataclass
class EmbeddingReport:
    """What the reference prints after computing an embedding."""

    method: str
    shape: tuple[int, int]
    seconds: float
    max_deviation: float
    mean_deviation: float
    target: str  # "similarities" or "distances"
    sampled_pairs: int | None = None  # None: all pairs

    def lines(self) -> list[str]:
        n, d = self.shape
        how = "" if self.sampled_pairs is None else f" (estimated on {self.sampled_pairs:,} random pairs)"
        return [
            f'Computed {d}-dimensional semantic embeddings for {n} classes using the "{self.method}" '
            f"method in {self.seconds:.3f} seconds.",
            f"Maximum deviation from target {self.target}: {self.max_deviation}{how}",
            f"Average deviation from target {self.target}: {self.mean_deviation}{how}",
        ]


def compute_class_embedding(
    hierarchy: Hierarchy,
    classes: Sequence[NodeId] | None = None,
    method: str = "unitsphere",
    num_dim: int | None = None,
    norm: bool = False,
    solver: Solver = "auto",
    seed: int = 0,
) -> tuple[ClassEmbedding, EmbeddingReport]:
    """Embed ``classes`` (default: all leaves, sorted) of ``hierarchy``.

    Returns the embedding and a report with timing and deviation figures.
    """
    if method not in METHODS:
        raise SemembedError(f"unknown --method {method!r}; expected one of {', '.join(METHODS)}")
    if solver not in ("auto", "dense", "sparse"):
        raise SemembedError(f"unknown solver {solver!r}; expected auto, dense or sparse")
    hierarchy.require_tree(f"--method {method}")
    classes = hierarchy.leaves() if classes is None else list(classes)
    n = len(classes)
    use_sparse = method == "approx_sim" and (solver == "sparse" or (solver == "auto" and n > SPARSE_THRESHOLD))
    if solver != "auto" and method != "approx_sim":
        raise SemembedError(f"--solver {solver} is used by --method approx_sim only, not {method}")
    if num_dim is not None and method in ("unitsphere", "spheres"):
        fixed = n if method == "unitsphere" else n - 1
        raise SemembedError(f"--num_dim is not used by --method {method}, whose embeddings always have "
                            f"{fixed} dimensions here; drop it, or use approx_sim or mds")
    limit = n if method == "approx_sim" else n - 1
    if num_dim is not None and num_dim > limit:
        raise SemembedError(f"--num_dim {num_dim} exceeds the {limit} dimensions --method {method} can give "
                            f"for {n} classes")
    if use_sparse and num_dim is None:
        raise SemembedError(
            f"approx_sim on {n:,} classes needs --num_dim (a full n x n embedding would not fit); e.g. --num_dim 512"
        )

    start = time.perf_counter()
    factor = target = None
    if use_sparse:
        factor = similarity_factor(hierarchy, classes)
        embedding = approx_sim_sparse(factor, num_dim, seed=seed)
    else:
        pairs = ClassPairs(hierarchy, classes)
        if method in ("unitsphere", "approx_sim"):
            target = pairs.lcs_height.astype(np.float64)
            target *= -1.0 / hierarchy.max_height
            target += 1.0
            embedding = methods.unitsphere(target) if method == "unitsphere" else methods.approx_sim(target, num_dim)
        else:
            target = pairs.lcs_height / float(hierarchy.max_height)
            embedding = methods.spheres(target) if method == "spheres" else methods.mds(target, num_dim)
        del pairs
    if norm:
        embedding = embedding / np.maximum(np.linalg.norm(embedding, axis=1, keepdims=True), 1e-12)
    seconds = time.perf_counter() - start

    kind = "similarities" if method in ("unitsphere", "approx_sim") else "distances"
    max_dev, mean_dev, sampled = deviation(embedding, kind, target=target, factor=factor, seed=seed)
    report = EmbeddingReport(method, embedding.shape, seconds, max_dev, mean_dev, kind, sampled)
    return ClassEmbedding(embedding, classes), report


def deviation(
    embedding: np.ndarray,
    kind: str,
    target: np.ndarray | None = None,
    factor: sp.csr_matrix | None = None,
    seed: int = 0,
    block: int = 2048,
    num_samples: int = 2_000_000,
) -> tuple[float, float, int | None]:
    """Max and mean |E Eᵀ - S| (kind "similarities") or |‖eᵢ - eⱼ‖ - d| (kind "distances").

    Exact over all pairs (in row blocks) when the dense target is given and n
    is moderate; otherwise estimated on ``num_samples`` random pairs with S
    entries taken from the sparse factor.
    """
    n = embedding.shape[0]
    if target is None and factor is not None and n <= EXACT_DEVIATION_LIMIT:
        target = (factor @ factor.T).toarray()
    if target is not None and n <= EXACT_DEVIATION_LIMIT:
        total, worst = 0.0, 0.0
        sq = np.einsum("ij,ij->i", embedding, embedding)
        for lo in range(0, n, block):
            hi = min(n, lo + block)
            got = embedding[lo:hi] @ embedding.T
            if kind == "distances":
                got = np.sqrt(np.maximum(sq[lo:hi, None] + sq[None, :] - 2.0 * got, 0.0))
                np.fill_diagonal(got[:, lo:hi], 0.0)
            err = np.abs(got - target[lo:hi])
            worst = max(worst, float(err.max()))
            total += float(err.sum())
        return worst, total / (n * n), None
    if factor is None:
        raise SemembedError("deviation: need the dense target or the sparse factor")
    rng = np.random.default_rng(seed)
    worst, total = 0.0, 0.0
    for lo in range(0, num_samples, 50_000):  # chunks keep the gathered rows small
        m = min(50_000, num_samples - lo)
        i = rng.integers(0, n, size=m)
        j = rng.integers(0, n, size=m)
        want = np.asarray(factor[i].multiply(factor[j]).sum(axis=1)).ravel()
        err = np.abs(np.einsum("ij,ij->i", embedding[i], embedding[j]) - want)
        worst, total = max(worst, float(err.max())), total + float(err.sum())
    return worst, total / num_samples, num_samples
