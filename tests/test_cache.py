"""The SQLite hash cache: hits skip decoding, any change re-hashes, damage never crashes."""

from __future__ import annotations

import functools
import logging
import os
import shutil
import signal
import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import imgdup
from imgdup import parallel
from imgdup.cache import HashCache, _columns, default_cache_path
from imgdup.discover import discover
from imgdup.hashing import hash_entry, settings_key
from imgdup.models import FileEntry, HashFailure, HashSettings, ImageRecord
from imgdup.regions import PackedRegions, pack_regions
from imgdup.warm import hash_with_cache

from .synth import photo


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "imgs"
    root.mkdir()
    for i in range(6):
        photo(100 + i).save(root / f"{i}.png")
    photo(100).save(root / "copy.png")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg body")
    return root


def scan(root: Path, cache: Path | None, **kw: object) -> imgdup.ScanResult:
    return imgdup.find_duplicates([root], threshold=4, jobs=1, cache=cache, **kw)  # type: ignore[arg-type]


def decoded(result: imgdup.ScanResult) -> int:
    return result.summary.files - result.summary.from_cache


def test_warm_run_decodes_nothing_and_gives_the_same_result(folder: Path, tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite3"
    cold = scan(folder, cache)
    assert decoded(cold) == 8
    warm = scan(folder, cache)
    assert decoded(warm) == 0  # the broken file's failure is cached too
    assert imgdup.to_document(warm) == imgdup.to_document(cold)
    assert [f.path for f in warm.failures] == [str(folder / "broken.jpg")]


def test_changed_file_and_other_settings_are_rehashed(folder: Path, tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite3"
    before = scan(folder, cache)
    photo(999).save(folder / "3.png")
    st = (folder / "3.png").stat()
    os.utime(folder / "3.png", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    after = scan(folder, cache)
    assert decoded(after) == 1
    changed = {r.path: r.hash for r in after.records}.items() - {r.path: r.hash for r in before.records}.items()
    assert [p for p, _ in changed] == [str(folder / "3.png")]
    assert decoded(scan(folder, cache, decode="full")) == 8  # another decode mode never reuses draft hashes
    assert decoded(scan(folder, cache, hash_size=16)) == 8
    assert decoded(scan(folder, cache, hash="dhash")) == 8


def test_a_file_rewritten_with_its_size_and_mtime_restored_is_hashed_again(tmp_path: Path) -> None:
    """Same inode, same size, mtime set back (what ``utime`` or a careful tool does): the cache
    gave the old hash and SHA-256, so the file was clustered with what it no longer is and its
    real copy was missed, on every later run. The inode's change time cannot be set back."""
    root = tmp_path / "imgs"
    root.mkdir()
    photo(120).save(root / "a.bmp")
    photo(120).save(root / "a_copy.bmp")
    photo(121).save(root / "b.bmp")  # same size in bytes: BMPs of one size
    cache = tmp_path / "c.sqlite3"
    assert [{Path(m.record.path).name for m in c.members} for c in scan(root, cache).clusters] == [
        {"a.bmp", "a_copy.bmp"}
    ]
    victim = root / "a_copy.bmp"
    st = victim.stat()
    with open(victim, "r+b") as fh:  # in place: same inode
        fh.write((root / "b.bmp").read_bytes())
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (victim.stat().st_ino, victim.stat().st_size, victim.stat().st_mtime_ns) == (
        st.st_ino,
        st.st_size,
        st.st_mtime_ns,
    )
    warm = scan(root, cache)
    assert [{Path(m.record.path).name for m in c.members} for c in warm.clusters] == [{"a_copy.bmp", "b.bmp"}]
    assert decoded(warm) == 1


def test_wide_hashes_round_trip(folder: Path, tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite3"
    cold = scan(folder, cache, hash_size=16, hash="dhash")
    warm = scan(folder, cache, hash_size=16, hash="dhash")
    assert decoded(warm) == 0
    assert [r.hash for r in cold.records] == [r.hash for r in warm.records]
    assert max(r.hash for r in warm.records).bit_length() > 64


def test_interrupted_run_resumes_from_the_cache(tmp_path: Path) -> None:
    root = tmp_path / "many"
    root.mkdir()
    for i in range(40):
        photo(200 + i, (96, 72)).save(root / f"{i:02d}.png")
    cache = tmp_path / "c.sqlite3"

    def interrupt(stage: str, done: int, total: int) -> None:
        if stage == "hash" and done == 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        imgdup.find_duplicates([root], jobs=2, cache=cache, progress=interrupt)
    resumed = scan(root, cache)
    assert resumed.summary.from_cache == 20
    clean = imgdup.find_duplicates([root], threshold=4, jobs=1)
    assert imgdup.to_document(resumed) == imgdup.to_document(clean)


@pytest.mark.parametrize("damage", ["garbage", "foreign-sqlite", "half"])
def test_an_unusable_cache_of_imgdup_is_set_aside_and_another_programs_file_left_alone(
    folder: Path, tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A damaged imgdup cache (its header still says so), or anything unusable at imgdup's own
    default path, is renamed ``*.corrupt-*`` and rebuilt. Another program's database or any
    other file at a path the user gave (a typo in --cache) is left exactly as it is: it was
    renamed away from its program, for a healthy database "corrupt"."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for cache in (tmp_path / "c.sqlite3", Path(default_cache_path())):
        cache.parent.mkdir(parents=True, exist_ok=True)
        if damage == "garbage":
            cache.write_bytes(os.urandom(4096))
        elif damage == "foreign-sqlite":
            with sqlite3.connect(cache) as db:
                db.execute("CREATE TABLE photos (name TEXT)")
        else:
            scan(folder, cache)
            data = cache.read_bytes()
            cache.write_bytes(data[: len(data) // 2] + os.urandom(512))
        before = cache.read_bytes()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="imgdup"):
            result = scan(folder, cache)
        assert result.summary.images == 7
        aside = list(cache.parent.glob(cache.name + ".corrupt-*"))
        if damage == "half" or cache.parent.name == "imgdup":  # imgdup's own: set aside, rebuilt
            assert any("unusable" in r.message for r in caplog.records) and aside
            assert decoded(scan(folder, cache)) == 0
        else:  # the user's path, not imgdup's file: untouched, the run goes on without a cache
            assert not aside and cache.read_bytes() == before
            assert any("not an imgdup cache" in r.message and "left as it is" in r.message for r in caplog.records)
            # said once: "(another program's SQLite database, not an imgdup cache; not an imgdup
            # cache, so it is left as it is)" (QA pass 20)
            assert all(r.message.count("not an imgdup cache") <= 1 for r in caplog.records)
            assert decoded(scan(folder, cache)) == 8


def test_damage_found_mid_run_disables_the_cache_without_crashing(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    entries = [FileEntry(f"/x/{i:05d}.png", "/x", f"{i:05d}.png", 10, 5, i, 1) for i in range(5000)]
    with HashCache(path, "k") as cache:
        cache.put_many([(e, ImageRecord(e, 2, 3, i, "d" * 64)) for i, e in enumerate(entries)])
    data = bytearray(path.read_bytes())
    assert len(data) > 64 * 1024
    data[len(data) // 2 : len(data) // 2 + 16384] = os.urandom(16384)  # header pages stay intact
    path.write_bytes(bytes(data))
    with HashCache(path, "k") as cache:
        found = [cache.get(e) for e in entries]
        cache.put_many([(entries[0], HashFailure(entries[0].path, "x"))])
    assert any(f is None for f in found)
    assert cache.broken
    assert list(tmp_path.glob("c.db.corrupt-*"))


def test_rotation_variants_and_low_information_round_trip(folder: Path, tmp_path: Path) -> None:
    Image.new("RGB", (64, 64), (10, 200, 30)).save(folder / "flat.png")
    cache = tmp_path / "c.sqlite3"
    cold = scan(folder, cache, rotations=True)
    warm = scan(folder, cache, rotations=True)
    assert decoded(warm) == 0
    assert [(r.path, r.variants, r.low_information) for r in warm.records] == [
        (r.path, r.variants, r.low_information) for r in cold.records
    ]
    assert all(len(r.variants) == 7 for r in warm.records)
    assert [r.path for r in warm.records if r.low_information] == [str(folder / "flat.png")]
    assert decoded(scan(folder, cache)) == 9  # without rotations: other settings, other entries


@pytest.mark.parametrize("value", [".cache", "cache/here", ""])
def test_a_relative_xdg_cache_home_is_ignored(value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """XDG_CACHE_HOME=.cache was used as given: run from the dataset, the default cache was made
    inside it (QA pass 36). The XDG spec says a relative path there is invalid and is ignored."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", value)
    assert default_cache_path() == str(tmp_path / "home" / ".cache" / "imgdup" / "hashes.sqlite3")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_path() == str(tmp_path / "xdg" / "imgdup" / "hashes.sqlite3")


def test_entry_must_match_inode_size_mtime_and_ctime(tmp_path: Path) -> None:
    key = settings_key(HashSettings())
    e = FileEntry("/x/a.png", "/x", "a.png", 10, 5, 7, 1, ctime_ns=9)
    rec = ImageRecord(e, 2, 3, (1 << 63) + 5, "ab" * 32)
    with HashCache(tmp_path / "c.db", key) as cache:
        cache.put_many([(e, rec)])
        assert cache.get(e) == rec
        for changed in (e.__class__(**{**e.__dict__, field: value}) for field, value in
                        (("size", 11), ("mtime_ns", 6), ("inode", 8), ("ctime_ns", 10))):  # fmt: skip
            assert cache.get(changed) is None
        unknown = FileEntry("/x/a.png", "/x", "a.png", 10, 5, 7, 1)  # an object store's entry: change time not known
        assert cache.get(unknown) is not None
    with HashCache(tmp_path / "c.db", key + "-other") as other:
        assert other.get(e) is None


def test_get_many_reads_in_chunks_what_get_reads_one_by_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("imgdup.cache._CHUNK", 2)  # five entries: three queries
    entries = [FileEntry(f"/x/{i}.png", "/x", f"{i}.png", 10 + i, 5, 7, i) for i in range(5)]
    stored: list[tuple[FileEntry, ImageRecord | HashFailure]] = [
        (entries[0], ImageRecord(entries[0], 2, 3, 5, "ab" * 32)),
        (entries[1], HashFailure(entries[1].path, "cannot identify image file")),
        (entries[3], ImageRecord(entries[3], 4, 6, 9, "cd" * 32, regions=(3, 4))),
        (entries[4], ImageRecord(entries[4], 4, 6, 9, "ef" * 32)),
    ]
    stale = FileEntry(entries[4].path, "/x", "4.png", 99, 5, 7, 4)  # the file changed since
    asked = [*entries[:4], stale, entries[0]]
    with HashCache(tmp_path / "c.db", "k") as cache:
        cache.put_many(stored)
        got = cache.get_many(asked)
        assert got == [stored[0][1], stored[1][1], None, stored[2][1], None, stored[0][1]]
        assert got == [cache.get(e) for e in asked]
        assert cache.hits == 8  # four hits each way
    with HashCache(tmp_path / "c.db", "other") as other:
        assert other.get_many(entries) == [None] * 5


def test_transient_failures_are_not_cached(tmp_path: Path) -> None:
    e = FileEntry("/x/a.png", "/x", "a.png", 10, 5, 7, 1)
    with HashCache(tmp_path / "c.db", "k") as cache:
        cache.put_many([(e, HashFailure(e.path, "file changed", transient=True))])
        assert cache.get(e) is None
        cache.put_many([(e, HashFailure(e.path, "not an image"))])
        assert cache.get(e) == HashFailure(e.path, "not an image")


def _killed_while_marked(entry: FileEntry, settings: HashSettings) -> ImageRecord | HashFailure:
    """The hash function, in a worker killed from outside (SIGKILL, the out-of-memory killer's
    signal) on "copy.png" while a file "kill" lies beside the scanned folder."""
    if os.path.basename(entry.path) == "copy.png" and (Path(entry.path).parent.parent / "kill").exists():
        os.kill(os.getpid(), signal.SIGKILL)
    return hash_entry(entry, settings)


def test_a_file_whose_worker_was_killed_from_outside_is_hashed_again_next_run(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hashing worker killed from outside (the out-of-memory killer's SIGKILL) was recorded as
    "the decoder crashed (signal 9)" and cached: every later run served that failure, and the
    file's copy was never found until the file changed. Nothing about the file caused it: it is
    not cached now, and the next run hashes it (QA pass 35)."""
    monkeypatch.setattr("imgdup.warm.hash_all", functools.partial(parallel.hash_all, work=_killed_while_marked))
    cache = tmp_path / "c.sqlite3"
    (tmp_path / "kill").touch()
    killed = scan(folder, cache)
    assert [f.path for f in killed.failures] == [str(folder / "broken.jpg"), str(folder / "copy.png")]
    assert "killed from outside" in killed.failures[1].reason and killed.summary.clusters == 0
    (tmp_path / "kill").unlink()
    again = scan(folder, cache)
    assert decoded(again) == 1  # the killed file, and only it
    assert [f.path for f in again.failures] == [str(folder / "broken.jpg")] and again.summary.clusters == 1


def test_a_refusal_under_another_pixel_limit_is_not_served_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decompression-bomb refusal depends on the run's limit, not on the file: cached, it
    stood after the limit was raised as its own message advises (--max-pixels; QA pass 9)."""
    root = tmp_path / "imgs"
    root.mkdir()
    photo(1, (80, 60)).save(root / "a.png")  # 4,800 pixels
    cache = tmp_path / "c.sqlite3"
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    refused = scan(root, cache)
    assert len(refused.failures) == 1 and "--max-pixels" in refused.failures[0].reason
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    raised = scan(root, cache)
    assert not raised.failures and raised.summary.images == 1


def test_a_lower_pixel_limit_refuses_a_cached_file_as_a_cold_run_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file hashed under the default limit, then scanned with a lower --max-pixels: the cold run
    refuses it, the warm one served its cached hash, so a warm --remove 1 acted on files a cold
    run refuses (QA pass 34). The limit applies to every file of the run, cached or not."""
    root = tmp_path / "imgs"
    root.mkdir()
    photo(1, (80, 60)).save(root / "a.png")  # 4,800 pixels
    shutil.copyfile(root / "a.png", root / "b.png")
    cache = tmp_path / "c.sqlite3"
    assert len(scan(root, cache).clusters) == 1
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    cold = scan(root, None)
    warm = scan(root, cache)
    assert [f.reason for f in warm.failures] == [f.reason for f in cold.failures]
    assert len(cold.failures) == 2 and not warm.clusters
    assert "--max-pixels 4800 or more" in warm.failures[0].reason


def test_a_cached_file_with_a_later_page_over_the_pixel_limit_is_refused_as_a_cold_run_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A multi-page TIFF whose second page is over the limit: a cold run refuses it, but once
    hashed under a higher --max-pixels its cached record was served at the lower limit (and a
    warm --remove 1 acted on it): only the first page's size was checked (QA pass 35)."""
    root = tmp_path / "imgs"
    root.mkdir()
    photo(1, (64, 48)).save(root / "a.tiff", "TIFF", save_all=True, append_images=[photo(2, (80, 60))])
    shutil.copyfile(root / "a.tiff", root / "b.tiff")
    cache = tmp_path / "c.sqlite3"
    assert len(scan(root, cache).clusters) == 1
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4000)  # 3,072 pixels, then 4,800: the second page only
    cold = scan(root, None)
    warm = scan(root, cache)
    assert len(cold.failures) == 2 and not warm.clusters
    assert [f.reason for f in warm.failures] == [f.reason for f in cold.failures]


def test_a_cache_whose_columns_differ_from_its_schema_is_rebuilt_in_place(
    folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A column was once added under the same schema version (chroma_spread, schema 10), so a
    cache written just before read "no such column" on every later run: warned each time and
    never used again, though the README says an older imgdup's cache is upgraded in place (QA
    pass 9). The files table is rebuilt when its columns are not the ones this imgdup reads."""
    cache = tmp_path / "c.sqlite3"
    scan(folder, cache)
    with sqlite3.connect(cache) as db:
        db.execute("ALTER TABLE files DROP COLUMN chroma_spread")
    with caplog.at_level(logging.WARNING, logger="imgdup"):
        again = scan(folder, cache)
        warm = scan(folder, cache)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert decoded(again) == 8 and decoded(warm) == 0


def test_two_runs_sharing_one_cache_at_once(tmp_path: Path) -> None:
    import subprocess
    import sys

    cache = tmp_path / "shared.sqlite3"
    roots = []
    for k in range(2):
        root = tmp_path / f"set{k}"
        root.mkdir()
        for i in range(120):
            photo(5000 + 200 * k + i, (40, 30)).save(root / f"{i:03d}.png")
        roots.append(root)
    script = "import sys, imgdup; imgdup.find_duplicates([sys.argv[1]], jobs=1, cache=sys.argv[2])"
    procs = [subprocess.Popen([sys.executable, "-c", script, str(r), str(cache)]) for r in roots]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    for root in roots:
        assert scan(root, cache).summary.from_cache == 120
    assert not list(tmp_path.glob("shared.sqlite3.corrupt-*"))


def test_quality_is_cached_so_a_warm_run_decodes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    root.mkdir()
    smooth = np.asarray(photo(77, (320, 240)), dtype=np.float64)
    grain = np.random.default_rng(7).normal(0, 20, smooth.shape)  # real photos have fine detail
    original = Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8))
    original.save(root / "orig.jpg", quality=90)
    original.resize((480, 360), Image.Resampling.LANCZOS).save(root / "upscaled.jpg", quality=90)
    cache = tmp_path / "c.sqlite3"
    cold = scan(root, cache)
    assert [c.keep.path for c in cold.clusters] == [str(root / "orig.jpg")]
    measured = {r.path: r.quality for r in cold.records if r.quality is not None}
    assert measured and measured[str(root / "upscaled.jpg")].upscaled
    with HashCache(cache, settings_key(cold.settings.hash)) as store:
        entries = {r.path: r.entry for r in cold.records}
        assert {p: store.get(e).quality for p, e in entries.items() if p in measured} == measured  # type: ignore[union-attr]
    warm = scan(root, cache)
    assert imgdup.to_document(warm) == imgdup.to_document(cold)


def scan8(root: Path, cache: Path | None) -> imgdup.ScanResult:
    return imgdup.find_duplicates([root], threshold=8, jobs=1, cache=cache)


def _clusters(result: imgdup.ScanResult) -> list[tuple[str, tuple[tuple[str, str, int], ...], int]]:
    return [(c.keep.path, tuple((m.record.path, m.action.value, m.distance) for m in c.members), c.diameter)
            for c in result.clusters]  # fmt: skip


def test_a_rerun_over_unchanged_files_reuses_the_search_and_any_change_searches_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache remembers a search's groups for one exact set of hashes: a re-run over the same
    files (scan, then --remove 1) does not search again and finds the same clusters; a changed
    file, an added one or another threshold is a new search."""
    from imgdup import pipeline

    root = tmp_path / "imgs"
    root.mkdir()
    for i in range(5):
        img = photo(120 + i)
        img.save(root / f"{i}.png")
        img.resize((img.width // 2, img.height // 2)).save(root / f"{i}-half.jpg", quality=80)
    cache = tmp_path / "c.sqlite3"
    first = scan8(root, cache)
    searched: list[int] = []
    real = pipeline.region_links

    def counting(*args: object, **kwargs: object) -> object:
        searched.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "region_links", counting)
    again = scan8(root, cache)
    assert not searched and _clusters(again) == _clusters(first) and len(first.clusters) == 5
    photo(130).save(root / "new.png")  # another file: another set of hashes
    added = scan8(root, cache)
    assert len(searched) == 1
    assert _clusters(added) == _clusters(scan8(root, None))  # (no cache: a search of its own)
    scan(root, cache)  # another threshold
    assert len(searched) == 3
    photo(131).save(root / "0.png")  # a changed picture under an old name
    changed = scan8(root, cache)
    assert len(searched) == 4 and len(changed.clusters) == 4
    assert _clusters(scan8(root, cache)) == _clusters(changed) and len(searched) == 4


def _measured_set(root: Path) -> None:
    """Three pictures, each with a half-size copy and a low-quality one (the quality rule
    measures members to choose), and one picture alone."""
    root.mkdir()
    for i in range(3):
        img = photo(140 + i)
        img.save(root / f"{i}.png")
        img.resize((img.width // 2, img.height // 2)).save(root / f"{i}-half.jpg", quality=90)
        img.save(root / f"{i}-q30.jpg", quality=30)
    photo(150).save(root / "alone.png")


def test_a_rerun_over_unchanged_files_reuses_the_decisions_and_any_input_change_decides_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache remembers a scan's clusters, keepers, actions and reasons under everything they
    depend on: the first warm run (right after the cold one that measured quality) neither
    searches, measures nor decides, and gives the same report; another keep order, threshold or
    reference folder, or a changed file, decides again (and correctly)."""
    from imgdup import pipeline

    root = tmp_path / "imgs"
    _measured_set(root)
    cache = tmp_path / "c.sqlite3"
    cold = scan8(root, cache)
    assert len(cold.clusters) == 3
    calls: list[str] = []
    for name in ("decide_all", "_with_quality", "region_links"):
        real = getattr(pipeline, name)
        monkeypatch.setattr(pipeline, name, lambda *a, _n=name, _f=real, **k: (calls.append(_n), _f(*a, **k))[1])
    warm = scan8(root, cache)
    assert calls == []
    assert imgdup.to_document(warm) == imgdup.to_document(cold)

    by_pixels = imgdup.find_duplicates([root], threshold=8, jobs=1, cache=cache, keep="pixels,path")
    assert "decide_all" in calls and region_free(calls) == ["decide_all"]
    fresh = imgdup.find_duplicates([root], threshold=8, jobs=1, keep="pixels,path")
    assert [c.keep.path for c in by_pixels.clusters] == [c.keep.path for c in fresh.clusters]
    assert [c.keep.path for c in by_pixels.clusters] != [c.keep.path for c in cold.clusters]  # not the memo's
    calls.clear()
    imgdup.find_duplicates([root], threshold=7, jobs=1, cache=cache)
    assert "decide_all" in calls
    calls.clear()
    (root / "ref").mkdir()
    os.replace(root / "0-q30.jpg", root / "ref" / "0-q30.jpg")
    with_ref = imgdup.find_duplicates([root], reference=[root / "ref"], threshold=8, jobs=1, cache=cache)
    assert "decide_all" in calls
    assert with_ref.clusters[0].keep.path == str(root / "ref" / "0-q30.jpg")  # a reference file is kept
    calls.clear()
    photo(151).save(root / "alone.png")  # a changed file under an old name
    changed = scan8(root, cache)
    assert "decide_all" in calls
    assert _clusters(changed) == _clusters(scan8(root, None))


def region_free(calls: list[str]) -> list[str]:
    """The calls other than the search (a search memo of its own may or may not hit)."""
    return [c for c in calls if c != "region_links"]


def test_a_file_touched_since_is_decided_again_under_the_oldest_rule(tmp_path: Path) -> None:
    """--keep oldest decides on mtimes, which the remembered decision's key did not hold: after
    a touch the warm run kept the old keeper ("oldest modification time", now false) and
    --remove 1 moved the oldest file away (QA pass 4)."""
    root = tmp_path / "d"
    root.mkdir()
    photo(130).save(root / "a.jpg", quality=90)
    photo(130).save(root / "b.jpg", quality=80)
    os.utime(root / "a.jpg", ns=(1_580_000_000 * 10**9,) * 2)  # 2020
    os.utime(root / "b.jpg", ns=(1_550_000_000 * 10**9,) * 2)  # 2019
    cache = tmp_path / "c.sqlite3"
    assert Path(scan(root, cache, keep="oldest").clusters[0].keep.path).name == "b.jpg"
    os.utime(root / "a.jpg", ns=(1_260_000_000 * 10**9,) * 2)  # 2010: now the oldest
    warm = scan(root, cache, keep="oldest")
    assert Path(warm.clusters[0].keep.path).name == "a.jpg"
    assert imgdup.to_document(warm)["clusters"] == imgdup.to_document(scan(root, None, keep="oldest"))["clusters"]


def test_decisions_made_without_a_measurement_are_not_remembered(tmp_path: Path) -> None:
    """A quality measurement that failed (a timeout on a loaded machine) is tried again by the
    next run: the decisions made without it are not remembered."""
    from imgdup.pipeline import cluster_records
    from imgdup.policy import DEFAULT_KEEP

    root = tmp_path / "imgs"
    _measured_set(root)
    records = imgdup.find_duplicates([root], threshold=8, jobs=1, keep="pixels,path").records
    settings = HashSettings(regions=True)
    asked: list[int] = []

    def failing(entries: list[FileEntry], *_: object) -> list[HashFailure]:
        asked.append(len(entries))
        return [HashFailure(e.path, "decoding took longer than 1 s", transient=True) for e in entries]

    with HashCache(tmp_path / "c.sqlite3", settings_key(settings)) as store:
        store.put_many([(r.entry, r) for r in records])
        for _ in range(2):
            cluster_records(records, settings, threshold=8, keep=DEFAULT_KEEP, measure=failing, searches=store)
        assert len(asked) >= 2 and asked.count(asked[0]) >= 2  # the second run measured again


def test_rows_read_by_folder_ranges_are_exactly_those_of_the_files_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows are read a folder's range at a time: a range holds other folders' rows too (a
    sibling whose name extends this one's, a sub-folder, another tree) and files not asked for;
    exactly the asked files' rows come back, in their order, through every way of reading."""
    monkeypatch.setattr("imgdup.cache._RANGE_AT_LEAST", 3)
    names = ["/d/a/1.png", "/d/a/2.png", "/d/a/3.png", "/d/a/sub/4.png", "/d/a-b/5.png", "/d/a0/6.png",
             "/d/ab/7.png", "/e/8.png", "/9.png", "rel/10.png", "11.png"]  # fmt: skip
    names += [f"/d/big/{i}.png" for i in range(40)]
    entries = [FileEntry(n, "/", n, 10, 5, 7, i) for i, n in enumerate(names)]
    records = {e.path: ImageRecord(e, 2, 3, i, f"{i:064x}") for i, e in enumerate(entries)}
    with HashCache(tmp_path / "c.db", "k") as cache:
        cache.put_many([(e, records[e.path]) for e in entries])
        for asked in (
            entries,  # every file
            [e for e in entries if e.path.startswith(("/d/a/", "/d/a-b/"))],  # a folder, its sub-folder, a sibling
            entries[-3:] + entries[:2],  # three of a big folder's 40 (the range is given up), out of order
            [e for e in entries if "/" not in e.path.lstrip("/") or not e.path.startswith("/")],
        ):
            assert cache.get_many(asked) == [records[e.path] for e in asked]
            assert cache.get_many(asked) == [cache.get(e) for e in asked]
    with HashCache(tmp_path / "c.db", "other") as other:
        assert other.get_many(entries) == [None] * len(entries)


def test_rows_read_apart_are_the_rows_and_a_failed_read_apart_only_hashes_again(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While workers hash, the cached rows are read through a second, read-only connection: the
    same rows as the main one reads. If that read fails, those files are hashed again (misses),
    the result is the same and the cache stays in use."""
    cache = tmp_path / "c.sqlite3"
    cold = scan(folder, cache)
    key = settings_key(cold.settings.hash)
    entries = [r.entry for r in cold.records]
    with HashCache(cache, key) as store:
        rows = store.rows(entries)
        assert all(rows) and store.rows_apart(entries) == rows
        assert store.stored(entries) == [True] * len(entries)
    photo(7).save(folder / "new.png")  # something to hash, so the rows are read while it is
    real = sqlite3.connect

    def no_second_connection(target: str, *args: object, **kw: object) -> sqlite3.Connection:
        if str(target).startswith("file:"):
            raise sqlite3.OperationalError("unable to open database file")
        return real(target, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlite3, "connect", no_second_connection)
    again = scan(folder, cache)
    assert decoded(again) == 9  # the new file, and the cached ones that could not be read apart
    monkeypatch.setattr(sqlite3, "connect", real)
    warm = scan(folder, cache)
    assert decoded(warm) == 0  # the cache was kept, and holds the new file too
    assert imgdup.to_document(warm)["clusters"] == imgdup.to_document(again)["clusters"]


@pytest.mark.parametrize("name", ["c%20d?x#y z.db", os.fsdecode(b"c\xff.db"), "c:d.db"])
@pytest.mark.parametrize("where", ["abs", "double-slash", "relative"])
def test_rows_read_apart_at_any_cache_path_are_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, where: str
) -> None:
    """The second connection names the cache as a URI: a path with URI characters, bytes that
    are not UTF-8, a relative one, or one that starts with two slashes (POSIX keeps them:
    ``file://tmp/...`` would name a host) reads the same rows, not misses hashed again."""
    entry = FileEntry(str(tmp_path / "a.png"), str(tmp_path), "a.png", 10, 20, 30, 40)
    record = ImageRecord(entry, 1, 1, 5, "e" * 64, regions=pack_regions(tuple(range(1, 8)), 64))
    monkeypatch.chdir(tmp_path)
    path = {"abs": str(tmp_path / name), "double-slash": "/" + str(tmp_path / name), "relative": name}[where]
    with HashCache(path, "k") as store:
        store.put_many([(entry, record)])
        rows = store.rows([entry])
        assert rows[0] is not None and store.rows_apart([entry]) == rows


def test_a_decision_key_made_from_remembered_parts_is_the_key_made_anew(folder: Path, tmp_path: Path) -> None:
    """Each record's part of a decision key is made once per scan and reused: the keys are the
    ones made from scratch, for all the records and for any subset, and a record that changed
    (another object) gets a part of its own."""
    from imgdup import memo

    records = list(scan(folder, tmp_path / "c.sqlite3").records)
    key = functools.partial(memo.decision_key, settings_key="k", threshold=4, keep=("quality", "path"),
                            protected=lambda r: r.path.endswith("3.png"))  # fmt: skip
    lines: dict[int, tuple[ImageRecord, str]] = {}
    assert key(records, lines=lines) == key(records) and len(lines) == len(records)
    assert key(records[2:5], lines=lines) == key(records[2:5])
    touched = replace(records[3], entry=replace(records[3].entry, mtime_ns=records[3].entry.mtime_ns + 1))
    changed = [*records[:3], touched, *records[4:]]
    assert key(changed, lines=lines) == key(changed) != key(records)


def test_hash_values_of_any_width_and_every_trait_round_trip(tmp_path: Path) -> None:
    """Regions mix 64-bit and 256-bit hashes (and a value may have leading zero bits); the cache
    stores them packed and must give back exactly the same values, traits and quality."""
    from imgdup.models import Quality, Traits

    entry = FileEntry(str(tmp_path / "a.png"), str(tmp_path), "a.png", 10, 20, 30, 40)
    rng = np.random.default_rng(5)
    widths = [64] * 7 + [256] * 8 + [3, 64, 65, 300, 1]
    regions = tuple(int.from_bytes(rng.bytes(40), "big") >> (320 - w) for w in widths)
    rec = ImageRecord(entry, 640, 480, (1 << 64) - 1, "d" * 64, variants=(5, 1 << 63), regions=regions,
                      frames=3, frame_hashes=(7, 9), low_information=True, largest_frame=4_800_000,
                      quality=Quality(True, "p" * 64, (0.5, 1e-300, 3.25), 75, False),
                      traits=Traits(False, 12.375, 92, True, bytes(range(256))))  # fmt: skip
    bare = ImageRecord(entry, 1, 1, 0, "e" * 64)
    packed = replace(rec, regions=pack_regions(regions[:15] + (2**255, 7) * 4 + regions[:8] + (1 << 500,), 64))
    assert isinstance(packed.regions, PackedRegions)  # as the hasher makes them: stored and read back as one buffer
    for r in (rec, bare, packed):
        with HashCache(tmp_path / "c.sqlite3", "k") as store:
            store.put_many([(entry, r)])
        with HashCache(tmp_path / "c.sqlite3", "k") as store:
            assert store.get_many([entry]) == [r]
            assert type(store.get_many([entry])[0].regions) is type(r.regions)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "damage",
    [
        "regions=x'0409'",  # a run of 4-word values, cut short
        "regions=x'0020010401'",  # packed regions (32 values) with one byte of their 796
        "regions=x'00'",  # a packed header cut short
        "regions=x'00050000'",  # packed regions of 0-byte hashes (5 values in no bytes): no layout
        "colourfulness='much'",
        "thumb='not bytes'",
        "jpeg_quality='q75'",
        "spectrum='1,2,3'",
        "pixels_sha256=x'00'",
        "width='wide'",
    ],
)
def test_a_row_that_cannot_be_read_back_is_a_miss(tmp_path: Path, damage: str) -> None:
    """A row edited by hand or by another program is a miss (the file is hashed again), never a
    crash later in the keep policy."""
    from imgdup.models import Quality, Traits

    entry = FileEntry(str(tmp_path / "a.png"), str(tmp_path), "a.png", 10, 20, 30, 40)
    path = tmp_path / "c.sqlite3"
    record = ImageRecord(entry, 1, 1, 0, "e" * 64, regions=(1, 2), quality=Quality(False, "p", (1.0,), 75),
                         traits=Traits(True, 2.5, 75, False, b"\x01" * 256))  # fmt: skip
    with HashCache(path, "k") as store:
        store.put_many([(entry, record)])
        assert store.get_many([entry]) == [record]
    with sqlite3.connect(path) as db:
        db.execute(f"UPDATE files SET {damage}")
    db.close()
    with HashCache(path, "k") as store:
        assert store.get_many([entry]) == [None] and store.hits == 0


@pytest.mark.parametrize(
    "value",
    [None, 3, "x", [[], [5]], [[[0, 9, "r", 0, []]], []], [[[0, 0, "r", 0, [[0, 0, "delete"]]]], []],
     [[[0, 0, 1, 0, [[0, 0, "keep"]]]], []], [[[0, 0, "r", 0.5, [[0, 0, "keep"]]]], []], [[[0, 0, "r", 0]], []],
     [[[0, 0, "r", 0, [[0, 0, "keep", None, "3", None]]]], []], [[[0, 0, "r", 0, [[0, 0, "keep", 7, 3, None]]]], []],
     [[[0, 0, "r", 0, [[0, 0, "keep", None, None, "a guess"]]]], []]],
)  # fmt: skip
def test_a_remembered_decision_that_does_not_fit_the_records_is_ignored(value: object) -> None:
    """A memo is read back from a file anyone could have edited: a value that is not exactly
    the shape :func:`imgdup.memo.encode` writes, over these records, is a miss, not a crash."""
    from imgdup import memo

    entry = FileEntry("/x/a.png", "/x", "a.png", 10, 20, 30, 40)
    records = [ImageRecord(entry, 1, 1, 0, "e" * 64)]
    assert memo.decode(value, records) is None
    good = memo.decode([[[0, 0, "r", 0, [[0, 0, "keep", None, None, None]]]], []], records)
    assert good is not None and good.clusters[0].keep is records[0]


def test_cached_hashes_are_not_served_after_numpy_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    """phash, the regions and the keep traits are numpy arithmetic (float products, FFTs): an
    upgrade may move a bit, so the cache key names numpy's version as it names Pillow's (QA pass 9)."""
    before = settings_key(HashSettings())
    monkeypatch.setattr(np, "__version__", "0.0.0-other")
    assert settings_key(HashSettings()) != before


def test_cached_hashes_are_not_served_after_pillow_heif_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    """pillow-heif decodes HEIC/HEIF files (an upgrade may change their pixels): its version is
    part of the cache key when it is installed, read as package metadata reads it."""
    from importlib.metadata import PackageNotFoundError, version

    from imgdup import hashing

    try:
        installed: str | None = version("pillow-heif")
    except PackageNotFoundError:
        installed = None
    hashing._heif_version.cache_clear()
    assert hashing._heif_version() == installed
    before = settings_key(HashSettings())
    monkeypatch.setattr(hashing, "_heif_version", lambda: "0.0.0-other")
    assert settings_key(HashSettings()) != before
    monkeypatch.setattr(hashing, "_heif_version", lambda: None)
    assert "heif" not in settings_key(HashSettings())


def test_rows_of_an_older_hash_version_are_dropped_once_a_newer_one_opens_the_cache(tmp_path: Path) -> None:
    """Every hash version is in the key, so an upgrade that changed the hashes left each file's
    old row behind for good (~4.6 KB a file). Other settings of the version, and rows of a newer
    version (an upgraded install sharing the cache), are kept."""
    current = settings_key(HashSettings())
    version = next(p for p in current.split("/") if p[:1] == "v" and p[1:].isdigit())
    older = current.replace(f"/{version}/", "/v1/")
    newer = current.replace(f"/{version}/", f"/v{int(version[1:]) + 1}/")
    other = settings_key(HashSettings(hash_size=16))  # this version, another setting
    e = FileEntry("/x/a.png", "/x", "a.png", 10, 5, 7, 1, ctime_ns=9)
    rec = ImageRecord(e, 2, 3, 5, "ab" * 32)
    path = tmp_path / "c.sqlite3"

    def write(key: str) -> set[str]:
        with HashCache(path, key) as cache:
            cache.put_many([(e, rec)])
        with sqlite3.connect(path) as db:
            return {k for (k,) in db.execute("SELECT settings FROM files")}

    assert write(older) == {older}
    assert write(other) == {other}  # this version met the cache: the older rows are gone
    assert write(current) == {other, current}
    assert write(newer) == {newer}  # a newer install drops this version's rows in turn
    assert write(current) == {newer, current}  # and this one, opening after it, drops nothing


def _bytes_used(path: Path) -> int:
    """A cache file's size in pages, the WAL's pages included."""
    with sqlite3.connect(path) as db:
        return int(db.execute("PRAGMA page_count").fetchone()[0] * db.execute("PRAGMA page_size").fetchone()[0])


def test_a_file_with_regions_takes_one_row_not_a_page_and_an_overflow_page(tmp_path: Path) -> None:
    """A row with region hashes (~1.3 KB) did not fit a 4 KB page's share of a WITHOUT ROWID
    table (~1 KB): every row spilled into an overflow page of its own, 4.6 KB a file on disk and a
    second page read for every row a warm run reads (19,646 files: 92 MB, and 0.14 s against
    0.08 s for the rows, 0.07 s against 0.015 s for the versions alone). A new cache has pages
    large enough for the row."""
    src = tmp_path / "one"
    src.mkdir()
    photo(7).save(src / "a.png")
    settings = HashSettings(regions=True)  # as the default scan hashes (phash)
    with HashCache(tmp_path / "scan.sqlite3", settings_key(settings)) as warm:
        (record,), _ = hash_with_cache(discover([src])[0], settings, jobs=1, store=warm, timeout=30, progress=None)
    with sqlite3.connect(tmp_path / "scan.sqlite3") as db:  # a row of the usual size
        assert db.execute("SELECT length(regions) + length(thumb) FROM files").fetchone()[0] > 900
    assert isinstance(record, ImageRecord)
    path = tmp_path / "c.sqlite3"

    with HashCache(path, "k") as cache:
        cache.put_many([])
        empty = _bytes_used(path)
        entries = [FileEntry(f"/d/{i:04d}.png", "/d", f"{i:04d}.png", 10, 5, 7, i) for i in range(400)]
        cache.put_many([(e, replace(record, entry=e)) for e in entries])
        per_file = (_bytes_used(path) - empty) / len(entries)
        assert cache.get_many(entries[:3]) == [replace(record, entry=e) for e in entries[:3]]
    assert per_file < 2_000, f"{per_file:.0f} bytes a file"


def test_a_measured_file_takes_its_row_not_an_overflow_page_of_its_own(tmp_path: Path) -> None:
    """A file measured by the keep policy adds its block signatures (~4.2 KB) and a repeat
    profile (~1 KB) to its row, ~6.5 KB, over a 16 KB page's share of a WITHOUT ROWID table
    (~4 KB): each spilled into a 16 KB overflow page of its own, mostly empty (350 files, 149
    measured: 3.19 MB, against 2.28 MB with 4 KB pages; QA pass 36). A measured row, the
    largest signature's too (~8.5 KB when it does not compress), fits a new cache's page."""
    src = tmp_path / "two"
    src.mkdir()
    photo(8).save(src / "a.png")
    photo(8).save(src / "b.jpg", quality=90)
    scanned = tmp_path / "scan.sqlite3"
    imgdup.find_duplicates([src], jobs=1, cache=scanned)
    with sqlite3.connect(scanned) as db:
        (key,) = db.execute("SELECT settings FROM files WHERE blocks IS NOT NULL LIMIT 1").fetchone()
    with HashCache(scanned, key) as store:
        entry = next(e for e in discover([src])[0] if e.path.endswith("b.jpg"))
        (got,) = store.get_many([entry])
        assert isinstance(got, ImageRecord) and got.quality is not None and got.regions
        blocks = store.get_blocks([got])[got.path]
    assert len(blocks) > 2_000 and len(got.quality.repeats) > 900  # a measured row: over 4 KB
    record = replace(got, quality=replace(got.quality, blocks=blocks))
    noise = np.random.default_rng(8).integers(0, 256, 8_600, dtype=np.uint8).tobytes()
    largest = replace(record, quality=replace(got.quality, blocks=noise))
    path = tmp_path / "c.sqlite3"

    with HashCache(path, "k") as cache:
        cache.put_many([])
        empty = _bytes_used(path)
        entries = [FileEntry(f"/d/{i:04d}.jpg", "/d", f"{i:04d}.jpg", 10, 5, 7, i) for i in range(200)]
        rows = [replace(largest if i % 8 == 0 else record, entry=e) for i, e in enumerate(entries)]
        cache.put_many(list(zip(entries, rows)))
        per_file = (_bytes_used(path) - empty) / len(entries)
        assert cache.get_blocks(rows[:2]) == {rows[0].path: noise, rows[1].path: blocks}
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT avg(" + " + ".join(f"ifnull(length({c}), 8)" for c in _columns(db)) + ") FROM files")
        stored = row.fetchone()[0]
    assert per_file < 1.25 * stored, f"{per_file:.0f} bytes a file for rows of {stored:.0f}"


def test_a_cache_made_with_smaller_pages_is_read_and_written_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Caches made before the page size grew (4 KB, SQLite's default) keep their pages and rows."""
    path = tmp_path / "c.sqlite3"
    entries = [FileEntry(f"/d/{i}.png", "/d", f"{i}.png", 10, 5, 7, i) for i in range(3)]
    records = [ImageRecord(e, 2, 3, i, f"{i:064x}") for i, e in enumerate(entries)]
    monkeypatch.setattr("imgdup.cache._PAGE_SIZE", 4096)
    with HashCache(path, "k") as old:
        old.put_many(list(zip(entries[:2], records[:2])))
    monkeypatch.undo()
    with HashCache(path, "k") as cache:
        assert cache.disabled is None
        cache.put_many([(entries[2], records[2])])
        assert cache.get_many(entries) == records
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA page_size").fetchone()[0] == 4096


def test_a_pixel_twin_added_later_gets_the_keeper_a_cold_run_gets(dogs: Path, tmp_path: Path) -> None:
    """A JPEG measured (and cached) with no same-size lossless sibling has its pixel digest taken
    from its luminance; once a PNG of its exact pixels joined the folder, the warm run compared
    that digest with the PNG's colour one, missed the twin, and kept the PNG ("lossless copy")
    where a cold run keeps the smaller JPEG ("smallest of the files with identical pixels"): a
    different file removed (QA pass 33)."""
    root = tmp_path / "d"
    root.mkdir()
    with Image.open(sorted(dogs.iterdir())[5]) as im:
        im.convert("RGB").save(root / "a.jpg", quality=92)
        im.convert("RGB").save(root / "a_q40.jpg", quality=40)
    cache = tmp_path / "cache.sqlite3"
    scan(root, cache)
    with Image.open(root / "a.jpg") as jpeg:
        jpeg.convert("RGB").save(root / "a_twin.png")
    cold = imgdup.find_duplicates([root], threshold=4, jobs=1)
    warm = scan(root, cache)
    assert cold.clusters[0].keep.path.endswith("a.jpg")  # the premise
    assert [(c.keep.path, c.keep_reason, [m.action for m in c.members]) for c in warm.clusters] == [
        (c.keep.path, c.keep_reason, [m.action for m in c.members]) for c in cold.clusters
    ]


def test_one_row_of_undecodable_text_is_one_miss_not_the_whole_cache(folder: Path, tmp_path: Path) -> None:
    """A text column holding bytes that are not UTF-8 (bit rot in one row) made every read of the
    cache fail ("Could not decode to UTF-8 column 'digest'"): each later run warned, with the
    row's bytes in the message, and read nothing from the cache, for good (QA pass 33). The row
    is a miss: its file is hashed again and its row written anew."""
    cache = tmp_path / "cache.sqlite3"
    first = scan(folder, cache)
    db = sqlite3.connect(cache)
    (path,) = db.execute("SELECT path FROM files LIMIT 1").fetchone()
    db.execute("UPDATE files SET digest = CAST(x'616263ff0f1efe' AS TEXT) WHERE path = ?", (path,))
    db.commit()
    db.close()
    again = scan(folder, cache)
    assert decoded(again) == 1
    assert imgdup.to_document(again)["clusters"] == imgdup.to_document(first)["clusters"]
    assert decoded(scan(folder, cache)) == 0  # the row was written again


def test_remembered_searches_and_decisions_are_of_this_code_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A fix to the keep policy that no one marked (memo.DECISIONS, HASH_VERSION) was served the
    decision the code before it had remembered: every commit is version 0.1.0 (QA pass 34, against
    d5faa55). The memos are keyed on a digest of the code that searches and decides."""
    from imgdup import memo

    root = tmp_path / "imgs"
    root.mkdir()
    photo(3, (120, 90)).save(root / "a.png")
    photo(3, (120, 90)).save(root / "b.jpg", quality=80)
    cache = tmp_path / "c.sqlite3"
    caplog.set_level(logging.INFO, logger="imgdup")
    scan(root, cache)
    caplog.clear()
    scan(root, cache)
    assert "decisions remembered" in caplog.text  # premise: an unchanged re-run remembers
    fixed = memo.code() + "+a fix"
    monkeypatch.setattr(memo, "code", lambda: fixed)
    caplog.clear()
    scan(root, cache)
    assert "decisions remembered" not in caplog.text
