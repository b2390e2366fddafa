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
import hashlib
import json
import logging
import os
import platform
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ManifestError, RemovalError
from .models import Cluster, FileEntry, ScanResult

log = logging.getLogger(__name__)

MANIFEST_SCHEMA = "imgdup.manifest/1"
QUARANTINE_SUFFIX = ".imgdup-quarantine"


@dataclass(frozen=True)
class Removed:
    """One file name moved to the quarantine (``quarantine`` is None when deleted)."""

    cluster: int
    path: str
    quarantine: str | None
    bytes: int


@dataclass(frozen=True)
class SkippedCluster:
    cluster: int
    reason: str


@dataclass(frozen=True)
class RemovalResult:
    manifest: str | None
    removed: tuple[Removed, ...]
    skipped: tuple[SkippedCluster, ...]
    permanent: bool

    @property
    def bytes_freed(self) -> int:
        return sum(r.bytes for r in self.removed)


@dataclass(frozen=True)
class UndoResult:
    restored: tuple[str, ...]
    already_in_place: tuple[str, ...]
    problems: tuple[tuple[str, str], ...]


def sha256_file(path: str) -> str:
    """Content digest of a regular file, refusing to follow a symlink at ``path``."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def default_quarantine(roots: tuple[str, ...]) -> str:
    """``<first root>.imgdup-quarantine`` beside the first root: same file system (a rename,
    no copy) and outside every root (never scanned as a duplicate itself)."""
    first = roots[0]
    return os.path.join(os.path.dirname(first), os.path.basename(first) + QUARANTINE_SUFFIX)


def _check_unchanged(path: str, entry: FileEntry, digest: str) -> str | None:
    """Why ``path`` is no longer the file that was scanned, or None if it still is."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"{path} is gone ({exc.strerror})"
    if not stat.S_ISREG(st.st_mode):
        return f"{path} is no longer a regular file"
    if os.path.realpath(path) != path:
        return f"a folder on the path of {path} is now a symbolic link"
    if (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns) != (entry.inode, entry.device, entry.size, entry.mtime_ns):
        return f"{path} changed since the scan (inode, size or modification time)"
    try:
        if sha256_file(path) != digest:
            return f"{path} changed since the scan (content)"
    except OSError as exc:
        return f"{path} cannot be read ({exc.strerror})"
    return None


def _copy_exclusive(src: str, dst: str) -> None:
    """Copy to a new file (never replacing one), fsync it, keep timestamps and mode."""
    fd_in = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd_in, "rb") as fin:
        fd_out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd_out, "wb") as fout:
                shutil.copyfileobj(fin, fout, 1024 * 1024)
                fout.flush()
                os.fsync(fout.fileno())
        except BaseException:
            os.unlink(dst)
            raise
    shutil.copystat(src, dst, follow_symlinks=False)


def move_no_clobber(src: str, dst: str, digest: str) -> None:
    """Move a file to a path that must not exist yet; across file systems by verified copy."""
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    try:
        os.link(src, dst, follow_symlinks=False)  # fails if dst exists: no race with a check
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            _copy_exclusive(src, dst)
            if sha256_file(dst) != digest:
                os.unlink(dst)
                raise OSError(errno.EIO, "copy does not match the original", dst) from None
        elif os.path.lexists(dst):  # file system without hard links: rename after a check
            raise FileExistsError(errno.EEXIST, "already exists", dst) from None
        else:
            os.rename(src, dst)
            return
    os.unlink(src)


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
    roots = result.roots
    work = [c for c in result.clusters if c.removable]
    if not work:
        return RemovalResult(None, (), (), permanent)
    base = os.path.realpath(os.fspath(quarantine)) if quarantine is not None else default_quarantine(roots)
    for root in roots:
        if _inside(base, root) or _inside(root, base):
            raise RemovalError(f"the quarantine {base} must be outside the scanned folder {root}")
    run_dir = os.path.join(base, time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}")
    if os.path.lexists(run_dir):
        raise RemovalError(f"{run_dir} already exists")

    entries = []
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
        problem = _check_unchanged(c.keep.path, c.keep.entry, c.keep.digest)
        for m in c.removable:
            e = m.record.entry
            for name in (e.path, *e.aliases):
                problem = problem or _check_unchanged(name, e, m.record.digest)
        if problem:
            log.warning("cluster %d skipped: %s", c.id, problem)
            skipped.append(SkippedCluster(c.id, problem))
            continue
        for item in by_cluster[c.id]:
            try:
                if permanent:
                    os.unlink(item["path"])
                else:
                    move_no_clobber(item["path"], item["quarantine"], item["sha256"])
            except OSError as exc:
                reason = f"{item['path']}: {exc.strerror or exc}"
                log.warning("cluster %d: could not remove %s", c.id, reason)
                skipped.append(SkippedCluster(c.id, reason))
                break
            removed.append(Removed(c.id, item["path"], item["quarantine"], item["bytes"]))
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
    if doc.get("permanent"):
        raise ManifestError("the files of this manifest were deleted permanently; there is nothing to restore")
    restored: list[str] = []
    already: list[str] = []
    problems: list[tuple[str, str]] = []
    for item in doc["entries"]:
        path, q, digest = item["path"], item["quarantine"], item["sha256"]
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
                move_no_clobber(q, path, digest)
                restored.append(path)
            except OSError as exc:
                problems.append((path, f"cannot restore: {exc.strerror or exc}"))
    _prune_empty_dirs(os.path.join(os.path.dirname(os.fspath(manifest)), "files"))
    return UndoResult(tuple(restored), tuple(already), tuple(problems))


def _prune_empty_dirs(top: str) -> None:
    for folder, _dirs, _files in os.walk(top, topdown=False):
        with contextlib.suppress(OSError):
            os.rmdir(folder)
