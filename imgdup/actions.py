"""Act on a scan: move duplicates to a quarantine folder (or delete them), and undo.

Safety rules, in the order they apply:
- only members marked ``remove`` (within the threshold of their cluster's keeper) are touched;
  the keeper, and so the last copy of every picture, is never touched;
- a manifest (original path, quarantine path, size, SHA-256) is written and fsynced before
  the first file moves, so an interrupted removal can always be undone;
- just before a cluster is acted on, its keeper and every file to remove are re-checked
  (regular file, no symlink on the path, same inode, size, mtime_ns and content digest as at
  scan time); any difference skips the whole cluster;
- the file moved or deleted is the inode that was checked (renamed first, then checked by
  descriptor: see :mod:`imgdup.fsafe`, which does every move, copy, deletion and lock);
- nothing is ever overwritten, neither in the quarantine nor when undoing, and undo never
  deletes: it only moves quarantined files back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import itertools
import logging
import os
import platform
import shlex
import stat
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeGuard

from .discover import normalise_roots
from .errors import (
    ManifestError,
    OutputError,
    RemovalError,
    RemovalInterrupted,
    StrOrBytesPath,
    UsageError,
    check_bool,
    check_result,
    path_arg,
    plain_number,
)
from .fsafe import (  # MANIFEST_SCHEMA, QUARANTINE_SUFFIX: defined there, where the scan skips quarantines
    MANIFEST_SCHEMA,
    QUARANTINE_SUFFIX,
    Identity,
    anchored,
    cut_name,
    drop_second_name,
    inside,
    link_again,
    lock_trees,
    move_in,
    move_out,
    not_private,
    one_step,
    partials_in,
    put_back_staged,
    put_back_staged_in,
    remove_partials,
    sha256_fd,
    unlink_checked,
    write_output,
)
from .hashing import sha256_stream
from .models import (
    Action,
    Cluster,
    FileEntry,
    ImageRecord,
    RemovalResult,
    Removed,
    ScanResult,
    SkippedCluster,
    UndoResult,
)
from .names import from_json_text, to_json_text
from .pipeline import PathOrPaths, path_list

log = logging.getLogger(__name__)


def default_quarantine(roots: tuple[str, ...]) -> str:
    """``<first root>.imgdup-quarantine`` beside the first root: same file system (a rename,
    no copy) and outside every root (never scanned as a duplicate itself)."""
    first = roots[0]
    # A root's name near NAME_MAX is cut (it was "File name too long", once the scan was done).
    name = cut_name(os.path.basename(first), 255 - len(QUARANTINE_SUFFIX))
    return os.path.join(os.path.dirname(first), name + QUARANTINE_SUFFIX)


def _root_folder(i: int, root: str) -> str:
    """The quarantine folder of the ``i``-th root, ``<i>-<root name>``, within NAME_MAX: a root
    named with 254 bytes made it 256, and every file of that root was skipped ("File name too
    long"). The manifest records where each file went, so undo needs no rule to find it."""
    return cut_name(f"{i}-{os.path.basename(root)}", 255)


def _identity(entry: FileEntry) -> Identity:
    return Identity(entry.device, entry.inode, entry.size, entry.mtime_ns)


def _check_unchanged(
    path: str,
    root: str,
    entry: FileEntry,
    digest: str,
    earlier: Callable[[str, str], str | None] | None = None,
    changed: dict[str, int] | None = None,
) -> str | None:
    """Why ``path`` is no longer the file that was scanned, or None if it still is. ``earlier``
    says what an earlier removal did with a file that is gone (:func:`_earlier_removals`);
    ``changed`` gets the file's change time as it was read (see :func:`_kept_gone`)."""
    try:
        with anchored(path, root) as (dir_fd, name):
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                return f"{path} is no longer a regular file"
            if _identity(entry).differs(st):
                return f"{path} changed since the scan (inode, size or modification time)"
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
            with os.fdopen(fd, "rb") as fh:
                opened = os.fstat(fh.fileno())
                if _identity(entry).differs(opened):
                    return f"{path} changed since the scan"
                if changed is not None:  # before the read: a write while it is hashed shows later
                    changed[path] = opened.st_ctime_ns
                if sha256_stream(fh) != digest:
                    return f"{path} changed since the scan (content)"
    except FileNotFoundError:
        said = earlier(path, digest) if earlier else None
        return f"{path} is gone: {said}" if said else f"{path} is gone"
    except OSError as exc:
        return f"{path} cannot be checked: {exc.strerror or exc}"
    return None


def _earlier_removals(base: str, this_run: str) -> Callable[[str, str], str | None]:
    """What an earlier removal into the quarantine ``base`` did with a file (path, content
    digest), in words, or None: a plan applied twice said only "X is gone" of each file the
    first run had taken, which reads like a file lost. The manifests are read once, when a file
    is first found gone (:func:`_other_runs`)."""
    held = _runs_holding(base, this_run)

    def said(path: str, digest: str) -> str | None:
        found = held(path, digest)
        if found is None:
            return None
        manifest, permanent = found
        if permanent:
            return f"deleted permanently by an earlier run (manifest {manifest})"
        return f"an earlier run moved it to the quarantine (imgdup --undo {manifest} puts it back)"

    return said


def _runs_holding(base: str, this_run: str) -> Callable[[str, str], tuple[str, bool] | None]:
    """Which other run of the quarantine ``base`` holds a file (path, content digest): its
    manifest and whether it deleted the file permanently, or None. The manifests are read once,
    when first asked (:func:`_other_runs`)."""
    known: dict[tuple[str, str], tuple[str, bool]] | None = None

    def holding(path: str, digest: str) -> tuple[str, bool] | None:
        nonlocal known
        if known is None:
            known = _other_runs(base, this_run)
        return known.get((path, digest))

    return holding


def _other_runs(base: str, this_run: str) -> dict[tuple[str, str], tuple[str, bool]]:
    """(path, content digest) -> the manifest of the removal run in ``base`` other than ``this_run``
    that took that file last, and whether it deleted it permanently: read oldest first so that a
    later run's word stands; a file put back by an undo (its quarantined copy gone) is not named.
    Manifests that cannot be read are passed over."""
    known: dict[tuple[str, str], tuple[str, bool]] = {}
    try:
        runs = sorted(os.listdir(base), key=_run_order)
    except OSError:
        return known
    for run in runs:
        run_dir = os.path.join(base, run)
        manifest = os.path.join(run_dir, "manifest.json")
        if run_dir == this_run or not os.path.isfile(manifest):
            continue
        try:
            doc = read_manifest(manifest)
        except ManifestError:
            continue
        for item in doc["entries"]:
            if not isinstance(item, dict) or not isinstance(item.get("path"), str):
                continue
            key = (item["path"], str(item.get("sha256")))
            if doc.get("permanent"):
                known[key] = (manifest, True)
            elif (q := _stored(item, os.path.realpath(run_dir))) and os.path.isfile(q):
                known[key] = (manifest, False)
            else:
                known.pop(key, None)
    return known


def _run_order(name: str) -> tuple[str, int]:
    """Run folders (``<time>-<n>``, :func:`_remove`) oldest first: n counts the runs of one second,
    and as text run 10 sorted before run 2. Other names sort by name."""
    head, _, n = name.rpartition("-")
    return (head, int(n)) if head and n.isdigit() and n.isascii() else (name, -1)


def _room(code: int | None) -> str:
    """The hint for a quarantine on a full disk: the run that most needs to free space."""
    full = code in (errno.ENOSPC, errno.EDQUOT)
    return " (give --quarantine DIR, quarantine= in Python, on a disk with room for it)" if full else ""


def _write_manifest(path: str, doc: dict[str, Any], *, dir_fd: int, replace: bool = False) -> None:
    """Write atomically and durably (file and folder fsynced): the manifest must exist before
    anything moves. A new file in the run's new folder (``dir_fd``, held open): nothing is ever
    replaced, except, with ``replace``, the run's own manifest (once the run is over:
    :func:`_settle_manifest`)."""
    text = to_json_text(doc)  # names that are not UTF-8 stay exact: imgdup.names
    mark = MANIFEST_SCHEMA.encode()
    write_output(path, text.encode("utf-8"), lambda head: replace and mark in head, dir_fd=dir_fd)


def _root_of(path: str, roots: tuple[str, ...]) -> int:
    for i, root in enumerate(roots):
        if inside(path, root):
            return i
    raise RemovalError(f"{path} is outside every scanned root")


def remove(
    result: ScanResult,
    *,
    quarantine: StrOrBytesPath | None = None,
    permanent: bool = False,
    before_cluster: Callable[[Cluster], None] | None = None,
) -> RemovalResult:
    """Move (or, with ``permanent=True``, delete) every member marked ``remove``.

    Returns what was done; clusters that changed since the scan are skipped and listed.
    ``before_cluster`` is a test hook called just before a cluster is re-checked.
    """
    check_result("remove", result)
    permanent = plain_number(permanent)
    check_bool("permanent", permanent)
    quarantine = None if quarantine is None else path_arg("quarantine", quarantine)
    if quarantine is not None and quarantine == "":  # an unset variable: it was the current folder
        raise UsageError("quarantine needs a folder name (an empty one was given: an unset variable?)")
    work = [c for c in result.clusters if c.removable]
    if not work:
        return RemovalResult(None, (), (), permanent)
    # Object-store files (a Dask scan of s3://...) are report-only: read as local paths, their
    # URLs resolved against the working folder (CWD/s3:/bucket/...).
    remote = next((p for p in (*result.roots, *(m.record.path for c in work for m in c.members)) if _is_url(p)), None)
    if remote is not None:
        raise RemovalError(f"{remote} is in an object store: object-store files are report-only; nothing was removed")
    # Second line of defence: the policy never marks a reference file for removal; a result
    # that does (edited, or from a bug) is refused before anything moves.
    for c in work:
        for m in c.removable:
            for name in (m.record.path, *m.record.entry.aliases):
                ref = next((r for r in result.reference if inside(name, r)), None)
                if ref is not None:
                    raise RemovalError(f"{name} lies in the reference folder {ref}; nothing was removed")
    chosen = quarantine is not None
    if quarantine is None:
        quarantine = _default_for(result.roots, result.reference)
    with _locked(result.roots):
        back = _put_back_staged(result.roots)
        if back:  # not in the scan: their duplicates are not known (put_back_interrupted, before it)
            log.warning(
                "%d %s put back %s not in this scan: scan again to find %s duplicates",
                len(back), "file" if len(back) == 1 else "files", "was" if len(back) == 1 else "were",
                "its" if len(back) == 1 else "their",
            )  # fmt: skip
        done = _remove(result.roots, work, _kept_files(result), quarantine, permanent, before_cluster)
    if not done.removed:
        return done
    try:  # the walk for links takes a while on a large tree: Ctrl-C then still says what was done
        if not chosen and not permanent:
            _warn_if_beside_another_root(result.roots, os.path.dirname(os.path.dirname(done.manifest or "")))
        return dataclasses.replace(done, dangling=links_to([r.path for r in done.removed], result.roots))
    except KeyboardInterrupt:
        raise RemovalInterrupted(done) from None


def _is_url(path: str) -> bool:
    """An object-store URL (``s3://``, ``gs://``), as :func:`imgdup.kernels.is_remote` says."""
    return "://" in path and not path.startswith("file://")


def links_to(removed: Sequence[str], roots: Sequence[str]) -> tuple[str, ...]:
    """The symbolic links under ``roots`` (walked once the removal is done, links never followed)
    that point at one of the ``removed`` paths: a dataset folder of links into a pool of images (a
    split made of symlinks) loses its picture when the pool's copy is removed, and a scan never
    follows a link to see it (the run said nothing: QA pass 14). Walked, not taken from the scan's
    skipped files: a plan applied later, or a link made since the scan, is seen too."""
    gone = {os.path.realpath(p) for p in removed}
    out: list[str] = []
    todo = list(roots)
    while todo and gone:
        try:
            with os.scandir(todo.pop()) as it:
                entries = list(it)
        except OSError:
            continue
        for e in entries:
            if e.is_symlink():
                with contextlib.suppress(OSError, ValueError):
                    if os.path.realpath(e.path) in gone:
                        out.append(e.path)
            elif e.is_dir(follow_symlinks=False):
                todo.append(e.path)
    return tuple(sorted(out))


def _kept_files(result: ScanResult) -> frozenset[tuple[int, int]]:
    """(device, inode) of every file the result keeps, in any cluster: a scan folds every name
    of an inode into one member, but a plan may name one file twice, spelt two ways (a folder
    bind-mounted in the root, another case on a case-insensitive disk), and removing it by its
    second name as a copy took a kept file with it."""
    kept = (r for c in result.clusters for r in (c.keep, *(m.record for m in c.members if m.action is Action.KEEP)))
    return frozenset((r.entry.device, r.entry.inode) for r in kept if r.entry.inode > 0)  # -1: gone; 0: none (a URL)


def put_back_interrupted(roots: PathOrPaths) -> tuple[str, ...]:
    """Return to their names the files an interrupted ``--permanent`` removal left aside under
    ``roots`` (one folder or any iterable of folders), and the names put back. Call it before the
    scan whose result you will remove (``imgdup --remove 1`` does): a file set aside is not
    scanned, so the removal that puts it back cannot know its duplicates. Under the removals'
    lock (:class:`RemovalError` while another removal or undo runs on these folders)."""
    folders = normalise_roots(path_list(roots, "roots"))
    with _locked(folders):
        return _put_back_staged(folders)


def _put_back_staged(roots: tuple[str, ...]) -> tuple[str, ...]:
    """Files an interrupted ``--permanent`` run left in its private folders go back to their
    names first (under the lock, so no other removal is between its rename and its unlink);
    the names put back."""
    back: list[str] = []
    for root in roots:
        for path, problem in put_back_staged(root):
            _say_put_back(path, problem)
            if problem is None:
                back.append(path)
    return tuple(back)


def _say_put_back(path: str, problem: str | None) -> None:
    if problem is None:
        log.warning("put back %s (left aside by an interrupted --permanent removal)", path)
    else:  # the problem says what to do (fsafe.put_back_staged)
        log.warning("left at %s by an interrupted --permanent removal: %s", path, problem)


def _put_back_staged_of(entries: list[Any], roots: list[str]) -> list[str]:
    """Files of a manifest's folders that a kill left in a private folder of a checked deletion
    (a --permanent removal, or the deletion that ends a move to another disk), put back at their
    names: undo said "deleted permanently; there is nothing to restore" while such a file was
    there, or restored the quarantined copy beside it and left it hidden in the dataset. Only
    the manifest's folders are looked in (each once), not a walk of the roots. The names put back."""
    back: list[str] = []
    seen: set[str] = set()
    for item in entries:
        path = item.get("path") if isinstance(item, dict) else None
        if not _plain_path(path) or os.path.dirname(path) in seen:
            continue
        seen.add(os.path.dirname(path))
        root = next((r for r in roots if inside(path, r) and path != r), None)
        if root is None:
            continue
        try:
            with anchored(path, root) as (dir_fd, _name):
                found = put_back_staged_in(dir_fd, os.path.dirname(path))
        except OSError:
            continue  # the folder is gone or changed: undo's own checks name the entry
        for name, problem in found:
            _say_put_back(name, problem)
            if problem is None:
                back.append(name)
    return back


@contextlib.contextmanager
def _locked(roots: tuple[str, ...]) -> Iterator[None]:
    """Two removals whose roots are equal or nested never overlap (see :func:`fsafe.lock_trees`).
    Only taking the lock is its error; what the block raises goes through as it is."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(lock_trees(roots))
        except BlockingIOError as exc:
            raise RemovalError(
                f"another imgdup removal or undo is running on {exc.filename} (a scanned folder, or one above or "
                "inside it); nothing was changed"
            ) from None
        except OSError as exc:  # a scanned folder one may enter but not open: Python's "[Errno 13] ..." (QA pass 36)
            raise RemovalError(
                f"cannot lock the scanned folder {exc.filename}: {exc.strerror or exc} (a removal or undo opens each "
                "scanned folder to lock it, so that no other one runs there meanwhile); nothing was changed"
            ) from None
        yield


def check_quarantine(
    roots: tuple[str, ...], quarantine: str | os.PathLike[str] | None, reference: tuple[str, ...] = ()
) -> str:
    """The real quarantine folder for ``roots`` (the default one beside the first of them that is
    not in ``reference`` when ``quarantine`` is None), or :class:`RemovalError` if it is no folder,
    lies inside (or holds) one of them, is not the user's alone (:func:`fsafe.not_private`) or
    cannot be written; the command asks before its scan (with ``--permanent`` too: its manifest
    is written there), a removal again."""
    base = _quarantine_base(roots, _default_for(roots, reference) if quarantine is None else quarantine)
    if os.path.exists(base) and not os.path.isdir(base):
        raise RemovalError(f"the quarantine {base} exists and is not a folder; nothing was removed")
    if os.path.isdir(base):
        _check_private(base, os.stat(base))
    # Made later with makedirs: a file above it failed only then, after the whole scan.
    above = os.path.dirname(base)
    while not os.path.lexists(above) and os.path.dirname(above) != above:
        above = os.path.dirname(above)
    if not os.path.isdir(above):
        raise RemovalError(f"cannot create the quarantine {base}: {above} is not a folder; nothing was removed")
    # Where the run folder (or the first missing folder) is made: a read-only disk failed only
    # then, after the whole scan (QA pass 35).
    where = base if os.path.isdir(base) else above
    if not os.access(where, os.W_OK | os.X_OK):
        ro = os.statvfs(where).f_flag & os.ST_RDONLY
        raise RemovalError(
            f"cannot create the quarantine {base}: {where} is not writable"
            f"{' (a read-only file system)' if ro else ''}; nothing was removed"
        )
    return base


def _default_for(roots: tuple[str, ...], reference: tuple[str, ...]) -> str:
    """The default quarantine: beside the first folder files are removed from (not a reference one)."""
    acted = tuple(r for r in roots if not any(inside(r, f) for f in reference))
    return default_quarantine(acted or roots)


def _check_private(base: str, st: os.stat_result) -> None:
    """:class:`RemovalError` unless the existing quarantine ``base`` is the user's alone: another
    user's, or one others may write to, let them swap the run folder and take the files."""
    problem = not_private(st)
    if problem is None:
        return
    q = shlex.quote(base)
    fix = (
        f"chmod go-w {q} (or chmod +t, to share it as /tmp is: no one else can then rename or delete your run "
        "folders in it)"
        if problem.startswith("is writable")
        else "remove it if it is not meant to be one (its owner can)"
    )
    raise RemovalError(
        f"the quarantine {base} {problem}: someone else could take, read or delete the files moved there; "
        f"{fix}, or give --quarantine DIR (quarantine= in Python) a folder of your own; nothing was removed"
    )


def _quarantine_base(roots: tuple[str, ...], quarantine: str | os.PathLike[str] | None) -> str:
    """The real quarantine folder, refused when it is inside a root or holds one. Resolved
    first: a symlink at the default path that points into a root is refused, not followed."""
    base = os.path.realpath(os.fspath(quarantine) if quarantine is not None else default_quarantine(roots))
    for root in roots:
        if inside(base, root):
            raise RemovalError(f"the quarantine {base} must be outside the scanned folder {root}")
        if inside(root, base):  # it said "must be outside the scanned folder", which it was (QA pass 33)
            raise RemovalError(f"the quarantine {base} holds the scanned folder {root}: give a folder outside it")
    return base


def _remove(
    roots: tuple[str, ...],
    work: list[Cluster],
    kept_files: frozenset[tuple[int, int]],
    quarantine: str | os.PathLike[str] | None,
    permanent: bool,
    before_cluster: Callable[[Cluster], None] | None,
) -> RemovalResult:
    base = check_quarantine(roots, quarantine)
    run_dir, run_fd = _make_run_folder(roots, base)
    try:
        return _remove_into(roots, work, kept_files, base, run_dir, run_fd, permanent, before_cluster)
    finally:
        os.close(run_fd)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def _make_run_folder(roots: tuple[str, ...], base: str) -> tuple[str, int]:
    """Make the run's folder in the quarantine ``base`` (0700, as ``base`` if imgdup makes it: the
    umask's 0755 let anyone list the runs): its path and a descriptor of it, held for the whole run.
    Every file goes in through that descriptor: each move reopened the folder by its path, and a
    folder swapped in at its name received them (QA pass 36)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        os.makedirs(base, 0o700, exist_ok=True)
        base_fd = os.open(base, _DIR_FLAGS)
        try:
            _check_private(base, os.fstat(base_fd))  # the folder opened, whoever made it since the check
            for n in itertools.count(1):
                name = f"{stamp}-{n}"
                try:
                    os.mkdir(name, 0o700, dir_fd=base_fd)  # atomic: two removals never share a run folder; private
                    break
                except FileExistsError:
                    continue
            run_fd = os.open(name, _DIR_FLAGS, dir_fd=base_fd)
        finally:
            os.close(base_fd)
        run_dir = os.path.join(base, name)
        _quarantine_base(roots, run_dir)  # the folder made is where it was meant to be
    except OSError as exc:
        raise RemovalError(
            f"cannot create the quarantine {base}: {exc.strerror or exc}; nothing was removed{_room(exc.errno)}"
        ) from exc
    return run_dir, run_fd


def _remove_into(
    roots: tuple[str, ...],
    work: list[Cluster],
    kept_files: frozenset[tuple[int, int]],
    base: str,
    run_dir: str,
    run_fd: int,
    permanent: bool,
    before_cluster: Callable[[Cluster], None] | None,
) -> RemovalResult:
    """:func:`_remove` once the run folder ``run_dir`` is made and open (``run_fd``)."""
    # Each cluster's own entries, by its place in ``work``, not by its id: a result merged from
    # two scans (both number their clusters from 0) gave one cluster the other's files too, and
    # the removal stopped in the middle with a KeyError.
    planned: list[list[dict[str, Any]]] = []
    for c in work:
        planned.append(entries := [])
        for m in c.removable:
            e = m.record.entry
            for name in (e.path, *e.aliases):
                i = _root_of(name, roots)
                rel = os.path.relpath(name, roots[i])
                stored = None if permanent else os.path.join("files", _root_folder(i, roots[i]), rel)
                entries.append(
                    {
                        "cluster": c.id,
                        "keep": c.keep.path,
                        "path": name,
                        "quarantine": None if stored is None else os.path.join(run_dir, stored),
                        "stored": stored,  # relative to the manifest's folder: undo works after a move
                        "bytes": e.size,
                        "sha256": m.record.digest,
                        # the names of one file (hard links) share it: an undo run again links a name
                        # to another already back, which across disks is no longer the quarantine's
                        **({"file": e.path} if e.aliases else {}),
                    }
                )
    entries = [item for mine in planned for item in mine]
    manifest = os.path.join(run_dir, "manifest.json")
    try:
        head = {
            "schema": MANIFEST_SCHEMA,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "host": platform.node(),
            "permanent": permanent,
            "roots": list(roots),
            "root_ids": [_folder_id(r) for r in roots],  # the same folders, whatever the host's name
        }
        _write_manifest(manifest, {**head, "entries": entries}, dir_fd=run_fd)
    except OutputError as exc:
        with contextlib.suppress(OSError):  # the run folder made for it, empty: each try left one
            _drop_empty(run_dir, run_fd)
        raise RemovalError(f"{exc}; nothing was removed{_room(exc.errno)}") from exc

    removed: list[Removed] = []
    skipped: list[SkippedCluster] = []
    interrupted = False
    try:
        _act(
            roots,
            work,
            kept_files,
            planned,
            run_dir,
            run_fd,
            removed,
            skipped,
            before_cluster,
            _earlier_removals(base, run_dir),
        )
    except KeyboardInterrupt:
        interrupted = True
    # Ctrl-C (again: users press it twice) waits for the record of what moved; it cut the rewrite,
    # and the command said only "interrupted", with no count, no manifest and no undo command.
    dropped = False
    try:
        with one_step():
            dropped = not interrupted and not removed and _drop_run_folder(run_dir, run_fd)
            if not dropped:
                _settle_manifest(manifest, head, entries, removed, run_fd)
    except KeyboardInterrupt:
        interrupted = True
    if dropped:  # nothing moved: nothing to undo, no manifest
        if interrupted:
            raise KeyboardInterrupt
        return RemovalResult(None, (), tuple(skipped), permanent)
    done = RemovalResult(manifest, tuple(removed), tuple(skipped), permanent)
    if interrupted:
        raise RemovalInterrupted(done) from None
    return done


def _warn_if_beside_another_root(roots: tuple[str, ...], base: str) -> None:
    """The default quarantine sits beside the first root; when another root sits there too (the
    splits of one dataset, the class folders of one split) it lies inside the dataset's folder,
    where loaders read it as data: Hugging Face's imagefolder takes ``test.imgdup-quarantine`` for
    the test split (the leaked files came back), ImageFolder a class folder for a new class."""
    parent = os.path.dirname(base)
    beside = [r for r in roots if os.path.dirname(r) == parent and base != default_quarantine((r,))]
    # A split's name alone does it: imagefolder reads train.imgdup-quarantine as the train split.
    name = os.path.basename(base).removesuffix(QUARANTINE_SUFFIX).lower()
    if beside or name in _SPLIT_NAMES:
        # The split its name makes it, not always "test" (QA pass 33: train.imgdup-quarantine).
        split = _SPLIT_NAMES.get(name)
        hf = (
            f"Hugging Face imagefolder takes a folder named '{name}.*' for the {split} split"
            if split
            else "Hugging Face imagefolder takes a folder named after a split ('test.*') for that split"
        )
        log.warning(
            "the quarantine %s lies in %s%s: a loader that reads %s reads the removed files as data"
            " (%s; ImageFolder a folder for a class); move it out of %s (undo still finds its files) or give"
            " --quarantine DIR (quarantine= in Python) outside the dataset",
            base, parent, f", beside {beside[0]}" if beside else "", parent, hf, parent,
        )  # fmt: skip


# Hugging Face datasets' split keywords (datasets.data_files.SPLIT_KEYWORDS), by the split they
# name: a folder named one of them, then a separator, is read as that split.
_SPLIT_NAMES = {
    **dict.fromkeys(("train", "training"), "train"),
    **dict.fromkeys(("validation", "valid", "dev", "val"), "validation"),
    **dict.fromkeys(("test", "testing", "eval", "evaluation"), "test"),
}


def _drop_run_folder(run_dir: str, run_fd: int) -> bool:
    """Remove a run's quarantine folder when nothing was moved into it (every cluster skipped:
    a plan applied twice), so that the quarantine holds no run with a manifest of nothing; only
    the manifest and empty folders are removed, bottom up. Whether the folder is gone."""
    try:
        os.unlink("manifest.json", dir_fd=run_fd)
        _drop_empty(run_dir, run_fd)
    except OSError:
        return False
    return True


def _drop_empty(run_dir: str, run_fd: int) -> None:
    """Remove the run folder ``run_fd`` and the folders below it, all empty (OSError if not),
    through its descriptor; its name only while it is still that folder."""

    def below(fd: int) -> None:
        for name in os.listdir(fd):
            inner = os.open(name, _DIR_FLAGS, dir_fd=fd)  # not a folder (a file): fails, and stops
            try:
                below(inner)
            finally:
                os.close(inner)
            os.rmdir(name, dir_fd=fd)

    below(run_fd)
    here, named = os.fstat(run_fd), os.stat(run_dir, follow_symlinks=False)
    if (here.st_dev, here.st_ino) != (named.st_dev, named.st_ino):
        raise OSError(errno.ESTALE, "not the run folder made", run_dir)
    os.rmdir(run_dir)


def _settle_manifest(
    manifest: str, head: dict[str, Any], entries: list[dict[str, Any]], removed: list[Removed], run_fd: int
) -> None:
    """Once the run is over, the manifest lists what was moved (or deleted), nothing more.

    It was written before anything moved, with every planned file (a crash must leave a record
    of whatever moved); the files of a cluster skipped since, never moved, made every undo
    report them "missing from the quarantine". If this rewrite fails (a quarantine disk the
    moves filled), the first one stands, said in a warning (it was silent, QA pass 36): undo
    then finds those files in place. It is not rewritten in place, which a crash would leave
    half-written: the record of every file moved."""
    acted = {r.path for r in removed}
    if len(acted) == len(entries):
        return
    try:
        _write_manifest(
            manifest, {**head, "entries": [e for e in entries if e["path"] in acted]}, dir_fd=run_fd, replace=True
        )
    except OutputError as exc:
        stale = sum(1 for e in entries if e["path"] not in acted)
        log.warning(
            "could not rewrite the manifest %s to list only what moved: %s; it still lists %d %s that did not"
            " move (undo finds %s in place and says so)",
            manifest, os.strerror(exc.errno) if exc.errno else exc, stale, "file" if stale == 1 else "files",
            "it" if stale == 1 else "them",
        )  # fmt: skip


def _act(
    roots: tuple[str, ...],
    work: list[Cluster],
    kept_files: frozenset[tuple[int, int]],
    planned: list[list[dict[str, Any]]],
    run_dir: str,
    run_fd: int,
    removed: list[Removed],
    skipped: list[SkippedCluster],
    before_cluster: Callable[[Cluster], None] | None,
    earlier: Callable[[str, str], str | None] | None = None,
) -> None:
    """Re-check each cluster, then move or delete its files (``planned``: each cluster's manifest
    entries, in the order of ``work``); appends to ``removed``/``skipped``. ``earlier``: see
    :func:`_check_unchanged`."""
    copied: dict[tuple[int, int], str] = {}  # inode -> its quarantine copy (cross-device), links kept
    for c, items in zip(work, planned):
        if before_cluster:
            before_cluster(c)
        # Every kept file, not only the one named keeper: with reference files (or a plan that
        # keeps several) a file is removed against the nearest kept one, which may be another.
        kept = [c.keep, *(m.record for m in c.members if m.action is Action.KEEP and m.record.path != c.keep.path)]
        problem = None
        kept_ctime: dict[str, int] = {}
        for r in kept:
            problem = problem or _check_unchanged(r.path, r.entry.root, r.entry, r.digest, earlier, kept_ctime)
        # A name to remove must not be a kept file itself, of this cluster or another (_kept_files).
        for m in c.removable:
            e = m.record.entry
            if not problem and e.path == c.keep.path:  # a result edited in Python: its actions, not its keep
                problem = f"{e.path} is marked remove but is the cluster's kept file (Cluster.keep names it)"
            elif not problem and (e.device, e.inode) in kept_files:
                problem = f"{e.path} is a kept file itself (another name of the same file), not a copy of one"
            for name in (e.path, *e.aliases):
                problem = problem or _check_unchanged(name, roots[_root_of(name, roots)], e, m.record.digest, earlier)
        if problem:
            log.info("cluster %d skipped: %s", c.id, problem)  # in the result (the command prints it once)
            skipped.append(SkippedCluster(c.id, problem))
            continue
        entry_of = {
            name: m.record.entry for m in c.removable for name in (m.record.entry.path, *m.record.entry.aliases)
        }
        # Space is freed once every name of the inode is gone; a name kept elsewhere (a hard
        # link outside the roots) keeps the data on disk. Counted once, on the first name: its
        # other names here go with it and free no more bytes (not "kept elsewhere" either).
        frees: dict[str, bool] = {}
        for m in c.removable:
            e = m.record.entry
            with contextlib.suppress(OSError):
                frees[e.path] = os.lstat(e.path).st_nlink <= 1 + len(e.aliases)
            for alias in e.aliases:
                frees[alias] = frees.get(e.path, False)
        first_names = {m.record.entry.path for m in c.removable}
        moved = 0  # files of this cluster moved so far (a stop part-way says how many)
        names: list[tuple[int, dict[str, Any]]] = []  # the names of the file being moved that moved
        for item in items:
            path = item["path"]
            entry = entry_of[path]
            root = roots[_root_of(path, roots)]
            if path in first_names:
                names = []
            if gone := _kept_gone(kept, kept_ctime):
                log.info("cluster %d: stopped: %s", c.id, gone)
                skipped.append(SkippedCluster(c.id, gone, moved))
                break
            try:
                with one_step():  # Ctrl-C stops between two files, never in the middle of one
                    _move_one(path, root, entry, item["sha256"], item["quarantine"], run_dir, run_fd, copied)
                    size = item["bytes"] if path in first_names else 0
                    removed.append(
                        Removed(c.id, path, item["quarantine"], size, frees.get(path, False), path not in first_names)
                    )
                    names.append((len(removed) - 1, item))
            except OSError as exc:
                reason = f"{path}: {exc.strerror or exc}"
                if names:  # its other names moved: a file's names move together or not at all
                    reason += _put_back_names(path, root, entry, removed, names, roots, run_dir, copied)
                    if not names:  # all put back: that file did not move
                        moved -= 1
                log.info("cluster %d: stopped at %s", c.id, reason)
                skipped.append(SkippedCluster(c.id, reason, moved))
                break
            moved += path in first_names


def _put_back_names(
    survivor: str,
    root: str,
    entry: FileEntry,
    removed: list[Removed],
    names: list[tuple[int, dict[str, Any]]],
    roots: tuple[str, ...],
    run_dir: str,
    copied: dict[tuple[int, int], str],
) -> str:
    """Give the names of a file that were moved (``removed[i]``, manifest entry, for each of
    ``names``) their place back, linked to ``survivor``, its name that could not move (in
    ``root``): its first name moved, its second (in a read-only folder) did not, and the run said
    "moved 1 file (743 B)" of a file still in the dataset; across disks the quarantine kept a copy,
    and undo brought the name back as a file of its own (QA pass 36). A name put back leaves
    ``removed`` and ``names``; one that cannot be stays where it went, in the manifest, freeing
    nothing. Returns what to add to the cluster's reason."""
    back: list[int] = []
    with contextlib.suppress(OSError), anchored(survivor, root) as (s_fd, s_name):
        st = os.stat(s_name, dir_fd=s_fd, follow_symlinks=False)
        link_from = (s_fd, s_name) if _identity(entry).differs(st) is None else None
        for i, item in reversed(names):
            with contextlib.suppress(OSError), one_step():
                with anchored(item["path"], roots[_root_of(item["path"], roots)]) as (dir_fd, name):
                    if item["quarantine"] is None:  # deleted: its other name alone holds the file
                        if link_from is None:
                            continue
                        link_again(s_fd, s_name, dir_fd, name, _identity(entry))
                    else:
                        with anchored(item["quarantine"], run_dir) as (q_fd, q_name):
                            move_in(q_fd, q_name, dir_fd, name, digest=item["sha256"], link_from=link_from)
                        if copied.get((entry.device, entry.inode)) == item["quarantine"]:
                            del copied[(entry.device, entry.inode)]  # that copy is gone
                back.append(i)
    said = [item["path"] for i, item in names if i in back]
    left = [(i, item) for i, item in names if i not in back]
    for i, _item in left:  # its data stays on disk under the name that could not move
        removed[i] = dataclasses.replace(removed[i], frees_space=False)
    for i in sorted(back, reverse=True):
        del removed[i]
    names[:] = left
    out = f"; put back: {', '.join(said)} (the names of a file move together)" if said else ""
    if left:
        out += f"; not put back (left in the quarantine): {', '.join(item['path'] for _i, item in left)}"
    return out


def _kept_gone(kept: list[ImageRecord], ctime: Mapping[str, int]) -> str | None:
    """Why a cluster's kept files are no longer all there, looked at again before each file: a
    large cluster takes a while, and a kept file deleted after the cluster's check (another
    program, a user tidying up) did not stop it; with --permanent every copy went after it, the
    picture gone. One lstat per kept file; the full check (content, folders) ran at the start,
    and ``ctime`` holds each kept file's change time then: a file rewritten in place with its
    size and modification time put back (``rsync --inplace -t``) changes it, and no one can set it."""
    for r in kept:
        try:
            st = os.lstat(r.path)
        except OSError:
            return f"{r.path} (a kept file) is gone; the others were left"
        if _identity(r.entry).differs(st) or st.st_ctime_ns != ctime.get(r.path, st.st_ctime_ns):
            return f"{r.path} (a kept file) changed; the others were left"
    return None


def _move_one(
    path: str,
    root: str,
    entry: FileEntry,
    digest: str,
    dst: str | None,
    run_dir: str,
    run_fd: int,
    copied: dict[tuple[int, int], str],
) -> None:
    """Move (``dst``) or delete (None) one checked file; the inode acted on is the one checked.
    ``dst`` is reached from the run folder's descriptor ``run_fd``, never by its path."""
    expected = _identity(entry)
    with anchored(path, root) as (dir_fd, name):
        if dst is None:
            unlink_checked(dir_fd, name, expected, digest=digest)
            return
        with contextlib.ExitStack() as stack:
            q_fd, q_name = stack.enter_context(anchored(dst, run_dir, create=True, at=run_fd))
            key = (entry.device, entry.inode)
            link_from = stack.enter_context(anchored(copied[key], run_dir, at=run_fd)) if key in copied else None
            if move_out(dir_fd, name, q_fd, q_name, expected, digest=digest, link_from=link_from):
                copied.setdefault(key, dst)


def _folder_id(folder: str) -> list[int]:
    st = os.stat(folder, follow_symlinks=False)
    return [st.st_dev, st.st_ino]


def _same_folders(doc: dict[str, Any]) -> bool:
    """Whether every root a manifest names is still the very folder (device and inode) it was when
    the removal ran: then a manifest whose host name is not this machine's is this machine's all
    the same (a container gets a new name each run, and undo was refused for good)."""
    roots, ids = doc.get("roots"), doc.get("root_ids")
    if not isinstance(roots, list) or not isinstance(ids, list) or not roots or len(roots) != len(ids):
        return False
    for root, recorded in zip(roots, ids):
        if not isinstance(root, str) or not os.path.isabs(root):
            return False
        try:
            if not stat.S_ISDIR(os.stat(root, follow_symlinks=False).st_mode) or _folder_id(root) != recorded:
                return False
        except OSError:
            return False
    return True


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load and validate a manifest written by :func:`remove`."""
    where = "the removal names it: QUARANTINE/RUN/manifest.json"
    text = ""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        doc = from_json_text(text)
    except (OSError, ValueError, RecursionError) as exc:  # nested too deep: no manifest of imgdup's
        if isinstance(exc, ValueError) and not text.lstrip().startswith("{"):  # a report, a picture: no JSON at all
            raise ManifestError(f"{os.fspath(path)} is not an imgdup manifest (not JSON; {where})") from None
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc  # not "[Errno 2] ...: 'x'" again
        raise ManifestError(f"cannot read manifest {os.fspath(path)}: {why}") from exc
    if not isinstance(doc, dict) or doc.get("schema") != MANIFEST_SCHEMA or not isinstance(doc.get("entries"), list):
        raise ManifestError(f"{os.fspath(path)} is not an imgdup manifest ({MANIFEST_SCHEMA}; {where})")
    roots = doc.get("roots")
    # Where undo may restore to: "roots": "/tmp" was read letter by letter, and "/" let a file be
    # restored anywhere; null was a TypeError (QA pass 33).
    if not isinstance(roots, list) or not roots or not all(_plain_path(r) and os.path.isabs(r) for r in roots):
        raise ManifestError(
            f"{os.fspath(path)} is not an imgdup manifest (its roots are not a list of absolute folder paths; {where})"
        )
    return doc


def _plain_path(value: object) -> TypeGuard[str]:
    """Whether a manifest's value is a path a system call takes (a NUL byte in one entry's path
    was a ValueError that ended the whole undo) and is written as imgdup writes it (normalised)."""
    return isinstance(value, str) and bool(value) and "\x00" not in value and os.path.normpath(value) == value


def _manifests_in(folder: str) -> str:
    """The undo command for a folder given instead of its manifest (tab completion stops at the
    folder): a run folder's own manifest, or a quarantine's newest run's and how many it holds."""
    found: list[str] = []
    with contextlib.suppress(OSError):
        if os.path.isdir(folder):
            own = os.path.join(folder, "manifest.json")
            found = [own] if os.path.isfile(own) else [
                os.path.join(folder, e.name, "manifest.json") for e in os.scandir(folder)
                if e.is_dir(follow_symlinks=False) and os.path.isfile(os.path.join(folder, e.name, "manifest.json"))
            ]  # fmt: skip
    if not found:
        return "imgdup --undo QUARANTINE/RUN/manifest.json"
    newest = max(found)  # run folders are named by their start time
    more = f"; it holds {len(found)} runs, this is the newest" if len(found) > 1 else ""
    return f"imgdup --undo {shlex.quote(newest)}{more}"


def undo(manifest: StrOrBytesPath) -> UndoResult:
    """Put every quarantined file back where it was, byte-identical; never deletes or
    overwrites anything of yours.

    Restores every entry it can and reports each one it cannot, with the reason. Safe to run
    more than once and after an interrupted removal. A file counts as already in place only
    when the original path, reached from its root without symbolic links, holds a regular file
    with the recorded content that is not the quarantined file itself. The quarantine is found
    from the manifest's own folder, so a moved quarantine folder still restores; a manifest that
    is not a regular file (a pipe, ``<(cat manifest)``) has no such folder and is refused.
    """
    if manifest is None:  # RemovalResult.manifest of a removal that moved nothing: it raised TypeError
        raise UsageError("nothing to undo: a removal that moved nothing has no manifest (its manifest is None)")
    if isinstance(manifest, RemovalResult):  # undo(done) for undo(done.manifest): a bare TypeError
        raise UsageError(
            "undo takes the path of a removal's manifest: imgdup.undo(done.manifest), not the RemovalResult"
        )
    manifest = path_arg("manifest", manifest)
    with contextlib.suppress(OSError):  # a missing file: read_manifest says so
        if not stat.S_ISREG(os.stat(manifest).st_mode):
            raise ManifestError(
                f"{os.fspath(manifest)} is not a regular file: undo reads the manifest in its own run folder, "
                f"beside the quarantined files ({_manifests_in(os.fsdecode(manifest))}); nothing was restored"
            )
    doc = read_manifest(manifest)
    if doc.get("host") != platform.node() and not _same_folders(doc):
        raise ManifestError(
            f"this manifest was written on {doc.get('host')!r}, not on this machine ({platform.node()!r}), and "
            "its folders are not the ones it names here: its paths may mean other files here, so nothing was "
            f"restored (the same machine under another name, a container's: run it as {doc.get('host')!r}, "
            "docker run --hostname NAME)"
        )
    roots: list[str] = doc["roots"]  # absolute folder paths (read_manifest)
    if doc.get("permanent"):
        with _locked(tuple(r for r in roots if os.path.isdir(r))):  # not while a removal runs there
            put_back = _put_back_staged_of(doc["entries"], roots)
        if put_back:
            were = "1 file was" if len(put_back) == 1 else f"{len(put_back)} files were"
            raise ManifestError(
                f"the files of this manifest were deleted permanently, but {were} not deleted yet (the removal "
                f"was stopped before): put back at {'its name' if len(put_back) == 1 else 'their names'} "
                f"({', '.join(put_back[:3])}{', ...' if len(put_back) > 3 else ''}); there is nothing else to restore"
            )
        raise ManifestError("the files of this manifest were deleted permanently; there is nothing to restore")
    restored: list[str] = []
    already: list[str] = []
    problems: list[tuple[str, str]] = []
    # The folder of the manifest itself: a symbolic link to it (a script's last-removal.json) was
    # refused as "a copy of" the very file it points at (QA pass 35).
    run_dir = os.path.dirname(os.path.realpath(os.fspath(manifest)))
    recorded = _recorded_run_dir(doc["entries"])
    if recorded and os.path.realpath(recorded) != run_dir and os.path.isfile(os.path.join(recorded, "manifest.json")):
        raise ManifestError(
            f"{os.fspath(manifest)} is a copy of {os.path.join(recorded, 'manifest.json')}: undo reads the files "
            "beside the manifest, so give it that one; nothing was restored"
        )
    files = os.path.join(run_dir, "files")
    with _locked(tuple(r for r in roots if os.path.isdir(r))):  # not while a removal runs there
        _put_back_staged_of(doc["entries"], roots)  # then found in place, where the quarantined copy stays
        emptied = remove_partials(files)  # copies a kill cut short; never the only copy
        _undo_all(doc["entries"], roots, run_dir, restored, already, problems)
    back = set(restored)
    for item in doc["entries"]:
        if isinstance(item, dict) and item.get("path") in back and (q := _stored(item, run_dir)):
            emptied.append(q)
    _prune_emptied(files, emptied)
    return UndoResult(tuple(restored), tuple(already), tuple(problems))


def _undo_all(
    entries: list[Any],
    roots: list[str],
    run_dir: str,
    restored: list[str],
    already: list[str],
    problems: list[tuple[str, str]],
) -> None:
    back: dict[tuple[int, int], tuple[str, str]] = {}  # quarantined inode -> restored (path, root)
    names_of: dict[str, list[str]] = {}  # a file's first name -> the paths of its names (hard links)
    for item in entries:
        if isinstance(item, dict) and isinstance(item.get("file"), str) and _plain_path(item.get("path")):
            names_of.setdefault(item["file"], []).append(item["path"])
    partials: dict[tuple[int, int], list[str]] = {}  # folder -> its temporary copies (fsafe.partials_in)
    held = _runs_holding(os.path.dirname(run_dir), run_dir)  # a file missing here: another run's?
    for item in entries:
        path = item.get("path") if isinstance(item, dict) else None
        if not isinstance(path, str) or "\x00" in path:
            problems.append((str(path), "not a valid manifest entry; refused"))
            continue
        try:
            outcome = _undo_one(item, path, roots, run_dir, back, partials, held, names_of)
        except OSError as exc:
            outcome = f"cannot restore: {exc.strerror or exc}; left in the quarantine"
        if outcome == "restored":
            restored.append(path)
        elif outcome == "in place":
            already.append(path)
        else:
            problems.append((path, outcome))


def _recorded_run_dir(entries: list[Any]) -> str | None:
    """The run folder the removal wrote its files to (an entry's quarantine path less its
    stored part), or None: a copy of the manifest elsewhere found none of them, and each was
    reported missing from the quarantine (and undo tidied that folder's own empty folders)."""
    for item in entries:
        q, stored = (item.get("quarantine"), item.get("stored")) if isinstance(item, dict) else (None, None)
        if isinstance(q, str) and isinstance(stored, str) and stored and q.endswith(os.sep + stored):
            return q[: -len(stored) - 1]
    return None


def _stored(item: dict[str, Any], run_dir: str) -> str | None:
    """The quarantined file's path under ``run_dir`` (the manifest's own folder), or None when
    the entry points outside it (a manifest is data: it only restores from its own folder)."""
    stored = item.get("stored")
    if isinstance(stored, str):
        rel = os.path.normpath(stored)
        return None if os.path.isabs(rel) or rel.split(os.sep)[0] == os.pardir else os.path.join(run_dir, rel)
    q = item.get("quarantine")  # a manifest from before "stored": absolute paths only
    if not isinstance(q, str):
        return None
    q = os.path.normpath(os.path.abspath(q))
    if inside(q, run_dir):
        return q
    # moved since: the run folder's own name is still in the old path
    marker = os.sep + os.path.join(os.path.basename(run_dir), "files") + os.sep
    if marker in q:
        rel = os.path.normpath(os.path.join("files", q.rsplit(marker, 1)[1]))
        if rel.split(os.sep)[0] == "files":
            return os.path.join(run_dir, rel)
    return None


def _lstat(name: str, dir_fd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _digest_at(name: str, dir_fd: int) -> str:
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    try:
        return sha256_fd(fd)
    finally:
        os.close(fd)


def _undo_one(
    item: dict[str, Any],
    path: str,
    roots: list[str],
    run_dir: str,
    back: dict[tuple[int, int], tuple[str, str]],
    partials: dict[tuple[int, int], list[str]],
    held: Callable[[str, str], tuple[str, bool] | None],
    names_of: Mapping[str, list[str]],
) -> str:
    """Restore one entry: returns "restored", "in place", or the reason it was not restored.
    ``held`` says which other run of the quarantine holds a file (:func:`_runs_holding`);
    ``names_of`` the paths of each file's names, by its first (the manifest's ``file``)."""
    digest = item.get("sha256")
    q = _stored(item, run_dir)
    root = next((r for r in roots if inside(os.path.normpath(path), r)), None)
    if q is None:
        return f"its quarantined file is not under this manifest's folder {run_dir}; refused"
    if root is None or os.path.normpath(path) != path:
        return "the original path is outside the manifest's roots; refused"
    stored = item.get("stored")
    if isinstance(stored, str):
        # Where the removal put it: its root's folder, then its path below that root. An entry
        # whose path or roots were changed since (a root "/") no longer matches (QA pass 33).
        i = roots.index(root)
        if os.path.normpath(stored) != os.path.join("files", _root_folder(i, root), os.path.relpath(path, root)):
            return (
                "its quarantined name does not match its path under the manifest's roots (an edited manifest?); refused"
            )
    with contextlib.ExitStack() as stack:
        try:
            q_fd, q_name = stack.enter_context(anchored(q, run_dir))
            q_st = _lstat(q_name, q_fd)
        except FileNotFoundError:
            q_st = None
        if q_st is not None and not stat.S_ISREG(q_st.st_mode):
            return f"the quarantined copy {q} is not a regular file (a symbolic link?); left there"
        try:
            dir_fd, name = stack.enter_context(anchored(path, root))
            st = _lstat(name, dir_fd)
        except FileNotFoundError:  # its folder is gone: restored below, folders made again
            dir_fd, st = -1, None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                return "a folder on the original path is now a symbolic link or a file; nothing restored there"
            raise
        if st is not None:
            if stat.S_ISLNK(st.st_mode):
                return "a symbolic link is now at the original path; not replaced"
            if not stat.S_ISREG(st.st_mode):
                return "something that is not a regular file is now at the original path; not replaced"
            if q_st is not None and (st.st_dev, st.st_ino) == (q_st.st_dev, q_st.st_ino):
                if _digest_at(name, dir_fd) != digest:
                    return (
                        f"the original path is another name (hard link) of the quarantined copy {q}, which was "
                        "modified since; both left as they are"
                    )
                # A restore cut between its link and its unlink by SIGKILL, which one_step cannot
                # hold back: every later undo reported both names, for good (QA pass 23). The file
                # is at its name, as the manifest has it: its quarantined name goes.
                try:
                    with one_step():
                        drop_second_name(q_fd, q_name, dir_fd, name)
                        back.setdefault((q_st.st_dev, q_st.st_ino), (path, root))
                except OSError as exc:
                    if exc.errno == errno.EINVAL:  # a manifest whose path leads to the quarantined file
                        return (
                            f"the original path is the quarantined copy {q} itself, not another name of it; left there"
                        )
                    return (
                        f"the original path is another name (hard link) of the quarantined copy {q}, whose name "
                        f"there cannot be removed ({exc.strerror or exc}); both left as they are"
                    )
                return "restored"
            if _digest_at(name, dir_fd) == digest:
                return "in place"
            return "a different file now exists at the original path; not overwritten"
        if q_st is None:
            # A run killed before it moved the file, then run again: the second run holds it, and
            # undo of the first said "missing from the quarantine", which reads like a loss (QA pass 33).
            other = held(path, digest) if isinstance(digest, str) else None
            if other is not None and other[1]:
                return f"never moved by this run; deleted permanently by another run (manifest {other[0]})"
            if other is not None:
                return (
                    f"never moved by this run, or put back since: another run moved it to its own quarantine"
                    f" (imgdup --undo {shlex.quote(other[0])} puts it back)"
                )
            return f"missing from the quarantine ({q})"
        if _digest_at(q_name, q_fd) != digest:
            return f"the quarantined copy {q} was modified; left there"
        if dir_fd < 0:
            if not os.path.lexists(root):  # it said "cannot restore: No such file or directory"
                return (
                    f"its scanned folder {root} is gone (moved or deleted); left in the quarantine: put the "
                    "folder back (or make it again) and run the undo again"
                )
            dir_fd, name = stack.enter_context(anchored(path, root, create=True))
        key = (q_st.st_dev, q_st.st_ino)
        file = item.get("file")
        names = names_of.get(file, []) if isinstance(file, str) else []
        linked = back.get(key) or _name_in_place(path, names, roots, digest)  # hard links come back together
        link_from = stack.enter_context(anchored(*linked)) if linked else None
        folder = os.fstat(dir_fd)
        where = (folder.st_dev, folder.st_ino)
        if where not in partials:  # each folder listed once per undo, not once per file
            partials[where] = partials_in(dir_fd)
        # Ctrl-C (SIGTERM) waits for this file: cut between the link that gives it its name back
        # and the unlink of its quarantined name, both names stayed, and every later undo
        # reported the original as another name of the quarantined copy, left as it was.
        with one_step():
            move_in(q_fd, q_name, dir_fd, name, digest=digest, link_from=link_from, partials=partials[where])
            back.setdefault(key, (path, root))
    return "restored"


def _name_in_place(path: str, names: list[str], roots: list[str], digest: object) -> tuple[str, str] | None:
    """Another of ``names`` (the names of ``path``'s file) back in place, with the recorded content,
    and its root: an undo run again after one that restored that name alone (the other's folder
    read-only) gave ``path`` back as a file of its own across disks, the two names no longer one
    file, since the quarantined name they shared was gone (QA pass 36)."""
    for name in names:
        root = next((r for r in roots if inside(name, r) and name != r), None)
        if name == path or root is None:
            continue
        with contextlib.suppress(OSError), anchored(name, root) as (dir_fd, base):
            st = _lstat(base, dir_fd)
            if st is not None and stat.S_ISREG(st.st_mode) and _digest_at(base, dir_fd) == digest:
                return name, root
    return None


def _prune_emptied(top: str, emptied: list[str]) -> None:
    """Remove the folders under ``top`` (included) that held the files undo took away, once
    empty; only those: every empty folder under it went, and a manifest copied beside a
    dataset's own ``files/`` folder had its empty class folders deleted."""
    for path in emptied:
        folder = os.path.dirname(path)
        while inside(folder, top):
            try:
                os.rmdir(folder)
            except FileNotFoundError:
                pass  # gone with an earlier file's folders: on to its parent
            except OSError:
                break  # not empty (or not ours to remove): nor is any folder above it
            folder = os.path.dirname(folder)
