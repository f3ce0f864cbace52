"""The taxonomy graph: nodes, parent links, heights and depths, validated on load.

Nodes are numbered ``0..m-1`` in order of first appearance; ``ids[i]`` is the
id from the file.  All per-node quantities are NumPy arrays computed level by
level with sparse matrix products, so a 100,000-node taxonomy loads in well
under a second.  Works for trees and DAGs (nodes with several parents).
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import Hashable, Sequence

import numpy as np
import scipy.sparse as sp

from semembed.errors import SemembedError
from semembed.taxonomy.parsing import read_class_list, read_relations, sort_ids

NodeId = Hashable


class Hierarchy:
    """An is-a taxonomy (tree or DAG) with the reference toolkit's node statistics.

    Args:
        parents, children: parallel sequences of node ids, one relation each.
        source: where the relations came from (used in error messages).
        line_numbers: the file line of each relation (used in error messages).
    """

    is_a: bool = False  # how the file was read (set by from_file); used in error hints

    def __init__(
        self,
        parents: Sequence[NodeId],
        children: Sequence[NodeId],
        source: str = "<taxonomy>",
        line_numbers: Sequence[int] | None = None,
        str_ids: bool | None = None,
    ):
        if len(parents) != len(children) or not parents:
            raise SemembedError(f"{source}: expected a non-empty list of parent/child relations")
        self.source = source
        self.ids: list[NodeId] = list(dict.fromkeys([*parents, *children]))
        self.index: dict[NodeId, int] = {nid: i for i, nid in enumerate(self.ids)}
        self.str_ids = isinstance(self.ids[0], str) if str_ids is None else str_ids
        p = np.fromiter((self.index[x] for x in parents), dtype=np.int64, count=len(parents))
        c = np.fromiter((self.index[x] for x in children), dtype=np.int64, count=len(children))
        m = len(self.ids)
        # child -> parent adjacency, duplicates collapsed to 1
        adj = sp.csr_matrix((np.ones(len(p), dtype=np.int32), (c, p)), shape=(m, m))
        adj.sum_duplicates()
        adj.data[:] = 1
        self._line_of_edge = {}
        if line_numbers is not None:
            self._line_of_edge = {(int(ci), int(pi)): ln for ci, pi, ln in zip(c, p, line_numbers)}
        self.child_to_parent: sp.csr_matrix = adj
        self.parent_to_child: sp.csr_matrix = adj.T.tocsr()
        self.num_parents = np.diff(adj.indptr)
        self.num_children = np.diff(self.parent_to_child.indptr)
        self.heights = self._peel(self.parent_to_child, self.child_to_parent, "height")
        self.depths = self._peel(self.child_to_parent, self.parent_to_child, "depth") + 1
        self.max_height = int(self.heights.max())

    # === Loading ===
    @classmethod
    def from_file(cls, path: str | os.PathLike, is_a: bool = False, str_ids: bool = False) -> "Hierarchy":
        """Read and validate a taxonomy file (see :func:`read_relations`)."""
        parents, children, lines = read_relations(path, is_a=is_a, str_ids=str_ids)
        hierarchy = cls(parents, children, source=os.fspath(path), line_numbers=lines, str_ids=str_ids)
        hierarchy.is_a = bool(is_a)
        return hierarchy

    # === Structure ===
    def _peel(self, down: sp.csr_matrix, up: sp.csr_matrix, what: str) -> np.ndarray:
        """Longest-path level of every node, peeling nodes whose ``down`` neighbours are done.

        With ``down`` = parent->child this yields heights (leaves 0); with
        child->parent it yields depths - 1 (roots 0).  Nodes never peeled lie
        on or above a cycle, which is reported.
        """
        m = len(self.ids)
        remaining = np.diff(down.indptr).astype(np.int64)
        level = np.full(m, -1, dtype=np.int64)
        frontier = np.flatnonzero(remaining == 0)
        k = 0
        while frontier.size:
            level[frontier] = k
            remaining -= _count_hits(up, frontier, m)
            frontier = np.flatnonzero((remaining == 0) & (level < 0))
            k += 1
        if (level < 0).any():
            self._raise_cycle(level < 0)
        return level

    def _raise_cycle(self, unresolved: np.ndarray) -> None:
        """Find one cycle among nodes that could not be levelled and report it."""
        start = int(np.flatnonzero(unresolved)[0])
        pc = self.parent_to_child
        path: list[int] = []
        seen: dict[int, int] = {}
        node = start
        while node not in seen:
            seen[node] = len(path)
            path.append(node)
            kids = pc.indices[pc.indptr[node] : pc.indptr[node + 1]]
            kids = kids[unresolved[kids]]
            if kids.size == 0:  # only reachable when unresolved came from the other direction
                cp = self.child_to_parent
                kids = cp.indices[cp.indptr[node] : cp.indptr[node + 1]]
                kids = kids[unresolved[kids]]
            node = int(kids[0])
        cycle = path[seen[node] :] + [node]
        names = " -> ".join(str(self.ids[i]) for i in cycle)
        raise SemembedError(f"{self.source}: the taxonomy has a cycle: {names}")

    @cached_property
    def is_tree(self) -> bool:
        """True when every node has at most one parent."""
        return bool((self.num_parents <= 1).all())

    def require_tree(self, purpose: str = "this method") -> None:
        """Raise a clear error naming a node with several parents."""
        if self.is_tree:
            return
        node = int(np.flatnonzero(self.num_parents > 1)[0])
        cp = self.child_to_parent
        parents = [self.ids[i] for i in cp.indices[cp.indptr[node] : cp.indptr[node + 1]]]
        lines = [self._line_of_edge.get((node, self.index[p])) for p in parents]
        shown = ", ".join(map(repr, parents[:10])) + (f", ... ({len(parents) - 10} more)" if len(parents) > 10 else "")
        lines = [x for x in lines if x]
        where = f" (lines {', '.join(map(str, lines[:10]))}{', ...' if len(lines) > 10 else ''})" if lines else ""
        hint = self.inversion_hint()
        raise SemembedError(
            f"{self.source}: {purpose} needs a tree, but node {self.ids[node]!r} has "
            f"{len(parents)} parents: {shown}{where}" + (f". {hint}" if hint else "")
        )

    def inversion_hint(self) -> str | None:
        """A sentence saying the file looks read in the wrong direction (``--is_a``), or ``None``.

        A child->parent file read as parent->child (or the other way round) turns the leaves into
        roots and the root into the only leaf: there are more roots than leaves, and every node
        with several children becomes a node with several parents while no node has more than
        one child. Either sign, in a file that is not a tree as read, gives the hint.
        """
        n_roots = int((self.num_parents == 0).sum())
        n_leaves = int((self.num_children == 0).sum())
        n_multi = int((self.num_parents > 1).sum())
        reversed_is_tree = bool((self.num_children <= 1).all())
        if not n_multi or not (reversed_is_tree or n_roots > max(1, n_leaves)):
            return None
        read_as = "'child parent' (--is_a)" if self.is_a else "'parent child'"
        other = "without --is_a" if self.is_a else "with --is_a (lines 'child parent')"
        facts = (f"read as {read_as} it has {n_roots} roots but {n_leaves} lea{'f' if n_leaves == 1 else 'ves'}, "
                 f"and {n_multi} nodes with several parents")
        if reversed_is_tree:
            facts += " while no node has more than one child"
        return (f"The file looks inverted: {facts}. "
                f"{'It reads as a tree' if reversed_is_tree else 'Try reading it'} {other}"
                + ("; the reference's NABirds file is one" if not self.is_a else "") + ".")

    @cached_property
    def min_depths(self) -> np.ndarray:
        """Shortest-path depth of every node (roots 1), by breadth-first search from all roots."""
        m = len(self.ids)
        depth = np.zeros(m, dtype=np.int64)
        frontier = np.flatnonzero(self.num_parents == 0)
        k = 1
        while frontier.size:
            depth[frontier] = k
            reached = _count_hits(self.parent_to_child, frontier, m) > 0
            frontier = np.flatnonzero(reached & (depth == 0))
            k += 1
        return depth

    @cached_property
    def roots(self) -> list[NodeId]:
        return [self.ids[i] for i in np.flatnonzero(self.num_parents == 0)]

    def parents_of(self, node: NodeId) -> list[NodeId]:
        i = self.node_index([node])[0]
        cp = self.child_to_parent
        return [self.ids[j] for j in cp.indices[cp.indptr[i] : cp.indptr[i + 1]]]

    def leaves(self) -> list[NodeId]:
        """All nodes without children, sorted (numerically for integer ids)."""
        return sort_ids([self.ids[i] for i in np.flatnonzero(self.num_children == 0)])

    def height(self, node: NodeId) -> int:
        return int(self.heights[self.node_index([node])[0]])

    def depth(self, node: NodeId, use_min: bool = False) -> int:
        i = self.node_index([node])[0]
        return int((self.min_depths if use_min else self.depths)[i])

    # === Classes ===
    def node_index(self, classes: Sequence[NodeId], source: str | None = None) -> np.ndarray:
        """Node numbers of ``classes``; unknown ids are an error naming them."""
        missing = [c for c in classes if c not in self.index]
        if missing:
            shown = ", ".join(map(repr, missing[:10])) + (" ..." if len(missing) > 10 else "")
            where = f"{source}: " if source else ""
            raise SemembedError(
                f"{where}{len(missing)} class id(s) not in taxonomy {self.source}: {shown}"
            )
        return np.fromiter((self.index[c] for c in classes), dtype=np.int64, count=len(classes))

    def parse_id(self, token: str | int) -> NodeId:
        """Convert a token (e.g. from a label file) to this taxonomy's id type."""
        if self.str_ids:
            return str(token)
        try:
            return int(token)
        except (TypeError, ValueError):
            raise SemembedError(f"{token!r} is not an integer class id of {self.source}") from None

    def classes_from_file(self, path: str | os.PathLike) -> list[NodeId]:
        """Read a ``--class_list`` file, checking every id against the taxonomy."""
        ids, lines = read_class_list(path, str_ids=self.str_ids)
        for cid, line in zip(ids, lines):
            if cid not in self.index:
                raise SemembedError(f"{os.fspath(path)}:{line}: class {cid!r} is not in taxonomy {self.source}")
        return ids

    def ancestor_distances(self, nodes: np.ndarray) -> sp.csr_matrix:
        """Sparse ``len(nodes) x m`` matrix: shortest upward distance + 1 to each ancestor (self = 1)."""
        n, m = len(nodes), len(self.ids)
        rows = [np.arange(n)]
        cols = [np.asarray(nodes)]
        vals = [np.ones(n, dtype=np.int32)]
        visited = sp.csr_matrix((np.ones(n, dtype=bool), (rows[0], cols[0])), shape=(n, m))
        frontier = visited.astype(np.int32)
        step = 2
        while frontier.nnz:
            reach = (frontier @ self.child_to_parent).tocsr()
            reach.data[:] = 1
            new = (reach - reach.multiply(visited)).tocsr()
            new.eliminate_zeros()
            if not new.nnz:
                break
            r, c = new.nonzero()
            rows.append(r)
            cols.append(c)
            vals.append(np.full(len(r), step, dtype=np.int32))
            visited = (visited + new.astype(bool)).tocsr()
            frontier = new.astype(np.int32)
            step += 1
        return sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, m)
        )

    def preorder(self) -> tuple[np.ndarray, np.ndarray]:
        """For a tree (or forest): depth-first preorder position and subtree size of every node.

        The nodes below ``v`` occupy positions ``pre[v] .. pre[v] + size[v] - 1``.
        """
        self.require_tree("preorder")
        m = len(self.ids)
        pc = self.parent_to_child
        indptr, indices = pc.indptr, pc.indices
        pre = np.empty(m, dtype=np.int64)
        stack = list(np.flatnonzero(self.num_parents == 0)[::-1])
        k = 0
        while stack:  # one visit per node
            v = stack.pop()
            pre[v] = k
            k += 1
            stack.extend(indices[indptr[v] : indptr[v + 1]][::-1].tolist())
        # subtree sizes bottom-up, one height level at a time
        size = np.ones(m, dtype=np.int64)
        cp = self.child_to_parent.tocoo()
        for level in range(self.max_height):
            kids = self.heights[cp.row] == level
            np.add.at(size, cp.col[kids], size[cp.row[kids]])
        return pre, size

    def ancestors_by_depth(self, nodes: np.ndarray) -> np.ndarray:
        """For a tree: ``len(nodes) x max_depth`` array of the ancestor at each depth (-1 below the node)."""
        self.require_tree("ancestors_by_depth")
        parent = np.full(len(self.ids), -1, dtype=np.int64)
        cp = self.child_to_parent.tocoo()
        parent[cp.row] = cp.col
        dmax = int(self.depths.max())
        out = np.full((len(nodes), dmax), -1, dtype=np.int64)
        cur = np.asarray(nodes, dtype=np.int64).copy()
        d = self.depths[cur] - 1
        rows = np.arange(len(cur))
        while (cur >= 0).any():
            ok = cur >= 0
            out[rows[ok], d[ok]] = cur[ok]
            cur = np.where(ok, parent[np.maximum(cur, 0)], -1)
            d = d - 1
        return out

    def __repr__(self) -> str:
        kind = "tree" if self.is_tree else "DAG"
        return f"Hierarchy({self.source!r}, {len(self.ids)} nodes, {kind}, height {self.max_height})"


def _count_hits(adj: sp.csr_matrix, frontier: np.ndarray, m: int) -> np.ndarray:
    """For each node, how many of its rows in ``adj`` (restricted to ``frontier``) point at it."""
    ind = np.zeros(m, dtype=np.int64)
    ind[frontier] = 1
    return adj.T @ ind


def load_hierarchy(path: str | os.PathLike, is_a: bool = False, str_ids: bool = False) -> Hierarchy:
    """Read and validate a taxonomy file: ``parent child`` lines (``child parent`` with ``is_a``)."""
    return Hierarchy.from_file(path, is_a=is_a, str_ids=str_ids)
