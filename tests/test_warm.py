"""A new batch against a warm cache: rows read while workers hash, remembered keepers read
without building clusters, the collector paused; the results stay those of the plain path."""

from __future__ import annotations

import gc
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import imgdup
from imgdup import memo, parallel
from imgdup.cache import HashCache
from imgdup.discover import discover
from imgdup.gcpause import collector_paused
from imgdup.hashing import settings_key
from imgdup.models import FileEntry, HashFailure, HashSettings, ImageRecord
from imgdup.warm import hash_with_cache

from .synth import photo

SETTINGS = HashSettings(regions=True)


def _folder(root: Path, n: int, first: int = 0) -> Path:
    root.mkdir(parents=True)
    for i in range(n):
        photo(300 + first + i).save(root / f"{first + i:02d}.png")
    photo(300 + first).save(root / "copy.png")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg body")
    return root


def _plain(entries: list[FileEntry], store: HashCache) -> list[ImageRecord | HashFailure]:
    """What the pipeline did before: every cached row read, then the misses hashed."""
    cached = store.get_many(entries)
    fresh = iter(parallel.hash_all([e for e, c in zip(entries, cached) if c is None], SETTINGS, jobs=1))
    return [c if c is not None else next(fresh) for c in cached]


def test_rows_read_while_workers_hash_give_get_many_then_hash_all(tmp_path: Path) -> None:
    """Cached files from their rows, the rest hashed (and stored), in entry order; a row stored
    for the file that cannot be read back is hashed too, and not counted as from the cache."""
    ref = _folder(tmp_path / "ref", 5)
    cache = tmp_path / "c.sqlite3"
    with HashCache(cache, settings_key(SETTINGS)) as store:
        entries, _, _ = discover([str(ref)])
        hash_with_cache(entries, SETTINGS, jobs=1, store=store, timeout=60, progress=None)
    new = _folder(tmp_path / "new", 3, first=10)
    entries, _, _ = discover([str(ref), str(new)])
    bad = next(e for e in entries if e.path.endswith("02.png"))
    db = sqlite3.connect(cache)
    with db:
        db.execute("UPDATE files SET hash = 'not hex' WHERE path = ?", (bad.path.encode(),))
    db.close()
    expected_dir = tmp_path / "expected.sqlite3"
    with HashCache(expected_dir, settings_key(SETTINGS)) as store:
        expected = _plain(entries, store)  # a cold cache: every file hashed
    seen: list[tuple[str, int, int]] = []
    with HashCache(cache, settings_key(SETTINGS)) as store:
        got, from_cache = hash_with_cache(
            entries, SETTINGS, jobs=2, store=store, timeout=60, progress=lambda *a: seen.append(a)
        )
        assert [type(r) for r in got] == [type(r) for r in expected]
        assert got == expected
        # the reference's 7 files from the cache (its broken file's failure too), less the unreadable row
        assert from_cache == 7 - 1
        assert store.get_many(entries) == expected  # the new files and the re-hashed one are stored
    # the rows found count as done at once (the unreadable one is known so only once read)
    assert seen[0] == ("hash", 7, len(entries)) and seen[-1][1:] == (len(entries), len(entries))


def test_with_nothing_to_hash_the_rows_are_read_in_this_thread(tmp_path: Path) -> None:
    ref = _folder(tmp_path / "ref", 3)
    cache = tmp_path / "c.sqlite3"
    entries, _, _ = discover([str(ref)])
    with HashCache(cache, settings_key(SETTINGS)) as store:
        first, n_first = hash_with_cache(entries, SETTINGS, jobs=1, store=store, timeout=60, progress=None)
    with HashCache(cache, settings_key(SETTINGS)) as store:
        again, n_again = hash_with_cache(entries, SETTINGS, jobs=1, store=store, timeout=60, progress=None)
    assert (n_first, n_again) == (0, len(entries)) and again == first


def test_remembered_keepers_are_what_the_decoded_clusters_say(tmp_path: Path) -> None:
    """memo.keepers reads a remembered decision as memo.decode does, and refuses what decode
    refuses."""
    root = _folder(tmp_path / "ref", 4)
    photo(301).resize((60, 45)).save(root / "01-small.png")
    result = imgdup.find_duplicates(root, jobs=1)
    scanned = imgdup.pipeline.Clustered(result.clusters, result.low_information, result.records)
    value = memo.encode(scanned)
    records = list(result.records)
    decoded = memo.decode(value, records)
    assert decoded is not None and len(decoded.clusters) == 2
    want = {
        frozenset(m.record.path for m in c.members): (
            c.keep.path,
            c.keep_reason,
            c.diameter,
            tuple((m.record, m.distance, m.action, m.via, m.via_distance, m.linked_by) for m in c.members),
        )
        for c in decoded.clusters
    }
    assert memo.keepers(value, records) == want
    clusters, low = value
    n = len(records)
    broken = [
        [[[*c[:4], [[n, 0, "keep"]]] for c in clusters], low],  # a position out of range
        [[[*c[:4], [[0, 0, "move"]]] for c in clusters], low],  # no such action
        [[[c[0], c[1], 3, *c[3:]] for c in clusters], low],  # a reason that is not text
        [[[c[0], c[1], c[2], "7", c[4]] for c in clusters], low],  # a diameter that is not a number
        [[[*c[:4], [[0, 1.5, "keep"]]] for c in clusters], low],
        [[[*c[:4], [[*m[:3], n, 1, None] for m in c[4]]] for c in clusters], low],  # a "via" out of range
        [[[*c[:4], [[*m[:5], "telepathy"] for m in c[4]]] for c in clusters], low],  # no such link kind
        [[[*c[:4], [m[:3] for m in c[4]]] for c in clusters], low],  # a member of an older shape
        [clusters, [n]],
        [clusters],
        "junk",
        None,
    ]
    for value in broken:
        assert memo.decode(value, records) is None
        assert memo.keepers(value, records) is None


def test_the_collector_is_paused_in_the_block_and_restored_after() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block leaves the outer one's pause
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # paused by the caller: left so
    finally:
        gc.enable()
    with pytest.raises(KeyError), collector_paused():
        raise KeyError("x")
    assert gc.isenabled()


def _collector_on(entry: FileEntry, settings: HashSettings) -> ImageRecord | HashFailure:
    return HashFailure(entry.path, f"collector {'on' if gc.isenabled() else 'off'}")


@pytest.mark.usefixtures("forked_workers")
def test_workers_forked_during_a_paused_scan_collect_their_garbage(tmp_path: Path) -> None:
    """A worker decodes for as long as the scan runs: it does not inherit the pause. (Only a
    forked worker could: one from a fork server, with a thread running, passed whatever the
    worker did, QA pass 28.)"""
    root = _folder(tmp_path / "ref", 1)
    entries, _, _ = discover([str(root)])
    with collector_paused():
        got = parallel.hash_all(entries, SETTINGS, jobs=1, work=_collector_on)
    assert {r.reason for r in got if isinstance(r, HashFailure)} == {"collector on"}


def test_candidates_restricted_to_fresh_images_keep_every_pair_that_holds_one(tmp_path: Path) -> None:
    """The region search's candidate pairs (whole images and halves, for the corner rule) with
    ``fresh``: every full-search candidate that holds a fresh image, whatever the mask."""
    import numpy as np

    from imgdup.regions import _half_candidates, link_item

    root = _folder(tmp_path / "ref", 6)
    for i in range(3):  # copies with a corner covered, re-encoded: their halves are a few bits apart
        img = photo(300 + i)
        img.paste((255, 255, 255), (0, 0, 110, 80))
        img.resize((300, 225)).save(root / f"{i:02d}-corner.jpg", quality=60)
    records = [r for r in imgdup.find_duplicates(root, jobs=1).records if not r.low_information]
    images = [[link_item(r)] for r in records]
    hx, hy = _half_candidates(images, 8, bits=64, backend="auto", join=None)
    full = {(int(min(x, y)), int(max(x, y))) for x, y in zip(hx, hy) if x != y}
    assert len(full) >= 3
    rng = np.random.default_rng(5)
    for _ in range(20):
        fresh = (rng.random(len(images)) < 0.3).tolist()
        gx, gy = _half_candidates(images, 8, bits=64, backend="auto", join=None, fresh=fresh)
        got = {(int(min(x, y)), int(max(x, y))) for x, y in zip(gx, gy) if x != y}
        assert got <= full
        assert {(x, y) for x, y in full if fresh[x] or fresh[y]} <= got


def test_a_worker_replaced_while_the_reader_runs_is_not_forked_from_a_threaded_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader thread starts once the workers are forked; a worker that crashes after that is
    replaced through the fork server (a fork would copy a process with a thread mid-work)."""
    import threading

    from .test_parallel import make_entries, misbehaving

    names = [f"{i:02d}.png" for i in range(12)]
    names.insert(5, "crash.png")
    entries = make_entries(tmp_path, names)
    methods: list[str] = []
    real = parallel._Worker.__init__

    def spy(self: parallel._Worker, ctx: object, *args: object, **kwargs: object) -> None:
        methods.append(ctx.get_start_method())  # type: ignore[attr-defined]
        real(self, ctx, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(parallel._Worker, "__init__", spy)
    stop = threading.Event()
    reader = threading.Thread(target=stop.wait)
    try:
        results = parallel.hash_all(entries, SETTINGS, jobs=1, work=misbehaving, on_started=reader.start)
    finally:
        stop.set()
        reader.join()
    # (the first is forked unless another test left a thread of its own running)
    assert len(methods) == 2 and methods[1] == "forkserver"
    assert [r.path for r in results if isinstance(r, HashFailure)] == [str(tmp_path / "crash.png")]
    assert [r.path for r in results] == [e.path for e in entries]


@pytest.mark.parametrize(("index_backend", "ahead"), [("mih", 100_000), ("auto", 100_000), ("mih", 3)])
def test_a_new_batch_against_a_warm_reference_gives_the_cold_scans_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, index_backend: str, ahead: int
) -> None:
    """End to end through the overlapped cache read, the link hashes converted meanwhile (or
    not: a reference over the cap) and (under MIH) the join around the new files' values: the
    clusters, keepers, reasons, actions, distances and reference-only clusters of a scan without
    any cache."""
    import threading

    from PIL import Image

    from imgdup import index, pipeline, policy
    from imgdup.regions import LinkTable

    from .conftest import encode, picture
    from .test_datasets import _batch, _outcome, _scan

    ref, new = _batch(tmp_path)
    for seed in (11, 14):  # turned 2 degrees, smaller: hashes a few bits from the reference's, not equal
        img = picture(seed, (400, 300)).rotate(2, resample=Image.Resampling.BICUBIC).resize((360, 270))
        (new / f"turned{seed}.jpg").write_bytes(encode(img, quality=50))
    cache = tmp_path / "c.sqlite3"
    _scan(reference=[ref], cache=cache, index=index_backend)
    joined: list[int] = []
    real = index.join_touching
    monkeypatch.setattr(index, "join_touching", lambda *a, **k: (joined.append(1), real(*a, **k))[1])
    converted: list[int] = []
    rows = LinkTable.rows

    def spy(self: LinkTable, items: list[object]) -> object:
        if threading.current_thread().name == "imgdup-cache-rows":
            converted.append(len(items))
        return rows(self, items)  # type: ignore[arg-type]

    monkeypatch.setattr(LinkTable, "rows", spy)
    monkeypatch.setattr(pipeline, "_CONVERT_AHEAD", ahead)
    taken: list[object] = []
    decide = policy._remembered

    def remembered(*args: Any) -> object:
        cluster = decide(*args)
        taken.append(cluster)
        return cluster

    monkeypatch.setattr(policy, "_remembered", remembered)
    incremental = _scan(new, reference=[ref], cache=cache, index=index_backend, jobs=2)
    assert incremental.summary.from_cache == 9  # the reference's files, read while the batch was hashed
    assert bool(joined) == (index_backend == "mih")
    assert converted == ([9] if ahead >= 9 else [])
    monkeypatch.setattr(index, "join_touching", real)
    cold = _scan(new, reference=[ref], index=index_backend)
    assert _outcome(incremental) == _outcome(cold)
    assert [(c.keep.path, c.keep_reason) for c in incremental.clusters] == [
        (c.keep.path, c.keep_reason) for c in cold.clusters
    ]
    assert cold.reference_clusters  # r2 and its smaller copy: reference files only
    for seed, source in ((11, "r1.jpg"), (14, "r4.jpg")):
        (c,) = [c for c in cold.clusters if any(m.record.path.endswith(f"turned{seed}.jpg") for m in c.members)]
        (m,) = [m for m in c.members if m.record.path.endswith(f"turned{seed}.jpg")]
        assert any(k.record.path.endswith(source) for k in c.members)
        assert m.action.value == "remove" and m.distance > 0  # found by the join, not by equal values
    assert imgdup.to_document(incremental)["clusters"] == imgdup.to_document(cold)["clusters"]
    # r2's cluster, which no new file joined, as the reference scan decided it: the same as cold
    assert imgdup.to_document(incremental)["reference_clusters"] == imgdup.to_document(cold)["reference_clusters"]
    assert sum(c is not None for c in taken) == len(cold.reference_clusters)  # not decided again


@pytest.mark.parametrize("width", [8, 64, 65, 256])
def test_the_search_slots_are_the_sorted_distinct_values_and_each_entrys_place(width: int) -> None:
    """regions.distinct_slots, 64-bit values through numpy and wider ones through Python ints: the same
    answer as the definition."""
    import random

    import numpy as np

    from imgdup.regions import distinct_slots

    rng = random.Random(width)
    for n in (0, 1, 2, 7, 500):
        value = [rng.getrandbits(width) for _ in range(n)]
        value += value[: n // 3] + [0] * (n > 3)
        rng.shuffle(value)
        values, slot = distinct_slots(value)
        assert values == sorted(set(value)) and all(type(v) is int for v in values)
        assert slot.dtype == np.int64 and [values[k] for k in slot] == value
        if width > 64:
            continue
        for as_array in (np.array(value, dtype=np.uint64), np.array([v >> 1 for v in value], dtype=np.int64)):
            # 64-bit values as arrays too (the search's entries, the policy's pair keys)
            values, slot = distinct_slots(as_array)
            assert values == sorted(set(as_array.tolist())) and [values[k] for k in slot] == as_array.tolist()
