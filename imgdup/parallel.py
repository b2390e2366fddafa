"""Hash many files in worker processes that a bad file cannot take down with it.

Each worker decodes a chunk of files and reports every result as it goes. A worker that
crashes (a decoder segfault, the memory bound) or stays on one file longer than the per-file
timeout is killed and replaced; the file it was on becomes a failure and the rest of its chunk
goes back to the queue. A worker killed from outside (the out-of-memory killer's SIGKILL) says
nothing of its file: the file is tried once more, then becomes a transient failure. Workers
ignore SIGINT, so Ctrl-C reaches only the parent, which stops them; results already handed to
``on_results`` (the cache) are kept, so a rerun resumes.

Workers never outlive the run: on Linux each asks the kernel for SIGKILL when its parent dies
(PR_SET_PDEATHSIG; under forkserver the parent is the fork server, which exits with the main
process once the workers drop their copy of its keep-alive fd), and each holds only its own
end of its pipe, so a worker waiting for work reads end-of-file once the parent is gone,
whatever killed it (SIGKILL included).

Library callers on macOS/Windows, or any caller with a script as ``__main__``: guard the call
with ``if __name__ == "__main__":`` as for any use of multiprocessing.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol, TypeVar

from PIL import Image

from .errors import UsageError
from .hashing import DECODER_MODULES, hash_entry, load_decoders, memory_reason, set_memory_bound
from .models import FileEntry, HashFailure, HashSettings, ImageRecord

Result = ImageRecord | HashFailure

log = logging.getLogger(__name__)


class HasPath(Protocol):
    """A unit of work of :func:`map_files`: one file, named by ``path`` in a failure."""

    @property
    def path(self) -> str: ...


T = TypeVar("T", bound=HasPath)
S = TypeVar("S")
R = TypeVar("R")


DEFAULT_TIMEOUT = 60.0
"""Seconds one file may take. A legal 80-megapixel PNG decodes in ~2 s here; a hang never ends."""

DEFAULT_MEMORY_MB = 2048
"""Address space a worker may add beyond its imports: room for the largest image Pillow will
open (~89 M pixels x 4 bytes, plus conversions), not for a decoder gone wild."""

THIS_PROCESS = -1
"""A ``max_pixels`` of :func:`hash_all`: the limit this process has (``PIL.Image.MAX_IMAGE_PIXELS``)."""

KILLED = "its worker was killed from outside"
"""How the failure of a file whose worker was killed from outside, twice, begins (a transient one)."""

# The signals a process raises on itself (a bad memory access, abort(), a trap): a decoder's own
# crash, which the file may well cause again. Any other signal was sent by someone else: the
# kernel's out-of-memory killer (SIGKILL, to the largest process: the worker on the largest
# file, QA pass 35), an administrator, a service manager (SIGTERM, SIGHUP).
_OWN_SIGNALS = frozenset(
    getattr(signal, name) for name in ("SIGSEGV", "SIGBUS", "SIGABRT", "SIGFPE", "SIGILL", "SIGTRAP", "SIGSYS")
    if hasattr(signal, name)
)  # fmt: skip


def _sent_by(number: int) -> str:
    """Signal ``number``, and who sends it."""
    try:
        name = f"{signal.Signals(number).name}, signal {number}"
    except ValueError:  # a real-time signal has no name of its own
        name = f"signal {number}"
    if number == signal.SIGKILL:
        return f"{name}: sent by the out-of-memory killer when memory runs short, or by a kill command"
    return f"{name}: sent by another process"


_CHUNK = 16  # files per message: small enough to rebalance, large enough to amortise IPC
_IN_FLIGHT = 2  # chunks sent ahead to each worker


def default_jobs() -> int:
    """All cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _context() -> Any:
    """fork when this process has a single thread, else forkserver (spawn off Linux).

    fork starts a worker in milliseconds with the decoders already imported; it is unsafe only
    when other threads may hold locks, so a threaded caller gets forkserver: workers fork from a
    clean server that preloaded the decoders (~0.5 s once, then ~20 ms a worker; see _preloading).
    """
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")  # pragma: no cover - not Linux


@contextlib.contextmanager
def _preloading(ctx: Any) -> Iterator[None]:
    """While a worker starts: a fork server that its start launches preloads the decoders as well
    as what the caller asked for. The server and its preload list are the process's, shared
    with the caller's own forkserver processes; set for good, imgdup's list replaced the
    caller's (its modules were never preloaded in a server a scan started), so the caller's
    list is put back as it was. A server already running is not changed (imgdup's workers then
    import the decoders themselves, ~0.2 s each). Where the list cannot be read (another
    Python's internals), nothing is preloaded: slower workers, never the caller's list lost."""
    if ctx.get_start_method() != "forkserver":
        yield
        return
    # Imported by a process's first fork server start, not before: looked up in sys.modules, it
    # was missing then, and the server that start launched (the process's, for good) never had
    # the decoders.
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    asked = getattr(server, "_preload_modules", None)
    if not isinstance(asked, list):
        yield
        return
    with _PRELOAD_LOCK:  # scans or reports in several threads: one at a time, each putting back what it found
        asked = list(getattr(server, "_preload_modules", asked))  # read again: another thread may have just put it back
        ctx.set_forkserver_preload([*asked, *(m for m in ("imgdup.hashing", *DECODER_MODULES) if m not in asked)])
        try:
            yield
        finally:
            ctx.set_forkserver_preload(asked)


_PRELOAD_LOCK = threading.Lock()


def _limit_memory(megabytes: int) -> bool:
    """Bound this process's address space to ``megabytes`` above what it holds; whether it was."""
    try:
        import resource

        with open("/proc/self/statm") as fh:
            current = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = current + megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, OSError, ValueError):  # pragma: no cover - not Linux
        return False
    return True


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _die_with_parent() -> None:
    """Linux: have the kernel SIGKILL this process as soon as its parent exits, even mid-file.

    Without it a worker busy on a slow file would go on for as long as the file takes, holding
    the caller's stderr open. Elsewhere a worker notices only at its next read (end-of-file).
    """
    if not sys.platform.startswith("linux"):  # pragma: no cover - not Linux
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        pass


def _release_fork_server() -> None:
    """Drop this worker's copy of the fd that keeps the fork server alive.

    The fork server exits when every holder of that fd is gone, and it hands a copy to each
    child it starts: while the workers hold it, the server outlives a killed main process, and
    so do the workers (their parent, for PR_SET_PDEATHSIG, is the server). A worker never
    starts processes of its own, so it has no use for the fd.
    """
    server = getattr(sys.modules.get("multiprocessing.forkserver"), "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
        server._forkserver_alive_fd = None  # type: ignore[union-attr]


# glibc's malloc returns any free block over its mmap threshold (128 KB, raised as such blocks
# are freed, to 32 MB at most) to the system, and the freed top of the heap beyond its trim
# threshold: the next picture's buffers are then new pages, each faulted in and zeroed by the
# kernel. A worker allocates the same few sizes file after file (a WebP's RGBA canvas in
# libwebp, Pillow's images, numpy's arrays), so it keeps them: blocks up to 64 MB come from the
# heap, and up to 128 MB of freed heap stays. Measured in one process on the bench mixed set's
# WebPs: 3,832 -> 128 page faults a file, 22.8 -> 16.2 ms of CPU (8.4 -> 0.4 ms of it in the
# kernel); PNGs 42.8 -> 41.0 ms; JPEGs unchanged.
_MMAP_THRESHOLD = 64 << 20
_TRIM_THRESHOLD = 128 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters, from <malloc.h>


def _keep_freed_memory() -> None:
    """Keep freed memory in the worker's heap for its next files (see _MMAP_THRESHOLD): where
    the pixels are stored, not what they are, so no result changes. A no-op without glibc."""
    if not sys.platform.startswith("linux"):  # pragma: no cover - not Linux
        return
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - a libc without mallopt (musl)
        return
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
    mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)


HashFunction = Callable[[FileEntry, HashSettings], Result]

_own_state: Any = None
"""In a worker, its shared ``[index, start]`` (:func:`_worker_main`); None in any other process."""


def file_started() -> None:
    """Count the timeout from now: for a ``work`` of :func:`map_files` that decodes several
    files for one item (a montage's sheet), called before each, so that the limit holds per
    file, not for the item's files together. Outside a worker (no timeout there), nothing."""
    if _own_state is not None:
        _own_state[1] = time.monotonic()


def _worker_main(
    conn: Connection,
    state: Any,
    work: Callable[[Any, Any], Any],
    settings: Any,
    memory_mb: int,
    inherited: Sequence[Connection] = (),
    max_pixels: int | None = Image.MAX_IMAGE_PIXELS,
) -> None:
    global _own_state
    _die_with_parent()
    _own_state = state
    # A forked worker inherits the scan's paused collector (imgdup.gcpause) and every object the
    # scan built meanwhile, as the youngest generation: its first collection walked them all,
    # writing to each one's page (a copy of the parent's heap, ~0.2 s of CPU a worker in a
    # 20,000-file scan). Frozen, the collector leaves them alone; the worker runs for long, so
    # its own objects are collected as usual.
    gc.freeze()
    gc.enable()
    # The caller's decompression-bomb limit (--max-pixels sets it), which a worker started by a
    # fork server or spawned would not inherit.
    Image.MAX_IMAGE_PIXELS = max_pixels
    _release_fork_server()
    # A forked worker inherits the parent's ends of every pipe (its own and its siblings'):
    # while it holds them, no pipe ever reaches end-of-file when the parent dies.
    for other in inherited:
        other.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _keep_freed_memory()
    if _limit_memory(memory_mb):
        set_memory_bound(memory_mb)  # a decode's MemoryError names it, as one here does (hashing._guarded)
    try:
        while True:
            chunk = conn.recv()
            if chunk is None:
                return
            out = []
            for index, entry in chunk:
                # Shared memory, no system call: which file, since when. The parent reads it to
                # time a file out, and to know which file a crash belongs to.
                state[1] = time.monotonic()
                state[0] = index
                try:
                    res = work(entry, settings)
                except MemoryError:
                    res = HashFailure(entry.path, memory_reason(), transient=True)
                except Exception as exc:  # noqa: BLE001 - one file must never end the run
                    res = _failure(entry, exc)
                out.append((index, res))
            state[0] = -1.0
            conn.send(out)  # one message a chunk: per-file messages cost ~15% of a 1 ms decode
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return


def _failure(item: HasPath, exc: Exception) -> HashFailure:
    """What an exception of the work on one file is: that file's failure (the run goes on)."""
    return HashFailure(item.path, f"cannot decode: {type(exc).__name__}: {exc}")


class _Worker:
    def __init__(
        self,
        ctx: Any,
        work: Callable[[Any, Any], Any],
        settings: Any,
        memory_mb: int,
        siblings: Sequence[_Worker],
        max_pixels: int | None,  # no default: None would be no decompression-bomb limit at all
    ) -> None:
        self.conn, child = ctx.Pipe()
        self.state = ctx.RawArray("d", [-1.0, 0.0])  # [index being decoded or -1, its start time]
        # Only a forked child holds copies of the parent's ends (other start methods pass just
        # the child's end, and pickling a parent end would hand the worker a duplicate of it).
        inherited = [self.conn, *(w.conn for w in siblings)] if ctx.get_start_method() == "fork" else []
        args = (child, self.state, work, settings, memory_mb, inherited, max_pixels)
        self.proc = ctx.Process(target=_worker_main, args=args, daemon=True)
        with _preloading(ctx):
            self.proc.start()
        child.close()
        self.todo: dict[int, HasPath] = {}  # every file sent and not yet answered
        self.chunks = 0  # chunks in flight
        self.gone = False  # a send found the worker dead: its pipe's end-of-file says the rest

    def send(self, chunk: list[tuple[int, HasPath]]) -> None:
        """Hand the worker a chunk. A worker may die (a decoder crash on the chunk before) between
        the parent's last look and this send: the chunk then counts as sent, and the crash is
        handled where its end-of-file is read, this chunk going back to the queue with the rest
        (the send's BrokenPipeError had ended the whole run)."""
        self.todo.update(chunk)
        self.chunks += 1
        try:
            self.conn.send(chunk)
        except OSError:  # BrokenPipeError, ConnectionResetError: the worker is gone
            self.gone = True

    def overdue(self, timeout: float) -> int | None:
        """The item this worker has been on for longer than ``timeout``, or None: decided and
        named from one reading of its state. Read again to name it, the worker could have moved
        on meanwhile, and the item it had just started was failed. Its index is read first: the
        worker writes an item's start before its index, so a pair read across its move has the
        new start, never the old one with the new index (the move reads as not overdue)."""
        now = time.monotonic()  # first: a start written after it (file_started) reads as not overdue
        index, since = self.state[0], self.state[1]
        return int(index) if index >= 0 and now - since > timeout else None

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()


def _chunks(items: list[tuple[int, HasPath]], jobs: int, chunk: int = _CHUNK) -> list[list[tuple[int, HasPath]]]:
    """``items`` in chunks of ``chunk``, smaller towards the end (each at most the share of what is
    left that leaves every worker several to go), down to single files: the workers run out of
    work together. With chunks of 16 to the end, one worker went on alone for up to 16 files
    while the other idled; the keep policy's measuring rounds (full decodes, 5-150 ms a file,
    9 rounds on the accuracy benchmark) each ended so."""
    out, at = [], 0
    while at < len(items):
        size = max(1, min(chunk, (len(items) - at) // (2 * _IN_FLIGHT * max(1, jobs))))
        out.append(items[at : at + size])
        at += size
    return out


def hash_all(
    entries: Sequence[FileEntry],
    settings: HashSettings,
    *,
    jobs: int,
    timeout: float = DEFAULT_TIMEOUT,
    memory_mb: int = DEFAULT_MEMORY_MB,
    on_results: Callable[[Sequence[tuple[FileEntry, Result]]], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    batch: int = 256,
    work: HashFunction = hash_entry,
    on_started: Callable[[], None] | None = None,
    max_pixels: int | None = THIS_PROCESS,
) -> list[Result]:
    """Hash ``entries`` with ``jobs`` worker processes; results come back in input order.

    ``on_results`` receives (entry, result) batches as they finish (the cache writes them);
    ``on_progress`` the number of files done so far. ``work`` (a picklable top-level
    function) replaces the hash function: the fault-injection tests' way into a worker.
    ``on_started`` is called once the workers run (forked while this process has one thread:
    a caller may start a thread of its own there, see :mod:`imgdup.warm`). ``max_pixels``: the
    workers' decompression-bomb limit (:data:`THIS_PROCESS`: this process's, which ``--max-pixels``
    sets; a Dask task passes the one its client was given).
    """
    return map_files(
        entries, settings, work, jobs=jobs, timeout=timeout, memory_mb=memory_mb, on_results=on_results,
        on_progress=on_progress, batch=batch, on_started=on_started, max_pixels=max_pixels,
    )  # fmt: skip


def map_files(
    items: Sequence[T],
    settings: S,
    work: Callable[[T, S], R | HashFailure],
    *,
    jobs: int,
    timeout: float = DEFAULT_TIMEOUT,
    memory_mb: int = DEFAULT_MEMORY_MB,
    on_results: Callable[[Sequence[tuple[T, R | HashFailure]]], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    batch: int = 256,
    on_started: Callable[[], None] | None = None,
    max_pixels: int | None = THIS_PROCESS,
    more: Callable[[T, R | HashFailure], Sequence[T]] | None = None,
    chunk: int = _CHUNK,
    here_if_daemonic: bool = False,
) -> list[R | HashFailure]:
    """``work(item, settings)`` for every item, in ``jobs`` worker processes, with everything
    :func:`hash_all` promises (the per-file timeout and memory bound, a crash or a hang costing
    only its file, which becomes a :class:`HashFailure`); results in input order. Any decoding
    of many untrusted files goes through here: hashing, the keep policy's measuring, the HTML
    report's thumbnails. ``work`` is a top-level function (picklable: a fork server or spawn
    sends it by name).

    ``more(item, result)``, called here as each result comes in, returns items to do as well
    (their results follow the others'): work that depends on earlier results is handed to the
    workers while they are still busy with the rest, not after all of it. ``chunk``: items a
    message at most (fewer for slow items: a result comes back with its whole chunk).
    ``here_if_daemonic``: in a daemonic process, which may start none, do the items here, one by
    one, without the timeout (the report's thumbnails did so before they had workers), with the
    callbacks called as with workers; else such a process is refused with a :class:`UsageError`."""
    here = bool(items) and multiprocessing.current_process().daemon
    if here and not here_if_daemonic:
        # Said before anything starts: Python's own refusal was a bare AssertionError from deep
        # inside ("daemonic processes are not allowed to have children").
        raise UsageError(
            "imgdup decodes images in worker processes, and this process may not start any: it is a daemonic "
            "process (a multiprocessing.Pool or DataLoader worker); call imgdup from the main process or from a "
            "concurrent.futures.ProcessPoolExecutor worker"
        )
    if max_pixels == THIS_PROCESS:
        max_pixels = Image.MAX_IMAGE_PIXELS
    entries = list(items)
    results: list[R | HashFailure | None] = [None] * len(entries)
    pending: list[tuple[T, R | HashFailure]] = []
    done = 0

    def collect(index: int, res: R | HashFailure) -> None:
        nonlocal done
        results[index] = res
        done += 1
        pending.append((entries[index], res))
        if len(pending) >= batch and on_results:
            on_results(pending)
            pending.clear()
        if on_progress:
            on_progress(done)
        if more is not None:
            extra = list(more(entries[index], res))
            at = len(entries)
            entries.extend(extra)
            results.extend([None] * len(extra))
            queue.extend(_chunks(list(enumerate(extra, start=at)), jobs, chunk))

    queue = deque(_chunks(list(enumerate(entries)), jobs, chunk))
    workers: list[_Worker] = []
    lost = 0  # workers that died between files: a guard against a crash loop
    retried: set[int] = set()  # items whose worker was killed from outside once: tried again, at most once
    try:
        if queue and not here:
            load_decoders()  # once per process: forked workers inherit them (hashing.load_decoders)
            ctx = _context()
            # with ``more``, a short first queue grows: every worker is started
            for _ in range(max(1, jobs if more is not None else min(jobs, len(queue)))):
                workers.append(_Worker(ctx, work, settings, memory_mb, workers, max_pixels))
        if on_started:
            on_started()
        if here:
            # One by one, through ``collect`` as the workers' results: the same callbacks, in the
            # same order (on_results and on_started were never called here). ``more`` extends
            # ``entries`` as it goes; its queued chunks are not used.
            for index, item in enumerate(entries):
                try:
                    res = work(item, settings)
                except Exception as exc:  # noqa: BLE001 - one file must never end the run
                    res = _failure(item, exc)
                collect(index, res)
        while done < len(entries):
            # Every worker gets a chunk, then a second one: it starts on that as soon as it has
            # sent its results, instead of idling while this process collects them and answers.
            for depth in range(1, _IN_FLIGHT + 1):
                for w in workers:
                    if w.chunks < depth and queue and not w.gone:
                        w.send(queue.popleft())
            busy = [w for w in workers if w.todo]
            ready = wait([w.conn for w in busy], timeout=min(0.5, timeout / 4))
            for i, w in enumerate(workers):
                if not w.todo:
                    continue
                if w.conn in ready:
                    try:
                        for index, res in w.conn.recv():
                            collect(index, res)
                            del w.todo[index]
                        w.chunks -= 1
                        continue
                    except (EOFError, OSError):
                        w.proc.join(5)
                        code = w.proc.exitcode
                        culprit = int(w.state[0])  # the worker is gone: its state stays as it left it
                        if code is not None and code < 0 and -code not in _OWN_SIGNALS:
                            # Says nothing of the file (QA pass 35): not cached, not damage. Tried once
                            # more in another worker, after the other files (their workers idle by then,
                            # memory to spare); killed again, it is left as a timeout leaves it.
                            killer = _sent_by(-code)
                            failure, transient = f"{KILLED} twice ({killer}); file skipped", True
                            again = culprit not in retried
                        else:
                            why = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                            failure, transient, again = f"the decoder crashed ({why}); file skipped", False, False
                elif (late := w.overdue(timeout)) is not None:
                    # Not cached: on a less loaded machine the same file may well finish.
                    failure, transient, again = f"decoding took longer than {timeout:g} s; file skipped", True, False
                    culprit = late
                else:
                    continue
                if culprit in w.todo and again:
                    retried.add(culprit)
                    again_item = w.todo.pop(culprit)
                    queue.append([(culprit, again_item)])
                    log.warning(
                        "a worker was killed from outside (%s) while it decoded %s, no fault of the file: it is "
                        "tried once more in another worker, after the other files", killer, again_item.path,
                    )  # fmt: skip
                elif culprit in w.todo:
                    collect(culprit, HashFailure(w.todo.pop(culprit).path, failure, transient=transient))
                else:
                    lost += 1
                    if lost > 3:
                        raise RuntimeError(f"hashing workers keep dying ({failure})")
                if w.todo:  # the rest of its chunks, finished or not, goes back to the queue
                    queue.appendleft(sorted(w.todo.items()))
                w.todo, w.chunks = {}, 0
                w.kill()
                # _context() again: a caller's thread may have started since (imgdup.warm's reader)
                workers[i] = _Worker(_context(), work, settings, memory_mb, workers, max_pixels)
        for w in workers:
            with contextlib.suppress(Exception):
                w.conn.send(None)
    finally:
        for w in workers:
            w.proc.join(1 if sys.exc_info()[0] is None else 0)
            w.kill()
        if pending and on_results:
            on_results(pending)
    return [r for r in results if r is not None]
