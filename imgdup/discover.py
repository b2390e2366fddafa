"""Find candidate image files under the roots: regular files only, sorted, hard links folded.

Symbolic links are never followed, so a scan cannot escape its roots or loop; special files
(FIFOs, sockets, devices) are never opened, so they cannot hang the run.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import struct
from collections.abc import Callable, Iterable, Iterator
from typing import Literal

from .errors import UsageError
from .fsafe import MANIFEST_SCHEMA, PARTIAL_MARK, QUARANTINE_SUFFIX, is_stage, staged_name
from .models import UNLISTED_FOLDER, FileEntry, HashFailure, Skipped

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".bmp", ".dib", ".tif", ".tiff", ".webp",
     ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".ico", ".mpo",
     ".heic", ".heif", ".avif"}  # read when this installation can (hashing.optional_formats), else failures
)  # fmt: skip

# Camera RAW files. Most are TIFF containers whose first IFD, the one Pillow reads, is a small
# embedded preview (256x171 in a DNG), not the sensor picture: hashed by it, a RAW was removed
# as a smaller copy of the camera's own JPEG of the shot (QA pass 35). Never scanned.
RAW_EXTENSIONS = frozenset(
    {".dng", ".nef", ".nrw", ".cr2", ".cr3", ".crw", ".arw", ".srf", ".sr2", ".pef", ".srw", ".3fr",
     ".erf", ".kdc", ".dcr", ".mos", ".iiq", ".mef", ".orf", ".rw2", ".rwl", ".raf", ".mrw", ".x3f",
     ".fff", ".gpr"}
)  # fmt: skip
RAW_REASON = "camera RAW file: imgdup cannot read its RAW picture, only the small preview embedded in it; not scanned"
_DNG_VERSION = 50706  # a TIFF tag only DNG files carry, in their first IFD
_TIFF_EXTENSIONS = frozenset({".tif", ".tiff"})

# Leading bytes of the formats hashing may open; used to recognise images without a known
# extension (e.g. "IMG_0001" or "photo.dat") without handing every file to Pillow.
_MAGIC: tuple[bytes, ...] = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
)
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*")  # little-endian, big-endian
# "BM" alone is no signature (a CSV starting "BMI,age" was read as a broken BMP, exit 3: QA pass
# 35): a BMP's DIB header, right after its 14-byte file header, starts with its own size.
_DIB_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})


def normalise_roots(roots: Iterable[str | os.PathLike[str]]) -> tuple[str, ...]:
    """Absolute, real, de-duplicated roots; a root nested in another is dropped (same files)."""
    out: list[str] = []
    for root in roots:
        if not os.fspath(root):  # an unset shell variable: never the current folder by accident
            raise UsageError("an empty folder name is not a folder to scan (an unset variable?)")
        path = os.path.realpath(os.fspath(root))
        if not os.path.isdir(path):
            raise UsageError(f"not a directory: {os.fspath(root)}")
        if path not in out:
            out.append(path)
    out.sort()
    kept: list[str] = []
    for path in out:
        if not any(path == k or path.startswith(k.rstrip(os.sep) + os.sep) for k in kept):
            kept.append(path)
    return tuple(kept)


def image_kind(path: str) -> Literal["image", "raw"] | None:
    """``"image"`` for a file to scan, ``"raw"`` for a camera RAW file (never scanned: listed as
    skipped), None for neither. By the name, else by the first bytes; a TIFF's first IFD is read
    too, whatever its name (a DNG is a TIFF): small header reads, no decode."""
    ext = os.path.splitext(path)[1].lower()
    if ext in RAW_EXTENSIONS:
        return "raw"
    if ext in IMAGE_EXTENSIONS and ext not in _TIFF_EXTENSIONS:
        return "image"
    # A .tif that cannot be opened is a candidate still: hashing lists it as a failure.
    named: Literal["image"] | None = "image" if ext in IMAGE_EXTENSIONS else None
    try:
        # O_NONBLOCK|O_NOFOLLOW: a file swapped for a FIFO or a symlink since the listing
        # must neither hang the scan nor lead it outside the root.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return named
            head = os.read(fd, 32)
            if head.startswith(_TIFF_MAGIC):
                return "raw" if _is_dng(fd, head) else "image"
        finally:
            os.close(fd)
    except OSError:
        return named
    if named or head.startswith(_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "image"
    return "image" if head[:2] == b"BM" and int.from_bytes(head[14:18], "little") in _DIB_SIZES else None


def _is_dng(fd: int, head: bytes) -> bool:
    """Whether a TIFF's first IFD carries DNGVersion (a tag count and the tag table, read alone)."""
    if len(head) < 8:
        return False
    order = "<" if head[:2] == b"II" else ">"
    (at,) = struct.unpack(order + "I", head[4:8])
    count = os.pread(fd, 2, at)
    if len(count) < 2:
        return False
    table = os.pread(fd, 12 * min(struct.unpack(order + "H", count)[0], 1024), at + 2)  # a DNG's holds ~60
    return any(struct.unpack_from(order + "H", table, i)[0] == _DNG_VERSION for i in range(0, len(table) - 1, 12))


def looks_like_image(path: str) -> bool:
    """True when the name or the first bytes say image (a camera RAW file too: it is one, which
    the scan lists as skipped); reading a header is cheap and safe."""
    return image_kind(path) is not None


_STAGE_REASON = (
    "left by an interrupted --permanent removal (its file was being deleted); not scanned. "
    "The next run with --remove puts the file back first, or says why it cannot"
)


_QUARANTINE_REASON = (
    "an imgdup quarantine (files removed as duplicates, with their manifest); not scanned: its files "
    "would be kept over the dataset's own copies. imgdup --undo MANIFEST puts them back"
)
_PARTIAL_REASON = "a temporary copy left by an interrupted move across disks; not scanned (the next undo deletes it)"


def _is_run_folder(entries: list[os.DirEntry[str]]) -> bool:
    """Whether a folder holding these entries is a quarantine run (its imgdup manifest.json)."""
    for entry in entries:
        if entry.name == "manifest.json" and entry.is_file(follow_symlinks=False):
            try:
                with open(entry.path, "rb") as fh:
                    return MANIFEST_SCHEMA.encode() in fh.read(256)
            except OSError:
                return False
    return False


def _holds_manifest(folder: str) -> bool:
    """Whether ``folder`` is a quarantine run (its imgdup manifest.json), found by its path."""
    try:
        fd = os.open(os.path.join(folder, "manifest.json"), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as fh:
        try:
            return stat.S_ISREG(os.fstat(fh.fileno()).st_mode) and MANIFEST_SCHEMA.encode() in fh.read(256)
        except OSError:
            return False


def set_aside_by(scanned: Iterable[str]) -> Callable[[str], str | None]:
    """A test "why is this listed file not scanned?" (None: it is scanned) for the files of a list:
    what the walk passes over, a quarantine (its run folder, or a folder named
    ``*.imgdup-quarantine``), a killed ``--permanent`` run's private folder, a temporary copy.
    ``find . -name '*.jpg'`` beside an earlier run's quarantine listed its files, and a removed
    copy was kept over the dataset's own (which went to the new quarantine: no copy left in the
    dataset). Folders are tested from the file's up to the deepest ``scanned`` folder holding it,
    which is not (the walk does not test its root either), else up to ``/``."""
    tops = tuple(scanned)
    memo: dict[str, str | None] = {}  # folder -> the answer for its files (one lookup a listed file)

    def folder_reason(folder: str) -> str | None:
        name = os.path.basename(folder)
        if is_stage(name):
            return _STAGE_REASON
        return _QUARANTINE_REASON if name.endswith(QUARANTINE_SUFFIX) or _holds_manifest(folder) else None

    def up(folder: str, top: str | None) -> str | None:
        if folder == top or folder == os.path.dirname(folder):
            return None
        if folder not in memo:
            memo[folder] = folder_reason(folder) or up(os.path.dirname(folder), top)
        return memo[folder]

    def reason(path: str) -> str | None:
        if PARTIAL_MARK in os.path.basename(path):
            return _PARTIAL_REASON
        if staged_name(os.path.basename(path)):
            return _STAGE_REASON
        folder = os.path.dirname(path)
        if folder in memo:
            return memo[folder]
        return up(folder, max((t for t in tops if path.startswith(t.rstrip(os.sep) + os.sep)), key=len, default=None))

    return reason


_GONE = (errno.ENOENT, errno.ENOTDIR)  # removed (or replaced) since it was listed: nothing left to read


def note_unreadable(path: str, what: str, exc: OSError, skipped: list[Skipped], failed: list[HashFailure]) -> None:
    """A path the scan could not look at: skipped when it is gone since it was listed, else a
    failure (exit 3). A folder it cannot list (mode 000) or files it cannot stat (in a folder
    without search permission) were only skipped, and the run exited 0: their images were never
    read (QA pass 35)."""
    reason = f"{what}: {exc.strerror or exc}"
    if exc.errno in _GONE:
        skipped.append(Skipped(path, reason))
    else:
        failed.append(HashFailure(path, reason, transient=True))


def _walk(root: str, skipped: list[Skipped], failed: list[HashFailure]) -> Iterator[tuple[str, os.stat_result]]:
    """Yield (path, lstat) of regular files below ``root`` in sorted order, depth first."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            note_unreadable(folder, f"{UNLISTED_FOLDER} (its files are not scanned)", exc, skipped, failed)
            continue
        if folder != root and _is_run_folder(entries):  # a quarantine of the user's choosing
            skipped.append(Skipped(folder, _QUARANTINE_REASON))
            continue
        subdirs: list[str] = []
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                note_unreadable(entry.path, "cannot stat", exc, skipped, failed)
                continue
            if stat.S_ISLNK(st.st_mode):
                skipped.append(Skipped(entry.path, "symbolic link (not followed)"))
            elif stat.S_ISDIR(st.st_mode) and is_stage(entry.name):
                # Only a killed --permanent removal leaves one: its file was about to be deleted.
                skipped.append(Skipped(entry.path, _STAGE_REASON))
            elif stat.S_ISDIR(st.st_mode) and entry.name.endswith(QUARANTINE_SUFFIX):
                # The default quarantine beside an earlier run's root, inside this one: the files
                # there were removed as duplicates; scanned, they were kept and the copies removed.
                skipped.append(Skipped(entry.path, _QUARANTINE_REASON))
            elif stat.S_ISREG(st.st_mode) and PARTIAL_MARK in entry.name:
                skipped.append(Skipped(entry.path, _PARTIAL_REASON))
            elif stat.S_ISREG(st.st_mode) and staged_name(entry.name):  # the same, beside it (a full disk)
                skipped.append(Skipped(entry.path, _STAGE_REASON))
            elif stat.S_ISDIR(st.st_mode):
                subdirs.append(entry.path)
            elif stat.S_ISREG(st.st_mode):
                yield entry.path, st
            else:
                skipped.append(Skipped(entry.path, "not a regular file (FIFO, socket or device)"))
        stack.extend(reversed(subdirs))


def _one_name_per_entry(names: list[tuple[str, str, os.stat_result]]) -> list[tuple[str, str, os.stat_result]]:
    """Names of one file (in path order) less those that are a directory entry already named: a
    folder bind-mounted inside a root, or two roots that are one folder, show every entry twice.
    Read as hard links, the first move took the file and the other name was reported as a
    skipped cluster, "No such file or directory" (QA pass 33). An entry is its folder (device
    and inode) and its name; a folder that cannot be read keeps its names apart."""
    out = []
    seen: set[tuple[int, int, str]] = set()
    for name in names:
        folder, base = os.path.split(name[0])
        try:
            st = os.stat(folder)
        except OSError:
            out.append(name)
            continue
        if (st.st_dev, st.st_ino, base) not in seen:
            seen.add((st.st_dev, st.st_ino, base))
            out.append(name)
    return out


def discover(
    roots: Iterable[str | os.PathLike[str]], *, on_found: Callable[[int], None] | None = None
) -> tuple[list[FileEntry], list[Skipped], list[HashFailure]]:
    """Candidate image files of all roots, sorted by path, one entry per inode; the paths
    skipped, and those that could not be looked at (failures: a folder that cannot be listed).

    Several names of one inode (hard links) become one entry whose other names are listed in
    ``aliases``: they are one copy of the picture and must never be removed as each other's
    duplicate. ``on_found`` is told the number of files (inodes) found so far.
    """
    skipped: list[Skipped] = []
    failed: list[HashFailure] = []
    found: dict[tuple[int, int], list[tuple[str, str, os.stat_result]]] = {}
    for root in normalise_roots(roots):
        for path, st in _walk(root, skipped, failed):
            kind = image_kind(path)
            if kind == "raw":
                skipped.append(Skipped(path, RAW_REASON))
            elif kind:
                found.setdefault((st.st_dev, st.st_ino), []).append((path, root, st))
                if on_found and len(found) % 256 == 0:  # a progress callback, not a call per file
                    on_found(len(found))
    if on_found:
        on_found(len(found))
    entries = []
    for (dev, ino), names in found.items():
        names.sort(key=lambda n: n[0])
        if len(names) > 1:
            names = _one_name_per_entry(names)
        path, root, st = names[0]
        entries.append(
            FileEntry(
                path=path,
                root=root,
                # The walk builds every path as root + sep + names: slicing is exact, and ~40x
                # cheaper than os.path.relpath (two abspath calls), 39 ms of a 140 ms warm run at 1k.
                relpath=path[len(root.rstrip(os.sep)) + 1 :],
                size=st.st_size,
                mtime_ns=st.st_mtime_ns,
                inode=ino,
                device=dev,
                aliases=tuple(n[0] for n in names[1:]),
                ctime_ns=st.st_ctime_ns,
                links=st.st_nlink,
            )
        )
    entries.sort(key=lambda e: e.path)
    skipped.sort(key=lambda s: s.path)
    failed.sort(key=lambda f: f.path)
    return entries, skipped, failed
