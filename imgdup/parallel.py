"""Hash many files in worker processes; results come back in input order.

Workers ignore SIGINT so Ctrl-C reaches only the parent, which stops the pool; whatever was
already handed to ``on_results`` (the cache) is kept, so a rerun resumes.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence
from functools import partial

from .hashing import hash_entry
from .models import FileEntry, HashFailure, HashSettings, ImageRecord

Result = ImageRecord | HashFailure

# Below this many files a pool costs more to start (~0.3 s per spawned worker importing
# Pillow/numpy/scipy) than it saves at ~1 ms per image.
_MIN_FILES_FOR_POOL = 64


def default_jobs() -> int:
    """All cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def hash_all(
    entries: Sequence[FileEntry],
    settings: HashSettings,
    *,
    jobs: int,
    on_results: Callable[[Sequence[tuple[FileEntry, Result]]], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    batch: int = 256,
) -> list[Result]:
    """Hash ``entries`` with ``jobs`` processes.

    ``on_results`` receives (entry, result) batches (the cache writes them); ``on_progress``
    the number of files done so far.
    """
    results: list[Result] = []
    pending: list[tuple[FileEntry, Result]] = []

    def collect(entry: FileEntry, res: Result) -> None:
        results.append(res)
        pending.append((entry, res))
        if len(pending) >= batch and on_results:
            on_results(pending)
            pending.clear()
        if on_progress:
            on_progress(len(results))

    work = partial(hash_entry, settings=settings)
    try:
        if jobs <= 1 or len(entries) < _MIN_FILES_FOR_POOL:
            for entry in entries:
                collect(entry, work(entry))
        else:
            chunk = max(1, min(32, len(entries) // (jobs * 8)))
            ctx = multiprocessing.get_context("spawn")  # fork is unsafe with threads (tqdm)
            with ctx.Pool(jobs, initializer=_init_worker) as pool:
                for entry, res in zip(entries, pool.imap(work, entries, chunksize=chunk)):
                    collect(entry, res)
    finally:
        if pending and on_results:
            on_results(pending)
    return results
