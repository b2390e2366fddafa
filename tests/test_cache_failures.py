"""A cache that cannot be opened or written never stops a scan and is never thrown away.

The rule: warn once and run without the cache; only a file proven not to be an imgdup cache
(not SQLite, another program's database, or damage SQLite itself reports) is set aside.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import imgdup
from imgdup.cache import SCHEMA, HashCache
from imgdup.hashing import settings_key
from imgdup.models import HashSettings

from .synth import photo

KEY = settings_key(HashSettings())


def make_tree(root: Path, count: int, seed: int) -> Path:
    root.mkdir(parents=True)
    for i in range(count):
        photo(seed + i, (40, 30)).save(root / f"{i:03d}.png")
    photo(seed, (40, 30)).save(root / "copy.png")
    return root


def scan(root: Path, cache: Path, **kw: object) -> imgdup.ScanResult:
    return imgdup.find_duplicates([root], threshold=4, jobs=1, cache=cache, **kw)  # type: ignore[arg-type]


def cache_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "cache" in r.getMessage()]


def set_aside(folder: Path) -> list[Path]:
    return list(folder.glob("*.corrupt-*"))


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small tmpfs at ``path`` (root only; the test skips elsewhere)."""
    path.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)]).returncode
    ):
        pytest.skip("cannot mount a small tmpfs here (needs root and mount rights)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)


def test_new_cache_in_a_read_only_folder_warns_once_and_scans(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = make_tree(tmp_path / "data", 5, 10)
    with tmpfs(tmp_path / "ro", "1m") as folder:
        remount(folder, "ro")
        with caplog.at_level(logging.WARNING, logger="imgdup"):
            result = scan(root, folder / "sub" / "c.sqlite3")
            result2 = scan(root, folder / "c.sqlite3")
    assert result.summary.images == result2.summary.images == 6 and result.summary.clusters == 1
    assert len(cache_warnings(caplog)) == 2  # once per run
    assert "without" in cache_warnings(caplog)[0]


def test_a_cache_under_a_file_says_that_file_is_no_folder(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``--cache notes.txt/c.db``: the warning said only "(File exists)" (QA pass 21)."""
    root = make_tree(tmp_path / "data", 2, 10)
    (tmp_path / "notes.txt").write_text("mine\n")
    for cache in (tmp_path / "notes.txt" / "c.db", tmp_path / "notes.txt" / "sub" / "c.db"):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="imgdup"):
            result = scan(root, cache)
        assert result.summary.clusters == 1
        (warning,) = cache_warnings(caplog)
        assert warning == (
            f"cannot use the hash cache {cache} ({tmp_path / 'notes.txt'} is a file, not a folder); "
            "continuing without it"
        )
    assert (tmp_path / "notes.txt").read_text() == "mine\n"


def test_a_cache_path_that_is_a_folder_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``--cache some/folder``: the warning said "unable to open database file" (QA pass 33)."""
    root = make_tree(tmp_path / "data", 2, 10)
    cache = tmp_path / "caches"
    cache.mkdir()
    with caplog.at_level(logging.WARNING, logger="imgdup"):
        assert scan(root, cache).summary.clusters == 1
    assert cache_warnings(caplog) == [
        f"cannot use the hash cache {cache} (it is a folder: give the path of a file in it, such as"
        f" {cache / 'hashes.sqlite3'}); continuing without it"
    ]
    assert list(cache.iterdir()) == []


def test_healthy_cache_in_a_read_only_folder_is_left_alone(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = make_tree(tmp_path / "data", 5, 20)
    with tmpfs(tmp_path / "fs", "2m") as folder:
        cache = folder / "c.sqlite3"
        scan(root, cache)
        before = cache.read_bytes()
        remount(folder, "ro")
        with caplog.at_level(logging.WARNING, logger="imgdup"):
            result = scan(root, cache)
        assert result.summary.images == 6
        assert len(cache_warnings(caplog)) == 1
        assert not set_aside(folder) and cache.read_bytes() == before
        remount(folder, "rw")
        assert scan(root, cache).summary.from_cache == 6


def test_full_disk_mid_run_keeps_the_healthy_cache(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    first = make_tree(tmp_path / "first", 5, 30)
    second = make_tree(tmp_path / "second", 300, 400)
    with tmpfs(tmp_path / "fs", "1m") as folder:
        cache = folder / "c.sqlite3"
        scan(first, cache)
        filled = False

        def fill_the_disk(stage: str, done: int, total: int) -> None:
            nonlocal filled
            if not filled:
                filled = True
                fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
                try:
                    with contextlib.suppress(OSError):
                        while True:
                            os.write(fd, b"x" * 4096)
                finally:
                    os.close(fd)

        with caplog.at_level(logging.WARNING, logger="imgdup"):
            result = scan(second, cache, progress=fill_the_disk)
        assert filled and result.summary.images == 301
        assert len(cache_warnings(caplog)) == 1, cache_warnings(caplog)
        assert not set_aside(folder)
        (folder / "filler").unlink()
        assert scan(first, cache).summary.from_cache == 6  # the cache survived, entries intact


def _create(path: str, start: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    start.wait()
    HashCache(path, KEY).close()


def test_processes_creating_one_new_cache_at_the_same_moment_never_set_it_aside(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    for round_ in range(15):
        path = tmp_path / f"c{round_}.sqlite3"
        start = ctx.Event()
        procs = [ctx.Process(target=_create, args=(str(path), start)) for _ in range(4)]
        for p in procs:
            p.start()
        start.set()
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [0] * 4
        assert not set_aside(tmp_path), f"round {round_}"
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT value FROM meta WHERE key='schema'").fetchone() == (SCHEMA,)


def test_cache_of_a_newer_imgdup_is_not_touched(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = make_tree(tmp_path / "data", 3, 50)
    cache = tmp_path / "c.sqlite3"
    scan(root, cache)
    with sqlite3.connect(cache) as db:
        db.execute("UPDATE meta SET value='imgdup.cache/999' WHERE key='schema'")
    with caplog.at_level(logging.WARNING, logger="imgdup"):
        assert scan(root, cache).summary.images == 4
    assert len(cache_warnings(caplog)) == 1 and "newer" in cache_warnings(caplog)[0]
    assert not set_aside(tmp_path)
    with sqlite3.connect(cache) as db:
        assert db.execute("SELECT value FROM meta WHERE key='schema'").fetchone() == ("imgdup.cache/999",)


def test_cache_of_an_older_imgdup_is_upgraded_in_place(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "data", 3, 60)
    cache = tmp_path / "c.sqlite3"
    scan(root, cache)
    with sqlite3.connect(cache) as db:
        db.execute("UPDATE meta SET value='imgdup.cache/2' WHERE key='schema'")
    assert scan(root, cache).summary.from_cache == 0
    assert not set_aside(tmp_path)
    assert scan(root, cache).summary.from_cache == 4
