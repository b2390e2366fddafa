"""Hashing workers die with the main process: a killed imgdup leaves no orphan behind.

A caller that reads imgdup's stderr (a pipe) must see end-of-file once imgdup is killed: an
orphaned worker would hold the pipe open, and go on decoding, forever.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from .synth import photo

REPO = Path(__file__).resolve().parents[1]

# Installed in every process of the run (main, forkserver, workers) through sitecustomize: a
# file named *slow* takes an hour to "decode", and the worker says so by creating a marker.
_SITECUSTOMIZE = textwrap.dedent(
    """
    import os
    if os.environ.get("IMGDUP_TEST_SLOW_MARKERS"):
        import time
        import imgdup.hashing as h
        _read = h._read
        def slow_read(entry):
            if "slow" in os.path.basename(entry.path):
                marker = os.path.join(os.environ["IMGDUP_TEST_SLOW_MARKERS"], str(os.getpid()))
                open(marker, "w").close()
                time.sleep(3600)
            return _read(entry)
        h._read = slow_read
    """
)

# The CLI entry point, with the start method forced; a second thread is what makes imgdup pick
# forkserver on its own, the parameter also pins it so that the test covers both paths.
_MAIN = textwrap.dedent(
    """
    import multiprocessing, sys
    import imgdup.parallel as p
    method = sys.argv[1]
    def context():
        ctx = multiprocessing.get_context(method)
        if method == "forkserver":
            ctx.set_forkserver_preload(["imgdup.hashing"])
        return ctx
    p._context = context
    from imgdup.cli import main
    sys.exit(main(sys.argv[2:]))
    """
)


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, grandchildren: forkserver workers)."""
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as fh:
                    parents[int(name)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        kids = {c for c, pp in parents.items() if pp == p} - found
        found |= kids
        todo.extend(kids)
    return found


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for a reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("method", ["fork", "forkserver"])
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killing_imgdup_ends_its_workers_and_its_stderr(tmp_path: Path, method: str, sig: int) -> None:
    root = tmp_path / "data"
    root.mkdir()
    for i in range(32):  # two chunks of 16 files (one per worker), each ending with a slow file
        photo(900 + i, (48, 36)).save(root / (f"{i:02d}-slow.png" if i in (15, 31) else f"{i:02d}.png"))
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    markers = tmp_path / "markers"
    markers.mkdir()
    path = os.pathsep.join([str(site), str(REPO)])
    env = {**os.environ, "PYTHONPATH": path, "IMGDUP_TEST_SLOW_MARKERS": str(markers)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _MAIN, method, "-d", str(root), "-j", "2", "--no-cache", "--no-progress"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=tmp_path,
    )  # fmt: skip
    eof = threading.Event()

    def drain() -> None:
        assert proc.stderr is not None
        proc.stderr.read()
        eof.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 30
        while len(list(markers.iterdir())) < 2:  # both workers are inside a slow file
            assert proc.poll() is None, "imgdup ended before its workers reached the slow files"
            assert time.monotonic() < deadline, "the workers never reached the slow files"
            time.sleep(0.05)
        workers = descendants(proc.pid)
        busy = {int(p.name) for p in markers.iterdir()}
        assert busy <= workers
        proc.send_signal(sig)
        proc.wait(timeout=30)
        assert eof.wait(timeout=20), "stderr stayed open after imgdup was killed: a worker still holds it"
        deadline = time.monotonic() + 20
        while any(alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [p for p in workers if alive(p)], "worker processes outlived imgdup"
    finally:
        for p in workers | descendants(proc.pid):
            if alive(p):
                os.kill(p, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
