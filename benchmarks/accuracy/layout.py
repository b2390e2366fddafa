"""Per-category recall on the layout edits (borders, letterboxes, captions, rotations, crops,
screenshots, collages), with and without ``regions``, and what regions cost on a cold run.

For each dataset made by ``generate.py`` (one per seed) the files are hashed once per setting
(in-process, no cache) and clustered at the default threshold and keep policy; the report scored
is the document ``--report`` writes. The cost is measured on a separate folder (dogs-1000) by
running the ``imgdup`` command cold (``--no-cache``), with ``--no-regions`` and ``--regions``,
alternating, and taking medians.

Usage (from the repository root)::

    python -m benchmarks.accuracy.layout --dataset /tmp/acc/s0 --dataset /tmp/acc/s1 \\
        --cost ../shared/datasets/dogs-1000 --jobs 2 --write
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .edits import CATEGORY
from .evaluate import evaluate, load_json
from .generate import REPO_ROOT, default_truth_path

DEFAULT_OUTPUT = REPO_ROOT / "benchmarks" / "ACCURACY.md"
MARKER = "<!-- layout edits: written by benchmarks/accuracy/layout.py -->"


def score(dataset: Path, truth: dict[str, Any], *, regions: bool, jobs: int, threshold: int | None) -> dict[str, Any]:
    """Hash, cluster and evaluate one dataset with one setting; adds the hashing seconds."""
    from imgdup.discover import discover, normalise_roots
    from imgdup.models import HashSettings, ImageRecord, ScanSettings
    from imgdup.parallel import hash_all
    from imgdup.pipeline import DEFAULT_THRESHOLD, cluster_records, make_result
    from imgdup.plan import to_document
    from imgdup.policy import DEFAULT_KEEP

    t = DEFAULT_THRESHOLD if threshold is None else threshold
    roots = normalise_roots([dataset])
    entries, skipped, _unread = discover(roots)  # a generated set: every folder readable
    settings = HashSettings(regions=regions)
    started = time.perf_counter()
    results = hash_all(entries, settings, jobs=jobs)
    hash_seconds = time.perf_counter() - started
    records = [r for r in results if isinstance(r, ImageRecord)]
    failures = tuple(r for r in results if not isinstance(r, ImageRecord))
    started = time.perf_counter()
    scanned = cluster_records(records, settings, threshold=t, keep=DEFAULT_KEEP, jobs=jobs)
    search_seconds = time.perf_counter() - started
    result = make_result(
        scanned,
        settings=ScanSettings(hash=settings, threshold=t, keep=DEFAULT_KEEP, index="auto"),
        roots=roots,
        files=len(entries),
        from_cache=0,
        failures=failures,  # type: ignore[arg-type]
        skipped=tuple(skipped),
        seconds=0.0,
    )
    scored = evaluate(to_document(result), truth)
    scored["hash_seconds"] = hash_seconds
    scored["search_seconds"] = search_seconds
    return scored


def by_category(scored: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """(found, total) per category of the transforms :data:`CATEGORY` names."""
    out: dict[str, tuple[int, int]] = {}
    for name, fig in scored["per_transform"].items():
        cat = CATEGORY.get(name)
        if cat is None:
            continue
        found, total = out.get(cat, (0, 0))
        out[cat] = (found + fig["found"], total + fig["total"])
    return out


def cold_runs(folder: Path, *, jobs: int, repeats: int) -> dict[str, list[float]]:
    """Wall seconds, and CPU seconds of the command and its workers, of ``imgdup --no-cache`` on
    ``folder`` with ``--no-regions`` (imgdup before regions) and ``--regions``, alternating.

    CPU time is reported beside wall time because on a shared machine other processes stretch
    wall time far more than they stretch the CPU time a run itself needs.
    """
    times: dict[str, list[float]] = {"plain": [], "regions": [], "plain cpu": [], "regions cpu": []}
    base = [sys.executable, "-m", "imgdup", "-d", str(folder), "--no-cache", "--no-progress", "-q", "-j", str(jobs)]
    for _ in range(repeats):
        for name, extra in (("plain", ["--no-regions"]), ("regions", ["--regions"])):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            subprocess.run([*base, *extra], check=False, stdout=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            times[f"{name} cpu"].append(cpu)
    return times


def _pct(found: int, total: int) -> str:
    return f"{100 * found / total:.1f}" if total else "n/a"


def markdown(
    runs: list[tuple[str, dict[str, Any], dict[str, Any]]], cost: dict[str, list[float]] | None, command: str
) -> str:
    """The per-category table (plain vs regions, per seed) and the cost."""
    cats = sorted({c for _, a, b in runs for c in (*by_category(a), *by_category(b))}, key=_order)
    head = " | ".join(f"{name} plain | {name} regions" for name, _, _ in runs)
    lines = [
        MARKER,
        "",
        "## Layout edits: borders, letterboxes, captions, rotations, crops, screenshots",
        "",
        f"Command: `{command}`. Defaults (phash, 64 bits, T=8) with `regions` off (*plain*) and on.",
        "Recall per category: % of variants clustered with their source original.",
        "",
        f"| category | {head} |",
        "|---|" + "---:|" * (2 * len(runs)),
    ]
    for cat in cats:
        cells = []
        for _, a, b in runs:
            cells += [_pct(*by_category(a).get(cat, (0, 0))), _pct(*by_category(b).get(cat, (0, 0)))]
        lines.append(f"| {cat} | " + " | ".join(cells) + " |")
    rows = [
        ("P expected", lambda s: f"{s['pairs']['expected']['precision']:.4f}"),
        ("R expected", lambda s: f"{s['pairs']['expected']['recall']:.4f}"),
        ("F1 expected", lambda s: f"{s['pairs']['expected']['f1']:.4f}"),
        ("wrong pairs (exp d-d/d-v/cross; hard d-v/cross)", _wrong),
        ("pictures lost by --remove 1 (sources+distractors)", _lost),
        ("hashing seconds (in-process)", lambda s: f"{s['hash_seconds']:.1f}"),
    ]
    for label, fmt in rows:
        cells = []
        for _, a, b in runs:
            cells += [fmt(a), fmt(b)]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if cost:
        plain, reg = statistics.median(cost["plain"]), statistics.median(cost["regions"])
        cpu_plain, cpu_reg = statistics.median(cost["plain cpu"]), statistics.median(cost["regions cpu"])
        spread = [r / p for p, r in zip(cost["plain"], cost["regions"])]
        lines += [
            "",
            f"Cold run (`imgdup --no-cache`, dogs-1000, {len(cost['plain'])} alternating runs each, medians): "
            f"{plain:.2f} s with `--no-regions` (imgdup before regions), {reg:.2f} s with `--regions` "
            f"(the default): **{reg / plain:.2f}x** (pairwise ratios {min(spread):.2f}-{max(spread):.2f}). "
            f"CPU time of the command and its workers: {cpu_plain:.2f} s and {cpu_reg:.2f} s: "
            f"**{cpu_reg / cpu_plain:.2f}x**.",
        ]
    return "\n".join(lines) + "\n"


def _order(cat: str) -> tuple[int, str]:
    order = [
        *("border", "letterbox", "caption", "rotation <= 3", "rotation 5", "edge crop 5%", "edge crop 10%"),
        *("centre crop 5%", "centre crop 10%", "centre crop 20%", "centre crop 30%", "screenshot", "collage"),
    ]
    return (order.index(cat) if cat in order else len(order), cat)


def _wrong(s: dict[str, Any]) -> str:
    we, wh = s["pairs"]["expected"]["wrong"], s["pairs"]["hard"]["wrong"]
    return (
        f"{we['distractor_distractor']}/{we['distractor_variant']}/{we['cross_source']}; "
        f"{wh['distractor_variant']}/{wh['cross_source']}"
    )


def _lost(s: dict[str, Any]) -> str:
    rm = s["removal"]
    return "n/a" if rm is None else f"{rm['lost_groups']}+{rm['lost_distractors']}"


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, type=Path, action="append", help="folder made by generate.py")
    parser.add_argument("--cost", type=Path, help="folder to time cold runs on (e.g. dogs-1000)")
    parser.add_argument("--repeats", type=int, default=3, help="cold runs per setting (default 3)")
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("-t", "--threshold", type=int)
    default = DEFAULT_OUTPUT.relative_to(REPO_ROOT)
    parser.add_argument("--write", nargs="?", const=DEFAULT_OUTPUT, type=Path, metavar="FILE",
                        help=f"replace the layout section of FILE (default {default})")  # fmt: skip
    args = parser.parse_args(argv)
    runs = []
    for dataset in args.dataset:
        truth = load_json(default_truth_path(dataset))
        label = f"seed {truth['seed']}"
        plain = score(dataset, truth, regions=False, jobs=args.jobs, threshold=args.threshold)
        reg = score(dataset, truth, regions=True, jobs=args.jobs, threshold=args.threshold)
        runs.append((label, plain, reg))
        print(f"{label}: done", file=sys.stderr, flush=True)
    cost = cold_runs(args.cost, jobs=args.jobs, repeats=args.repeats) if args.cost else None
    command = "python -m benchmarks.accuracy.layout " + " ".join(
        [f"--dataset <seed {r[0].split()[-1]}>" for r in runs]
        + ([f"--cost dogs-1000 --repeats {args.repeats}"] if args.cost else [])
        + [f"--jobs {args.jobs}"]
    )
    text = markdown(runs, cost, command)
    print(text, end="")
    if args.write:
        old = args.write.read_text(encoding="utf-8") if args.write.exists() else ""
        head = old.split(MARKER)[0].rstrip("\n")
        args.write.write_text((head + "\n\n" if head else "") + text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
