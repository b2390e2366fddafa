"""Act on a saved plan: a scan's JSON report, or the decisions exported by the HTML gallery.

A plan is turned back into the clusters :func:`imgdup.actions.remove` takes, so a reviewed
plan is removed by the very code (and with the very guarantees) of ``--remove 1``: each
cluster's kept file and every file to remove is re-checked against the plan's recorded inode,
size, mtime and SHA-256 just before it moves; a cluster with any change is skipped; files go
to a quarantine with a manifest, and ``undo`` puts them back.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import stat
from dataclasses import replace
from typing import Any

from .actions import remove
from .cache import HashCache
from .errors import PlanError, StrOrBytesPath, UsageError, check_bool, check_cache_name, path_arg, plain_number
from .frames import frames_match
from .fsafe import MANIFEST_SCHEMA
from .hashing import CHANGED_REASON, held_to_the_limit, settings_key
from .models import (
    Action,
    Cluster,
    FileEntry,
    HashFailure,
    HashSettings,
    ImageRecord,
    Member,
    RemovalResult,
    ScanResult,
    ScanSettings,
    SkippedCluster,
    Summary,
)
from .parallel import default_jobs, hash_all
from .plan import ROUNDED, Plan, PlanCluster, PlanFile, parse_plan
from .policy import distance

log = logging.getLogger(__name__)


def load_plan(path: StrOrBytesPath) -> Plan:
    """Read and validate a plan file (see :func:`imgdup.plan.parse_plan` for what is refused)."""
    path = path_arg("the plan file", path)
    text = ""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        doc = json.loads(text)
    except (OSError, ValueError, RecursionError) as exc:  # nested too deep: no plan
        if isinstance(exc, ValueError) and text.lstrip()[:1] == "<":
            raise PlanError(
                f"{os.fspath(path)} is the HTML page, not a plan: its 'Download plan (JSON)' button saves the "
                "decisions as imgdup-plan-<date>-<time>-<token>.json; apply that file (or the scan's --report "
                "FILE.json)"
            ) from None
        from .report.tables import CSV_FIRST_COLUMNS

        if isinstance(exc, ValueError) and text.startswith(",".join(CSV_FIRST_COLUMNS)):
            raise PlanError(
                f"{os.fspath(path)} is the CSV report, not a plan (it lacks the sizes, times and SHA-256 that "
                "apply re-checks); apply the scan's --report FILE.json, or the plan the HTML report exports"
            ) from None
        if isinstance(exc, ValueError) and not text.lstrip().startswith("{"):  # a picture, a list: no JSON at all
            raise PlanError(
                f"{os.fspath(path)} is not a plan (not JSON): apply the scan's --report FILE.json, or the plan the "
                "HTML report exports (imgdup-plan-<date>-<time>-<token>.json)"
            ) from None
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc  # not "[Errno 2] ...: 'x'" again
        raise PlanError(f"cannot read the plan {os.fspath(path)}: {why}") from exc
    if isinstance(doc, dict) and doc.get("schema") == MANIFEST_SCHEMA:
        raise PlanError(
            f"{os.fspath(path)} is a removal manifest, not a plan: to put its files back, "
            # quoted for the shell, as the removal's "undo with:" line: "my photos" split in two
            f"imgdup --undo {shlex.quote(os.fspath(path))}"
        )
    return parse_plan(doc)


def _check_roots(plan: Plan) -> None:
    """Each root must still be the real folder it was: not gone, not replaced by a symlink."""
    for root in plan.roots:
        if not os.path.isdir(root) or os.path.realpath(root) != root:
            raise PlanError(f"the plan's root {root} is missing or is no longer a real folder; nothing was done")


def _check_rounded_times(plan: Plan) -> None:
    """A plan edited with a tool that reads numbers as doubles (jq 1.6) has every 61-bit
    ``mtime_ns`` rounded (1700000000123456789 became ...800): each cluster was skipped, its kept
    file "changed since the scan", though none had. A file whose time is the plan's but for that
    rounding refuses the plan, saying so: the re-check itself stays exact."""
    for c in plan.clusters:
        if c.keep is None or not any(m.action == "remove" for m in c.members):
            continue  # left alone: nothing of it is checked
        for m in (m for m in c.members if m.action != "review"):
            try:
                now = os.lstat(m.path).st_mtime_ns
            except OSError:
                continue  # gone or unreadable: the re-check says so
            # The same double (jq prints ...456800, not the double's ...768); float() of a huge one raises.
            if now != m.mtime_ns and abs(m.mtime_ns) < 2**64 and float(now) == float(m.mtime_ns):
                raise PlanError(
                    f"the plan's mtime_ns of {m.path} is {m.mtime_ns}, the file's modification time {now} rounded "
                    f"to a double: {ROUNDED}; nothing was done"
                )


def _record(f: PlanFile) -> ImageRecord:
    inode, device, ctime_ns = f.inode, f.device, 0
    try:
        st = os.lstat(f.path)
        # The change time, as a scan takes it: without it the hash cache served the row of an
        # older version rewritten in place with its size and mtime set back (QA pass 36).
        ctime_ns = st.st_ctime_ns
    except OSError:
        st = None  # gone: the re-check reports it and skips the cluster
    if inode is None or device is None:
        # The report holds no inode (the same files copied elsewhere give the same report), so
        # the re-check compares size, mtime and content digest, and the file's identity is taken
        # now: actions still refuses a file swapped between its check and its move.
        inode, device = (st.st_ino, st.st_dev) if st is not None else (-1, -1)
    try:
        value = int(f.hash, 16)
    except ValueError:
        value = 0
    entry = FileEntry(f.path, f.root, f.relpath, f.bytes, f.mtime_ns, inode, device, f.hardlinks, ctime_ns=ctime_ns)
    return ImageRecord(entry=entry, width=f.width, height=f.height, hash=value, digest=f.sha256)


def _cluster(c: PlanCluster) -> Cluster | None:
    if c.keep is None:
        return None  # nothing kept means nothing removed (validated): left alone
    records = {m.path: _record(m) for m in c.members}
    members = tuple(Member(records[m.path], m.distance, Action(m.action)) for m in c.members)
    return Cluster(id=c.id, keep=records[c.keep], keep_reason=c.keep_reason, members=members, diameter=c.diameter)


def _hash_settings(settings: dict[str, Any]) -> HashSettings:
    """The plan's hash settings, as the scan used them; a missing one is the default, an invalid
    one a :class:`PlanError` (it was replaced by the defaults without a word: a 256-bit scan's
    threshold of 32 then measured 64-bit hashes, where 32 bits is chance level)."""

    def get(key: str, kind: type, what: str, default: object) -> Any:
        # Of another type, refused: coerced, "rotations": "false" turned rotations on, 8.9 bits read 8.
        value = settings.get(key, default)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise PlanError(f"invalid plan: settings: {key} must be {what}, got {value!r}")
        return value

    try:
        return HashSettings(
            algorithm=get("hash", str, "a string", "phash"),
            hash_size=get("hash_size", int, "a whole number", 8),
            decode=get("decode", str, "a string", "draft"),
            rotations=get("rotations", bool, "true or false", False),
            regions=get("regions", bool, "true or false", False),
        )
    except (TypeError, ValueError) as exc:
        raise PlanError(f"invalid plan: settings: {exc}") from None


def _check_threshold(settings: dict[str, Any], bits: int) -> None:
    """The threshold must be a whole number in 0..bits (above them every pair passes apply's
    check). One that was missing or not a whole number was read as 0, which skipped every
    near-duplicate cluster as "not within the threshold" without saying the plan lacked it."""
    threshold = settings.get("threshold")
    if not isinstance(threshold, int) or isinstance(threshold, bool):
        got = "missing" if threshold is None else f"not a whole number ({threshold!r})"
        raise PlanError(f"invalid plan: settings: threshold is {got}; it is the scan's threshold in bits, 0 to {bits}")
    if not 0 <= threshold <= bits:
        raise PlanError(f"invalid plan: settings: threshold must be from 0 to {bits} bits, got {threshold}")


def _not_a_file_now(path: str) -> str | None:
    """What a name that could not be hashed now holds, when it is no longer a regular file: the
    decoder's own words were "Too many levels of symbolic links", "Is a directory", or "file
    changed while it was being scanned" for a FIFO."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "it is gone"
    except OSError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return "it is now a symbolic link"
    if stat.S_ISDIR(st.st_mode):
        return "it is now a folder"
    return None if stat.S_ISREG(st.st_mode) else "it is no longer a regular file (a FIFO, socket or device)"


def _not_duplicates(plan: Plan, *, jobs: int, cache: str | None = None) -> dict[int, str]:
    """Clusters whose plan removes a file that is not within the threshold of a file the
    cluster keeps, measured as the scan measured (the plan's hash settings), and why.

    --remove 1 only removes a file within the threshold of the nearest kept one; a plan edited
    by hand or by a script (two clusters crossed, another keeper chosen in a chain) could ask
    for more. The files are hashed again (their recorded plain hashes cannot tell a copy linked
    through its content box, a crop or a rotation), or read from the hash ``cache`` where it
    holds them (the scan's: a 20,000-file plan took 23 s to hash again on 2 cores). A file to
    remove must also match a kept file frame by frame (an animation whose later frames differ
    is not a duplicate); a nearly flat one (low information), or one kept against a nearly flat
    file, counts only as a byte-identical copy, the scan's rule. A cached record whose digest is
    not the plan's is hashed again; a file whose content is not the plan's, or one that cannot
    be decoded now (or a cluster whose kept files cannot be), skips its cluster here: the check
    fails closed (a gone file is left to the re-check of :func:`imgdup.remove`)."""
    settings = _hash_settings(plan.settings)
    threshold = plan.settings.get("threshold")
    if not isinstance(threshold, int) or isinstance(threshold, bool):
        threshold = 0
    acting = [c for c in plan.clusters if c.keep is not None and any(m.action == "remove" for m in c.members)]
    files = {m.path: m for c in acting for m in c.members if m.action in ("keep", "remove")}
    entries = [_record(f).entry for f in files.values()]
    known: list[ImageRecord | HashFailure | None] = [None] * len(entries)
    if cache is not None and os.path.isfile(cache):
        store = HashCache(cache, settings_key(settings))
        try:
            known = store.get_many(entries)
        finally:
            store.close()
    # A cached digest that is not the plan's is an older version's row (a file rewritten within
    # one tick of a coarse ctime), not proof the file changed: hashed again, like a miss.
    known = [k if isinstance(k, ImageRecord) and k.digest == f.sha256 else None for f, k in zip(files.values(), known)]
    todo = [e for e, k in zip(entries, known) if not isinstance(k, ImageRecord)]
    fresh = iter(hash_all(todo, settings, jobs=min(jobs, max(1, len(todo) // 64))) if todo else [])
    hashed = {path: k if isinstance(k, ImageRecord) else next(fresh) for path, k in zip(files, known)}
    # This run's pixel limit holds for a cached file too, as in a scan (imgdup.warm): hashed under
    # a raised --max-pixels, it counted as decoded now, and a warm apply removed it.
    hashed = {path: held_to_the_limit(r) for path, r in hashed.items()}
    out: dict[int, str] = {}
    for c in acting:
        kept_files = [m for m in c.members if m.action == "keep"]
        kept = [k for m in kept_files if isinstance(k := hashed[m.path], ImageRecord) and k.digest == m.sha256]
        if not kept:
            failed = next((m for m in kept_files if isinstance(hashed[m.path], HashFailure)), None)
            got = hashed[failed.path] if failed else None
            now = _not_a_file_now(failed.path) if failed else None
            name = (failed or kept_files[0]).path  # which file: a cluster may keep several
            unread = got.reason if isinstance(got, HashFailure) and got.reason != CHANGED_REASON else None
            # else its size, time or content are not the plan's
            why = f"cannot be checked now: {now or unread}" if now or unread else "changed since the scan"
            out[c.id] = f"its kept file {name} {why}; nothing in this cluster was removed"
            continue
        for m in c.members:
            got = hashed.get(m.path) if m.action == "remove" else None
            now = _not_a_file_now(m.path) if isinstance(got, HashFailure) else None
            if now and now != "it is gone":  # (gone: remove()'s re-check says so)
                out[c.id] = f"{m.path}: {now}; nothing in this cluster was removed"
                break
            if isinstance(got, HashFailure) and got.reason == CHANGED_REASON:
                # replaced or rewritten since the scan (its size, mtime or inode are not the plan's)
                out[c.id] = f"{m.path} changed since the scan; nothing in this cluster was removed"
                break
            if isinstance(got, HashFailure) and os.path.lexists(m.path):  # (gone: remove()'s re-check says so)
                out[c.id] = (
                    f"{m.path} cannot be checked now ({got.reason}): whether it is a duplicate is not known; "
                    "nothing in this cluster was removed"
                )
                break
            if not isinstance(got, ImageRecord):
                continue  # a kept file, or gone: remove()'s re-check says so
            if got.digest != m.sha256:  # hashed now: its content is not the plan's (never a pass)
                out[c.id] = f"{m.path} changed since the scan (content); nothing in this cluster was removed"
                break
            # A scan groups a nearly flat file only with a byte-identical one, never by hash: under
            # dhash or ahash every flat picture hashes to 0, and a white page "kept" a navy one.
            alike = [k for k in kept if k.digest == got.digest or not (got.low_information or k.low_information)]
            if not alike:
                what = (
                    "is nearly flat (low information) and is not a byte-identical copy of a kept file"
                    if got.low_information
                    else f"is not a byte-identical copy of the kept file {kept[0].path}, which is nearly flat (low "
                    "information)"
                )
                out[c.id] = (
                    f"{m.path} {what}: a scan groups such files only with byte-identical copies, so it is not a "
                    "duplicate; nothing in this cluster was removed"
                )
                break
            near = min(distance(got, k, bits=settings.bits) for k in alike)
            if near > threshold:
                if near >= settings.bits:
                    # No comparison holds (the region rule confirms none, or only frames match):
                    # the rule's "all bits" is no distance; it read "64 bits from the nearest".
                    plain = min((got.hash ^ k.hash).bit_count() for k in alike)
                    how = f"no comparison links them under the scan's rules; the whole images are {plain} bits apart"
                else:
                    how = f"{near} bits from the nearest"
                out[c.id] = (
                    f"{m.path} is not within the threshold of a kept file ({how}, threshold {threshold}): "
                    "not a duplicate of it; nothing in this cluster was removed"
                )
                break
            if not any(frames_match(k, got, threshold) for k in alike):
                out[c.id] = (
                    f"{m.path} has frames (pages) that differ from every kept file's: not a duplicate; "
                    "nothing in this cluster was removed"
                )
                break
    return out


def plan_to_result(plan: Plan) -> ScanResult:
    """The plan as the :class:`ScanResult` that :func:`imgdup.remove` acts on."""
    hs = _hash_settings(plan.settings)
    clusters = tuple(c for c in (_cluster(pc) for pc in plan.clusters) if c is not None)
    removable = [m for c in clusters for m in c.removable]
    threshold = plan.settings.get("threshold", 0)
    summary = Summary(
        files=sum(len(c.members) for c in clusters),
        images=sum(len(c.members) for c in clusters),
        from_cache=0,
        failures=0,
        clusters=len(clusters),
        duplicates=sum(len(c.members) - 1 for c in clusters),
        to_remove=len(removable),
        to_review=sum(1 for c in clusters for m in c.members if m.action is Action.REVIEW),
        bytes_to_remove=sum(m.record.entry.size for m in removable),
        seconds=0.0,
    )
    keep = plan.settings.get("keep", [])
    return ScanResult(
        settings=ScanSettings(
            hash=hs,
            threshold=threshold if isinstance(threshold, int) else 0,
            keep=tuple(str(k) for k in keep) if isinstance(keep, list) else (),
            index=str(plan.settings.get("index", "auto")),
        ),
        roots=plan.roots,
        clusters=clusters,
        reference=plan.reference,  # remove() refuses to touch anything under these
        failures=(),
        skipped=(),
        summary=summary,
    )


def apply(
    plan: Plan | dict[str, Any] | StrOrBytesPath,
    *,
    quarantine: StrOrBytesPath | None = None,
    permanent: bool = False,
    jobs: int | None = None,
    cache: StrOrBytesPath | None = None,
) -> RemovalResult:
    """Remove what a plan marks ``remove``, with every guarantee of :func:`imgdup.remove`.

    ``plan`` is a :class:`Plan` (from :func:`load_plan`), the path of a plan file, or a plan
    document (the dict a plan file holds: :func:`imgdup.to_document`, edited). ``jobs``:
    worker processes that hash the files again (default: all cores); ``cache``: a hash cache
    (SQLite file) that holds them already, as the scan's does (nothing is added to it).
    """
    if isinstance(plan, ScanResult):
        raise UsageError(
            "apply takes a plan (a file, a document or a Plan); to act on a scan, use imgdup.remove(result)"
        )
    permanent, jobs = plain_number(permanent), plain_number(jobs)
    check_bool("permanent", permanent)
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise UsageError(f"jobs must be a whole number of worker processes, at least 1, got {jobs!r}")  # as a scan
    quarantine = None if quarantine is None else path_arg("quarantine", quarantine)  # before the hashing
    cache = None if cache is None else path_arg("cache", cache)
    if cache is not None:
        check_cache_name(cache)
    if isinstance(plan, dict):
        plan = parse_plan(plan)  # a report document edited in Python, as a plan file holds it
    elif not isinstance(plan, Plan):
        if not isinstance(plan, (str, bytes, os.PathLike)):  # None: TypeError from open()
            raise UsageError(
                f"plan must be a Plan, a plan document (dict) or the path of a plan file, got {type(plan).__name__}"
            )
        plan = load_plan(plan)
    _check_roots(plan)
    _check_threshold(plan.settings, _hash_settings(plan.settings).bits)
    _check_rounded_times(plan)
    jobs = default_jobs() if jobs is None else jobs
    far = _not_duplicates(plan, jobs=jobs, cache=None if cache is None else os.fspath(cache))
    result = plan_to_result(plan)
    result = replace(result, clusters=tuple(c for c in result.clusters if c.id not in far))
    done = remove(result, quarantine=quarantine, permanent=permanent)
    for cid, reason in sorted(far.items()):
        log.info("cluster %d skipped: %s", cid, reason)  # in the result (the command prints it once)
    skipped = sorted(
        [*done.skipped, *(SkippedCluster(cid, reason) for cid, reason in far.items())], key=lambda s: s.cluster
    )
    return replace(done, skipped=tuple(skipped))
