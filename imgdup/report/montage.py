"""One PNG per cluster, members side by side and labelled: the headless montage window."""

from __future__ import annotations

import io
import logging
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import NamedTuple

from PIL import Image, ImageDraw
from PIL.PngImagePlugin import PngInfo

from ..errors import OutputError, StrOrBytesPath, check_result, check_workers, path_arg
from ..fsafe import check_output, inside, write_output
from ..hashing import load_thumbnail
from ..kernels import LocalCopies
from ..models import Action, Cluster, FileEntry, HashFailure, ScanResult
from ..parallel import DEFAULT_TIMEOUT, default_jobs, file_started, map_files
from .text import display_path, root_labels, rooted

log = logging.getLogger(__name__)

THUMB = 160
LABEL_HEIGHT = 48  # three lines: action, distance and pixel size; the path inside its root on two
PER_ROW = 6
MAX_MEMBERS = 48  # places on a sheet: a larger cluster shows its first 47 and "+N more" (the report lists them all)

_NAME = re.compile(r"cluster-\d{4,}\.png")
_MARK = b"tEXtSoftware\x00imgdup"  # the PNG text chunk every montage carries, before the pixels

_COLOURS = {Action.KEEP: (20, 140, 60), Action.REMOVE: (200, 40, 40), Action.REVIEW: (210, 140, 0)}


class _Place(NamedTuple):
    """One member's place on a sheet: what its tile shows, worked out in the main process."""

    path: str  # the file, decoded for its thumbnail
    action: Action
    distance: int
    size: str  # "640x480"
    name: str  # the path inside its root, as the text report prints it
    bytes: int  # the file as scanned: one changed since shows no other picture under its name
    mtime_ns: int


class _Sheet(NamedTuple):
    """One cluster's sheet, drawn in a worker (:func:`write_montages`)."""

    path: str  # where the sheet goes
    places: tuple[_Place, ...]
    more: str | None  # the last place's text when the cluster has more members than places


def _tile(place: _Place, thumb: Image.Image | None) -> Image.Image:
    tile = Image.new("RGB", (THUMB, THUMB + LABEL_HEIGHT), (245, 245, 245))
    if thumb is not None:
        tile.paste(thumb, ((THUMB - thumb.width) // 2, (THUMB - thumb.height) // 2))
    else:  # the file may be gone or changed since the scan
        ImageDraw.Draw(tile).text((8, THUMB // 2), "(unreadable)", fill=(0, 0, 0))
    draw = ImageDraw.Draw(tile)
    colour = _COLOURS[place.action]
    draw.rectangle((0, 0, THUMB - 1, THUMB + LABEL_HEIGHT - 1), outline=colour, width=3)
    label = place.action.value.upper() + ("" if place.action is Action.KEEP else f"  d={place.distance}")
    draw.text((6, THUMB + 2), f"{label}  {place.size}", fill=colour)
    # The path inside its root, with the root's name: train/x.jpg and test/x.jpg must differ.
    # Long names keep their end (the file name) and as much of the folders as fits.
    for row, part in enumerate(_wrap(place.name)):
        draw.text((6, THUMB + 17 + 14 * row), part, fill=(0, 0, 0))
    return tile


def _thumbnail_or_none(place: _Place) -> Image.Image | None:
    try:
        return _thumbnail_task(place, THUMB)
    except Exception:  # noqa: BLE001 - the file may be gone or changed since the scan
        return None


def more_label(cluster: Cluster, shown: int) -> str:
    """What the last place of a full sheet says: how many members are not on it, and how many of
    those are to be removed (a sheet alone must not read as the whole cluster)."""
    rest = cluster.members[shown:]
    counts = Counter(m.action for m in rest)
    acts = ", ".join(f"{counts[a]} {a.value}" for a in (Action.REMOVE, Action.REVIEW, Action.KEEP) if counts[a])
    return f"+{len(rest)} more files\n({acts})\nall in the report"


def _more_tile(text: str) -> Image.Image:
    tile = Image.new("RGB", (THUMB, THUMB + LABEL_HEIGHT), (255, 255, 255))
    draw = ImageDraw.Draw(tile)
    draw.rectangle((0, 0, THUMB - 1, THUMB + LABEL_HEIGHT - 1), outline=(150, 150, 150), width=1)
    for row, line in enumerate(text.split("\n")):
        draw.text((12, THUMB // 2 - 14 + 16 * row), line, fill=(0, 0, 0))
    return tile


def _tile_name(entry: FileEntry, labels: dict[str, str]) -> str:
    """The name as the text report prints it (a newline in a name was drawn as a line break, a
    byte that is not UTF-8 as "?"); what the bitmap font lacks (other non-ASCII) becomes "?"."""
    return display_path(rooted(entry, labels)).encode("ascii", "replace").decode("ascii")


def _wrap(name: str, width: int = 25, rows: int = 2) -> list[str]:
    """``name`` on up to ``rows`` lines of ``width`` characters; an elided start when too long."""
    if len(name) > width * rows:
        name = "..." + name[-(width * rows - 3) :]
    return [name[i : i + width] for i in range(0, len(name), width)]


def _is_montage(head: bytes) -> bool:
    return head.startswith(b"\x89PNG\r\n\x1a\n") and _MARK in head


def _montage_folder(folder: str, roots: tuple[str, ...]) -> str:
    real = os.path.realpath(folder)
    for root in roots:
        if inside(real, os.path.realpath(root)):
            raise OutputError(
                f"the montage folder {folder} is inside the scanned folder {root}: its pictures would be "
                "scanned as images next time; choose a folder outside it"
            )
    return real


def check_montages(folder: str | os.PathLike[str], roots: tuple[str, ...]) -> None:
    """Raise :class:`OutputError` now if :func:`write_montages` would refuse ``folder``: inside a
    scanned root, not a folder, not writable, or holding a ``cluster-NNNN.png`` imgdup did not write (or a
    symbolic link at such a name). Call it before a long scan."""
    folder = os.fspath(folder)
    _montage_folder(folder, roots)
    if not os.path.lexists(folder):
        # Written later with makedirs: the nearest folder that exists must be one we can write in.
        above = os.path.dirname(os.path.abspath(folder))
        while not os.path.lexists(above) and os.path.dirname(above) != above:
            above = os.path.dirname(above)
        if not os.path.isdir(above):
            raise OutputError(f"cannot create the montage folder {folder}: {above} is not a folder")
        if not os.access(above, os.W_OK | os.X_OK):
            raise OutputError(f"cannot create the montage folder {folder}: {above} is not writable")
        return
    if not os.path.isdir(folder):
        raise OutputError(f"the montage folder {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):  # it failed after the whole scan, with no output at all
        raise OutputError(f"cannot write to the montage folder {folder}: it is not writable (made by another user?)")
    for name in sorted(os.listdir(folder)):
        if _NAME.fullmatch(name):
            check_output(os.path.join(folder, name), _is_montage)


def write_montages(
    result: ScanResult,
    folder: StrOrBytesPath,
    *,
    jobs: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[str]:
    """Write ``cluster-NNNN.png`` for every cluster into ``folder``; returns the paths.

    Refuses a folder inside a scanned root; never writes through a symbolic link nor over a
    file that is not an earlier imgdup montage (:func:`imgdup.fsafe.write_output`); removes the
    earlier montages of clusters this result does not have.

    The sheets are drawn in ``jobs`` worker processes (None: every core) under the scan's guards
    (:func:`imgdup.parallel.map_files`), ``timeout`` seconds a file (not a sheet). A sheet whose
    drawing hangs or crashes (one of its files blocks or kills the decoder, or takes longer) is
    drawn again here from thumbnails made in the workers file by file, and that file's place
    reads "(unreadable)".
    ``progress(stage, done, total)``: as a scan's, stage ``"montages"``.
    """
    check_result("write_montages", result)
    folder = path_arg("folder", folder)
    check_workers(jobs, timeout)
    jobs = jobs or default_jobs()
    _montage_folder(folder, result.roots)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the montage folder {folder}: {exc.strerror or exc}") from None
    labels = root_labels(result.roots)
    sheets = [
        _sheet(cluster, os.path.join(folder, f"cluster-{cluster.id:04d}.png"), labels) for cluster in result.clusters
    ]
    started = time.perf_counter()
    if progress and sheets:
        progress("montages", 0, len(sheets))
    with tempfile.TemporaryDirectory(prefix="imgdup-") as staging:
        # object-store files drawn from local copies, as a scan's workers hash them (QA pass 33)
        copies = LocalCopies(staging)
        local = [_from_local_copies(sheet, copies) for sheet in sheets]
        drawn = map_files(
            local, None, _draw_and_write, jobs=jobs, timeout=timeout,
            on_progress=(lambda n: progress("montages", n, len(sheets))) if progress else None, here_if_daemonic=True,
        )  # fmt: skip
        for sheet, done in zip(local, drawn):
            if isinstance(done, HashFailure):  # a file hung or crashed the decoder: find which, file by file
                thumbs = map_files(
                    list(sheet.places), THUMB, _thumbnail_task, jobs=jobs, timeout=timeout, here_if_daemonic=True
                )
                done = _write(sheet, [t if isinstance(t, Image.Image) else None for t in thumbs])
            if isinstance(done, OutputError):
                raise done
    log.info(
        "drew %d %s in %.2f s",
        len(sheets),
        "montage" if len(sheets) == 1 else "montages",
        time.perf_counter() - started,
    )
    written = [sheet.path for sheet in sheets]
    _drop_stale(folder, written)
    return written


def _from_local_copies(sheet: _Sheet, copies: LocalCopies) -> _Sheet:
    """The sheet with its object-store files' places read from local copies of them."""
    places = []
    for place in sheet.places:
        path, mtime_ns = copies.of(place.path, place.bytes, place.mtime_ns)
        places.append(place._replace(path=path, mtime_ns=mtime_ns))
    return sheet._replace(places=tuple(places))


def _sheet(cluster: Cluster, path: str, labels: dict[str, str]) -> _Sheet:
    count = min(len(cluster.members), MAX_MEMBERS)
    shown = count if count == len(cluster.members) else count - 1
    places = tuple(
        _Place(
            m.record.path,
            m.action,
            m.distance,
            f"{m.record.width}x{m.record.height}",
            _tile_name(m.record.entry, labels),
            m.record.entry.size,
            m.record.entry.mtime_ns,
        )
        for m in cluster.members[:shown]
    )
    return _Sheet(path, places, more_label(cluster, shown) if shown < count else None)


def _draw_and_write(sheet: _Sheet, _settings: None) -> bool | OutputError:
    """Draw and write one sheet, in a worker; an :class:`OutputError` is handed back to be raised.
    Each file has the whole timeout: counted from the sheet's start, a sheet of files each
    within it but over it together was timed out, then drawn again file by file."""
    thumbs = []
    for place in sheet.places:
        file_started()
        thumbs.append(_thumbnail_or_none(place))
    return _write(sheet, thumbs)


def _thumbnail_task(place: _Place, size: int) -> Image.Image:
    """One member's thumbnail (in a worker of its own when a sheet hung: :func:`write_montages`),
    from its file only while that is as scanned, checked before and after it is decoded."""
    return load_thumbnail(place.path, size, scanned=(place.bytes, place.mtime_ns))


def _write(sheet: _Sheet, thumbs: Sequence[Image.Image | None]) -> bool | OutputError:
    tiles = [_tile(place, thumb) for place, thumb in zip(sheet.places, thumbs)]
    if sheet.more is not None:
        tiles.append(_more_tile(sheet.more))
    cols, rows = min(len(tiles), PER_ROW), (len(tiles) + PER_ROW - 1) // PER_ROW
    image = Image.new("RGB", (cols * THUMB, rows * (THUMB + LABEL_HEIGHT)), (255, 255, 255))
    for i, tile in enumerate(tiles):
        image.paste(tile, ((i % PER_ROW) * THUMB, (i // PER_ROW) * (THUMB + LABEL_HEIGHT)))
    info = PngInfo()
    info.add_text("Software", "imgdup")
    data = io.BytesIO()
    image.save(data, "PNG", pnginfo=info)
    try:
        write_output(sheet.path, data.getvalue(), _is_montage)
    except OutputError as exc:
        return exc
    return True


def _drop_stale(folder: str, written: list[str]) -> None:
    """Remove the sheets an earlier run wrote for clusters this one does not have: they would
    pass for current output (a REMOVE label on a file long gone). Only ``cluster-NNNN.png``
    regular files that carry imgdup's mark; anything else in the folder is left alone."""
    keep = {os.path.basename(p) for p in written}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name in keep or not _NAME.fullmatch(name) or not os.path.isfile(path) or os.path.islink(path):
            continue
        with open(path, "rb") as fh:
            if not _is_montage(fh.read(4096)):
                continue
        os.unlink(path)
