"""Shared helpers of the benchmark scripts: dataset location, child-process measurement."""

from __future__ import annotations

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


def run_measured(cmd: list[str], *, env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run a command; return (wall seconds, peak RSS in MiB, stdout).

    The peak is wait4's ru_maxrss for that one child: the largest resident set among the
    process and the worker processes it waited for (Linux).
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode not in (0, 3):
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.read()[-2000:]}")
        return seconds, usage.ru_maxrss / 1024, out.read()


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
