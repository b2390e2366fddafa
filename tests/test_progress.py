"""Progress: every stage reports real counts, in order; the tqdm bars label them."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import imgdup
from imgdup.progress import TqdmProgress

from .conftest import THRESHOLD


def test_stages_report_real_counts_in_order(shared_planted_root: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    result = imgdup.find_duplicates(
        [shared_planted_root], threshold=THRESHOLD, jobs=1, progress=lambda *a: calls.append(a)
    )
    stages = [c[0] for c in calls]
    order = ["discover", "hash", "search", "measure", "decide"]
    seen = [s for s in order if s in stages]
    assert seen[:3] == ["discover", "hash", "search"] and seen[-1] == "decide"
    assert [s for s in dict.fromkeys(stages)] == seen  # each stage starts once, in pipeline order
    last = {s: (d, t) for s, d, t in calls}
    assert last["discover"] == (result.summary.files, 0)
    assert last["hash"] == (result.summary.files, result.summary.files)
    distinct = len({r.hash for r in result.records if not r.low_information})
    assert last["search"] == (distinct, distinct) and distinct > 1
    assert last["decide"] == (len(result.clusters), len(result.clusters))
    for stage in stages:  # counts never go backwards
        done = [d for s, d, _ in calls if s == stage]
        assert done == sorted(done)


def test_tqdm_bars_are_labelled(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    bars = TqdmProgress()
    bars("discover", 300, 0)
    bars("hash", 40, 300)
    bars("search", 250, 250)
    bars("decide", 12, 12)
    bars.close()
    text = err.getvalue()
    assert "finding files" in text and "300 files" in text
    assert "hashing" in text and "40/300" in text
    assert "searching" in text and "250/250" in text
    assert "deciding" in text and "12/12" in text
