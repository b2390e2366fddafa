"""benchmarks/count_instructions.py: instructions by stage from callgrind's dumps."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import count_instructions

from .synth import photo

REPO = Path(__file__).resolve().parents[1]


def test_dumps_are_summed_by_the_stage_that_ran_since_the_last_one(tmp_path: Path) -> None:
    """Each dump holds the instructions since the one before, named by the stage then running:
    a stage met twice (a nested one's before and after) is summed; the final dump is the exit."""
    dumps = {
        "cg.out.1": "desc: Trigger: Client Request: walk\nsummary: 100\n",
        "cg.out.2": "desc: Trigger: Client Request: clustering, other\ntotals: 30\n",
        "cg.out.3": "desc: Trigger: Client Request: search\nsummary: 500\n",
        "cg.out.4": "desc: Trigger: Client Request: clustering, other\nsummary: 20\n",
        "cg.out": "desc: Trigger: Program termination\nsummary: 7\n",
    }
    for name, text in dumps.items():
        (tmp_path / name).write_text(f"version: 1\ncreator: callgrind\n{text}")
    assert count_instructions._counts(str(tmp_path)) == {"walk": 100, "clustering, other": 50, "search": 500, "exit": 7}


@pytest.mark.skipif(not (shutil.which("valgrind") and shutil.which("gcc")), reason="needs valgrind and gcc")
def test_a_real_count_names_the_stages_of_a_scan(tmp_path: Path) -> None:
    for k in range(4):
        photo(k).save(tmp_path / f"{k}.png")
    photo(0).save(tmp_path / "copy.png")
    done = subprocess.run(
        [sys.executable, "benchmarks/count_instructions.py", "--", "-d", str(tmp_path), "-j", "1", "--no-cache",
         "--no-progress", "--format", "json"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    shares = {line[:42].strip(): line for line in done.stdout.splitlines()[1:]}
    for stage in ("walk", "hash pass / cache read", "search", "decisions", "report JSON text", "whole process"):
        assert stage in shares, done.stdout
