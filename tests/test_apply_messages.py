"""What ``imgdup apply`` says about a plan it refuses or a cluster it skips names the cause and
the file (QA pass 10)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from decimal import Decimal
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


def test_a_plan_from_another_host_name_says_how_to_run_it_under_that_name(shared_planted_root: Path) -> None:
    """A container gets a new host name each run: a plan scanned in one was refused in the next,
    with no word of how to go on (QA pass 23)."""
    doc: dict[str, Any] = imgdup.to_document(scan(shared_planted_root))
    doc["host"] = "a1b2c3d4e5f6"
    with pytest.raises(imgdup.PlanError) as exc:
        parse_plan(doc)
    assert "'a1b2c3d4e5f6'" in str(exc.value) and "docker run --hostname" in str(exc.value)


def test_a_plan_of_object_store_files_says_they_are_report_only(shared_planted_root: Path) -> None:
    """The report of an ``s3://`` scan given to apply said "invalid plan: roots: not an absolute
    path", which reads like a damaged plan (QA pass 33)."""
    doc: dict[str, Any] = imgdup.to_document(scan(shared_planted_root))
    root = doc["roots"][0]
    doc = json.loads(json.dumps(doc).replace(json.dumps(root)[1:-1], "s3://photos/data"))
    with pytest.raises(imgdup.PlanError) as exc:
        parse_plan(doc)
    assert "s3://photos/data is an object-store URL" in str(exc.value) and "report-only" in str(exc.value)
    assert "not an absolute path" not in str(exc.value)


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


def test_the_csv_report_or_a_manifest_given_as_the_plan_says_what_to_give(planted_root: Path, tmp_path: Path) -> None:
    """``imgdup apply dups.csv`` (the CSV has an action column too) said "Expecting value: line 1
    column 1 (char 0)"; a removal manifest said only that its schema is not a plan's."""
    result = scan(planted_root)
    imgdup.write_report(result, tmp_path / "dups.csv")
    with pytest.raises(imgdup.PlanError, match=r"dups\.csv is the CSV report, not a plan.*--report FILE\.json"):
        imgdup.load_plan(tmp_path / "dups.csv")
    done = imgdup.remove(result, quarantine=tmp_path / "q")
    assert done.manifest is not None
    with pytest.raises(imgdup.PlanError, match=r"is a removal manifest, not a plan.*imgdup --undo"):
        imgdup.load_plan(done.manifest)


@pytest.mark.parametrize("content", [b"\xff\xd8\xff\xe0JFIF\x00", b"a.jpg\nb.jpg\n"])
def test_a_file_that_is_no_json_given_as_the_plan_says_what_to_give(tmp_path: Path, content: bytes) -> None:
    """``imgdup apply photo.jpg`` said "'utf-8' codec can't decode byte 0xff in position 0", a
    text file "Expecting value: line 1 column 1 (char 0)" (QA pass 20)."""
    given = tmp_path / "given"
    given.write_bytes(content)
    with pytest.raises(imgdup.PlanError, match=r"given is not a plan \(not JSON\).*--report FILE\.json") as exc:
        imgdup.load_plan(given)
    assert "codec" not in str(exc.value) and "Expecting value" not in str(exc.value)


def test_a_file_that_is_no_longer_a_regular_file_is_named_as_such(planted_root: Path, tmp_path: Path) -> None:
    """A file to remove replaced by a symbolic link was reported as "cannot read or decode: Too
    many levels of symbolic links", a folder as "Is a directory", a kept file replaced by a FIFO
    as "file changed while it was being scanned"."""
    doc: dict[str, Any] = imgdup.to_document(scan(planted_root))
    acting = [c for c in doc["clusters"] if any(m["action"] == "remove" for m in c["members"])]
    assert len(acting) >= 2
    link_cluster, fifo_cluster = acting[:2]
    victim = next(m["path"] for m in link_cluster["members"] if m["action"] == "remove")
    os.remove(victim)
    os.symlink(link_cluster["keep"], victim)
    os.remove(fifo_cluster["keep"])
    os.mkfifo(fifo_cluster["keep"])
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(doc), encoding="utf-8")
    done = imgdup.apply(plan, quarantine=tmp_path / "q", jobs=1)
    reasons = {s.cluster: s.reason for s in done.skipped}
    assert f"{victim}: it is now a symbolic link" in reasons[link_cluster["id"]]
    assert (
        f"{fifo_cluster['keep']} cannot be checked now: it is no longer a regular file" in reasons[fifo_cluster["id"]]
    )
    assert os.path.islink(victim)


@pytest.mark.parametrize("jobs", [0, -1])
def test_apply_refuses_a_worker_count_below_one_as_a_scan_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], jobs: int
) -> None:
    """``imgdup apply PLAN -j 0`` ran with one worker, silently; ``imgdup -d X -j 0`` is a usage error."""
    from imgdup.cli import main

    with pytest.raises(imgdup.UsageError, match="jobs must be"):
        imgdup.apply(tmp_path / "plan.json", jobs=jobs)
    assert main(["apply", str(tmp_path / "plan.json"), "-j", str(jobs)]) == 2
    assert "jobs must be" in capsys.readouterr().err


def test_a_kept_file_that_changed_since_the_scan_says_so(planted_root: Path, tmp_path: Path) -> None:
    """It read "cannot be checked now: file changed while it was being scanned" (the hash pass's
    words for a file whose size or time moved under it) for a kept file edited after the scan."""
    doc: dict[str, Any] = imgdup.to_document(scan(planted_root))
    c = next(c for c in doc["clusters"] if any(m["action"] == "remove" for m in c["members"]))
    with open(c["keep"], "ab") as fh:
        fh.write(b"\0")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(doc), encoding="utf-8")
    done = imgdup.apply(plan, quarantine=tmp_path / "q", jobs=1)
    (reason,) = [s.reason for s in done.skipped if s.cluster == c["id"]]
    assert f"its kept file {c['keep']} changed since the scan" in reason and "being scanned" not in reason


@pytest.mark.parametrize(
    ("mtime_ns", "as_jq_16_writes_it"),
    # jq 1.6 prints the shortest decimal that reads back as the double: 1700000000123456800
    [(1_700_000_000_123_456_789, lambda t: int(Decimal(repr(float(t))))), (1_700_000_000 * 10**9, float)],
    ids=["rounded", "exponent"],
)
def test_a_plan_whose_times_a_json_tool_rounded_says_so(
    tmp_path: Path, mtime_ns: int, as_jq_16_writes_it: Callable[[int], object]
) -> None:
    """jq 1.6 (Debian 12's) reads numbers as doubles: 1700000000123456789 came back as
    ...456800, and apply skipped every cluster saying its kept file "changed since the scan",
    though none did; a whole second came back as 1.7e+18, refused as "not a whole number"
    (QA pass 35). The plan is refused, saying that the tool rounded its numbers; nothing is done."""
    from .conftest import picture

    root = tmp_path / "d"
    root.mkdir()
    picture(91).save(root / "a.png")
    picture(91).save(root / "b.jpg", quality=80)
    for name in ("a.png", "b.jpg"):
        os.utime(root / name, ns=(mtime_ns, mtime_ns))
    doc: dict[str, Any] = imgdup.to_document(imgdup.find_duplicates([root], jobs=1))
    for m in doc["clusters"][0]["members"]:
        m["mtime_ns"] = as_jq_16_writes_it(m["mtime_ns"])
    with pytest.raises(imgdup.PlanError, match=r"round.*jq 1\.6.*jq 1\.7"):
        imgdup.apply(doc, quarantine=tmp_path / "q", jobs=1)
    assert sorted(p.name for p in root.iterdir()) == ["a.png", "b.jpg"]


@pytest.mark.parametrize("where", ["inside", "file"])
def test_apply_with_a_quarantine_it_cannot_use_is_a_usage_error_as_for_a_scan(
    planted_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """``imgdup -d X -r 1 --quarantine X/q`` is a usage error (exit 2); ``imgdup apply PLAN
    --quarantine X/q`` was an error (exit 1), with the same nothing done."""
    from imgdup.cli import main

    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(imgdup.to_document(scan(planted_root))), encoding="utf-8")
    quarantine = planted_root / "q" if where == "inside" else tmp_path / "a-file"
    if where == "file":
        quarantine.write_text("x", encoding="utf-8")
    before = sorted(planted_root.rglob("*"))
    assert main(["apply", str(plan), "--quarantine", str(quarantine), "--no-cache", "-j", "1"]) == 2
    assert "quarantine" in capsys.readouterr().err
    assert sorted(planted_root.rglob("*")) == before


def _plan_with_every_removal_gone(root: Path, tmp_path: Path) -> Path:
    """A scan's plan, saved, after every file it marks remove (every name of it) was deleted."""
    doc: dict[str, Any] = imgdup.to_document(scan(root))
    for c in doc["clusters"]:
        for m in c["members"]:
            if m["action"] == "remove":
                for name in (m["path"], *m.get("hardlinks", [])):
                    os.remove(name)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(doc), encoding="utf-8")
    return plan


def test_a_removal_that_moved_nothing_offers_no_undo(
    planted_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every file to remove gone since the scan: it printed "moved to the quarantine: 0 files"
    and "undo with: imgdup --undo ..." for a manifest of nothing."""
    from imgdup.cli import main

    plan = _plan_with_every_removal_gone(planted_root, tmp_path)
    assert main(["apply", str(plan), "--quarantine", str(tmp_path / "q"), "--no-cache", "-j", "1"]) == 3
    out = capsys.readouterr().out
    assert "nothing was moved" in out and "is gone" in out
    assert "undo with" not in out


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"hash_size": 17}, "hash_size"),
        ({"hash": "bogus"}, "unknown hash"),
        ({"threshold": 65}, "threshold"),
        ({"threshold": -1}, "threshold"),
    ],
)
def test_a_plan_whose_hash_settings_are_invalid_is_refused(
    shared_planted_root: Path, change: dict[str, Any], says: str
) -> None:
    """Invalid settings were replaced by the defaults (phash, 64 bits) without a word: a 256-bit
    scan's threshold of 32 then measured 64-bit hashes, where 32 bits is chance level, and
    different pictures passed apply's check; a threshold above the bits passed anything."""
    doc: dict[str, Any] = imgdup.to_document(scan(shared_planted_root))
    doc["settings"].update(change)
    with pytest.raises(imgdup.PlanError, match=says):
        imgdup.apply(doc)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"rotations": "false"}, "rotations must be true or false, got 'false'"),
        ({"regions": "no"}, "regions must be true or false"),
        ({"hash_size": 8.9}, "hash_size must be a whole number, got 8.9"),
        ({"hash_size": "16"}, "hash_size must be a whole number"),
        ({"hash": None}, "hash must be a string"),
    ],
)
def test_a_plan_whose_hash_settings_have_the_wrong_type_is_refused(
    tmp_path: Path, change: dict[str, Any], says: str
) -> None:
    """They were coerced, not refused: "rotations": "false" (a string) turned rotations on, and a
    mirrored picture the scan had not matched was removed; "hash_size": 8.9 was read as 8 (QA
    pass 35). Each is refused, naming the key and what it must be."""
    doc: dict[str, Any] = imgdup.to_document(imgdup.find_duplicates([tmp_path], jobs=1))
    doc["settings"].update(change)
    with pytest.raises(imgdup.PlanError, match=re.escape(f"settings: {says}")):
        imgdup.apply(doc, quarantine=tmp_path / "q")


def test_a_removal_that_moved_nothing_offers_no_undo_when_its_reader_left(planted_root: Path, tmp_path: Path) -> None:
    """``imgdup apply PLAN | head -0`` with every file to remove gone: stderr said "0 files moved
    to the quarantine" and gave an undo command for a manifest of nothing."""
    from .test_messages import _closed_stdout_run

    plan = _plan_with_every_removal_gone(planted_root, tmp_path)
    done = _closed_stdout_run("apply", str(plan), "--quarantine", str(tmp_path / "q"))
    assert done.returncode == 3, done.stderr
    assert "undo with" not in done.stderr and "0 files" not in done.stderr
    assert "skipped" in done.stderr


@pytest.mark.parametrize("value", [None, "8", 8.0, True])
def test_a_plan_whose_threshold_is_missing_or_not_whole_is_refused(
    planted_root: Path, tmp_path: Path, value: object
) -> None:
    """It was read as 0: every near-duplicate cluster was skipped as "not within the threshold"
    with nothing saying that the plan lacked one. Nothing is removed."""
    doc: dict[str, Any] = imgdup.to_document(scan(planted_root))
    if value is None:
        del doc["settings"]["threshold"]
    else:
        doc["settings"]["threshold"] = value
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(doc), encoding="utf-8")
    before = sorted(p for p in planted_root.rglob("*") if p.is_file())
    with pytest.raises(imgdup.PlanError, match="threshold"):
        imgdup.apply(plan, quarantine=tmp_path / "q")
    assert sorted(p for p in planted_root.rglob("*") if p.is_file()) == before


@pytest.mark.parametrize("permanent", [False, True])
def test_a_plan_applied_twice_says_which_earlier_run_took_each_file(
    planted_root: Path, tmp_path: Path, permanent: bool
) -> None:
    """The second run said only "X is gone" of every file the first one had taken away, which
    reads like a file lost (QA pass 21 left it): it names the earlier run, and how to undo it."""
    result = scan(planted_root)
    quarantine = tmp_path / "q"
    first = imgdup.remove(result, quarantine=quarantine, permanent=permanent)
    assert first.removed and first.manifest
    again = imgdup.remove(result, quarantine=quarantine, permanent=permanent)
    assert not again.removed and again.manifest is None
    gone = [s.reason for s in again.skipped if " is gone" in s.reason]
    assert gone and len(gone) == len({r.cluster for r in first.removed})
    said = (
        f"deleted permanently by an earlier run (manifest {first.manifest})"
        if permanent
        else f"an earlier run moved it to the quarantine (imgdup --undo {first.manifest} puts it back)"
    )
    assert all(reason.endswith(f" is gone: {said}") for reason in gone), gone


def test_a_file_gone_since_an_earlier_run_was_undone_is_just_gone(planted_root: Path, tmp_path: Path) -> None:
    """A file an earlier run moved, that its undo put back, then deleted by hand: no earlier run
    holds it any more, so none is named."""
    result = scan(planted_root)
    quarantine = tmp_path / "q"
    first = imgdup.remove(result, quarantine=quarantine)
    assert first.manifest and not imgdup.undo(first.manifest).problems
    victim = first.removed[0].path
    os.remove(victim)
    again = imgdup.remove(result, quarantine=quarantine)
    assert any(s.reason == f"{victim} is gone" for s in again.skipped), again.skipped


def test_a_file_no_rule_links_to_a_kept_one_is_not_given_a_stand_in_distance(
    planted_root: Path, tmp_path: Path
) -> None:
    """Two clusters crossed in a plan: the skip said "64 bits from the nearest", the region rule's
    "nothing confirmed" taken for a distance (QA pass 23 left it). It says no comparison links
    them, and how far apart the whole images are."""
    from .test_apply import crossed_plan, write_plan

    doc, a, b = crossed_plan(planted_root)
    done = imgdup.apply(write_plan(doc, tmp_path / "plan.json"), quarantine=tmp_path / "q")
    reasons = [s.reason for s in done.skipped if s.cluster in (a["id"], b["id"])]
    assert len(reasons) == 2
    for reason in reasons:
        assert "64 bits from the nearest" not in reason
        plain = int(reason.split("the whole images are ")[1].split(" bits apart")[0])
        assert 4 < plain < 64 and "no comparison links them under the scan's rules" in reason, reason


def test_a_manifest_in_the_quarantine_nested_too_deep_is_passed_over(planted_root: Path, tmp_path: Path) -> None:
    """Every manifest in the quarantine is read once a file is found gone: one nested deeper than
    the JSON reader's recursion limit (damaged, or not imgdup's) raised RecursionError out of the
    removal, after the clusters before it had moved, and out of undo (QA pass 28). It is not a
    manifest: passed over, and refused by undo as such."""
    result = scan(planted_root)
    quarantine = tmp_path / "q"
    first = imgdup.remove(result, quarantine=quarantine)
    assert first.removed and first.manifest
    hostile = quarantine / "00000000-000000-1" / "manifest.json"
    hostile.parent.mkdir()
    hostile.write_text('{"schema": 1, "entries": ' + "[" * 100_000 + "]" * 100_000 + "}", encoding="utf-8")
    again = imgdup.remove(result, quarantine=quarantine)
    gone = [s.reason for s in again.skipped if " is gone" in s.reason]
    assert gone and all(r.endswith(f"(imgdup --undo {first.manifest} puts it back)") for r in gone), gone
    with pytest.raises(imgdup.ManifestError, match="cannot read manifest"):
        imgdup.undo(hostile)


def test_a_plan_nested_too_deep_to_read_is_a_plan_error(tmp_path: Path) -> None:
    """A file nested deeper than the JSON reader's recursion limit raised a bare RecursionError
    (a traceback from the command) instead of saying the plan cannot be read (QA pass 28)."""
    plan = tmp_path / "plan.json"
    plan.write_text('{"clusters": ' + "[" * 100_000 + "]" * 100_000 + "}", encoding="utf-8")
    with pytest.raises(imgdup.PlanError, match="cannot read the plan"):
        imgdup.load_plan(plan)


def test_of_two_earlier_runs_in_one_second_the_later_ones_word_stands(planted_root: Path, tmp_path: Path) -> None:
    """Run folders are named <time>-<n>, n counting the runs of one second: sorted as text, run 10
    came before run 2, and the earlier run's word stood over the later one's."""
    result = scan(planted_root)
    quarantine = tmp_path / "q"
    first = imgdup.remove(result, quarantine=quarantine, permanent=True)
    assert first.manifest
    run = Path(first.manifest).parent
    earlier, later = quarantine / "20000101-000000-2", quarantine / "20000101-000000-10"
    run.rename(later)
    earlier.mkdir()
    (earlier / "manifest.json").write_bytes((later / "manifest.json").read_bytes())
    again = imgdup.remove(result, quarantine=quarantine, permanent=True)
    gone = [s.reason for s in again.skipped if " is gone" in s.reason]
    assert gone
    said = f"deleted permanently by an earlier run (manifest {later / 'manifest.json'})"
    assert all(reason.endswith(f" is gone: {said}") for reason in gone), gone


def test_a_missing_manifest_or_plan_is_named_without_the_raw_os_error(tmp_path: Path) -> None:
    """``imgdup --undo x.json`` of a typo said "cannot read manifest x.json: [Errno 2] No such file
    or directory: 'x.json'", the name twice and Python's error number (QA pass 34)."""
    missing = tmp_path / "missing.json"
    with pytest.raises(imgdup.ManifestError) as err:
        imgdup.undo(missing)
    assert str(err.value) == f"cannot read manifest {missing}: No such file or directory"
    with pytest.raises(imgdup.PlanError) as plan_err:
        imgdup.load_plan(missing)
    assert str(plan_err.value) == f"cannot read the plan {missing}: No such file or directory"
