"""Wire the stages: discover -> hash (cache, workers) -> index -> cluster -> decide. No printing."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence

from . import index as index_mod
from .cache import HashCache
from .cluster import components
from .discover import discover, normalise_roots
from .errors import UsageError
from .hashing import settings_key
from .models import (
    Action,
    Cluster,
    FileEntry,
    HashFailure,
    HashSettings,
    ImageRecord,
    ScanResult,
    ScanSettings,
    Summary,
)
from .parallel import DEFAULT_TIMEOUT, default_jobs, hash_all
from .policy import DEFAULT_KEEP, decide, parse_keep

log = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int, int], None]
"""Called as ``progress(stage, done, total)``; stages are "hash" and "search"."""

DEFAULT_THRESHOLD = 4


def find_duplicates(
    roots: Iterable[str | os.PathLike[str]],
    *,
    threshold: int = DEFAULT_THRESHOLD,
    hash: str = "phash",  # noqa: A002 - the CLI's and the report's name for it
    hash_size: int = 8,
    decode: str = "draft",
    keep: str | Sequence[str] = DEFAULT_KEEP,
    index: str = "auto",
    jobs: int | None = None,
    cache: str | os.PathLike[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: ProgressCallback | None = None,
) -> ScanResult:
    """Scan ``roots`` and group near-identical images; changes nothing on disk.

    ``threshold`` is inclusive and in bits (0 = identical hashes only, at most the hash's
    ``hash_size ** 2`` bits). ``keep`` orders the rules that choose the kept file (see
    :data:`imgdup.policy.KEEP_RULES`). ``cache`` is a SQLite file path, or None for no cache.
    ``timeout`` is the seconds one file may take to decode before it is reported as failed.
    Returns an immutable :class:`ScanResult`; pass it to :func:`imgdup.remove` to act on it.
    """
    started = time.perf_counter()
    try:
        settings = HashSettings(algorithm=hash, hash_size=hash_size, decode=decode)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if isinstance(threshold, bool) or not isinstance(threshold, int) or not 0 <= threshold <= settings.bits:
        raise UsageError(f"threshold must be a whole number of bits from 0 to {settings.bits}, got {threshold!r}")
    if index not in index_mod.BACKENDS:
        raise UsageError(f"unknown index {index!r}; choose one of {', '.join(index_mod.BACKENDS)}")
    keep_rules = parse_keep(keep)
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise UsageError("jobs must be at least 1")
    root_list = normalise_roots(roots)
    if not root_list:
        raise UsageError("no folder to scan")

    entries, skipped = discover(root_list)
    if not timeout > 0:
        raise UsageError("timeout must be a positive number of seconds")
    results, from_cache = _hash(entries, settings, jobs=jobs, cache=cache, timeout=timeout, progress=progress)
    records = [r for r in results if isinstance(r, ImageRecord)]
    failures = tuple(r for r in results if isinstance(r, HashFailure))

    if progress:
        progress("search", 0, 1)
    clusters = _cluster(records, settings, threshold=threshold, keep=keep_rules, backend=index)
    if progress:
        progress("search", 1, 1)

    removable = [m for c in clusters for m in c.removable]
    summary = Summary(
        files=len(entries),
        images=len(records),
        from_cache=from_cache,
        failures=len(failures),
        clusters=len(clusters),
        duplicates=sum(len(c.members) - 1 for c in clusters),
        to_remove=len(removable),
        to_review=sum(1 for c in clusters for m in c.members if m.action is Action.REVIEW),
        bytes_to_remove=sum(m.record.entry.size for m in removable),
        seconds=round(time.perf_counter() - started, 3),
    )
    return ScanResult(
        settings=ScanSettings(hash=settings, threshold=threshold, keep=keep_rules, index=index),
        roots=root_list,
        clusters=tuple(clusters),
        failures=failures,
        skipped=tuple(skipped),
        summary=summary,
        records=tuple(records),
    )


def _hash(
    entries: Sequence[FileEntry],
    settings: HashSettings,
    *,
    jobs: int,
    cache: str | os.PathLike[str] | None,
    timeout: float,
    progress: ProgressCallback | None,
) -> tuple[list[ImageRecord | HashFailure], int]:
    """Results for every entry, in entry order, from the cache where valid, else decoded; and
    how many came from the cache."""
    total = len(entries)
    store = HashCache(cache, settings_key(settings)) if cache is not None else None
    try:
        cached = [store.get(e) for e in entries] if store else [None] * total
        todo = [e for e, c in zip(entries, cached) if c is None]
        done_before = total - len(todo)
        if progress:
            progress("hash", done_before, total)
        fresh = hash_all(
            todo,
            settings,
            jobs=jobs,
            timeout=timeout,
            on_results=store.put_many if store else None,
            on_progress=(lambda n: progress("hash", done_before + n, total)) if progress else None,
        )
    finally:
        if store:
            store.close()
    it = iter(fresh)
    return [c if c is not None else next(it) for c in cached], done_before


def _cluster(
    records: Sequence[ImageRecord], settings: HashSettings, *, threshold: int, keep: Sequence[str], backend: str
) -> list[Cluster]:
    """Group identical hashes, search near ones among the unique values, and decide."""
    by_hash: dict[int, list[ImageRecord]] = {}
    for r in records:  # records are in path order, so unique values are too
        by_hash.setdefault(r.hash, []).append(r)
    unique = list(by_hash)
    matches = index_mod.self_join(unique, threshold, bits=settings.bits, backend=backend)
    clusters: list[Cluster] = []
    for comp in components(len(unique), matches):
        members = [r for i in comp for r in by_hash[unique[i]]]
        if len(members) < 2:
            continue
        members.sort(key=lambda r: r.path)
        clusters.append(decide(len(clusters), members, threshold=threshold, keep=keep))
    return clusters
