"""Explicit lists of image files (``--files LIST``, or file paths given to the API).

A list names files, not folders; each file belongs to the given folder that holds it, else to
the nearest folder holding all such files, so removal, locking and the quarantine layout work
as for a scanned folder. Names are taken verbatim: spaces, a leading dash and (in a
NUL-separated list) newlines are part of the name.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import IO

from .discover import RAW_REASON, image_kind, note_unreadable, set_aside_by
from .errors import UsageError
from .models import FileEntry, HashFailure, Skipped


def parse_file_list(data: bytes, *, null: bool = False) -> list[str]:
    """Paths from a list's bytes: one per line (only the line end is stripped), or
    NUL-separated with ``null`` (for names holding a newline). Empty entries are ignored.
    Bytes are decoded as the file system does (undecodable names survive, as in ``os.listdir``).
    A leading UTF-8 byte order mark (a list saved by a Windows editor) is not part of the first name.
    A line-per-name list holding a NUL byte is refused (:class:`UsageError`)."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    if not null and b"\x00" in data:  # no name holds one: it ended in "ValueError: embedded null byte"
        raise UsageError(
            "the file list holds NUL bytes: a NUL-separated list (find -print0) needs --null,"
            " and an image file is not a list (-d takes an image file to scan)"
        )
    parts = data.split(b"\x00") if null else [p[:-1] if p.endswith(b"\r") else p for p in data.split(b"\n")]
    return [os.fsdecode(p) for p in parts if p]


def read_file_list(source: str | os.PathLike[str] | IO[bytes], *, null: bool = False) -> list[str]:
    """Read a list from a path or an open binary stream (``sys.stdin.buffer`` for ``-``)."""
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as fh:
                return parse_file_list(fh.read(), null=null)
        except OSError as exc:
            raise UsageError(f"cannot read the file list {os.fsdecode(source)}: {exc.strerror or exc}") from None
    return parse_file_list(source.read(), null=null)


def _real_name(path: str) -> str:
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(os.path.realpath(folder), name)


def _tree(path: str) -> list[str]:
    """The top-level folder a path lies in (``/data``), as path components."""
    return path.split(os.sep)[:2]


def file_roots(paths: Sequence[str], roots: Sequence[str], beside: Sequence[str] = ()) -> list[str]:
    """The folders for listed files outside every given root: per top-level tree, the deepest
    folder holding that tree's files. One folder for all of them would be ``/`` for files on
    two trees (``/data``, ``/tmp``), and every quarantine then lies inside a scanned folder.

    A file below the folder that holds one of the ``beside`` folders (the reference folders:
    ``data/test/cat/2019/x.jpg`` beside ``data/train``) lies in the folder beside it that holds
    it (``data/test``), the split: the deepest common folder of a test split's files is their one
    class folder when the split has only one (``test/cat``), and the first folder below it, a
    year, was read as their class (every leak a label conflict, none removed)."""
    # Missing names are only reported as skipped: they must not widen the folder, nor files a
    # scan passes over (a quarantine's, listed by find from the folder above the dataset).
    aside = set_aside_by(roots)
    loose = [p for p in paths if os.path.lexists(p) and not any(p.startswith(r.rstrip(os.sep) + os.sep) for r in roots)]
    loose = [p for p in loose if aside(p) is None]
    parents = sorted({os.path.dirname(r.rstrip(os.sep)) for r in beside} - {"", os.sep}, key=len, reverse=True)
    splits: set[str] = set()
    trees: dict[tuple[str, ...], list[str]] = {}
    for p in loose:
        split = _split_beside(p, parents)
        if split is not None:
            splits.add(split)
        else:
            trees.setdefault(tuple(_tree(p)), []).append(os.path.dirname(p))
    return sorted(splits | {os.path.commonpath(folders) for folders in trees.values()})


def listed_names(paths: Sequence[str], roots: Sequence[str], beside: Sequence[str] = ()) -> list[str]:
    """Each listed path as the dataset names it: real folders (:func:`real_file_paths`), but a
    symbolic link to a folder inside a split kept as listed, as a folder scan of the split keeps
    its name (``test/dog2 -> ../train/cat``: ``test/dog2/a.jpg``, a name of the training file in
    test; ``test/cat -> store/cats_v2``: ``test/cat/z.jpg``, a test file). Resolved to its real
    name, the file lay in the link target's folder: a training file alone (no leak), or a split
    of its own (QA pass 36). A link above the splits (a home folder on another disk, a whole
    split that is a link) is resolved, as ``-d`` resolves its folder. ``roots``: the folders named
    to scan and the reference folders (real); ``beside``: the reference folders (see :func:`file_roots`)."""
    spelt = [os.path.abspath(p) for p in paths]
    parents = sorted({os.path.dirname(r.rstrip(os.sep)) for r in beside} - {"", os.sep}, key=len, reverse=True)
    splits: list[str] = []  # the listed files' folders, as listed: found once a link is (a stat a file)

    def inside_split(link: str) -> bool:
        up = os.path.dirname(link)
        real = os.path.join(os.path.realpath(up), os.path.basename(link))
        splits[:] = splits or file_roots(spelt, roots, beside)
        return (
            any(up.startswith(s.rstrip(os.sep) + os.sep) or up == s for s in splits)
            or any(real.startswith(r.rstrip(os.sep) + os.sep) for r in roots)
            or _split_beside(real, parents) is not None
        )

    memo: dict[str, str] = {}  # by folder: a list is a few folders' worth

    def name_of(folder: str) -> str:
        link = folder
        while not os.path.islink(link):  # the deepest link on the path
            if link == (link := os.path.dirname(link)):
                return os.path.realpath(folder)
        if not inside_split(link):
            return os.path.realpath(folder)
        return os.path.join(os.path.realpath(os.path.dirname(link)), os.path.relpath(folder, os.path.dirname(link)))

    out = []
    for path in spelt:
        folder, name = os.path.split(path)
        if folder not in memo:
            memo[folder] = name_of(folder)
        out.append(os.path.join(memo[folder], name))
    return out


def _split_beside(path: str, parents: Sequence[str]) -> str | None:
    """The folder directly in one of ``parents`` (deepest first) that holds ``path`` below it, or
    None (a file directly in such a parent, or under none of them)."""
    for parent in parents:
        prefix = parent + os.sep
        if path.startswith(prefix):
            first, sep, _rest = path[len(prefix) :].partition(os.sep)
            return os.path.join(parent, first) if sep else None
    return None


def entries_for_files(
    paths: Iterable[str], roots: Sequence[str], *, scanned: Sequence[str] = ()
) -> tuple[list[FileEntry], list[Skipped], list[HashFailure]]:
    """FileEntry for every listed regular image file under ``roots`` (deepest root wins);
    symlinks, missing and special files are skipped with a reason, hard links folded, and so
    are the files a walk of the ``scanned`` folders passes over (:func:`discover.set_aside_by`);
    a file that cannot be stat'ed other than for being missing is a failure, as in a folder scan."""
    aside = set_aside_by(scanned)
    skipped: list[Skipped] = []
    failed: list[HashFailure] = []
    found: dict[tuple[int, int], list[tuple[str, os.stat_result]]] = {}
    for raw in paths:
        path = _real_name(raw)
        try:
            st = os.lstat(path)
        except OSError as exc:
            note_unreadable(path, "listed but cannot stat", exc, skipped, failed)
            continue
        if stat.S_ISLNK(st.st_mode):
            skipped.append(Skipped(path, "symbolic link (not followed)"))
        elif not stat.S_ISREG(st.st_mode):
            skipped.append(Skipped(path, "not a regular file (folder, FIFO, socket or device)"))
        elif why := aside(path):
            skipped.append(Skipped(path, why))
        elif not (kind := image_kind(path)):
            skipped.append(Skipped(path, "listed but not an image"))
        elif kind == "raw":
            skipped.append(Skipped(path, RAW_REASON))
        else:
            names = found.setdefault((st.st_dev, st.st_ino), [])
            if all(n != path for n, _ in names):
                names.append((path, st))
    entries = []
    for (dev, ino), names in found.items():
        names.sort(key=lambda n: n[0])
        path, st = names[0]
        root = max((r for r in roots if path.startswith(r.rstrip(os.sep) + os.sep)), key=len)
        entries.append(
            FileEntry(
                path=path,
                root=root,
                relpath=os.path.relpath(path, root),
                size=st.st_size,
                mtime_ns=st.st_mtime_ns,
                inode=ino,
                device=dev,
                aliases=tuple(n for n, _ in names[1:]),
                ctime_ns=st.st_ctime_ns,
                links=st.st_nlink,
            )
        )
    entries.sort(key=lambda e: e.path)
    return entries, skipped, failed


def real_file_paths(paths: Iterable[str]) -> list[str]:
    """Listed paths in the spelling the scan uses (real folders; the file itself not resolved)."""
    return [_real_name(p) for p in paths]


def merge_listed(found: Sequence[FileEntry], listed: Sequence[FileEntry]) -> list[FileEntry]:
    """``listed`` joined to the ``found`` entries, in path order: a listed name of a file already
    found (a hard link: ``test/a.jpg`` of ``train/a.jpg``, a ``cp -al`` split) becomes one more name of
    it. Dropped as already seen, it took the leak between the two folders with it."""
    by_inode = {(e.device, e.inode): e for e in found}
    for e in listed:
        key = (e.device, e.inode)
        known = by_inode.get(key)
        if known is None:
            by_inode[key] = e
            continue
        names = {known.path, *known.aliases}
        extra = [n for n in (e.path, *e.aliases) if n not in names]
        if extra:
            by_inode[key] = replace(known, aliases=tuple(sorted((*known.aliases, *extra))))
    return sorted(by_inode.values(), key=lambda e: e.path)


def under_roots(entries: Sequence[FileEntry], roots: Sequence[str]) -> list[FileEntry]:
    """Each entry under the one of ``roots`` (the scan's, nested ones dropped) that holds it. A
    reference folder inside the folder of listed files (``find data/test data/val | imgdup
    --files - --reference data/train``) kept its own root, which is none of the scan's: the
    saved report was refused by ``imgdup apply``, and the text named its files by full paths."""
    if not any(e.root not in roots for e in entries):
        return list(entries)
    out = []
    for e in entries:
        if e.root not in roots:
            root = next((r for r in roots if e.path.startswith(r.rstrip(os.sep) + os.sep)), e.root)
            e = replace(e, root=root, relpath=os.path.relpath(e.path, root))
        out.append(e)
    return out


def nothing_to_scan(listed: Sequence[str], *, list_given: bool) -> str:
    """Why a run has nothing to scan, in terms of the file list when there is one (it said "no
    folder or file to scan" for a list of missing names, or a line-per-name list read with --null)."""
    if not listed:
        return "the file list names no file" if list_given else "no folder or file to scan"
    why = f"none of the {len(listed)} listed files exists (first: {listed[0]!r})"
    if "\n" in listed[0]:
        why += "; that name holds a line break: a list of one name per line read as NUL-separated (--null)?"
    return why
