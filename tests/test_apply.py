"""Applying a saved plan: the same guarantees as --remove 1, and every hostile plan refused."""

from __future__ import annotations

import copy
import json
import os
import platform
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import imgdup
from imgdup.cli import main
from imgdup.plan import parse_plan

from .conftest import A_ORIG, A_Q50, B_LINK, B_ORIG, THRESHOLD, rel, scan


def write_plan(doc: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def scanned_plan(root: Path) -> dict[str, Any]:
    return imgdup.to_document(scan(root))


def to_remove(doc: dict[str, Any]) -> set[str]:
    return {n for c in doc["clusters"] for m in c["members"] if m["action"] == "remove"
            for n in (m["path"], *m.get("hardlinks", []))}  # fmt: skip


def present(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def test_apply_saved_report_moves_exactly_the_planned_files(planted_root: Path, tmp_path: Path) -> None:
    doc = scanned_plan(planted_root)
    planned = to_remove(doc)
    assert planned
    before = present(planted_root)
    done = imgdup.apply(write_plan(doc, tmp_path / "plan.json"), quarantine=tmp_path / "q")
    assert {r.path for r in done.removed} == planned
    assert present(planted_root) == before - planned
    assert not done.skipped
    imgdup.undo(done.manifest)  # type: ignore[arg-type]
    assert present(planted_root) == before


def test_apply_follows_the_reviewed_decisions(planted_root: Path, tmp_path: Path) -> None:
    """A member switched to 'review' stays; one switched to 'remove' goes; 'keep this one' moves the keeper."""
    doc = scanned_plan(planted_root)
    (a,) = [c for c in doc["clusters"] if any(rel(planted_root, m["path"]) == A_ORIG for m in c["members"])]
    by_rel = {rel(planted_root, m["path"]): m for m in a["members"]}
    for m in a["members"]:
        m["action"] = "remove"
    by_rel[A_Q50]["action"] = "keep"  # keep this one: the q50 copy instead of the original
    a["keep"] = by_rel[A_Q50]["path"]
    by_rel[A_ORIG]["action"] = "review"  # leave the original alone
    planned = to_remove(doc)
    before = present(planted_root)
    done = imgdup.apply(imgdup.load_plan(write_plan(doc, tmp_path / "plan.json")), quarantine=tmp_path / "q")
    assert {r.path for r in done.removed} == planned
    assert by_rel[A_ORIG]["path"] in present(planted_root)
    assert by_rel[A_Q50]["path"] in present(planted_root)
    assert present(planted_root) == before - planned


def test_apply_skips_a_cluster_whose_file_changed(planted_root: Path, tmp_path: Path) -> None:
    doc = scanned_plan(planted_root)
    (b,) = [c for c in doc["clusters"] if any(rel(planted_root, m["path"]) == B_ORIG for m in c["members"])]
    victim = next(m for m in b["members"] if m["action"] == "remove")
    with open(victim["path"], "ab") as fh:
        fh.write(b"changed")
    done = imgdup.apply(write_plan(doc, tmp_path / "plan.json"), quarantine=tmp_path / "q")
    assert b["id"] in {s.cluster for s in done.skipped}
    names_b = {n for m in b["members"] for n in (m["path"], *m.get("hardlinks", []))}
    assert all(os.path.lexists(n) for n in names_b)
    assert {r.path for r in done.removed} == to_remove(doc) - names_b


def test_apply_skips_a_cluster_whose_keeper_changed(planted_root: Path, tmp_path: Path) -> None:
    doc = scanned_plan(planted_root)
    c = next(c for c in doc["clusters"] if any(m["action"] == "remove" for m in c["members"]))
    keeper = c["keep"]
    content = Path(keeper).read_bytes()
    st = os.stat(keeper)
    Path(keeper).write_bytes(content[::-1])  # same size, same mtime, other content
    os.utime(keeper, ns=(st.st_atime_ns, st.st_mtime_ns))
    done = imgdup.apply(write_plan(doc, tmp_path / "plan.json"), quarantine=tmp_path / "q")
    assert c["id"] in {s.cluster for s in done.skipped}
    assert all(os.path.lexists(m["path"]) for m in c["members"])


def test_hard_links_of_a_removed_file_go_with_it(planted_root: Path, tmp_path: Path) -> None:
    doc = scanned_plan(planted_root)
    done = imgdup.apply(write_plan(doc, tmp_path / "plan.json"), quarantine=tmp_path / "q")
    removed = {rel(planted_root, r.path) for r in done.removed}
    assert (B_ORIG in removed) == (B_LINK in removed)


def _refused(doc: Any, match: str) -> None:
    with pytest.raises(imgdup.PlanError, match=match):
        parse_plan(doc)


def test_plan_from_another_machine_is_refused(shared_planted_root: Path) -> None:
    doc = scanned_plan(shared_planted_root)
    doc["host"] = platform.node() + "-elsewhere"
    _refused(doc, "not on this machine")


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda m, c, d: m.update(path="/etc/passwd"), "outside its root"),
        (lambda m, c, d: m.update(path=m["root"] + "/../x.jpg", relpath="../x.jpg"), "not normalised"),
        (lambda m, c, d: m.update(relpath="other.jpg"), "outside its root"),
        (lambda m, c, d: m.update(root="/tmp"), "not one of the plan's roots"),
        (lambda m, c, d: m.update(hardlinks=["/etc/shadow"]), "outside every root"),
        (lambda m, c, d: m.update(action="delete"), "action must be"),
        (lambda m, c, d: m.update(sha256="x"), "sha256"),
        (lambda m, c, d: m.update(bytes=-1), "bytes"),
        (lambda m, c, d: d["roots"].append(d["roots"][0] + "/inner"), "inside another"),
        (lambda m, c, d: d.update(schema="imgdup.report/0"), "schema"),
        (lambda m, c, d: d.update(reference=["/etc"]), "reference: a folder outside the roots"),
        (lambda m, c, d: c["members"].append(copy.deepcopy(c["members"][0])), "listed twice"),
    ],
)
def test_hostile_or_broken_plans_are_refused(shared_planted_root: Path, change: Any, match: str) -> None:
    doc = scanned_plan(shared_planted_root)
    cluster = next(c for c in doc["clusters"] if any(m["action"] == "remove" for m in c["members"]))
    member = next(m for m in cluster["members"] if m["action"] == "remove")
    change(member, cluster, doc)
    _refused(doc, match)


def test_a_plan_whose_root_is_the_file_system_root_is_not_called_nested(shared_planted_root: Path) -> None:
    """A plan of the one root "/" was refused as "a root lies inside another": the root was
    compared with itself (QA pass 35). Read, not applied (a removal walks its roots)."""
    doc = scanned_plan(shared_planted_root)
    doc["roots"] = ["/"]
    for m in (m for c in doc["clusters"] for m in c["members"]):
        m.update(root="/", relpath=m["path"][1:])
    assert parse_plan(doc).roots == ("/",)
    doc["roots"].append(str(shared_planted_root))
    _refused(doc, "inside another")


def test_a_cluster_that_removes_every_copy_is_refused(shared_planted_root: Path) -> None:
    doc = scanned_plan(shared_planted_root)
    cluster = next(c for c in doc["clusters"] if any(m["action"] == "remove" for m in c["members"]))
    for m in cluster["members"]:
        m["action"] = "remove"
    _refused(doc, re.escape('it marks every member "remove": mark the copy to keep "keep"'))


def test_a_plan_whose_kept_member_was_changed_by_hand_says_what_to_set(shared_planted_root: Path) -> None:
    """The actions swapped by hand in a saved report, its cluster's "keep" left as it was: refused,
    and the message names the path to set it to (it said only "not a kept member")."""
    doc = scanned_plan(shared_planted_root)
    cluster = next(c for c in doc["clusters"] if any(m["action"] == "remove" for m in c["members"]))
    kept = next(m for m in cluster["members"] if m["action"] == "keep")
    removed = next(m for m in cluster["members"] if m["action"] == "remove")
    kept["action"], removed["action"] = "remove", "keep"
    now = removed["path"]
    _refused(doc, re.escape(f'set its "keep" to the path of the member marked "keep" ({now!r})'))


def test_another_name_of_the_kept_file_is_not_removed_as_its_copy(planted_root: Path, tmp_path: Path) -> None:
    """A scan folds every name of a file into one member; a plan edited to list a second name
    of the kept file as a copy of it had that name moved. Here the name is a hard link (the
    data stays under the first), but through a folder bind-mounted inside the root, or in
    another case on a case-insensitive disk, the second name is the kept file's own entry:
    moving it emptied the cluster (reproduced with a bind mount)."""
    doc = scanned_plan(planted_root)
    (b,) = [c for c in doc["clusters"] if any(rel(planted_root, m["path"]) == B_ORIG for m in c["members"])]
    orig = next(m for m in b["members"] if rel(planted_root, m["path"]) == B_ORIG)
    assert orig.pop("hardlinks") == [str(planted_root / B_LINK)]  # premise: the scan named the link
    link = {**orig, "path": str(planted_root / B_LINK), "relpath": B_LINK, "action": "remove"}
    for m in b["members"]:
        m["action"] = "review"
    orig["action"], b["keep"] = "keep", orig["path"]
    b["members"].append(link)
    done = imgdup.apply(write_plan(doc, tmp_path / "plan.json"), quarantine=tmp_path / "q")
    assert link["path"] not in {r.path for r in done.removed}
    (skip,) = [s for s in done.skipped if s.cluster == b["id"]]
    assert "a kept file itself" in skip.reason
    assert (planted_root / B_LINK).is_file() and os.path.samefile(planted_root / B_LINK, planted_root / B_ORIG)


def test_another_name_of_a_file_kept_in_another_cluster_is_not_removed(planted_root: Path, tmp_path: Path) -> None:
    """The same across clusters: a plan that keeps a file in one cluster and removes another
    name of it in a second, as a copy of that cluster's keeper, had the name moved."""
    doc = scanned_plan(planted_root)
    (b,) = [c for c in doc["clusters"] if any(rel(planted_root, m["path"]) == B_ORIG for m in c["members"])]
    orig = next(m for m in b["members"] if rel(planted_root, m["path"]) == B_ORIG)
    assert orig.pop("hardlinks") == [str(planted_root / B_LINK)]  # premise: the scan named the link
    keeper = next(m for m in b["members"] if m["path"] == b["keep"])
    assert keeper is not orig  # premise: another copy (B_COPY) is kept, B_ORIG removed
    link = {**orig, "path": str(planted_root / B_LINK), "relpath": B_LINK, "action": "remove"}
    alone = {"id": max(c["id"] for c in doc["clusters"]) + 1, "keep": orig["path"], "keep_reason": "",
             "diameter": 0, "members": [{**orig, "action": "keep"}]}  # fmt: skip
    b["members"] = [keeper, link]
    doc["clusters"].append(alone)
    done = imgdup.apply(write_plan(doc, tmp_path / "plan.json"), quarantine=tmp_path / "q")
    assert link["path"] not in {r.path for r in done.removed}
    (skip,) = [s for s in done.skipped if s.cluster == b["id"]]
    assert "a kept file itself" in skip.reason
    assert (planted_root / B_LINK).is_file()


def test_a_cluster_left_entirely_alone_is_valid_and_untouched(planted_root: Path, tmp_path: Path) -> None:
    doc = scanned_plan(planted_root)
    for c in doc["clusters"]:
        c["keep"] = None
        for m in c["members"]:
            m["action"] = "review"
    before = present(planted_root)
    done = imgdup.apply(write_plan(doc, tmp_path / "plan.json"), quarantine=tmp_path / "q")
    assert done.removed == () and present(planted_root) == before


def test_a_root_replaced_by_a_symlink_is_refused(planted_root: Path, tmp_path: Path) -> None:
    doc = scanned_plan(planted_root)
    moved = tmp_path / "moved"
    planted_root.rename(moved)
    planted_root.symlink_to(moved)
    with pytest.raises(imgdup.PlanError, match="no longer a real folder"):
        imgdup.apply(write_plan(doc, tmp_path / "plan.json"), quarantine=tmp_path / "q")
    assert present(moved) == {str(p) for p in moved.rglob("*") if p.is_file() or p.is_symlink()}
    assert not (tmp_path / "q").exists()


def test_cli_apply_verb_and_option(planted_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "r.json"
    rc = main(["-d", str(planted_root), "-t", str(THRESHOLD), "--no-cache", "-j", "1", "--report", str(report), "-q"])
    assert rc == 3  # unreadable planted files
    planned = to_remove(json.loads(report.read_text(encoding="utf-8")))
    before = present(planted_root)
    capsys.readouterr()
    # the options a scan takes for its workers and its bar are taken here too (apply hashes files)
    assert main(["apply", str(report), "--quarantine", str(tmp_path / "q"), "-j", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    files = sum(m["action"] == "remove" for c in json.loads(report.read_text())["clusters"] for m in c["members"])
    assert files < len(planned)  # a hard link goes with its file: counted as a name, not a file
    assert f"moved to the quarantine: {files} files (" in out and f"; {len(planned)} names: hard links" in out
    assert present(planted_root) == before - planned
    # Applying again: every planned file is gone now, so each of those clusters is skipped.
    assert main(["--apply", str(report), "--quarantine", str(tmp_path / "q"), "--format", "json"]) == 3
    doc = json.loads(capsys.readouterr().out)
    assert doc["removal"]["removed"] == [] and doc["removal"]["skipped_clusters"]


def test_cli_apply_refuses_a_foreign_plan(
    planted_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = scanned_plan(planted_root)
    doc["host"] = "elsewhere.example"
    before = present(planted_root)
    assert main(["apply", str(write_plan(doc, tmp_path / "p.json")), "--quarantine", str(tmp_path / "q")]) == 1
    assert "not on this machine" in capsys.readouterr().err
    assert present(planted_root) == before


def crossed_plan(root: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The planted set's plan with the clusters of A and B crossed (each removes a copy of the
    other's picture, a script's mistake), and those two clusters."""
    doc = scanned_plan(root)
    a, b = (next(c for c in doc["clusters"] if any(rel(root, m["path"]) == x for m in c["members"]))
            for x in (A_ORIG, B_ORIG))  # fmt: skip
    ma = next(m for m in a["members"] if m["action"] == "remove")
    mb = next(m for m in b["members"] if m["action"] == "remove")
    a["members"] = [m for m in a["members"] if m is not ma] + [mb]
    b["members"] = [m for m in b["members"] if m is not mb] + [ma]
    return doc, a, b


def test_a_file_moved_into_another_cluster_is_not_removed(planted_root: Path, tmp_path: Path) -> None:
    """A scripted or hand-edited plan that crosses two clusters (each now removes a copy of the
    other's picture) would have removed both copies of a picture: apply checks every file to
    remove against its cluster's kept file, under the plan's settings, as --remove 1 does, and
    skips a cluster that removes a file not within the threshold of it."""
    doc, a, b = crossed_plan(planted_root)
    done = imgdup.apply(write_plan(doc, tmp_path / "plan.json"), quarantine=tmp_path / "q")
    skipped = {s.cluster: s.reason for s in done.skipped}
    assert set(skipped) >= {a["id"], b["id"]}
    assert "not within the threshold" in skipped[a["id"]]
    for c in (a, b):
        assert all(os.path.lexists(m["path"]) for m in c["members"])
    rest = [c for c in doc["clusters"] if c["id"] not in (a["id"], b["id"])]
    assert {r.path for r in done.removed} == to_remove({"clusters": rest})


def test_a_copy_linked_by_its_content_box_is_applied(tmp_path: Path) -> None:
    """The check measures as the scan did: a bordered copy, far from its original by the plain
    hashes the plan records, is linked through its content box (regions), and is removed."""
    from .conftest import picture

    root = tmp_path / "d"
    root.mkdir()
    original = picture(61, (400, 300))
    original.save(root / "a.jpg", quality=92)
    framed = Image.new("RGB", (560, 420), (255, 255, 255))
    framed.paste(original, (80, 60))
    framed.save(root / "b.jpg", quality=92)
    doc = imgdup.to_document(imgdup.find_duplicates([root], jobs=1))
    (c,) = doc["clusters"]
    assert (int(c["members"][0]["hash"], 16) ^ int(c["members"][1]["hash"], 16)).bit_count() > doc["settings"][
        "threshold"
    ]
    done = imgdup.apply(write_plan(doc, tmp_path / "plan.json"), quarantine=tmp_path / "q")
    assert not done.skipped and {r.path for r in done.removed} == to_remove(doc) and len(done.removed) == 1


def test_the_check_reads_the_scans_hash_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hashing a 20,000-file plan again took 23 s on 2 cores: the scan's cache holds every hash."""
    from imgdup import apply_plan

    from .conftest import picture

    root = tmp_path / "d"
    root.mkdir()
    for seed in range(3):
        picture(70 + seed).save(root / f"{seed}.jpg", quality=92)
        picture(70 + seed).save(root / f"{seed}-copy.jpg", quality=60)
    cache = tmp_path / "cache.sqlite3"
    doc = imgdup.to_document(imgdup.find_duplicates([root], jobs=1, cache=cache))
    hashed: list[int] = []
    real = apply_plan.hash_all
    monkeypatch.setattr(
        apply_plan, "hash_all", lambda entries, *a, **k: hashed.append(len(entries)) or real(entries, *a, **k)
    )
    plan = write_plan(doc, tmp_path / "plan.json")
    assert apply_plan._not_duplicates(imgdup.load_plan(plan), jobs=1) == {} and hashed == [6]  # no cache: hashed
    hashed.clear()
    done = imgdup.apply(plan, quarantine=tmp_path / "q", cache=cache, jobs=1)
    assert hashed == [] and {r.path for r in done.removed} == to_remove(doc) and len(done.removed) == 3


def _rewrite_in_place(path: Path, data: bytes) -> None:
    """Write ``data`` over ``path``, padded with zeros to its size, and set its mtime back: only
    its change time (ctime) tells the new version from the old."""
    st = path.stat()
    assert len(data) <= st.st_size
    with open(path, "r+b") as fh:
        fh.write(data + b"\0" * (st.st_size - len(data)))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    now = path.stat()
    assert (now.st_ino, now.st_size, now.st_mtime_ns) == (st.st_ino, st.st_size, st.st_mtime_ns)
    assert now.st_ctime_ns != st.st_ctime_ns  # (a scan ran between the two writes)


def _crossed_plan(root: Path, tmp_path: Path) -> tuple[Path, Path]:
    """a.png kept, b.jpg (a copy) and x.jpg (another picture) to remove: a plan that crosses
    clusters, made by a scan without the cache; the cache holds an older version of x.jpg."""
    from .conftest import encode, picture

    picture(91).save(root / "a.png")
    picture(91).save(root / "b.jpg", quality=80)
    picture(92, (640, 480)).save(root / "x.jpg", quality=98)
    cache = tmp_path / "cache.sqlite3"
    imgdup.find_duplicates([root], jobs=1, cache=cache)  # caches x.jpg as picture 92
    _rewrite_in_place(root / "x.jpg", encode(picture(93), quality=85))
    doc = imgdup.to_document(imgdup.find_duplicates([root], jobs=1))
    (c,) = doc["clusters"]
    everything = imgdup.to_document(imgdup.find_duplicates([root], jobs=1, threshold=64))["clusters"][0]["members"]
    c["members"].append({**next(m for m in everything if m["path"].endswith("x.jpg")), "action": "remove"})
    return write_plan(doc, tmp_path / "plan.json"), cache


def test_a_stale_cache_row_does_not_let_a_plan_remove_a_file_that_is_no_duplicate(tmp_path: Path) -> None:
    """A file rewritten in place (size and mtime set back) after the cache stored it: apply
    identified it without its ctime, was served the old row, took its digest (not the plan's)
    for a change that remove() would catch, and skipped the distance check; the file on disk
    was the plan's, so remove() moved a picture that is no duplicate (QA pass 36)."""
    root = tmp_path / "d"
    root.mkdir()
    plan, cache = _crossed_plan(root, tmp_path)
    done = imgdup.apply(plan, quarantine=tmp_path / "q", jobs=1, cache=cache)
    assert done.removed == () and "not within the threshold" in done.skipped[0].reason
    assert (root / "x.jpg").exists() and (root / "b.jpg").exists()


def test_a_cached_digest_that_is_not_the_plans_is_checked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where a file's ctime does not tell its versions apart (a coarse clock, a file system
    without one), the cache may still serve an older version's row: a digest that is not the
    plan's is never taken as a reason to skip the check; the file is hashed again (QA pass 36)."""
    from imgdup import apply_plan

    root = tmp_path / "d"
    root.mkdir()
    plan, cache = _crossed_plan(root, tmp_path)
    read = apply_plan.HashCache.get_many
    # The rows read as if the ctime were not part of the key: the old version of x.jpg is served.
    monkeypatch.setattr(
        apply_plan.HashCache, "get_many", lambda self, es: read(self, [replace(e, ctime_ns=0) for e in es])
    )
    done = imgdup.apply(plan, quarantine=tmp_path / "q", jobs=1, cache=cache)
    assert done.removed == () and "not within the threshold" in done.skipped[0].reason
    assert (root / "x.jpg").exists()


def test_a_stale_cache_row_of_a_kept_file_does_not_skip_its_cluster(tmp_path: Path) -> None:
    """The kept file rewritten in place with another encoding of its picture (size and mtime set
    back) after the cache stored it, then scanned again: apply read the old row and skipped the
    cluster, "its kept file ... changed since the scan", though the file was the plan's (QA pass 36)."""
    from .conftest import encode, picture

    root = tmp_path / "d"
    root.mkdir()
    picture(94).save(root / "a.jpg", quality=98)
    picture(94).save(root / "b.jpg", quality=70)
    cache = tmp_path / "cache.sqlite3"
    imgdup.find_duplicates([root], jobs=1, cache=cache)
    _rewrite_in_place(root / "a.jpg", encode(picture(94), quality=95))
    doc = imgdup.to_document(imgdup.find_duplicates([root], jobs=1))
    (c,) = doc["clusters"]
    assert c["keep"].endswith("a.jpg")
    done = imgdup.apply(write_plan(doc, tmp_path / "plan.json"), quarantine=tmp_path / "q", jobs=1, cache=cache)
    assert not done.skipped and {r.path for r in done.removed} == to_remove(doc) == {str(root / "b.jpg")}


def _gif(path: Path, frames: list[Image.Image]) -> None:
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)


def test_an_animation_with_other_frames_is_not_removed_by_an_edited_plan(tmp_path: Path) -> None:
    """Two animations opening on one frame are one cluster; the scan leaves the other for review
    (its later frames differ). A plan that marks it remove (one click on the page) had it moved:
    apply compares every frame, as --remove 1 does."""
    from .conftest import picture

    root = tmp_path / "d"
    root.mkdir()
    first = picture(71, (160, 120))
    _gif(root / "a.gif", [first, picture(72, (160, 120)), picture(73, (160, 120))])
    _gif(root / "b.gif", [first, picture(74, (160, 120)), picture(75, (160, 120))])
    doc = imgdup.to_document(imgdup.find_duplicates([root], jobs=1))
    (c,) = doc["clusters"]
    assert sorted(m["action"] for m in c["members"]) == ["keep", "review"]
    for m in c["members"]:
        m["action"] = "remove" if m["action"] == "review" else m["action"]
    done = imgdup.apply(write_plan(doc, tmp_path / "plan.json"), quarantine=tmp_path / "q")
    assert done.removed == () and "frames" in done.skipped[0].reason
    assert (root / "a.gif").exists() and (root / "b.gif").exists()


def test_a_file_that_cannot_be_checked_now_is_not_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The near-duplicate check let through any file it could not decode at apply time (a
    scan run with --max-pixels, applied without): a scripted plan moved a unique picture. A
    file to remove, or a cluster's kept file, that cannot be checked now skips the cluster."""
    from .conftest import picture

    root = tmp_path / "d"
    root.mkdir()
    picture(81, (400, 300)).save(root / "a.png")
    picture(81, (400, 300)).save(root / "b.jpg", quality=80)
    picture(82, (400, 300)).save(root / "unique.png")
    doc = imgdup.to_document(imgdup.find_duplicates([root], jobs=1))
    (c,) = doc["clusters"]
    everything = imgdup.to_document(imgdup.find_duplicates([root], jobs=1, threshold=64))["clusters"][0]["members"]
    unique = next(m for m in everything if m["path"].endswith("unique.png"))
    c["members"].append({**unique, "action": "remove"})
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # every file over the limit now
    done = imgdup.apply(write_plan(doc, tmp_path / "plan.json"), quarantine=tmp_path / "q", jobs=1)
    assert done.removed == () and "cannot be checked" in done.skipped[0].reason
    assert (root / "unique.png").exists() and (root / "b.jpg").exists()


def test_a_file_over_the_pixel_limit_is_not_removed_on_its_cached_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scan run with a raised --max-pixels, applied without it: the files read from the hash
    cache (the CLI's default) were never held to the limit, and a 90 MP file was removed where
    --no-cache skipped its cluster (QA pass 35). A cached record is held to it, as in a scan."""
    from .conftest import picture

    root = tmp_path / "d"
    root.mkdir()
    picture(83).save(root / "a.png")
    picture(83).save(root / "b.jpg", quality=80)
    cache = tmp_path / "cache.sqlite3"
    doc = imgdup.to_document(imgdup.find_duplicates([root], jobs=1, cache=cache))
    assert len(to_remove(doc)) == 1
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # the scan's limit was higher: every file over it now
    done = imgdup.apply(write_plan(doc, tmp_path / "plan.json"), quarantine=tmp_path / "q", jobs=1, cache=cache)
    assert done.removed == () and "--max-pixels" in done.skipped[0].reason
    assert (root / "a.png").exists() and (root / "b.jpg").exists()


def test_a_member_marked_reference_is_never_removed_by_a_plan(shared_planted_root: Path) -> None:
    """Reference files were protected only by the plan's list of reference folders: a script
    that dropped the list removed a member whose own entry says it is a reference file."""
    doc = scanned_plan(shared_planted_root)
    c = next(c for c in doc["clusters"] if any(m["action"] == "remove" for m in c["members"]))
    member = next(m for m in c["members"] if m["action"] == "remove")
    member["reference"] = True
    _refused(doc, "reference file")


def test_a_file_dated_before_1970_is_a_valid_plan_member(planted_root: Path, tmp_path: Path) -> None:
    """A negative mtime (a file dated before 1970) made apply refuse imgdup's own report."""
    path = planted_root / A_Q50
    os.utime(path, ns=(-86_400 * 10**9, -86_400 * 10**9))
    doc = scanned_plan(planted_root)
    assert any(m["mtime_ns"] < 0 for c in doc["clusters"] for m in c["members"])
    done = imgdup.apply(write_plan(doc, tmp_path / "plan.json"), quarantine=tmp_path / "q")
    assert {r.path for r in done.removed} == to_remove(doc) and not done.skipped


def test_apply_takes_a_plan_document_and_refuses_a_scan_result(planted_root: Path, tmp_path: Path) -> None:
    """``imgdup.apply(dict)`` and ``imgdup.apply(result)`` raised a bare TypeError from open():
    a plan document (a report edited in Python) is applied as a plan file is; a ScanResult is
    refused with a pointer to imgdup.remove."""
    result = scan(planted_root)
    with pytest.raises(imgdup.UsageError, match=r"imgdup\.remove"):
        imgdup.apply(result)  # type: ignore[arg-type]
    doc = imgdup.to_document(result)
    done = imgdup.apply(doc, quarantine=tmp_path / "q")  # type: ignore[arg-type]
    assert {r.path for r in done.removed} == to_remove(doc)


def test_applying_the_html_page_says_which_file_to_apply(planted_root: Path, tmp_path: Path) -> None:
    """``imgdup apply review.html`` said only "Expecting value: line 1 column 1"."""
    page = tmp_path / "review.html"
    imgdup.write_report(scan(planted_root), page)
    with pytest.raises(imgdup.PlanError, match="is the HTML page, not a plan"):
        imgdup.apply(page)


def test_a_file_replaced_since_the_scan_is_named_as_such(planted_root: Path, tmp_path: Path) -> None:
    """A file replaced after the scan was skipped as "cannot be checked now (file changed while
    it was being scanned)": it changed since the scan, not during it (QA pass 8)."""
    doc = scanned_plan(planted_root)
    member = next(m for c in doc["clusters"] for m in c["members"] if m["action"] == "remove")
    other = next(
        m for c in doc["clusters"] for m in c["members"] if m["path"] != member["path"] and m["action"] == "keep"
    )
    Path(member["path"]).write_bytes(Path(other["path"]).read_bytes())
    done = imgdup.apply(write_plan(doc, tmp_path / "plan.json"), quarantine=tmp_path / "q")
    reasons = [s.reason for s in done.skipped]
    assert any("changed since the scan" in r for r in reasons) and not any("while it was" in r for r in reasons)


def test_apply_names_the_symbolic_links_its_removal_leaves_pointing_at_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A scan's removal names the symbolic links it leaves dangling (QA pass 14); applying a
    reviewed plan said nothing about them, and a link made after the scan is named too (apply
    looks at the folders as they are, not at what the scan skipped)."""
    from .synth import photo

    pool, split = tmp_path / "data" / "pool", tmp_path / "data" / "split"
    pool.mkdir(parents=True)
    split.mkdir()
    photo(3).save(pool / "a.png")
    (pool / "b.png").write_bytes((pool / "a.png").read_bytes())
    (split / "cat.png").symlink_to("../pool/b.png")
    (split / "kept.png").symlink_to("../pool/a.png")
    doc = imgdup.to_document(imgdup.find_duplicates([tmp_path / "data"], jobs=1))
    (split / "later.png").symlink_to(pool / "b.png")  # made after the scan
    plan = write_plan(doc, tmp_path / "plan.json")
    done = imgdup.apply(plan, quarantine=tmp_path / "q", jobs=1)
    assert [Path(r.path).name for r in done.removed] == ["b.png"]
    assert done.dangling == (str(split / "cat.png"), str(split / "later.png"))
    imgdup.undo(done.manifest)
    assert (split / "cat.png").exists()

    assert main(["apply", str(plan), "--quarantine", str(tmp_path / "q2"), "-j", "1"]) == 0
    out = capsys.readouterr().out
    assert "2 symbolic links in the scanned folders point at files removed" in out
    assert str(split / "later.png") in out


def test_applying_a_plan_again_leaves_no_empty_run_folder_in_the_quarantine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The second apply of one plan skips every cluster (the files are gone): it left a run
    folder with a manifest of nothing in the quarantine, and printed that manifest and no undo
    to go with it. Nothing moved: no run folder, no manifest."""
    from .synth import photo

    root = tmp_path / "d"
    root.mkdir()
    photo(5).save(root / "a.png")
    (root / "b.png").write_bytes((root / "a.png").read_bytes())
    plan = write_plan(imgdup.to_document(imgdup.find_duplicates([root], jobs=1)), tmp_path / "plan.json")
    quarantine = tmp_path / "q"
    assert main(["apply", str(plan), "--quarantine", str(quarantine), "-j", "1"]) == 0
    first = sorted(quarantine.iterdir())
    capsys.readouterr()
    again = imgdup.apply(plan, quarantine=quarantine, jobs=1)
    assert again.manifest is None and again.removed == () and len(again.skipped) == 1
    assert sorted(quarantine.iterdir()) == first
    main(["apply", str(plan), "--quarantine", str(quarantine), "-j", "1"])
    out = capsys.readouterr().out
    assert "nothing was moved: every cluster was skipped" in out
    # no manifest of this run (a skip names the earlier run's, the one that moved the file)
    assert not [line for line in out.splitlines() if line.startswith(("manifest:", "undo with:"))]
    assert sorted(quarantine.iterdir()) == first


@pytest.mark.parametrize("hash_name", ["dhash", "ahash"])
def test_flat_pictures_crossed_by_a_script_are_not_removed(tmp_path: Path, hash_name: str) -> None:
    """A scan groups nearly flat ("low information") files only when byte-identical, but apply
    compared them by hash, and under dhash or ahash every flat picture hashes to 0: a script
    that merged the navy copies' cluster into the white page's had both navy files removed,
    every copy of that picture (QA pass 35). apply holds them to the scan's rule."""
    root = tmp_path / "d"
    root.mkdir()
    for name, colour in (("white", (250, 250, 250)), ("navy", (0, 0, 120))):
        Image.new("RGB", (200, 150), colour).save(root / f"{name}.png")
        (root / f"{name}_copy.png").write_bytes((root / f"{name}.png").read_bytes())
    doc = imgdup.to_document(imgdup.find_duplicates([root], jobs=1, hash=hash_name))
    white, navy = sorted(doc["clusters"], key=lambda c: "navy" in c["keep"])
    assert len(doc["clusters"]) == 2 and white["members"][0]["hash"] == navy["members"][0]["hash"]
    honest = imgdup.apply(write_plan(doc, tmp_path / "plan.json"), quarantine=tmp_path / "q", jobs=1)
    assert {r.path for r in honest.removed} == to_remove(doc) and not honest.skipped  # copies still go
    imgdup.undo(honest.manifest)  # type: ignore[arg-type]
    for m in navy["members"]:
        m["action"] = "remove"
    white["members"] += navy["members"]
    doc["clusters"] = [white]
    done = imgdup.apply(write_plan(doc, tmp_path / "plan.json"), quarantine=tmp_path / "q", jobs=1)
    assert done.removed == () and "byte-identical" in done.skipped[0].reason
    assert sorted(p.name for p in root.iterdir()) == ["navy.png", "navy_copy.png", "white.png", "white_copy.png"]
