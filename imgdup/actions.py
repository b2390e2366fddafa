"""Act on a scan: move duplicates to a quarantine folder (or delete them), and undo.

Safety rules, in the order they apply:
- only members marked ``remove`` (within the threshold of their cluster's keeper) are touched;
  the keeper, and so the last copy of every picture, is never touched;
- a manifest (original path, quarantine path, size, SHA-256) is written and fsynced before
  the first file moves, so an interrupted removal can always be undone;
- just before a cluster is acted on, its keeper and every file to remove are re-checked
  (regular file, no symlink on the path, same inode, size, mtime_ns and content digest as at
  scan time); any difference skips the whole cluster;
- nothing is ever overwritten, neither in the quarantine nor when undoing.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import json
import logging
import os
import platform
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from .errors import ManifestError, RemovalError
from .hashing import sha256_stream
from .models import Cluster, FileEntry, RemovalResult, Removed, ScanResult, SkippedCluster, UndoResult

log = logging.getLogger(__name__)

MANIFEST_SCHEMA = "imgdup.manifest/1"
QUARANTINE_SUFFIX = ".imgdup-quarantine"


def sha256_file(path: str) -> str:
    """Content digest of a regular file, refusing to follow a symlink at ``path``."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        return sha256_stream(fh)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def default_quarantine(roots: tuple[str, ...]) -> str:
    """``<first root>.imgdup-quarantine`` beside the first root: same file system (a rename,
    no copy) and outside every root (never scanned as a duplicate itself)."""
    first = roots[0]
    return os.path.join(os.path.dirname(first), os.path.basename(first) + QUARANTINE_SUFFIX)


@contextlib.contextmanager
def _anchored(path: str, root: str, *, create: bool = False) -> Iterator[tuple[int, str]]:
    """A descriptor of ``path``'s folder reached from ``root`` without following any symbolic
    link, and the file's name in it. Acting through it, a folder swapped for a symlink after
    the scan cannot redirect a move, a deletion or a restore outside the root. ``create``
    makes missing folders on the way (for undo)."""
    parts = os.path.relpath(path, root).split(os.sep)
    if parts[0] == os.pardir:
        raise OSError(errno.EXDEV, "outside the scanned root", path)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for part in parts[:-1]:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            try:
                inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise OSError(exc.errno, "a folder on the path is now a symbolic link or a file", path) from None
                raise
            os.close(fd)
            fd = inner
        yield fd, parts[-1]
    finally:
        os.close(fd)


def _same_file(st: os.stat_result, entry: FileEntry) -> bool:
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns) == (entry.inode, entry.device, entry.size, entry.mtime_ns)


def _check_unchanged(path: str, root: str, entry: FileEntry, digest: str) -> str | None:
    """Why ``path`` is no longer the file that was scanned, or None if it still is."""
    try:
        with _anchored(path, root) as (dir_fd, name):
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                return f"{path} is no longer a regular file"
            if not _same_file(st, entry):
                return f"{path} changed since the scan (inode, size or modification time)"
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
            with os.fdopen(fd, "rb") as fh:
                if not _same_file(os.fstat(fh.fileno()), entry):
                    return f"{path} changed since the scan"
                if sha256_stream(fh) != digest:
                    return f"{path} changed since the scan (content)"
    except FileNotFoundError:
        return f"{path} is gone"
    except OSError as exc:
        return f"{path} cannot be checked: {exc.strerror or exc}"
    return None


def _copy_exclusive(src: BinaryIO, dst: str, *, dir_fd: int | None = None) -> None:
    """Copy an open file to a new path (never replacing one), fsynced, timestamps kept."""
    fd_out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=dir_fd)
    try:
        with os.fdopen(fd_out, "wb") as fout:
            shutil.copyfileobj(src, fout, 1024 * 1024)
            fout.flush()
            os.fsync(fout.fileno())
            st = os.fstat(src.fileno())
            os.utime(fout.fileno(), ns=(st.st_atime_ns, st.st_mtime_ns))
            os.chmod(fout.fileno(), stat.S_IMODE(st.st_mode))
    except BaseException:
        os.unlink(dst, dir_fd=dir_fd)
        raise


def _move_out(path: str, root: str, entry: FileEntry, digest: str, dst: str | None) -> None:
    """Move (``dst``) or delete (None) one checked file through its anchored folder."""
    with _anchored(path, root) as (dir_fd, name):
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode) or not _same_file(st, entry):
            raise OSError(errno.ESTALE, "changed just before the move", path)
        if dst is None:
            os.unlink(name, dir_fd=dir_fd)
            return
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        try:
            os.link(name, dst, src_dir_fd=dir_fd, follow_symlinks=False)  # never replaces dst
        except FileExistsError:
            raise
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                if os.path.lexists(dst):
                    raise FileExistsError(errno.EEXIST, "already exists", dst) from None
                os.rename(name, dst, src_dir_fd=dir_fd)  # a file system without hard links
                return
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
            with os.fdopen(fd, "rb") as src:
                _copy_exclusive(src, dst)
            if sha256_file(dst) != digest:
                os.unlink(dst)
                raise OSError(errno.EIO, "the copy does not match the scanned file", dst) from None
        os.unlink(name, dir_fd=dir_fd)


def _write_manifest(path: str, doc: dict[str, Any]) -> None:
    """Write atomically and durably: the manifest must exist before anything moves."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(os.path.dirname(path), os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _root_of(path: str, roots: tuple[str, ...]) -> int:
    for i, root in enumerate(roots):
        if _inside(path, root):
            return i
    raise RemovalError(f"{path} is outside every scanned root")


def remove(
    result: ScanResult,
    *,
    quarantine: str | os.PathLike[str] | None = None,
    permanent: bool = False,
    before_cluster: Callable[[Cluster], None] | None = None,
) -> RemovalResult:
    """Move (or, with ``permanent=True``, delete) every member marked ``remove``.

    Returns what was done; clusters that changed since the scan are skipped and listed.
    ``before_cluster`` is a test hook called just before a cluster is re-checked.
    """
    work = [c for c in result.clusters if c.removable]
    if not work:
        return RemovalResult(None, (), (), permanent)
    # Second line of defence: the policy never marks a reference file for removal; a result
    # that does (edited, or from a bug) is refused before anything moves.
    for c in work:
        for m in c.removable:
            for name in (m.record.path, *m.record.entry.aliases):
                ref = next((r for r in result.reference if _inside(name, r)), None)
                if ref is not None:
                    raise RemovalError(f"{name} lies in the reference folder {ref}; nothing was removed")
    if quarantine is None and result.reference:  # beside the first folder files are removed from
        acted = tuple(r for r in result.roots if not any(_inside(r, f) for f in result.reference))
        quarantine = default_quarantine(acted or result.roots)
    with _locked(result.roots):
        return _remove(result.roots, work, quarantine, permanent, before_cluster)


@contextlib.contextmanager
def _locked(roots: tuple[str, ...]) -> Iterator[None]:
    """Hold an exclusive lock on every root folder: two removals on one root never overlap."""
    fds: list[int] = []
    try:
        for root in roots:
            fds.append(os.open(root, os.O_RDONLY | os.O_DIRECTORY))
            try:
                fcntl.flock(fds[-1], fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RemovalError(f"another imgdup removal is running on {root}; nothing was removed") from None
        yield
    finally:
        for fd in fds:
            os.close(fd)


def _remove(
    roots: tuple[str, ...],
    work: list[Cluster],
    quarantine: str | os.PathLike[str] | None,
    permanent: bool,
    before_cluster: Callable[[Cluster], None] | None,
) -> RemovalResult:
    base = os.path.realpath(os.fspath(quarantine)) if quarantine is not None else default_quarantine(roots)
    for root in roots:
        if _inside(base, root) or _inside(root, base):
            raise RemovalError(f"the quarantine {base} must be outside the scanned folder {root}")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        os.makedirs(base, exist_ok=True)
        for n in itertools.count(1):
            run_dir = os.path.join(base, f"{stamp}-{n}")
            try:
                os.mkdir(run_dir)  # atomic: two removals never share a run folder
                break
            except FileExistsError:
                continue
    except OSError as exc:
        raise RemovalError(f"cannot create the quarantine {base}: {exc.strerror or exc}; nothing was removed") from exc

    entries: list[dict[str, Any]] = []
    for c in work:
        for m in c.removable:
            e = m.record.entry
            for name in (e.path, *e.aliases):
                i = _root_of(name, roots)
                rel = os.path.relpath(name, roots[i])
                q = None if permanent else os.path.join(run_dir, "files", f"{i}-{os.path.basename(roots[i])}", rel)
                entries.append(
                    {
                        "cluster": c.id,
                        "keep": c.keep.path,
                        "path": name,
                        "quarantine": q,
                        "bytes": e.size,
                        "sha256": m.record.digest,
                    }
                )
    manifest = os.path.join(run_dir, "manifest.json")
    try:
        _write_manifest(
            manifest,
            {
                "schema": MANIFEST_SCHEMA,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "host": platform.node(),
                "permanent": permanent,
                "roots": list(roots),
                "entries": entries,
            },
        )
    except OSError as exc:
        raise RemovalError(f"cannot write the manifest {manifest}: {exc.strerror or exc}; nothing was removed") from exc

    removed: list[Removed] = []
    skipped: list[SkippedCluster] = []
    by_cluster: dict[int, list[dict[str, Any]]] = {}
    for item in entries:
        by_cluster.setdefault(item["cluster"], []).append(item)
    for c in work:
        if before_cluster:
            before_cluster(c)
        problem = _check_unchanged(c.keep.path, c.keep.entry.root, c.keep.entry, c.keep.digest)
        for m in c.removable:
            e = m.record.entry
            for name in (e.path, *e.aliases):
                problem = problem or _check_unchanged(name, roots[_root_of(name, roots)], e, m.record.digest)
        if problem:
            log.warning("cluster %d skipped: %s", c.id, problem)
            skipped.append(SkippedCluster(c.id, problem))
            continue
        entry_of = {
            name: m.record.entry for m in c.removable for name in (m.record.entry.path, *m.record.entry.aliases)
        }
        # Space is freed once every name of the inode is gone; a name kept elsewhere (a hard
        # link outside the roots) keeps the data on disk. Counted once, on the first name.
        frees = {}
        for m in c.removable:
            e = m.record.entry
            with contextlib.suppress(OSError):
                frees[e.path] = os.lstat(e.path).st_nlink <= 1 + len(e.aliases)
        for item in by_cluster[c.id]:
            path = item["path"]
            try:
                _move_out(path, roots[_root_of(path, roots)], entry_of[path], item["sha256"], item["quarantine"])
            except OSError as exc:
                reason = f"{path}: {exc.strerror or exc}"
                log.warning("cluster %d: stopped at %s", c.id, reason)
                skipped.append(SkippedCluster(c.id, reason))
                break
            removed.append(Removed(c.id, path, item["quarantine"], item["bytes"], frees.get(path, False)))
    return RemovalResult(manifest, tuple(removed), tuple(skipped), permanent)


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load and validate a manifest written by :func:`remove`."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ManifestError(f"cannot read manifest {os.fspath(path)}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("schema") != MANIFEST_SCHEMA or not isinstance(doc.get("entries"), list):
        raise ManifestError(f"{os.fspath(path)} is not an imgdup manifest ({MANIFEST_SCHEMA})")
    return doc


def undo(manifest: str | os.PathLike[str]) -> UndoResult:
    """Put every quarantined file back where it was, byte-identical; never overwrites.

    Safe to run more than once and after an interrupted removal: files already in place are
    left alone, files still in the quarantine are moved back.
    """
    doc = read_manifest(manifest)
    if doc.get("host") != platform.node():
        raise ManifestError(
            f"this manifest was written on {doc.get('host')!r}, not on this machine ({platform.node()!r}); "
            "its paths may mean other files here, so nothing was restored"
        )
    if doc.get("permanent"):
        raise ManifestError("the files of this manifest were deleted permanently; there is nothing to restore")
    restored: list[str] = []
    already: list[str] = []
    problems: list[tuple[str, str]] = []
    roots = [r for r in doc.get("roots", []) if isinstance(r, str)]
    run_dir = os.path.dirname(os.path.abspath(os.fspath(manifest)))
    for item in doc["entries"]:
        path, q, digest = item["path"], item["quarantine"], item["sha256"]
        # A manifest is data: it may only bring files back from its own folder into its roots.
        if not (isinstance(q, str) and _inside(os.path.abspath(q), run_dir)) or not any(
            _inside(path, r) for r in roots
        ):
            problems.append((str(path), "outside the manifest's quarantine or roots; refused"))
            continue
        in_place = os.path.lexists(path)
        in_quarantine = os.path.lexists(q)
        if in_place and in_quarantine:
            if os.path.samefile(path, q):  # interrupted between link and unlink
                os.unlink(q)
                already.append(path)
            else:
                problems.append((path, "a different file now exists at the original path; not overwritten"))
        elif in_place:
            already.append(path)
        elif not in_quarantine:
            problems.append((path, f"missing from the quarantine ({q})"))
        else:
            try:
                if sha256_file(q) != digest:
                    problems.append((path, f"the quarantined copy {q} was modified; left there"))
                    continue
                _restore(q, path, roots, digest)
                restored.append(path)
            except OSError as exc:
                problems.append((path, f"cannot restore: {exc.strerror or exc}; left in quarantine"))
    _prune_empty_dirs(os.path.join(os.path.dirname(os.fspath(manifest)), "files"))
    return UndoResult(tuple(restored), tuple(already), tuple(problems))


def _restore(q: str, path: str, roots: list[str], digest: str) -> None:
    """Bring one file back through folders anchored at its root; never overwrites."""
    root = next(r for r in roots if _inside(path, r))
    with _anchored(path, root, create=True) as (dir_fd, name):
        try:
            os.link(q, name, dst_dir_fd=dir_fd, follow_symlinks=False)  # fails if name exists
        except FileExistsError:
            raise
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            with open(q, "rb") as src:
                _copy_exclusive(src, name, dir_fd=dir_fd)
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dir_fd)
            with os.fdopen(fd, "rb") as copy:
                if sha256_stream(copy) != digest:
                    os.unlink(name, dir_fd=dir_fd)
                    raise OSError(errno.EIO, "the copy does not match the quarantined file", path) from None
    os.unlink(q)


def _prune_empty_dirs(top: str) -> None:
    for folder, _dirs, _files in os.walk(top, topdown=False):
        with contextlib.suppress(OSError):
            os.rmdir(folder)
