"""A typed user script passes mypy --strict: the API's hints say what it takes (paths as str, bytes
or pathlib.Path, one or many) and what it returns."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy")

REPO = Path(__file__).resolve().parents[1]

SCRIPT = """
from __future__ import annotations

import os
from pathlib import Path

import imgdup
from imgdup import Action, Plan, RemovalResult, ScanResult, UndoResult


def main() -> None:
    result: ScanResult = imgdup.find_duplicates(
        [Path("data/test"), b"data/val"], reference=(Path(p) for p in ["data/train", "more"]), files=Path("x.jpg"),
        labels=b"labels.csv", cache=Path("cache.db"), keep="oldest,size", progress=lambda s, d, t: None,
    )
    in_memory: ScanResult = imgdup.find_duplicates("data", labels={"data/a.jpg": "cat", "data/b.jpg": "dog"})
    leaked: set[str] = {p for pair in result.leak_pairs for p in pair.files_a + pair.files_b}
    drop: list[str] = [m.record.path for c in result.clusters for m in c.members if m.action is Action.REMOVE]
    labels: list[str | None] = [m.label for c in result.clusters for m in c.members]
    rows: list[dict[str, object]] = result.to_records()
    doc: dict[str, object] = imgdup.to_document(result)
    text: str = imgdup.format_text(result)
    written: str = imgdup.write_report(result, b"r.json")
    sheets: list[str] = imgdup.write_montages(result, Path("sheets"))
    done: RemovalResult = imgdup.remove(result, quarantine=b"/tmp/q")
    if done.manifest is not None:
        back: UndoResult = imgdup.undo(os.fsencode(done.manifest))
        print(back.restored)
    plan: Plan = imgdup.load_plan(Path("r.json"))
    again: RemovalResult = imgdup.apply(plan, quarantine=Path("/tmp/q"), cache=b"cache.db")
    print(in_memory, leaked, drop, labels, rows, doc, text, written, sheets, again.bytes_freed, imgdup.apply(b"r.json"))
"""


def test_a_typed_user_script_passes_mypy_strict(tmp_path: Path) -> None:
    script = tmp_path / "user.py"
    script.write_text(SCRIPT)
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-incremental", str(script)],
        capture_output=True, text=True, cwd=tmp_path, env={"MYPYPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr  # bytes paths were refused by the hints
