"""Time the HTML report's thumbnails and the montages, in one worker process and in several, on one scan.

``--report FILE.html`` decodes every cluster member again to make its thumbnail (``FILE_files/``):
on the 20,000-file variant set, 8,937 of them. This script builds (or reuses) the labelled
variant set of bench_e2e.py (``--scale`` files, made from dogs-1000), scans it once with a cache,
then times :func:`imgdup.report.html.write_thumbnails` and :func:`imgdup.write_montages` into
fresh folders for each ``--jobs`` value, the values taking turns in every repeat (shared noise),
and prints the medians, the cost per file and each ratio to the first value. It checks that
every run made the same files, byte for byte.

    python benchmarks/bench_thumbnails.py                          # 5,000 files, -j 1 and 2, 3 repeats
    python benchmarks/bench_thumbnails.py --scale 20000 --repeats 3
    python benchmarks/bench_thumbnails.py --smoke                  # 60 files, one repeat, for CI
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import imgdup
from benchmarks._common import dogs1000, machine
from benchmarks.bench_e2e import build_scale_set
from imgdup.report.html import thumbnail_folder, write_thumbnails


def _digest(folder: Path) -> str:
    """One digest of every file in ``folder`` (names and bytes): runs that made the same files agree."""
    h = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=int, default=5000, help="files in the variant set")
    p.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "imgdup-bench")
    p.add_argument("--jobs", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", type=Path, help="write the figures here")
    p.add_argument("--smoke", action="store_true", help="tiny run for CI: 60 files, 1 repeat")
    args = p.parse_args()
    if args.smoke:
        args.scale, args.repeats = 60, 1
    workdir = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    data = build_scale_set(dogs1000(), workdir / f"scale-{args.scale}", args.scale)
    result = imgdup.find_duplicates(data, cache=workdir / "thumbs-cache.sqlite3")
    members = sum(len(c.members) for c in result.clusters)
    print(f"{data}: {len(result.clusters)} clusters, {members} members", flush=True)
    kinds = ("thumbnails", "montages")
    times: dict[tuple[str, int], list[float]] = {(k, j): [] for k in kinds for j in args.jobs}
    made: dict[str, set[str]] = {k: set() for k in kinds}
    count = {k: 0 for k in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for j in args.jobs:
                page = Path(tmp, f"r{r}-j{j}.html")
                started = time.perf_counter()
                count["thumbnails"] = len(write_thumbnails(result, page, jobs=j))
                times["thumbnails", j].append(time.perf_counter() - started)
                made["thumbnails"].add(_digest(Path(thumbnail_folder(str(page)))))
                sheets = Path(tmp, f"r{r}-j{j}-sheets")
                started = time.perf_counter()
                count["montages"] = len(imgdup.write_montages(result, sheets, jobs=j))
                times["montages", j].append(time.perf_counter() - started)
                made["montages"].add(_digest(sheets))
    figures: dict[str, Any] = {"machine": machine(), "files": args.scale, "repeats": args.repeats}
    for kind in kinds:
        if len(made[kind]) != 1:
            sys.exit(f"the runs made different {kind}")
        base = statistics.median(times[kind, args.jobs[0]])
        print(f"{count[kind]} {kind}, median of {args.repeats}:")
        figures[kind] = {"files": count[kind], "jobs": {}}
        for j in args.jobs:
            s = statistics.median(times[kind, j])
            per = 1000 * s / max(count[kind], 1)
            print(f"  -j{j}: {s:7.2f} s  {per:6.2f} ms a file  {s / base:5.2f}x of -j{args.jobs[0]}")
            figures[kind]["jobs"][str(j)] = {
                "seconds": round(s, 3),
                "ms_per_file": round(per, 3),
                "ratio": round(s / base, 3),
            }
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
