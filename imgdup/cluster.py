"""Union-find over matches: connected groups of near-identical hash values (pure logic)."""

from __future__ import annotations

from collections.abc import Iterable

from .models import Match


class UnionFind:
    """Disjoint sets over 0..n-1 with path halving and union by size."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))
        self.size = [1] * n

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]


def components(n: int, matches: Iterable[Match]) -> list[list[int]]:
    """Connected components of 0..n-1 linked by ``matches``, singletons included.

    Deterministic: members ascend, and components are ordered by their smallest member, so
    the order depends only on the numbering of the nodes, never on the order of the matches.
    """
    uf = UnionFind(n)
    for m in matches:
        uf.union(m.a, m.b)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(uf.find(i), []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])
