"""Connected components by min-label propagation, in batches a cluster can schedule (pure logic).

For edge lists that no longer fit one machine's union-find. Nodes ``0..n-1`` are cut into
ranges of ``size`` nodes; each range holds its nodes' labels (initially the node itself) and
the edges leaving them (both directions of every pair). A round: every range proposes its
labels to its edges' targets (:func:`propose`, split by the target's range and reduced to one
minimum per target), then every range keeps the least of its label and the proposals
(:func:`settle`). When no label changes, each node's label is the smallest node of its
component: the same partition as :func:`imgdup.cluster.components`. Rounds: at most the
largest component's diameter in hops plus one (near-duplicate clusters are a few hops wide).
"""

from __future__ import annotations

import numpy as np

Edges = tuple[np.ndarray, np.ndarray]
"""(source, target) node arrays, int64."""


def range_size(n: int, parts: int) -> int:
    """Nodes per range: ranges ``[k * size, (k + 1) * size)``."""
    return max(1, -(-n // max(1, parts)))


def split_edges(a: np.ndarray, b: np.ndarray, size: int, parts: int) -> list[Edges]:
    """Both directions of the pairs ``(a[i], b[i])``, grouped by the source's range."""
    src = np.concatenate([a, b]).astype(np.int64)
    dst = np.concatenate([b, a]).astype(np.int64)
    return _by_part(src, dst, src // size, parts)


def _by_part(x: np.ndarray, y: np.ndarray, part: np.ndarray, parts: int) -> list[Edges]:
    order = np.argsort(part, kind="stable")
    bounds = np.searchsorted(part[order], np.arange(parts + 1))
    return [(x[order[bounds[k] : bounds[k + 1]]], y[order[bounds[k] : bounds[k + 1]]]) for k in range(parts)]


def concat_edges(parts: list[Edges]) -> Edges:
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def initial_labels(k: int, n: int, size: int) -> np.ndarray:
    """Range ``k``'s labels before the first round: every node is its own label."""
    return np.arange(k * size, min(n, (k + 1) * size), dtype=np.int64)


def propose(labels: np.ndarray, lo: int, edges: Edges, size: int, parts: int) -> list[Edges]:
    """(target, least proposed label) per target, grouped by the target's range."""
    src, dst = edges
    if len(src) == 0:
        return _by_part(src, src, src, parts)
    lab = labels[src - lo]
    order = np.lexsort((lab, dst))
    dst, lab = dst[order], lab[order]
    first = np.r_[True, dst[1:] != dst[:-1]]  # the least label of each target comes first
    dst, lab = dst[first], lab[first]
    return _by_part(dst, lab, dst // size, parts)


def settle(labels: np.ndarray, lo: int, proposals: list[Edges]) -> tuple[np.ndarray, int]:
    """The range's new labels (the least of its own and the proposals) and how many changed."""
    new = labels.copy()
    for dst, lab in proposals:
        if len(dst):
            np.minimum.at(new, dst - lo, lab)
    return new, int(np.count_nonzero(new != labels))
