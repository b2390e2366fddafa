"""Benchmark of the Dask engine on a LocalCluster: the distributed self-join, hashing, union-find.

1. Self-join of N synthetic 64-bit hashes with planted near-duplicates (bench_index.make_hashes)
   at each threshold, on a fresh LocalCluster of ``--workers`` worker processes with a memory
   limit each (past it they spill to disk). Checked against the local MIH (the pairs must be
   identical, else exit 1) up to ``--check-max``. Reports wall time, each worker's peak RSS,
   and per-task costs from the task stream (map: emit rows; reduce: verify a bucket).
2. Hashing throughput per worker: the same files hashed by the local engine's pool with one
   process and by a one-worker cluster; median of ``--repeats`` alternating runs.
3. Union-find on the driver (imgdup.cluster.components) over E edges in a child process: time
   and peak RSS, to say how far the driver-side clustering goes.

    python benchmarks/bench_dask.py --sizes 100000,1000000 --thresholds 4,8 --json out.json
    python benchmarks/bench_dask.py --smoke
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import dogs1000, machine
from bench_index import make_hashes

from imgdup.discover import discover
from imgdup.index import mih_pairs, to_words
from imgdup.models import HashSettings
from imgdup.parallel import hash_all
from imgdup.subsets import subset_plan


def _peak_rss_mib() -> float:
    """This process's peak RSS: VmHWM (ru_maxrss would carry the parent's peak across exec)."""
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):  # pragma: no cover - not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _task_costs(stream: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Compute seconds per task kind (the function name in the key), from Dask's task stream."""
    from dask.utils import key_split

    per: dict[str, list[float]] = defaultdict(list)
    for task in stream:
        name = key_split(task["key"])
        spent = sum(s["stop"] - s["start"] for s in task["startstops"] if s["action"] == "compute")
        per[name].append(spent)
    return {k: {"tasks": len(v), "median_s": statistics.median(v), "total_s": sum(v)} for k, v in per.items()}


def bench_join(n: int, t: int, *, workers: int, memory_limit: str, check_max: int, seed: int) -> dict[str, Any]:
    from distributed import get_task_stream

    from imgdup.engine import dask as engine

    hashes = make_hashes(n, seed)
    words = to_words(hashes, 64)
    del hashes
    plan = subset_plan(n, t, 64)
    row: dict[str, Any] = {"n": n, "t": t, "chunks": len(plan.widths), "agree": plan.agree,
                           "rows_per_hash": plan.rows_per_hash, "workers": workers,
                           "memory_limit": memory_limit}  # fmt: skip
    with engine.connect(jobs=workers, memory_limit=memory_limit, dashboard_address=None) as client:
        client.run(lambda: None)
        with get_task_stream(client) as ts:
            started = time.perf_counter()
            a, b, d = engine.join_arrays(client, words, t, 64)
            row["dask_s"] = round(time.perf_counter() - started, 2)
        row["worker_peak_mib"] = sorted(round(v) for v in client.run(_peak_rss_mib).values())
        row["tasks"] = _task_costs(ts.data)
        # The same pairs through the distributed connected components, checked against union-find.
        started = time.perf_counter()
        labels, rounds = engine.min_label_components(client, n, [(a[i::4], b[i::4]) for i in range(4)])
        row["min_label_s"], row["min_label_rounds"] = round(time.perf_counter() - started, 2), rounds
    from imgdup.cluster import UnionFind

    uf = UnionFind(n)
    for x, y in zip(a.tolist(), b.tolist()):
        uf.union(x, y)
    roots = np.fromiter((uf.find(i) for i in range(n)), dtype=np.int64, count=n)
    least = np.full(n, n, dtype=np.int64)
    np.minimum.at(least, roots, np.arange(n))
    row["min_label_identical"] = bool(np.array_equal(labels, least[roots]))
    row["pairs"] = len(a)
    buckets = row["tasks"].get("join_task", {}).get("tasks", 0)
    row["buckets"] = buckets
    if n <= check_max:
        started = time.perf_counter()
        la, lb, ld = mih_pairs(words, t, 64)
        row["local_mih_s"] = round(time.perf_counter() - started, 2)
        row["identical"] = bool(np.array_equal(a, la) and np.array_equal(b, lb) and np.array_equal(d, ld))
    return row


def bench_hashing(files: int, repeats: int) -> dict[str, Any]:
    """Wall time per file of each engine with one process, median of ``repeats``. (CPU time is
    not compared: the Dask worker's guarded decoders are children of its fork server, whose
    usage the worker never sees.)"""
    from imgdup.engine import dask as engine

    entries, _, _ = discover([dogs1000()])
    entries = entries[:files]
    settings = HashSettings()
    local_s, dask_s = [], []
    # The local pool first, as the command runs it (a single-threaded parent forks its worker);
    # then the cluster (one worker, warmed up: imports and its forkserver started).
    hash_all(entries[:64], settings, jobs=1)
    for _ in range(repeats):
        started = time.perf_counter()
        local = hash_all(entries, settings, jobs=1)
        local_s.append(time.perf_counter() - started)
    with engine.connect(jobs=1, dashboard_address=None) as client:
        engine.run_batches(client, entries[:256], settings)
        for _ in range(repeats):
            started = time.perf_counter()
            remote = engine.run_batches(client, entries, settings)
            dask_s.append(time.perf_counter() - started)
    if [getattr(r, "hash", None) for r in local] != [getattr(r, "hash", None) for r in remote]:
        sys.exit("hashing: the engines disagree")
    lm, dm = statistics.median(local_s), statistics.median(dask_s)
    return {"files": len(entries), "repeats": repeats,
            "local_files_per_s": round(len(entries) / lm), "dask_files_per_s": round(len(entries) / dm),
            "dask_over_local_wall": round(dm / lm, 3),
            "local_s": [round(x, 3) for x in local_s], "dask_s": [round(x, 3) for x in dask_s]}  # fmt: skip


def _uf_child(n: int, edges: int) -> None:
    from imgdup.cluster import components
    from imgdup.models import Match

    before = _peak_rss_mib()
    rng = np.random.default_rng(0)
    a = rng.integers(0, n, edges).tolist()
    b = rng.integers(0, n, edges).tolist()
    started = time.perf_counter()
    matches = list(map(Match, a, b, [0] * edges))
    groups = components(n, matches)
    seconds = time.perf_counter() - started
    print(json.dumps({"nodes": n, "edges": edges, "seconds": round(seconds, 2), "groups": len(groups),
                      "added_peak_mib": round(_peak_rss_mib() - before)}))  # fmt: skip


def bench_union_find(n: int, edges: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--uf-child", f"{n},{edges}"], capture_output=True, text=True)
    if out.returncode:
        sys.exit(out.stderr)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="100000,1000000")
    p.add_argument("--thresholds", default="4,8")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--memory-limit", default="2GiB", help="per worker; past ~60%% of it a worker spills to disk")
    p.add_argument("--check-max", type=int, default=1_000_000, help="compare with the local MIH up to this N")
    p.add_argument("--hash-files", type=int, default=1000, help="files of dogs-1000 for the hashing comparison")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--union-find", default="1000000,1000000", help="nodes,edges for the driver union-find")
    p.add_argument("--skip", default="", help="comma-separated parts to skip: join, hashing, uf")
    p.add_argument("--smoke", action="store_true", help="tiny sizes: a check that the script runs")
    p.add_argument("--json", type=Path)
    p.add_argument("--uf-child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.uf_child:
        _uf_child(*map(int, args.uf_child.split(",")))
        return 0
    if args.smoke:
        args.sizes, args.thresholds, args.hash_files, args.repeats = "20000", "4", 100, 1
        args.union_find = "10000,10000"
    skip = set(filter(None, args.skip.split(",")))
    out: dict[str, Any] = {"machine": machine(), "join": [], "hashing": None, "union_find": None}
    failed = False
    if "join" not in skip:
        for n in map(int, args.sizes.split(",")):
            for t in map(int, args.thresholds.split(",")):
                row = bench_join(n, t, workers=args.workers, memory_limit=args.memory_limit,
                                 check_max=args.check_max, seed=n + t)  # fmt: skip
                out["join"].append(row)
                failed |= row.get("identical") is False or not row["min_label_identical"]
                tasks = row["tasks"]
                print(f"N={n:>11,} t={t} m={row['chunks']} s={row['agree']} rows/hash={row['rows_per_hash']:>4} "
                      f"buckets={row['buckets']:>5} dask {row['dask_s']:>7.2f} s  local MIH "
                      f"{row.get('local_mih_s', float('nan')):>6.2f} s  identical={row.get('identical', '-')}  "
                      f"worker peak {row['worker_peak_mib']} MiB  pairs {row['pairs']:,}", flush=True)  # fmt: skip
                print(f"    min-label components: {row['min_label_s']} s, {row['min_label_rounds']} rounds, "
                      f"same as union-find: {row['min_label_identical']}")  # fmt: skip
                for name, cost in sorted(tasks.items()):
                    print(f"    {name:<12} {cost['tasks']:>7} tasks, median {cost['median_s'] * 1e3:8.1f} ms, "
                          f"total {cost['total_s']:7.1f} s", flush=True)  # fmt: skip
    if "hashing" not in skip:
        out["hashing"] = h = bench_hashing(args.hash_files, args.repeats)
        print(f"hashing {h['files']} files, one worker: local pool {h['local_files_per_s']} files/s, "
              f"dask {h['dask_files_per_s']} files/s (dask/local wall time {h['dask_over_local_wall']:.2f}; "
              f"runs: local {h['local_s']} s, dask {h['dask_s']} s)")  # fmt: skip
    if "uf" not in skip:
        n, e = map(int, args.union_find.split(","))
        out["union_find"] = u = bench_union_find(n, e)
        print(f"driver union-find: {u['nodes']:,} nodes, {u['edges']:,} edges: {u['seconds']} s, "
              f"+{u['added_peak_mib']} MiB peak")  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))
    if failed:
        print("the Dask join and the local MIH disagree", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
