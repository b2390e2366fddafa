"""Hash a scan's cache misses while its cache hits are read back: the two overlap.

A new batch checked against a warm reference (``imgdup -d new --reference ref``) decodes only
the new files, in workers; the main process meanwhile had nothing to do but wait, and only then
turned ~20,000 cached rows into records (0.3-0.5 s of per-row Python, benchmarks/RESULTS.md).
Here the rows are fetched first (the SQL query: it says which files are misses), the workers
start on the misses, and the rows are decoded in a thread of this process while they run. The
thread touches no database (SQLite connections stay in their thread) and is started only once
the workers are forked (a process with threads forks no workers: :func:`imgdup.parallel._context`).

The results are the ones :meth:`HashCache.get_many` and :func:`imgdup.parallel.hash_all` give
in turn: a row that cannot be read back is a miss, hashed after the others.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from .cache import HashCache
from .hashing import held_to_the_limit
from .models import FileEntry, HashFailure, HashSettings, ImageRecord
from .parallel import hash_all

Result = ImageRecord | HashFailure
Progress = Callable[[str, int, int], None]


def hash_with_cache(
    entries: Sequence[FileEntry],
    settings: HashSettings,
    *,
    jobs: int,
    store: HashCache | None,
    timeout: float,
    progress: Progress | None,
    meanwhile: Callable[[list[ImageRecord]], object] | None = None,
) -> tuple[list[Result], int]:
    """Results for every entry, in entry order, from the cache where valid, else decoded; and
    how many came from the cache. ``meanwhile`` is given the cached records in the reading
    thread, while workers hash (work over them that need not wait for the others); not called
    when nothing is to be hashed."""
    total = len(entries)
    stored = store.stored(entries) if store else [False] * total
    todo = [e for e, here in zip(entries, stored) if not here]
    cached: list[Result | None] = []
    failed: list[BaseException] = []

    def read(overlap: bool = False) -> None:
        try:
            if store:  # while workers hash, through a connection of its own: this one writes their rows
                rows = store.rows_apart(entries) if overlap else store.rows(entries)
                # a row that went since (another run, a file changed): a miss, hashed below
                rows = [row if here else None for row, here in zip(rows, stored)]
            cached.extend(store.decode_rows(entries, rows) if store else [None] * total)
            if overlap and meanwhile is not None:
                meanwhile([r for r in cached if isinstance(r, ImageRecord)])
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, raised there
            failed.append(exc)

    reader = threading.Thread(target=read, args=(True,), name="imgdup-cache-rows", daemon=True)
    started = False
    hits = len(todo) < total  # with no row (no cache, a new one) there is nothing to read: no thread

    def start() -> None:
        nonlocal started
        if hits and not started:  # (called only when something is to be hashed; else read below)
            started = True
            reader.start()

    if progress:
        progress("hash", total - len(todo), total)
    fresh = _hash(todo, settings, total, jobs=jobs, store=store, timeout=timeout, progress=progress, start=start)
    if started:
        reader.join()
    else:
        read()
    if failed:
        raise failed[0]
    # Rows stored for this version of a file that cannot be read back (a foreign or damaged row):
    # misses after all, hashed now.
    unread = [e for e, here, c in zip(entries, stored, cached) if here and c is None]
    late = iter(_hash(unread, settings, total, jobs=jobs, store=store, timeout=timeout, progress=progress))
    early = iter(fresh)
    out = [c if c is not None else next(early) if not here else next(late) for c, here in zip(cached, stored)]
    # This run's pixel limit holds for a cached file too (hashed under a higher one, it was served
    # where a cold run refuses it); a file just decoded passed it.
    out = [held_to_the_limit(r) for r in out]
    return out, total - len(todo) - len(unread)


def _hash(
    todo: Sequence[FileEntry],
    settings: HashSettings,
    total: int,
    *,
    jobs: int,
    store: HashCache | None,
    timeout: float,
    progress: Progress | None,
    start: Callable[[], None] | None = None,
) -> list[Result]:
    """:func:`hash_all` over ``todo``, the last files of ``total`` to be done (progress counts so)."""
    if not todo:
        return []
    done_before = total - len(todo)
    return hash_all(
        todo,
        settings,
        jobs=jobs,
        timeout=timeout,
        on_results=store.put_many if store else None,
        on_progress=(lambda n: progress("hash", done_before + n, total)) if progress else None,
        on_started=start,
    )
