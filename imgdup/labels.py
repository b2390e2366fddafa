"""Where a file's class label comes from: its class folder's name, a labels file, or a mapping.

``folder`` follows the torchvision ``ImageFolder`` convention (``root/<class>/[...]/<image>``); a
labels file is CSV with a path and a label per row (optionally a header naming the columns
``path`` or ``file_name``, and ``label``), as Hugging Face's image-folder ``metadata.csv``; a
mapping ``{path: label}`` is the same given in Python (labels an ML pipeline holds in memory).
"""

from __future__ import annotations

import codecs
import csv
import logging
import os
import re
import reprlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .errors import UsageError

if TYPE_CHECKING:
    import _csv  # the reader's type (it counts lines), for the checker only

log = logging.getLogger(__name__)

FOLDER = "folder"
MAPPING = "(mapping)"
"""A scan's ``settings.labels`` for labels given as a mapping (its entries are not kept there)."""
_PATH_COLUMNS = ("path", "file_name", "filename", "file", "image", "filepath")
_LABEL_COLUMNS = ("label", "class", "category", "target")
_SURROGATE = re.compile("[\udc80-\udcff]")  # an undecodable byte, as surrogateescape reads it


def folder_label(
    splits: Collection[str] = (), listed_as: Mapping[str, str] | None = None
) -> Callable[[str], str | None]:
    """A path's class as torchvision's ``ImageFolder`` reads it: the first folder below its
    split, the deepest of ``splits`` holding it (``train/cat/2019/1.jpg`` -> ``cat``: the
    classes are the root's direct sub-folders, each walked down; it read ``2019``, so a cat filed
    under ``dog/2019`` was no conflict), or None directly in the split (a folder named to scan,
    ``train``, is a split, not a class: flat splits read "LABEL CONFLICT: test, train" for every
    leak). A split holding another (``-d data --reference data/train``) holds splits: the
    folders beside that one (``data/test``) are splits too. A path in no split takes its parent
    folder's name (one class's listed files). ``listed_as``: a listed file's name as its list gave
    it, by the scan's name (real folders), read in its place (``test/cat`` a link to ``cats_v2``)."""
    deepest = sorted(splits, key=len, reverse=True)
    levels = frozenset(deepest) & {os.path.dirname(s) for s in deepest if os.path.dirname(s) != s}  # hold splits
    given = listed_as or {}

    def split_of(folder: str) -> str | None:
        return next((s for s in deepest if folder == s or folder.startswith(s.rstrip(os.sep) + os.sep)), None)

    def of_folders(folders: tuple[str, ...]) -> str | None:
        for folder in folders:
            split = split_of(folder)
            if split is not None:
                below = folder[len(split.rstrip(os.sep)) + 1 :].split(os.sep) if folder != split else []
                below = below[1:] if split in levels else below
                return below[0] if below else None
        # A file in / has no folder name (it read as "").
        return os.path.basename(folders[0]) or None

    known: dict[tuple[str, ...], str | None] = {}  # by folder: a dataset is a few folders' worth

    def label(path: str) -> str | None:
        name = given.get(path, path)
        # The name as listed first: its split is the listed files' folder as listed (a class
        # folder that is a link: ImageFolder's class is cat, it was cats_v2); then the scan's.
        folders = (os.path.dirname(name),) if name == path else (os.path.dirname(name), os.path.dirname(path))
        if folders not in known:
            known[folders] = of_folders(folders)
        return known[folders]

    return label


def _real(path: str, folders: dict[str, str]) -> str:
    """The spelling the scan uses: real folder, file name as given (a symlink stays itself).
    ``folders``: each folder's real path, resolved once per labels file or mapping (resolved
    for each row, 100,000 rows in 100 class folders took 2 s, nine tenths of it in realpath)."""
    folder, name = os.path.split(os.path.abspath(path))
    real = folders.get(folder)
    if real is None:
        real = folders[folder] = os.path.realpath(folder)
    return os.path.join(real, name)


def read_labels_csv(path: str | os.PathLike[str]) -> dict[str, str]:
    """``{real path: label}`` from a CSV file; relative paths are relative to the CSV's folder
    (like ``metadata.csv`` beside the images)."""
    path = os.fspath(path)
    base = os.path.dirname(os.path.abspath(path))
    try:
        with open(path, "rb") as fh:
            start = fh.read(_SNIFF)
    except OSError as exc:
        # labels="folders" in Python: the value read as a file name, and the message said only that
        hint = '; labels are read from folder names with --labels folder (labels="folder" in Python)'
        lost = isinstance(exc, FileNotFoundError) and os.sep not in path and "." not in path
        raise UsageError(f"cannot read the labels file {path}: {exc.strerror or exc}{hint if lost else ''}") from None
    wide = _wide_encoding(start)
    if wide:  # its NUL bytes read as binary data, "an image?" (QA pass 36)
        raise UsageError(
            f"the labels file {path} is {wide} text; --labels reads UTF-8: save it as UTF-8"
            " (CSV UTF-8 in a spreadsheet)"
        )
    if _binary(start, whole=len(start) < _SNIFF):
        raise UsageError(
            f"the labels file {path} is not a text file (binary data: an image?); "
            "--labels takes a CSV file of path,label rows, or folder"
        )
    try:
        # A byte that is not UTF-8 is kept as os.fsdecode keeps it in a file name (PEP 383):
        # a row may name a file whose name is not UTF-8 (refused whole, such a dataset could
        # not be labelled at all); _text() refuses it anywhere else.
        with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
            rows = _rows(csv.reader(fh))
    except OSError as exc:
        raise UsageError(f"cannot read the labels file {path}: {exc.strerror or exc}") from None
    except csv.Error as exc:
        raise UsageError(f"the labels file {path} is not CSV: {exc}") from None
    if not rows:
        return {}
    head = [c.strip().lower() for c in rows[0][1]]
    pcol, lcol = 0, 1
    if any(h in _PATH_COLUMNS for h in head) and any(h in _LABEL_COLUMNS for h in head):
        pcol = next(i for i, h in enumerate(head) if h in _PATH_COLUMNS)
        lcol = next(i for i, h in enumerate(head) if h in _LABEL_COLUMNS)
        rows = rows[1:]
    labels: dict[str, str] = {}
    folders: dict[str, str] = {}  # _real
    first: dict[str, int] = {}
    for n, row in rows:
        if len(row) <= max(pcol, lcol):
            raise UsageError(f"{path}: line {n} has no label column: {row!r}")
        label = row[lcol].strip()  # "cat " is "cat"; an empty label is no label (as a missing row)
        if label:
            name = _real(os.path.join(base, row[pcol]), folders)
            _text(path, n, "label", label, exists=False)
            _text(path, n, "path", row[pcol], exists=os.path.lexists(name))
            if labels.setdefault(name, label) != label:  # the last row won: a cat and a dog read as a dog
                raise UsageError(
                    f"{path}: lines {first[name]} and {n} give {row[pcol]} two labels ({labels[name]!r}, {label!r})"
                )
            first.setdefault(name, n)
    return labels


def labels_mapping(labels: Mapping[Any, Any]) -> dict[str, str]:
    """``{real path: label}`` from a mapping given in Python, read as a labels file's rows: a
    path as ``files=`` takes one (str, bytes or pathlib.Path; relative to the current folder)
    in the scan's spelling, a label without surrounding spaces, an empty one for none. Anything
    else, or one file given two labels (``a.jpg`` and ``./a.jpg``), is a :class:`UsageError`
    naming the entry, before any file is read."""
    table: dict[str, str] = {}
    folders: dict[str, str] = {}  # _real
    first: dict[str, str] = {}  # the key that gave each path its label, as given
    for key, label in labels.items():
        if not isinstance(key, (str, bytes, os.PathLike)):
            raise UsageError(f"labels has a key that is not a path: {reprlib.repr(key)} (keys are file paths)")
        if not isinstance(label, str):
            # ImageFolder's samples give class indices: the class names are what a conflict shows
            raise UsageError(
                f"labels[{key!r}] is {reprlib.repr(label)}, not a string: labels are class names"
                " (for class indices, the names: dataset.classes[i])"
            )
        label = label.strip()
        if not label:
            continue
        name = os.fsdecode(key)
        path = _real(name, folders)
        if table.setdefault(path, label) != label:
            also = f" (also as {name})" if name != first[path] else ""
            raise UsageError(f"labels gives {first[path]} two labels ({table[path]!r}, {label!r}){also}")
        first.setdefault(path, name)
    return table


_SNIFF = 8192
"""Bytes read from the start of a labels file to tell text from binary data."""
_CONTROL = re.compile(b"[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f]")  # C0 controls but tab, line feed, return


def _wide_encoding(start: bytes) -> str | None:
    """The encoding, UTF-16 or UTF-32, of a file that starts with that encoding's byte order mark (as
    Windows tools save "Unicode" text), else None."""
    if start.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):  # before UTF-16: ff fe 00 00 starts as it
        return "UTF-32"
    return "UTF-16" if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else None


def _binary(start: bytes, *, whole: bool) -> bool:
    """Whether a labels file's first bytes are binary data (an image given by mistake): a NUL
    byte, which no file name or text holds; or control bytes in bytes that are not UTF-8. A
    file name may hold either alone (``a<TAB>b.jpg``, ``caf\\xe9.jpg`` in Latin-1): such a row
    still reads. Printed as the row without a label column, a JPEG was a screenful of escapes."""
    if b"\0" in start:
        return True
    if not _CONTROL.search(start):
        return False
    try:
        start.decode("utf-8")
    except UnicodeDecodeError as exc:
        return whole or exc.start < len(start) - 3  # not a character cut at the end of the sample
    return False


def _text(path: str, line: int, what: str, cell: str, *, exists: bool) -> None:
    """Refuse a cell that is not UTF-8, unless it names an existing file: a file name is bytes,
    and may be any (``caf\\xe9.jpg`` in Latin-1); a label, or a name that names nothing (a whole
    file saved as Latin-1 or cp1252, as spreadsheets do), is a file in another encoding."""
    if exists or not _SURROGATE.search(cell):
        return
    shown = os.fsencode(cell).decode("utf-8", "backslashreplace")
    raise UsageError(
        f"{path}: line {line}: the {what} {shown} is not UTF-8"
        + (" and names no file" if what == "path" else "")
        + "; save the labels file as UTF-8"
    )


def _rows(reader: _csv.Reader) -> list[tuple[int, list[str]]]:
    """The rows that hold something, each with the line it starts on (as an editor numbers
    them: the header and blank lines count, a quoted line break starts a new line)."""
    out = []
    start = 1
    for row in reader:
        if row and any(c.strip() for c in row):
            out.append((start, row))
        start = reader.line_num + 1
    return out


def _names_none(spec: str | None, table: Mapping[str, str], found: int) -> str:
    """Why a labels file (None: a mapping) that labels no scanned file is refused, and where its
    paths led."""
    example = next(iter(table))
    what, row = ("the labels mapping", "entry") if spec is None else (f"the labels file {spec}", "row")
    base = os.getcwd() if spec is None else os.path.dirname(os.path.abspath(spec))
    return (
        f"{what} names none of the {found} files found (its first {row} names {example}:"
        f" relative paths are relative to {'the current folder' if spec is None else 'its own folder'}, {base});"
        " no label conflict could be seen"
    )


SPLIT_NAMES = frozenset({"train", "training", "test", "testing", "val", "valid", "validation", "dev", "eval"})
"""Folder names that usually name a dataset's split, not a class (see :func:`label_source`)."""


def label_source(
    spec: str | os.PathLike[str] | Mapping[str, str] | None,
    found: Sequence[Sequence[str]] = (),
    splits: Collection[str] = (),
    listed_as: Mapping[str, str] | None = None,
) -> Callable[[Iterable[Sequence[str]]], dict[str, str]]:
    """What labels the scanned files, each given as its names (first name, then the other names
    of a hard-linked file), name by name (``{name: label}``): from ``spec``, None (no
    labels), ``"folder"`` or a CSV path. A labels file is read now, so a bad one stops the run
    before any image is decoded; one that labels none of the ``found`` files (each file's
    names; paths written relative to another folder) is refused: it would silently see no label
    conflict, and one that labels only some is warned about (one split's ``metadata.csv``); so
    is a mapping, given as :func:`labels_mapping` reads it.
    ``splits``: the folders named to scan, and those holding listed files' class folders, whose
    own files have no folder label and whose first folder level is the class; ``listed_as``:
    listed files' names as given, read as their names (see :func:`folder_label`)."""
    if spec is None:
        return lambda _files: {}
    if not isinstance(spec, Mapping) and os.fspath(spec) == FOLDER:
        label = folder_label(splits, listed_as)
        given = {label(n) for names in found for n in names}
        like_splits = sorted(n for n in given if n in SPLIT_NAMES)
        if like_splits and len(given - {None}) > 1:
            # ImageFolder("data") reads data/train/cat as class "train" too, but the user who
            # names data/ with splits inside means cat and dog: every leak between the splits
            # would be a "test, train" label conflict, left for review. Said, not guessed.
            log.warning(
                "--labels folder: files are labelled %s, the first folder below the folder named to scan, as"
                " ImageFolder reads it; if those are splits holding class folders, name them (-d data/test"
                " --reference data/train, or -d data/train -d data/test) to label the files by their classes",
                ", ".join(repr(n) for n in like_splits),
            )
        if found and given <= {None}:
            # Said, as a labels file naming none of the files is: class folders named to scan
            # (-d train/cat -d train/dog) are splits, and a cat filed under dog was removed.
            log.warning(
                "--labels folder labels none of the %d files found: each lies directly in a folder named to"
                " scan (-d, --reference), which is a split, not a class, so no label conflict can be seen;"
                " name the folder that holds the class folders instead",
                len(found),
            )
        return lambda files: _by_any_name(files, label)
    file: str | None = None
    if isinstance(spec, Mapping):
        table: Mapping[str, str] = spec
    else:
        file = os.fspath(spec)
        table = read_labels_csv(file)
    named = sum(1 for names in found if any(n in table for n in names))
    if found and not table:
        # 0 bytes, a header alone, every label blank: no file has a label, as when the paths
        # lead elsewhere; it was warned about and the run saw "0 label conflicts" (QA pass 33).
        what = "the labels mapping" if file is None else f"the labels file {file}"
        raise UsageError(
            f"{what} holds no label (empty, a header alone, or every label blank) for the {len(found)} files"
            " found; no label conflict could be seen"
        )
    if found and not named:
        raise UsageError(_names_none(file, table, len(found)))
    if named < len(found):
        log.warning(
            "%s labels %d of the %d files found; the rest are unlabelled",
            "the labels mapping" if file is None else f"the labels file {file}", named, len(found),
        )  # fmt: skip
    return lambda files: _by_any_name(files, table.get)


def _by_any_name(files: Iterable[Sequence[str]], label: Callable[[str], str | None]) -> dict[str, str]:
    """``{name: label}`` for every name of each file (its names) that ``label`` labels: a file
    takes the label of the first of them (:func:`imgdup.sets.annotate`), and names of one file
    under different labels are a conflict (a label under another name was ignored: QA pass 9;
    a file under two class folders was no conflict: QA pass 18)."""
    out: dict[str, str] = {}
    for names in files:
        for n in names:
            if (lab := label(n)) is not None:
                out[n] = lab
    return out
