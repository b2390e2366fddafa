"""Benchmark of the index self-join backends on synthetic 64-bit hashes with planted near-duplicates.

Each (backend, N, threshold) is measured in its own child process, so its peak RSS is its own.
Time is build + query through the public API (``self_join``: conversion, search, Match records),
the median of up to 5 repeats. A backend predicted to exceed ``--budget`` seconds is not run; its
time is extrapolated from its two largest measured sizes and marked "(extrapolated)". Every
measured backend must return the same pairs (compared by a digest), else the script exits 1.

    python benchmarks/bench_index.py --sizes 1000,20000,100000,1000000 --json benchmarks/out/index.json
    python benchmarks/bench_index.py --smoke
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import peak_rss_mib
from imgdup.index import mih_plan, self_join

BITS = 64
MAX_PLANTED_FLIPS = 10  # planted copies differ by 1..10 bits, so every threshold 4..10 finds some
PLANTED_SHARE = 0.2  # a fifth of the hashes are near-copies of another one
# Growth exponents assumed when a backend has only one measured size.
DEFAULT_EXPONENT = {"brute": 2.0, "bktree": 1.8, "mih": 1.4, "faiss": 1.4}


def make_hashes(n: int, seed: int) -> list[int]:
    """N unique 64-bit hashes (Python ints), a fifth planted as 1-10-bit copies of others."""
    rng = np.random.default_rng(seed)
    planted = int(n * PLANTED_SHARE)
    hashes = rng.integers(0, 2**64, n, dtype=np.uint64)
    src = rng.integers(0, n - planted, planted)
    flips = rng.integers(1, MAX_PLANTED_FLIPS + 1, planted)
    noise = np.zeros(planted, dtype=np.uint64)
    for f in range(MAX_PLANTED_FLIPS):
        bit = rng.integers(0, 64, planted).astype(np.uint64)
        noise ^= np.where(flips > f, np.uint64(1) << bit, np.uint64(0))  # a repeated bit flips back
    hashes[n - planted :] = hashes[src] ^ noise
    unique = np.unique(hashes)
    rng.shuffle(unique)  # np.unique sorts; a sorted input would flatter the chunk sorts
    return unique.tolist()


def faiss_join(hashes: list[int], threshold: int) -> list[tuple[int, int, int]]:
    """faiss IndexBinaryMultiHash, made exact like MIH: 3 disjoint 21-bit tables, t // 3 flips."""
    import faiss  # optional: only this comparison needs it

    faiss.omp_set_num_threads(1)
    # faiss reads binary codes as bytes, least significant byte first.
    codes = np.array(hashes, dtype=np.uint64).view(np.uint8).reshape(-1, 8)
    index = faiss.IndexBinaryMultiHash(BITS, 3, 21)
    index.nflip = threshold // 3
    index.add(codes)
    lims, dist, ids = index.range_search(codes, threshold + 1)  # strict: distance < radius
    queries = np.repeat(np.arange(len(hashes)), np.diff(lims).astype(np.int64))
    keep = ids > queries
    return list(zip(queries[keep].tolist(), ids[keep].tolist(), dist[keep].tolist()))


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401 - only probing
    except ImportError:
        return False
    return True


def digest(pairs: list[tuple[int, int, int]]) -> str:
    arr = np.array(sorted(pairs), dtype=np.int64).reshape(-1, 3)
    return hashlib.sha256(arr.tobytes()).hexdigest()[:16]


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(backend: str, n: int, threshold: int, seed: int, budget: float, max_repeats: int) -> dict[str, Any]:
    """One measurement: median time of up to ``max_repeats`` runs within the budget."""
    hashes = make_hashes(n, seed)
    input_mib = rss_mib()
    times: list[float] = []
    pairs: list[tuple[int, int, int]] = []
    while len(times) < max_repeats:
        start = time.perf_counter()
        if backend == "faiss":
            pairs = faiss_join(hashes, threshold)
        else:
            pairs = [(m.a, m.b, m.distance) for m in self_join(hashes, threshold, bits=BITS, backend=backend)]
        times.append(time.perf_counter() - start)
        if sum(times) + times[-1] > budget / 2 or (len(times) >= 3 and times[-1] > 2):
            break
    peak_mib = peak_rss_mib()
    return {
        "n": len(hashes),
        "seconds": float(np.median(times)),
        "repeats": len(times),
        "pairs": len(pairs),
        "digest": digest(pairs),
        "input_mib": round(input_mib, 1),
        "peak_mib": round(peak_mib, 1),
    }


def predict(points: list[tuple[int, float]], n: int, backend: str) -> float:
    """Seconds at size n from the largest measured sizes, by a power law."""
    if not points:
        return 0.0
    (n2, t2) = points[-1]
    exponent = DEFAULT_EXPONENT[backend]
    if len(points) >= 2:
        n1, t1 = points[-2]
        if t1 > 0.05:  # below that, fixed overheads hide the growth
            exponent = min(2.2, max(1.0, math.log(t2 / t1) / math.log(n2 / n1)))
    return t2 * (n / n2) ** exponent


def run_child(backend: str, n: int, threshold: int, args: argparse.Namespace) -> dict[str, Any] | None:
    cmd = [sys.executable, __file__, "--child", f"{backend},{n},{threshold}", "--seed", str(args.seed)]
    cmd += ["--budget", str(args.budget), "--repeats", str(args.repeats)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.budget * 3 + 60, check=True)
    except subprocess.TimeoutExpired:
        print(f"  {backend} N={n} t={threshold}: timed out, extrapolating", file=sys.stderr)
        return None
    except subprocess.CalledProcessError as err:
        print(f"error: {backend} N={n} t={threshold} failed:\n{err.stderr}", file=sys.stderr)
        sys.exit(1)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,20000,100000,1000000,10000000")
    parser.add_argument("--thresholds", default="4,8,10")
    parser.add_argument("--backends", default="mih,brute,bktree,faiss", help="faiss only if importable")
    parser.add_argument("--budget", type=float, default=120.0, help="seconds one measurement may take")
    parser.add_argument("--repeats", type=int, default=5, help="at most; fewer for slow runs")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes for CI: a few seconds")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        backend, n, threshold = args.child.split(",")
        print(json.dumps(child(backend, int(n), int(threshold), args.seed, args.budget, args.repeats)))
        return 0
    if args.smoke:
        args.sizes, args.thresholds, args.budget, args.repeats = "300,1000", "4,8", 2.0, 3
    sizes = sorted(int(s) for s in args.sizes.split(","))
    thresholds = [int(t) for t in args.thresholds.split(",")]
    backends = [b for b in args.backends.split(",") if b != "faiss" or faiss_available()]

    rows: list[dict[str, Any]] = []
    status = 0
    for threshold in thresholds:
        for n in sizes:
            digests: dict[str, str] = {}
            for backend in backends:
                measured = [r for r in rows if (r["backend"], r["t"], r["extrapolated"]) == (backend, threshold, False)]
                points = [(r["n"], r["seconds"]) for r in measured]
                guess = predict(points, n, backend)
                result = run_child(backend, n, threshold, args) if guess <= args.budget else None
                row: dict[str, Any] = {
                    "backend": backend,
                    "t": threshold,
                    "n": n,
                    "extrapolated": result is None,
                }
                if result is None:
                    last_mib = measured[-1]["peak_mib"] - measured[-1]["input_mib"] if measured else 0.0
                    row |= {"seconds": predict(points, n, backend) if points else math.inf}
                    row |= {"pairs": None, "peak_mib": None, "extra_mib_estimate": None}
                    if backend == "mih" and measured:  # MIH's extra memory is linear in N
                        row["extra_mib_estimate"] = round(last_mib * n / measured[-1]["n"], 1)
                else:
                    row |= result
                    row["n"] = n
                    digests[backend] = f"{result['pairs']}:{result['digest']}"
                if backend == "mih":
                    plan = mih_plan(n, threshold, BITS)
                    row["plan"] = f"widths {plan.widths} radii {plan.radii}"
                rows.append(row)
                print(format_row(row), file=sys.stderr, flush=True)
            if len(set(digests.values())) > 1:
                print(f"error: backends disagree at N={n} t={threshold}: {digests}", file=sys.stderr)
                status = 1
    print(table(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
            "python": platform.python_version(),
            "numpy": np.__version__,
            "seed": args.seed,
        }
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, default=str) + "\n")
    return status


def format_row(row: dict[str, Any]) -> str:
    secs = f"{row['seconds']:.3f}" if math.isfinite(row["seconds"]) else "-"
    head = f"| {row['n']:>10,} | {row['t']:>2} | {row['backend']:<6} |"
    if row["extrapolated"]:
        mem = f"~{row['extra_mib_estimate']:.0f} extra" if row.get("extra_mib_estimate") else "-"
        return f"{head} {secs} (extrapolated) | - | {mem} |"
    extra = row["peak_mib"] - row["input_mib"]
    return f"{head} {secs} (x{row['repeats']}) | {row['pairs']:,} | {row['peak_mib']:.0f} ({extra:+.0f}) |"


def table(rows: list[dict[str, Any]]) -> str:
    head = "|          N |  t | backend | seconds (median of repeats) | pairs | peak RSS MiB (over input) |"
    rule = "|-----------:|---:|:-------|----------------------------:|------:|--------------------------:|"
    return "\n".join([head, rule, *(format_row(r) for r in rows)])


if __name__ == "__main__":
    sys.exit(main())
