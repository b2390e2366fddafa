"""Shared helpers of the benchmark scripts: dataset location, child-process measurement."""

from __future__ import annotations

import argparse
import compileall
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOGS_DEFAULT = REPO.parent / "shared" / "datasets" / "dogs-1000"


def dogs1000() -> Path:
    """The dogs-1000 sample (IMGDUP_DOGS1000 or ../shared/datasets/dogs-1000); exit if missing."""
    path = Path(os.environ.get("IMGDUP_DOGS1000", DOGS_DEFAULT))
    if not path.is_dir():
        sys.exit(f"dogs-1000 not found at {path}: set IMGDUP_DOGS1000 or pass --dataset")
    return path


def photos_and_workdir(parser: argparse.ArgumentParser, source: Path | None, workdir: Path | None) -> Path:
    """The folder of photos a generated benchmark starts from (``--source``, else dogs-1000), after
    checking that ``--workdir``, where it builds its sets, is absent or empty (exit if not)."""
    if workdir is not None and workdir.exists() and any(workdir.iterdir()):
        parser.error(f"--workdir {workdir} is not empty")
    if source is None:
        return dogs1000()
    if not source.is_dir():
        sys.exit(f"photo folder not found: {source}")
    return source


def byte_compile_imgdup() -> str:
    """Byte-compile the imgdup package that the timed commands import (the one ``python -m
    imgdup`` finds from this working directory), as ``pip install`` does; return its folder.

    Without it a command from a checkout compiles every changed module again each time it starts
    whenever bytecode is not written (PYTHONDONTWRITEBYTECODE=1, a read-only tree): measured here,
    the imports took 136-155 ms instead of 100 ms, which then counted against every imgdup
    figure (a warm 1,000-file run is ~0.16 s), while the naive pipeline's libraries, installed,
    had their bytecode. compileall writes bytecode whatever that setting says.
    """
    found = subprocess.run(
        [sys.executable, "-c", "import imgdup, os; print(os.path.dirname(imgdup.__file__))"],
        capture_output=True,
        text=True,
        check=True,
    )
    folder = found.stdout.strip()
    compileall.compile_dir(folder, quiet=1)
    return folder


# Starts a timed command and reports its wall seconds, exit status and peak resident set. A
# child that Python starts execs from the parent's memory (vfork), and Linux gives the new process
# the peak resident set of the memory it replaces: every command's peak read at least the
# benchmark's own (the mixed set's six commands all "116 MiB" once the script had decoded the set
# itself; a `true` started by a 300 MB process, 313 MiB). This small interpreter (no site, a few
# MiB) forks the command instead, so the figure is the command's (and its workers').
_LAUNCH = """
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - started
with open(sys.argv[1], "w") as out:
    out.write(f"{seconds!r} {os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
"""


def run_measured(cmd: list[str], *, env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run a command; return (wall seconds, peak RSS in MiB, stdout).

    The peak is wait4's ru_maxrss for that one command: the largest resident set among the
    process and the worker processes it waited for (Linux), measured from a small launcher
    (:data:`_LAUNCH`), not from this process, whose own peak it would otherwise include.
    """
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
        tempfile.TemporaryDirectory() as tmp,
    ):
        result = os.path.join(tmp, "result")
        launcher = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _LAUNCH, result, *cmd], stdout=out, stderr=err, env=env, check=False
        )
        out.seek(0)
        err.seek(0)
        try:
            with open(result) as fh:
                seconds, code, maxrss = fh.read().split()
        except OSError:
            why = f"the launcher failed ({launcher.returncode}):\n{err.read()[-2000:]}"
            raise RuntimeError(f"{' '.join(cmd)}: {why}") from None
        if int(code) not in (0, 3):
            raise RuntimeError(f"{' '.join(cmd)} failed ({code}):\n{err.read()[-2000:]}")
        return float(seconds), int(maxrss) / 1024, out.read()


def peak_rss_mib() -> float:
    """This process's peak resident set in MiB: VmHWM, the peak of its own memory (ru_maxrss also
    holds the peak of the memory it was exec'd from: its parent's, see :data:`_LAUNCH`)."""
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):  # pragma: no cover - not Linux
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, str | int]:
    import numpy
    import PIL

    return {
        "python": platform.python_version(),
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
        "platform": platform.platform(),
        "pillow": PIL.__version__,
        "numpy": numpy.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }
