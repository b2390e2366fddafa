"""What ``imgdup apply`` says about a plan it refuses or a cluster it skips names the cause and
the file (QA pass 10)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

import imgdup
from imgdup.plan import parse_plan

from .conftest import scan


def test_a_plan_without_its_host_says_the_field_is_missing(shared_planted_root: Path) -> None:
    """It read "this plan was written on None, not on this machine" (a hand-made or trimmed plan)."""
    doc: dict[str, Any] = imgdup.to_document(scan(shared_planted_root))
    del doc["host"]
    with pytest.raises(imgdup.PlanError) as exc:
        parse_plan(doc)
    assert "host" in str(exc.value) and "None" not in str(exc.value)


def test_a_skipped_cluster_names_its_kept_file_that_is_gone(planted_root: Path, tmp_path: Path) -> None:
    """The reason "skipped cluster 2: its kept file cannot be checked now: cannot read or decode: No such
    file or directory" named no file (which one, in a cluster of several kept files?)."""
    doc: dict[str, Any] = imgdup.to_document(scan(planted_root))
    c = next(c for c in doc["clusters"] if any(m["action"] == "remove" for m in c["members"]))
    os.remove(c["keep"])
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(doc), encoding="utf-8")
    done = imgdup.apply(plan, quarantine=tmp_path / "q")
    (reason,) = [s.reason for s in done.skipped if s.cluster == c["id"]]
    assert c["keep"] in reason
    assert all(os.path.lexists(m["path"]) for m in c["members"] if m["path"] != c["keep"])
