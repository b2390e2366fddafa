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


def test_the_page_shows_the_clusters_inside_the_reference_with_their_thumbnails(tmp_path: Path) -> None:
    """Duplicates inside a reference set are reported apart and never acted on (issue 10): the
    text, JSON and CSV reports listed them, the HTML page did not show them at all."""
    train, test = tmp_path / "train", tmp_path / "test"
    train.mkdir(), test.mkdir()
    photo(3).save(train / "a.png")
    shutil.copyfile(train / "a.png", train / "a-copy.png")
    photo(4).save(train / "b.png")
    shutil.copyfile(train / "b.png", test / "b-copy.png")
    result = imgdup.find_duplicates([test], reference=[train], jobs=1)
    assert len(result.reference_clusters) == 1 and len(result.clusters) == 1
    page = tmp_path / "report" / "r.html"
    page.parent.mkdir()
    imgdup.write_report(result, page)
    text = page.read_text(encoding="utf-8")
    section = text[text.index("<section id='reference'>") :]
    section = section[: section.index("</section>")]
    assert "a.png" in section and "a-copy.png" in section and "b-copy.png" not in section
    assert "never acted on" in section
    thumbs = {p.name for p in Path(thumbnail_folder(str(page))).iterdir()}
    digest = result.reference_clusters[0].members[0].record.digest
    assert f"{digest[:32]}.jpg" in thumbs
    assert f"{digest[:32]}.jpg" in section  # shown with its thumbnail
