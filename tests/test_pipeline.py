"""End-to-end scans of the planted tree: clusters, keepers, failures, links, determinism, reports, CLI."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, TiffImagePlugin, TiffTags

import imgdup
from imgdup.cli import main
from imgdup.cluster import components
from imgdup.models import Action, Match, ScanResult

from .conftest import (
    A_HALF,
    A_ORIG,
    A_PNG,
    A_Q50,
    A_ROT,
    B_COPY,
    B_LINK,
    B_NOEXT,
    B_ORIG,
    CHAIN_X,
    CHAIN_Y,
    CHAIN_Z,
    SYMLINK,
    THRESHOLD,
    PlantedSet,
    rel,
    scan,
)
from .synth import photo


def cluster_sets(result: ScanResult, root: Path) -> set[frozenset[str]]:
    return {frozenset(rel(root, m.record.path) for m in c.members) for c in result.clusters}


def cluster_of(result: ScanResult, root: Path, relpath: str) -> imgdup.Cluster:
    (found,) = [c for c in result.clusters if any(rel(root, m.record.path) == relpath for m in c.members)]
    return found


@pytest.fixture(scope="module")
def planted_scan(shared_planted_root: Path) -> ScanResult:
    return scan(shared_planted_root)


# --- 1. what a scan finds -------------------------------------------------------------------


def test_scan_finds_exactly_the_planted_clusters(
    planted_set: PlantedSet, shared_planted_root: Path, planted_scan: ScanResult
) -> None:
    assert cluster_sets(planted_scan, shared_planted_root) == set(planted_set.clusters.values())
    members = {rel(shared_planted_root, m.record.path) for c in planted_scan.clusters for m in c.members}
    assert not members & planted_set.distractors
    # Every distractor was hashed (it is in no cluster because it is far, not because it failed).
    hashed = {rel(shared_planted_root, r.path) for r in planted_scan.records}
    assert planted_set.distractors <= hashed


def test_scan_keeps_by_default_policy_and_marks_actions(
    planted_set: PlantedSet, shared_planted_root: Path, planted_scan: ScanResult
) -> None:
    root = shared_planted_root
    for group, expected in planted_set.clusters.items():
        c = cluster_of(planted_scan, root, planted_set.keepers[group])
        assert rel(root, c.keep.path) == planted_set.keepers[group], group
        assert {rel(root, m.record.path) for m in c.members} == expected
        assert c.members[0].record is c.keep and c.members[0].action is Action.KEEP
        assert c.members[0].distance == 0
        for m in c.members[1:]:
            name = rel(root, m.record.path)
            assert m.distance == (m.record.hash ^ c.keep.hash).bit_count()
            want = Action.REVIEW if name in planted_set.review else Action.REMOVE
            assert m.action is want, name
    s = planted_scan.summary
    assert (s.clusters, s.to_review, s.failures) == (3, 1, 3)
    assert s.duplicates == sum(len(m) - 1 for m in planted_set.clusters.values())
    assert s.to_remove == s.duplicates - s.to_review


def test_scan_orients_exif_and_reads_sizes(shared_planted_root: Path, planted_scan: ScanResult) -> None:
    by_rel = {rel(shared_planted_root, r.path): r for r in planted_scan.records}
    assert (by_rel[A_ROT].width, by_rel[A_ROT].height) == (320, 240)  # stored 240x320, EXIF 6
    assert (by_rel[A_HALF].width, by_rel[A_HALF].height) == (160, 120)
    assert (by_rel[A_ORIG].width, by_rel[A_ORIG].height) == (320, 240)


def test_chained_cluster_leaves_far_member_for_review(shared_planted_root: Path, planted_scan: ScanResult) -> None:
    c = cluster_of(planted_scan, shared_planted_root, CHAIN_X)
    h = {rel(shared_planted_root, m.record.path): m.record.hash for m in c.members}
    d = lambda a, b: (h[a] ^ h[b]).bit_count()  # noqa: E731
    assert d(CHAIN_X, CHAIN_Y) <= THRESHOLD and d(CHAIN_Y, CHAIN_Z) <= THRESHOLD < d(CHAIN_X, CHAIN_Z)
    assert c.diameter == d(CHAIN_X, CHAIN_Z) > THRESHOLD
    actions = {rel(shared_planted_root, m.record.path): m.action for m in c.members}
    assert actions == {CHAIN_X: Action.KEEP, CHAIN_Y: Action.REMOVE, CHAIN_Z: Action.REVIEW}
    assert all(m.record.path != c.keep.path for m in c.removable)
    assert CHAIN_Z not in {rel(shared_planted_root, m.record.path) for m in c.removable}


def test_failures_are_listed_with_reasons_and_the_run_goes_on(
    planted_set: PlantedSet, shared_planted_root: Path, planted_scan: ScanResult
) -> None:
    failed = {rel(shared_planted_root, f.path): f.reason for f in planted_scan.failures}
    assert set(failed) == set(planted_set.failures)
    assert all(reason.strip() for reason in failed.values())
    assert "empty" in failed["bad/empty.jpg"]
    assert planted_scan.summary.images == len(planted_scan.records) > 0


def test_no_extension_jpeg_is_found_by_content(shared_planted_root: Path, planted_scan: ScanResult) -> None:
    hashed = {rel(shared_planted_root, r.path) for r in planted_scan.records}
    assert B_NOEXT in hashed
    assert B_NOEXT in {
        rel(shared_planted_root, m.record.path) for m in cluster_of(planted_scan, shared_planted_root, B_COPY).members
    }


def test_symlink_is_skipped_never_a_member(shared_planted_root: Path, planted_scan: ScanResult) -> None:
    skipped = {rel(shared_planted_root, s.path): s.reason for s in planted_scan.skipped}
    assert set(skipped) == {SYMLINK}
    assert skipped[SYMLINK]
    every_name = {rel(shared_planted_root, n) for r in planted_scan.records for n in (r.path, *r.entry.aliases)} | {
        rel(shared_planted_root, f.path) for f in planted_scan.failures
    }
    assert SYMLINK not in every_name


def _tiff(img: Image.Image, path: Path, *, dng: bool) -> Path:
    """A TIFF of ``img``, its first IFD marked DNG (DNGVersion 1.4) with ``dng``: as a camera's
    RAW file holds its small preview there, the sensor picture elsewhere."""
    ifd = TiffImagePlugin.ImageFileDirectory_v2()
    if dng:
        ifd[50706] = bytes((1, 4, 0, 0))
        ifd.tagtype[50706] = TiffTags.BYTE
    img.save(path, "TIFF", tiffinfo=ifd)
    return path


def test_camera_raw_files_are_skipped_never_members(tmp_path: Path) -> None:
    """A RAW file is a TIFF whose first IFD, the only one Pillow reads, is a small preview: it was
    hashed by that preview, and --remove 1 moved each RAW out as a smaller copy of the camera's
    JPEG (QA pass 35). Found by its extension, or by DNGVersion whatever its name, it is skipped,
    saying why, in a folder scan, a list of files and a reference folder alike."""
    dcim = tmp_path / "dcim"
    dcim.mkdir()
    shot = photo(40)
    shot.save(dcim / "IMG_0042.JPG", quality=92)
    preview = shot.resize((160, 120))
    raws = [
        _tiff(preview, dcim / "IMG_0042.DNG", dng=True),
        _tiff(preview, dcim / "IMG_0042.NEF", dng=False),  # by its extension
        _tiff(preview, dcim / "IMG_0042.tif", dng=True),  # by DNGVersion
        _tiff(preview, dcim / "IMG_0042", dng=True),
    ]
    plain = _tiff(preview, dcim / "small.tiff", dng=False)  # a TIFF of its own is still read
    raw_names = {str(p) for p in raws}
    listed = [str(p) for p in (*raws, plain, dcim / "IMG_0042.JPG")]
    for result in (imgdup.find_duplicates(dcim, jobs=1), imgdup.find_duplicates(files=listed, jobs=1)):
        skipped = {s.path: s.reason for s in result.skipped}
        assert set(skipped) == raw_names
        assert all("camera RAW" in why and "preview" in why for why in skipped.values())
        members = [sorted(Path(m.record.path).name for m in c.members) for c in result.clusters]
        assert members == [["IMG_0042.JPG", "small.tiff"]]
    (tmp_path / "new").mkdir()
    shot.save(tmp_path / "new" / "copy.png")
    result = imgdup.find_duplicates(tmp_path / "new", reference=dcim, jobs=1)
    assert {s.path for s in result.skipped} == raw_names
    assert {Path(r.path).name for r in result.records} == {"copy.png", "IMG_0042.JPG", "small.tiff"}


def test_a_text_file_starting_bm_is_no_image_but_a_bmp_without_extension_is(tmp_path: Path) -> None:
    """Any file starting "BM" was taken for a BMP: a CSV whose first column is BMI, or notes, was
    listed as a broken image ("Truncated File Read") and the run exited 3 (QA pass 35). A BMP is
    known by its header; one without an extension is still found."""
    (tmp_path / "patients.csv").write_text("BMI,age,label\n22.5,41,0\n31.0,57,1\n")
    (tmp_path / "NOTES").write_text("BM: bone marrow scans, batch 3\n")
    photo(41).save(tmp_path / "scan_001", "BMP")
    photo(41).save(tmp_path / "scan_001.png")
    result = imgdup.find_duplicates(tmp_path, jobs=1)
    assert result.failures == ()
    assert [sorted(Path(m.record.path).name for m in c.members) for c in result.clusters] == [
        ["scan_001", "scan_001.png"]
    ]


def test_hard_link_is_one_member_with_an_alias(shared_planted_root: Path, planted_scan: ScanResult) -> None:
    member_paths = [rel(shared_planted_root, m.record.path) for c in planted_scan.clusters for m in c.members]
    assert B_LINK not in member_paths
    assert member_paths.count(B_ORIG) == 1
    (orig,) = [m for c in planted_scan.clusters for m in c.members if rel(shared_planted_root, m.record.path) == B_ORIG]
    assert [rel(shared_planted_root, a) for a in orig.record.entry.aliases] == [B_LINK]
    doc = imgdup.to_document(planted_scan)
    (orig_doc,) = [m for c in doc["clusters"] for m in c["members"] if m["relpath"] == B_ORIG]
    assert [rel(shared_planted_root, p) for p in orig_doc["hardlinks"]] == [B_LINK]
    # One file is counted once: the hard link adds no file and no duplicate.
    assert planted_scan.summary.files == len({r.entry.inode for r in planted_scan.records}) + 3


@pytest.mark.parametrize(
    ("keep", "mtimes", "expected"),
    [
        ("oldest", {A_Q50: -(10**12), CHAIN_Z: -(10**12)}, {A_ORIG: A_Q50, CHAIN_X: CHAIN_Z}),
        ("newest", {A_HALF: 10**15, B_NOEXT: 10**15}, {A_ORIG: A_HALF, B_COPY: B_NOEXT}),
        ("shortest-path", {}, {A_ORIG: A_Q50, B_COPY: B_NOEXT, CHAIN_X: CHAIN_X}),
        ("size", {}, {A_ORIG: A_PNG, B_COPY: B_COPY, CHAIN_X: CHAIN_X}),
    ],
)
def test_keep_policies(planted_root: Path, keep: str, mtimes: dict[str, int], expected: dict[str, str]) -> None:
    for name, delta in mtimes.items():
        st_ = (planted_root / name).stat()
        os.utime(planted_root / name, ns=(st_.st_atime_ns, st_.st_mtime_ns + delta))
    result = scan(planted_root, keep=keep)
    for member, keeper in expected.items():
        c = cluster_of(result, planted_root, member)
        assert rel(planted_root, c.keep.path) == keeper, (keep, member)
        # Whatever the keeper, remove/review follow the distance to it.
        for m in c.members[1:]:
            assert m.action is (Action.REMOVE if m.distance <= THRESHOLD else Action.REVIEW)
    if keep == "oldest":  # keeping Z turns X, beyond t of Z, into the member left for review
        chain = cluster_of(result, planted_root, CHAIN_X)
        actions = {rel(planted_root, m.record.path): m.action for m in chain.members}
        assert actions == {CHAIN_Z: Action.KEEP, CHAIN_Y: Action.REMOVE, CHAIN_X: Action.REVIEW}


# --- 2. invariants and determinism ----------------------------------------------------------


def test_clusters_are_a_partition_without_singletons(planted_scan: ScanResult) -> None:
    seen: list[str] = []
    for i, c in enumerate(planted_scan.clusters):
        assert c.id == i
        assert len(c.members) >= 2
        assert sum(m.action is Action.KEEP for m in c.members) == 1
        seen += [m.record.path for m in c.members]
    assert len(seen) == len(set(seen))
    assert set(seen) <= {r.path for r in planted_scan.records}


def _normalised_document(result: ScanResult, root: Path) -> str:
    return json.dumps(imgdup.to_document(result), sort_keys=True).replace(os.path.realpath(root), "<ROOT>")


def test_result_does_not_depend_on_creation_order(planted_set: PlantedSet, tmp_path: Path) -> None:
    first = planted_set.materialise(tmp_path / "r1")
    second = planted_set.materialise(tmp_path / "r2", reverse=True)
    assert _normalised_document(scan(first), first) == _normalised_document(scan(second), second)


class _ShuffledScandir:
    """Stands in for os.scandir, listing a folder's entries in a seeded random order."""

    real = staticmethod(os.scandir)

    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)

    def __call__(self, path: str) -> _ShuffledScandir:
        with self.real(path) as it:
            self.entries = list(it)
        self.rnd.shuffle(self.entries)
        return self

    def __enter__(self) -> list[os.DirEntry[str]]:
        return self.entries

    def __exit__(self, *exc: object) -> None:
        return None


def test_result_does_not_depend_on_listing_order(shared_planted_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = json.dumps(imgdup.to_document(scan(shared_planted_root)))
    for seed in range(3):
        with monkeypatch.context() as m:
            m.setattr(os, "scandir", _ShuffledScandir(seed))
            shuffled = scan(shared_planted_root)
        assert json.dumps(imgdup.to_document(shuffled)) == expected


def test_report_bytes_are_equal_across_runs(shared_planted_root: Path, tmp_path: Path) -> None:
    one, two = scan(shared_planted_root), scan(shared_planted_root, jobs=2)
    assert json.dumps(imgdup.to_document(one)) == json.dumps(imgdup.to_document(two))
    imgdup.write_report(one, tmp_path / "one.json")
    imgdup.write_report(two, tmp_path / "two.json")
    assert (tmp_path / "one.json").read_bytes() == (tmp_path / "two.json").read_bytes()


def _oracle_components(n: int, pairs: list[tuple[int, int]]) -> set[frozenset[int]]:
    adjacent: dict[int, set[int]] = defaultdict(set)
    for a, b in pairs:
        adjacent[a].add(b)
        adjacent[b].add(a)
    seen: set[int] = set()
    out = set()
    for start in range(n):
        if start in seen:
            continue
        stack, comp = [start], set()
        while stack:
            x = stack.pop()
            if x not in comp:
                comp.add(x)
                stack.extend(adjacent[x] - comp)
        seen |= comp
        out.add(frozenset(comp))
    return out


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 40).flatmap(
        lambda n: st.tuples(st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=60))
    ),
    st.randoms(use_true_random=False),
)
def test_components_ignore_match_order(case: tuple[int, list[tuple[int, int]]], rnd: random.Random) -> None:
    n, pairs = case
    matches = [Match(a, b, 1) for a, b in pairs]
    expected = components(n, matches)
    assert {frozenset(g) for g in expected} == _oracle_components(n, pairs)
    assert sorted(i for g in expected for i in g) == list(range(n))
    assert all(g == sorted(g) for g in expected)
    assert [g[0] for g in expected] == sorted(g[0] for g in expected)
    for _ in range(3):
        shuffled = [Match(b, a, 1) if rnd.random() < 0.5 else Match(a, b, 1) for a, b in pairs]
        rnd.shuffle(shuffled)
        assert components(n, shuffled) == expected


# --- 3. threshold ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [-1, 65, 1000, 2.5, 4.0, "4", True])
def test_invalid_threshold_is_a_usage_error(shared_planted_root: Path, bad: object) -> None:
    with pytest.raises(imgdup.UsageError):
        imgdup.find_duplicates([shared_planted_root], threshold=bad, jobs=1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [{"hash_size": 8.0}, {"hash_size": "8"}, {"jobs": 1.5}, {"jobs": "2"}, {"jobs": True}, {"timeout": "60"},
     {"timeout": None}, {"regions": "no"}, {"rotations": "yes"}, {"rotations": 1},
     {"rotations": None}],
)  # fmt: skip
def test_options_of_the_wrong_type_are_a_usage_error_naming_them(shared_planted_root: Path, bad: dict) -> None:
    """Options read from a config file (8.0, "2") raised bare TypeErrors from deep inside
    (timeout="60": "'>' not supported between instances of 'str' and 'int'", QA pass 20)."""
    (name,) = bad
    with pytest.raises(imgdup.UsageError, match=name):
        imgdup.find_duplicates([shared_planted_root], **{"jobs": 1, **bad})


@pytest.mark.parametrize("verb", ["remove", "apply"])
def test_between_and_permanent_of_the_wrong_type_are_a_usage_error_and_nothing_is_deleted(
    tmp_path: Path, verb: str
) -> None:
    """``permanent="no"`` (from a config file) was read as true: the copies were deleted for good
    instead of quarantined (QA pass 21)."""
    photo(1).save(tmp_path / "a.png")
    shutil.copyfile(tmp_path / "a.png", tmp_path / "b.png")
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    with pytest.raises(imgdup.UsageError, match="between must be True or False"):  # two folders: between applies
        imgdup.find_duplicates([tmp_path / "x", tmp_path / "y"], between="no", jobs=1)  # type: ignore[arg-type]
    result = imgdup.find_duplicates([tmp_path], jobs=1)
    assert result.summary.to_remove == 1
    act = imgdup.remove if verb == "remove" else imgdup.apply
    target = result if verb == "remove" else imgdup.to_document(result)
    with pytest.raises(imgdup.UsageError, match="permanent"):
        act(target, permanent="no")  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png", "x", "y"]


def test_no_threshold_is_the_hash_s_own_default(shared_planted_root: Path) -> None:
    for algorithm, size, expected in (("phash", 8, 8), ("whash", 8, 2), ("ahash", 8, 0), ("dhash", 16, 16)):
        result = imgdup.find_duplicates([shared_planted_root], threshold=None, hash=algorithm, hash_size=size, jobs=1)
        assert result.settings.threshold == expected


def test_threshold_is_checked_against_the_hash_size(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(imgdup.UsageError):
        imgdup.find_duplicates([tmp_path / "empty"], threshold=17, hash_size=4, jobs=1)
    result = imgdup.find_duplicates([tmp_path / "empty"], threshold=65, hash_size=16, jobs=1)
    assert result.settings.threshold == 65


def test_threshold_zero_groups_only_identical_hashes(shared_planted_root: Path) -> None:
    result = scan(shared_planted_root, threshold=0)
    by_hash: dict[int, set[str]] = defaultdict(set)
    for r in result.records:
        by_hash[r.hash].add(r.path)
    expected = {frozenset(paths) for paths in by_hash.values() if len(paths) > 1}
    assert {frozenset(m.record.path for m in c.members) for c in result.clusters} == expected
    assert all(c.diameter == 0 for c in result.clusters)
    assert all(m.action is not Action.REVIEW for c in result.clusters for m in c.members)
    # The chain's Y and Z differ from X, so at t=0 they cannot be in X's cluster.
    assert not any(
        {rel(shared_planted_root, m.record.path) for m in c.members} >= {CHAIN_X, CHAIN_Y} for c in result.clusters
    )


# --- 4. reports -----------------------------------------------------------------------------

MEMBER_KEYS = {"path", "root", "relpath", "hash", "distance", "action", "width", "height", "bytes"}


def test_json_report_schema(shared_planted_root: Path, planted_scan: ScanResult, tmp_path: Path) -> None:
    out = imgdup.write_report(planted_scan, tmp_path / "x.json")
    doc = json.loads(Path(out).read_text(encoding="utf-8"))
    assert doc["schema"] == "imgdup.report/1"
    assert doc["settings"]["threshold"] == THRESHOLD and doc["settings"]["bits"] == 64
    assert {"hash", "hash_size", "keep", "index", "decode"} <= set(doc["settings"])
    assert doc["roots"] == [os.path.realpath(shared_planted_root)]
    assert [c["id"] for c in doc["clusters"]] == list(range(len(planted_scan.clusters)))
    for c, cluster in zip(doc["clusters"], planted_scan.clusters):
        assert {"id", "hash", "keep", "diameter", "members"} <= set(c)
        assert c["keep"] == cluster.keep.path and c["diameter"] == cluster.diameter
        assert c["hash"] == format(cluster.keep.hash, "016x")
        for m, member in zip(c["members"], cluster.members):
            assert set(m) >= MEMBER_KEYS
            assert m["path"] == member.record.path
            assert os.path.join(m["root"], m["relpath"]) == m["path"]
            assert int(m["hash"], 16) == member.record.hash and len(m["hash"]) == 16
            assert m["action"] == member.action.value and m["distance"] == member.distance
            assert m["bytes"] == os.stat(m["path"]).st_size
            assert (m["width"], m["height"]) == (member.record.width, member.record.height)
    assert {f["path"] for f in doc["failures"]} == {f.path for f in planted_scan.failures}
    assert all(f["reason"] for f in doc["failures"])
    summary = doc["summary"]
    assert summary["clusters"] == len(doc["clusters"]) and summary["failures"] == len(doc["failures"])
    assert summary["to_remove"] == sum(m["action"] == "remove" for c in doc["clusters"] for m in c["members"])


def test_csv_report_has_one_row_per_member(planted_scan: ScanResult, tmp_path: Path) -> None:
    imgdup.write_report(planted_scan, tmp_path / "x.csv")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "x.csv").read_text(encoding="utf-8"))))
    members = [(c.id, m) for c in planted_scan.clusters for m in c.members]
    assert len(rows) == len(members)
    assert [(int(r["cluster"]), r["path"], r["action"]) for r in rows] == [
        (cid, m.record.path, m.action.value) for cid, m in members
    ]


@pytest.mark.parametrize("name", ["x.txt", "x", "x.json.bak"])
def test_report_with_unknown_suffix_is_a_usage_error(planted_scan: ScanResult, tmp_path: Path, name: str) -> None:
    with pytest.raises(imgdup.UsageError):
        imgdup.write_report(planted_scan, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_text_report_escapes_control_characters_in_names(planted_set: PlantedSet, tmp_path: Path) -> None:
    data = planted_set.files[A_ORIG]
    (tmp_path / "plain.jpg").write_bytes(data)
    (tmp_path / "evil\nname.jpg").write_bytes(data)
    (tmp_path / "esc\x1b[2Jape.jpg").write_bytes(data)
    text = imgdup.format_text(scan(tmp_path))
    assert "evil\\nname.jpg" in text
    assert "esc\\x1b[2Jape.jpg" in text
    assert "\x1b" not in text
    assert not any(line.startswith("name.jpg") for line in text.splitlines())
    assert "plain.jpg" in text


# --- 6. CLI (scan side; removal round trip is in test_actions.py) ----------------------------


def _cli(*args: str) -> int:
    threshold = [] if {"-t", "--threshold"} & set(args) else ["-t", str(THRESHOLD)]
    return main([*args, *threshold, "--no-cache", "-j", "1", "--no-progress"])


def test_cli_exit_code_zero_on_a_clean_tree(
    planted_set: PlantedSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = planted_set.materialise(tmp_path / "clean", only=["sub/", "chain/"])
    assert _cli("-d", str(root)) == 0
    out = capsys.readouterr().out
    assert "dry run" in out
    assert B_ORIG in out or os.path.join(os.path.realpath(root), B_ORIG) in out


def test_cli_exit_code_three_when_files_fail(shared_planted_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli("-d", str(shared_planted_root)) == 3
    captured = capsys.readouterr()
    assert "bad/corrupt.jpg" in captured.out
    assert "could not be read" in captured.err


@pytest.mark.parametrize("args", [["--threshold", "65"], ["--threshold", "-1"], ["--keep", "biggest"]])
def test_cli_usage_errors_exit_two(
    shared_planted_root: Path, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli("-d", str(shared_planted_root), *args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "error" in captured.err


@pytest.mark.parametrize("args", [[], ["--remove", "1"], ["--threshold", "x", "-d", "."]])
def test_cli_argument_errors_exit_two(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _cli(*args)
    assert exc.value.code == 2
    assert capsys.readouterr().out == ""


def test_cli_json_prints_only_json(
    shared_planted_root: Path, planted_scan: ScanResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "out.json"
    assert _cli("-d", str(shared_planted_root), "--format", "json", "--report", str(report)) == 3
    out = capsys.readouterr().out
    doc = json.loads(out)  # fails on anything else printed to stdout
    assert doc["schema"] == "imgdup.report/1"
    assert doc["clusters"] == imgdup.to_document(planted_scan)["clusters"]
    assert json.loads(report.read_text(encoding="utf-8"))["clusters"] == doc["clusters"]


def test_cli_csv_report(planted_scan: ScanResult, shared_planted_root: Path, tmp_path: Path) -> None:
    report = tmp_path / "out.csv"
    assert _cli("-d", str(shared_planted_root), "--report", str(report)) == 3
    rows = list(csv.DictReader(io.StringIO(report.read_text(encoding="utf-8"))))
    assert len(rows) == sum(len(c.members) for c in planted_scan.clusters)
    assert {r["path"] for r in rows} == {m.record.path for c in planted_scan.clusters for m in c.members}


def test_cli_montage_writes_one_png_per_cluster(
    planted_scan: ScanResult, shared_planted_root: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "montages"
    assert _cli("-d", str(shared_planted_root), "--montage", str(folder)) == 3
    written = sorted(folder.iterdir())
    assert [p.name for p in written] == [f"cluster-{c.id:04d}.png" for c in planted_scan.clusters]
    for path in written:
        with Image.open(path) as img:
            assert img.format == "PNG"
            assert img.width > 0 and img.height > 0


@pytest.mark.parametrize("bad", [5, [5], 3.5, [None]])
def test_a_root_that_is_no_path_is_a_usage_error(bad: object) -> None:
    """README: invalid options raise imgdup.UsageError (find_duplicates(5) raised a bare TypeError)."""
    with pytest.raises(imgdup.UsageError, match=r"^roots(\[0\] is not a path| must be a path or an iterable of paths)"):
        imgdup.find_duplicates(bad)  # type: ignore[arg-type]


def test_the_library_prints_nothing_when_the_caller_configured_no_logging(tmp_path: Path) -> None:
    """Without a handler, Python prints warnings of any library to stderr ("last resort"):
    remove() printed "cluster N skipped: ..."; the package's logger has a NullHandler."""
    code = "import logging, imgdup; logging.getLogger('imgdup.actions').warning('cluster 0 skipped: x')"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stderr == ""
