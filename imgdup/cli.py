"""The ``imgdup`` command: parse options, call the library, print, return an exit code.

Exit codes: 0 success; 1 error (nothing or only part was done, see the message); 2 usage
error; 3 finished, but some files could not be read or some clusters were skipped (the
summary line says how many and where they are listed).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from . import __version__, index
from .actions import remove, undo
from .cache import default_cache_path
from .errors import ImgdupError, UsageError
from .filelist import read_file_list
from .models import ALGORITHMS, DECODE_MODES
from .parallel import DEFAULT_TIMEOUT
from .pipeline import DEFAULT_THRESHOLD, find_duplicates
from .plan import to_document
from .policy import DEFAULT_KEEP, KEEP_RULES
from .report import format_text, write_montages, write_report
from .report.text import display_path, human_bytes

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3

log = logging.getLogger("imgdup")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="imgdup",
        description="Find and remove duplicate and near-duplicate images (perceptual hashes, Hamming distance).",
        epilog="Exit codes: 0 ok, 1 error, 2 usage error, 3 done but some files failed or clusters were skipped.",
    )
    p.add_argument("-d", "--dataset", action="append", metavar="DIR", help="folder to scan (repeat for several)")
    p.add_argument(
        "--reference", action="append", metavar="DIR", default=[],
        help="folder matched but never removed (repeatable): its files keep their place as kept files",
    )  # fmt: skip
    p.add_argument("--files", metavar="LIST", help="also scan the image files named in LIST, one per line ('-': stdin)")
    # No "-0" alias: a digit-like option would make argparse read "--threshold -1" as an option.
    p.add_argument("--null", action="store_true", help="the --files list is NUL-separated (names with newlines)")
    p.add_argument(
        "--labels", metavar="folder|FILE.csv",
        help="class labels: 'folder' (parent folder name, as torchvision ImageFolder) or a CSV of path,label",
    )  # fmt: skip
    p.add_argument(
        "--label-conflicts", choices=("review", "remove"), default="review",
        help="members of a cluster whose labels disagree: left for review (default) or removed as usual",
    )  # fmt: skip
    p.add_argument(
        "--between", action="store_true",
        help="only clusters spanning two or more folders (train/test leaks), with a per-folder summary",
    )  # fmt: skip
    p.add_argument(
        "-t", "--threshold", type=int, default=DEFAULT_THRESHOLD,
        help=f"max Hamming distance in bits, inclusive (default {DEFAULT_THRESHOLD}; 0 = identical hashes)",
    )  # fmt: skip
    p.add_argument(
        "-r", "--remove", type=int, choices=(0, 1), default=0, help="1 = prune each cluster to its kept file"
    )
    p.add_argument("--hash", choices=ALGORITHMS, default="phash", help="perceptual hash (default phash)")
    p.add_argument("--hash-size", type=int, default=8, help="hash side; bits = size^2 (default 8 = 64 bits)")
    p.add_argument("--rotations", action="store_true", help="also match rotated (90/180/270) and mirrored copies")
    p.add_argument("--decode", choices=DECODE_MODES, default="draft", help="JPEG decode: draft = reduced (fast)")
    p.add_argument(
        "--keep", default=",".join(DEFAULT_KEEP),
        help=f"ordered keep policy, comma-separated from {', '.join(KEEP_RULES)} (default {','.join(DEFAULT_KEEP)})",
    )  # fmt: skip
    p.add_argument("--index", choices=index.BACKENDS, default="auto", help="near-duplicate search backend")
    p.add_argument("-j", "--jobs", type=int, default=None, help="worker processes for hashing (default: all cores)")
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds one file may take to decode (default {DEFAULT_TIMEOUT:g})",
    )
    p.add_argument("--cache", metavar="PATH", default=None, help=f"hash cache file (default {default_cache_path()})")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the hash cache")
    p.add_argument("--report", metavar="FILE", help="also write the result as JSON (.json), CSV (.csv) or HTML (.html)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="what to print on stdout")
    p.add_argument("--montage", metavar="DIR", help="write one labelled PNG contact sheet per cluster into DIR")
    p.add_argument("--quarantine", metavar="DIR", help="where --remove 1 moves files (default: beside the first root)")
    p.add_argument("--permanent", action="store_true", help="with --remove 1: delete instead of moving (no undo)")
    p.add_argument("--undo", metavar="MANIFEST", help="restore the files moved by an earlier --remove 1 run")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars and no warnings")
    p.add_argument("-v", "--verbose", action="store_true", help="more log messages on stderr")
    p.add_argument("--version", action="version", version=f"imgdup {__version__}")
    return p


def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.ERROR if args.quiet else logging.INFO if args.verbose else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("imgdup: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def _run_undo(manifest: str) -> int:
    res = undo(manifest)
    for path, reason in res.problems:
        print(f"not restored: {display_path(path)}: {reason}", file=sys.stderr)
    restored, in_place, problems = len(res.restored), len(res.already_in_place), len(res.problems)
    print(f"restored {restored} files, {in_place} already in place, {problems} problems")
    return EXIT_PARTIAL if res.problems else EXIT_OK


def _run_scan(args: argparse.Namespace) -> int:
    progress = None
    if not (args.no_progress or args.quiet) and sys.stderr.isatty():
        from .progress import TqdmProgress

        progress = TqdmProgress()
    files = None
    if args.files:
        files = read_file_list(sys.stdin.buffer if args.files == "-" else args.files, null=args.null)
    try:
        result = find_duplicates(
            args.dataset or (),
            reference=args.reference,
            files=files,
            labels=args.labels,
            label_conflicts=args.label_conflicts,
            between=args.between,
            threshold=args.threshold,
            hash=args.hash,
            hash_size=args.hash_size,
            decode=args.decode,
            rotations=args.rotations,
            keep=args.keep,
            index=args.index,
            jobs=args.jobs,
            cache=None if args.no_cache else (args.cache or default_cache_path()),
            timeout=args.timeout,
            progress=progress,
        )
    finally:
        if progress:
            progress.close()

    if args.report:
        write_report(result, args.report)
    if args.montage:
        write_montages(result, args.montage)

    removal = None
    if args.remove:
        removal = remove(result, quarantine=args.quarantine, permanent=args.permanent)

    if args.format == "json":
        doc = to_document(result)
        if removal:
            doc["removal"] = {
                "manifest": removal.manifest,
                "removed": [r.path for r in removal.removed],
                "bytes_freed": removal.bytes_freed,
                "no_space_freed": [r.path for r in removal.removed if not r.frees_space],
                "skipped_clusters": [{"cluster": s.cluster, "reason": s.reason} for s in removal.skipped],
            }
        json.dump(doc, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_text(result, removed=removal is not None and not removal.skipped))
        if removal is None:
            if result.summary.to_remove:
                print("dry run: nothing was changed (add --remove 1 to act)")
        elif removal.manifest is None:
            print("nothing to remove")
        else:
            verb = "deleted" if removal.permanent else "moved to the quarantine"
            print(f"{verb}: {len(removal.removed)} files ({human_bytes(removal.bytes_freed)})")
            for r in removal.removed:
                if not r.frees_space:
                    print(f"  {display_path(r.path)}: another name of this file (a hard link) keeps its data")
            for s in removal.skipped:
                print(f"skipped cluster {s.cluster}: {display_path(s.reason)}")
            print(f"manifest: {display_path(removal.manifest)}")
            if not removal.permanent:
                print(f"undo with: imgdup --undo {display_path(removal.manifest)}")
    if args.report:
        print(f"report written to {display_path(args.report)}", file=sys.stderr)
    partial = bool(result.failures or (removal and removal.skipped))
    where = f"listed in {args.report}" if args.report else "listed above" if args.format == "text" else "in the JSON"
    print(
        f"imgdup: {len(result.failures)} files could not be read"
        + (f", {len(removal.skipped)} clusters skipped" if removal else "")
        + (f" ({where})" if partial else ""),
        file=sys.stderr,
    )
    return EXIT_PARTIAL if partial else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args)
    if args.undo:
        if args.dataset or args.remove:
            parser.error("--undo takes only the manifest")
        runner = lambda: _run_undo(args.undo)  # noqa: E731
    else:
        if not (args.dataset or args.reference or args.files):
            parser.error("give at least one folder with -d/--dataset, --reference or --files (or --undo MANIFEST)")
        if args.null and not args.files:
            parser.error("--null describes the --files list")
        if args.between and len(args.dataset or []) + len(args.reference) < 2 and not args.files:
            parser.error("--between compares two or more folders (-d/--dataset, --reference)")
        if args.permanent and not args.remove:
            parser.error("--permanent only makes sense with --remove 1")
        if args.cache and args.no_cache:
            parser.error("--cache and --no-cache exclude each other")
        runner = lambda: _run_scan(args)  # noqa: E731
    try:
        return runner()
    except UsageError as exc:
        print(f"imgdup: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ImgdupError as exc:
        print(f"imgdup: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("imgdup: interrupted; hashes computed so far are kept in the cache", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"imgdup: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
