"""Chunk-subset self-join: the Hamming search cut into independent buckets (pure logic).

A distributed engine cannot probe one in-memory index, but it can shuffle rows by key. Cut each
hash into ``m`` disjoint chunks, ``m >= t + 1``. Two hashes within ``t`` bits differ in at most
``t`` chunks, so they agree exactly on at least ``s = m - t`` of them, and therefore on every
chunk of at least one ``s``-subset of the chunks. Each hash emits one row per ``s``-subset
(key = the subset and those chunks' values); rows that share a key are candidates and are
checked with the exact distance. A pair that agrees on several subsets is kept only in the
first one (the lexicographically first subset of its agreeing chunks), so each pair comes out
exactly once without a second shuffle.

Three pure batch functions do the work: :func:`subset_plan` (how to cut, by a cost model),
:func:`emit_rows` (a partition of hashes -> rows split into output buckets) and
:func:`join_rows` (one bucket's rows -> verified pairs). Any scheduler may run them; the
candidate verification is :mod:`imgdup.index`'s own (``_verify`` and ``_batches``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from .index import _batches, _chunk_values, _verify

# Cost model, nanoseconds, measured on the shared 2-core benchmark machine with 100k hashes at
# t = 8 (emit_rows + join_rows in one process, m = 9, 10, 11): a row costs ~0.85 us (emission,
# bucketing, sort, gathers), a candidate ~40 ns (xor, popcount, first-subset test). At 1M hashes
# it ranks m = 11 (165 rows a hash) first at t = 8 and m = 6 (15 rows) at t = 4. Only the ranking
# of plans matters.
_NS_ROW = 850.0
_NS_PAIR = 40.0
_MAX_SUBSETS = 3432  # C(14, 7): beyond this the rows (N x subsets) dwarf any saving in candidates
_MAX_CHUNKS = 64  # agreeing-chunk sets are held in one uint64 bit mask


@dataclass(frozen=True)
class SubsetPlan:
    """Chunk widths (bits, least significant chunk first), the agreeing count ``s`` and the subsets.

    ``subsets[k]`` is a bit mask of chunk indices, in ``itertools.combinations`` order.
    """

    widths: tuple[int, ...]
    agree: int
    subsets: tuple[int, ...]
    rows_per_hash: int
    cost: float


def _plan(n: int, t: int, bits: int, m: int) -> SubsetPlan:
    base, extra = divmod(bits, m)
    widths = tuple(base + (k < extra) for k in range(m))
    s = max(0, m - t)
    subsets = tuple(sum(1 << c for c in combo) for combo in itertools.combinations(range(m), s))
    key_bits = sum(sorted(widths)[:s])  # the narrowest subset collides the most
    candidates = len(subsets) * n * (n - 1) / 2 / 2.0**key_bits
    cost = _NS_ROW * n * len(subsets) + _NS_PAIR * candidates
    return SubsetPlan(widths, s, subsets, len(subsets), cost)


def subset_plan(n: int, threshold: int, bits: int, *, chunks: int | None = None) -> SubsetPlan:
    """The cheapest ``m`` by the cost model (or the given one).

    The textbook choice ``m = t + 1`` (every row keyed on one chunk) makes narrow keys: at 64
    bits and t = 8, 7-bit chunks and N^2/128 candidates per subset. More chunks and more agreeing
    chunks per key trade rows (C(m, s) per hash) for far fewer candidates.
    """
    if not 0 <= threshold <= bits:
        raise ValueError(f"threshold must be between 0 and {bits} bits, got {threshold}")
    low = min(threshold + 1, bits, _MAX_CHUNKS)
    if chunks is not None:
        if not low <= chunks <= min(bits, _MAX_CHUNKS):
            raise ValueError(f"chunks must be between {low} and {min(bits, _MAX_CHUNKS)}, got {chunks}")
        return _plan(n, threshold, bits, chunks)
    plans = [_plan(n, threshold, bits, low)]
    for m in range(low + 1, min(bits, _MAX_CHUNKS) + 1):
        if math.comb(m, max(0, m - threshold)) > _MAX_SUBSETS:
            break
        plans.append(_plan(n, threshold, bits, m))
    return min(plans, key=lambda p: p.cost)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads keys over buckets; a collision only adds a candidate."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _all_chunks(words: np.ndarray, plan: SubsetPlan) -> list[np.ndarray]:
    los = np.cumsum((0, *plan.widths[:-1])).tolist()
    return [_chunk_values(words, lo, w) for lo, w in zip(los, plan.widths)]


Rows = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""(key uint64, subset index int32, id int64, hash words uint64 (k, W)): one bucket's rows."""


def emit_rows(ids: np.ndarray, words: np.ndarray, plan: SubsetPlan, buckets: int) -> list[Rows]:
    """One row per hash and subset, split into ``buckets`` by key (the map side of the shuffle)."""
    chunks = _all_chunks(words, plan)
    keys, subs = [], []
    for k, mask in enumerate(plan.subsets):
        # Seeded by a mixed subset number: a small seed XOR a small chunk value would collide
        # across subsets ((1 ^ 0x71) == (2 ^ 0x72)) and flood the buckets with false candidates.
        key = _mix(np.full(len(ids), k + 1, dtype=np.uint64))
        for c in range(len(plan.widths)):
            if mask >> c & 1:
                key = _mix(key ^ chunks[c])
        keys.append(_mix(key))
        subs.append(np.full(len(ids), k, dtype=np.int32))
    key = np.concatenate(keys) if keys else np.zeros(0, dtype=np.uint64)
    sub = np.concatenate(subs) if subs else np.zeros(0, dtype=np.int32)
    row_of = np.tile(np.arange(len(ids)), len(plan.subsets))
    if buckets == 1:
        return [(key, sub, ids[row_of], words[row_of])]
    dest = (key % np.uint64(buckets)).astype(np.int64)
    order = np.argsort(dest, kind="stable")
    bounds = np.searchsorted(dest[order], np.arange(buckets + 1))
    out: list[Rows] = []
    for q in range(buckets):
        sel = order[bounds[q] : bounds[q + 1]]
        out.append((key[sel], sub[sel], ids[row_of[sel]], words[row_of[sel]]))
    return out


def concat_rows(parts: list[Rows], words_per_hash: int) -> Rows:
    """Rows of one bucket gathered from every map partition."""
    if not parts:
        return (
            np.zeros(0, np.uint64),
            np.zeros(0, np.int32),
            np.zeros(0, np.int64),
            np.zeros((0, words_per_hash), np.uint64),
        )
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
        np.concatenate([p[3] for p in parts]),
    )


def _first_subset_mask(equal: np.ndarray, s: int) -> np.ndarray:
    """The ``s`` lowest set bits of each agreeing-chunk mask: the pair's first agreeing subset."""
    out = np.zeros_like(equal)
    rest = equal.copy()
    with np.errstate(over="ignore"):
        for _ in range(s):
            low = rest & (~rest + np.uint64(1))
            out |= low
            rest ^= low
    return out


def join_rows(rows: Rows, plan: SubsetPlan, threshold: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Verified pairs of one bucket: ids ``a < b`` and distances, each pair once over all buckets."""
    key, sub, ids, words = rows
    empty = np.zeros(0, dtype=np.int64)
    if len(key) < 2:
        return empty, empty, empty
    order = np.argsort(key)  # runs of equal keys; the order inside a run does not matter
    key, sub, ids, words = key[order], sub[order], ids[order], words[order]
    n = len(key)
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    ends = np.r_[starts[1:], n]
    run_end = np.repeat(ends, ends - starts)
    after = run_end - np.arange(n) - 1
    qpos = np.flatnonzero(after)
    flat = words[:, 0] if words.shape[1] == 1 else words
    masks = np.array(plan.subsets, dtype=np.uint64)
    found_a, found_b, found_d = [empty], [empty], [empty]
    for part in _batches(after[qpos]):
        q = qpos[part]
        i, j, d = _verify(q, q + 1, after[q], flat, threshold)
        same = sub[i] == sub[j]  # a key collision across subsets is not an agreement
        i, j, d = i[same], j[same], d[same]
        if len(i) == 0:
            continue
        equal = np.zeros(len(i), dtype=np.uint64)
        for c, (ci, cj) in enumerate(zip(_all_chunks(words[i], plan), _all_chunks(words[j], plan))):
            equal |= (ci == cj).astype(np.uint64) << np.uint64(c)
        first = _first_subset_mask(equal, plan.agree) == masks[sub[i]]
        a, b = ids[i[first]], ids[j[first]]
        found_a.append(np.minimum(a, b))
        found_b.append(np.maximum(a, b))
        found_d.append(d[first].astype(np.int64))
    return np.concatenate(found_a), np.concatenate(found_b), np.concatenate(found_d)
