"""Removal, quarantine manifest, re-checks before acting, undo, and the CLI round trip."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

import imgdup
from imgdup.cli import main
from imgdup.models import Action, ScanResult

from .conftest import A_ORIG, A_Q50, B_COPY, B_LINK, B_ORIG, THRESHOLD, PlantedSet, rel, scan, sha256

Snapshot = Callable[[Path], dict[str, tuple[str, int, str]]]


def planned_names(result: ScanResult) -> set[str]:
    """Every file name a removal of ``result`` must touch: members marked remove, and their hard links."""
    return {n for c in result.clusters for m in c.removable for n in (m.record.path, *m.record.entry.aliases)}


def kept_names(result: ScanResult) -> set[str]:
    return {
        n
        for c in result.clusters
        for m in c.members
        if m.action is not Action.REMOVE
        for n in (m.record.path, *m.record.entry.aliases)
    }


def cluster_of(result: ScanResult, root: Path, relpath: str) -> imgdup.Cluster:
    (found,) = [c for c in result.clusters if any(rel(root, m.record.path) == relpath for m in c.members)]
    return found


def cluster_names(cluster: imgdup.Cluster) -> set[str]:
    return {n for m in cluster.members for n in (m.record.path, *m.record.entry.aliases)}


def files_only(snap: dict[str, tuple[str, int, str]]) -> dict[str, tuple[str, int, str]]:
    return {k: v for k, v in snap.items() if v[0] != "dir"}


# --- dry run --------------------------------------------------------------------------------


def test_dry_run_changes_nothing(planted_root: Path, tmp_path: Path, snapshot: Snapshot) -> None:
    before = snapshot(planted_root)
    result = scan(planted_root)
    assert result.summary.to_remove > 0
    imgdup.format_text(result)
    imgdup.to_document(result)
    assert snapshot(planted_root) == before


def test_cli_dry_run_changes_nothing(
    planted_root: Path, tmp_path: Path, snapshot: Snapshot, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(planted_root)
    rc = main(
        ["-d", str(planted_root), "-t", str(THRESHOLD), "--no-cache", "-j", "1", "--quarantine", str(tmp_path / "q")]
    )
    assert rc == 3  # the planted tree holds unreadable files
    assert "dry run" in capsys.readouterr().out
    assert snapshot(planted_root) == before
    assert not (tmp_path / "q").exists()


# --- removal --------------------------------------------------------------------------------


def test_remove_moves_exactly_the_planned_files(
    planted_set: PlantedSet, planted_root: Path, tmp_path: Path, snapshot: Snapshot
) -> None:
    result = scan(planted_root)
    planned = planned_names(result)
    assert {rel(planted_root, p) for p in planned} == planted_set.expected_removed
    before = files_only(snapshot(planted_root))
    quarantine = tmp_path / "q"

    done = imgdup.remove(result, quarantine=quarantine)

    after = files_only(snapshot(planted_root))
    assert set(before) - set(after) == {rel(planted_root, p) for p in planned}
    assert all(after[k] == before[k] for k in after)  # nothing else changed, nothing added
    assert {r.path for r in done.removed} == planned
    assert done.skipped == ()
    # Space is counted once per file, however many names (hard links) it had.
    removable = [m.record for c in result.clusters for m in c.removable]
    assert done.bytes_freed == sum(before[rel(planted_root, r.path)][1] for r in removable)
    assert done.bytes_freed == result.summary.bytes_to_remove
    for name in kept_names(result):
        assert os.path.isfile(name)

    # Every moved file sits byte-identical in the quarantine, under the manifest's name for it.
    manifest = json.loads(Path(done.manifest).read_text(encoding="utf-8"))
    assert manifest["schema"] == "imgdup.manifest/1"
    assert {e["path"] for e in manifest["entries"]} == planned
    for entry in manifest["entries"]:
        q = Path(entry["quarantine"])
        assert q.is_relative_to(os.path.realpath(quarantine))
        data = q.read_bytes()
        original = before[rel(planted_root, entry["path"])]
        assert (len(data), sha256(data)) == (original[1], original[2]) == (entry["bytes"], entry["sha256"])


def test_hard_links_of_a_removed_member_go_with_it(planted_root: Path, tmp_path: Path) -> None:
    result = scan(planted_root)
    assert rel(planted_root, cluster_of(result, planted_root, B_ORIG).keep.path) == B_COPY
    imgdup.remove(result, quarantine=tmp_path / "q")
    assert not (planted_root / B_ORIG).exists()
    assert not (planted_root / B_LINK).exists()
    assert (planted_root / B_COPY).is_file()


def test_a_result_edited_to_remove_every_member_keeps_the_kept_file(planted_root: Path, tmp_path: Path) -> None:
    """``imgdup.remove`` takes a result a library user may edit; one whose members were all
    marked remove (the keeper's own entry too: "remove every copy", in one comprehension) had
    the kept file moved with the others, and the cluster kept nothing."""
    result = scan(planted_root)
    cluster = cluster_of(result, planted_root, A_ORIG)
    edited = replace(cluster, members=tuple(replace(m, action=Action.REMOVE) for m in cluster.members))
    result = replace(result, clusters=tuple(edited if c is cluster else c for c in result.clusters))
    done = imgdup.remove(result, quarantine=tmp_path / "q")
    assert cluster.keep.path not in {r.path for r in done.removed}
    assert os.path.isfile(cluster.keep.path)
    reason = next(s.reason for s in done.skipped if s.cluster == cluster.id)
    assert "is marked remove but is the cluster's kept file" in reason


def test_hard_link_of_a_keeper_is_never_removed(planted_set: PlantedSet, tmp_path: Path) -> None:
    root = planted_set.materialise(tmp_path / "data", only=["sub/"])
    # Remove the other full-size copies: the hard-linked original is now the keeper.
    (root / B_COPY).unlink()
    result = scan(root)
    (cluster,) = result.clusters
    assert rel(root, cluster.keep.path) == B_ORIG
    assert [rel(root, a) for a in cluster.keep.entry.aliases] == [B_LINK]
    done = imgdup.remove(result, quarantine=tmp_path / "q")
    assert B_LINK not in {rel(root, r.path) for r in done.removed}
    assert (root / B_ORIG).is_file() and (root / B_LINK).is_file()
    assert os.path.samefile(root / B_ORIG, root / B_LINK)


def test_manifest_is_written_before_anything_moves(planted_root: Path, tmp_path: Path) -> None:
    result = scan(planted_root)
    planned = planned_names(result)
    quarantine = tmp_path / "q"
    calls: list[int] = []

    def before_cluster(cluster: imgdup.Cluster) -> None:
        if not calls:
            (manifest,) = quarantine.glob("*/manifest.json")
            doc = json.loads(manifest.read_text(encoding="utf-8"))
            assert doc["schema"] == "imgdup.manifest/1"
            assert {e["path"] for e in doc["entries"]} == planned
            for e in doc["entries"]:
                assert {"path", "quarantine", "bytes", "sha256"} <= set(e)
            assert all(os.path.exists(p) for p in planned)
        calls.append(cluster.id)

    done = imgdup.remove(result, quarantine=quarantine, before_cluster=before_cluster)
    assert calls == [c.id for c in result.clusters if c.removable]
    assert {r.path for r in done.removed} == planned


def _modify(path: Path, *, keep_mtime: bool) -> None:
    st = path.stat()
    data = bytearray(path.read_bytes())
    if keep_mtime:  # same size, same inode, same mtime: only the content digest can tell
        data[len(data) // 2] ^= 0xFF
        with open(path, "r+b") as fh:
            fh.write(data)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert path.stat().st_mtime_ns == st.st_mtime_ns and path.stat().st_size == st.st_size
    else:
        path.write_bytes(bytes(data) + b"appended")


@pytest.mark.parametrize("keep_mtime", [False, True], ids=["content", "content-same-mtime"])
@pytest.mark.parametrize("target", ["member", "keeper"])
def test_changed_file_skips_its_whole_cluster(
    planted_root: Path, tmp_path: Path, snapshot: Snapshot, target: str, keep_mtime: bool
) -> None:
    result = scan(planted_root)
    cluster = cluster_of(result, planted_root, A_ORIG)
    changed = Path(cluster.keep.path if target == "keeper" else cluster.removable[0].record.path)
    _modify(changed, keep_mtime=keep_mtime)
    before = files_only(snapshot(planted_root))

    done = imgdup.remove(result, quarantine=tmp_path / "q")

    assert [s.cluster for s in done.skipped] == [cluster.id]
    assert str(changed) in done.skipped[0].reason
    after = files_only(snapshot(planted_root))
    for name in cluster_names(cluster):
        assert after[rel(planted_root, name)] == before[rel(planted_root, name)]
    assert not any(r.cluster == cluster.id for r in done.removed)
    # The other clusters were still acted on.
    others = planned_names(result) - cluster_names(cluster)
    assert others and {r.path for r in done.removed} == others


def test_deleted_keeper_skips_its_cluster(planted_root: Path, tmp_path: Path, snapshot: Snapshot) -> None:
    result = scan(planted_root)
    cluster = cluster_of(result, planted_root, A_ORIG)
    os.unlink(cluster.keep.path)
    before = files_only(snapshot(planted_root))
    done = imgdup.remove(result, quarantine=tmp_path / "q")
    assert [s.cluster for s in done.skipped] == [cluster.id]
    after = files_only(snapshot(planted_root))
    for m in cluster.removable:
        assert after[rel(planted_root, m.record.path)] == before[rel(planted_root, m.record.path)]


def test_undo_of_a_run_with_a_skipped_cluster_finds_nothing_missing(planted_root: Path, tmp_path: Path) -> None:
    """The manifest is written before anything moves, listing every planned file; a cluster then
    skipped (a duplicate deleted by hand) stayed in it, and every undo reported its files
    "missing from the quarantine" (exit 3). Once the run is done the manifest lists what moved."""
    result = scan(planted_root)
    cluster = cluster_of(result, planted_root, A_ORIG)
    os.unlink(cluster.removable[0].record.path)
    done = imgdup.remove(result, quarantine=tmp_path / "q")
    assert [s.cluster for s in done.skipped] == [cluster.id] and done.removed
    doc = json.loads(Path(done.manifest).read_text(encoding="utf-8"))  # type: ignore[arg-type]
    assert {e["path"] for e in doc["entries"]} == {r.path for r in done.removed}
    undone = imgdup.undo(done.manifest)  # type: ignore[arg-type]
    assert undone.problems == () and undone.already_in_place == ()
    assert set(undone.restored) == {r.path for r in done.removed}


def test_replaced_member_with_same_size_and_mtime_skips_cluster(planted_root: Path, tmp_path: Path) -> None:
    """A file swapped for another one (new inode) with the old size and mtime is not the scanned file."""
    result = scan(planted_root)
    cluster = cluster_of(result, planted_root, A_ORIG)
    victim = Path(cluster.removable[0].record.path)
    st = victim.stat()
    data = bytearray(victim.read_bytes())
    data[100] ^= 0x01
    victim.unlink()
    victim.write_bytes(bytes(data))
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    done = imgdup.remove(result, quarantine=tmp_path / "q")
    assert [s.cluster for s in done.skipped] == [cluster.id]
    assert victim.read_bytes() == bytes(data)


def test_folder_swapped_for_a_symlink_skips_its_clusters(
    planted_root: Path, tmp_path: Path, snapshot: Snapshot
) -> None:
    """A folder replaced by a symlink after the scan must not redirect a move outside the root."""
    result = scan(planted_root)
    cluster = cluster_of(result, planted_root, A_ORIG)
    elsewhere = tmp_path / "elsewhere"
    os.rename(planted_root / "a", elsewhere)
    os.symlink(elsewhere, planted_root / "a")
    before = snapshot(elsewhere)
    done = imgdup.remove(result, quarantine=tmp_path / "q")
    assert [s.cluster for s in done.skipped] == [cluster.id]
    assert snapshot(elsewhere) == before
    assert {r.path for r in done.removed} == planned_names(result) - cluster_names(cluster)


# --- undo -----------------------------------------------------------------------------------


def test_undo_restores_byte_identical_files(planted_root: Path, tmp_path: Path, snapshot: Snapshot) -> None:
    before = files_only(snapshot(planted_root))
    result = scan(planted_root)
    planned = planned_names(result)
    done = imgdup.remove(result, quarantine=tmp_path / "q")
    assert {r.path for r in done.removed} == planned

    undone = imgdup.undo(done.manifest)
    assert set(undone.restored) == planned
    assert undone.problems == ()
    assert files_only(snapshot(planted_root)) == before
    assert os.path.samefile(planted_root / B_ORIG, planted_root / B_LINK)  # still one file, two names

    again = imgdup.undo(done.manifest)
    assert again.restored == ()
    assert set(again.already_in_place) == planned
    assert again.problems == ()
    assert files_only(snapshot(planted_root)) == before


def test_undo_never_overwrites_a_new_file(planted_root: Path, tmp_path: Path) -> None:
    result = scan(planted_root)
    done = imgdup.remove(result, quarantine=tmp_path / "q")
    squatter = planted_root / A_Q50
    assert str(squatter) in {r.path for r in done.removed}
    squatter.write_bytes(b"a different file")

    undone = imgdup.undo(done.manifest)
    assert [p for p, _reason in undone.problems] == [str(squatter)]
    assert squatter.read_bytes() == b"a different file"
    (moved,) = [r for r in done.removed if r.path == str(squatter)]
    assert moved.quarantine is not None and os.path.isfile(moved.quarantine)  # the copy is kept
    assert set(undone.restored) == {r.path for r in done.removed} - {str(squatter)}


def test_undo_never_writes_through_a_folder_swapped_for_a_symlink(planted_root: Path, tmp_path: Path) -> None:
    result = scan(planted_root)
    done = imgdup.remove(result, quarantine=tmp_path / "q")
    under_sub = {r.path for r in done.removed if rel(planted_root, r.path).startswith("sub/")}
    assert under_sub
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    shutil.rmtree(planted_root / "sub")  # only the keeper's copy was left there
    os.symlink(decoy, planted_root / "sub")

    undone = imgdup.undo(done.manifest)
    assert {p for p, _reason in undone.problems} == under_sub
    assert all(r.quarantine and os.path.isfile(r.quarantine) for r in done.removed if r.path in under_sub)
    assert set(undone.restored) == {r.path for r in done.removed} - under_sub
    assert not any(decoy.rglob("*.JPG"))  # no file restored outside the root ...
    assert list(decoy.iterdir()) == []  # ... and no folder made there either


def test_undo_rejects_something_that_is_not_a_manifest(tmp_path: Path) -> None:
    bogus = tmp_path / "manifest.json"
    bogus.write_text(json.dumps({"schema": "something/1", "entries": []}), encoding="utf-8")
    with pytest.raises(imgdup.ManifestError):
        imgdup.undo(bogus)
    with pytest.raises(imgdup.ManifestError):
        imgdup.undo(tmp_path / "missing.json")


# --- refusals and permanent deletion --------------------------------------------------------


@pytest.mark.parametrize("where", ["inside", "root", "parent"])
def test_quarantine_overlapping_a_root_is_refused(
    planted_root: Path, tmp_path: Path, snapshot: Snapshot, where: str
) -> None:
    quarantine = {"inside": planted_root / "a" / "quarantine", "root": planted_root, "parent": tmp_path}[where]
    result = scan(planted_root)
    before = snapshot(tmp_path)
    with pytest.raises(imgdup.RemovalError):
        imgdup.remove(result, quarantine=quarantine)
    assert snapshot(tmp_path) == before


def test_permanent_removal_deletes_and_cannot_be_undone(planted_root: Path, tmp_path: Path, snapshot: Snapshot) -> None:
    result = scan(planted_root)
    planned = planned_names(result)
    before = files_only(snapshot(planted_root))
    done = imgdup.remove(result, quarantine=tmp_path / "q", permanent=True)
    assert done.permanent and {r.path for r in done.removed} == planned
    assert all(r.quarantine is None for r in done.removed)
    after = files_only(snapshot(planted_root))
    assert set(before) - set(after) == {rel(planted_root, p) for p in planned}
    for name in kept_names(result):
        assert os.path.isfile(name)
    manifest = json.loads(Path(done.manifest).read_text(encoding="utf-8"))
    assert manifest["permanent"] is True
    assert all(e["quarantine"] is None for e in manifest["entries"])
    quarantined = [p for p in (tmp_path / "q").rglob("*") if p.is_file() and p.name != "manifest.json"]
    assert quarantined == []
    with pytest.raises(imgdup.ManifestError):
        imgdup.undo(done.manifest)
    assert files_only(snapshot(planted_root)) == after


def test_nothing_to_remove_writes_no_manifest(planted_set: PlantedSet, tmp_path: Path) -> None:
    root = planted_set.materialise(tmp_path / "data", only=["distractors/"])
    done = imgdup.remove(scan(root), quarantine=tmp_path / "q")
    assert done.manifest is None and done.removed == ()
    assert not (tmp_path / "q").exists()


def test_two_removals_in_the_same_second_share_a_quarantine(
    planted_set: PlantedSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two scans acted on one after the other (as a script would) into one quarantine folder.

    The clock is frozen so that both removals fall in the same second, as they do in practice
    when each takes a few milliseconds.
    """
    first = planted_set.materialise(tmp_path / "one", only=["sub/"])
    second = planted_set.materialise(tmp_path / "two", only=["chain/"])
    results = [scan(first), scan(second)]
    frozen = time.localtime()
    real_strftime = time.strftime
    monkeypatch.setattr(time, "strftime", lambda fmt, t=None: real_strftime(fmt, frozen))
    done = [imgdup.remove(r, quarantine=tmp_path / "q") for r in results]
    assert done[0].manifest != done[1].manifest
    for r, d in zip(results, done):
        assert {x.path for x in d.removed} == planned_names(r)
        assert set(imgdup.undo(d.manifest).restored) == planned_names(r)


# --- CLI round trip -------------------------------------------------------------------------


def test_cli_remove_then_undo_round_trip(
    planted_root: Path, tmp_path: Path, snapshot: Snapshot, capsys: pytest.CaptureFixture[str]
) -> None:
    planned = planned_names(scan(planted_root))
    before = files_only(snapshot(planted_root))
    cache = tmp_path / "cache.sqlite"
    common = ["--cache", str(cache), "-j", "1", "--no-progress"]

    rc = main(
        ["-d", str(planted_root), "-t", str(THRESHOLD), "--remove", "1", "--quarantine", str(tmp_path / "q"), *common]
    )
    assert rc == 3  # unreadable files in the planted tree
    out = capsys.readouterr().out
    (manifest,) = [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("manifest: ")]
    after = files_only(snapshot(planted_root))
    assert set(before) - set(after) == {rel(planted_root, p) for p in planned}
    # counted as the removal counted them: files, and their names (hard links) apart
    (moved,) = [line.split(": ", 1)[1].split(" (")[0] for line in out.splitlines() if line.startswith("moved to")]
    names = f" ({len(planned)} names)" if f"{len(planned)} names" in out else ""

    assert main(["--undo", manifest]) == 0
    assert f"restored {moved}{names}, 0 already in place" in capsys.readouterr().out
    assert files_only(snapshot(planted_root)) == before

    assert main(["--undo", manifest]) == 0
    assert f"restored 0 files, {moved.split()[0]}{names} already in place" in capsys.readouterr().out


def test_cli_remove_with_json_output(planted_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    planned = planned_names(scan(planted_root))
    args = ["-d", str(planted_root), "--remove", "1", "--quarantine", str(tmp_path / "q"), "--format", "json"]
    assert main([*args, "-t", str(THRESHOLD), "--no-cache", "-j", "1"]) == 3
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["removal"]["removed"]) == planned
    assert doc["removal"]["skipped_clusters"] == []
    assert os.path.isfile(doc["removal"]["manifest"])
    assert set(imgdup.undo(doc["removal"]["manifest"]).restored) == planned


def test_symbolic_links_to_a_removed_file_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A split made of symbolic links into a pool (split/cat.png -> ../pool/b.png): the scan
    never follows a link, so removing the pool's copy b.png left the split's link pointing at
    nothing, and the run said nothing (QA pass 14). The removal names such links; one pointing
    at the kept file is not named, and an undo makes the link whole again."""
    from .synth import photo

    pool, split = tmp_path / "data" / "pool", tmp_path / "data" / "split"
    pool.mkdir(parents=True)
    split.mkdir()
    photo(3).save(pool / "a.png")
    shutil.copyfile(pool / "a.png", pool / "b.png")
    (split / "cat.png").symlink_to("../pool/b.png")
    (split / "kept.png").symlink_to("../pool/a.png")
    result = imgdup.find_duplicates([tmp_path / "data"], jobs=1)
    assert [Path(m.record.path).name for m in result.clusters[0].removable] == ["b.png"]
    done = imgdup.remove(result, quarantine=tmp_path / "q")
    assert done.dangling == (str(split / "cat.png"),)
    assert not (split / "cat.png").exists() and (split / "kept.png").exists()
    imgdup.undo(done.manifest)
    assert (split / "cat.png").exists()

    code = main(["-d", str(tmp_path / "data"), "--remove", "1", "--quarantine", str(tmp_path / "q2"),
                 "--no-cache", "-j", "1", "--no-progress"])  # fmt: skip
    out = capsys.readouterr().out
    named = out.split("1 symbolic link in the scanned folders points at a file removed, until an undo")[1]
    assert code == 0 and named.split("manifest:")[0].split() == [
        "puts",
        "the",
        "files",
        "back:",
        str(split / "cat.png"),
    ]


def test_an_empty_quarantine_name_is_a_usage_error(
    planted_root: Path, tmp_path: Path, snapshot: Snapshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``imgdup.remove(result, quarantine="")`` (an unset variable) made the current folder the
    quarantine, where the command refuses an empty --quarantine (README, "Safety"; QA pass 20)."""
    result = scan(planted_root)
    before = snapshot(planted_root)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(imgdup.UsageError, match="quarantine"):
        imgdup.remove(result, quarantine="")
    with pytest.raises(imgdup.UsageError, match="quarantine"):
        imgdup.apply(imgdup.to_document(result), quarantine="")
    assert snapshot(planted_root) == before
    assert not any(elsewhere.iterdir())


def test_undo_lists_each_folder_once_not_once_per_restored_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """QA pass 22: before putting a file back, undo listed its whole folder (to drop a
    temporary copy a kill left there); restoring k files into a flat folder of n files read
    k x n names: 12,490 files back into a folder of 40,000 took 143 s (10.4 s to remove them),
    2,490 into 8,000 took 6.8 s. Each folder is now listed once per undo, and a temporary copy
    is still dropped (test_fsafe)."""
    from PIL import Image

    root = tmp_path / "flat"
    root.mkdir()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(root / "a.png")
    Image.effect_noise((64, 48), 60).convert("RGB").save(root / "n.png")
    for i in range(30):
        shutil.copyfile(root / "n.png", root / f"n{i:02d}.png")
    result = imgdup.find_duplicates(root, cache=None, jobs=1)
    done = imgdup.remove(result, quarantine=tmp_path / "q")
    assert len(done.removed) == 30
    listed: list[object] = []
    real = os.listdir

    def counting(path: object = ".") -> list[str]:
        listed.append(path)
        return real(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "listdir", counting)
    back = imgdup.undo(done.manifest)  # type: ignore[arg-type]
    assert len(back.restored) == 30 and len(os.listdir(root)) == 32
    assert len(listed) <= 3  # it was one listing per restored file (30)


def test_a_result_merged_from_two_scans_removes_the_files_of_both(tmp_path: Path) -> None:
    """Two scans both number their clusters from 0; a result joined from them (Python API) gave
    the first cluster 0 the other's files too, and the removal stopped in the middle with a
    KeyError, its manifest never settled (QA pass 23)."""
    from .synth import photo

    for folder, seed in (("one", 70), ("two", 71)):
        (tmp_path / folder).mkdir()
        photo(seed).save(tmp_path / folder / "a.png")
        shutil.copyfile(tmp_path / folder / "a.png", tmp_path / folder / "b.png")
    one, two = (imgdup.find_duplicates([tmp_path / f], jobs=1) for f in ("one", "two"))
    assert [c.id for c in (*one.clusters, *two.clusters)] == [0, 0]
    merged = replace(one, roots=one.roots + two.roots, clusters=one.clusters + two.clusters)
    done = imgdup.remove(merged, quarantine=tmp_path / "q")
    assert not done.skipped and sorted(rel(tmp_path, r.path) for r in done.removed) == ["one/b.png", "two/b.png"]
    res = imgdup.undo(done.manifest)
    assert not res.problems and len(res.restored) == 2
