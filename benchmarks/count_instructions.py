"""Instructions per pipeline stage of one imgdup command, counted by callgrind (deterministic).

On a shared 2-core host whole-command timings move by 10-30% from run to run, so a change worth
a few percent cannot be seen in them (session 19: the order of two runs in a pair alone moved
their medians by ~8%). Instruction counts do not move: this runs the command once, in one
process, under valgrind's callgrind, and prints the instructions spent in each stage (the walk,
the hash pass or cache read, the search, the decisions, the dataset step, the report). Compare
two versions of the code by running it twice, each with PYTHONPATH at one checkout.

    python benchmarks/count_instructions.py -- -d DIR --format json --no-cache
    python benchmarks/count_instructions.py --cache-from warm.sqlite3 -- -d new --reference ref --format json

Counts cover the main process only (worker processes are not followed: with ``-j 1`` and every
file cached nothing is hashed in workers). ``--cache-from`` copies a cache for the run, so the
command starts from the same state every time (a run writes its memos into its cache). Needs
valgrind, gcc and valgrind's headers (Debian: valgrind); ~50x slower than a plain run.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import functools
import importlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from typing import Any

# (module, function, stage): counted at every call; a stage nested in another is not counted in it
STAGES = (
    ("imgdup.pipeline", "discover", "walk"),
    ("imgdup.pipeline", "hash_with_cache", "hash pass / cache read"),
    ("imgdup.pipeline", "cluster_records", "clustering, other"),
    ("imgdup.pipeline", "_components", "search"),
    ("imgdup.pipeline", "decide_all", "decisions"),
    ("imgdup.pipeline", "dataset_sets", "dataset step"),
    ("imgdup.cli", "to_document", "report document"),
    ("imgdup.cli", "to_json_text", "report JSON text"),
)
SHIM = "#include <valgrind/callgrind.h>\nvoid dump(const char *name) { CALLGRIND_DUMP_STATS_AT(name); }\n"


def _inner(shim: str, args: list[str]) -> None:
    """Inside valgrind: dump the counts at every stage's start and end, run the command."""
    lib = ctypes.CDLL(shim)
    stack = ["other"]  # the stage running now: instructions since the last dump are its

    def dump() -> None:
        lib.dump(stack[-1].encode())

    def wrap(module: Any, name: str, stage: str) -> None:
        inner = getattr(module, name)

        @functools.wraps(inner)
        def counted(*a: Any, **k: Any) -> Any:
            dump()
            stack.append(stage)
            try:
                return inner(*a, **k)
            finally:
                dump()
                stack.pop()

        setattr(module, name, counted)

    modules = {name: importlib.import_module(name) for name in dict.fromkeys(m for m, _f, _s in STAGES)}
    lib.dump(b"start and imports")
    for module_name, name, stage in STAGES:
        if hasattr(modules[module_name], name):
            wrap(modules[module_name], name, stage)
        else:
            print(f"count_instructions: {module_name}.{name} not found: not counted apart", file=sys.stderr)
    with contextlib.redirect_stdout(io.StringIO()):
        code = modules["imgdup.cli"].main(args)
    dump()
    if code:
        print(f"count_instructions: the command exited with {code}", file=sys.stderr)


def _counts(folder: str) -> Counter[str]:
    """Instructions by stage, from callgrind's dump files (one per dump, named by its stage)."""
    out: Counter[str] = Counter()
    for name in os.listdir(folder):
        with open(os.path.join(folder, name), errors="replace") as fh:
            text = fh.read()
        stage = re.search(r"^desc: Trigger: Client Request: (.*)$", text, re.M)
        total = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
        if total:
            out[stage.group(1) if stage else "exit"] += int(total.group(1))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--inner", help=argparse.SUPPRESS)
    p.add_argument("--cache-from", help="copy this cache for the run and pass it as --cache")
    p.add_argument("command", nargs=argparse.REMAINDER, help="imgdup's arguments, after --")
    args = p.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if args.inner:
        _inner(args.inner, command)
        return
    missing = [tool for tool in ("valgrind", "gcc") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"count_instructions: needs {' and '.join(missing)} (Debian: apt-get install valgrind gcc)")
    with tempfile.TemporaryDirectory() as tmp:
        shim = os.path.join(tmp, "shim.so")
        with open(os.path.join(tmp, "shim.c"), "w") as fh:
            fh.write(SHIM)
        built = subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-o", shim, fh.name], capture_output=True, text=True)
        if built.returncode:
            sys.exit(f"count_instructions: cannot build the callgrind shim (valgrind's headers?):\n{built.stderr}")
        if args.cache_from:
            cache = os.path.join(tmp, "cache.sqlite3")
            shutil.copyfile(args.cache_from, cache)
            command += ["--cache", cache]
        dumps = os.path.join(tmp, "dumps")
        os.mkdir(dumps)
        run = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={dumps}/cg.out",
            sys.executable, os.path.abspath(__file__), "--inner", shim, "--", *command,
        ]  # fmt: skip
        done = subprocess.run(run, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"count_instructions: the run failed:\n{done.stderr[-3000:]}")
        counts = _counts(dumps)
    total = sum(counts.values())
    print(f"imgdup {' '.join(command)}")
    for stage, n in counts.most_common():
        print(f"  {stage:40s} {n / 1e9:8.3f} G  {100 * n / total:5.1f}%")
    print(f"  {'whole process':40s} {total / 1e9:8.3f} G")


if __name__ == "__main__":
    main()
