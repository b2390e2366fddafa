"""Hamming range search over unique hash values: every pair within the threshold.

Pure logic: takes plain ints, returns :class:`~imgdup.models.Match` records. Several exact
backends sit behind :func:`self_join`; they must return exactly the same pairs (a property
test compares each with the brute-force oracle).

Backends:

* ``bktree``: pybktree; simple and obviously right, the design reference (slow in Python).
* ``brute``: numpy tiles of all-pairs XOR + popcount; O(N^2), best for small N.
* ``mih``: multi-index hashing. The bits are cut into disjoint chunks; two hashes within
  ``t`` bits are within a small radius in at least one chunk (pigeonhole), so only pairs that
  nearly agree on a chunk are checked, with the exact full distance. Near-linear in N.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pybktree

from .models import Match

BACKENDS = ("auto", "bktree", "brute", "mih")

# Rows of the query tile in the numpy brute force: tile x N uint64 temporaries stay ~64 MiB at
# N = 1M (measured to be no faster with larger tiles on 2 cores).
_TILE_ELEMENTS = 8_000_000

# MIH candidate pairs verified per numpy batch: ~40 bytes of temporaries per pair keeps a batch
# near 80 MiB whatever N is, so peak memory stays linear in N.
_PAIR_BATCH = 1 << 21

# A chunk is looked up in a dense table of 2^width counts (8 bytes an entry) when the table is
# no larger than this many entries per hash (or 2^20, for small N); wider chunks fall back to
# binary search over the sorted unique chunk values (~10x slower per probe).
_TABLE_ENTRIES_PER_HASH = 8
_TABLE_MIN_BITS = 20

# Cost model, nanoseconds, fitted to timings on the 2-core benchmark machine (numpy 2.4, one
# thread; benchmarks/RESULTS_index.md): at N = 1M, t = 4 the model ranks 3 chunks (1.4 s) < 4 (3.1 s)
# < 5 (5.2 s), and at t = 8 3 chunks (8 s) < 4 (21 s). It only has to rank plans, not predict seconds.
_NS_PROBE = 12.0  # one table probe (xor, gather, nonzero) of one query, queries in chunk order
_NS_PROBE_SEARCH = 30.0  # the same through np.searchsorted (sorted queries), chunks too wide for a table
_NS_HIT = 15.0  # per probe that finds an occupied value: run lookup and per-query expansion
_NS_SELECT = 6.0  # per hash and top bit, selecting the queries whose top flipped bit is clear
_NS_SORT = 170.0  # per hash per chunk: stable argsort plus gathers into chunk order
_NS_TABLE = 2.0  # per table entry: bincount + cumsum
_NS_PAIR = 14.0  # per candidate pair per 64-bit word: gather, xor, popcount, compare
_NS_CALL = 25_000.0  # Python and numpy call overhead per probed mask
_NS_CHUNK = 60_000.0  # the same per searched chunk (sort, table, run pairs): decides tiny N
_NS_BRUTE = 6.0  # brute force, per computed pair per 64-bit word (1.2 s for all pairs of 20k)
_NS_BRUTE_TILE = 100_000.0  # brute force, per tile of rows


def hamming(a: int, b: int) -> int:
    """Bits in which two hashes differ (~40 ns, versus ~1 us for ImageHash subtraction)."""
    return (a ^ b).bit_count()


def oriented_distance(a: int, a_variants: Sequence[int], b: int, b_variants: Sequence[int]) -> int:
    """THE distance between two images under ``--rotations`` (symmetric, one definition for all).

    The smallest distance between one image's plain hash and any of the other's 8 orientations
    (its plain hash and its 7 ``variants``), taken both ways. It is never smaller than a
    comparison with a plain hash on one side: two orientations of two different pictures may
    look alike (an any-of-8 against any-of-8 search made photos 24 bits apart come out at 6),
    while an upright picture and a rotated copy always meet with one side plain. The search,
    the clusters' diameter, every member's distance and the removal rule all use this function.
    Without variants it is the plain Hamming distance.
    """
    d = (a ^ b).bit_count()
    for v in b_variants:
        d = min(d, (a ^ v).bit_count())
    for v in a_variants:
        d = min(d, (v ^ b).bit_count())
    return d


def self_join(hashes: Sequence[int], threshold: int, *, bits: int = 64, backend: str = "auto") -> list[Match]:
    """All pairs ``i < j`` of distinct positions with ``hamming(hashes[i], hashes[j]) <= threshold``.

    ``hashes`` should hold unique values (group identical hashes first): a picture copied
    10,000 times is then one value, not 50 million pairs. Results are sorted by (a, b).
    """
    if not 0 <= threshold <= bits:
        raise ValueError(f"threshold must be between 0 and {bits} bits, got {threshold}")
    if backend not in BACKENDS:
        raise ValueError(f"unknown index backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if len(hashes) < 2:
        return []
    search = _BACKEND_FUNCS[choose_backend(len(hashes), threshold, bits) if backend == "auto" else backend]
    matches = search(hashes, threshold, bits)
    matches.sort(key=lambda m: (m.a, m.b))
    return matches


def self_join_arrays(
    hashes: Sequence[int], threshold: int, *, bits: int = 64, backend: str = "auto"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`self_join` as three arrays (a, b, distance), in the same order: a large join's
    pairs as Python objects cost more than finding them (the region search of the 20,646-file
    incremental benchmark: 43,355 values, 129,462 pairs, 0.135 s as arrays against 0.353 s
    through Match objects and back, medians of 5)."""
    n = len(hashes)
    mih = backend == "mih" or (backend == "auto" and n >= 2 and choose_backend(n, threshold, bits) == "mih")
    if mih and n >= 2 and 0 <= threshold <= bits:
        return mih_pairs(to_words(hashes, bits), threshold, bits)
    return match_arrays(self_join(hashes, threshold, bits=bits, backend=backend))


def match_arrays(matches: Sequence[Match]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Matches as three arrays (a, b, distance)."""
    if not matches:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    a, b, d = (np.array(v, dtype=np.int64) for v in zip(*((m.a, m.b, m.distance) for m in matches)))
    return a, b, d


def choose_backend(n: int, threshold: int, bits: int) -> str:
    """The backend ``auto`` picks: whichever of brute and MIH the cost model says is cheaper.

    The model's constants are fitted to benchmarks/RESULTS_index.md. Measured: brute wins below
    ~500 hashes (at 200, t=4: 0.35 ms vs 0.9 ms; MIH pays a fixed sort and per-chunk overhead)
    and when the threshold is a large share of the bits (1k hashes, t=16: 7 ms vs 12 ms); MIH
    wins from ~1k hashes at t <= 10 (1k: 1.4 ms vs 7.6 ms; 100k, t=8: 0.5 s vs 27 s). The
    BK-tree is never the fastest and stays as the oracle.
    """
    if n < 2:
        return "brute"
    return "mih" if mih_plan(n, threshold, bits).cost < _brute_cost(n, bits) else "brute"


def _bktree(hashes: Sequence[int], threshold: int, bits: int) -> list[Match]:
    # Items are (hash, position) so equal hashes at different positions stay distinct nodes.
    def distance(x: tuple[int, int], y: tuple[int, int]) -> int:
        return (x[0] ^ y[0]).bit_count()

    tree = pybktree.BKTree(distance, [(h, i) for i, h in enumerate(hashes)])
    out: list[Match] = []
    for i, h in enumerate(hashes):
        for d, (_, j) in tree.find((h, i), threshold):
            if j > i:
                out.append(Match(i, j, d))
    return out


def to_words(hashes: Sequence[int], bits: int) -> np.ndarray:
    """Hashes as an (N, words) uint64 array, most significant word first."""
    words = max(1, (bits + 63) // 64)
    mask = (1 << 64) - 1
    arr = np.empty((len(hashes), words), dtype=np.uint64)
    if words == 1:
        # Python ints below 2^64 convert directly; ~10x faster than the generator below.
        arr[:, 0] = np.fromiter(hashes, dtype=np.uint64, count=len(hashes))
        return arr
    if all(0 <= h < 1 << (64 * words) for h in hashes):
        # Big-endian bytes, read as words: ~5x faster than one shift-and-mask pass per word.
        raw = b"".join(h.to_bytes(8 * words, "big") for h in hashes)
        arr[:] = np.frombuffer(raw, dtype=">u8").reshape(len(hashes), words)
        return arr
    for w in range(words):
        shift = 64 * (words - 1 - w)
        arr[:, w] = np.fromiter(((h >> shift) & mask for h in hashes), dtype=np.uint64, count=len(hashes))
    return arr


def _brute_cost(n: int, bits: int) -> float:
    words = max(1, (bits + 63) // 64)
    tile = max(1, _TILE_ELEMENTS // max(1, n * words))
    # Each tile computes its rows against every later column: about n * (n + tile) / 2 cells.
    computed = n * n if tile >= n else n * (n + tile) / 2
    return _NS_BRUTE * words * computed + _NS_BRUTE_TILE * math.ceil(n / tile)


def _brute(hashes: Sequence[int], threshold: int, bits: int) -> list[Match]:
    arr = to_words(hashes, bits)
    n = len(arr)
    tile = max(1, _TILE_ELEMENTS // max(1, n * arr.shape[1]))
    out: list[Match] = []
    for start in range(0, n, tile):
        stop = min(n, start + tile)
        # Only the upper triangle: compare rows [start, stop) with columns [start, n).
        dist = np.zeros((stop - start, n - start), dtype=np.uint16)
        for w in range(arr.shape[1]):
            dist += np.bitwise_count(arr[start:stop, w, None] ^ arr[None, start:, w])
        rows, cols = np.nonzero(dist <= threshold)
        keep = cols > rows  # strictly above the diagonal
        rows, cols = rows[keep], cols[keep]
        ds = dist[rows, cols]
        out.extend(Match(int(r) + start, int(c) + start, int(d)) for r, c, d in zip(rows, cols, ds))
    return out


# ---------------------------------------------------------------------------------------------
# Multi-index hashing


@dataclass(frozen=True)
class MihPlan:
    """How MIH cuts the hash: chunk widths (bits, least significant chunk first) and flip radii.

    A radius of -1 means the chunk is not searched. Chunks are disjoint, so if two hashes are
    within ``t`` and ``t = m*r + a`` then one of the first ``a + 1`` chunks differs in at most
    ``r`` bits or one of the others in at most ``r - 1`` (else the distance is >= t + 1).
    """

    widths: tuple[int, ...]
    radii: tuple[int, ...]
    cost: float


def _ball(width: int, radius: int) -> int:
    """Chunk values within ``radius`` flips of one value."""
    return sum(math.comb(width, i) for i in range(radius + 1)) if radius >= 0 else 0


def _uses_table(width: int, n: int) -> bool:
    return width <= max(_TABLE_MIN_BITS, (_TABLE_ENTRIES_PER_HASH * n).bit_length() - 1)


def _plan_for(n: int, t: int, bits: int, m: int) -> MihPlan:
    base, extra = divmod(bits, m)
    widths = tuple(base + (k < extra) for k in range(m))  # wider chunks first
    r, a = divmod(t, m)
    # The larger radius goes to the wider chunks: they have fewer chance collisions per flip.
    radii = tuple(r if k <= a else r - 1 for k in range(m))
    words = max(1, (bits + 63) // 64)
    cost = 0.0
    for width, radius in zip(widths, radii):
        if radius < 0:
            continue
        table = _uses_table(width, n)
        cost += _NS_CHUNK + n * _NS_SORT + (_NS_TABLE * 2**width if table else 0.0)
        masks = _ball(width, radius) - 1
        # Radius 1 probes every hash per mask; larger radii first select the half of the hashes
        # whose bit at the mask's top bit is 0 (each value pair is probed from one side only).
        probes = masks * n if radius == 1 else masks * n / 2
        per_probe = _NS_PROBE if table else _NS_PROBE_SEARCH
        occupied = -math.expm1(-n / 2**width)  # chance that a random chunk value is present
        cost += probes * (per_probe + occupied * _NS_HIT) + masks * _NS_CALL
        cost += width * n * _NS_SELECT if radius >= 2 else 0.0
        # Expected candidates if hashes look random within a chunk (planted duplicates add their
        # true pairs, few by comparison; skewed real hashes add more).
        cost += _NS_PAIR * words * n * (n - 1) / 2 * _ball(width, radius) / (1 << width)
    return MihPlan(widths, radii, cost)


def mih_plan(n: int, threshold: int, bits: int, *, chunks: int | None = None) -> MihPlan:
    """The cheapest chunking by the cost model (or the given number of chunks).

    Not the textbook ``m = t + 1``: with every chunk matched exactly, 64 bits at t = 8 means
    7-bit chunks and N^2/256 candidate pairs, hopeless at N = 1M. Fewer, wider chunks with a
    flip radius of 1-2 trade candidates for probes.
    """
    m_min = max(1, -(-bits // 64))  # chunk values must fit in one uint64
    if chunks is not None:
        if not m_min <= chunks <= bits:
            raise ValueError(f"chunks must be between {m_min} and {bits}, got {chunks}")
        return _plan_for(n, threshold, bits, chunks)
    m_max = min(bits, max(m_min, threshold + 1))  # more than t + 1 chunks only makes them narrower
    return min((_plan_for(n, threshold, bits, m) for m in range(m_min, m_max + 1)), key=lambda p: p.cost)


def _chunk_values(arr: np.ndarray, lo: int, width: int) -> np.ndarray:
    """Bits ``[lo, lo + width)`` of every hash (bit 0 = least significant), as uint64."""
    words = arr.shape[1]
    out = np.zeros(len(arr), dtype=np.uint64)
    filled = 0
    while filled < width:
        q, off = divmod(lo + filled, 64)
        take = min(width - filled, 64 - off)
        piece = (arr[:, words - 1 - q] >> np.uint64(off)) & np.uint64((1 << take) - 1)
        out |= piece << np.uint64(filled)
        filled += take
    return out


def _masks_by_top_bit(width: int, radius: int) -> Iterator[tuple[int, list[int]]]:
    """Nonzero flip masks of at most ``radius`` bits, grouped by their highest set bit."""
    for top in range(width):
        masks = []
        for k in range(radius):
            for low in itertools.combinations(range(top), k):
                masks.append((1 << top) | sum(1 << b for b in low))
        yield top, masks


class _ChunkIndex:
    """Hashes sorted by one chunk's value, with the value -> run of sorted positions lookup."""

    def __init__(self, values: np.ndarray, width: int, n: int) -> None:
        self.order = np.argsort(values, kind="stable")
        sv = values[self.order]
        self.table = _uses_table(width, n)
        if self.table:
            # Dense: counts[v] and starts[v] for every possible chunk value.
            self.values = sv.astype(np.int64)
            self.counts = np.bincount(self.values, minlength=1 << width)
            self.starts = np.cumsum(self.counts) - self.counts
        else:
            self.values = sv
            self.uniq, self.ustart, self.ucount = np.unique(sv, return_index=True, return_counts=True)

    def lookup(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For chunk values ``q``: which are present, and their (start, count) runs."""
        if self.table:
            cnt = self.counts[q]
            hit = np.flatnonzero(cnt)
            return hit, self.starts[q[hit]], cnt[hit]
        pos = np.minimum(np.searchsorted(self.uniq, q), len(self.uniq) - 1)
        hit = np.flatnonzero(self.uniq[pos] == q)
        pos = pos[hit]
        return hit, self.ustart[pos], self.ucount[pos]

    def run_ends(self) -> np.ndarray:
        """End of the run of equal chunk values that each sorted position belongs to."""
        if self.table:
            return self.starts[self.values] + self.counts[self.values]
        return np.repeat(self.ustart + self.ucount, self.ucount)


def _batches(cnt: np.ndarray) -> Iterator[slice]:
    """Slices of queries whose candidate counts sum to about ``_PAIR_BATCH`` each."""
    ends = np.cumsum(cnt)
    if len(ends) == 0:
        return
    if ends[-1] <= _PAIR_BATCH:
        yield slice(0, len(cnt))
        return
    cuts = np.searchsorted(ends, np.arange(_PAIR_BATCH, ends[-1], _PAIR_BATCH), side="left") + 1
    bounds = [0, *np.unique(np.minimum(cuts, len(cnt))).tolist()]
    if bounds[-1] != len(cnt):
        bounds.append(len(cnt))
    for start, stop in itertools.pairwise(bounds):
        yield slice(start, stop)


def _verify(
    qpos: np.ndarray, lo: np.ndarray, cnt: np.ndarray, hs: np.ndarray, t: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check query ``qpos[i]`` against sorted positions ``lo[i] .. lo[i] + cnt[i] - 1``.

    Returns the (query, candidate, distance) triples within ``t``, in sorted positions.
    """
    ends = np.cumsum(cnt)
    if len(cnt) == int(ends[-1]):  # every run has one member: the common case with wide chunks
        jpos, rep = lo, qpos
    else:
        jpos = np.arange(ends[-1]) + np.repeat(lo - (ends - cnt), cnt)
        rep = np.repeat(qpos, cnt)
    if hs.ndim == 1:
        d = np.bitwise_count(hs[rep] ^ hs[jpos])
    else:
        d = np.bitwise_count(hs[rep] ^ hs[jpos]).sum(axis=1, dtype=np.uint16)
    ok = np.flatnonzero(d <= t)
    return rep[ok], jpos[ok], d[ok]


def _collect(
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    qpos: np.ndarray,
    lo: np.ndarray,
    cnt: np.ndarray,
    *,
    index: _ChunkIndex,
    hs: np.ndarray,
    threshold: int,
    earlier: list[tuple[int, np.ndarray]],
) -> None:
    """Verify candidate runs batch by batch; append the pairs not already found in an earlier chunk."""
    for part in _batches(cnt):
        i, j, d = _verify(qpos[part], lo[part], cnt[part], hs, threshold)
        if len(i) == 0:
            continue
        i, j = index.order[i], index.order[j]
        # A pair within an earlier chunk's radius was found there: report each pair once.
        keep = np.ones(len(i), dtype=bool)
        for radius, values in earlier:
            keep &= np.bitwise_count(values[i] ^ values[j]) > radius
        i, j, d = i[keep], j[keep], d[keep]
        found.append((np.minimum(i, j), np.maximum(i, j), d))


def _mih(hashes: Sequence[int], threshold: int, bits: int) -> list[Match]:
    arr = to_words(hashes, bits)
    a, b, d = mih_pairs(arr, threshold, bits)
    return list(map(Match, a.tolist(), b.tolist(), d.tolist()))


def mih_pairs(
    arr: np.ndarray, threshold: int, bits: int, *, plan: MihPlan | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MIH self-join over a :func:`to_words` array: arrays ``a < b`` and distances, sorted by (a, b).

    Memory is linear in N: a few arrays of N values per chunk plus one bounded candidate batch.
    """
    n = len(arr)
    plan = plan or mih_plan(n, threshold, bits)
    los = np.cumsum((0, *plan.widths[:-1])).tolist()
    searched = [(lo, w, r) for lo, w, r in zip(los, plan.widths, plan.radii) if r >= 0]
    chunk_values = [_chunk_values(arr, lo, w) for lo, w, _ in searched]
    flat = arr[:, 0] if arr.shape[1] == 1 else arr
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for k, (_, width, radius) in enumerate(searched):
        index = _ChunkIndex(chunk_values[k], width, n)
        hs = flat[index.order]  # hashes in chunk order: candidate runs are contiguous
        sv = index.values

        # Radius 0: every pair inside a run of equal chunk values.
        after = index.run_ends() - np.arange(n) - 1
        qpos = np.flatnonzero(after)
        earlier = list(zip((r for _, _, r in searched[:k]), chunk_values[:k]))
        emit = functools.partial(_collect, found, index=index, hs=hs, threshold=threshold, earlier=earlier)
        emit(qpos, qpos + 1, after[qpos])
        # Radius >= 1: probe value ^ mask. A value pair (u, u ^ mask) is probed only from the
        # side whose bit at the mask's top bit is 0, so each pair is generated once.
        for top, masks in _masks_by_top_bit(width, radius):
            if not masks:
                continue
            chosen: np.ndarray | None = None
            qv = sv
            if len(masks) > 2:
                chosen = np.flatnonzero((sv >> top) & 1 == 0)
                qv = sv[chosen]
            # else selecting would cost as much as probing every hash and filtering the hits
            for mask in masks:
                hit, lo, cnt = index.lookup(qv ^ (np.uint64(mask) if qv.dtype == np.uint64 else mask))
                if chosen is None:
                    low = ((qv[hit] >> top) & 1) == 0
                    emit(hit[low], lo[low], cnt[low])
                else:
                    emit(chosen[hit], lo, cnt)
    if not found:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    a, b, d = (np.concatenate(parts) for parts in zip(*found))
    order = np.lexsort((b, a))
    return a[order].astype(np.int64), b[order].astype(np.int64), d[order].astype(np.int64)


def cross_pairs(
    queries: np.ndarray, values: np.ndarray, threshold: int, bits: int, *, plan: MihPlan | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (i, j) with ``queries[i]`` and ``values[j]`` (:func:`to_words` arrays) within
    ``threshold``, as arrays i, j and distance sorted by (i, j): MIH over ``values`` probed by
    the queries alone. A new batch against a cached reference asks only what is near the new
    hashes; a self-join over both would also pair up the reference's own.

    A pair within ``threshold`` has a chunk within that chunk's radius (see :class:`MihPlan`); it
    is reported from the first such chunk, through the one mask that is the two chunks' xor.
    """
    empty = np.zeros(0, dtype=np.int64)
    if not len(queries) or not len(values):
        return empty, empty, empty
    plan = plan or mih_plan(max(2, len(values)), threshold, bits)
    los = np.cumsum((0, *plan.widths[:-1])).tolist()
    searched = [(lo, w, r) for lo, w, r in zip(los, plan.widths, plan.radii) if r >= 0]
    q_chunks = [_chunk_values(queries, lo, w) for lo, w, _ in searched]
    v_chunks = [_chunk_values(values, lo, w) for lo, w, _ in searched]
    q_flat = queries[:, 0] if queries.shape[1] == 1 else queries
    v_flat = values[:, 0] if values.shape[1] == 1 else values
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = [(empty, empty, empty)]
    for k, (_, width, radius) in enumerate(searched):
        index = _ChunkIndex(v_chunks[k], width, len(values))
        hs = v_flat[index.order]
        masks = [0, *(m for _, ms in _masks_by_top_bit(width, radius) for m in ms)]
        for mask in masks:
            probe = q_chunks[k] ^ np.uint64(mask)
            hit, lo, cnt = index.lookup(probe.astype(np.int64) if index.table else probe)
            for part in _batches(cnt):
                i, at, d = _verify_cross(hit[part], lo[part], cnt[part], q_flat, hs, threshold)
                j = index.order[at]
                first = np.ones(len(i), dtype=bool)  # not within an earlier chunk's radius
                for (_, _, r), qc, vc in zip(searched[:k], q_chunks, v_chunks):
                    first &= np.bitwise_count(qc[i] ^ vc[j]) > r
                found.append((i[first], j[first], d[first]))
    i, j, d = (np.concatenate(parts) for parts in zip(*found))
    order = np.lexsort((j, i))
    return i[order].astype(np.int64), j[order].astype(np.int64), d[order].astype(np.int64)


def _verify_cross(
    qpos: np.ndarray, lo: np.ndarray, cnt: np.ndarray, qh: np.ndarray, hs: np.ndarray, t: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_verify` with the queries' hashes apart from the searched ones."""
    ends = np.cumsum(cnt)
    at = np.arange(ends[-1]) + np.repeat(lo - (ends - cnt), cnt)
    rep = np.repeat(qpos, cnt)
    x = qh[rep] ^ hs[at]
    d = np.bitwise_count(x) if x.ndim == 1 else np.bitwise_count(x).sum(axis=1, dtype=np.uint16)
    ok = np.flatnonzero(d <= t)
    return rep[ok], at[ok], d[ok]


def join_touching(
    hashes: Sequence[int], held: np.ndarray, threshold: int, *, bits: int = 64
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs of :func:`self_join_arrays` with at least one ``held`` hash (a mask), as arrays
    a, b, distance (``a < b``, sorted by (a, b)): the held hashes joined among themselves and
    probed against the rest (:func:`cross_pairs`), the rest never against each other."""
    held = np.asarray(held, dtype=bool)
    h, rest = np.flatnonzero(held), np.flatnonzero(~held)
    words = to_words(hashes, bits)
    a1, b1, d1 = mih_pairs(words[h], threshold, bits) if len(h) >= 2 else (np.zeros(0, dtype=np.int64),) * 3
    qi, vj, d2 = cross_pairs(words[h], words[rest], threshold, bits)
    x, y = np.concatenate([h[a1], h[qi]]), np.concatenate([h[b1], rest[vj]])
    a, b, d = np.minimum(x, y), np.maximum(x, y), np.concatenate([d1, d2])
    order = np.lexsort((b, a))
    return a[order], b[order], d[order]


_BACKEND_FUNCS: dict[str, Callable[[Sequence[int], int, int], list[Match]]] = {
    "bktree": _bktree,
    "brute": _brute,
    "mih": _mih,
}
