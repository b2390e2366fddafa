"""The ``imgdup`` command: parse options, call the library, print, return an exit code.

Exit codes: 0 success; 1 error (nothing or only part was done, see the message); 2 usage
error; 3 finished, but some files could not be read or some clusters were skipped (the
summary line says how many and where they are listed).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import io
import json
import logging
import os
import re
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, NoReturn

from PIL import Image

from . import __version__, index
from .cache import default_cache_path
from .discover import normalise_roots
from .errors import ImgdupError, OutputError, RemovalError, RemovalInterrupted, UsageError
from .filelist import file_roots, read_file_list, real_file_paths
from .gcpause import collector_paused
from .models import ALGORITHMS, DECODE_MODES, RemovalResult
from .names import to_json_text
from .parallel import DEFAULT_TIMEOUT
from .pipeline import DEFAULT_THRESHOLDS, find_duplicates
from .plan import to_document
from .policy import DEFAULT_KEEP, KEEP_RULES
from .report import check_report, format_text, report_format, write_report
from .report.text import display_path, human_bytes, plural

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3

log = logging.getLogger("imgdup")


def _printable(text: str) -> str:
    """A message with its control characters escaped, as the text report shows names: a name in
    an error (a plan's root, a mistyped path) carrying an escape sequence acted on the terminal.
    Backslashes stay as they are (a message may quote a ``repr``)."""
    if text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable()
        else f"\\x{ord(ch) - 0xDC00:02x}" if 0xDC80 <= ord(ch) <= 0xDCFF
        else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )  # fmt: skip


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, as a UsageError raised later prints: argparse put its usage block first (9
        # lines), so a bad value read one way or the other by where it was caught (QA pass 36).
        self.exit(EXIT_USAGE, f"{self.prog}: error: {_printable(message)}\n")


class _Formatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        return _printable(super().formatMessage(record))


class _Once(argparse.Action):
    """An option that may be given once: a second --labels silently replaced the first (one
    metadata.csv per split left the others' files unlabelled)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:  # fmt: skip
        if getattr(namespace, self.dest, None) is not None:
            parser.error(f"{option_string} is given once (merge the CSV files into one: path,label rows)")
        setattr(namespace, self.dest, values)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="imgdup",
        description="Find and remove duplicate and near-duplicate images (perceptual hashes, Hamming distance).",
        epilog="Exit codes: 0 ok, 1 error, 2 usage error, 3 done but some files failed or clusters were skipped.",
    )
    p.add_argument("-d", "--dataset", action="append", metavar="DIR", help="folder or image file to scan (repeat)")
    p.add_argument(
        "--reference", action="append", metavar="DIR", default=[],
        help="folder matched but never removed (repeatable): its files keep their place as kept files",
    )  # fmt: skip
    p.add_argument("--files", metavar="LIST", help="also scan the image files named in LIST, one per line ('-': stdin)")
    # No "-0" alias: a digit-like option would make argparse read "--threshold -1" as an option.
    p.add_argument("--null", action="store_true", help="the --files list is NUL-separated (names with newlines)")
    p.add_argument(
        "--labels", metavar="folder|FILE.csv", action=_Once,
        help="class labels: 'folder' (the class folder, first below the scanned one, as torchvision ImageFolder)"
             " or a CSV of path,label",
    )  # fmt: skip
    p.add_argument(
        "--label-conflicts", choices=("review", "remove"), default=None,
        help="members of a cluster whose labels disagree: left for review (default) or removed as usual",
    )  # fmt: skip
    p.add_argument(
        "--between", action="store_true",
        help="only clusters spanning two or more folders (train/test leaks), with a per-folder summary",
    )  # fmt: skip
    p.add_argument(
        "-t", "--threshold", type=int, default=None,
        help="max Hamming distance in bits, inclusive (0 = identical hashes); default: the hash's own, at 64 bits "
        + ", ".join(f"{h} {t}" for h, t in DEFAULT_THRESHOLDS.items()) + ", scaled to other sizes",
    )  # fmt: skip
    p.add_argument(
        "-r", "--remove", type=int, choices=(0, 1), default=0,
        help="1 = prune each cluster to its kept file (default 0: a dry run)",
    )  # fmt: skip
    p.add_argument("--hash", choices=ALGORITHMS, default="phash", help="perceptual hash (default phash)")
    p.add_argument(
        "--hash-size", type=int, default=8, metavar="N",
        help="hash side, a power of two from 4 to 32; bits = N^2 (default 8 = 64 bits)",
    )  # fmt: skip
    p.add_argument("--rotations", action="store_true", help="also match rotated (90/180/270) and mirrored copies")
    p.add_argument(
        "--regions",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also match copies with borders, letterboxes, captions, frames, small rotations and crops "
        "(default: on with phash)",
    )
    p.add_argument(
        "--decode", choices=DECODE_MODES, default="draft", help="JPEG decode: draft = reduced (fast; default)"
    )
    p.add_argument(
        "--keep", default=",".join(DEFAULT_KEEP),
        help=f"ordered keep policy, comma-separated from {', '.join(KEEP_RULES)} (default {','.join(DEFAULT_KEEP)})",
    )  # fmt: skip
    p.add_argument(
        "--index", choices=index.BACKENDS, default="auto", help="near-duplicate search backend (default auto)"
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=None,
        help="worker processes for hashing and for the HTML report's thumbnails (default: all cores)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds one file may take to decode (default {DEFAULT_TIMEOUT:g})",
    )
    p.add_argument(
        "--max-pixels", type=int, default=None, metavar="N",
        help="largest image, in pixels, that is decoded (default: Pillow's decompression-bomb limit, "
        f"{Image.MAX_IMAGE_PIXELS:,}); raise it for trusted high-resolution files",
    )  # fmt: skip
    p.add_argument("--cache", metavar="PATH", default=None, help=f"hash cache file (default {default_cache_path()})")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the hash cache")
    p.add_argument(
        "--report", metavar="FILE", action="append", default=[],
        help="also write the result as JSON (.json), CSV (.csv) or HTML (.html); repeat for several formats",
    )  # fmt: skip
    p.add_argument("--format", choices=("text", "json"), default="text", help="what to print on stdout (default text)")
    p.add_argument("--montage", metavar="DIR", help="write one labelled PNG contact sheet per cluster into DIR")
    p.add_argument("--quarantine", metavar="DIR", help="where --remove 1 moves files (default: beside the first root)")
    p.add_argument("--permanent", action="store_true", help="with --remove 1: delete instead of moving (no undo)")
    p.add_argument("--undo", metavar="MANIFEST", help="restore the files moved by an earlier --remove 1 or apply run")
    p.add_argument(
        "--apply", metavar="PLAN",
        help="remove what a saved JSON report or a plan exported from the HTML report marks 'remove' "
        "(also: imgdup apply PLAN); every file is re-checked first",
    )  # fmt: skip
    p.add_argument(
        "--engine", choices=("local", "dask"), default="local", help="who hashes and searches (default local)"
    )
    p.add_argument("--scheduler", metavar="ADDRESS", help="with --engine dask: scheduler (default: a local cluster)")
    p.add_argument("--tables", metavar="DIR_OR_URL", help="with --engine dask: write Parquet tables there")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars, no warnings: only errors on stderr")
    p.add_argument("-v", "--verbose", action="store_true", help="more log messages on stderr")
    p.add_argument("--version", action="version", version=f"imgdup {__version__}")
    return p


def _apply_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="imgdup apply",
        description="Remove what a saved JSON report, or a plan exported from the HTML report, marks 'remove'. "
        "Every file is re-checked against the plan (size, mtime, SHA-256); a cluster with any change is skipped.",
    )
    p.add_argument("plan", help="the plan: a --report FILE.json or the JSON exported from the HTML report")
    p.add_argument("--version", action="version", version=f"imgdup {__version__}")  # not "plan is required"
    p.add_argument("--quarantine", metavar="DIR", help="where files are moved (default: beside the first root)")
    p.add_argument("--permanent", action="store_true", help="delete instead of moving (no undo)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="what to print on stdout (default text)")
    p.add_argument("-j", "--jobs", type=int, default=None, help="worker processes for re-hashing (default: all cores)")
    p.add_argument(
        "--cache",
        metavar="PATH",
        default=None,
        help=f"hash cache to read hashes from (default {default_cache_path()}; a plan records no cache, so give "
        "a scan's --cache PATH again)",
    )
    p.add_argument("--no-cache", action="store_true", help="hash every file of the plan again")
    p.add_argument("--max-pixels", type=int, default=None, metavar="N", help="as for a scan: the pixel limit")
    p.add_argument("--no-progress", action="store_true", help="accepted for symmetry with a scan (no bar here)")
    p.add_argument("-q", "--quiet", action="store_true", help="no warnings")
    p.add_argument("-v", "--verbose", action="store_true", help="more log messages on stderr")
    return p


def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.ERROR if args.quiet else logging.INFO if args.verbose else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter("imgdup: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def _run_undo(manifest: str, fmt: str = "text") -> int:
    from .actions import undo  # removal code loads only for the runs that remove or restore

    res = undo(manifest)
    for path, reason in res.problems:
        print(f"not restored: {display_path(path)}: {reason}", file=sys.stderr)
    restored, in_place = _files_restored(res.restored), _files_restored(res.already_in_place, word="")
    said = f"restored {restored}, {in_place} already in place, {plural(len(res.problems), 'problem')}"
    try:
        if fmt == "json":
            doc = {"restored": list(res.restored), "already_in_place": list(res.already_in_place),
                   "problems": [{"path": p, "reason": r} for p, r in res.problems]}  # fmt: skip
            _write_out(_json_out(to_json_text({"undo": doc})))
        else:
            print(said)
        sys.stdout.flush()
    except BrokenPipeError:
        _stdout_closed(None)
    except OSError as exc:  # a full disk, an I/O error: the restore is done, and said here
        _stdout_closed(None, exc)
        print(f"imgdup: {said}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_PARTIAL if res.problems else EXIT_OK


def _pasteable(path: str) -> str:
    """A path in a command to copy: quoted for the shell (a folder "my photos" was split at its
    space), control characters still shown escaped."""
    return shlex.quote(display_path(path))


def _files_restored(paths: Sequence[str], word: str = "file") -> str:
    """``1 file (2 names)`` for a file restored with its hard links, as its removal counted it
    (it said "restored 2 files" after "moved to the quarantine: 1 file (...; 2 names ...)")."""
    inodes: set[tuple[int, int]] = set()
    for path in paths:
        try:
            st = os.lstat(path)
            inodes.add((st.st_dev, st.st_ino))
        except OSError:  # changed since the undo: counted as a file of its own
            inodes.add((-1, len(inodes)))
    files = len(inodes)
    return (plural(files, word) if word else str(files)) + (f" ({len(paths)} names)" if len(paths) > files else "")


def _files_removed(removal: RemovalResult) -> str:
    """``1 file``, or ``1 file (2 names)`` when hard links went with it: counted as the report
    counts what it would remove."""
    files = sum(1 for r in removal.removed if not r.other_name)
    names = len(removal.removed)
    return plural(files, "file") + (f" ({names} names)" if names > files else "")


def _print_removal(removal: RemovalResult) -> None:
    if removal.manifest is None:
        verb = "deleted" if removal.permanent else "moved"
        print(f"nothing was {verb}: every cluster was skipped" if removal.skipped else "nothing to remove")
        for s in removal.skipped:  # every cluster skipped: say why, as below
            print(f"skipped cluster {s.cluster}: {display_path(s.reason)}")
        return
    verb = "deleted" if removal.permanent else "moved to the quarantine"
    if removal.removed:
        files = sum(1 for r in removal.removed if not r.other_name)
        names = len(removal.removed)
        also = f"; {names} names: hard links go with their file" if names > files else ""
        print(f"{verb}: {plural(files, 'file')} ({human_bytes(removal.bytes_freed)}{also})")
    else:  # every cluster skipped while acting: there is nothing to undo (it offered an undo of nothing)
        why = ": every cluster was skipped" if removal.skipped else ""
        print(f"nothing was {'deleted' if removal.permanent else 'moved'}{why}")
    for r in removal.removed:
        if not r.frees_space:
            print(f"  {display_path(r.path)}: another name of this file (a hard link) keeps its data")
    for s in removal.skipped:
        if s.moved:  # part of it is done: "skipped" read as untouched
            done = f"{plural(s.moved, 'file')} {'deleted' if removal.permanent else 'moved'}"
            print(f"stopped cluster {s.cluster} after {done} (the others left): {display_path(s.reason)}")
        else:
            print(f"skipped cluster {s.cluster}: {display_path(s.reason)}")
    if removal.dangling:
        again = "for good" if removal.permanent else "until an undo puts the files back"
        point = "points at a file" if len(removal.dangling) == 1 else "point at files"
        print(f"{plural(len(removal.dangling), 'symbolic link')} in the scanned folders {point} removed, {again}:")
        for link in removal.dangling[:20]:
            print(f"  {display_path(link)}")
        if len(removal.dangling) > 20:
            print(f"  ... and {len(removal.dangling) - 20} more (all in the JSON report: dangling_links)")
    print(f"manifest: {display_path(removal.manifest)}")
    if not removal.permanent and removal.removed:
        print(f"undo with: imgdup --undo {_pasteable(removal.manifest)}")


def _interrupted_after(removal: RemovalResult | None) -> KeyboardInterrupt:
    """Ctrl-C while a removal's report is laid out (a second or more for a large scan): what the
    removal did is still said (it was "imgdup: interrupted" alone, no manifest, no undo command)."""
    if removal is not None and removal.manifest is not None and removal.removed:
        return RemovalInterrupted(removal)
    return KeyboardInterrupt()


_CLOSED = "closed by its reader"


def _listed_where(fmt: str, lost: str | None) -> str:
    """Where the closing line's problems are listed: never "listed above" when the reader of
    stdout left before the listing reached it (``imgdup -d D | head`` said so) or it could not be
    written (``lost``: how the output was lost)."""
    if lost:
        return f"not shown: the output was {lost}"
    return "listed above" if fmt == "text" else "in the JSON"


def _stdout_closed(removal: RemovalResult | None, failed: OSError | None = None) -> None:
    """The reader of stdout left early (``imgdup ... | head``): the run itself is done, so its
    exit code stands, and what a removal did is said on stderr (it read "error: Broken pipe",
    exit 1, with no manifest). Later writes go nowhere instead of failing at exit. ``failed``: the
    output could not be written (a full disk, an I/O error), an error said here, and what the
    removal did with it (it said only "[Errno 28] No space left on device")."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    if failed is not None:
        print(f"imgdup: error: cannot write the output: {failed.strerror or failed}", file=sys.stderr)
    if removal is None or removal.manifest is None or not removal.removed:  # (nothing done: nothing to undo)
        return
    verb = "deleted" if removal.permanent else "moved to the quarantine"
    why = "output closed by its reader" if failed is None else "the output is lost"
    print(f"imgdup: {why}; {_files_removed(removal)} {verb}", file=sys.stderr)
    print(f"imgdup: manifest: {display_path(removal.manifest)}", file=sys.stderr)
    if not removal.permanent:
        print(f"imgdup: undo with: imgdup --undo {_pasteable(removal.manifest)}", file=sys.stderr)


def _removal_doc(removal: RemovalResult) -> dict[str, object]:
    return {
        "manifest": removal.manifest,
        "removed": [r.path for r in removal.removed],
        "bytes_freed": removal.bytes_freed,
        "no_space_freed": [r.path for r in removal.removed if not r.frees_space],
        # moved: files of the cluster moved (or deleted) before it stopped; 0 for one left untouched
        "skipped_clusters": [{"cluster": s.cluster, "reason": s.reason, "moved": s.moved} for s in removal.skipped],
        "dangling_links": list(removal.dangling),
    }


def _run_apply(args: argparse.Namespace) -> int:
    from .apply_plan import apply, load_plan

    cache = None if args.no_cache else (args.cache or default_cache_path())
    plan: Any = args.apply
    # a usage error, as for a scan's --remove 1; the default quarantine too (another user's, made
    # beforehand in a shared folder, was taken: QA pass 36) where the plan and its roots are there
    # (apply says what is wrong with them; object-store roots are report-only)
    if args.quarantine or os.path.isfile(args.apply):
        from .actions import check_quarantine

        plan = load_plan(args.apply)
        try:
            if args.quarantine or all(os.path.isdir(r) for r in plan.roots):
                check_quarantine(plan.roots, args.quarantine, plan.reference)
        except RemovalError as exc:
            raise UsageError(str(exc).removesuffix("; nothing was removed")) from None
    removal = apply(plan, quarantine=args.quarantine, permanent=args.permanent, jobs=args.jobs, cache=cache)
    try:
        if args.format == "json":
            _write_out(_json_out(to_json_text({"removal": _removal_doc(removal)})))
        else:
            _print_removal(removal)
        sys.stdout.flush()
        lost = None
    except BrokenPipeError:
        _stdout_closed(removal)
        lost = _CLOSED
    except OSError as exc:  # a full disk, an I/O error: what was done is said on stderr
        _stdout_closed(removal, exc)
        lost = f"lost ({exc.strerror or exc})"
    except KeyboardInterrupt:
        raise _interrupted_after(removal) from None
    if removal.skipped:  # the closing line a scan's removal prints too
        where = _listed_where(args.format, lost)
        print(f"imgdup: {plural(len(removal.skipped), 'cluster')} skipped ({where})", file=sys.stderr)
    if lost and lost != _CLOSED:
        return EXIT_ERROR
    return EXIT_PARTIAL if removal.skipped else EXIT_OK


def _check_outputs(args: argparse.Namespace, files: Sequence[str] = ()) -> None:
    """Output locations are checked before the scan, not after it (a usage error), against
    every folder the scan will have: the named ones and those of listed files."""

    def roots() -> tuple[str, ...]:  # only when a local output needs them (-d may name s3:// URLs)
        # -d may name an image file, taken as a listed one (as the scan does; here it was "not a directory")
        from .kernels import is_remote

        # (an object-store input holds no local folder: it said "not a directory: s3://..." of one)
        given = [d for d in (*(args.dataset or ()), *args.reference) if not is_remote(d)]
        if args.engine == "dask":  # a .csv/.parquet list: its files' folders are scanned, not the list's own
            given = _local_files_of_lists(given)
        listed = [*(d for d in given if os.path.isfile(d)), *files]
        named = normalise_roots([d for d in given if not os.path.isfile(d)])
        if not listed:
            return named
        references = normalise_roots([d for d in args.reference if not is_remote(d) and os.path.isdir(d)])
        return normalise_roots([*named, *file_roots(real_file_paths(listed), list(named), beside=references)])

    try:
        for path in args.report:
            check_report(path)
            if report_format(path) == "html" and not any("://" in d for d in args.dataset or ()):
                from .report.html import check_thumbnail_folder  # (object-store roots hold no local folder)

                check_thumbnail_folder(path, roots())
        if args.montage:
            from .report.montage import check_montages

            check_montages(args.montage, roots())
    except OutputError as exc:
        raise UsageError(str(exc)) from None
    # --permanent too: its manifest goes there (QA pass 35); and in a dry run, which previews the
    # real command: a quarantine that -r 1 refuses was accepted without a word (QA pass 36). The
    # default one with -r 1: another user's, made beforehand in a shared folder, was taken (QA pass 36).
    if args.quarantine or (args.remove and roots()):
        from .actions import check_quarantine  # a removal run loads it anyway

        reference = normalise_roots([d for d in args.reference if "://" not in d and os.path.isdir(d)])
        try:  # removal asks again; asked here it costs no scan, and it is a usage error
            check_quarantine(roots(), args.quarantine, reference)
        except RemovalError as exc:
            raise UsageError(str(exc).removesuffix("; nothing was removed")) from None


def _local_files_of_lists(inputs: Sequence[str]) -> list[str]:
    """The Dask engine's inputs with each file list replaced by the local files it names (an HTML
    report beside the list was refused as "inside the scanned folder", the list taken for an image)."""
    from .engine.sources import is_file_list, read_file_list  # no dask: fsspec and pyarrow only
    from .kernels import is_remote

    out: list[str] = []
    for d in inputs:
        if not is_file_list(d):
            out.append(d)
            continue
        try:
            out += [p for p in read_file_list(d) if not is_remote(p)]
        except Exception:  # noqa: BLE001 - an unreadable list is the scan's to report, with its reason
            continue
    return out


def _run_scan(args: argparse.Namespace) -> int:
    if args.between and args.remove and not args.reference:
        log.warning(
            "--between --remove 1 with no --reference: each leak keeps its best copy, in either folder, and"
            " removes the others (a training file can go); to remove only one folder's copies, protect the"
            " other: imgdup --reference TRAIN -d TEST --between --remove 1"
        )
    elif args.between and args.remove and len(set(args.dataset or ())) > 1:
        # Only copies of a reference file are removed against it: a copy that val and test share
        # is a leak too, and the val file went without a word.
        log.warning(
            "--between --remove 1 with several folders to scan: a leak between two folders to scan keeps its"
            " best copy in either of them and removes the others; to remove only one folder's copies, scan it"
            " alone: imgdup --reference TRAIN --reference VAL -d TEST --between --remove 1"
        )
    files = None
    if args.files:
        files = read_file_list(sys.stdin.buffer if args.files == "-" else args.files, null=args.null)
    _check_outputs(args, files or ())
    progress = None
    if not (args.no_progress or args.quiet) and sys.stderr.isatty():
        from .progress import TqdmProgress

        progress = TqdmProgress()
    if args.remove:
        # Files a killed --permanent run set aside go back before the scan, which then sees them:
        # put back only by the removal, a duplicate among them stayed for the run after. Local
        # folders with either engine (a Dask removal acts on local files only; QA pass 35).
        from .actions import put_back_interrupted

        put_back_interrupted([d for d in args.dataset or () if os.path.isdir(d)])
    try:
        dataset_options: dict[str, Any] = {}
        if args.engine == "local":  # reference sets, file lists and labels: the local engine's for now
            dataset_options = dict(
                reference=args.reference, files=files, labels=args.labels,
                label_conflicts=args.label_conflicts or "review", between=args.between,
            )  # fmt: skip
        result = (_scan_dask if args.engine == "dask" else find_duplicates)(
            args.dataset or (),
            **dataset_options,
            threshold=args.threshold,
            hash=args.hash,
            hash_size=args.hash_size,
            decode=args.decode,
            rotations=args.rotations,
            regions=args.regions,
            keep=args.keep,
            index=args.index,
            jobs=args.jobs,
            cache=None if args.no_cache else (args.cache or default_cache_path()),
            timeout=args.timeout,
            progress=progress,
            **(
                {"scheduler": args.scheduler, "tables": args.tables, "quiet": args.quiet}
                if args.engine == "dask"
                else {}
            ),
        )
        # the outputs that decode every member again (the page's thumbnails, the montages) show
        # their progress too: 8,937 thumbnails of a 20,000-file set take half a minute
        for path in args.report:
            write_report(result, path, jobs=args.jobs, timeout=args.timeout, progress=progress)
        if args.montage:
            from .report.montage import write_montages

            write_montages(result, args.montage, jobs=args.jobs, timeout=args.timeout, progress=progress)
    finally:
        if progress:
            progress.close()

    removal = None
    if args.remove:
        from .actions import remove

        removal = remove(result, quarantine=args.quarantine, permanent=args.permanent)

    try:
        if args.format == "json":
            doc = to_document(result)
            if removal:
                doc["removal"] = _removal_doc(removal)
            _write_out(_json_out(to_json_text(doc)))
        else:
            _write_out(format_text(result, removed=removal is not None, skipped=len(removal.skipped) if removal else 0))
            if removal is None:
                if result.summary.to_remove:
                    print("dry run: nothing was changed (add --remove 1 to act)")
            else:
                _print_removal(removal)
        sys.stdout.flush()
        lost = None
    except BrokenPipeError:
        _stdout_closed(removal)
        lost = _CLOSED
    except OSError as exc:  # a full disk, an I/O error: what was done is said on stderr
        _stdout_closed(removal, exc)
        lost = f"lost ({exc.strerror or exc})"
    except KeyboardInterrupt:
        raise _interrupted_after(removal) from None
    for path in args.report if not args.quiet else ():  # -q: only errors on stderr (QA pass 10)
        print(f"report written to {display_path(path)}", file=sys.stderr)
    partial = bool(result.failures or (removal and removal.skipped))
    if partial:  # said only when something went wrong: a clean run ends quietly
        here = _listed_where(args.format, lost)
        # The reports are written before the removal: they list the unreadable files, never the
        # skipped clusters (it said "1 cluster skipped (listed in r.json)", which lists none).
        failed = f"listed in {', '.join(display_path(p) for p in args.report)}" if args.report else here
        unlisted = result.unlisted_folders  # a folder: none of its files was counted
        unread = len(result.failures) - unlisted
        said = [f"{plural(unread, 'file')} could not be read"] if unread else []
        said += [f"{plural(unlisted, 'folder')} could not be listed"] if unlisted else []
        problems = [(", ".join(said), failed)] if result.failures else []
        if removal and removal.skipped:
            problems.append((f"{plural(len(removal.skipped), 'cluster')} skipped", here))
        if len({where for _, where in problems}) == 1:  # one place: said once, at the end
            print(f"imgdup: {', '.join(what for what, _ in problems)} ({problems[0][1]})", file=sys.stderr)
        else:
            print(f"imgdup: {', '.join(f'{what} ({where})' for what, where in problems)}", file=sys.stderr)
    if lost and lost != _CLOSED:  # the output is an error of its own: what was done is said above
        return EXIT_ERROR
    return EXIT_PARTIAL if partial else EXIT_OK


def _say_interrupted_removal(done: object) -> None:
    """What an interrupted removal had done, and how to undo it."""
    assert isinstance(done, RemovalResult)
    verb = "deleted" if done.permanent else "moved to the quarantine"
    print(f"imgdup: interrupted during removal: {_files_removed(done)} {verb} before the interruption, "
          f"the others left in place", file=sys.stderr)  # fmt: skip
    print(f"imgdup: manifest: {display_path(done.manifest or '')}", file=sys.stderr)
    if not done.permanent:
        print(f"imgdup: undo with: imgdup --undo {_pasteable(done.manifest or '')}", file=sys.stderr)


def _names_remote(datasets: Sequence[str], *, lists: bool) -> bool:
    """Whether an input is an object-store URL, or (``lists``: the Dask engine's file lists) a
    .csv/.parquet list that names one: such a list passed the report-only check, and the removal
    failed only after the whole scan."""
    if any("://" in d and not d.startswith("file://") for d in datasets):
        return True
    if not lists:
        return False
    from .engine.sources import is_file_list, read_file_list  # no dask: fsspec and pyarrow only
    from .kernels import is_remote

    for d in datasets:
        if is_file_list(d):
            try:
                if any(map(is_remote, read_file_list(d))):
                    return True
            except Exception:  # noqa: BLE001 - an unreadable list is the scan's to report, with its reason
                continue
    return False


def _scan_dask(
    roots: Sequence[str], *, scheduler: str | None, jobs: int | None, tables: str | None, quiet: bool, **options: Any
) -> Any:
    """The scan on a Dask cluster (``--engine dask``): the scheduler's, or a local one of --jobs workers.
    ``quiet`` (-q) leaves stderr to errors: the dashboard's link and the tables' line are not said."""
    try:
        from .engine import dask as dask_engine  # dask is an optional extra
        from .engine.sources import check_local_roots
    except ImportError as exc:
        raise UsageError(
            f"--engine dask needs the dask extra: pip install 'dask[distributed]' pyarrow fsspec ({exc})"
        ) from None
    if tables:  # before a cluster is started: the check needs none (it started -j workers, then refused)
        dask_engine.check_tables_folder(tables)
    check_local_roots(roots)  # so is a missing folder (refused seconds later, once the workers had started)
    # -q: distributed's own lines are dropped too, from the start of the cluster to its shutdown
    with dask_engine.quiet_dask_logs(quiet), dask_engine.connect(scheduler, jobs=jobs) as client:
        if quiet and not scheduler:  # the workers of a local cluster share our stderr; a scheduler's are not ours
            client.register_plugin(dask_engine.QuietLogs(), name="imgdup-quiet-logs")
        if client.dashboard_link and not quiet:
            print(f"imgdup: Dask dashboard: {client.dashboard_link}", file=sys.stderr)
        try:
            result = dask_engine.find_duplicates(roots, client=client, tables=tables, **options)
            if tables:
                dask_engine.write_tables(client, result, tables)
        except concurrent.futures.CancelledError as exc:
            # The scheduler gone mid-run cancels every task: distributed's FutureCancelledError
            # ended the command in a traceback with no error line (QA pass 33).
            where = scheduler or "of the local cluster"
            raise OSError(
                f"lost the Dask scheduler {where} during the run ({type(exc).__name__}: {exc}); nothing was removed"
            ) from None
        if tables and not quiet:
            print(f"imgdup: Parquet tables written to {display_path(tables)}", file=sys.stderr)
    return result


def _reopen_closed_streams() -> None:
    """A standard stream the caller closed (``imgdup ... >&-``, ``2>&-`` in a cron line) is None
    in Python: the first print ended the run in a traceback, before the report or the removal
    with stderr closed. Such a descriptor is pointed at /dev/null, so that it goes nowhere and no
    file imgdup opens later takes its number (a print would land in it)."""
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
        if getattr(sys, name) is None:
            setattr(sys, name, open(fd, mode, closefd=False))  # noqa: SIM115 (open as long as the process)


# The resource options (-j, the cache, the pixel limit) change nothing undo does: a wrapper that
# passes them to every imgdup command may pass them to undo too.
_UNDO_OPTIONS = frozenset({"undo", "format", "jobs", "cache", "no_cache", "max_pixels"})
_APPLY_OPTIONS = frozenset({"apply", "quarantine", "permanent", "format", "jobs", "cache", "no_cache", "max_pixels"})


def _refuse_unused(parser: argparse.ArgumentParser, args: argparse.Namespace, mode: str, own: frozenset[str]) -> None:
    """A scan's option given to undo or apply is a usage error: each was ignored silently
    (``--undo M --report r.json`` wrote no report, ``--apply P -t 2`` applied the plan's threshold)."""
    own = own | {"no_progress", "quiet", "verbose", "help", "version"}
    unused = [
        max(action.option_strings, key=len)
        for action in parser._actions  # argparse lists its options nowhere public
        if action.dest not in own and action.option_strings
        and getattr(args, action.dest, action.default) != action.default
    ]  # fmt: skip
    if unused:
        parser.error(f"{mode} does not scan: {', '.join(unused)} not used with it")


def _missing_option(extra: Sequence[str]) -> str:
    """A hint for words given without their option: ``imgdup photos`` (a folder, as most tools
    take it) and ``imgdup undo M`` (as ``imgdup apply P``) said only "unrecognized arguments"."""
    if extra[0] == "undo" and len(extra) == 2:
        return f" (undo is an option: imgdup --undo {shlex.quote(extra[1])})"
    folders = [w for w in extra if os.path.isdir(w)]
    return f" (a folder is given with -d: imgdup -d {shlex.quote(folders[0])})" if folders else ""


def _escape_what_streams_cannot_hold() -> None:
    """Characters the output's encoding cannot hold (a Latin-1 locale, ``PYTHONIOENCODING=ascii``)
    are written as backslash escapes: a name such as 日本.jpg ended the run in UnicodeEncodeError,
    after a removal had moved it, before its manifest and undo command were said."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            stream.reconfigure(errors="backslashreplace")


def _write_out(text: str) -> None:
    """``text`` on stdout, all of it or BrokenPipeError. A reader that leaves while a long write
    is blocked on a full pipe gets part of it, and the kernel reports that part as written:
    Python's buffered stdout then said nothing, and a removal whose report was cut so gave no
    manifest and no undo command (QA pass 33). Written here in a loop, the next write meets the
    closed pipe. A stdout that is no file (a test's capture) is written as it is."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError and a ValueError
        sys.stdout.write(text)
        return
    sys.stdout.flush()
    data = memoryview(text.encode(sys.stdout.encoding or "utf-8", sys.stdout.errors or "strict"))
    while data:
        data = data[os.write(fd, data) :]


def _json_out(text: str) -> str:
    """JSON for stdout: where its encoding is not UTF-8, every other character as its JSON
    escape (the same document; a backslash escape would not be JSON)."""
    if (getattr(sys.stdout, "encoding", None) or "utf-8").lower().replace("_", "-") in ("utf-8", "utf8"):
        return text
    return re.sub(r"[^\x00-\x7f]", lambda m: json.dumps(m.group())[1:-1], text)


def main(argv: Sequence[str] | None = None) -> int:
    _reopen_closed_streams()
    _escape_what_streams_cannot_hold()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["apply"]:  # the verb form reads better: imgdup apply PLAN [--quarantine DIR]
        verb = _apply_parser().parse_args(argv[1:])
        # "is not None": an empty value ("$Q" unset) must reach the checks below, not be dropped
        argv = ["--apply", verb.plan, *(["--quarantine", verb.quarantine] if verb.quarantine is not None else [])]
        argv += [f for f, on in (("--permanent", verb.permanent), ("-q", verb.quiet), ("-v", verb.verbose)) if on]
        argv += ["--format", verb.format, *(["-j", str(verb.jobs)] if verb.jobs is not None else [])]
        argv += [*(["--cache", verb.cache] if verb.cache is not None else []), *(["--no-cache"] * verb.no_cache)]
        argv += ["--max-pixels", str(verb.max_pixels)] if verb.max_pixels is not None else []
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # what parse_args says, with the option a new user left out
        parser.error(f"unrecognized arguments: {' '.join(extra)}{_missing_option(extra)}")
    if args.quiet and args.verbose:
        parser.error("-q/--quiet and -v/--verbose exclude each other")
    _setup_logging(args)
    if args.max_pixels is not None:
        if args.max_pixels < 1:
            parser.error("--max-pixels takes a positive number of pixels")
        Image.MAX_IMAGE_PIXELS = args.max_pixels  # every decode of this run, its workers' too
    if args.cache == "":
        parser.error("--cache needs a file name (--no-cache: no cache at all)")
    for option in ("--files", "--undo", "--apply", "--montage", "--quarantine", "--tables", "--scheduler"):
        if getattr(args, option[2:]) == "":  # an unset variable: each was dropped, or --undo ran a scan
            parser.error(f"{option} needs a name (an empty one was given: an unset variable?)")
    if args.undo:
        if args.dataset or args.remove or args.apply:
            parser.error("--undo takes only the manifest")
        _refuse_unused(parser, args, "--undo", _UNDO_OPTIONS)
        runner = lambda: _run_undo(args.undo, args.format)  # noqa: E731
    elif args.apply:
        if args.dataset or args.remove:
            parser.error("apply takes the plan only: it acts on the plan's files, without scanning again")
        _refuse_unused(parser, args, "apply", _APPLY_OPTIONS)
        if args.cache and args.no_cache:
            parser.error("--cache and --no-cache exclude each other")
        runner = lambda: _run_apply(args)  # noqa: E731
    else:
        if not (args.dataset or args.reference or args.files):
            parser.error(  # (no usage block above it now: say where the options are)
                "give at least one folder with -d/--dataset, --reference or --files (or --undo MANIFEST);"
                " imgdup --help lists every option"
            )
        if args.null and not args.files:
            parser.error("--null describes the --files list")
        if args.between and len(args.dataset or []) + len(args.reference) < 2 and not args.files:
            parser.error("--between compares two or more folders (-d/--dataset, --reference)")
        if args.permanent and not args.remove:
            parser.error("--permanent only makes sense with --remove 1")
        if args.label_conflicts and not args.labels:
            parser.error("--label-conflicts needs --labels (folder or FILE.csv): without labels there is no conflict")
        if args.cache and args.no_cache:
            parser.error("--cache and --no-cache exclude each other")
        try:
            formats = [report_format(path) for path in args.report]
        except UsageError as exc:
            parser.error(str(exc))
        if len(set(formats)) < len(formats):
            parser.error("--report: one file per format (.json, .csv, .html)")
        if args.engine == "local" and (args.scheduler or args.tables):
            parser.error("--scheduler and --tables need --engine dask")
        if args.engine == "dask" and (args.reference or args.files or args.labels or args.between):
            parser.error("--reference, --files, --labels and --between work with the local engine only (for now)")
        if args.remove and _names_remote(args.dataset or (), lists=args.engine == "dask"):
            parser.error("object-store inputs are report-only: --remove 1 acts on local files only")
        runner = lambda: _run_scan(args)  # noqa: E731
    # SIGTERM (a batch system's time limit, a pre-emption) stops the run as Ctrl-C does: between
    # two files, saying what was done and how to undo it (it ended a removal silently).
    previous = signal.signal(signal.SIGTERM, _terminated) if _main_thread() else None
    # The collector paused for the whole command (imgdup.gcpause), the report's rows included;
    # not under Dask, whose scheduler and client run threads in this process for hours.
    paused = collector_paused() if getattr(args, "engine", "local") != "dask" else contextlib.nullcontext()
    try:
        with paused:
            return runner()
    except UsageError as exc:
        print(f"imgdup: error: {_printable(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except ImgdupError as exc:
        print(f"imgdup: error: {_printable(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    except RemovalInterrupted as exc:
        _say_interrupted_removal(exc.done)
        return 130
    except KeyboardInterrupt:
        cached = not args.undo and not args.apply and not args.no_cache
        print("imgdup: interrupted" + ("; hashes computed so far are kept in the cache" if cached else ""),
              file=sys.stderr)  # fmt: skip
        if args.undo:  # each file is restored whole (the one under way finishes first)
            print(f"imgdup: to restore the rest: imgdup --undo {_pasteable(args.undo)}", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"imgdup: error: {_printable(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _terminated(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
