"""One PNG per cluster, members side by side and labelled: the headless montage window."""

from __future__ import annotations

import os

from PIL import Image, ImageDraw

from ..hashing import load_thumbnail
from ..models import Action, Cluster, ScanResult

THUMB = 160
LABEL_HEIGHT = 34
PER_ROW = 6
MAX_MEMBERS = 48  # a huge cluster gets its first 48 members; the report lists them all

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


def write_montages(result: ScanResult, folder: str | os.PathLike[str]) -> list[str]:
    """Write ``cluster-NNNN.png`` for every cluster into ``folder``; returns the paths."""
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    written = []
    for cluster in result.clusters:
        count = min(len(cluster.members), MAX_MEMBERS)
        cols = min(count, PER_ROW)
        rows = (count + PER_ROW - 1) // PER_ROW
        sheet = Image.new("RGB", (cols * THUMB, rows * (THUMB + LABEL_HEIGHT)), (255, 255, 255))
        for i in range(count):
            sheet.paste(_tile(cluster, i), ((i % PER_ROW) * THUMB, (i // PER_ROW) * (THUMB + LABEL_HEIGHT)))
        path = os.path.join(folder, f"cluster-{cluster.id:04d}.png")
        sheet.save(path)
        written.append(path)
    return written
