"""Class-pair matrices: lowest common subsumer, LCS-height similarity and Wu-Palmer similarity.

Definitions follow the reference toolkit (SPEC.md §1):

* LCS(a, b): the common ancestor (a node is its own ancestor) of greatest depth,
  depth being the longest path from a root (roots have depth 1).  In a DAG
  several common ancestors may share that depth; the reference picks one in
  set-iteration order, we pick the one of smallest height, then the one listed
  first in the file, deterministically.
* lcs-height similarity s = 1 - height(LCS)/H, 1 on the diagonal.
* WUP = 2 depth(l) / (2 depth(l) + p(a, l) + p(b, l)), p the reference's
  shortest path length between a node and its ancestor.

Trees take a fully vectorised path (ancestor-at-depth comparisons, O(n² · depth));
DAGs loop over classes (never over class pairs), vectorised over the others.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np

from semembed.errors import SemembedError
from semembed.taxonomy.hierarchy import Hierarchy, NodeId

SimilarityKind = Literal["lcs_height", "wup"]


class ClassPairs:
    """Height and depth of LCS(a, b), and path lengths, for every pair of ``classes``."""

    def __init__(self, hierarchy: Hierarchy, classes: Sequence[NodeId]):
        self.hierarchy = hierarchy
        self.classes = list(classes)
        self.nodes = hierarchy.node_index(self.classes)
        if hierarchy.is_tree:
            self.lcs_height, self.lcs_depth = _tree_lcs(hierarchy, self.nodes)
            depth = hierarchy.depths[self.nodes].astype(np.float64)
            # in a tree, p(a, l) + p(b, l) = depth(a) + depth(b) - 2 depth(l)
            self._path_sum = lambda: depth[:, None] + depth[None, :] - 2.0 * self.lcs_depth
        else:
            lcs, path_a = _dag_lcs(hierarchy, self.nodes)
            self.lcs_height = hierarchy.heights[lcs]
            self.lcs_depth = hierarchy.depths[lcs]
            self._path_sum = lambda: path_a + path_a.T
        np.fill_diagonal(self.lcs_height, 0)  # the reference's d(a, a) = 0, also for inner nodes

    def lcs_heights(self) -> np.ndarray:
        """Integer height of LCS(a, b); 0 on the diagonal as in the reference."""
        return self.lcs_height

    def lcs_height_similarity(self) -> np.ndarray:
        """s(a, b) = 1 - height(LCS(a, b)) / H."""
        return 1.0 - self.lcs_height / float(self.hierarchy.max_height)

    def wup_similarity(self) -> np.ndarray:
        """Wu-Palmer similarity of every class pair."""
        ds = self.lcs_depth.astype(np.float64)
        return (2.0 * ds) / (2.0 * ds + self._path_sum())

    def similarity(self, kind: SimilarityKind = "lcs_height") -> np.ndarray:
        kind = kind.lower()  # type: ignore[assignment]
        if kind == "lcs_height":
            return self.lcs_height_similarity()
        if kind == "wup":
            return self.wup_similarity()
        raise SemembedError(f"unknown similarity {kind!r}; expected 'lcs_height' or 'wup'")


def class_similarity(
    hierarchy: Hierarchy, classes: Sequence[NodeId], kind: SimilarityKind = "lcs_height"
) -> np.ndarray:
    """``n x n`` similarity matrix of ``classes`` (``lcs_height`` or ``wup``)."""
    return ClassPairs(hierarchy, classes).similarity(kind)


def _no_common_ancestor(h: Hierarchy, nodes: np.ndarray, a: int, b: int) -> SemembedError:
    hint = h.inversion_hint()
    return SemembedError(
        f"{h.source}: classes {h.ids[nodes[a]]!r} and {h.ids[nodes[b]]!r} share no ancestor "
        f"(the taxonomy has {len(h.roots)} roots); similarities need a common root" + (f". {hint}" if hint else "")
    )


def _tree_lcs(h: Hierarchy, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Heights and depths of LCS for a tree by painting subtree blocks.

    With classes sorted in depth-first preorder, the classes below any node
    form a contiguous block; painting every node's (height, depth) over its
    block, ancestors first, leaves each pair with the values of its deepest
    common ancestor.  Cost: one slice assignment per inner node.
    """
    pre, size = h.preorder()
    n = len(nodes)
    order = np.argsort(pre[nodes], kind="stable")
    sorted_pre = pre[nodes][order]
    lo = np.searchsorted(sorted_pre, pre, side="left")
    hi = np.searchsorted(sorted_pre, pre + size, side="left")
    dtype = np.int16 if max(h.max_height, int(h.depths.max())) < 2**15 else np.int32
    height = np.zeros((n, n), dtype=dtype)
    depth = np.zeros((n, n), dtype=dtype)
    painted = np.zeros((n, n), dtype=bool) if len(h.roots) > 1 else None
    blocks = np.flatnonzero(hi - lo >= 1)
    blocks = blocks[np.argsort(pre[blocks], kind="stable")]  # preorder: ancestors before descendants
    for v in blocks:
        a, b = lo[v], hi[v]
        height[a:b, a:b] = h.heights[v]
        depth[a:b, a:b] = h.depths[v]
        if painted is not None:
            painted[a:b, a:b] = True
    if painted is not None and not painted.all():
        i, j = np.argwhere(~painted)[0]
        raise _no_common_ancestor(h, nodes[order], i, j)
    inv = np.empty(n, dtype=np.int64)
    inv[order] = np.arange(n)
    return height[np.ix_(inv, inv)], depth[np.ix_(inv, inv)]


def _dag_lcs(h: Hierarchy, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """General LCS: for each class, the first of its ancestors (by depth desc, height asc) shared with each other class."""
    n = len(nodes)
    dist = h.ancestor_distances(nodes)  # class x node, shortest distance + 1
    union = np.unique(dist.indices)
    col_of = np.full(len(h.ids), -1, dtype=np.int64)
    col_of[union] = np.arange(len(union))
    member = dist[:, union].toarray()  # n x u, 0 = not an ancestor
    is_anc = member > 0
    # shortest distances between ancestor nodes, for the reference's p(x, l)
    node_dist = h.ancestor_distances(union)[:, union].toarray().astype(np.float64)
    node_dist[node_dist == 0] = np.inf
    node_dist -= 1
    order_key = np.lexsort((union, h.heights[union], -h.depths[union]))  # rank of each union node
    rank = np.empty(len(union), dtype=np.int64)
    rank[order_key] = np.arange(len(union))

    lcs = np.empty((n, n), dtype=np.int64)
    path_a = np.empty((n, n), dtype=np.float64)
    for a in range(n):  # loop over classes, vectorised over the other classes
        cols = np.flatnonzero(is_anc[a])
        cols = cols[np.argsort(rank[cols])]
        shared = is_anc[:, cols]  # n x k, ordered by preference
        found = shared.any(axis=1)
        if not found.all():
            raise _no_common_ancestor(h, nodes, a, int(np.flatnonzero(~found)[0]))
        first = shared.argmax(axis=1)
        lcs[a] = union[cols[first]]
        # p(a, l) = min over common hypernyms g of l and a of dist(a, g) + dist(l, g)
        da = member[a, cols].astype(np.float64) - 1
        p_to = np.min(node_dist[np.ix_(cols, cols)] + da[None, :], axis=1)
        path_a[a] = p_to[first]
    return lcs, path_a
