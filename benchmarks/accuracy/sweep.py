"""Run imgdup over a generated dataset for several hashes, sizes and thresholds; tabulate accuracy.

Every run is a dry run (``--report``); nothing in the dataset changes. A hash cache (when the CLI
has ``--cache``) makes every run after the first one per (hash, size) cheap. The Markdown table
goes to stdout, and to ``benchmarks/ACCURACY.md`` only with ``--write``.

Usage (from the repository root)::

    python -m benchmarks.accuracy.sweep --dataset /tmp/acc/dataset            # print only
    python -m benchmarks.accuracy.sweep --dataset /tmp/acc/dataset --write    # also write the file
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
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


class SweepError(Exception):
    """imgdup failed or the inputs are missing."""


@dataclass(frozen=True)
class Run:
    """One imgdup invocation and its scored result."""

    hash: str
    size: int
    threshold: int
    seconds: float
    result: dict[str, Any]
    settings: dict[str, Any]

    @property
    def bits(self) -> int:
        return self.size * self.size


def cli_options(python: str) -> str:
    """The CLI's ``--help`` text, to find out which optional flags it supports."""
    proc = subprocess.run(
        [python, "-m", "imgdup", "--help"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SweepError(f"imgdup CLI not available:\n{proc.stderr.strip()}")
    return proc.stdout


def run_imgdup(
    python: str,
    dataset: Path,
    report: Path,
    *,
    hash_name: str,
    size: int,
    threshold: int,
    extra: Sequence[str],
) -> float:
    """One dry run writing a JSON report; returns the wall time in seconds."""
    cmd = [
        python, "-m", "imgdup", "--dataset", str(dataset), "--threshold", str(threshold),
        "--hash", hash_name, "--hash-size", str(size), "--report", str(report), "--no-progress", *extra,
    ]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    # Exit 3 = "done, but some files failed": the failures are in the report and scored as misses.
    if not report.is_file() or proc.returncode not in (0, 3):
        raise SweepError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr.strip()[-2000:]}")
    return elapsed


def sweep(
    dataset: Path,
    truth: dict[str, Any],
    *,
    hashes: Sequence[str] = HASHES,
    sizes: Sequence[int] = SIZES,
    thresholds: dict[int, Sequence[int]] | None = None,
    python: str = sys.executable,
    cache: Path | None = None,
    reports_dir: Path,
    log: Any = print,
) -> list[Run]:
    """Run every combination and score it; a report is kept in ``reports_dir`` per run."""
    help_text = cli_options(python)
    extra: list[str] = []
    if "--cache" in help_text and cache is not None:
        extra += ["--cache", str(cache)]
    else:
        log("note: imgdup has no --cache option; every run hashes the whole dataset")
    runs = []
    for size in sizes:
        for hash_name in hashes:
            for threshold in thresholds_for(size, thresholds or {}):
                report = reports_dir / f"{hash_name}-{size}-{threshold}.json"
                seconds = run_imgdup(
                    python, dataset, report, hash_name=hash_name, size=size, threshold=threshold, extra=extra
                )
                document = load_json(report)
                result = evaluate(document, truth)
                runs.append(Run(hash_name, size, threshold, seconds, result, document.get("settings", {})))
                p = result["pairs"]["expected"]
                log(
                    f"{hash_name:>5} {size * size:>3} bits T={threshold:<3} {seconds:6.1f}s  "
                    f"P={_f(p['precision'])} R={_f(p['recall'])} F1={_f(p['f1'])}"
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
        "--cache", type=Path, help="hash cache file to reuse across sweeps (default: a fresh one per sweep)"
    )
    parser.add_argument("--reports", type=Path, help="keep every imgdup report in this folder")
    parser.add_argument(
        "--write", nargs="?", const=DEFAULT_OUTPUT, type=Path, metavar="FILE",
        help=f"write the Markdown table to FILE (default {DEFAULT_OUTPUT.relative_to(REPO_ROOT)})",
    )  # fmt: skip
    parser.add_argument("--python", default=sys.executable, help="interpreter that runs imgdup")
    args = parser.parse_args(argv)

    dataset = args.dataset.resolve()
    truth_path = args.truth or default_truth_path(dataset)
    if not dataset.is_dir() or not truth_path.is_file():
        print(f"error: need the dataset folder and its truth file: {dataset}, {truth_path}", file=sys.stderr)
        return 2
    truth = load_json(truth_path)
    chosen = dict(args.thresholds or [])
    sizes = _ints(args.sizes)
    command = f"python -m benchmarks.accuracy.sweep --hashes {args.hashes} --sizes {args.sizes}" + "".join(
        f" --thresholds {s}={','.join(map(str, thresholds_for(s, chosen)))}" for s in sizes
    )

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        with tempfile.TemporaryDirectory(prefix="imgdup-sweep-") as tmp:
            reports_dir = args.reports or Path(tmp)
            # A fresh cache by default: a cached failure or hash from an older imgdup must not leak in.
            cache = args.cache or Path(tmp) / "hashes.sqlite3"
            reports_dir.mkdir(parents=True, exist_ok=True)
            runs = sweep(
                dataset,
                truth,
                hashes=[h.strip() for h in args.hashes.split(",") if h.strip()],
                sizes=sizes,
                thresholds=chosen,
                python=args.python,
                cache=cache,
                reports_dir=reports_dir,
                log=log,
            )
    except SweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    text = markdown(runs, truth, command)
    print(text, end="")
    if args.write:
        args.write.write_text(text, encoding="utf-8")
        log(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
