"""The HTML report's thumbnail folder holds the current page's thumbnails, not every earlier
run's (QA pass 10)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import imgdup
from imgdup.report.html import thumbnail_folder

from .conftest import scan
from .synth import photo


def _pairs(folder: Path, seeds: range) -> Path:
    folder.mkdir()
    for s in seeds:
        photo(s).save(folder / f"{s}.png")
        shutil.copyfile(folder / f"{s}.png", folder / f"{s}-copy.png")
    return folder


def test_a_later_report_drops_the_thumbnails_only_an_earlier_one_used(tmp_path: Path) -> None:
    """Content-addressed thumbnails were never removed: a page rewritten for another folder (or
    after a removal) left every earlier picture's thumbnail in ``FILE_files/``, growing run after
    run and keeping previews of pictures the page no longer shows. What is not imgdup's thumbnail
    (a file of the user's, a JPEG without imgdup's mark) stays."""
    page = tmp_path / "review.html"
    imgdup.write_report(scan(_pairs(tmp_path / "a", range(3))), page)
    folder = Path(thumbnail_folder(str(page)))
    first = {p.name for p in folder.iterdir()}
    assert len(first) == 3
    (folder / "notes.txt").write_text("mine", encoding="utf-8")
    photo(99).save(folder / ("f" * 32 + ".jpg"))  # a JPEG named like a thumbnail, not written by imgdup
    imgdup.write_report(scan(_pairs(tmp_path / "b", range(10, 12))), page)
    linked = set(re.findall(r"review_files/([0-9a-f]{32}\.jpg)", page.read_text(encoding="utf-8")))
    assert len(linked) == 2 and not linked & first
    assert {p.name for p in folder.iterdir()} == linked | {"notes.txt", "f" * 32 + ".jpg"}
