"""File-system safety: the one place that moves, deletes, copies, locks and writes outputs.

Removal, undo, apply and every report writer go through these functions; none opens an output
path or unlinks a user's file in its own way. The rules they keep:

- **Anchored folders.** A file is reached through folder descriptors opened one component at a
  time from its root with ``O_NOFOLLOW`` (:func:`anchored`): a folder swapped for a symlink
  cannot redirect an action outside the root.
- **Act on the checked inode.** A name in a folder others may change is never unlinked
  directly: it is first renamed (atomic) into a private folder, checked there by descriptor
  against the expected :class:`Identity`, and only then unlinked; anything else is put back
  (:func:`unlink_checked`, :func:`move_out`).
- **Never replace.** A file is placed at a name others may use with ``link()`` (fails if the name
  exists) or ``O_EXCL`` (:func:`move_in`, :func:`copy_durable`).
- **Cross-device moves are copies**, done as: copy to a temporary name beside the target, fsync
  the file, give it the final name without replacing anything, fsync the folder, and only then
  unlink the source (checked as above). Owner, mode and times are kept. A kill leaves at most a
  temporary file named with :data:`PARTIAL_MARK`, never a partial file under a real name.
- **Locks cover nested trees.** :func:`lock_trees` takes an exclusive ``flock`` on every root and
  a shared one on every folder above it, so two holders of nested (or equal) roots always
  collide, while siblings do not.
- **Outputs** (:func:`write_output`) never follow a symbolic link and never replace a file imgdup
  did not write: an existing target is replaced (atomic rename) only when it is a regular file
  that carries the writer's own mark.

API (folder descriptors come from :func:`anchored`; every function raises ``OSError``, with
``ESTALE`` for "not the expected file", except the output functions, which raise
:class:`~imgdup.errors.OutputError` naming the path):

- ``anchored(path, root, create=False, at=None)``: context manager, ``(dir_fd, name)``;
- ``Identity.of(stat)`` / ``Identity.differs(stat)``: what a checked file was;
- ``unlink_checked(dir_fd, name, identity, digest=None)``: delete only the checked file;
- ``move_out(dir_fd, name, dst_dir_fd, dst, identity, ...)``: into a private folder (quarantine);
- ``move_in(src_dir_fd, src, dir_fd, name, ...)``: back to a shared folder, never replacing;
- ``drop_second_name(src_dir_fd, src, dir_fd, name)``: finish a move_in a kill cut after its link;
- ``link_again(src_dir_fd, src, dir_fd, name, identity)``: a deleted name back, from another name of it;
- ``copy_durable(src_fd, dst_dir_fd, dst, digest=None)``: the cross-device copy;
- ``remove_partials(top)``: delete the temporary copies a kill left under ``top``;
- ``put_back_staged(top)``: return the files a killed checked deletion left in its private folder;
- ``one_step()``: hold Ctrl-C back for the length of one file's action;
- ``lock_trees(roots)``: context manager, the nested-root lock;
- ``not_private(stat)``: why a folder for the user's removed files is not theirs alone;
- ``check_output(path, is_ours)`` / ``write_output(path, data, is_ours, dir_fd=None)``: output files, where
  ``is_ours(first_4_KiB) -> bool`` recognises an earlier output of the same kind.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import hashlib
import os
import pwd
import re
import secrets
import signal
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from .errors import OutputError

PARTIAL_MARK = ".imgdup-partial-"  # temporary copies; undo deletes these (and only these)
QUARANTINE_SUFFIX = ".imgdup-quarantine"  # the default quarantine: <first root>.imgdup-quarantine
MANIFEST_SCHEMA = "imgdup.manifest/1"
_PARTIAL = re.compile(r"\..*" + re.escape(PARTIAL_MARK) + "[0-9a-f]{8}", re.DOTALL)
_STAGE_PREFIX = ".imgdup-unlink-"  # private folders a name is renamed into before it is unlinked
_CHUNK = 1024 * 1024
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0)


@dataclass(frozen=True)
class Identity:
    """What a checked file was: a name is acted on only while it still is this file."""

    device: int
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> Identity:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def differs(self, st: os.stat_result) -> str | None:
        """Why ``st`` is not this file, or None."""
        if not stat.S_ISREG(st.st_mode):
            return "no longer a regular file"
        if (st.st_dev, st.st_ino) != (self.device, self.inode):
            return "a different file now has this name"
        if (st.st_size, st.st_mtime_ns) != (self.size, self.mtime_ns):
            return "changed (size or modification time)"
        return None


def check_as_scanned(path: str, size: int, mtime_ns: int) -> None:
    """Raise ValueError unless ``path`` is still a regular file of the scanned size and modification
    time (what a removal checks): a preview drawn from it would show another picture under the
    scanned one's name. A named pipe is refused before its open blocks."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise ValueError("no longer a regular file")
    if (st.st_size, st.st_mtime_ns) != (size, mtime_ns):
        raise ValueError("changed since the scan (size or modification time)")


def inside(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or below it (both absolute and normalised)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


# Indirections so a test can stage a cross-device move on one file system.
def _rename_between(src: str, dst: str, *, src_dir_fd: int, dst_dir_fd: int) -> None:
    os.rename(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)


def _link_between(src: str, dst: str, *, src_dir_fd: int, dst_dir_fd: int) -> None:
    os.link(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd, follow_symlinks=False)


# --- anchored folders ------------------------------------------------------------------------


@contextlib.contextmanager
def anchored(path: str, root: str, *, create: bool = False, at: int | None = None) -> Iterator[tuple[int, str]]:
    """A descriptor of ``path``'s folder reached from ``root`` without following any symbolic
    link below ``root``, and the file's name in it. ``create`` makes missing folders (0o755).
    ``at``: ``root`` already open (a run folder held since it was made), used instead of its
    name, which someone else may have pointed at another folder since."""
    parts = os.path.relpath(path, root).split(os.sep)
    if parts[0] == os.pardir or parts == ["."]:
        raise OSError(errno.EXDEV, "outside its root", path)
    fd = os.open(root, _DIR_FLAGS) if at is None else os.dup(at)
    try:
        for part in parts[:-1]:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            try:
                inner = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise OSError(exc.errno, "a folder on the path is a symbolic link or a file", path) from None
                raise
            os.close(fd)
            fd = inner
        yield fd, parts[-1]
    finally:
        os.close(fd)


def _fsync_dir(dir_fd: int) -> None:
    with contextlib.suppress(OSError):  # some file systems refuse fsync on folders
        os.fsync(dir_fd)


def _free(name: str, dir_fd: int) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return True
    return False


def _place(src: str, src_dir_fd: int, dst: str, dst_dir_fd: int) -> None:
    """Give ``src`` the name ``dst`` and drop ``src``; never replaces ``dst``."""
    link = os.link if src_dir_fd == dst_dir_fd else _link_between  # one folder: one file system
    rename = os.rename if src_dir_fd == dst_dir_fd else _rename_between
    try:
        link(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)  # fails if dst exists
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
            raise
        # a file system without hard links (or a folder), or a file of another user's under
        # fs.protected_hardlinks: a rename that replaces nothing
        if not _free(dst, dst_dir_fd):
            raise FileExistsError(errno.EEXIST, "already exists", dst) from None
        _rename_new(src, src_dir_fd, dst, dst_dir_fd, rename)
        return
    _drop_old_name(src, src_dir_fd, dst, dst_dir_fd)


@functools.cache
def _renameat2() -> Callable[[int, bytes, int, bytes, int], int] | None:
    """libc's ``renameat2`` (Linux, glibc 2.28+ or musl), or None where there is none."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    fn.restype = ctypes.c_int
    return fn


_RENAME_NOREPLACE = 1  # linux/fs.h


def _rename_new(src: str, src_dir_fd: int, dst: str, dst_dir_fd: int, rename: Callable[..., None]) -> None:
    """Rename ``src`` to ``dst``, which the caller found free: with ``RENAME_NOREPLACE`` where the
    system and file system have it, so a file made at ``dst`` since that check is not replaced
    (undo never overwrites anything of yours, QA pass 35); else a plain ``rename``."""
    fn = _renameat2()
    if fn is not None:
        if fn(src_dir_fd, os.fsencode(src), dst_dir_fd, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code == errno.EEXIST:
            raise FileExistsError(errno.EEXIST, "already exists", dst)
        if code not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # those: the flag is not supported
            raise OSError(code, os.strerror(code), dst)
    rename(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)


def _drop_old_name(src: str, src_dir_fd: int, dst: str, dst_dir_fd: int) -> None:
    """Unlink ``src`` once ``dst`` is a new name of its file. If that fails (a quarantine made
    read-only), ``dst`` is taken back while it is still that file, so the file keeps the one name
    it had, and the error is raised: both names stayed, undo said "left in the quarantine" of a
    file back at its name, and every later undo took it for a hard link of its quarantined copy."""
    try:
        os.unlink(src, dir_fd=src_dir_fd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            old = os.stat(src, dir_fd=src_dir_fd, follow_symlinks=False)
            new = os.stat(dst, dir_fd=dst_dir_fd, follow_symlinks=False)
            if (old.st_dev, old.st_ino) == (new.st_dev, new.st_ino):
                os.unlink(dst, dir_fd=dst_dir_fd)
        raise OSError(exc.errno, f"{exc.strerror} (it cannot leave the folder it is in)", src) from None


def link_again(src_dir_fd: int, src: str, dir_fd: int, name: str, expected: Identity) -> None:
    """Give the file ``src``, while it is the ``expected`` file, the new name ``name`` (never
    replacing one): a name of it deleted while another of its names could not be."""
    problem = expected.differs(os.stat(src, dir_fd=src_dir_fd, follow_symlinks=False))
    if problem is not None:
        raise OSError(errno.ESTALE, problem, src)
    os.link(src, name, src_dir_fd=src_dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)


def drop_second_name(src_dir_fd: int, src: str, dir_fd: int, name: str) -> None:
    """Finish a move into ``name`` that was cut between its link and its unlink: ``src`` and
    ``name`` are two names of one file, and ``src`` goes (:func:`move_in` would have dropped it
    next). If it cannot, ``name`` stays: unlike a fresh move's, it was there before this call
    (taken back, the file the user saw restored left its folder). Refused (EINVAL) when the two
    are one name, not two (a folder reached through the other's): unlinking it deleted the file."""
    here, there = os.fstat(dir_fd), os.fstat(src_dir_fd)
    st = os.stat(src, dir_fd=src_dir_fd, follow_symlinks=False)
    if st.st_nlink < 2 or ((here.st_dev, here.st_ino) == (there.st_dev, there.st_ino) and name == src):
        raise OSError(errno.EINVAL, "the two names are one", src)
    os.unlink(src, dir_fd=src_dir_fd)


# --- acting on the checked inode -------------------------------------------------------------


def sha256_fd(fd: int) -> str:
    """SHA-256 of an open file from its start (the offset is moved)."""
    os.lseek(fd, 0, os.SEEK_SET)
    h = hashlib.sha256()
    while chunk := os.read(fd, _CHUNK):
        h.update(chunk)
    return h.hexdigest()


def _verify(dir_fd: int, name: str, expected: Identity, digest: str | None) -> str | None:
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        return "a symbolic link now has this name" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))
    try:
        problem = expected.differs(os.fstat(fd))
        if problem is None and digest is not None and sha256_fd(fd) != digest:
            problem = "changed (content)"
        return problem
    finally:
        os.close(fd)


def unlink_checked(dir_fd: int, name: str, expected: Identity, *, digest: str | None = None) -> None:
    """Delete ``name`` only if it is the ``expected`` file (and has ``digest``).

    The name is first renamed into a private folder beside it (same file system, mode 0o700), so
    the file checked is the file deleted even if another one is renamed over the name meanwhile.
    Raises ``OSError(ESTALE)`` when it was not the expected file (the file is put back; if its
    name was taken meanwhile it stays in the private folder, named in the message).
    """
    stage = _STAGE_PREFIX + secrets.token_hex(6)
    try:
        os.mkdir(stage, 0o700, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        # A full disk (or quota) has no room for a new folder, and no duplicate could be deleted
        # there, the one place a user most needs it. A new name in the same folder needs none.
        _unlink_checked_beside(dir_fd, name, stage, expected, digest, exc)
        return
    stage_fd = os.open(stage, _DIR_FLAGS, dir_fd=dir_fd)
    keep_stage = False
    try:
        os.rename(name, name, src_dir_fd=dir_fd, dst_dir_fd=stage_fd)  # same file system: one folder down
        problem = _verify(stage_fd, name, expected, digest)
        if problem is None:
            os.unlink(name, dir_fd=stage_fd)
            return
        if _put_back(stage_fd, name, dir_fd, name) is not None:
            keep_stage = True
            problem += f"; it was left in {stage}"
        raise OSError(errno.ESTALE, problem, name)
    finally:
        os.close(stage_fd)
        if not keep_stage:
            with contextlib.suppress(OSError):
                os.rmdir(stage, dir_fd=dir_fd)


def _unlink_checked_beside(
    dir_fd: int, name: str, stage: str, expected: Identity, digest: str | None, full: OSError
) -> None:
    """:func:`unlink_checked` without a private folder: the name is renamed to ``<stage>-<name>``
    in its own folder (atomic, as into the folder), checked by descriptor, then unlinked; a kill
    between leaves it under that name, which a scan passes over and :func:`put_back_staged`
    returns. A name too long to carry the mark keeps the disk's error."""
    staged = f"{stage}-{name}"
    if len(os.fsencode(staged)) > 255 or not _free(staged, dir_fd):
        raise full
    os.rename(name, staged, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    problem = _verify(dir_fd, staged, expected, digest)
    if problem is None:
        os.unlink(staged, dir_fd=dir_fd)
        return
    if _put_back(dir_fd, staged, dir_fd, name) is not None:
        problem += f"; it was left as {staged}"
    raise OSError(errno.ESTALE, problem, name)


_ZEROS = bytes(_CHUNK)


def _copy_data(src: int, dst: int) -> str:
    """Copy an open file's bytes; returns their SHA-256. A chunk of zeros is skipped over, left a
    hole: a sparse file of a few KiB on disk (a hostile one declares gigabytes) was written out in
    full into a quarantine on another disk, and again into the dataset by its undo."""
    os.lseek(src, 0, os.SEEK_SET)
    h = hashlib.sha256()
    end = 0
    while chunk := os.read(src, _CHUNK):
        h.update(chunk)
        end += len(chunk)
        if chunk == _ZEROS[: len(chunk)]:
            os.lseek(dst, end, os.SEEK_SET)
            continue
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst, view) :]
    os.ftruncate(dst, end)  # the size, where the file ends in a hole
    return h.hexdigest()


def _copy_xattrs(src: int, dst: int) -> None:
    """The extended attributes of an open file (where it was downloaded from, a tool's label, an
    ACL), each where the destination's file system and the caller's rights allow: a move across
    disks and its undo dropped them all."""
    if not hasattr(os, "listxattr"):  # Linux only
        return
    try:
        names = os.listxattr(src)
    except OSError:
        return  # a file system without them
    for name in names:
        with contextlib.suppress(OSError):  # security.* needs privileges; some names are refused
            os.setxattr(dst, name, os.getxattr(src, name))


def copy_durable(src_fd: int, dst_dir_fd: int, dst: str, *, digest: str | None = None) -> None:
    """Copy an open regular file to the new name ``dst`` (never replacing one), durably.

    Written under a temporary name (:data:`PARTIAL_MARK`), fsynced, with the source's owner,
    extended attributes and mode (each where allowed) and times, checked against
    ``digest``, then named ``dst`` and the
    folder fsynced: ``dst`` is either absent or complete.
    """
    st = os.fstat(src_fd)
    tmp = f"{_tmp_prefix(dst)}{PARTIAL_MARK}{secrets.token_hex(4)}"
    out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dst_dir_fd)
    placed = False
    try:
        try:
            got = _copy_data(src_fd, out)
            if digest is not None and got != digest:
                raise OSError(errno.EIO, "the copy does not match the checked file", dst)
            with contextlib.suppress(PermissionError):
                os.fchown(out, st.st_uid, st.st_gid)
            _copy_xattrs(src_fd, out)
            # A FAT or exFAT stick (a CIFS share) has one mode for every file, set at mount time,
            # and refuses any other: a file of mode 0664 or 0600 could not be moved there at all.
            with contextlib.suppress(PermissionError):
                os.fchmod(out, stat.S_IMODE(st.st_mode))
            os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
            os.fsync(out)
        finally:
            os.close(out)
        _place(tmp, dst_dir_fd, dst, dst_dir_fd)
        placed = True
        _fsync_dir(dst_dir_fd)
    finally:
        if not placed:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dst_dir_fd)


def move_out(
    dir_fd: int,
    name: str,
    dst_dir_fd: int,
    dst: str,
    expected: Identity,
    *,
    digest: str | None = None,
    link_from: tuple[int, str] | None = None,
) -> bool:
    """Move the checked file ``name`` (in a folder others may change) to ``dst`` in a private
    folder (which no one else writes to). Returns True when it was a copy (cross-device).

    Same file system: one atomic rename, then the moved file is checked by descriptor (and
    ``digest``); a file that is not ``expected`` is put back and ``OSError(ESTALE)`` raised. Across file systems:
    :func:`copy_durable` (or a hard link to ``link_from``, an earlier copy of the same inode in
    this run, so hard links stay together), then :func:`unlink_checked`; when that fails, the
    copy is deleted again (the original is still there).
    """
    if not _free(dst, dst_dir_fd):
        raise FileExistsError(errno.EEXIST, "already exists", dst)
    try:
        _rename_between(name, dst, src_dir_fd=dir_fd, dst_dir_fd=dst_dir_fd)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    else:
        # The content too: a file rewritten in place after its cluster's check (rsync --inplace
        # -t: same inode, size and time) was moved without a word, and undo refused it as
        # modified (QA pass 35). Read here, in the private folder no one else names, it is the
        # file that moved; that check just read it, so its bytes are mostly still in the page cache.
        problem = _verify(dst_dir_fd, dst, expected, digest)
        if problem is not None:
            if _put_back(dst_dir_fd, dst, dir_fd, name) is not None:
                problem += f"; it was left at {dst} in the quarantine"
            raise OSError(errno.ESTALE, problem, name)
        _fsync_dir(dst_dir_fd)
        return False
    if link_from is not None:
        os.link(link_from[1], dst, src_dir_fd=link_from[0], dst_dir_fd=dst_dir_fd, follow_symlinks=False)
    else:
        src = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
        try:
            problem = expected.differs(os.fstat(src))
            if problem is not None:
                raise OSError(errno.ESTALE, problem, name)
            copy_durable(src, dst_dir_fd, dst, digest=digest)
        finally:
            os.close(src)
    try:
        unlink_checked(dir_fd, name, expected, digest=digest)
    except OSError:
        # The original was not deleted (its folder not writable, say), so the copy just made is
        # one too many, and in no manifest once its cluster is skipped: it stayed in the
        # quarantine. Dropped only while the original is still under its name, unchanged.
        if _verify(dir_fd, name, expected, None) is None:
            with contextlib.suppress(OSError):
                os.unlink(dst, dir_fd=dst_dir_fd)
        raise
    return True


def _put_back(src_dir_fd: int, src: str, dir_fd: int, name: str) -> str | None:
    """Return a file taken by mistake to its name, if that name is still free: None once it is
    back, else why not, "taken" when the name is (any other error was reported as taken too)."""
    try:
        _place(src, src_dir_fd, name, dir_fd)
    except FileExistsError:
        return "taken"
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def move_in(
    src_dir_fd: int,
    src: str,
    dir_fd: int,
    name: str,
    *,
    digest: str | None = None,
    link_from: tuple[int, str] | None = None,
    partials: list[str] | None = None,
) -> bool:
    """Move ``src`` from a private folder to the new name ``name`` in a folder others may use,
    never replacing anything there. Returns True when it was a copy (cross-device).

    ``link_from`` is an earlier restored name of the same file (hard links come back together).
    A temporary copy of ``name`` that a kill cut short is deleted first: looked for in
    ``partials`` (:func:`partials_in` of this folder, read once by a caller that restores many
    files there), else in a listing of the folder.
    """
    _drop_partials(dir_fd, name, partials)
    if link_from is not None:
        try:
            # both names on the original file system (unless the root spans several)
            os.link(link_from[1], name, src_dir_fd=link_from[0], dst_dir_fd=dir_fd, follow_symlinks=False)
        except OSError as exc:
            # Another disk, or a file the user may not link (a colleague's, fs.protected_hardlinks:
            # the second name was "not restored: Operation not permitted" until a second undo, QA
            # pass 35): the quarantined name is placed instead, one file with the first on one disk.
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EACCES, errno.EMLINK):
                raise
        else:
            _drop_old_name(src, src_dir_fd, name, dir_fd)
            return False
    try:
        _place(src, src_dir_fd, name, dir_fd)
        _fsync_dir(dir_fd)
        return False
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    fd = os.open(src, _READ_FLAGS, dir_fd=src_dir_fd)
    try:
        copy_durable(fd, dir_fd, name, digest=digest)
    finally:
        os.close(fd)
    # The file is back, a whole checked copy; a quarantine that cannot be changed (a read-only
    # snapshot of it) keeps its own, which a later undo finds in place (it said "left in the
    # quarantine" of a file restored).
    with contextlib.suppress(OSError):
        os.unlink(src, dir_fd=src_dir_fd)
    return True


def cut_name(name: str, size: int) -> str:
    """The first ``size`` *bytes* of a file name (a multi-byte character cut in two stays exact
    as bytes: os.fsdecode), for a name imgdup makes from another within NAME_MAX (255 bytes)."""
    return os.fsdecode(os.fsencode(name)[:size])


def _tmp_prefix(name: str) -> str:
    """A temporary name's start: a dot and the first 100 bytes of ``name``, so that with the mark
    and 8 hex digits it stays within NAME_MAX whatever the script. It took 100 characters: 80 CJK
    characters are 240 bytes, their temporary name 265, and such a file could be neither moved to
    a quarantine on another disk nor restored from one ("File name too long")."""
    return "." + cut_name(name, 100)


def _partial_name(name: str) -> re.Pattern[str]:
    # Either start: a copy cut short by an imgdup from before _tmp_prefix took 100 characters.
    starts = sorted({_tmp_prefix(name), f".{name[:100]}"})
    return re.compile("(?:" + "|".join(map(re.escape, starts)) + ")" + re.escape(PARTIAL_MARK) + "[0-9a-f]{8}")


def partials_in(dir_fd: int) -> list[str]:
    """The names in a folder that may be temporary copies (:data:`PARTIAL_MARK`). Undo reads
    each folder once: a listing per restored file read k x n names for k files put back into a
    flat folder of n (12,490 into 40,000: 143 s, against 10 s to remove them)."""
    return [other for other in os.listdir(dir_fd) if PARTIAL_MARK in other]


def _drop_partials(dir_fd: int, name: str, partials: list[str] | None = None) -> None:
    pattern = _partial_name(name)
    for other in partials_in(dir_fd) if partials is None else list(partials):
        if pattern.fullmatch(other):
            if partials is not None:
                partials.remove(other)
            with contextlib.suppress(OSError):
                if stat.S_ISREG(os.stat(other, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                    os.unlink(other, dir_fd=dir_fd)


def remove_partials(top: str) -> list[str]:
    """Delete the temporary copies (:data:`PARTIAL_MARK`) a killed copy left under ``top``,
    walking without following symbolic links; returns their paths. Nothing else is deleted."""
    gone = []
    for folder, _dirs, files in os.walk(top):
        for name in files:
            if _PARTIAL.fullmatch(name):
                path = os.path.join(folder, name)
                with contextlib.suppress(OSError):
                    if stat.S_ISREG(os.lstat(path).st_mode):
                        os.unlink(path)
                        gone.append(path)
    return gone


_STAGE = re.compile(re.escape(_STAGE_PREFIX) + "[0-9a-f]{12}")


_STAGED_FILE = re.compile(re.escape(_STAGE_PREFIX) + "[0-9a-f]{12}-(.+)", re.DOTALL)


def is_stage(name: str) -> bool:
    """True for the name of a private folder :func:`unlink_checked` renames a file into."""
    return _STAGE.fullmatch(name) is not None


def staged_name(name: str) -> str | None:
    """The original name of a file :func:`unlink_checked` renamed beside itself (a full disk), or
    None for any other name."""
    m = _STAGED_FILE.fullmatch(name)
    return m.group(1) if m else None


def put_back_staged(top: str) -> list[tuple[str, str | None]]:
    """Return to their names the files a killed :func:`unlink_checked` left in its private folders
    under ``top`` (it was stopped between the rename and the unlink, or a wrong file's name was
    taken). A file is never deleted here: it goes back only to a free name; otherwise it stays
    where it is. Returns ``(path, problem)`` per file: the restored path and None, or the path
    it stays at and why. Empty private folders are removed. No symbolic link is followed.
    """
    out: list[tuple[str, str | None]] = []
    for folder, dirs, files in os.walk(top):
        for stage in [d for d in dirs if is_stage(d)]:
            dirs.remove(stage)  # never walk into it
            with contextlib.suppress(OSError), anchored(os.path.join(folder, stage), top) as (parent_fd, _):
                _put_back_stage(parent_fd, folder, stage, out)
        for staged in [f for f in files if staged_name(f)]:
            with contextlib.suppress(OSError), anchored(os.path.join(folder, staged), top) as (parent_fd, _):
                _put_back_staged_file(parent_fd, folder, staged, out)
    return out


def put_back_staged_in(dir_fd: int, folder: str) -> list[tuple[str, str | None]]:
    """:func:`put_back_staged` for the one folder ``dir_fd`` (named ``folder``), not those below."""
    out: list[tuple[str, str | None]] = []
    for stage in sorted(n for n in os.listdir(dir_fd) if is_stage(n) or staged_name(n)):
        with contextlib.suppress(OSError):
            if is_stage(stage):
                _put_back_stage(dir_fd, folder, stage, out)
            else:
                _put_back_staged_file(dir_fd, folder, stage, out)
    return out


def _put_back_staged_file(dir_fd: int, folder: str, staged: str, out: list[tuple[str, str | None]]) -> None:
    """Return a file renamed beside itself (:func:`_unlink_checked_beside`) to its name, if free."""
    name = staged_name(staged) or ""
    if not stat.S_ISREG(os.stat(staged, dir_fd=dir_fd, follow_symlinks=False).st_mode):
        return
    why = _put_back(dir_fd, staged, dir_fd, name)
    out.append((os.path.join(folder, name if why is None else staged), _not_back(why, name, folder)))


def _not_back(why: str | None, name: str, folder: str) -> str | None:
    """What to tell of a file :func:`_put_back` could not return: the name was taken, or the
    folder could not be changed (a read-only folder was reported as the name "is taken")."""
    if why is None:
        return None
    if why == "taken":
        return f"{name} is taken in {folder}; move it back yourself"
    return f"cannot put it back in {folder} ({why}); move it back yourself"


def _put_back_stage(parent_fd: int, folder: str, stage: str, out: list[tuple[str, str | None]]) -> None:
    """Put back the files of the private folder ``stage``; appends to ``out`` as it goes. One
    that cannot be opened (another user's: a killed ``sudo imgdup --permanent``) is reported, not
    passed over: each scan said that the next removal would put its file back, and none did."""
    try:
        stage_fd = os.open(stage, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        why = f"cannot open it ({exc.strerror}); put its files back yourself"
        with contextlib.suppress(OSError):
            uid = os.stat(stage, dir_fd=parent_fd, follow_symlinks=False).st_uid
            if uid != os.geteuid():
                why = (
                    f"cannot open it ({exc.strerror}): it belongs to {owner_name(uid)}, whose removal was "
                    "interrupted; only that user (or root) can put its files back (a run with --remove as them does)"
                )
        out.append((os.path.join(folder, stage), why))
        return
    try:
        for name in sorted(os.listdir(stage_fd)):
            if not stat.S_ISREG(os.stat(name, dir_fd=stage_fd, follow_symlinks=False).st_mode):
                continue
            failed = _put_back(stage_fd, name, parent_fd, name)
            path = os.path.join(folder, name) if failed is None else os.path.join(folder, stage, name)
            out.append((path, _not_back(failed, name, folder)))
    finally:
        os.close(stage_fd)
    with contextlib.suppress(OSError):
        os.rmdir(stage, dir_fd=parent_fd)


@contextlib.contextmanager
def one_step() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) and SIGTERM back until the block ends, so a move or a checked
    deletion is never cut between its rename and its check; the KeyboardInterrupt comes right
    after. Only in the main thread (where Python delivers signals); the previous handlers are
    restored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: caught.append(signum)) for sig in _HELD}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught:
            raise KeyboardInterrupt  # also after a failed step: the user (or the system) asked to stop


_HELD = (signal.SIGINT, signal.SIGTERM)


# --- private folders --------------------------------------------------------------------------


def owner_name(uid: int) -> str:
    """``alice (uid 1001)``, or ``uid 1001`` for a number with no account here."""
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def not_private(st: os.stat_result) -> str | None:
    """Why a folder that is to hold the user's removed files is not theirs alone, or None.

    It must belong to the user (or root, who can read everything anyway) and be writable by no
    one else, unless sticky (as /tmp): no one else can then rename or delete the user's folders in
    it. Another user's ``data.imgdup-quarantine`` (mode 777, made in a shared folder before the
    user's run) let her swap the run folder for her own and receive, read and delete the files
    moved there (QA pass 36); ssh refuses such a folder for a key for the same reason."""
    if st.st_uid not in (os.geteuid(), 0):
        return f"belongs to {owner_name(st.st_uid)}"
    if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
        who = "others" if st.st_mode & 0o002 else "its group"
        return f"is writable by {who} (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


# --- locks ------------------------------------------------------------------------------------


def ancestors(path: str) -> list[str]:
    """Every folder above ``path`` (absolute, normalised), from ``/`` down."""
    out = []
    parent = os.path.dirname(path)
    while parent and parent != path:
        out.append(parent)
        path, parent = parent, os.path.dirname(parent)
    return out[::-1]


@contextlib.contextmanager
def lock_trees(roots: Iterable[str]) -> Iterator[None]:
    """Hold every root exclusively and every folder above a root shared; never waits.

    Two holders whose roots are equal or nested always collide: the deeper one needs a shared
    lock on a folder the other holds exclusively. Siblings only share their common ancestors.
    Locks are ``flock`` on the folders themselves (keyed by inode, so every path to a folder and
    every user sees the same lock; released by the kernel when the process dies). A folder
    above a root that cannot be opened for reading is passed over: only holders that can read
    it contend there. Raises ``BlockingIOError`` naming the folder held by someone else.
    """
    roots = [os.path.abspath(r) for r in roots]
    wanted: dict[str, int] = {}
    for root in roots:
        for folder in ancestors(root):
            wanted.setdefault(folder, fcntl.LOCK_SH)
    for root in roots:
        wanted[root] = fcntl.LOCK_EX
    # One lock a folder, however many paths lead to it: two roots that are one folder through a
    # bind mount took two locks on it, and the second failed on the first, "another imgdup removal
    # or undo is running" (QA pass 33). A folder that cannot be read is passed over as below.
    by_inode: dict[tuple[int, int], str] = {}
    for folder in sorted(wanted):
        try:
            st = os.stat(folder)
        except OSError:
            continue
        first = by_inode.setdefault((st.st_dev, st.st_ino), folder)
        if first != folder:
            modes = (wanted[first], wanted.pop(folder))
            wanted[first] = fcntl.LOCK_EX if fcntl.LOCK_EX in modes else fcntl.LOCK_SH
    fds: list[int] = []
    try:
        for folder in sorted(wanted):
            try:
                fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            except OSError:
                if wanted[folder] == fcntl.LOCK_EX:
                    raise
                continue
            fds.append(fd)
            try:
                fcntl.flock(fd, wanted[folder] | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BlockingIOError(errno.EWOULDBLOCK, "locked by another process", folder) from None
        yield
    finally:
        for fd in fds:
            os.close(fd)


# --- output files -----------------------------------------------------------------------------

Mark = Callable[[bytes], bool]


def _existing_output(dir_fd: int, name: str, path: str, is_ours: Mark) -> os.stat_result | None:
    """The stat of an existing output that may be replaced, None when the name is free."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        raise OutputError(f"{path} is a symbolic link; imgdup never writes through one")
    if not stat.S_ISREG(st.st_mode):
        raise OutputError(f"{path} exists and is not a regular file")
    fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    try:
        head = os.read(fd, 4096)
    finally:
        os.close(fd)
    if not is_ours(head):
        raise OutputError(
            f"{path} exists and was not written by imgdup; not overwritten (remove it or pick another name)"
        )
    return st


def check_output(path: str, is_ours: Mark) -> None:
    """Raise :class:`OutputError` now if :func:`write_output` could not write ``path`` (a missing
    or unwritable folder, a symlink, a file imgdup did not write): checked before a long scan."""
    folder = os.path.dirname(os.path.abspath(path)) or os.sep
    try:
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: folder {folder}: {exc.strerror or exc}", errno=exc.errno) from None
    try:
        _existing_output(dir_fd, os.path.basename(path), path, is_ours)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputError(f"cannot write {path}: folder {folder} is not writable")
    finally:
        os.close(dir_fd)


def write_output(path: str, data: bytes, is_ours: Mark, *, dir_fd: int | None = None) -> None:
    """Write an output file: a new name, or an earlier imgdup output (``is_ours`` on its first
    4 KiB) replaced by one atomic rename; never through a symbolic link, never anything else.

    Written to a temporary name (``O_EXCL | O_NOFOLLOW``) and fsynced first, so a reader sees
    the old file or the whole new one. Errors name ``path``, never the temporary file.
    ``dir_fd``: ``path``'s folder already open (a run folder held since it was made), used
    instead of its name.
    """
    folder = os.path.dirname(os.path.abspath(path)) or os.sep
    name = os.path.basename(path)
    try:
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY) if dir_fd is None else os.dup(dir_fd)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: folder {folder}: {exc.strerror or exc}", errno=exc.errno) from None
    tmp = f"{_tmp_prefix(name)}{PARTIAL_MARK}{secrets.token_hex(4)}"
    try:
        old = _existing_output(dir_fd, name, path, is_ours)
        try:
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666, dir_fd=dir_fd)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(out, view) :]
                os.fsync(out)
            finally:
                os.close(out)
            if old is None:
                _place(tmp, dir_fd, name, dir_fd)
            else:
                again = _existing_output(dir_fd, name, path, is_ours)
                if again is None or (again.st_dev, again.st_ino) != (old.st_dev, old.st_ino):
                    raise OutputError(f"{path} changed while imgdup was writing it; not overwritten")
                os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            _fsync_dir(dir_fd)
        except FileExistsError:
            raise OutputError(f"{path} appeared while imgdup was writing it; not overwritten") from None
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}", errno=exc.errno) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        os.close(dir_fd)
