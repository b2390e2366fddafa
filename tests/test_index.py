"""Every index backend must return exactly the pairs of a pure-Python brute-force oracle."""

from __future__ import annotations

import ast
import itertools
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imgdup import index
from imgdup.index import BACKENDS, choose_backend, mih_pairs, mih_plan, self_join, to_words
from imgdup.models import Match

BITS = (16, 64, 256)


def oracle(hashes: list[int], threshold: int) -> list[Match]:
    """The definition, nothing clever: all pairs i < j within the threshold."""
    return [
        Match(i, j, (hashes[i] ^ hashes[j]).bit_count())
        for i, j in itertools.combinations(range(len(hashes)), 2)
        if (hashes[i] ^ hashes[j]).bit_count() <= threshold
    ]


@st.composite
def hash_sets(draw: st.DrawFn, max_size: int = 40) -> tuple[list[int], int, int]:
    """Unique hashes with planted near-duplicates (so matches occur), a threshold and the width."""
    bits = draw(st.sampled_from(BITS))
    rng = random.Random(draw(st.integers(0, 2**32)))
    n = draw(st.integers(0, max_size))
    planted = draw(st.integers(0, n))
    # Flips per planted copy cluster around the threshold so pairs fall on both sides of it.
    threshold = draw(st.one_of(st.integers(0, min(bits, 12)), st.integers(0, bits)))
    hashes = [rng.getrandbits(bits) for _ in range(n - planted)]
    for _ in range(planted):
        source = rng.choice(hashes) if hashes else rng.getrandbits(bits)
        for bit in rng.sample(range(bits), min(bits, rng.randint(0, threshold + 2))):
            source ^= 1 << bit
        hashes.append(source)
    rng.shuffle(hashes)
    return list(dict.fromkeys(hashes)), threshold, bits


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=60, deadline=None)
@given(case=hash_sets())
def test_backend_matches_oracle(backend: str, case: tuple[list[int], int, int]) -> None:
    hashes, threshold, bits = case
    assert self_join(hashes, threshold, bits=bits, backend=backend) == oracle(hashes, threshold)


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=15, deadline=None)
@given(case=hash_sets(max_size=1200))
def test_array_join_matches_oracle(backend: str, case: tuple[list[int], int, int]) -> None:
    """The arrays the region search reads (MIH's own for large sets) hold the oracle's pairs, in order."""
    hashes, threshold, bits = case
    a, b, d = index.self_join_arrays(hashes, threshold, bits=bits, backend=backend)
    assert list(map(Match, a.tolist(), b.tolist(), d.tolist())) == oracle(hashes, threshold)


@settings(max_examples=80, deadline=None)
@given(case=hash_sets(max_size=60), data=st.data())
def test_every_mih_chunking_is_exact(case: tuple[list[int], int, int], data: st.DataObject) -> None:
    """The cost model picks one chunking; all of them must give the oracle's answer."""
    hashes, threshold, bits = case
    low = -(-bits // 64)
    chunks = data.draw(st.integers(low, min(bits, max(low, threshold + 3))))
    plan = mih_plan(len(hashes), threshold, bits, chunks=chunks)
    if sum(index._ball(w, r) for w, r in zip(plan.widths, plan.radii)) > 5000:
        return  # a valid but absurd plan (e.g. one 64-bit chunk at radius 10): too slow to run
    a, b, d = mih_pairs(to_words(hashes, bits), threshold, bits, plan=plan)
    assert list(map(Match, a.tolist(), b.tolist(), d.tolist())) == oracle(hashes, threshold)


def test_mih_batches_and_wide_chunks_agree_with_brute(monkeypatch: pytest.MonkeyPatch) -> None:
    """Larger N with tiny candidate batches, and both lookup paths (dense table, binary search)."""
    rng = random.Random(7)
    base = [rng.getrandbits(64) for _ in range(1500)]
    hashes = base + [h ^ (1 << rng.randrange(64)) ^ (1 << rng.randrange(64)) for h in base[:500]]
    hashes = list(dict.fromkeys(hashes))
    expected = self_join(hashes, 6, backend="brute")
    assert len(expected) >= 400
    monkeypatch.setattr(index, "_PAIR_BATCH", 64)
    for chunks in (2, 3, 4, 7):  # 32-bit chunks use binary search, narrower ones the table
        plan = mih_plan(len(hashes), 6, 64, chunks=chunks)
        a, b, d = mih_pairs(to_words(hashes, 64), 6, 64, plan=plan)
        assert list(map(Match, a.tolist(), b.tolist(), d.tolist())) == expected


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bits", BITS)
def test_edge_cases(backend: str, bits: int) -> None:
    assert self_join([], 0, bits=bits, backend=backend) == []
    assert self_join([5], bits, bits=bits, backend=backend) == []
    top = (1 << bits) - 1
    assert self_join([0, top], bits, bits=bits, backend=backend) == [Match(0, 1, bits)]
    assert self_join([0, top], bits - 1, bits=bits, backend=backend) == []
    assert self_join([0, 1, 3], 0, bits=bits, backend=backend) == []
    assert self_join([3, 1, 0], 1, bits=bits, backend=backend) == [Match(0, 1, 1), Match(1, 2, 1)]
    hashes = [random.Random(bits).getrandbits(bits) for _ in range(12)]
    assert self_join(hashes, bits, bits=bits, backend=backend) == oracle(hashes, bits)


@pytest.mark.parametrize("threshold", [-1, 65])
def test_invalid_threshold_raises(threshold: int) -> None:
    with pytest.raises(ValueError, match="threshold"):
        self_join([1, 2], threshold, bits=64)


def test_unknown_backend_raises() -> None:
    with pytest.raises(ValueError, match="backend"):
        self_join([1, 2], 1, backend="annoy")


def test_auto_prefers_mih_at_scale_and_brute_when_threshold_is_large() -> None:
    assert choose_backend(1_000_000, 8, 64) == "mih"
    assert choose_backend(100_000, 4, 64) == "mih"
    assert choose_backend(5_000, 48, 64) == "brute"


def test_index_module_stays_pure() -> None:
    tree = ast.parse(Path(index.__file__).read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert not imported & {"os", "PIL", "sqlite3", "tqdm"}


def _absurd(n: int, threshold: int, bits: int) -> bool:
    """A valid plan too slow to run in a test (e.g. one 64-bit chunk at radius 10)."""
    plan = mih_plan(max(2, n), threshold, bits)
    return sum(index._ball(w, r) for w, r in zip(plan.widths, plan.radii)) > 5000


@settings(max_examples=80, deadline=None)
@given(case=hash_sets(max_size=80), data=st.data())
def test_a_join_touching_held_hashes_is_the_oracle_restricted_to_them(
    case: tuple[list[int], int, int], data: st.DataObject
) -> None:
    """The region search's join for a new batch against a cached reference: every pair with a
    held hash, none without, in the self-join's order."""
    hashes, threshold, bits = case
    if _absurd(len(hashes), threshold, bits):
        return
    held = [data.draw(st.booleans()) for _ in hashes]
    a, b, d = index.join_touching(hashes, np.array(held, dtype=bool), threshold, bits=bits)
    want = [m for m in oracle(hashes, threshold) if held[m.a] or held[m.b]]
    assert list(map(Match, a.tolist(), b.tolist(), d.tolist())) == want


def test_cross_pairs_in_every_chunking_batch_and_lookup_agree_with_brute(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(11)
    values = list(dict.fromkeys(rng.getrandbits(64) for _ in range(1500)))
    queries = [h ^ (1 << rng.randrange(64)) ^ (1 << rng.randrange(64)) for h in values[:300]]
    queries += [rng.getrandbits(64) for _ in range(100)]
    pairs = itertools.product(enumerate(queries), enumerate(values))
    expected = [(i, j, (q ^ v).bit_count()) for (i, q), (j, v) in pairs if (q ^ v).bit_count() <= 6]
    assert len(expected) >= 300
    monkeypatch.setattr(index, "_PAIR_BATCH", 64)
    for chunks in (2, 3, 4, 7):  # 32-bit chunks use binary search, narrower ones the table
        plan = mih_plan(len(values), 6, 64, chunks=chunks)
        i, j, d = index.cross_pairs(to_words(queries, 64), to_words(values, 64), 6, 64, plan=plan)
        assert list(zip(i.tolist(), j.tolist(), d.tolist())) == expected
    empty = index.cross_pairs(to_words([], 64), to_words(values, 64), 6, 64)
    assert [len(x) for x in empty] == [0, 0, 0]
