"""One PNG per cluster, members side by side and labelled: the headless montage window."""

from __future__ import annotations

import io
import os
import re

from PIL import Image, ImageDraw
from PIL.PngImagePlugin import PngInfo

from ..errors import OutputError
from ..fsafe import check_output, inside, write_output
from ..hashing import load_thumbnail
from ..models import Action, Cluster, ScanResult

THUMB = 160
LABEL_HEIGHT = 34
PER_ROW = 6
MAX_MEMBERS = 48  # a huge cluster gets its first 48 members; the report lists them all

_NAME = re.compile(r"cluster-\d{4,}\.png")
_MARK = b"tEXtSoftware\x00imgdup"  # the PNG text chunk every montage carries, before the pixels

_COLOURS = {Action.KEEP: (20, 140, 60), Action.REMOVE: (200, 40, 40), Action.REVIEW: (210, 140, 0)}


def _tile(cluster: Cluster, index: int) -> Image.Image:
    m = cluster.members[index]
    tile = Image.new("RGB", (THUMB, THUMB + LABEL_HEIGHT), (245, 245, 245))
    try:
        thumb = load_thumbnail(m.record.path, THUMB)
        tile.paste(thumb, ((THUMB - thumb.width) // 2, (THUMB - thumb.height) // 2))
    except Exception:  # noqa: BLE001 - the file may be gone or changed since the scan
        ImageDraw.Draw(tile).text((8, THUMB // 2), "(unreadable)", fill=(0, 0, 0))
    draw = ImageDraw.Draw(tile)
    colour = _COLOURS[m.action]
    draw.rectangle((0, 0, THUMB - 1, THUMB + LABEL_HEIGHT - 1), outline=colour, width=3)
    label = m.action.value.upper() + ("" if m.action is Action.KEEP else f"  d={m.distance}")
    draw.text((6, THUMB + 2), label, fill=colour)
    name = os.path.basename(m.record.path).encode("ascii", "replace").decode("ascii")
    draw.text((6, THUMB + 17), name if len(name) <= 24 else name[:21] + "...", fill=(0, 0, 0))
    return tile


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
    scanned root, not a folder, or holding a ``cluster-NNNN.png`` imgdup did not write (or a
    symbolic link at such a name). Call it before a long scan."""
    folder = os.fspath(folder)
    _montage_folder(folder, roots)
    if not os.path.lexists(folder):
        return
    if not os.path.isdir(folder):
        raise OutputError(f"the montage folder {folder} is not a folder")
    for name in sorted(os.listdir(folder)):
        if _NAME.fullmatch(name):
            check_output(os.path.join(folder, name), _is_montage)


def write_montages(result: ScanResult, folder: str | os.PathLike[str]) -> list[str]:
    """Write ``cluster-NNNN.png`` for every cluster into ``folder``; returns the paths.

    Refuses a folder inside a scanned root; never writes through a symbolic link nor over a
    file that is not an earlier imgdup montage (:func:`imgdup.fsafe.write_output`).
    """
    folder = os.fspath(folder)
    _montage_folder(folder, result.roots)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the montage folder {folder}: {exc.strerror or exc}") from None
    info = PngInfo()
    info.add_text("Software", "imgdup")
    written = []
    for cluster in result.clusters:
        count = min(len(cluster.members), MAX_MEMBERS)
        cols = min(count, PER_ROW)
        rows = (count + PER_ROW - 1) // PER_ROW
        sheet = Image.new("RGB", (cols * THUMB, rows * (THUMB + LABEL_HEIGHT)), (255, 255, 255))
        for i in range(count):
            sheet.paste(_tile(cluster, i), ((i % PER_ROW) * THUMB, (i // PER_ROW) * (THUMB + LABEL_HEIGHT)))
        path = os.path.join(folder, f"cluster-{cluster.id:04d}.png")
        data = io.BytesIO()
        sheet.save(data, "PNG", pnginfo=info)
        write_output(path, data.getvalue(), _is_montage)
        written.append(path)
    return written
