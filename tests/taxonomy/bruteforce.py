"""Slow, obviously-correct taxonomy computations straight from the definitions (SPEC.md §1).

Dict-of-sets recursion over one pair at a time — used only to check the
vectorised implementation on small inputs.
"""

from __future__ import annotations

import functools


class BruteHierarchy:
    def __init__(self, relations):
        self.parents, self.children, self.order = {}, {}, {}
        for p, c in relations:
            for x in (p, c):
                self.order.setdefault(x, len(self.order))
            self.parents.setdefault(c, set()).add(p)
            self.children.setdefault(p, set()).add(c)
        self.nodes = list(self.order)

    @functools.lru_cache(maxsize=None)
    def height(self, v):
        kids = self.children.get(v, ())
        return 0 if not kids else 1 + max(self.height(k) for k in kids)

    @functools.lru_cache(maxsize=None)
    def depth(self, v):
        ps = self.parents.get(v, ())
        return 1 if not ps else 1 + max(self.depth(p) for p in ps)

    @functools.lru_cache(maxsize=None)
    def min_depth(self, v):
        ps = self.parents.get(v, ())
        return 1 if not ps else 1 + min(self.min_depth(p) for p in ps)

    @property
    def max_height(self):
        return max(self.height(v) for v in self.nodes)

    @functools.lru_cache(maxsize=None)
    def up_dist(self, v):
        """ancestor -> shortest number of upward edges (self: 0)."""
        out = {v: 0}
        for p in self.parents.get(v, ()):
            for a, d in self.up_dist(p).items():
                if a not in out or d + 1 < out[a]:
                    out[a] = d + 1
        return out

    def lcs(self, a, b):
        common = set(self.up_dist(a)) & set(self.up_dist(b))
        # deepest; ties: smallest height, then first appearance in the file
        return min(common, key=lambda h: (-self.depth(h), self.height(h), self.order[h]))

    def path(self, x, l):
        """The reference's shortest_path_length(x, l)."""
        dx, dl = self.up_dist(x), self.up_dist(l)
        return min(dx[h] + dl[h] for h in set(dx) & set(dl))

    def lcs_height_sim(self, a, b):
        if a == b:
            return 1.0
        return 1.0 - self.height(self.lcs(a, b)) / self.max_height

    def wup(self, a, b):
        l = self.lcs(a, b)
        ds = self.depth(l)
        return 2.0 * ds / (2.0 * ds + self.path(a, l) + self.path(b, l))
