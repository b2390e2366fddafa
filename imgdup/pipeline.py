"""Wire the stages: discover -> hash (cache, workers) -> index -> cluster -> decide. No printing."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from . import index as index_mod
from .cache import HashCache
from .cluster import components
from .discover import discover, normalise_roots
from .errors import UsageError
from .filelist import entries_for_files, file_root, real_file_paths
from .hashing import quality_entry, settings_key
from .labels import label_source
from .models import (
    Action,
    Cluster,
    FileEntry,
    HashFailure,
    HashSettings,
    ImageRecord,
    Match,
    ScanResult,
    ScanSettings,
    Skipped,
    Summary,
)
from .parallel import DEFAULT_TIMEOUT, default_jobs, hash_all
from .policy import DEFAULT_KEEP, decide, parse_keep
from .sets import CONFLICT_POLICIES, Annotated, annotate, set_of

log = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int, int], None]
"""Called as ``progress(stage, done, total)``; stages are "hash" and "search"."""

# phash/64 at T=8 had the best expected-transform F1 (0.981) with zero wrong pairs on the accuracy
# benchmark (T=4: 0.906; T=10 merges different sources; the closest two different dogs-1000 photos
# are 12 bits apart): benchmarks/ACCURACY.md.
DEFAULT_THRESHOLD = 8


PathOrPaths = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]


def _paths(value: PathOrPaths | None) -> list[str]:
    """One path or any iterable of paths (a generator, a list, pandas' column) as strings."""
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)]
    return [os.fspath(v) for v in value]


def find_duplicates(
    roots: PathOrPaths = (),
    *,
    reference: PathOrPaths = (),
    files: Iterable[str | os.PathLike[str]] | None = None,
    labels: str | os.PathLike[str] | None = None,
    label_conflicts: str = "review",
    between: bool = False,
    threshold: int = DEFAULT_THRESHOLD,
    hash: str = "phash",  # noqa: A002 - the CLI's and the report's name for it
    hash_size: int = 8,
    decode: str = "draft",
    rotations: bool = False,
    keep: str | Sequence[str] = DEFAULT_KEEP,
    index: str = "auto",
    jobs: int | None = None,
    cache: str | os.PathLike[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: ProgressCallback | None = None,
) -> ScanResult:
    """Scan ``roots`` and group near-identical images; changes nothing on disk.

    ``threshold`` is inclusive and in bits (0 = identical hashes only, at most the hash's
    ``hash_size ** 2`` bits). ``rotations`` also matches rotated and mirrored copies (each image
    is compared in its 8 orientations). ``keep`` orders the rules that choose the kept file (see
    :data:`imgdup.policy.KEEP_RULES`). ``cache`` is a SQLite file path, or None for no cache.
    ``timeout`` is the seconds one file may take to decode before it is reported as failed.
    Returns an immutable :class:`ScanResult`; pass it to :func:`imgdup.remove` to act on it.

    ``roots`` is one path or any iterable of paths: folders are scanned recursively, image
    files are taken as they are. ``files`` lists more files (missing ones are reported as
    skipped, not an error). ``reference`` folders are matched but never removed: a cluster
    holding a reference file keeps it, and clusters made only of reference files are set
    apart in ``reference_clusters``. ``labels`` is ``"folder"`` (parent folder name) or a CSV
    file (path,label); a cluster whose members carry different labels is a label conflict,
    whose members are left for ``review`` (``label_conflicts="remove"`` removes them as
    usual). ``between`` keeps only clusters spanning two or more of the given folders.
    """
    started = time.perf_counter()
    try:
        settings = HashSettings(algorithm=hash, hash_size=hash_size, decode=decode, rotations=bool(rotations))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if isinstance(threshold, bool) or not isinstance(threshold, int) or not 0 <= threshold <= settings.bits:
        raise UsageError(f"threshold must be a whole number of bits from 0 to {settings.bits}, got {threshold!r}")
    if index not in index_mod.BACKENDS:
        raise UsageError(f"unknown index {index!r}; choose one of {', '.join(index_mod.BACKENDS)}")
    keep_rules = parse_keep(keep)
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise UsageError("jobs must be at least 1")
    if label_conflicts not in CONFLICT_POLICIES:
        raise UsageError(f"label_conflicts must be one of {', '.join(CONFLICT_POLICIES)}")
    items = _paths(roots)
    folders = [p for p in items if os.path.isdir(p)]
    listed = real_file_paths([p for p in items if os.path.isfile(p)] + _paths(files))
    for p in items:
        if not os.path.isdir(p) and not os.path.isfile(p):
            raise UsageError(f"not a directory or a file: {p}")
    ref_roots = normalise_roots(_paths(reference))
    given = sorted(set(normalise_roots(folders)) | set(ref_roots))  # every folder named, nested ones too
    for f in normalise_roots(folders):
        ref = next((r for r in ref_roots if f != r and f.startswith(r.rstrip(os.sep) + os.sep)), None)
        if ref:
            raise UsageError(f"{f} lies inside the reference folder {ref}: its files would be protected too")
    extra = file_root(listed, given)
    root_list = normalise_roots(given + ([extra] if extra else []))
    if not root_list:
        raise UsageError("no folder or file to scan")

    if not timeout > 0:
        raise UsageError("timeout must be a positive number of seconds")
    entries, skipped = discover(normalise_roots(given)) if given else ([], [])
    if listed:
        more, more_skipped = entries_for_files(listed, given + ([extra] if extra else []))
        seen = {(e.device, e.inode) for e in entries}
        entries = sorted(entries + [e for e in more if (e.device, e.inode) not in seen], key=lambda e: e.path)
        skipped = sorted(skipped + more_skipped, key=lambda k: k.path)
    set_roots = sorted(set(given) | ({extra} if extra else set()))
    protected = _protector(ref_roots)
    labels_of = label_source(labels)
    store = HashCache(cache, settings_key(settings)) if cache is not None else None
    try:
        results, from_cache = _hash(entries, settings, jobs=jobs, store=store, timeout=timeout, progress=progress)
        records = [r for r in results if isinstance(r, ImageRecord)]
        failures = tuple(r for r in results if isinstance(r, HashFailure))
        if progress:
            progress("search", 0, 1)
        scanned = cluster_records(
            records,
            settings,
            threshold=threshold,
            keep=keep_rules,
            index=index,
            jobs=jobs,
            timeout=timeout,
            on_quality=store.put_quality if store else None,
            protected=protected,
        )
        if progress:
            progress("search", 1, 1)
    finally:
        if store:
            store.close()
    label_of = labels_of([r.path for r in scanned.records])
    counts: dict[str, int] = {}
    for r in scanned.records:
        key = set_of(r.path, set_roots, os.sep)
        counts[key] = counts.get(key, 0) + 1
    sets = annotate(
        scanned.clusters,
        roots=set_roots,
        reference=ref_roots,
        labels=label_of,
        label_conflicts=label_conflicts,
        between=between,
        files=counts,
        sep=os.sep,
    )
    return make_result(
        scanned,
        settings=ScanSettings(
            hash=settings,
            threshold=threshold,
            keep=keep_rules,
            index=index,
            labels=None if labels is None else os.fspath(labels),
            label_conflicts=label_conflicts,
            between=between,
        ),
        roots=root_list,
        reference=ref_roots,
        sets=sets,
        files=len(entries),
        from_cache=from_cache,
        failures=failures,
        skipped=tuple(skipped),
        seconds=time.perf_counter() - started,
    )


@dataclass(frozen=True)
class Clustered:
    """The search-and-decide half of a scan: clusters, low-information images, all records."""

    clusters: tuple[Cluster, ...]
    low_information: tuple[ImageRecord, ...]
    records: tuple[ImageRecord, ...]


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
        bytes_to_remove=sum(m.record.entry.size for m in removable),
        seconds=round(seconds, 3),
        label_conflicts=sum(1 for c in (*clusters, *ref_clusters) if c.label_conflict),
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
    )


def _protector(reference: Sequence[str]) -> Callable[[ImageRecord], bool] | None:
    """A test "is this record a reference file?" (by path: a reference folder may be nested in
    a scanned one), or None without reference folders."""
    if not reference:
        return None
    prefixes = tuple(r.rstrip(os.sep) + os.sep for r in reference)
    return lambda r: r.path.startswith(prefixes)


def _hash(
    entries: Sequence[FileEntry],
    settings: HashSettings,
    *,
    jobs: int,
    store: HashCache | None,
    timeout: float,
    progress: ProgressCallback | None,
) -> tuple[list[ImageRecord | HashFailure], int]:
    """Results for every entry, in entry order, from the cache where valid, else decoded; and
    how many came from the cache."""
    total = len(entries)
    cached = [store.get(e) for e in entries] if store else [None] * total
    todo = [e for e, c in zip(entries, cached) if c is None]
    done_before = total - len(todo)
    if progress:
        progress("hash", done_before, total)
    fresh = hash_all(
        todo,
        settings,
        jobs=jobs,
        timeout=timeout,
        on_results=store.put_many if store else None,
        on_progress=(lambda n: progress("hash", done_before + n, total)) if progress else None,
    )
    it = iter(fresh)
    return [c if c is not None else next(it) for c in cached], done_before


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
    protected: Callable[[ImageRecord], bool] | None = None,
) -> Clustered:
    """Search, cluster and decide over already hashed records (in path order).

    Low-information images (solid colours, blank scans) stay out of the search and group only
    with byte-identical copies. With the ``quality`` keep rule, cluster members are decoded
    again in full to measure it (only duplicates pay that cost); returned records carry it, so
    a caller that clusters the same records again (a threshold sweep) measures once; ``on_quality``
    receives them (the cache stores them, so a warm run measures nothing).
    """
    normal = [r for r in records if not r.low_information]
    low = [r for r in records if r.low_information]
    groups = _components(normal, settings, threshold=threshold, backend=index)
    by_digest: dict[str, list[ImageRecord]] = {}
    for r in low:
        by_digest.setdefault(r.digest, []).append(r)
    groups += [g for g in by_digest.values() if len(g) > 1]
    groups.sort(key=lambda g: min(r.path for r in g))
    if "quality" in keep:
        before = records
        if protected:
            # Every reference member is kept and the others are removed against the nearest of
            # them, so which reference file is named the keeper changes no action: clusters that
            # hold one are not measured (a warm reference then costs no decode at all).
            unprotected = [g for g in groups if not any(protected(r) for r in g)]
            _, records = _with_quality(unprotected, records, settings, keep=keep, jobs=jobs, timeout=timeout)
            latest = {r.path: r for r in records}
            groups = [[latest.get(r.path, r) for r in g] for g in groups]
        else:
            groups, records = _with_quality(groups, records, settings, keep=keep, jobs=jobs, timeout=timeout)
        if on_quality:  # only what was measured now: cached measurements are not written again
            on_quality([r for r, old in zip(records, before) if r.quality is not None and old.quality is None])
    clusters: list[Cluster] = []
    for members in groups:
        members = sorted(members, key=lambda r: r.path)
        clusters.append(decide(len(clusters), members, threshold=threshold, keep=keep, protected=protected))
    paired = {r.path for g in groups for r in g}
    lonely_low = tuple(r for r in records if r.low_information and r.path not in paired)
    return Clustered(tuple(clusters), lonely_low, tuple(records))


def _components(
    records: Sequence[ImageRecord], settings: HashSettings, *, threshold: int, backend: str
) -> list[list[ImageRecord]]:
    """Groups of records linked by matches (identical hashes grouped first), singletons dropped.

    With rotation variants, the index holds every distinct value of every image's 8 hashes,
    each with its owners (unique primary hashes); a match between two values links their
    owners, so image A matches B when some orientation of A is within the threshold of B.
    """
    by_hash: dict[int, list[ImageRecord]] = {}
    for r in records:  # records are in path order, so unique values are too
        by_hash.setdefault(r.hash, []).append(r)
    unique = list(by_hash)
    if not settings.rotations:
        pairs = [(m.a, m.b) for m in index_mod.self_join(unique, threshold, bits=settings.bits, backend=backend)]
    else:
        owners: dict[int, set[int]] = {}
        for i, h in enumerate(unique):
            owners.setdefault(h, set()).add(i)
            for r in by_hash[h]:
                for v in r.variants:
                    owners.setdefault(v, set()).add(i)
        values = list(owners)
        owner_lists = [sorted(owners[v]) for v in values]
        pairs = [(o[0], x) for o in owner_lists for x in o[1:]]  # one value, several images
        for m in index_mod.self_join(values, threshold, bits=settings.bits, backend=backend):
            a, b = owner_lists[m.a], owner_lists[m.b]
            pairs += [(x, y) for x in a for y in b if x != y]
    matches = [Match(a, b, 0) for a, b in pairs]
    return [[r for i in comp for r in by_hash[unique[i]]] for comp in components(len(unique), matches)
            if sum(len(by_hash[unique[i]]) for i in comp) > 1]  # fmt: skip


def _to_measure(members: list[ImageRecord], tried: set[str], tiered: bool) -> list[ImageRecord]:
    """The members of one cluster whose quality the policy still needs."""
    unknown = [r for r in members if r.quality is None and r.path not in tried]
    if not tiered:
        return unknown
    unknown_paths = {r.path for r in unknown}
    for pixels in sorted({r.pixels for r in members}, reverse=True):
        tier = [r for r in members if r.pixels == pixels]
        need = [r for r in tier if r.path in unknown_paths]
        if need:
            return need
        if any(r.quality is None or not r.quality.upscaled for r in tier):
            return []  # the keeper's tier: every larger file is an enlargement
    return []


def _with_quality(
    groups: list[list[ImageRecord]],
    records: Sequence[ImageRecord],
    settings: HashSettings,
    *,
    keep: Sequence[str],
    jobs: int,
    timeout: float,
) -> tuple[list[list[ImageRecord]], list[ImageRecord]]:
    """Measure :class:`Quality` (a full decode, in workers) for the members the policy needs.

    Byte-identical members need no comparison, so clusters of exact copies measure nothing.
    When the policy starts ``quality, pixels`` (the default), the keeper is the largest image
    that is not an enlargement: members are measured one pixel-count tier at a time, largest
    first, stopping at the first tier holding a non-enlarged image. Typically one or two
    files per cluster are decoded again instead of all of them (measured on a 20,000-file set
    of 20-member clusters: measuring every member cost 5x the hashing).
    """
    tiered = tuple(keep[:2]) == ("quality", "pixels")
    measured: dict[str, ImageRecord] = {}
    tried: set[str] = set()  # measured or failed: never asked for twice
    active = [g for g in groups if len({m.digest for m in g}) > 1]
    while active:
        todo: list[ImageRecord] = []
        still = []
        for g in active:
            need = _to_measure([measured.get(r.path, r) for r in g], tried, tiered)
            if need:
                todo += need
                still.append(g)
        if not todo:
            break
        results = hash_all([r.entry for r in todo], settings, jobs=jobs, timeout=timeout, work=quality_entry)
        for r, res in zip(todo, results):
            tried.add(r.path)
            # A file changed since it was hashed keeps "unknown" quality (removal re-checks it anyway).
            if isinstance(res, ImageRecord) and res.digest == r.digest:
                measured[r.path] = replace(r, quality=res.quality)
            else:
                log.info("quality of %s not measured: %s", r.path, getattr(res, "reason", "file changed"))
        active = still
    if not measured:
        return groups, list(records)
    return (
        [[measured.get(r.path, r) for r in g] for g in groups],
        [measured.get(r.path, r) for r in records],
    )
