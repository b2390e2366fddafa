"""Incremental check of a new batch against a cached reference set, timed against a cold scan.

"I added a new batch: which of it do I already have?" ``imgdup -d new --reference ref`` with the
hash cache warm for ``ref`` decodes only the new batch; the reference side costs a cache read.
This script builds a reference set (originals of most dogs-1000 photos plus transformed
variants, ``--reference-size`` files) and a new batch (``--batch-size`` files: new variants of
reference photos, and photos the reference does not hold with variants of their own), then
times, as whole ``imgdup`` commands (median of ``--repeats``):

* cold: ``-d new --reference ref --no-cache`` (every file decoded);
* incremental: the same command with a cache that holds the reference only (a fresh copy of it
  for every repeat, so the new batch is always unseen);

the two alternating (an incremental run, then a cold one, ``--repeats`` times), and checks
that both give the same clusters and actions.

    python benchmarks/bench_incremental.py --workdir /tmp/imgdup-incr                # 20,000 + 1,000
    python benchmarks/bench_incremental.py --workdir /tmp/x --reference-size 2000 --batch-size 200
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import byte_compile_imgdup, dogs1000, machine, run_measured
from benchmarks.accuracy.generate import TRANSFORMS, unique_photos
from benchmarks.accuracy.splits import _variant

EXPECTED = [t for t in TRANSFORMS if not t.hard and t.render is not None]


def recipe() -> str:
    """A short digest of the variants the sets are made of, part of their markers: sets built
    before the generator changed (the layout edits joined it on 2026-11-29) are rebuilt, not
    timed again as if they were today's."""
    return hashlib.sha256(",".join(t.name for t in EXPECTED).encode()).hexdigest()[:8]


def _write_variants(job: tuple[str, str, list[tuple[int, str]]]) -> int:
    photo, folder, todo = job
    for k, name in todo:
        data, suffix = _variant(Path(photo), EXPECTED[k % len(EXPECTED)], f"{name}:{k}")
        Path(folder, name + suffix).write_bytes(data)
    return len(todo)


def build(workdir: Path, ref_size: int, batch_size: int, jobs: int, kind: str) -> tuple[Path, Path]:
    """``workdir/ref`` and ``workdir/new-<kind>`` (each reused when complete).

    ``grouped``: half the batch are new variants of reference photos, half are photos the
    reference lacks, each with 4 variants (groups inside the batch: their keeper is chosen by
    the quality rule, which decodes some of them again). ``distinct``: 90% new variants of
    reference photos, 10% photos the reference lacks, each once (no group inside the batch).
    """
    ref, new = workdir / "ref", workdir / f"new-{kind}"
    photos, _ = unique_photos(dogs1000())
    n_new_photos = max(1, batch_size // 10)  # photos only the new batch holds
    old, fresh = photos[:-n_new_photos][:ref_size], photos[-n_new_photos:]
    per_photo = max(1, ref_size // len(old))
    jobs_list: list[tuple[str, str, list[tuple[int, str]]]] = []
    # What each folder was built from, in one marker per folder (both kinds share the reference,
    # whose split depends on the batch size): a folder is reused only when its marker says what
    # is asked now. Markers named by their settings had let a folder rebuilt for another batch
    # size pass as the one an older marker named.
    ref_built = f"ref {ref_size} {n_new_photos} {recipe()}"
    new_built = f"new {kind} {batch_size} {ref_built}"
    for folder, built, todo in (
        (ref, ref_built, lambda: _ref_jobs(ref, old, ref_size, per_photo)),
        (new, new_built, lambda: _new_jobs(new, old, fresh, batch_size, per_photo, kind)),
    ):
        if _built(folder) != built:
            _marker(folder).unlink(missing_ok=True)  # gone before the folder: an interrupted build is redone
            shutil.rmtree(folder, ignore_errors=True)
            jobs_list += todo()
    with ProcessPoolExecutor(jobs) as pool:
        list(pool.map(_write_variants, jobs_list, chunksize=8))
    _marker(ref).write_text(ref_built)
    _marker(new).write_text(new_built)
    return ref, new


def _marker(folder: Path) -> Path:
    return folder.parent / f".{folder.name}.built"


def _built(folder: Path) -> str | None:
    """What ``folder`` was last built from (complete), or None."""
    try:
        return _marker(folder).read_text()
    except FileNotFoundError:
        return None


def _ref_jobs(
    ref: Path, old: list[Path], ref_size: int, per_photo: int
) -> list[tuple[str, str, list[tuple[int, str]]]]:
    jobs_list = []
    count = 0
    for i, p in enumerate(old):
        folder = ref / f"{i % 50:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, folder / f"{i:05d}-orig{p.suffix.lower()}")
        count += 1
        todo = []
        for k in range(1, per_photo):
            if count >= ref_size:
                break
            todo.append((k, f"{i:05d}-v{k}"))
            count += 1
        jobs_list.append((str(p), str(folder), todo))
    return jobs_list


def _new_jobs(
    new: Path, old: list[Path], fresh: list[Path], batch_size: int, per_photo: int, kind: str
) -> list[tuple[str, str, list[tuple[int, str]]]]:
    jobs_list = []
    seen_variants = batch_size // 2 if kind == "grouped" else batch_size - len(fresh)
    new.mkdir(parents=True, exist_ok=True)
    for j in range(seen_variants):
        p = old[(j * 7) % len(old)]
        jobs_list.append((str(p), str(new), [(per_photo + j, f"seen-{j:05d}")]))
    rest = batch_size - seen_variants
    for j, p in enumerate(fresh):
        shutil.copyfile(p, new / f"fresh-{j:05d}{p.suffix.lower()}")
    extra = rest - len(fresh)
    for j in range(max(0, extra)):
        p = fresh[j % len(fresh)]
        jobs_list.append((str(p), str(new), [(j, f"fresh-{j % len(fresh):05d}-v{j}")]))
    return jobs_list


def _cmd(ref: Path, new: Path, cache: str | None, jobs: int) -> list[str]:
    cmd = [sys.executable, "-m", "imgdup", "-d", str(new), "--reference", str(ref), "-j", str(jobs)]
    return [*cmd, "--no-progress", "--format", "json", *(["--cache", cache] if cache else ["--no-cache"])]


def _clusters(doc: dict[str, Any]) -> list[list[tuple[str, str]]]:
    return [
        sorted((m["path"], m["action"]) for m in c["members"]) for key in ("clusters", "reference_clusters")
        for c in doc[key]
    ]  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--reference-size", type=int, default=20000)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("-j", "--jobs", type=int, default=2)
    p.add_argument("--batch-kind", choices=("grouped", "distinct"), default="grouped", help="see build()")
    p.add_argument("--json", type=Path)
    args = p.parse_args()

    print(f"imgdup byte-compiled at {byte_compile_imgdup()} (as an install is)", flush=True)
    ref, new = build(args.workdir, args.reference_size, args.batch_size, args.jobs, args.batch_kind)
    n_ref = sum(len(f) for _, _, f in os.walk(ref))
    n_new = sum(len(f) for _, _, f in os.walk(new))
    print(f"reference {n_ref} files, new batch ({args.batch_kind}) {n_new} files, -j{args.jobs}, "
          f"median of {args.repeats}", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        warm_ref = os.path.join(tmp, "ref.sqlite3")
        # Any earlier scan of the reference warms the cache; this one hashes it (as a reference
        # it measures no keeper quality: nothing in it is ever acted on).
        fill = [sys.executable, "-m", "imgdup", "--reference", str(ref), "-j", str(args.jobs), "--no-progress",
                "--format", "json", "--cache", warm_ref]  # fmt: skip
        fill_s, _, _ = run_measured(fill)
        print(f"  fill the reference cache       {fill_s:8.2f} s", flush=True)
        # Alternating, an incremental run then a cold one: a shared host's speed drifts over the
        # minutes a run of the script takes, and three of each back to back measured the drift too.
        incr, cold = [], []
        for i in range(args.repeats):
            cache = os.path.join(tmp, f"run{i}.sqlite3")
            shutil.copyfile(warm_ref, cache)
            incr.append(run_measured(_cmd(ref, new, cache, args.jobs)))
            cold.append(run_measured(_cmd(ref, new, None, args.jobs)))
            print(f"  run {i + 1}: incremental {incr[-1][0]:6.2f} s, cold {cold[-1][0]:6.2f} s", flush=True)
    incr_s = statistics.median(r[0] for r in incr)
    cold_s = statistics.median(r[0] for r in cold)
    incr_doc, cold_doc = json.loads(incr[-1][2]), json.loads(cold[-1][2])
    same = _clusters(incr_doc) == _clusters(cold_doc)
    s = incr_doc["summary"]
    print(f"  cold scan of both (no cache)   {cold_s:8.2f} s")
    print(f"  new batch vs cached reference  {incr_s:8.2f} s")
    print(f"  ratio cold / incremental       {cold_s / incr_s:8.2f}x")
    print(f"  same clusters and actions      {same}")
    print(f"  new files already held: {s['to_remove'] + s['to_review']} ({s['clusters']} clusters), "
          f"{s['reference_clusters']} clusters inside the reference")  # fmt: skip
    if args.json:
        out = {"machine": machine(), "reference_files": n_ref, "batch_files": n_new, "batch_kind": args.batch_kind,
               "jobs": args.jobs,
               "cold_seconds": round(cold_s, 3), "incremental_seconds": round(incr_s, 3),
               "ratio": round(cold_s / incr_s, 2), "same_clusters": same, "fill_seconds": round(fill_s, 3),
               "summary": s}  # fmt: skip
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    if not same:
        sys.exit("the incremental run's clusters differ from the cold run's")


if __name__ == "__main__":
    main()
