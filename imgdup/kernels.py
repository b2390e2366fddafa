"""Batch kernels: paths in, records out. Every engine schedules these; none holds its own copy.

The per-file work is :func:`imgdup.hashing.hash_entry` (hashing) and
:func:`imgdup.hashing.quality_entry` (the keep policy's measurement), exactly what the local
process pool runs. :func:`run_batch` runs one of them over a batch of files with the same
guards as the local engine: when the calling process may start children, the batch goes
through :func:`imgdup.parallel.hash_all` with one guarded worker, so a decoder that crashes or
hangs costs only its own file; where it may not (a daemonic Dask worker), files run in process
and a crash is left to the scheduler's retries (the Dask engine then hashes the batch file by
file and marks the file that still kills its worker as failed).

Files on object stores (``s3://...``, ``gs://...``) are copied through fsspec to a private
temporary folder and hashed there, so the decoder sees local bytes, and the records carry the
remote path back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from PIL import Image

from .hashing import CHANGED_REASON, GONE_REASON, hash_entry, quality_entry
from .models import FileEntry, HashFailure, HashSettings, ImageRecord
from .parallel import DEFAULT_TIMEOUT, THIS_PROCESS, hash_all

log = logging.getLogger(__name__)

Result = ImageRecord | HashFailure
Work = Callable[[FileEntry, HashSettings], Result]
WORK: dict[str, Work] = {"hash": hash_entry, "quality": quality_entry}


def is_remote(path: str) -> bool:
    """True for a URL with a protocol (``s3://``, ``gs://``, ``memory://``); local paths have none."""
    return "://" in path and not path.startswith("file://")


def can_isolate() -> bool:
    """Whether this process may start a guarded child (daemonic processes may not)."""
    return not multiprocessing.current_process().daemon


def run_batch(
    entries: Sequence[FileEntry],
    settings: HashSettings,
    *,
    kind: str | Work = "hash",
    timeout: float = DEFAULT_TIMEOUT,
    isolate: bool = True,
    max_pixels: int | None = THIS_PROCESS,
) -> list[Result]:
    """Hash (``kind="hash"``) or measure (``"quality"``) a batch; results in input order. ``kind``
    may also be the per-file function itself (picklable), e.g. the keep policy's measurement with
    its per-round options bound. ``max_pixels``: the decompression-bomb limit to decode under
    (a Dask task carries its client's: ``--max-pixels`` holds on every worker).

    Never raises for a bad file: every per-file problem is a :class:`HashFailure`.
    """
    work = WORK[kind] if isinstance(kind, str) else kind
    remote = [i for i, e in enumerate(entries) if is_remote(e.path)]
    if not remote:
        return _unseen(entries, _local_batch(list(entries), settings, work, timeout, isolate, max_pixels))
    with tempfile.TemporaryDirectory(prefix="imgdup-") as folder:
        staged: list[FileEntry | HashFailure] = list(entries)
        for i in remote:
            staged[i] = _fetch(entries[i], folder, i)
        todo = [(i, e) for i, e in enumerate(staged) if isinstance(e, FileEntry)]
        done = _local_batch([e for _, e in todo], settings, work, timeout, isolate, max_pixels)
        results: dict[int, Result] = {i: s for i, s in enumerate(staged) if isinstance(s, HashFailure)}
        for (i, _), res in zip(todo, done):
            results[i] = _restore(res, entries[i])
        return [results[i] for i in range(len(entries))]


def _unseen(entries: Sequence[FileEntry], results: list[Result]) -> list[Result]:
    """``results``, where a file is gone because its folder is not there at all: a worker on a
    node without the dataset's mount read every file as "disappeared while it was being
    scanned", a race on the client's side that never happened (QA pass 35). Said as what it
    most likely is; still transient (not cached): once the mount is there, a run hashes them."""
    out = list(results)
    folders: dict[str, bool] = {}
    for i, (entry, res) in enumerate(zip(entries, results)):
        if isinstance(res, HashFailure) and res.reason == GONE_REASON:
            folder = os.path.dirname(entry.path)
            if not folders.setdefault(folder, os.path.isdir(folder)):
                out[i] = HashFailure(
                    res.path,
                    f"its folder {folder} is not there on the worker {socket.gethostname()}: every worker needs "
                    "the image files at the same paths as the client (or the folder was removed during the scan)",
                    transient=True,
                )
    return out


_LIMIT_LOCK = threading.Lock()


def _local_batch(
    entries: list[FileEntry], settings: HashSettings, work: Work, timeout: float, isolate: bool, max_pixels: int | None
) -> list[Result]:
    if isolate and can_isolate():
        with _main_not_reimported():
            return hash_all(entries, settings, jobs=1, timeout=timeout, work=work, max_pixels=max_pixels)
    if max_pixels in (THIS_PROCESS, Image.MAX_IMAGE_PIXELS):
        return [work(e, settings) for e in entries]  # hash_entry itself turns every exception into a failure
    # In this thread (a daemonic worker may start no child), under a limit other than this
    # process's: it is Pillow's global, so such batches take turns.
    with _LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max_pixels
        try:
            return [work(e, settings) for e in entries]
        finally:
            Image.MAX_IMAGE_PIXELS = saved


@contextlib.contextmanager
def _main_not_reimported() -> Iterator[None]:
    """Start the guarded child without importing the driver's script in it.

    A Dask worker's ``__main__`` is the script that started the cluster; a fork-server child
    (the worker is threaded, so the pool uses forkserver) imports it again before every batch.
    For a script that imports dask that costs ~0.3 s a task (measured: 256-file tasks took 2.6x
    the local time, 1.2-1.3x without it). The child needs nothing from it: the work function
    lives in imgdup.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved: dict[str, Any] = {k: main.__dict__[k] for k in ("__spec__", "__file__") if k in main.__dict__}
    main.__dict__["__spec__"] = None
    main.__dict__.pop("__file__", None)
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


def fetch(url: str, size: int, local: str) -> str | None:
    """Copy the object at ``url`` to the new file ``local``: None, or why it could not be (a
    store error, or a size other than ``size``, the scanned one: the object changed since)."""
    import fsspec  # only remote inputs need it (it comes with the dask extra)

    try:
        with fsspec.open(url, "rb") as src, open(local, "xb") as dst:
            while block := src.read(1 << 20):
                dst.write(block)
    except Exception as exc:  # noqa: BLE001 - any store error is this file's failure, the run goes on
        return f"cannot read: {type(exc).__name__}: {exc}"
    return None if os.stat(local).st_size == size else CHANGED_REASON


class LocalCopies:
    """Local copies of object-store files for the outputs that decode them again (the HTML
    report's previews, the montages), as a scan's workers copy them: decoded from the URL as a
    path, no preview of an ``s3://`` scan was ever made. Local paths are given back as they are."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.count = 0

    def of(self, path: str, size: int, mtime_ns: int) -> tuple[str, int]:
        """(path, modification time) of a local file to decode for ``path`` as scanned (``size``
        bytes): a copy of a remote one, or the same when it is local or cannot be copied (then
        the output shows no picture, as for a file gone since the scan)."""
        if not is_remote(path):
            return path, mtime_ns
        self.count += 1
        local = os.path.join(self.folder, f"{self.count:08d}")
        failed = fetch(path, size, local)
        if failed is not None:
            log.debug("no picture of %s: %s", path, failed)
            return path, mtime_ns
        return local, os.stat(local).st_mtime_ns


def _fetch(entry: FileEntry, folder: str, n: int) -> FileEntry | HashFailure:
    """Copy one remote object to ``folder``; a local :class:`FileEntry` for it, or the failure."""
    local = os.path.join(folder, f"{n:08d}")
    failed = fetch(entry.path, entry.size, local)
    if failed is not None:
        return HashFailure(entry.path, failed, transient=True)
    st = os.stat(local)
    return dataclasses.replace(
        entry, path=local, size=st.st_size, mtime_ns=st.st_mtime_ns, inode=st.st_ino, device=st.st_dev, aliases=(),
        staged_from=entry.path,
    )  # fmt: skip


def _restore(res: Result, entry: FileEntry) -> Result:
    """The result of a staged copy, carrying the remote entry again."""
    if isinstance(res, HashFailure):
        return dataclasses.replace(res, path=entry.path)
    return dataclasses.replace(res, entry=entry)
