"""Text report and montages name each file by its root and its path inside it, with its pixel size."""

from __future__ import annotations

from pathlib import Path

import pytest

import imgdup
from imgdup.report.montage import _wrap
from imgdup.report.text import root_labels, rooted_path

from .conftest import A_ORIG, PlantedSet


def test_same_name_in_two_roots_reads_differently(planted_set: PlantedSet, tmp_path: Path) -> None:
    data = planted_set.files[A_ORIG]
    for split in ("train", "test"):
        (tmp_path / split / "cls").mkdir(parents=True)
        (tmp_path / split / "cls" / "x.jpg").write_bytes(data)
    result = imgdup.find_duplicates([tmp_path / "train", tmp_path / "test"], jobs=1)
    text = imgdup.format_text(result)
    members = [line.split()[1] for line in text.splitlines() if line.startswith(("  keep", "  remove"))]
    assert sorted(members) == ["test/cls/x.jpg", "train/cls/x.jpg"]
    assert text.count("[320x240 px, ") == 2
    assert f"train = {(tmp_path / 'train').resolve()}" in text


def test_roots_with_one_folder_name_are_numbered() -> None:
    labels = root_labels(["/a/data", "/b/data", "/c/other"])
    assert labels == {"/a/data": "data#1", "/b/data": "data#2", "/c/other": "other"}
    assert rooted_path("/b/data/x/y.jpg", labels) == "data#2/x/y.jpg"
    assert rooted_path("/elsewhere/y.jpg", labels) == "/elsewhere/y.jpg"


def test_files_under_the_file_system_root_read_as_their_path() -> None:
    """``--files`` spread over the tree give the root ``/``: a file read ``//tmp/a.jpg``."""
    from imgdup.models import FileEntry
    from imgdup.report.text import rooted

    labels = root_labels(["/"])
    assert rooted_path("/tmp/a.jpg", labels) == "/tmp/a.jpg"
    assert rooted(FileEntry("/tmp/a.jpg", "/", "tmp/a.jpg", 1, 1, 1, 1), labels) == "/tmp/a.jpg"


def test_montage_label_keeps_the_file_name_of_a_long_path() -> None:
    lines = _wrap("train/" + "deep/" * 20 + "photo_0001.jpg")
    assert len(lines) == 2 and lines[0].startswith("...") and "".join(lines).endswith("photo_0001.jpg")
    assert _wrap("train/x.jpg") == ["train/x.jpg"]


def test_gallery_assets_are_package_data() -> None:
    """Every web asset under imgdup/report is listed for the wheel (pyproject's package-data)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    repo = Path(__file__).resolve().parents[1]
    listed = set(
        tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["imgdup.report"]
    )
    on_disk = {p.name for p in (repo / "imgdup" / "report").iterdir() if p.suffix in (".html", ".css", ".js")}
    assert on_disk == listed == {"gallery.html", "gallery.css", "gallery.js"}


def test_gallery_csp_hashes_match_its_script_and_style(shared_planted_root: Path) -> None:
    import base64
    import hashlib
    import re

    from imgdup.report.html import to_html

    page = to_html(imgdup.find_duplicates([shared_planted_root], jobs=1))
    script = re.findall(r"<script>(.*?)</script>", page, re.S)
    style = re.findall(r"<style>(.*?)</style>", page, re.S)
    assert len(script) == 1 and len(style) == 1

    def digest(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    assert f"script-src {digest(script[0])};" in page and f"style-src {digest(style[0])};" in page
    assert page == to_html(imgdup.find_duplicates([shared_planted_root], jobs=1))  # deterministic bytes


def test_summary_of_a_removal_that_skipped_a_cluster(shared_planted_root: Path) -> None:
    """A --remove 1 run that left a cluster alone said "would remove N files", as a dry run does."""
    result = imgdup.find_duplicates([shared_planted_root], jobs=1)
    last = imgdup.format_text(result, removed=True, skipped=1).splitlines()[-1]
    assert f"planned to remove {result.summary.to_remove} files" in last and "1 cluster skipped, see below" in last
    assert "removed " in imgdup.format_text(result, removed=True).splitlines()[-1]
    assert "would remove" in imgdup.format_text(result).splitlines()[-1]


def test_names_that_differ_only_by_an_escape_are_shown_differently() -> None:
    """A TAB was shown as ``\\t`` while a literal backslash was not escaped: ``a<TAB>b.jpg`` and
    ``a\\tb.jpg`` printed identically, and a reader could not tell which file was kept."""
    from imgdup.report.text import display_path

    tab, literal = "/d/a\tb.jpg", "/d/a\\tb.jpg"
    assert display_path(tab) != display_path(literal)
    assert display_path(literal) == "/d/a\\\\tb.jpg" and display_path("/d/plain.jpg") == "/d/plain.jpg"


def test_a_file_that_frees_nothing_is_named_in_the_json_and_text_reports(tmp_path: Path) -> None:
    """QA pass 7: a duplicate whose other hard link lies outside the scanned folder frees no
    space; the summary left it out but no report said which file it was (and the page, which
    reads the member documents, could not tell)."""
    import os

    from .conftest import encode, picture

    root, outside = tmp_path / "d", tmp_path / "out"
    root.mkdir(), outside.mkdir()
    (root / "a.jpg").write_bytes(encode(picture(3, (400, 300)), quality=95))
    (root / "b.jpg").write_bytes(encode(picture(3, (400, 300)).resize((200, 150)), quality=90))
    os.link(root / "b.jpg", outside / "elsewhere.jpg")
    result = imgdup.find_duplicates([root], jobs=1)
    doc = imgdup.to_document(result)
    flags = {m["relpath"]: (m["action"], m.get("frees_space", True)) for c in doc["clusters"] for m in c["members"]}
    assert flags == {"a.jpg": ("keep", True), "b.jpg": ("remove", False)}
    assert doc["summary"]["bytes_to_remove"] == 0
    lines = imgdup.format_text(result).splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("  remove") and "b.jpg" in line)
    assert lines[at + 1].strip().startswith("frees no space")
    assert sum("frees no space" in line for line in lines) == 1
