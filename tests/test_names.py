"""File names that are not valid UTF-8 (bytes on POSIX) go through every stage losslessly."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .synth import photo

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(sys.platform == "darwin", reason="macOS refuses names that are not UTF-8")


def bpath(root: Path, *parts: bytes) -> Path:
    return Path(os.fsdecode(os.path.join(os.fsencode(root), *parts)))


def snapshot(root: Path) -> dict[bytes, bytes]:
    """Every regular file under ``root`` by its name's bytes -> content."""
    out = {}
    for folder, _dirs, files in os.walk(os.fsencode(root)):
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                with open(path, "rb") as fh:
                    out[os.path.relpath(path, os.fsencode(root))] = fh.read()
    return out


def imgdup(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "imgdup", *args, "--no-progress"],
        capture_output=True, timeout=120, cwd=REPO, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.mark.parametrize(
    "raw", [b"caf\xe9.png", b"\xff\xfe", b"back\\x41slash\\\\.png", "ünï.png".encode(), b"plain.png"]
)
def test_json_and_csv_encodings_round_trip_the_exact_bytes(raw: bytes) -> None:
    from imgdup.names import from_csv_cell, from_json_text, to_csv_cell, to_json_text

    path = os.fsdecode(raw)
    text = to_json_text({"path": path, "list": [path]})
    text.encode("utf-8")  # always writable as UTF-8
    assert [os.fsencode(p) for p in from_json_text(text)["list"]] == [raw]
    cell = to_csv_cell(path)
    cell.encode("utf-8")
    assert os.fsencode(from_csv_cell(cell)) == raw


def test_names_that_are_not_utf8_through_scan_reports_removal_and_undo(tmp_path: Path) -> None:
    from json import loads as from_json_text  # what any reader does: the escapes are plain JSON

    from imgdup.names import from_csv_cell

    root = tmp_path / "data"
    root.mkdir()
    photo(1).save(root / "a.png")
    folder = bpath(root, b"caf\xe9")
    folder.mkdir()
    copy1 = bpath(folder, b"\xff-copy.png")
    copy2 = bpath(root, b"\xe9t\xe9.png")
    shutil.copyfile(root / "a.png", copy1)
    shutil.copyfile(root / "a.png", copy2)
    photo(2).save(bpath(root, b"other-\xfe.png"))
    bad = bpath(root, b"bad-\xff.png")
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not a png body")
    os.symlink("a.png", bpath(root, b"link-\xfe.png"))
    before = snapshot(root)
    cache = str(tmp_path / "cache.sqlite3")

    # scan, with the default cache; twice, the second from the cache
    for _ in range(2):
        res = imgdup("-d", str(root), "--cache", cache)
        assert res.returncode == 3, res.stderr  # 3: the broken file
        assert b"Traceback" not in res.stderr
        assert b"caf\\xe9/\\xff-copy.png" in res.stdout  # shown escaped, never as raw bytes
    # every report format
    reports = {fmt: tmp_path / f"r.{fmt}" for fmt in ("json", "csv", "html")}
    for path in reports.values():
        res = imgdup("-d", str(root), "--cache", cache, "--report", str(path), "-q")
        assert res.returncode == 3, res.stderr
    doc = from_json_text(reports["json"].read_text(encoding="utf-8"))
    (cluster,) = doc["clusters"]
    assert [os.fsencode(m["path"]) for m in cluster["members"]] == [
        os.fsencode(p) for p in (root / "a.png", copy1, copy2)
    ]
    assert [os.fsencode(m["relpath"]) for m in cluster["members"]][1] == b"caf\xe9/\xff-copy.png"
    assert [os.fsencode(f["path"]) for f in doc["failures"]] == [os.fsencode(bad)]
    assert os.fsencode(bpath(root, b"link-\xfe.png")) in [os.fsencode(s["path"]) for s in doc["skipped"]]
    rows = list(csv.DictReader(io.StringIO(reports["csv"].read_text(encoding="utf-8"))))
    assert [os.fsencode(from_csv_cell(r["path"])) for r in rows] == [os.fsencode(m["path"]) for m in cluster["members"]]
    page = reports["html"].read_text(encoding="utf-8")
    # The gallery's embedded plan holds the name as the JSON escape of its byte (exact, valid UTF-8).
    assert "\\udcff-copy.png" in page and "\udcff" not in page
    res = imgdup("-d", str(root), "--cache", cache, "--format", "json", "-q")
    assert from_json_text(res.stdout.decode("utf-8")) == doc

    # removal, then undo
    res = imgdup("-d", str(root), "--cache", cache, "-r", "1", "--quarantine", str(tmp_path / "q"), "-q")
    assert res.returncode == 3, res.stderr
    assert not copy1.exists() and not copy2.exists() and (root / "a.png").exists()
    (manifest,) = (tmp_path / "q").glob("*/manifest.json")
    entries = from_json_text(manifest.read_text(encoding="utf-8"))["entries"]
    assert sorted(os.fsencode(e["path"]) for e in entries) == sorted([os.fsencode(copy1), os.fsencode(copy2)])
    assert not list((tmp_path / "q").glob("*/manifest.json.tmp"))
    res = imgdup("--undo", str(manifest))
    assert res.returncode == 0, res.stderr
    assert snapshot(root) == before


def test_json_layout_is_the_same_document_as_plain_json() -> None:
    """The fast layout (outer levels one item per line, members on one line) reads back as exactly
    what json.dumps would write, for every kind of key and value and for empty containers."""
    import json

    from imgdup.names import to_json_text

    doc = {
        "clusters": [{"id": 1, "members": [{"path": "a\udcff.jpg", "d": [1, 2.5], "m": {}}, {}], "e": []}],
        "summary": {"files": 3, "ok": True, "none": None},
        7: "int key",
        True: "bool key",
        "nested": [[[[[1]]]]],
    }
    text = to_json_text(doc)
    assert json.loads(text) == json.loads(json.dumps(doc))
    lines = text.splitlines()
    assert '        {"path": "a\\udcff.jpg", "d": [1, 2.5], "m": {}},' in lines  # a member: one line
    assert '  "7": "int key",' in lines and '  "true": "bool key",' in lines


def test_csv_cells_guarded_against_formulas_read_back_exactly(tmp_path: Path) -> None:
    """A name starting with - = + @ is written with a leading ' (a spreadsheet would run it);
    a name that itself starts with ' must not then read back as another file's name: both are
    told apart, and from_csv_cell gives each exact name back."""
    from imgdup import find_duplicates
    from imgdup.names import from_csv_cell
    from imgdup.report.tables import to_csv

    root = tmp_path / "d"
    root.mkdir()
    names = ["-rf.jpg", "'-rf.jpg", "=1+1.jpg", "''x.jpg", "plain.jpg"]
    for name in names:
        photo(3).save(root / name, quality=95 - len(name))  # one cluster: every file is a row
    rows = list(csv.DictReader(io.StringIO(to_csv(find_duplicates([root], jobs=1)))))
    assert sorted(from_csv_cell(r["relpath"]) for r in rows) == sorted(names)
    assert sorted(from_csv_cell(r["path"]) for r in rows) == sorted(str(root / n) for n in names)
    assert all(not r["relpath"].startswith(("-", "=", "+", "@")) for r in rows)


def test_root_folder_names_that_are_not_utf8_or_hold_control_characters_in_csv_and_text(tmp_path: Path) -> None:
    """QA pass 16: with two roots every member's ``split`` is its root's folder name, and the CSV
    wrote that cell unescaped: a root named ``caf\\xe9`` (not UTF-8) ended the command with a
    UnicodeEncodeError traceback and no report; the text report printed the raw byte and a
    root named with an escape sequence (ESC [2J clears a terminal) acted on the terminal."""
    from imgdup import find_duplicates
    from imgdup.names import from_csv_cell
    from imgdup.report.tables import to_csv
    from imgdup.report.text import format_text

    latin, esc = bpath(tmp_path, b"caf\xe9"), tmp_path / "esc\x1b[2J"
    for root in (latin, esc):
        root.mkdir()
        photo(4).save(root / "a.png")
    result = find_duplicates([latin, esc], jobs=1)
    (cluster,) = result.clusters
    labels = {os.fsencode(m.split) for m in cluster.members}
    assert labels == {b"caf\xe9", b"esc\x1b[2J"}  # the premise: the data keeps the exact names
    rows = list(csv.DictReader(io.StringIO(to_csv(result))))
    to_csv(result).encode("utf-8")  # writable: it raised UnicodeEncodeError
    assert {os.fsencode(from_csv_cell(r["split"])) for r in rows} == labels
    text = format_text(result)
    text.encode("utf-8")
    assert "\x1b" not in text
    assert "caf\\xe9" in text and "esc\\x1b[2J" in text


@pytest.mark.parametrize(
    "value",
    ["a\udcff.jpg", 'é\n\t"\\', 1, 2.5, float("nan"), float("-inf"), -0.0, 10**30, None, True, [], {},
     {"a": [1, {"b": None}], 3: "x", True: 1, None: 2, 2.5: 3}, [[["deep"]]]],
)  # fmt: skip
def test_the_reused_json_encoder_writes_what_json_writes(value: object) -> None:
    """The report's one-line parts come from one C encoder kept for every call (names._ENCODE):
    byte for byte what ``json.JSONEncoder(ensure_ascii=False).encode`` writes."""
    import json

    from imgdup.names import _ENCODE

    assert _ENCODE(value) == json.JSONEncoder(ensure_ascii=False).encode(value)
    with pytest.raises(TypeError):
        _ENCODE({"path": object()})
