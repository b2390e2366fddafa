"""The montage labels a file with the name the text report prints: control characters and bytes
that are not UTF-8 escaped, so two names never draw alike (QA pass 10)."""

from __future__ import annotations

import os

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
