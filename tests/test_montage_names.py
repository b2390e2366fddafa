"""The montage labels a file with the name the text report prints: control characters and bytes
that are not UTF-8 escaped, so two names never draw alike (QA pass 10)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imgdup.models import FileEntry
from imgdup.report.montage import _tile_name


def _entry(relpath: str) -> FileEntry:
    return FileEntry(path=f"/r/data/{relpath}", size=1, mtime_ns=0, inode=1, device=1, root="/r/data", relpath=relpath)


def test_names_are_drawn_as_the_text_report_prints_them() -> None:
    """A newline in a name was drawn as a line break, a tab as a box, and the byte 0xe9 as "?",
    the same mark as any other non-ASCII character."""
    labels = {"/r/data": "data"}
    latin = os.fsdecode(b"caf\xe9.jpg")
    assert _tile_name(_entry("new\nline.jpg"), labels) == "data/new\\nline.jpg"
    assert _tile_name(_entry("tab\there.jpg"), labels) == "data/tab\\there.jpg"
    assert _tile_name(_entry("tab\\there.jpg"), labels) == "data/tab\\\\there.jpg"
    assert _tile_name(_entry(latin), labels) == "data/caf\\xe9.jpg"
    assert _tile_name(_entry("plain.jpg"), labels) == "data/plain.jpg"


def test_a_cluster_larger_than_the_sheet_says_how_many_files_it_leaves_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cluster of more than MAX_MEMBERS files showed its first MAX_MEMBERS and nothing to say
    that more were left out (some of them to be removed): the last place now says "+N more"."""
    from PIL import Image

    import imgdup
    from imgdup.report import montage

    from .synth import photo

    root = tmp_path / "d"
    root.mkdir()
    photo(8).save(root / "a.png")
    for k in range(5):
        (root / f"copy{k}.png").write_bytes((root / "a.png").read_bytes())
    result = imgdup.find_duplicates([root], jobs=1)
    assert len(result.clusters[0].members) == 6
    monkeypatch.setattr(montage, "MAX_MEMBERS", 4)
    (sheet,) = montage.write_montages(result, tmp_path / "sheets")
    with Image.open(sheet) as img:
        assert img.size == (4 * montage.THUMB, montage.THUMB + montage.LABEL_HEIGHT)
        last = img.convert("RGB").getpixel((3 * montage.THUMB + 1, 1))  # the fourth place's frame
    assert last not in montage._COLOURS.values()  # not a member's tile
    assert montage.more_label(result.clusters[0], 3) == "+3 more files\n(3 remove)\nall in the report"
