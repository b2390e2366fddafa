"""Wire the stages: discover -> hash (cache, workers) -> index -> cluster -> decide. No printing."""

from __future__ import annotations

import errno
import functools
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

from . import index as index_mod
from . import memo
from . import quality as quality_mod
from .cache import HashCache
from .cluster import components
from .discover import discover, looks_like_image, normalise_roots
from .errors import StrOrBytesPath, UsageError, check_bool, check_cache_name, plain_number
from .filelist import (
    entries_for_files,
    file_roots,
    listed_names,
    merge_listed,
    nothing_to_scan,
    real_file_paths,
    under_roots,
)
from .gcpause import collector_paused
from .hashing import quality_entry_some_rgb, settings_key
from .labels import MAPPING, label_source, labels_mapping
from .models import (
    Action,
    Cluster,
    Clustered,
    FileEntry,
    HashFailure,
    HashSettings,
    ImageRecord,
    Match,
    Remembered,
    ScanResult,
    ScanSettings,
    Skipped,
    Summary,
)
from .parallel import DEFAULT_TIMEOUT, KILLED, default_jobs, map_files
from .policy import DEFAULT_KEEP, decide_all, parse_keep
from .regions import LinkTable, is_framed, link_item, region_links, split, whole_colour
from .sets import CONFLICT_POLICIES, Annotated, annotate, set_finder
from .warm import hash_with_cache

log = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int, int], None]
"""Called as ``progress(stage, done, total)``. Stages, in order: "discover" (files found; total 0:
unknown), "hash" (files), "search" (distinct hash values searched), "measure" (cluster members
whose quality the keep rules measure; its total can grow between calls), "decide" (clusters).
A stage may be left out (nothing to measure, or a scan without files)."""

Join = Callable[..., list[Match]]
"""A self-join with :func:`imgdup.index.self_join`'s signature and result (another engine's)."""
Measure = Callable[[Sequence[FileEntry], HashSettings, Callable[..., Any]], Sequence[ImageRecord | HashFailure]]
"""Runs the keep policy's per-file measurement (the third argument, picklable) over a batch of
files, results in input order (another engine's scheduler)."""

# phash/64 at T=8 had the best expected-transform F1 (0.981) with zero wrong pairs on the accuracy
# benchmark (T=4: 0.906; T=10 merges different sources; the closest two different dogs-1000 photos
# are 12 bits apart): benchmarks/ACCURACY.md.
DEFAULT_THRESHOLD = 8
# Each hash's own, at 64 bits: the largest threshold with zero wrong pairs on the benchmark's sweep
# and on dogs-1000 (benchmarks/ACCURACY.md). Distances between different photos are far smaller
# under ahash and whash: at phash's 8 they marked 43 and 47 unique dogs-1000 photos for removal.
# The closest different dogs-1000 photos: dhash > 6 bits, whash 4, ahash 0 (one pair has the
# same ahash: no threshold keeps it apart) and 1.
DEFAULT_THRESHOLDS = {"phash": DEFAULT_THRESHOLD, "dhash": 4, "ahash": 0, "whash": 2}


def default_threshold(algorithm: str, hash_size: int = 8) -> int:
    """The threshold a scan uses when none is given: :data:`DEFAULT_THRESHOLDS` scaled to the
    hash's bits (measured at 64 bits; at 256 the sweep's zero-wrong-pair thresholds are 2-4x
    these, so the scaled value is on the safe side)."""
    if isinstance(hash_size, bool) or not isinstance(hash_size, int):
        raise UsageError(f"hash_size must be a whole number (a power of two from 4 to 32), got {hash_size!r}")
    return round(DEFAULT_THRESHOLDS.get(algorithm, DEFAULT_THRESHOLD) * hash_size * hash_size / 64)


PathOrPaths = StrOrBytesPath | Iterable[StrOrBytesPath]


def path_list(value: PathOrPaths | None, name: str) -> list[str]:
    """One path or any iterable of paths (a generator, a list, pandas' column) as strings.

    A bad item is named by the argument and its position, never by the whole value: the repr of
    a million-row list (a CSV column with one empty cell) was the error message."""
    if value is None:
        return []
    if isinstance(value, (str, bytes, os.PathLike)):  # one path, not an iterable of its characters
        return [os.fsdecode(value)]
    if hasattr(value, "columns"):  # a DataFrame iterates over its column names, read as file names
        raise UsageError(f"{name} is a table; give its column of paths ({name}=df['path'])")
    try:
        items = iter(value)
    except TypeError:
        raise UsageError(f"{name} must be a path or an iterable of paths, got {_short(value)}") from None
    out: list[str] = []
    for i, v in enumerate(items):
        if not isinstance(v, (str, bytes, os.PathLike)):  # None, NaN: an empty cell of a table
            raise UsageError(f"{name}[{i}] is not a path: {_short(v)}")
        out.append(os.fsdecode(v))
    return out


def cache_and_progress(cache: StrOrBytesPath | None, progress: object) -> str | None:
    """Check a scan's ``cache`` and ``progress`` (every engine's) before any file is read;
    returns the cache's path as a string. cache=3 raised a bare TypeError once the files were
    found, and a progress that cannot be called did so mid-scan."""
    if cache is not None and not isinstance(cache, (str, bytes, os.PathLike)):
        raise UsageError(f"cache must be the path of a SQLite file or None, got {_short(cache)}")
    if progress is not None and not callable(progress):
        raise UsageError(f"progress must be a function progress(stage, done, total) or None, got {_short(progress)}")
    if cache is None:
        return None
    check_cache_name(os.fsdecode(cache))
    return os.fsdecode(cache)


def _short(value: object) -> str:
    """An argument's repr for a message, cut to a line."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _unreachable(path: str) -> str | None:
    """Why ``path`` cannot be looked at, when that is not that it is missing: a folder under one
    the user may not search (mode 700, another user's) read "not a directory or a file", word for
    word a typo's (QA pass 36). None when it is missing."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
            return f"cannot reach {path}: {exc.strerror or exc}"
    return None


@collector_paused()  # millions of objects and no cycles: imgdup.gcpause
def find_duplicates(
    roots: PathOrPaths = (),
    *,
    reference: PathOrPaths = (),
    files: PathOrPaths | None = None,
    labels: StrOrBytesPath | Mapping[str, str] | None = None,
    label_conflicts: str = "review",
    between: bool = False,
    threshold: int | None = None,
    hash: str = "phash",  # noqa: A002 - the CLI's and the report's name for it
    hash_size: int = 8,
    decode: str = "draft",
    rotations: bool = False,
    regions: bool | None = None,
    keep: str | Sequence[str] = DEFAULT_KEEP,
    index: str = "auto",
    jobs: int | None = None,
    cache: StrOrBytesPath | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: ProgressCallback | None = None,
) -> ScanResult:
    """Scan ``roots`` (one folder, or an iterable of folders) and group near-identical images;
    changes nothing on disk.

    ``threshold`` is inclusive and in bits (0 = identical hashes only, at most the hash's
    ``hash_size ** 2`` bits); None: the hash's own default (:func:`default_threshold`).
    ``rotations`` also matches rotated and mirrored copies (each image is compared in its 8
    orientations). ``regions`` also matches copies with borders, letterboxes,
    caption bars, window frames, small rotations and crops (:mod:`imgdup.regions`); None (the
    default) turns it on for phash, the hash it was measured with. ``keep`` orders the rules
    that choose the kept file (see :data:`imgdup.policy.KEEP_RULES`). ``cache`` is a SQLite
    file path, or None for no cache.
    ``timeout`` is the seconds one file may take to decode before it is reported as failed.
    Returns an immutable :class:`ScanResult`; pass it to :func:`imgdup.remove` to act on it.

    ``roots`` is one path or any iterable of paths: folders are scanned recursively, image
    files are taken as they are. ``files`` lists more files (missing ones are reported as
    skipped, not an error). ``reference`` folders are matched but never removed: a cluster
    holding a reference file keeps it, and clusters made only of reference files are set
    apart in ``reference_clusters``. ``labels`` is ``"folder"`` (class folder name, as ImageFolder), a CSV
    file (path,label) or a mapping ``{path: label}`` (read as the CSV's rows); a cluster whose
    members carry different labels is a label conflict, whose members are left for ``review``
    (``label_conflicts="remove"`` removes them as usual). ``between`` keeps only clusters
    spanning two or more of the given folders.
    """
    started = time.perf_counter()
    threshold, hash_size, jobs, timeout = (plain_number(v) for v in (threshold, hash_size, jobs, timeout))
    between, rotations, regions = (plain_number(v) for v in (between, rotations, regions))
    check_bool("between", between)
    threshold = default_threshold(hash, hash_size) if threshold is None else threshold
    settings, keep_rules = scan_options(
        threshold=threshold, hash=hash, hash_size=hash_size, decode=decode, rotations=rotations,
        regions=regions, keep=keep, index=index, timeout=timeout,
    )  # fmt: skip
    jobs = default_jobs() if jobs is None else jobs
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise UsageError(f"jobs must be a whole number of worker processes, at least 1, got {jobs!r}")
    if label_conflicts not in CONFLICT_POLICIES:
        allowed = ", ".join(CONFLICT_POLICIES)
        raise UsageError(f"label_conflicts must be one of {allowed}, got {_short(label_conflicts)}")
    # Checked before any file is read: labels=3 raised a bare TypeError once the files were
    # found; bytes work as for roots.
    if isinstance(labels, Mapping):
        labels = labels_mapping(labels)
    elif labels is not None:
        if not isinstance(labels, (str, bytes, os.PathLike)):
            # A table's column was "got" with its whole repr, rows and dtype across lines (QA pass 33).
            table = type(labels).__module__.split(".")[0] == "pandas"
            got = f"a pandas {type(labels).__name__}" if table else _short(labels)
            how = " (a table's columns: labels=dict(zip(df['path'], df['label'])))" if table else ""
            raise UsageError(
                f'labels must be "folder", the path of a labels file (CSV), a mapping {{path: label}} or None,'
                f" got {got}{how}"
            )
        labels = os.fsdecode(labels)
    cache = cache_and_progress(cache, progress)
    items = path_list(roots, "roots")
    references = path_list(reference, "reference")  # once: a generator read twice was empty the second time
    if "" in items or "" in references:  # an unset shell variable: never the current folder
        raise UsageError("an empty folder name was given (an unset variable?); refusing to scan the current folder")
    folders = [p for p in items if os.path.isdir(p)]
    listed_here = path_list(files, "files")
    one = listed_here[0] if isinstance(files, (str, bytes, os.PathLike)) else None
    if one is not None and os.path.isdir(one):  # files="data/test": it scanned nothing, one line in skipped
        raise UsageError(f"files={one!r} is a folder: folders go to roots (the first argument); files takes images")
    if one is not None and os.path.isfile(one) and not looks_like_image(one):
        # files="paths.txt", as --files LIST reads it: it scanned nothing, silently
        raise UsageError(
            f"files={one!r} is not an image: files takes the image paths themselves, not a file that lists them"
            f" (to read one: files=pathlib.Path({one!r}).read_text().splitlines())"
        )
    given_files = [p for p in items if os.path.isfile(p)] + listed_here
    listed = real_file_paths(given_files)
    for p in items:
        if not os.path.isdir(p) and not os.path.isfile(p):
            raise UsageError(_unreachable(p) or f"not a directory or a file: {p}")
        if os.path.isfile(p) and not looks_like_image(p):  # a list of paths (-d files.csv): it said "no images found"
            raise UsageError(
                f"{p} is neither a folder nor an image file; a list of image paths goes to --files LIST, one path per"
                " line (in Python, files= takes the paths themselves; a .csv or .parquet list with a path column:"
                " --engine dask)"
            )
    for p in references:  # it said "not a directory: train/cat/a.jpg", naming no option (QA pass 36)
        if os.path.isfile(p):
            raise UsageError(
                f"reference takes folders (--reference DIR), and {p} is a file: give the folder that holds the"
                " reference images (an ImageFolder's root: reference=train.root)"
            )
        if not os.path.isdir(p):
            raise UsageError(_unreachable(p) or f"reference (--reference DIR) is not a folder: {p}")
    ref_roots = normalise_roots(references)
    given = sorted(set(normalise_roots(folders)) | set(ref_roots))  # every folder named, nested ones too
    for f in normalise_roots(folders):
        if f in ref_roots:
            raise UsageError(f"{f} is given both to scan and as a reference folder: nothing in it could be removed")
        ref = next((r for r in ref_roots if f.startswith(r.rstrip(os.sep) + os.sep)), None)
        if ref:
            raise UsageError(f"{f} lies inside the reference folder {ref}: its files would be protected too")
    extras = file_roots(listed, given, beside=ref_roots)  # where the listed files lie: removal's roots
    root_list = normalise_roots(given + extras)
    # The splits they lie in, as listed: a linked class folder's files are test's (not a split
    # named after the link's target), a linked training class is train's and test's (a leak).
    as_named = listed_names(given_files, given, beside=ref_roots)
    in_splits = file_roots(as_named, given, beside=ref_roots) if as_named != listed else extras
    if not root_list:
        raise UsageError(nothing_to_scan(listed, list_given=files is not None))

    entries, skipped, unlisted = (
        discover(normalise_roots(given), on_found=(lambda n: progress("discover", n, 0)) if progress else None)
        if given
        else ([], [], [])
    )
    if listed:
        more, more_skipped, more_failed = entries_for_files(listed, given + extras, scanned=given)
        entries = merge_listed(entries, more)
        skipped = sorted(skipped + more_skipped, key=lambda k: k.path)
        unlisted += more_failed
    entries = under_roots(entries, root_list)
    n_roots = len(root_list)
    log.info(
        "found %d %s under %d %s (%d skipped) in %.2f s", len(entries), "file" if len(entries) == 1 else "files",
        n_roots, "folder" if n_roots == 1 else "folders", len(skipped), time.perf_counter() - started,
    )  # fmt: skip
    set_roots = sorted(set(given) | set(in_splits))
    if between and len(set_roots) < 2:  # listed files alone make one folder: no cluster could span two
        if listed and not any(os.path.lexists(p) for p in listed):  # the list's names are wrong, not its folders
            raise UsageError(nothing_to_scan(listed, list_given=True))
        raise UsageError(
            f"between compares two or more folders, and everything to scan lies in one ({set_roots[0]}):"
            " name the splits as folders (-d DIR, --reference DIR; roots= and reference= in Python)"
        )
    links = _linked_from(ref_roots, skipped)
    linked_dirs = tuple(sorted(t for t in links if os.path.isdir(t)))
    linked_files = frozenset(t for t in links if t not in linked_dirs)
    protected = _protector((*ref_roots, *linked_dirs), linked_files)
    # A listed files' folder that holds some of them in folders below it holds class folders: a
    # split, as a folder named to scan (a file directly in it read as of class "test"); one that
    # holds them all directly is their one class (ImageFolder's samples of one class). Taken as
    # listed (test/cat a link to store/cats_v2: the split is test, not the folder above both).
    # A listed name's folder is its class, as ImageFolder reads it, even through a linked folder;
    # not a file the walk found too (train/cat/a.jpg listed as test/dog2/a.jpg is a cat, and a dog2 there).
    walked = tuple(g.rstrip(os.sep) + os.sep for g in given)
    spelt = [os.path.abspath(p) for p in given_files]
    listed_as = {real: p for real, p in zip(listed, spelt) if real != p and not real.startswith(walked)}
    names = [listed_as.get(p, p) for p in listed]
    listed_in = [os.path.dirname(p) for p in names]
    named = sorted({os.path.realpath(p) for p in folders} | set(ref_roots))  # -d data -d data/test: both
    in_lists = file_roots(names, given, beside=ref_roots) if listed_as else extras  # the same when no name differs
    splits = named + [r for r in in_lists if any(f.startswith(r.rstrip(os.sep) + os.sep) for f in listed_in)]
    labels_of = label_source(labels, found=[(e.path, *e.aliases) for e in entries], splits=splits, listed_as=listed_as)
    store = HashCache(cache, settings_key(settings)) if cache is not None else None
    try:
        # With regions, the cached records' link hashes are converted while the rest are hashed:
        # with a new batch against a cached reference, most are compared (imgdup.warm).
        table = LinkTable(bits=settings.bits)
        hashing = time.perf_counter()
        results, from_cache = hash_with_cache(
            entries, settings, jobs=jobs, store=store, timeout=timeout, progress=progress,
            meanwhile=functools.partial(_convert, table) if settings.regions and protected else None,
        )  # fmt: skip
        records = [r for r in results if isinstance(r, ImageRecord)]
        failures = tuple(r for r in results if isinstance(r, HashFailure))
        decoded = len(results) - from_cache
        log.info(
            "hashed %d files: %d from the cache, %d decoded%s, in %.2f s (%d %s)", len(results), from_cache, decoded,
            f" ({len(failures)} failed)" if failures else "", time.perf_counter() - hashing, jobs,
            "job" if jobs == 1 else "jobs",
        )  # fmt: skip
        scanned = cluster_records(
            records,
            settings,
            threshold=threshold,
            keep=keep_rules,
            index=index,
            jobs=jobs,
            timeout=timeout,
            on_quality=store.put_quality if store else None,
            progress=progress,
            protected=protected,
            searches=store,
            table=table,
        )
    finally:
        if store:
            store.close()
    if protected and (linked_files or linked_dirs):
        plain = _protector(ref_roots)
        by_link = sum(1 for r in scanned.records if protected(r) and not (plain and plain(r)))
        if by_link:
            log.warning(
                "%d scanned %s: a symbolic link in a reference folder points at %s (ImageFolder reads %s as part "
                "of that folder)",
                by_link, "file is kept as a reference file" if by_link == 1 else "files are kept as reference files",
                *(("it", "it") if by_link == 1 else ("them", "them")),
            )  # fmt: skip
    link_names = _link_names(scanned.records, links, {r: n for r, n in zip(listed, as_named) if r != n})
    sets = dataset_sets(
        scanned,
        set_roots,
        reference=ref_roots,
        # every name's label: a reference folder's link files the file under its own class too
        labels=labels_of((r.path, *r.entry.aliases, *link_names.get(r.path, ())) for r in scanned.records),
        label_conflicts=label_conflicts,
        between=between,
        protected=protected,
        link_names=link_names,
    )
    return make_result(
        scanned,
        settings=ScanSettings(
            hash=settings,
            threshold=threshold,
            keep=keep_rules,
            index=index,
            labels=None if labels is None else MAPPING if isinstance(labels, Mapping) else os.fspath(labels),
            label_conflicts=label_conflicts,
            between=between,
        ),
        roots=root_list,
        reference=ref_roots,
        sets=sets,
        files=len(entries),
        from_cache=from_cache,
        # with the paths discovery could not look at (a folder it cannot list): never read either
        failures=tuple(sorted((*unlisted, *failures), key=lambda f: f.path)),
        skipped=tuple(skipped),
        seconds=time.perf_counter() - started,
    )


def dataset_sets(
    scanned: Clustered,
    roots: Sequence[str],
    *,
    reference: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    label_conflicts: str = "review",
    between: bool = False,
    protected: Callable[[ImageRecord], bool] | None = None,
    link_names: Mapping[str, Sequence[str]] | None = None,
) -> Annotated:
    """The dataset step over decided clusters: each folder's files counted, reference-only
    clusters set apart, label conflicts and leaks between the ``roots`` (see :func:`annotate`);
    shared by the local and the Dask engine, whose reports must be the same."""
    counts: dict[str, int] = {}
    links = link_names or {}
    where = set_finder(roots, os.sep)
    for r in scanned.records:
        # Each folder counts the files it names: a file hard-linked into train and test (a
        # ``cp -al`` split) is an image of both; by its first name alone, train lost one. So is
        # a file that a training folder's symbolic link points at (ImageFolder reads it there).
        for key in {where(n) for n in (r.path, *r.entry.aliases, *links.get(r.path, ()))}:
            counts[key] = counts.get(key, 0) + 1
    return annotate(
        scanned.clusters,
        roots=roots,
        reference=reference,
        labels=labels,
        label_conflicts=label_conflicts,
        between=between,
        files=counts,
        sep=os.sep,
        linked=[(r.path, *r.entry.aliases) for r in scanned.records if r.entry.aliases],
        # reference files by a symbolic link of a reference folder, as the policy kept them
        reference_files=frozenset(r.path for r in scanned.records if protected(r)) if protected else frozenset(),
        link_names=links,
    )


def scan_options(
    *,
    threshold: int,
    hash: str,  # noqa: A002 - the CLI's and the report's name for it
    hash_size: int,
    decode: str,
    rotations: bool,
    regions: bool | None,
    keep: str | Sequence[str],
    index: str,
    timeout: float,
) -> tuple[HashSettings, tuple[str, ...]]:
    """Validate a scan's options (every engine's): the hash settings and the keep rules, or a
    :class:`UsageError` that says what is wrong."""
    if isinstance(hash_size, bool) or not isinstance(hash_size, int):
        raise UsageError(f"hash_size must be a whole number (a power of two from 4 to 32), got {hash_size!r}")
    check_bool("rotations", rotations)
    check_bool("regions", regions, none=True)
    try:
        settings = HashSettings(
            algorithm=hash,
            hash_size=hash_size,
            decode=decode,
            rotations=rotations,
            regions=hash == "phash" if regions is None else regions,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if isinstance(threshold, bool) or not isinstance(threshold, int) or not 0 <= threshold <= settings.bits:
        raise UsageError(f"threshold must be a whole number of bits from 0 to {settings.bits}, got {threshold!r}")
    own = default_threshold(settings.algorithm, settings.hash_size)
    if settings.algorithm != "phash" and threshold > own:
        log.warning(
            "threshold %d is above %s's default (%d): %s merges different photos from a few bits on, and "
            "without regions' confirmation copies of different pictures in one frame or letterbox too; "
            "check the report before --remove 1 (phash is the measured default)",
            threshold, settings.algorithm, own, settings.algorithm,
        )  # fmt: skip
    elif threshold > settings.bits // 4:
        log.warning(
            "threshold %d is high for %d-bit hashes: unrelated photos differ in about %d bits, so different "
            "pictures may be grouped and marked remove; check the report before --remove 1",
            threshold, settings.bits, settings.bits // 2,
        )  # fmt: skip
    if index not in index_mod.BACKENDS:
        raise UsageError(f"unknown index {index!r}; choose one of {', '.join(index_mod.BACKENDS)}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise UsageError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return settings, parse_keep(keep)


def make_result(
    scanned: Clustered,
    *,
    settings: ScanSettings,
    roots: tuple[str, ...],
    files: int,
    from_cache: int,
    failures: tuple[HashFailure, ...],
    skipped: tuple[Skipped, ...],
    seconds: float,
    reference: tuple[str, ...] = (),
    sets: Annotated | None = None,
) -> ScanResult:
    """Assemble the immutable :class:`ScanResult` (summary included) from the clusters
    (annotated by :func:`imgdup.sets.annotate` when ``sets`` is given)."""
    clusters = sets.clusters if sets else scanned.clusters
    ref_clusters = sets.reference_clusters if sets else ()
    removable = [m for c in clusters for m in c.removable]
    summary = Summary(
        files=files,
        images=len(scanned.records),
        from_cache=from_cache,
        failures=len(failures),
        clusters=len(clusters),
        # Members beyond the kept ones: with reference files, every reference member is kept.
        duplicates=sum(1 for c in clusters for m in c.members if m.action is not Action.KEEP),
        to_remove=len(removable),
        to_review=sum(1 for c in clusters for m in c.members if m.action is Action.REVIEW),
        bytes_to_remove=sum(m.record.entry.size for m in removable if m.record.entry.frees_space),
        seconds=round(seconds, 3),
        label_conflicts=sum(1 for c in (*clusters, *ref_clusters) if c.label_conflict)
        + (len(sets.linked_conflicts) if sets else 0),
        leaks=sets.leaks if sets else 0,
        reference_clusters=len(ref_clusters),
    )
    return ScanResult(
        settings=settings,
        roots=roots,
        clusters=clusters,
        failures=failures,
        skipped=skipped,
        summary=summary,
        records=scanned.records,
        low_information=scanned.low_information,
        reference=reference,
        reference_clusters=ref_clusters,
        sets=sets.sets if sets else (),
        leak_pairs=sets.leak_pairs if sets else (),
        linked_label_conflicts=sets.linked_conflicts if sets else (),
    )


def _linked_from(reference: Sequence[str], skipped: Sequence[Skipped]) -> dict[str, list[str]]:
    """The files and folders that symbolic links in the ``reference`` folders point at (a split
    made of links: train/cat/x.jpg -> test/cat/x.jpg, or a class folder train/dog -> pool/dogs),
    and the reference files and folders that links elsewhere point at, each with its links. The
    links are not followed, but ImageFolder reads their targets as
    training images: a target scanned elsewhere was removed like any file, and the training
    image with it."""
    out: dict[str, list[str]] = {}
    if not reference:
        return out
    prefixes = tuple(r.rstrip(os.sep) + os.sep for r in reference)
    for k in skipped:
        if not os.path.islink(k.path):
            continue
        target = os.path.realpath(k.path)
        # and a link elsewhere to a reference file or folder (test/cat/x.jpg -> train/cat/x.jpg,
        # test/cat -> ../train/cat): ImageFolder reads the training image in test too, and the
        # summary said "leaks: none" (QA pass 34)
        if k.path.startswith(prefixes) or (target + os.sep).startswith(prefixes):
            out.setdefault(target, []).append(k.path)
    return out


def _link_names(
    records: Sequence[ImageRecord], links: Mapping[str, Sequence[str]], listed: Mapping[str, str] | None = None
) -> dict[str, tuple[str, ...]]:
    """Each record's names by the reference folders' symbolic links (``links``: target -> links):
    test/cat/x.jpg is also train/cat/x.jpg, pool/p.jpg also train/dog/p.jpg. A file is in the
    folders of all its names: its copy in test is a leak to train. So are the names it was listed
    by through a linked folder (``listed``: real -> as listed, :func:`imgdup.filelist.listed_names`)."""
    if listed:
        merged = {t: list(via) for t, via in links.items()}
        for real, name in listed.items():
            merged.setdefault(real, []).append(name)
        links = merged
    if not links:
        return {}
    # Folder links are few (class folders); file links may be a whole split: looked up by name.
    folders = [(t.rstrip(os.sep) + os.sep, via) for t, via in links.items() if os.path.isdir(t)]
    out: dict[str, tuple[str, ...]] = {}
    for r in records:
        names: list[str] = []
        for n in (r.path, *r.entry.aliases):
            names += links.get(n, ())
            for prefix, via in folders:
                if n.startswith(prefix):
                    names += [os.path.join(link, n[len(prefix) :]) for link in via]
        if names:
            out[r.path] = tuple(sorted(set(names)))
    return out


def _protector(reference: Sequence[str], files: frozenset[str] = frozenset()) -> Callable[[ImageRecord], bool] | None:
    """A test "is this record a reference file?" (by path: a reference folder may be nested in
    a scanned one, and a file or folder a reference folder's symbolic link points at counts:
    ``files``, and folders among ``reference``), or None without reference folders. A file with
    hard links is one whenever any of its names is: the removal would take the reference's name
    with it."""
    if not reference and not files:
        return None
    prefixes = tuple(r.rstrip(os.sep) + os.sep for r in reference)

    def protected(r: ImageRecord) -> bool:
        e = r.entry  # called several times per record and run: no generator for the common case
        if e.path.startswith(prefixes) or (bool(e.aliases) and any(a.startswith(prefixes) for a in e.aliases)):
            return True
        return bool(files) and (e.path in files or any(a in files for a in e.aliases))

    return protected


def cluster_records(
    records: Sequence[ImageRecord],
    settings: HashSettings,
    *,
    threshold: int,
    keep: Sequence[str],
    index: str = "auto",
    jobs: int = 1,
    timeout: float = DEFAULT_TIMEOUT,
    on_quality: Callable[[Sequence[ImageRecord]], None] | None = None,
    progress: ProgressCallback | None = None,
    join: Join | None = None,
    measure: Measure | None = None,
    protected: Callable[[ImageRecord], bool] | None = None,
    searches: HashCache | None = None,
    table: LinkTable | None = None,
) -> Clustered:
    """Search, cluster and decide over already hashed records (in path order).

    Low-information images (solid colours, blank scans) stay out of the search and group only
    with byte-identical copies. With the ``quality`` keep rule, cluster members are decoded
    again in full to measure it (only duplicates pay that cost); returned records carry it, so
    a caller that clusters the same records again (a threshold sweep) measures once; ``on_quality``
    receives them (the cache stores them, so a warm run measures nothing). ``join`` and
    ``measure`` replace the local self-join and quality workers (the Dask engine's scheduling
    of the same kernels). ``table``: a :class:`LinkTable` that may hold some records' link hashes already.
    """
    decided = functools.partial(
        memo.decision_key, settings_key=settings_key(settings), threshold=threshold, keep=keep, protected=protected,
        lines={},  # each record's part of a key made once: all the records' key, then the reference files'
    )  # fmt: skip
    key = ""
    if searches is not None:  # a re-run over unchanged files: the decisions are remembered
        key = decided(records)
        known = memo.decode(searches.get_memo(key), records)
        if known is not None:
            log.info("decisions remembered from an earlier run over the same files (the cache): %d clusters",
                     len(known.clusters))  # fmt: skip
            if progress:
                progress("decide", len(known.clusters), len(known.clusters))
            return known
        if "quality" in keep:
            records = _with_blocks(records, searches)
    normal = [r for r in records if not r.low_information]
    low = [r for r in records if r.low_information]
    distinct = len({r.hash for r in normal})
    if progress:  # the index backends search in one call: the bar moves from 0 to all at once
        progress("search", 0, distinct)
    table = table or LinkTable(bits=settings.bits)  # each record's link hashes converted once: search and decisions
    searching = time.perf_counter()
    groups = _components(
        normal, settings, threshold=threshold, backend=index, join=join, searches=searches, protected=protected,
        table=table,
    )  # fmt: skip
    if progress:
        progress("search", distinct, distinct)
    by_digest: dict[str, list[ImageRecord]] = {}
    for r in low:
        by_digest.setdefault(r.digest, []).append(r)
    groups += [g for g in by_digest.values() if len(g) > 1]
    groups.sort(key=lambda g: min(r.path for r in g))
    log.info(
        "searched %d images in %.2f s: %d %s", len(normal), time.perf_counter() - searching, len(groups),
        "cluster" if len(groups) == 1 else "clusters",
    )  # fmt: skip
    assess = quality_mod.Assessor()  # the measuring rounds and the keeper choice share answers
    missed = 0  # files whose quality could not be measured (tried again next time)
    before = records
    if "quality" in keep:
        if protected:
            # Every reference member is kept and the others are removed against the nearest of
            # them, so which reference file is named the keeper changes no action: clusters that
            # hold one are not measured (a warm reference then costs no decode at all).
            unprotected = [g for g in groups if not any(protected(r) for r in g)]
            _, records, missed = _with_quality(
                unprotected,
                records,
                settings,
                keep=keep,
                jobs=jobs,
                timeout=timeout,
                progress=progress,
                measure=measure,
                assess=assess,
            )
            latest = {r.path: r for r in records}
            groups = [[latest.get(r.path, r) for r in g] for g in groups]
        else:
            groups, records, missed = _with_quality(
                groups, records, settings, keep=keep, jobs=jobs, timeout=timeout, progress=progress,
                measure=measure, assess=assess,
            )  # fmt: skip
        if on_quality:  # only what was measured now (a new record): cached measurements are not written again
            on_quality([r for r, old in zip(records, before) if r is not old and r.quality is not None])
    chosen = _reference_keepers(records, decided, searches, protected)
    deciding = time.perf_counter()
    clusters: list[Cluster] = []
    for start in range(0, len(groups), 256):
        batch = [sorted(members, key=lambda r: r.path) for members in groups[start : start + 256]]
        clusters += decide_all(
            batch,
            threshold=threshold,
            keep=keep,
            bits=settings.bits,
            protected=protected,
            first_id=start,
            assess=assess,
            chosen=chosen,
            table=table,
        )
        if progress:
            progress("decide", len(clusters), len(groups))
    log.info(
        "decided %d %s in %.2f s", len(clusters), "cluster" if len(clusters) == 1 else "clusters",
        time.perf_counter() - deciding,
    )  # fmt: skip
    paired = {r.path for g in groups for r in g}
    lonely_low = tuple(r for r in records if r.low_information and r.path not in paired)
    scanned = Clustered(tuple(clusters), lonely_low, tuple(records))
    if searches is not None and not missed:
        # Under the key of the records as measured: those are what the next run reads back
        # from the cache (the key this run started from, when nothing was measured).
        if any(r is not old for r, old in zip(records, before)):
            key = decided(records)
        searches.put_memo(key, memo.encode(scanned))
    return scanned


# Cached records whose link hashes are converted ahead (while the new files are hashed) at most:
# 837 bytes of arrays a record (20,646: 17 MB), kept for the scan. A larger reference converts only
# what its search compares, afterwards, as without a cache.
_CONVERT_AHEAD = 100_000


def _convert(table: LinkTable, records: Sequence[ImageRecord]) -> None:
    """Convert the records' link hashes into ``table`` (low-information records are never searched)."""
    if len(records) <= _CONVERT_AHEAD:
        table.rows_of([r for r in records if not r.low_information])


def _with_blocks(records: Sequence[ImageRecord], store: HashCache) -> Sequence[ImageRecord]:
    """The records, those measured in full with their block signatures (:attr:`Quality.blocks`)
    read from the cache: the keep policy compares them; a warm run with remembered decisions does
    not read them at all (:meth:`HashCache.get_blocks`)."""
    want = [r for r in records if r.quality is not None and r.quality.complete and not r.quality.blocks]
    found = store.get_blocks(want) if want else {}
    if not found:
        return records
    return [
        replace(r, quality=replace(r.quality, blocks=found[r.path])) if r.path in found and r.quality else r
        for r in records
    ]


def _components(
    records: Sequence[ImageRecord],
    settings: HashSettings,
    *,
    threshold: int,
    backend: str,
    join: Join | None = None,
    searches: HashCache | None = None,
    protected: Callable[[ImageRecord], bool] | None = None,
    table: LinkTable | None = None,
) -> list[list[ImageRecord]]:
    """Groups of records linked by matches (identical hashes grouped first), singletons dropped.

    With rotation variants, the index holds every distinct value of every image's 8 hashes; a
    match between two values links two images only when one value is the plain hash of one of
    them and the other is any orientation of the other: exactly the pairs whose
    :func:`~imgdup.index.oriented_distance` is within the threshold (two rotated versions of two
    images never link them). Images are grouped by (hash, variants) so that the distance the
    report shows between two files is the one that linked them.

    With reference files and a cache that remembers a search over the reference files alone
    (any earlier scan of them), only the links that involve another file are searched for: a
    new batch checked against a cached reference does not search the reference again.
    """
    self_join = join or index_mod.self_join
    by_hash: dict[Node, list[ImageRecord]] = {}
    nodes = [_node(r, settings) for r in records]
    for r, node in zip(records, nodes):  # records are in path order, so unique values are too
        by_hash.setdefault(node, []).append(r)
    unique = list(by_hash)
    key = memo.search_key([by_hash[h] for h in unique], settings_key(settings), threshold) if searches else ""
    known = memo.search_groups(searches.get_memo(key), len(unique)) if searches else None
    if known is not None:
        return [[r for i in comp for r in by_hash[unique[i]]] for comp in known]
    if settings.regions:  # every link is confirmed by the finer hashes: imgdup.regions
        images = [[link_item(r) for r in by_hash[h]] for h in unique]
        known_links, fresh = _reference_links(records, nodes, by_hash, settings, threshold, searches, protected)
        # each image's first record's row in the table, looked up by the record (see LinkTable.rows_of)
        first_rows = table.rows_of([by_hash[h][0] for h in unique]) if table is not None else None
        found_links = region_links(
            images, threshold, bits=settings.bits, backend=backend, join=join, fresh=fresh, table=table,
            spanning=True, known=known_links, first_rows=first_rows,
        )  # fmt: skip
        pairs = [(i, j) for i, j, _d in found_links] + known_links
    elif not settings.rotations:
        hashes = [node[0] for node in unique]
        pairs = [(m.a, m.b) for m in self_join(hashes, threshold, bits=settings.bits, backend=backend)]
    else:
        plain: dict[int, list[int]] = {}  # value -> images whose plain hash it is
        anyo: dict[int, list[int]] = {}  # value -> images having it among their 8 orientations
        for i, (h, variants, *_rest) in enumerate(unique):
            plain.setdefault(h, []).append(i)
            for v in dict.fromkeys((h, *variants)):
                anyo.setdefault(v, []).append(i)
        values = list(anyo)
        pairs = [(x, y) for v in values for x in plain.get(v, ()) for y in anyo[v] if x != y]
        for m in self_join(values, threshold, bits=settings.bits, backend=backend):
            va, vb = values[m.a], values[m.b]
            pairs += [(x, y) for x in plain.get(va, ()) for y in anyo[vb] if x != y]
            pairs += [(x, y) for x in plain.get(vb, ()) for y in anyo[va] if x != y]
    matches = [Match(a, b, 0) for a, b in pairs]
    found = [list(comp) for comp in components(len(unique), matches)
             if len(comp) > 1 or len(by_hash[unique[comp[0]]]) > 1]  # fmt: skip
    if searches:
        searches.put_memo(key, found)
    return [[r for i in comp for r in by_hash[unique[i]]] for comp in found]


Node = tuple[int, tuple[int, ...], int, int]
"""See :func:`_node`."""


def _node(r: ImageRecord, settings: HashSettings) -> Node:
    """The search's node of a record: records with the same node are linked without a search.
    The plain hash (and rotation variants); for a picture in a wide frame also its content box's
    finer hash (:data:`imgdup.regions.FRAMED_SHARE`: there different pictures share a plain hash);
    with regions, the whole image's colour layout (flags of other colours share a plain hash)."""
    box = split(r.regions)[1][1] if settings.regions and is_framed(r) else -1
    return r.hash, r.variants if settings.rotations else (), box, whole_colour(r.regions)


def _reference_keepers(
    records: Sequence[ImageRecord],
    decided: Callable[[Sequence[ImageRecord]], str],
    searches: HashCache | None,
    protected: Callable[[ImageRecord], bool] | None,
) -> dict[frozenset[str], Remembered]:
    """The keepers (path, reason), diameters and members that a remembered scan of the reference files alone
    chose, by the set of files they were chosen from (see :func:`imgdup.policy.decide_all`): a cluster
    whose reference members are one of those sets keeps the same file, for the same reason,
    without running the rules again; one that no other file joined is taken as it was."""
    if searches is None or protected is None:
        return {}
    refs = [r for r in records if protected(r)]
    if not refs or len(refs) == len(records):
        return {}
    return memo.keepers(searches.get_memo(decided(refs)), refs) or {}


def _reference_links(
    records: Sequence[ImageRecord],
    nodes: Sequence[Node],
    by_hash: dict[Node, list[ImageRecord]],
    settings: HashSettings,
    threshold: int,
    searches: HashCache | None,
    protected: Callable[[ImageRecord], bool] | None,
) -> tuple[list[tuple[int, int]], list[bool] | None]:
    """Links among the reference files that a remembered search over them alone already holds
    (as pairs of positions in ``by_hash``), and which positions are fresh (hold a file that is
    not a reference file); or no links and None when no such search is remembered. ``nodes``:
    each record's :func:`_node`."""
    if searches is None or protected is None:
        return [], None
    ref_by_hash: dict[Node, list[ImageRecord]] = {}
    for r, node in zip(records, nodes):  # in path order: grouped exactly as a scan of the reference files alone
        if protected(r):
            ref_by_hash.setdefault(node, []).append(r)
    ref_unique = list(ref_by_hash)
    key = memo.search_key([ref_by_hash[h] for h in ref_unique], settings_key(settings), threshold)
    groups = memo.search_groups(searches.get_memo(key), len(ref_unique))
    if groups is None:
        return [], None
    at = {h: i for i, h in enumerate(by_hash)}
    links = [(at[ref_unique[g[0]]], at[ref_unique[i]]) for g in groups for i in g[1:]]
    return links, [not all(protected(r) for r in rs) for rs in by_hash.values()]


def _to_measure(
    members: list[ImageRecord], tried: set[str], tiered: bool, assess: quality_mod.Assess = quality_mod.assess
) -> tuple[list[ImageRecord], bool]:
    """The members of one cluster whose quality the policy still needs, and whether their
    spectrum is all it needs (smaller siblings a candidate is compared with).

    Tiered (the ``quality`` rule first): only files that can still win are measured. Damaged
    files, grey ones where a sibling has colour, and framed ones where a sibling shows as much of
    the picture without the frame, are out (the hash's own decode says so);
    the rest go one pixel-count tier at a time, largest first, stopping at the first tier that
    holds a file that is not an enlargement of a smaller sibling. A lone file with no smaller
    sibling needs no measurement at all.
    """
    verdicts = assess(members)
    # Only a spectrum was measured (an enlargement of a sibling then): enough while it still is
    # one here; measured again in full if this cluster has no sibling it is an enlargement of.
    partial = {r.path for r, v in zip(members, verdicts) if r.quality and not r.quality.complete and not v.enlarged}
    partial |= _measured_without_twin(members)
    unknown = [r for r in members if (r.quality is None or r.path in partial) and r.path not in tried]
    if not tiered:
        return unknown, False
    unknown_paths = {r.path for r in unknown}
    pool = [r for r, v in zip(members, verdicts) if not (v.damaged or v.grey or v.framed)] or members
    enlarged = {r.path for r, v in zip(members, verdicts) if v.enlarged}
    for pixels in sorted({r.pixels for r in pool}, reverse=True):
        tier = [r for r in pool if r.pixels == pixels]
        # Any smaller sibling may be its source: a nearest-neighbour enlargement by 1.1x is told
        # (quality.nearest_enlargement), and was kept as "most pixels" unmeasured (QA pass 15).
        has_source = any(s.pixels < pixels for s in members)
        if len({r.digest for r in tier}) == 1 and not has_source:
            return [], False  # one picture on top, nothing smaller it could be an enlargement of
        in_tier = {r.path for r in tier}
        pairs = [(r, v) for r, v in zip(members, verdicts) if r.path in in_tier and r.path not in enlarged]
        # A spectrum alone (the hash pass takes it from a large PNG's or WebP's full decode)
        # answers "is it an enlargement?"; the rest of a measurement is for the tier's ranking.
        spectral = [r for r, _ in pairs if r.path not in unknown_paths or (r.quality and r.quality.spectrum)]
        if has_source and not spectral:
            # Is any file of this tier not an enlargement? Only a spectrum says: measure the
            # best claims first; if all of the tier turn out enlarged, go on to the next tier.
            if not pairs:
                continue
            live = [(r, v) for r, v in pairs if not v.edited] or pairs
            top = max(quality_mod.effective_quality(r)[0] for r, _ in live)
            return [r for r, _ in live if quality_mod.effective_quality(r)[0] == top], False
        sources = _sibling_sources_to_measure(members, verdicts, spectral, tried)
        if sources:
            return sources, True
        need = _best_quality_first(pairs, unknown_paths)
        return need or _witnesses([(r, v) for r, v in zip(members, verdicts) if r.path in in_tier], tried), False
    return [], False


def _measured_without_twin(members: Sequence[ImageRecord]) -> set[str]:
    """Lossy members beside a same-size lossless one whose pixel digest matches none of theirs:
    measured (a cached measurement) when no such sibling was there, their digest is of their
    luminance, not of the colour decode a twin is compared by (:class:`_Steps`), so a PNG of
    their exact pixels added since was not seen as their twin, and a warm run kept another file
    than a cold one (QA pass 33). Measured again, once a run; a member that truly differs
    costs that only while the files change (a run over the same files remembers its decisions)."""
    lossless: dict[int, set[str]] = {}
    for r in members:
        if r.traits and r.traits.lossless and r.quality and r.quality.pixels_sha256:
            lossless.setdefault(r.pixels, set()).add(r.quality.pixels_sha256)
    return {
        r.path
        for r in members
        if r.pixels in lossless and not (r.traits and r.traits.lossless)
        and r.quality and r.quality.complete and r.quality.pixels_sha256 not in lossless[r.pixels]
    }  # fmt: skip


# Same-size files measured at most for their block signature's sake (see _witnesses): bounded
# work in a tier of many copies.
_WITNESSES = 2
_SIGNED_MAX = 6


def _witnesses(tier: list[tuple[ImageRecord, quality_mod.Assessment]], tried: set[str]) -> list[ImageRecord]:
    """Unmeasured files of the keeper's tier to measure as witnesses when two measured ones
    disagree (:func:`imgdup.quality.consistent`: one of them is a filtered copy, saved at a
    higher quality, say) and no verdict says which: the file the most copies are plain re-encodes
    of is the unfiltered one (:func:`imgdup.quality.processed`), and the pair alone cannot say.
    Best claimed quality first (the finest steps tell the most), edited files too (a colour
    filter leaves the luminance a plain re-encode)."""
    signed = [
        (r, v) for r, v in tier if r.quality is not None and r.quality.blocks and not quality_mod.unknown_quality(r)
    ]
    if len(signed) < 2 or len(signed) >= _SIGNED_MAX:
        return []
    open_pair = any(
        quality_mod.consistent(a.quality.blocks, b.quality.blocks, (va.reencoded_from, vb.reencoded_from))  # type: ignore[union-attr]
        is False
        and not (va.processed or vb.processed)
        and (quality_mod.may_be_filtered(a) or quality_mod.may_be_filtered(b))
        for k, (a, va) in enumerate(signed)
        for b, vb in signed[k + 1 :]
    )
    if not open_pair:
        return []
    unmeasured = [r for r, _ in tier if r.quality is None and r.path not in tried]
    unmeasured.sort(key=lambda r: -quality_mod.effective_quality(r)[0])
    return unmeasured[: min(_WITNESSES, _SIGNED_MAX - len(signed))]


def _sibling_sources_to_measure(
    members: list[ImageRecord],
    verdicts: list[quality_mod.Assessment],
    candidates: list[ImageRecord],
    tried: set[str],
) -> list[ImageRecord]:
    """Smaller siblings whose spectrum :func:`imgdup.quality.enlarged_against` needs before the
    candidates (measured, not enlargements by their own spectrum) can be kept: per pixel count
    0.6-0.8 times a candidate's size (linear), one unmeasured, unframed, unedited member with
    the best claimed quality, unless two of that size are measured already: one alone may be a
    blurred copy (the best claim, a q90 one), which a larger file out-details without being the
    picture's source (a 1.5x enlargement was kept over the camera file so, QA pass 34); of two,
    one blurred beside the other is left out (:func:`imgdup.quality.assess`)."""
    low, high = quality_mod.SIBLING_SCALES
    measured = Counter(r.pixels for r in members if r.quality and r.quality.spectrum)
    by_size: dict[int, ImageRecord] = {}
    for r, v in zip(members, verdicts):
        if r.path in tried or (r.quality and r.quality.spectrum) or measured[r.pixels] >= 2 or v.framed or v.edited:
            continue
        if not any(low <= (r.pixels / c.pixels) ** 0.5 <= high for c in candidates if c.pixels):
            continue
        best = by_size.get(r.pixels)
        if best is None or quality_mod.effective_quality(r)[0] > quality_mod.effective_quality(best)[0]:
            by_size[r.pixels] = r
    return list(by_size.values())


def _best_quality_first(tier: list[tuple[ImageRecord, quality_mod.Assessment]], unknown: set[str]) -> list[ImageRecord]:
    """In the keeper's tier, the files whose measurement can still change the keeper.

    A file's effective quality never exceeds what its own format says (JPEG table, lossless),
    and edited files rank below unedited ones anyway: so files are measured best-claim first,
    stopping once the best measured file's effective quality beats every unmeasured claim.
    One distinct file per digest is enough.
    """
    live = [(r, v) for r, v in tier if not v.edited] or tier
    if len({r.digest for r, _ in live}) < 2:
        return []
    claims = [(quality_mod.effective_quality(r)[0], r, v) for r, v in live]
    # A measured lossless file does not stop the search: it may hold a JPEG sibling's very pixels
    # (the pixel digest of that JPEG tells), so the best JPEG claims are measured as well.
    best = max(
        (q for q, r, v in claims if r.path not in unknown and not v.blurred and not (r.traits and r.traits.lossless)),
        default=-1,
    )
    open_claims = [(q, r) for q, r, _ in claims if r.path in unknown and q >= best]
    if not open_claims:
        return []
    # the two best claims at least: "blurred" is relative to the other measured files
    measured = sum(1 for _, r, _ in claims if r.path not in unknown)
    tops = sorted({q for q, _ in open_claims}, reverse=True)[: 1 if measured >= 2 else 2]
    return [r for q, r in open_claims if q in tops]


class _Need(NamedTuple):
    """One file whose quality a cluster's next step needs (:class:`_Steps`), as a worker takes it."""

    path: str
    entry: FileEntry
    colour: bool  # a JPEG beside a same-size lossless sibling: its pixel digest in colour
    factors: tuple[float, ...]  # its smaller siblings' scales (as assess() has them)
    spectrum: bool  # its spectrum alone (an enlargement test), not the whole measurement
    cluster: int


def _measure_need(need: _Need, settings: HashSettings) -> ImageRecord | HashFailure:
    """Measure one file as its cluster's step asked (in a worker)."""
    return _measure_need_batch([need])(need.entry, settings)


def _measure_need_batch(needs: Sequence[_Need]) -> Callable[..., ImageRecord | HashFailure]:
    """The work of one round of another engine's ``measure``: each entry measured as its need
    asks (:func:`_measure_need`, the local pool's, is this for one)."""
    return functools.partial(
        quality_entry_some_rgb,
        colour_paths=frozenset(n.path for n in needs if n.colour),
        factors={n.path: n.factors for n in needs if n.factors},
        spectrum_paths=frozenset(n.path for n in needs if n.spectrum),
    )


class _Steps:
    """The keep policy's measuring, cluster by cluster: what each cluster's next step needs
    measured (:func:`_to_measure`), and the measurements as they come in. Clusters share no
    file (a file is in one cluster), so each one's steps depend on its own members only, in
    whatever order the clusters take them."""

    def __init__(self, tiered: bool, assess: quality_mod.Assess) -> None:
        self.tiered, self.assess = tiered, assess
        self.measured: dict[str, ImageRecord] = {}
        self.tried: set[str] = set()  # measured or failed: never asked for twice
        self.missed = 0  # files whose quality could not be measured (tried again next time)
        self.asked = self.done = self.deepest = 0
        self._sharing: dict[tuple[int, str], list[ImageRecord]] = {}  # (cluster, need's path): its members
        self._open: dict[int, int] = {}  # per cluster: its needs not measured yet
        self._depth: dict[int, int] = {}

    def plan(self, cluster: int, group: Sequence[ImageRecord]) -> list[_Need]:
        """The files ``cluster``'s next step needs measured ([] when it needs nothing more):
        byte-identical members measure the same, so one of them is decoded."""
        members = [self.measured.get(r.path, r) for r in group]
        need, as_sources = _to_measure(members, self.tried, self.tiered, self.assess)
        if not need:
            return []
        sizes = {r.pixels for r in members}
        lossless = {r.pixels for r in members if r.traits and r.traits.lossless}
        first: dict[tuple[str, bool], _Need] = {}
        for r in need:
            colour = r.pixels in lossless and not (r.traits and r.traits.lossless)
            n = first.get((r.digest, colour))
            if n is None:
                factors = tuple(quality_mod.sibling_scales(r.pixels, sizes))
                n = first[r.digest, colour] = _Need(r.path, r.entry, colour, factors, as_sources, cluster)
                self._sharing[cluster, n.path] = []
            self._sharing[cluster, n.path].append(r)
        out = list(first.values())
        self._open[cluster] = len(out)
        self._depth[cluster] = self._depth.get(cluster, 0) + 1
        self.deepest = max(self.deepest, self._depth[cluster])
        self.asked += len(out)
        return out

    def record(self, need: _Need, res: ImageRecord | HashFailure) -> bool:
        """Take one measurement in (for every member it stands for); True when it was the
        last one its cluster's step waited for."""
        for r in self._sharing.pop((need.cluster, need.path)):
            # A file changed since it was hashed keeps "unknown" quality (removal re-checks it anyway).
            if isinstance(res, ImageRecord) and res.digest == r.digest:
                self.measured[r.path] = replace(r, quality=res.quality)
                if not need.spectrum:  # a spectrum alone: measured in full if it can still win
                    self.tried.add(r.path)
            else:
                self.tried.add(r.path)
                self.missed += 1
                if isinstance(res, HashFailure) and res.reason.startswith(KILLED):
                    # A memory shortage of the machine (the out-of-memory killer), said without -v:
                    # the keeper was chosen without this file's measurement.
                    log.warning(
                        "quality of %s not measured: %s; the keep policy takes its quality as unknown, as after a "
                        "timeout, not as damage", r.path, res.reason.partition(";")[0],
                    )  # fmt: skip
                else:
                    log.info("quality of %s not measured: %s", r.path, getattr(res, "reason", "file changed"))
                if isinstance(res, HashFailure) and not res.transient and r.traits is not None and r.traits.intact:
                    # Its full decode fails (a broken stream past what the hash pass read, a
                    # decoder crash): what Pillow's full check would have said. It never wins;
                    # for this run only (the cache keeps what the hash pass saw).
                    self.measured[r.path] = replace(r, traits=replace(r.traits, intact=False))
        self.done += 1
        self._open[need.cluster] -= 1
        return self._open[need.cluster] == 0


def _with_quality(
    groups: list[list[ImageRecord]],
    records: Sequence[ImageRecord],
    settings: HashSettings,
    *,
    keep: Sequence[str],
    jobs: int,
    timeout: float,
    progress: ProgressCallback | None = None,
    measure: Measure | None = None,
    assess: quality_mod.Assess = quality_mod.assess,
) -> tuple[list[list[ImageRecord]], list[ImageRecord], int]:
    """Measure :class:`Quality` (a full decode, in workers) for the members the policy needs;
    and how many of them could not be measured.

    Byte-identical members need no comparison, so clusters of exact copies measure nothing, and
    byte-identical members of other clusters are decoded once. When the policy starts with
    ``quality`` (the default), members are measured lazily, a step at a time (see
    :func:`_to_measure`) instead of all of them (measured on a 20,000-file set of 20-member
    clusters: measuring every member cost 5x the hashing). Each cluster takes its next step as
    soon as its files of the last one are measured, while the workers go on with the other
    clusters' files (:func:`imgdup.parallel.map_files`'s ``more``): deciding what to measure
    next had the workers wait, round after round. Another engine's ``measure`` (Dask) takes
    the clusters' steps in rounds, a batch of files each.
    """
    tiered = keep[0] == "quality"
    steps = _Steps(tiered, assess)
    active = [g for g in groups if len({m.digest for m in g}) > 1]
    measuring = time.perf_counter()
    if measure is not None:
        rounds = 0
        while True:
            needs = [n for c, g in enumerate(active) for n in steps.plan(c, g)]
            if not needs:
                break
            rounds += 1
            got = measure([n.entry for n in needs], settings, _measure_need_batch(needs))
            for n, res in zip(needs, got):
                steps.record(n, res)
            if progress:
                progress("measure", steps.done, steps.asked)
        how = f"in {rounds} {'round' if rounds == 1 else 'rounds'}"
    else:

        def more(need: _Need, res: ImageRecord | HashFailure) -> list[_Need]:
            ready = steps.record(need, res)
            if progress:
                progress("measure", steps.done, steps.asked)
            return steps.plan(need.cluster, active[need.cluster]) if ready else []

        first = [n for c, g in enumerate(active) for n in steps.plan(c, g)]
        if progress and first:
            progress("measure", 0, steps.asked)
        # two files a message: a full decode takes 5-150 ms, and a cluster's next step waits
        # for the message that holds its last file
        map_files(first, settings, _measure_need, jobs=jobs, timeout=timeout, more=more, chunk=2)
        how = f"in up to {steps.deepest} {'step' if steps.deepest == 1 else 'steps'} a cluster"
    if steps.asked:
        log.info(
            "measured %d %s %s in %.2f s", steps.asked, "file" if steps.asked == 1 else "files", how,
            time.perf_counter() - measuring,
        )  # fmt: skip
    measured, missed = steps.measured, steps.missed
    if not measured:
        return groups, list(records), missed
    return (
        [[measured.get(r.path, r) for r in g] for g in groups],
        [measured.get(r.path, r) for r in records],
        missed,
    )
