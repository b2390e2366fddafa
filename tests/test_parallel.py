"""Worker processes: order, crashes, hangs and the memory bound never take the run down."""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from imgdup.hashing import hash_entry
from imgdup.models import FileEntry, HashFailure, HashSettings, ImageRecord
from imgdup.parallel import hash_all

from .synth import photo


def misbehaving(entry: FileEntry, settings: HashSettings) -> ImageRecord | HashFailure:
    """Stand-in decoder for fault injection, run inside the workers."""
    name = os.path.basename(entry.path)
    if name.startswith("crash"):
        faulthandler.disable()  # pytest's handler would print a traceback for the expected crash
        os.kill(os.getpid(), signal.SIGSEGV)
    if name.startswith("hang"):
        time.sleep(3600)
    if name.startswith("hog"):
        hog = bytearray(8 * 1024**3)  # far beyond the memory bound
        return HashFailure(entry.path, f"allocated {len(hog)}")
    return hash_entry(entry, settings)


def killed_from_outside(entry: FileEntry, settings: HashSettings) -> ImageRecord | HashFailure:
    """Stand-in decoder whose worker is killed from outside on an "oom" file (SIGKILL, the
    out-of-memory killer's signal): every time, or on an "oom_once" file the first time only; on
    a "term" file by SIGTERM. Each try of a "crash", "oom" or "term" file leaves a line in FILE.tries."""
    name = os.path.basename(entry.path)
    if name.startswith(("crash", "oom", "term")):
        tries = Path(entry.path + ".tries")
        with tries.open("a") as fh:
            fh.write("try\n")
        if name.startswith("term"):
            os.kill(os.getpid(), signal.SIGTERM)
        if name.startswith("oom") and not (name.startswith("oom_once") and len(tries.read_text().split()) > 1):
            os.kill(os.getpid(), signal.SIGKILL)
    return misbehaving(entry, settings)


def refaults(entry: FileEntry, settings: HashSettings) -> ImageRecord | HashFailure:
    """Stand-in decoder that allocates, fills and frees a 40 MB buffer five times and reports
    the page faults it took."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        buffer = bytearray(40 << 20)  # zero-filled: every page is written (over glibc's largest mmap threshold)
        del buffer
    return HashFailure(entry.path, str(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before))


def make_entries(folder: Path, names: list[str]) -> list[FileEntry]:
    out = []
    for i, name in enumerate(names):
        path = folder / name
        photo(300 + i, (64, 48)).save(path, "PNG")
        st = path.stat()
        out.append(FileEntry(str(path), str(folder), name, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev))
    return out


def test_results_come_back_in_input_order(tmp_path: Path) -> None:
    entries = make_entries(tmp_path, [f"{i:03d}.png" for i in range(70)])
    parallel = hash_all(entries, HashSettings(), jobs=2)
    serial = [hash_entry(e, HashSettings()) for e in entries]
    assert parallel == serial


@pytest.mark.parametrize(("bad", "words"), [("crash.png", "crashed (signal 11)"), ("hog.png", "memory")])
def test_a_crashing_worker_is_replaced_and_only_its_file_fails(tmp_path: Path, bad: str, words: str) -> None:
    names = [f"{i:02d}.png" for i in range(40)]
    names.insert(21, bad)
    entries = make_entries(tmp_path, names)
    results = hash_all(entries, HashSettings(), jobs=2, work=misbehaving)
    assert len(results) == 41
    failed = [r for r in results if isinstance(r, HashFailure)]
    assert [f.path for f in failed] == [str(tmp_path / bad)]
    assert words in failed[0].reason
    assert [r.path for r in results] == [e.path for e in entries]


def test_a_worker_killed_from_outside_is_no_fault_of_its_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A worker killed by a signal its decoder does not raise itself (SIGKILL: what the kernel's
    out-of-memory killer sends the largest process, the worker on the largest file) was "the
    decoder crashed (signal 9)": not transient, so cached by the hash pass and taken as damage
    by the keep policy, with nothing said without -v. Its file is now tried once more in a fresh
    worker; killed again, it is a transient failure; a warning says so. A decoder's own crash
    (SIGSEGV) stays a crash, tried once (QA pass 35)."""
    names = [f"{i:02d}.png" for i in range(6)]
    names[3:3] = ["oom.png", "crash.png", "oom_once.png", "term.png"]
    entries = make_entries(tmp_path, names)
    with caplog.at_level(logging.WARNING, logger="imgdup"):
        results = hash_all(entries, HashSettings(), jobs=2, work=killed_from_outside)
    by_name = {os.path.basename(r.path): r for r in results}
    tries = {n: len((tmp_path / f"{n}.tries").read_text().split()) for n in names if n[0].isalpha()}
    assert tries == {"oom.png": 2, "crash.png": 1, "oom_once.png": 2, "term.png": 2}
    killed, termed, crashed = by_name["oom.png"], by_name["term.png"], by_name["crash.png"]
    assert isinstance(killed, HashFailure) and killed.transient
    assert "killed from outside" in killed.reason and "SIGKILL" in killed.reason and "out-of-memory" in killed.reason
    assert isinstance(termed, HashFailure) and termed.transient and "SIGTERM" in termed.reason
    assert isinstance(crashed, HashFailure) and not crashed.transient and "crashed (signal 11)" in crashed.reason
    assert isinstance(by_name["oom_once.png"], ImageRecord)
    assert [r.path for r in results] == [e.path for e in entries]
    assert sum(isinstance(r, ImageRecord) for r in results) == 7
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 3 and all("killed from outside" in m and "once more" in m for m in said)
    assert {n for n in ("oom.png", "oom_once.png", "term.png") for m in said if n in m} == {*tries} - {"crash.png"}


def test_a_hanging_file_times_out_and_the_run_goes_on(tmp_path: Path) -> None:
    names = [f"{i:02d}.png" for i in range(20)]
    names.insert(5, "hang.png")
    entries = make_entries(tmp_path, names)
    started = time.monotonic()
    results = hash_all(entries, HashSettings(), jobs=2, timeout=2.0, work=misbehaving)
    assert time.monotonic() - started < 30
    failed = [r for r in results if isinstance(r, HashFailure)]
    assert [f.path for f in failed] == [str(tmp_path / "hang.png")]
    assert "longer than 2 s" in failed[0].reason and failed[0].transient
    assert sum(isinstance(r, ImageRecord) for r in results) == 20


def test_huge_legal_jpeg_is_decoded_reduced_within_a_small_memory_bound(tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    photo(400, (800, 600)).resize((8000, 6000)).save(big, quality=80)  # 48 megapixels, legal
    st = big.stat()
    entry = FileEntry(str(big), str(tmp_path), "big.jpg", st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)
    # Draft decoding needs a few MB; a full decode (48 M pixels, ~144 MB as RGB) exceeds 100 MB.
    (reduced,) = hash_all([entry], HashSettings(decode="draft"), jobs=1, memory_mb=100)
    assert isinstance(reduced, ImageRecord) and (reduced.width, reduced.height) == (8000, 6000)
    (full,) = hash_all([entry], HashSettings(decode="full"), jobs=1, memory_mb=100)
    assert isinstance(full, HashFailure) and "memory" in full.reason


@pytest.mark.usefixtures("forked_workers")
def test_a_decode_over_the_memory_bound_is_said_to_be_over_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A picture that needed more than a worker's memory bound failed "not enough memory to
    decode" (the decoder's MemoryError was read before the worker's own words), which points at
    the machine, however much it has free (QA pass 35). The failure names the bound; in this
    process, with no bound, it stays the machine's memory."""
    from imgdup import hashing

    def starved(img: Image.Image) -> Image.Image:
        raise MemoryError  # as a decode over the bound raises it (a real one: 2.3 GB, see test_hashing)

    (entry,) = make_entries(tmp_path, ["a.png"])
    monkeypatch.setattr(hashing, "normalise", starved)
    (res,) = hash_all([entry], HashSettings(), jobs=1, memory_mb=300)
    assert isinstance(res, HashFailure) and res.transient
    assert "more than the memory bound (300 MB) needed" in res.reason
    assert hash_entry(entry, HashSettings()) == HashFailure(entry.path, "not enough memory to decode", transient=True)


PLUGIN_PROBE = """
import sys
from imgdup.discover import discover
from imgdup.hashing import hash_entry
from imgdup.models import HashFailure, HashSettings
from imgdup.parallel import hash_all

def plugins_after_hashing(entry, settings):
    hash_entry(entry, settings)
    loaded = sorted(m for m in sys.modules if m.startswith("PIL.") and m.endswith("ImagePlugin"))
    return HashFailure(entry.path, ",".join(loaded))

entries, _, _ = discover([sys.argv[1]])
for r in hash_all(entries, HashSettings(), jobs=1, work=plugins_after_hashing):
    print(r.reason)
"""


def test_workers_decode_every_format_with_the_plugins_the_parent_loaded(tmp_path: Path) -> None:
    """A TIFF or WebP file made each worker import all ~40 Pillow plugins (Image.init: the
    formats Pillow registers first lack them), again in every measuring round's new workers;
    the parent now imports the plugins of the formats imgdup opens before it forks them."""
    import subprocess
    import sys

    from imgdup.hashing import DECODER_MODULES

    photo(1, (64, 48)).save(tmp_path / "a.tif")
    photo(2, (64, 48)).save(tmp_path / "b.webp")
    out = subprocess.run([sys.executable, "-c", PLUGIN_PROBE, str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    seen = [set(line.split(",")) for line in out.stdout.split()]
    assert len(seen) == 2 and all(s and s <= set(DECODER_MODULES) for s in seen), seen


def test_work_is_handed_out_in_shrinking_chunks_so_the_workers_finish_together() -> None:
    """Chunks of 16 files to the end left one worker decoding up to 16 files alone at the end
    of every pool (every measuring round of the keep policy); now the last chunks are single
    files, every file is sent once, in order, and no chunk is larger than before."""
    from imgdup.parallel import _CHUNK, _chunks

    for n, jobs in ((150, 2), (1000, 2), (7, 4), (1, 1), (0, 2)):
        items = [(i, FileEntry(f"{i}.png", "", f"{i}.png", 0, 0, i, 0)) for i in range(n)]
        chunks = _chunks(items, jobs)
        assert [it for c in chunks for it in c] == items
        assert all(1 <= len(c) <= _CHUNK for c in chunks)
        assert n == 0 or all(len(c) == 1 for c in chunks[-2 * jobs :])


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie until reaped: its file descriptors are closed)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def crash_announced(entry: FileEntry, settings: HashSettings) -> ImageRecord | HashFailure:
    """:func:`misbehaving`, which first leaves its pid beside the crashing file."""
    if os.path.basename(entry.path).startswith("crash"):
        Path(entry.path + ".pid").write_text(str(os.getpid()))
    return misbehaving(entry, settings)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
def test_a_worker_that_dies_before_its_next_chunk_is_sent_takes_only_its_file(tmp_path: Path) -> None:
    """A worker that sent one chunk's results and crashed on the next chunk's first file, dead
    before the parent sent it a third chunk: the send raised BrokenPipeError and the whole run
    ended with it (seen under load, in the crash test above). The parent waits here, in its
    progress callback, until the worker is gone, so the order of events is certain."""
    from imgdup.parallel import _chunks

    names = [f"{i:02d}.png" for i in range(12)]
    first = len(_chunks([(i, None) for i in range(13)], 1)[0])  # type: ignore[misc]
    names.insert(first, "crash.png")  # the first file of the second chunk
    entries = make_entries(tmp_path, names)
    marker = tmp_path / "crash.png.pid"

    def wait_for_the_crash(done: int) -> None:
        if done == first:  # the first chunk is in: the worker is on the second one
            deadline = time.monotonic() + 60
            while not marker.exists() or not _zombie(int(marker.read_text() or 0)):
                assert time.monotonic() < deadline, "the worker never crashed"
                time.sleep(0.01)

    results = hash_all(entries, HashSettings(), jobs=1, work=crash_announced, on_progress=wait_for_the_crash)
    failed = [r for r in results if isinstance(r, HashFailure)]
    assert [f.path for f in failed] == [str(tmp_path / "crash.png")] and "crashed" in failed[0].reason
    assert [r.path for r in results] == [e.path for e in entries]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings")
def test_workers_reuse_the_memory_they_free(tmp_path: Path) -> None:
    """A worker's next picture reuses the buffers its last one freed: new pages cost a fault
    and the kernel's zeroing each (a third of a WebP's hash pass went to them)."""
    import ctypes

    if not hasattr(ctypes.CDLL(None), "mallopt"):
        pytest.skip("no glibc malloc")
    entries = make_entries(tmp_path, ["a.png"])
    (report,) = hash_all(entries, HashSettings(), jobs=1, work=refaults)
    assert isinstance(report, HashFailure)
    pages = (40 << 20) // 4096
    assert int(report.reason) < 2 * pages  # the first buffer's pages, not one set per buffer


def test_a_chunk_sent_to_a_worker_that_just_died_goes_back_to_the_queue(tmp_path: Path) -> None:
    """hash_all refills a worker right after collecting its results; a worker whose decoder
    crashed in between made that send raise BrokenPipeError, which ended the whole run (seen in
    the full suite under load, in test_a_crashing_worker_is_replaced_and_only_its_file_fails; in
    a Dask task the same error failed the scan). The send now leaves the chunk with the worker,
    whose end the next wait reports, and its files go back to the queue. Fails on the code before
    (QA pass 19)."""
    from imgdup.parallel import _context, _Worker

    entries = make_entries(tmp_path, ["a.png", "b.png"])
    worker = _Worker(_context(), misbehaving, HashSettings(), 0, [], Image.MAX_IMAGE_PIXELS)
    worker.proc.kill()
    worker.proc.join(10)
    try:
        worker.send(list(enumerate(entries)))
        assert sorted(worker.todo) == [0, 1] and worker.chunks == 1
    finally:
        worker.kill()


_INHERITED = """
import resource, sys
from pathlib import Path
from imgdup.gcpause import collector_paused
from imgdup.models import FileEntry, HashFailure, HashSettings
from imgdup.parallel import hash_all

def faults(entry, settings):  # run in the worker: the page faults it has taken since it started
    return HashFailure(entry.path, str(resource.getrusage(resource.RUSAGE_SELF).ru_minflt))

path = Path(sys.argv[1])
st = path.stat()
entry = FileEntry(str(path), str(path.parent), path.name, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)
with collector_paused():
    (alone,) = hash_all([entry], HashSettings(), jobs=1, work=faults)
    heap = [(i, [i]) for i in range(400_000)]  # ~60 MB of objects the collector tracks
    (beside,) = hash_all([entry], HashSettings(), jobs=1, work=faults)
print(alone.reason, beside.reason, len(heap))
"""


def test_a_worker_leaves_the_objects_it_inherits_to_its_parent(tmp_path: Path) -> None:
    """A scan pauses the collector while it builds its records (imgdup.gcpause), so a worker
    forked later (a keep-policy measuring round, the new files of an incremental scan, forked
    once the cached rows are read) inherited them all as the youngest generation: its first
    collection walked every one, writing to each object's page, a copy of the parent's whole
    heap. One file in a fresh worker cost 0.2 s of CPU in a 20,000-file scan (~1 s with 2
    million objects). The worker now freezes what it inherits. (In a process of its own: a
    test process with threads starts its workers from a fork server, which holds no such heap.)"""
    (entry,) = make_entries(tmp_path, ["a.png"])
    out = subprocess.run(
        [sys.executable, "-c", _INHERITED, entry.path], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    alone, beside = int(out[0]), int(out[1])
    pages = 60 * (1 << 20) // 4096
    assert beside - alone < pages // 4  # the worker's own start-up, not a copy of the heap


class _Item(tuple):  # type: ignore[type-arg]
    """An item of map_files: (path, depth); path names it in a failure."""

    @property
    def path(self) -> str:
        return str(self[0])


def _echo(item: _Item, settings: int) -> tuple[str, int, int] | HashFailure:
    """Worker: the item's name, its depth and the worker's pid; "crash" crashes the worker."""
    if item.path.endswith("crash"):
        faulthandler.disable()
        os.kill(os.getpid(), signal.SIGSEGV)
    return item.path, item[1] * settings, os.getpid()


def test_map_files_takes_the_items_that_results_ask_for_while_it_runs() -> None:
    """``more`` hands items to do as results come in (the keep policy's next step of a cluster
    while the workers measure the others): every one is done once, its result after the given
    items' in the order asked for, and a crash on a late item costs only that item."""
    from imgdup.parallel import map_files

    asked: list[str] = []

    def more(item: _Item, res: object) -> list[_Item]:
        if isinstance(res, HashFailure) or item[1] >= 3:
            return []
        new = [_Item((f"{item.path}.{k}", item[1] + 1)) for k in range(2)]
        if item.path == "b.0":
            new.append(_Item(("b.0.crash", 9)))
        asked.extend(n.path for n in new)
        return new

    items = [_Item((name, 1)) for name in ("a", "b", "c")]
    got = map_files(items, 10, _echo, jobs=2, timeout=30, more=more, chunk=2)
    names = ["a", "b", "c", *asked]
    assert len(got) == len(names) == 3 + 6 + 12 + 1
    failed = [n for n, r in zip(names, got) if isinstance(r, HashFailure)]
    assert failed == ["b.0.crash"] and "crashed" in got[names.index("b.0.crash")].reason  # type: ignore[union-attr]
    done = [(r[0], r[1]) for r in got if not isinstance(r, HashFailure)]
    assert done == [(n, 10 * (n.count(".") + 1)) for n in names if n != "b.0.crash"]


def _calls(items: list[_Item]) -> list[object]:
    """Everything map_files hands its callbacks (jobs=1: in input order), with its results."""
    from imgdup.parallel import map_files

    seen: list[object] = []
    got = map_files(
        items, 10, _echo, jobs=1, batch=2, here_if_daemonic=True, on_started=lambda: seen.append("started"),
        on_results=lambda done: seen.append([(i.path, r[1]) for i, r in done]),  # type: ignore[index]
        on_progress=lambda n: seen.append(n),
    )  # fmt: skip
    return [*seen, [r[:2] for r in got]]  # type: ignore[index]


def test_map_files_in_a_daemonic_process_calls_back_as_its_workers_do() -> None:
    """In a daemonic process (a Pool or DataLoader worker) ``here_if_daemonic`` does the items in
    that process: ``on_results`` (the cache's writes) and ``on_started`` were never called
    there, while the workers' path calls them; both paths now keep one contract."""
    import multiprocessing

    items = [_Item((name, 1)) for name in "abcde"]
    with multiprocessing.get_context("fork").Pool(1) as pool:
        here = pool.apply(_calls, (items,))
    workers = _calls(items)
    assert here == workers
    assert workers[0] == "started" and [("a", 10), ("b", 10)] in workers and [("e", 10)] in workers


class _NoProcess:
    """A stand-in worker's process: there is none to kill or wait for."""

    exitcode = None

    def kill(self) -> None:
        pass

    def join(self, timeout: float | None = None) -> None:
        pass


class _MovesOn:
    """A worker's shared ``[index, start]``: on item 0 since an hour ago, and on item 1 from the
    moment the parent has read the pair once (a worker that finished item 0 just past its time
    and started the next one between the parent's look and its read of the culprit)."""

    def __init__(self) -> None:
        self.values = [0.0, time.monotonic() - 3600]

    def __getitem__(self, i: int) -> float:
        value = self.values[i]
        if i == 1:
            self.values = [1.0, time.monotonic()]
        return value


def test_the_item_timed_out_is_the_one_blamed_when_its_worker_moves_on_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The parent decided that a worker was overdue from its shared state, then read which item it
    was on again: a worker that moved on meanwhile (microseconds) had the next item failed,
    one it had just started, and the overdue one done again. The decision and the blame now
    come from one reading. Driven by hand (no process, no timing): the first worker never
    answers and moves on as it is read; its replacement answers at once."""
    import multiprocessing

    from imgdup import parallel

    made: list[parallel._Worker] = []

    class Fake(parallel._Worker):
        def __init__(self, ctx: object, work: object, settings: object, *_: object) -> None:
            self.conn, self.other = multiprocessing.Pipe()
            self.todo, self.chunks, self.gone = {}, 0, False
            self.proc = _NoProcess()  # type: ignore[assignment]
            self.state = _MovesOn() if not made else [-1.0, 0.0]
            self.work, self.settings = work, settings
            made.append(self)

        def send(self, chunk: list[tuple[int, parallel.HasPath]]) -> None:
            super().send(chunk)
            if self is not made[0]:  # the replacement: every result at once
                self.other.send([(i, self.work(item, self.settings)) for i, item in chunk])  # type: ignore[operator]

    monkeypatch.setattr(parallel, "_Worker", Fake)
    got = parallel.map_files([_Item(("a", 1)), _Item(("b", 1))], 10, _echo, jobs=1, timeout=0.2)
    assert len(made) == 2
    assert isinstance(got[0], HashFailure) and got[0].path == "a" and "longer than 0.2 s" in got[0].reason
    assert got[1][:2] == ("b", 10)  # type: ignore[index]


_CALLERS_FORKSERVER = """
import multiprocessing, multiprocessing.forkserver, sys, threading

import imgdup


def loaded():
    return [m for m in ("colorsys", "PIL.PngImagePlugin") if m in sys.modules]


if __name__ == "__main__":
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["colorsys"])  # the caller's own, its server not started yet
    stop = threading.Event()
    waiting = threading.Thread(target=stop.wait)
    waiting.start()  # a caller with a thread (a notebook's kernel): imgdup's workers come from a fork server
    try:
        imgdup.find_duplicates(sys.argv[1], jobs=1)
    finally:
        stop.set()
        waiting.join()
    print(multiprocessing.forkserver._forkserver._preload_modules)
    with ctx.Pool(1) as pool:
        print(pool.apply(loaded))
"""


@pytest.mark.skipif("forkserver" not in __import__("multiprocessing").get_all_start_methods(), reason="no fork server")
def test_a_scan_leaves_the_callers_fork_server_preload_as_it_was(tmp_path: Path) -> None:
    """A threaded caller's scan starts its workers from the process's fork server, which imgdup
    told to preload the decoders with ``set_forkserver_preload``: that replaced the caller's own
    list, so a server started by the scan never preloaded the caller's modules, and the caller's
    setting stayed changed. The server a scan starts now preloads both, and the caller's setting
    is as it was. (In a process of its own: this one may have a fork server running.)"""
    (tmp_path / "d").mkdir()
    make_entries(tmp_path / "d", ["a.png", "b.png"])
    script = tmp_path / "caller.py"  # a file: the server's children import the caller's functions from it
    script.write_text(_CALLERS_FORKSERVER, encoding="utf-8")
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "d")], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    setting, loaded = out.stdout.splitlines()
    assert setting == "['colorsys']"
    assert loaded == "['colorsys', 'PIL.PngImagePlugin']"  # the caller's, and the decoders still preloaded


_FRESH_CALLER = """
import multiprocessing, sys, threading

import imgdup


def loaded():
    return [m for m in ("PIL.PngImagePlugin", "PIL.JpegImagePlugin") if m in sys.modules]


if __name__ == "__main__":
    stop = threading.Event()
    waiting = threading.Thread(target=stop.wait)
    waiting.start()  # a caller with a thread: imgdup's workers come from a fork server
    try:
        imgdup.find_duplicates(sys.argv[1], jobs=1)
    finally:
        stop.set()
        waiting.join()
    with multiprocessing.get_context("forkserver").Pool(1) as pool:  # a child of the server the scan started
        print(pool.apply(loaded))
"""


@pytest.mark.skipif("forkserver" not in __import__("multiprocessing").get_all_start_methods(), reason="no fork server")
def test_the_fork_server_a_scan_starts_preloads_the_decoders_in_a_caller_that_never_used_one(tmp_path: Path) -> None:
    """multiprocessing.forkserver is imported by a process's first fork server start, not before:
    _preloading read the preload list from it and, not finding it, preloaded nothing, so the
    server the first threaded scan started (kept for the process's life) never had the decoders,
    and every worker imported them itself (QA pass 28). (In a process of its own, which has never
    imported it: this one has.)"""
    (tmp_path / "d").mkdir()
    make_entries(tmp_path / "d", ["a.png", "b.png"])
    script = tmp_path / "caller.py"
    script.write_text(_FRESH_CALLER, encoding="utf-8")
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "d")], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['PIL.PngImagePlugin', 'PIL.JpegImagePlugin']"
