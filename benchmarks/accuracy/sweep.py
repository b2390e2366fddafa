"""Run imgdup over a generated dataset for several hashes, sizes and thresholds; tabulate accuracy.

Every run is a dry run; nothing in the dataset changes. Each (hash, size) is hashed once and
every threshold re-runs the search and keep policy on those records (in-process). The Markdown table
goes to stdout, and to ``benchmarks/ACCURACY.md`` only with ``--write``.

Usage (from the repository root)::

    python -m benchmarks.accuracy.sweep --dataset /tmp/acc/dataset            # print only
    python -m benchmarks.accuracy.sweep --dataset /tmp/acc/dataset --write    # also write the file
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .evaluate import evaluate, load_json
from .generate import REPO_ROOT, default_truth_path

DEFAULT_OUTPUT = REPO_ROOT / "benchmarks" / "ACCURACY.md"
HASHES = ("phash", "dhash", "ahash", "whash")
SIZES = (8, 16)
# Thresholds in bits per hash size. The first sweep scaled the 64-bit list by 4 for 256 bits and
# phash/dhash-256 were still improving at 64 bits (0 wrong pairs), so that list reaches further.
# Sizes not listed get the 64-bit list scaled by bits/64.
THRESHOLDS: dict[int, tuple[int, ...]] = {
    8: (0, 2, 4, 6, 8, 10, 12, 14, 16),
    16: (0, 16, 32, 48, 64, 72, 80, 88, 96, 112),
}


@dataclass(frozen=True)
class Run:
    """One imgdup configuration and its scored result."""

    hash: str
    size: int
    threshold: int
    seconds: float
    result: dict[str, Any]
    settings: dict[str, Any]

    @property
    def bits(self) -> int:
        return self.size * self.size


def sweep(
    dataset: Path,
    truth: dict[str, Any],
    *,
    hashes: Sequence[str] = HASHES,
    sizes: Sequence[int] = SIZES,
    thresholds: dict[int, Sequence[int]] | None = None,
    rotations: bool = False,
    keep: str | None = None,
    jobs: int | None = None,
    log: Any = print,
) -> list[Run]:
    """Run every combination in-process and score it.

    Each (hash, size) is hashed once; every threshold then re-runs only the search, clustering
    and keep policy (``imgdup.pipeline.cluster_records``) on the same records, and the report
    is the very document ``--report`` writes (``imgdup.plan.to_document``). The keep policy's
    quality check is measured once per file and reused.
    """
    from imgdup.discover import discover, normalise_roots
    from imgdup.models import HashSettings, ImageRecord, ScanSettings
    from imgdup.parallel import default_jobs, hash_all
    from imgdup.pipeline import cluster_records, make_result
    from imgdup.plan import to_document
    from imgdup.policy import DEFAULT_KEEP, parse_keep

    keep_rules = parse_keep(keep or DEFAULT_KEEP)
    jobs = jobs or default_jobs()
    roots = normalise_roots([dataset])
    entries, skipped, _unread = discover(roots)  # a generated set: every folder readable
    measured: dict[str, ImageRecord] = {}  # path -> record with its quality, shared by every run
    runs = []
    for size in sizes:
        for hash_name in hashes:
            settings = HashSettings(algorithm=hash_name, hash_size=size, rotations=rotations)
            started = time.perf_counter()
            results = hash_all(entries, settings, jobs=jobs)
            hash_seconds = time.perf_counter() - started
            records = [r for r in results if isinstance(r, ImageRecord)]
            failures = tuple(r for r in results if not isinstance(r, ImageRecord))
            for threshold in thresholds_for(size, thresholds or {}):
                started = time.perf_counter()
                records = [replace(r, quality=measured[r.path].quality) if r.path in measured else r for r in records]
                scanned = cluster_records(records, settings, threshold=threshold, keep=keep_rules, jobs=jobs)
                records = list(scanned.records)
                measured.update((r.path, r) for r in records if r.quality is not None)
                result_obj = make_result(
                    scanned,
                    settings=ScanSettings(hash=settings, threshold=threshold, keep=keep_rules, index="auto"),
                    roots=roots,
                    files=len(entries),
                    from_cache=0,
                    failures=failures,  # type: ignore[arg-type]
                    skipped=tuple(skipped),
                    seconds=0.0,
                )
                document = to_document(result_obj)
                seconds = time.perf_counter() - started
                result = evaluate(document, truth)
                review = sum(1 for c in document["clusters"] for m in c["members"] if m["action"] == "review")
                result["review_members"] = review
                runs.append(Run(hash_name, size, threshold, seconds, result, document["settings"]))
                p = result["pairs"]["expected"]
                log(
                    f"{hash_name:>5} {size * size:>3} bits T={threshold:<3} hash {hash_seconds:5.1f}s "
                    f"search+decide {seconds:5.1f}s  P={_f(p['precision'])} R={_f(p['recall'])} F1={_f(p['f1'])}"
                )
    return runs


def _f(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


LEGEND = """\
*expected* = pairs and variants that involve no hard transform; *hard* = those that involve a flip,
a 90-degree rotation or a 20% crop. P/R/F1 are pairwise: all pairs inside one imgdup cluster
against all pairs made from one source photo. *found* = % of variants clustered with their
source original. *wrong* = wrong pairs as distractor-distractor / distractor-variant /
cross-source (hard: distractor-variant / cross-source). *lost* = unique pictures the removal plan
would delete entirely (sources + distractors); *wrong rm* = files removed in favour of a different
picture (expected / hard); *best* = % of clusters holding a source original whose keeper is that
original (or its byte-identical copy) rather than an upscale or a re-encode; *failed* = files
imgdup could not read (scored as not found)."""


def _common_settings(runs: Sequence[Run]) -> str:
    """Report settings shared by every run (decode mode, keep policy, ...), as ``key=value`` text."""
    varying = {"hash", "hash_size", "bits", "threshold"}
    shared: dict[str, str] = {}
    for i, run in enumerate(runs):
        current = {k: json.dumps(v) for k, v in run.settings.items() if k not in varying}
        shared = current if i == 0 else {k: v for k, v in shared.items() if current.get(k) == v}
    return ", ".join(f"{k}={v}" for k, v in sorted(shared.items())) or "n/a"


def markdown(runs: Sequence[Run], truth: dict[str, Any], command: str) -> str:
    """The sweep table plus per-transform recall at each configuration's best threshold."""
    n_files = len(truth["files"])
    source_name = Path(truth["source_dir"]).name
    lines = [
        "# Accuracy benchmark",
        "",
        "Generated by `benchmarks/accuracy/sweep.py`; do not edit by hand.",
        f"Dataset: {truth['sources']} source photos x {len(truth['transforms'])} variants (+ the original)",
        f"and {truth['distractors']} distractors = {n_files} files, seed {truth['seed']}, built from",
        f"`{source_name}` by `benchmarks/accuracy/generate.py`.",
        "",
        f"Command: `{command}`",
        "",
        f"imgdup settings besides hash, size and threshold: {_common_settings(runs)}.",
        "",
        LEGEND,
        "",
        "| hash | bits | T | P exp | R exp | F1 exp | P hard | R hard | F1 hard | found exp | found hard "
        + "| wrong exp | wrong hard | lost | wrong rm | best % | failed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---|---:|---:|",
    ]
    for run in runs:
        r = run.result
        pe, ph = r["pairs"]["expected"], r["pairs"]["hard"]
        we, wh = pe["wrong"], ph["wrong"]
        v = r["variant_recall"]
        rm = r["removal"]
        if rm is None:
            lost, wrong_rm, best = "n/a", "n/a", "n/a"
        else:
            lost = f"{rm['lost_groups']}+{rm['lost_distractors']}"
            wrong_rm = f"{rm['wrongly_removed']['expected']}/{rm['wrongly_removed']['hard']}"
            pct = rm["best_copy_kept"]["pct"]
            best = "n/a" if pct is None else f"{pct:.1f}"
        lines.append(
            f"| {run.hash} | {run.bits} | {run.threshold} | {_f(pe['precision'])} | {_f(pe['recall'])} "
            f"| {_f(pe['f1'])} | {_f(ph['precision'])} | {_f(ph['recall'])} | {_f(ph['f1'])} "
            f"| {_pct(v['expected']['recall'])} | {_pct(v['hard']['recall'])} "
            f"| {we['distractor_distractor']}/{we['distractor_variant']}/{we['cross_source']} "
            f"| {wh['distractor_variant']}/{wh['cross_source']} | {lost} | {wrong_rm} | {best} "
            f"| {r['counts']['failures']} |"
        )

    best_runs: dict[tuple[str, int], Run] = {}
    for run in runs:
        key = (run.hash, run.size)
        f1 = run.result["pairs"]["expected"]["f1"] or 0.0
        if key not in best_runs or f1 > (best_runs[key].result["pairs"]["expected"]["f1"] or 0.0):
            best_runs[key] = run
    if best_runs:
        cols = list(best_runs.values())
        lines += [
            "",
            "## Variants found per transform (%), at each configuration's best expected-F1 threshold",
            "",
            "| transform | hard | " + " | ".join(f"{c.hash}/{c.bits} T={c.threshold}" for c in cols) + " |",
            "|---|---|" + "---:|" * len(cols),
        ]
        for name, meta in truth["transforms"].items():
            cells = [_pct(c.result["per_transform"].get(name, {}).get("recall")) for c in cols]
            lines.append(f"| {name} | {'yes' if meta['hard'] else ''} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def thresholds_for(size: int, chosen: dict[int, Sequence[int]]) -> list[int]:
    """The thresholds to try for one hash size: chosen, else the default, else the 64-bit list scaled."""
    if size in chosen:
        return sorted(set(chosen[size]))
    if size in THRESHOLDS:
        return list(THRESHOLDS[size])
    return sorted({round(t * size * size / 64) for t in THRESHOLDS[8]})


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _threshold_spec(text: str) -> tuple[int, list[int]]:
    size, _, values = text.partition("=")
    try:
        return int(size), _ints(values)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SIZE=T1,T2,... (e.g. 8=0,4,8), got {text!r}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, type=Path, help="folder made by generate.py")
    parser.add_argument("--truth", type=Path, help="truth JSON (default <dataset>.truth.json)")
    parser.add_argument("--hashes", default=",".join(HASHES), help="comma-separated (default: all four)")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="hash sizes (default 8,16)")
    parser.add_argument(
        "--thresholds",
        action="append",
        type=_threshold_spec,
        metavar="SIZE=T1,T2,...",
        help="thresholds in bits for one hash size; repeat per size (defaults: "
        + "; ".join(f"{k}={','.join(map(str, v))}" for k, v in THRESHOLDS.items())
        + ")",
    )
    parser.add_argument(
        "--write", nargs="?", const=DEFAULT_OUTPUT, type=Path, metavar="FILE",
        help=f"write the Markdown table to FILE (default {DEFAULT_OUTPUT.relative_to(REPO_ROOT)})",
    )  # fmt: skip
    parser.add_argument("--rotations", action="store_true", help="match rotated and mirrored copies too")
    parser.add_argument("--keep", help="keep policy for every run (default: imgdup's default)")
    parser.add_argument("-j", "--jobs", type=int, help="worker processes for hashing (default: all cores)")
    args = parser.parse_args(argv)

    dataset = args.dataset.resolve()
    truth_path = args.truth or default_truth_path(dataset)
    if not dataset.is_dir() or not truth_path.is_file():
        print(f"error: need the dataset folder and its truth file: {dataset}, {truth_path}", file=sys.stderr)
        return 2
    truth = load_json(truth_path)
    chosen = dict(args.thresholds or [])
    sizes = _ints(args.sizes)
    command = (
        f"python -m benchmarks.accuracy.sweep --hashes {args.hashes} --sizes {args.sizes}"
        + "".join(f" --thresholds {s}={','.join(map(str, thresholds_for(s, chosen)))}" for s in sizes)
        + (" --rotations" if args.rotations else "")
        + (f" --keep {args.keep}" if args.keep else "")
    )

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    runs = sweep(
        dataset,
        truth,
        hashes=[h.strip() for h in args.hashes.split(",") if h.strip()],
        sizes=sizes,
        thresholds=chosen,
        rotations=args.rotations,
        keep=args.keep,
        jobs=args.jobs,
        log=log,
    )
    text = markdown(runs, truth, command)
    print(text, end="")
    if args.write:
        # Keep the layout-edit section (benchmarks/accuracy/layout.py writes it) below the sweep.
        from .layout import MARKER

        old = args.write.read_text(encoding="utf-8") if args.write.exists() else ""
        kept = MARKER + old.split(MARKER, 1)[1] if MARKER in old else ""
        args.write.write_text(text + ("\n" + kept if kept else ""), encoding="utf-8")
        log(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
