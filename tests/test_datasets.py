"""Dataset workflows: reference folders, leaks between folders, label conflicts, file lists."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import random
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import imgdup
from imgdup.cli import main
from imgdup.errors import RemovalError
from imgdup.filelist import parse_file_list
from imgdup.labels import read_labels_csv
from imgdup.models import Action, ScanResult

from .conftest import CHAIN_X, CHAIN_Y, CHAIN_Z, THRESHOLD, PlantedSet, encode, hamming, picture


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _big(seed: int) -> bytes:
    return encode(picture(seed, (400, 300)), quality=95)


def _small(seed: int) -> bytes:
    return encode(picture(seed, (400, 300)).resize((200, 150)), quality=70)


def _scan(*roots: object, **options: object) -> ScanResult:
    options.setdefault("threshold", 8)
    options.setdefault("jobs", 1)
    return imgdup.find_duplicates([os.fspath(r) for r in roots], **options)  # type: ignore[arg-type]


def _real(p: Path) -> str:
    return os.path.join(os.path.realpath(p.parent), p.name)


def _actions(result: ScanResult) -> dict[str, str]:
    return {m.record.path: m.action.value for c in result.clusters for m in c.members}


# --- reference folders ---------------------------------------------------------------------------


def test_reference_copy_is_kept_even_when_smaller_and_later_in_path_order(tmp_path: Path) -> None:
    big = _write(tmp_path / "aa_new" / "big.jpg", _big(1))
    small = _write(tmp_path / "zz_ref" / "small.jpg", _small(1))
    plain = _scan(tmp_path / "aa_new", tmp_path / "zz_ref")
    assert _actions(plain) == {_real(big): "keep", _real(small): "remove"}  # the premise: it would lose

    result = _scan(tmp_path / "aa_new", reference=[tmp_path / "zz_ref"])
    assert _actions(result) == {_real(small): "keep", _real(big): "remove"}
    (cluster,) = result.clusters
    assert cluster.keep.path == _real(small) and "reference" in cluster.keep_reason
    assert [m.reference for m in cluster.members] == [True, False]

    done = imgdup.remove(result, quarantine=tmp_path / "q")
    assert [r.path for r in done.removed] == [_real(big)]
    assert small.exists() and not big.exists()


def test_a_file_that_a_reference_folder_links_to_is_kept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """train/cat/x.jpg a symbolic link to test/cat/x.jpg (a split made of links): ImageFolder
    reads that test file as a training image. The link is not followed (skipped), so the test
    file was an ordinary one, and ``--reference train -d test --remove 1`` removed it for its
    better copy: the training image was gone, the run said so only afterwards ("1 symbolic link
    ... points at a file removed") (QA pass 18). A file a reference folder links to is a
    reference file: kept, and marked so in the reports (a reviewed plan cannot remove it)."""
    train, test = tmp_path / "train", tmp_path / "test"
    _write(train / "cat" / "a.jpg", _big(48))
    target = _write(test / "cat" / "x.jpg", _small(49))
    best = _write(test / "cat" / "x_best.jpg", _big(49))
    (train / "cat" / "x.jpg").symlink_to(target)
    pool = _write(tmp_path / "pool" / "dogs" / "p.jpg", _small(50))
    _write(tmp_path / "pool" / "dogs" / "p_best.jpg", _big(50))
    (train / "dog").symlink_to(tmp_path / "pool" / "dogs")  # a class folder that is a link
    result = _scan(test, tmp_path / "pool", reference=[train])
    assert _actions(result) == {_real(target): "keep", _real(best): "remove"}
    assert [m.reference for c in result.clusters for m in c.members if m.record.path == _real(target)] == [True]
    (pooled,) = result.reference_clusters  # the linked class folder's files: a reference cluster, never acted on
    assert _real(pool) in {m.record.path for m in pooled.members}
    assert all(m.reference and m.action is Action.KEEP for m in pooled.members)
    args = ["--reference", str(train), "-d", str(test), "-t", "8", "--no-cache", "-j", "1", "--no-progress"]
    assert main([*args, "--remove", "1", "--quarantine", str(tmp_path / "q")]) == 0
    assert target.exists() and not best.exists()
    out, err = capsys.readouterr()
    assert "points at a file removed" not in out
    assert "1 scanned file is kept as a reference file: a symbolic link in a reference folder points at it" in err


def test_a_copy_of_a_file_a_reference_folder_links_to_is_a_leak(tmp_path: Path) -> None:
    """The file train/cat/x.jpg links to lies in test, and so does its copy: the cluster read as
    test's alone, so ``--between`` dropped it and the copy of a training image stayed (QA pass
    18). The link's name counts as one of the file's names, in train."""
    train, test = tmp_path / "train", tmp_path / "test"
    _write(train / "cat" / "a.jpg", _big(48))
    target = _write(test / "cat" / "x.jpg", _small(49))
    best = _write(test / "cat" / "x_best.jpg", _big(49))
    (train / "cat" / "x.jpg").symlink_to(target)
    pooled = _write(tmp_path / "pool" / "p.jpg", _small(50))
    (train / "dog").symlink_to(tmp_path / "pool")
    copy = _write(test / "dog" / "p.jpg", _big(50))
    result = _scan(test, tmp_path / "pool", reference=[train], between=True)
    assert _actions(result) == {
        _real(target): "keep",
        _real(best): "remove",
        _real(pooled): "keep",
        _real(copy): "remove",
    }
    pairs = {(p.a, p.b): (p.clusters, p.files_b) for p in result.leak_pairs}
    assert pairs[(_real(test), _real(train))] == (2, (_real(train / "cat" / "x.jpg"), _real(train / "dog") + "/p.jpg"))


def test_every_reference_member_is_kept_and_others_removed(tmp_path: Path) -> None:
    refs = [_write(tmp_path / "ref" / f"r{i}.jpg", _small(2) if i else _big(2)) for i in range(2)]
    new = _write(tmp_path / "new" / "a.jpg", encode(picture(2, (400, 300)), quality=80))
    result = _scan(tmp_path / "new", reference=str(tmp_path / "ref"))
    assert _actions(result) == {_real(refs[0]): "keep", _real(refs[1]): "keep", _real(new): "remove"}
    assert (result.summary.to_remove, result.summary.duplicates) == (1, 1)  # the second reference file is kept


def test_a_copy_is_not_removed_once_the_reference_file_it_copies_is_gone(
    planted_set: PlantedSet, tmp_path: Path
) -> None:
    """Every reference file is kept and a copy is removed against the nearest one, which need
    not be the one named keeper: only that keeper was checked again, so a copy was removed
    although the reference file it copies had been deleted since the scan, and the one left
    (the keeper) lies beyond the threshold of it: its picture was gone from the dataset."""
    ref, test = tmp_path / "data" / "ref", tmp_path / "data" / "test"
    x, y = _write(ref / "x.jpg", planted_set.files[CHAIN_X]), _write(ref / "y.jpg", planted_set.files[CHAIN_Y])
    z = _write(test / "z.jpg", planted_set.files[CHAIN_Z])
    assert hamming(planted_set.hashes[CHAIN_X], planted_set.hashes[CHAIN_Z]) > THRESHOLD  # premise: a chain
    result = _scan(test, reference=[ref], threshold=THRESHOLD, regions=False, cache=None)
    (cluster,) = result.clusters
    assert cluster.keep.path == _real(x)  # premise: the keeper is not the reference file z copies
    assert _actions(result) == {_real(x): "keep", _real(y): "keep", _real(z): "remove"}

    def before_cluster(_c: imgdup.Cluster) -> None:
        y.unlink()  # the training set is pruned by hand while the scan runs

    done = imgdup.remove(result, quarantine=tmp_path / "q", before_cluster=before_cluster)
    assert done.removed == () and [s.cluster for s in done.skipped] == [cluster.id]
    assert "y.jpg is gone" in done.skipped[0].reason
    assert z.is_file()


def test_reference_only_cluster_is_reported_apart_and_never_acted_on(tmp_path: Path) -> None:
    a = _write(tmp_path / "ref" / "a.jpg", _big(3))
    b = _write(tmp_path / "ref" / "b.jpg", _small(3))
    _write(tmp_path / "new" / "other.jpg", _big(4))
    result = _scan(tmp_path / "new", reference=[tmp_path / "ref"])
    assert result.clusters == ()
    (ref_cluster,) = result.reference_clusters
    assert {m.record.path for m in ref_cluster.members} == {_real(a), _real(b)}
    assert {m.action for m in ref_cluster.members} == {Action.KEEP}
    assert result.summary.reference_clusters == 1 and result.summary.to_remove == 0
    doc = imgdup.to_document(result)
    assert len(doc["reference_clusters"]) == 1 and doc["clusters"] == []
    # the CSV says which group a row is in, as to_records() does (it mixed them: QA pass 3)
    from imgdup.report.tables import to_csv

    rows = list(csv.DictReader(io.StringIO(to_csv(result))))
    assert [r["group"] for r in rows] == [r["group"] for r in result.to_records()] == ["reference", "reference"]
    assert imgdup.remove(result, quarantine=tmp_path / "q").removed == ()
    assert a.exists() and b.exists()


def test_removal_refuses_a_plan_that_removes_a_reference_file(tmp_path: Path) -> None:
    ref = _write(tmp_path / "ref" / "a.jpg", _big(5))
    new = _write(tmp_path / "new" / "a.jpg", _small(5))
    result = _scan(tmp_path / "new", reference=[tmp_path / "ref"])
    (c,) = result.clusters
    # A tampered plan: the reference file marked for removal, the new file kept.
    members = tuple(replace(m, action=Action.REMOVE if m.reference else Action.KEEP) for m in c.members)
    bad = replace(result, clusters=(replace(c, members=members, keep=members[1].record),))
    with pytest.raises(RemovalError, match="reference"):
        imgdup.remove(bad, quarantine=tmp_path / "q")
    assert ref.exists() and new.exists() and not (tmp_path / "q").exists()


def test_a_scanned_folder_inside_a_reference_folder_is_refused(tmp_path: Path) -> None:
    _write(tmp_path / "data" / "new" / "a.jpg", _big(6))
    with pytest.raises(imgdup.UsageError, match="inside the reference"):
        _scan(tmp_path / "data" / "new", reference=[tmp_path / "data"])


# --- between sets ----------------------------------------------------------------------------------


def _splits(tmp_path: Path) -> dict[str, Path]:
    """train: a within-train pair (10), a leak (11); test: a within-test pair (12), the leak."""
    return {
        "train_a": _write(tmp_path / "train" / "cat" / "a.jpg", _big(10)),
        "train_a2": _write(tmp_path / "train" / "cat" / "a2.jpg", _small(10)),
        "train_leak": _write(tmp_path / "train" / "dog" / "l.jpg", _big(11)),
        "test_leak": _write(tmp_path / "test" / "dog" / "l.jpg", _small(11)),
        "test_b": _write(tmp_path / "test" / "cat" / "b.jpg", _big(12)),
        "test_b2": _write(tmp_path / "test" / "cat" / "b2.jpg", _small(12)),
        "test_alone": _write(tmp_path / "test" / "cat" / "c.jpg", _big(13)),
    }


def test_between_reports_only_clusters_spanning_folders(tmp_path: Path) -> None:
    f = _splits(tmp_path)
    train, test = os.path.realpath(tmp_path / "train"), os.path.realpath(tmp_path / "test")
    every = _scan(tmp_path / "train", tmp_path / "test")
    assert every.summary.clusters == 3 and every.summary.leaks == 1

    result = _scan(tmp_path / "train", tmp_path / "test", between=True)
    (leak,) = result.clusters
    assert {m.record.path for m in leak.members} == {_real(f["train_leak"]), _real(f["test_leak"])}
    assert {m.split for m in leak.members} == {"train", "test"}
    sets = {s.name: s for s in result.sets}
    assert (sets["train"].files, sets["train"].duplicates_within, sets["train"].leaks) == (3, 1, ((test, 1),))
    assert (sets["test"].files, sets["test"].duplicates_within, sets["test"].leaks) == (4, 1, ((train, 1),))
    (pair,) = result.leak_pairs
    assert (pair.a, pair.b, pair.clusters) == (test, train, 1)
    assert pair.files_a == (_real(f["test_leak"]),) and pair.files_b == (_real(f["train_leak"]),)


def test_cli_reference_train_removes_exactly_the_leaked_test_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = _splits(tmp_path)
    before = {k: p.read_bytes() for k, p in f.items()}
    args = ["--reference", str(tmp_path / "train"), "-d", str(tmp_path / "test"), "--between", "-t", "8"]
    code = main([*args, "--remove", "1", "--quarantine", str(tmp_path / "q"), "--no-cache", "-j", "1"])
    assert code == 0
    gone = {k for k, p in f.items() if not p.exists()}
    assert gone == {"test_leak"}
    assert all(f[k].read_bytes() == before[k] for k in f if k != "test_leak")
    out = capsys.readouterr().out
    assert "leaks test <-> train: 1 cluster, 1 file in test, 1 in train" in out


# --- labels ----------------------------------------------------------------------------------------


def test_label_conflict_from_folders_is_left_for_review(tmp_path: Path) -> None:
    cat = _write(tmp_path / "train" / "cat" / "x.jpg", _big(20))
    dog = _write(tmp_path / "train" / "dog" / "x.jpg", _small(20))
    same = [_write(tmp_path / "train" / "cat" / f"y{i}.jpg", (_big if i else _small)(21)) for i in range(2)]
    result = _scan(tmp_path / "train", labels="folder")
    by_path = {m.record.path: (c, m) for c in result.clusters for m in c.members}
    conflict, _ = by_path[_real(cat)]
    assert conflict.label_conflict == ("cat", "dog")
    assert by_path[_real(dog)][1].action is Action.REVIEW and by_path[_real(dog)][1].label == "dog"
    agreeing, _ = by_path[_real(same[0])]
    assert agreeing.label_conflict == () and by_path[_real(same[0])][1].action is Action.REMOVE
    assert result.summary.label_conflicts == 1

    doc = imgdup.to_document(result)
    assert [c["label_conflict"] for c in doc["clusters"]].count(["cat", "dog"]) == 1
    assert "LABEL CONFLICT: cat, dog" in imgdup.format_text(result)
    rows = list(csv.DictReader(io.StringIO(imgdup.report.to_csv(result))))
    assert [json.loads(r["label_conflict"]) for r in rows if r["label_conflict"]] == [["cat", "dog"]] * 2
    # The gallery's embedded plan carries the conflict; its script flags and filters such clusters.
    assert '"label_conflict":["cat","dog"]' in imgdup.report.to_html(result).replace(", ", ",").replace('": ', '":')

    unlabeled = _scan(tmp_path / "train")
    assert unlabeled.summary.label_conflicts == 0 and unlabeled.summary.to_review == 0
    asked = _scan(tmp_path / "train", labels="folder", label_conflicts="remove")
    assert {m.record.path: m.action for c in asked.clusters for m in c.members}[_real(dog)] is Action.REMOVE


def test_the_csv_report_tells_apart_label_conflicts_whose_labels_hold_a_bar(tmp_path: Path) -> None:
    """The CSV cell joined the labels with ``|``: the conflicts {a, b|c} and {a|b, c} both read
    ``a|b|c`` (QA pass 36). It holds them as a JSON list, as the JSON report does."""
    pairs = [(_write(tmp_path / "i" / f"{n}1.jpg", _big(seed)), _write(tmp_path / "i" / f"{n}2.jpg", _big(seed)))
             for n, seed in (("p", 22), ("q", 23))]  # fmt: skip
    labels = {str(pairs[0][0]): "a", str(pairs[0][1]): "b|c", str(pairs[1][0]): "a|b", str(pairs[1][1]): "c"}
    result = _scan(tmp_path / "i", labels=labels)
    rows = list(csv.DictReader(io.StringIO(imgdup.report.to_csv(result))))
    assert sorted({r["label_conflict"] for r in rows}) == ['["a", "b|c"]', '["a|b", "c"]']
    assert sorted(json.loads(r["label_conflict"]) for r in rows) == [["a", "b|c"]] * 2 + [["a|b", "c"]] * 2


def test_the_set_of_a_path_remembered_by_folder_is_the_set_of_the_path() -> None:
    """set_finder remembers each folder's set: for every path it gives set_of's answer (nested
    roots, a root itself, a name that extends a root's, paths in no root, one file per folder
    asked first or last)."""
    from imgdup.sets import set_finder, set_of

    roots = ["/d", "/d/train", "/d/train/cat", "/e/x.jpg", "/f"]
    paths = ["/d/a.jpg", "/d/train/b.jpg", "/d/train/cat/c.jpg", "/d/train/cat/sub/d.jpg", "/d/train2/e.jpg",
             "/d/trainee.jpg", "/e/x.jpg", "/e/y.jpg", "/f/g/h/i.jpg", "/g.jpg", "/d/train", "/f"]  # fmt: skip
    for order in (paths, paths[::-1]):
        where = set_finder(roots, "/")
        assert [where(p) for p in order] == [set_of(p, roots, "/") for p in order]


def test_a_folder_of_splits_scanned_whole_is_labelled_by_split_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``-d data`` over ``data/{train,test}/{cat,dog}``: ImageFolder("data") reads train and test
    as the classes, and so does --labels folder, so every leak is a "test, train" conflict left
    for review. The run says so and how to name the splits; named, nothing is said and the leak
    is no conflict."""
    data = tmp_path / "data"
    _write(data / "train" / "cat" / "1.jpg", _big(41))
    _write(data / "test" / "cat" / "1.jpg", _small(41))
    _write(data / "train" / "dog" / "2.jpg", _big(42))
    with caplog.at_level(logging.WARNING, logger="imgdup"):
        whole = _scan(data, labels="folder")
    assert [c.label_conflict for c in whole.clusters] == [("test", "train")]
    assert "files are labelled 'test', 'train'" in caplog.text and "-d data/test --reference data/train" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="imgdup"):
        named = _scan(data / "test", reference=[data / "train"], labels="folder")
    assert [c.label_conflict for c in named.clusters] == [()] and "labelled" not in caplog.text


def test_class_folders_named_to_scan_give_no_label_and_say_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``-d train/cat -d train/dog --labels folder``: folders named to scan are splits, so no file
    had a label, the cat filed under dog was no conflict and was removed, and nothing said that
    the labels asked for were none (a labels file naming none of the files is refused)."""
    cat = _write(tmp_path / "train" / "cat" / "x.jpg", _big(26))
    dog = _write(tmp_path / "train" / "dog" / "x.jpg", _small(26))
    with caplog.at_level(logging.WARNING, logger="imgdup"):
        result = _scan(tmp_path / "train" / "cat", tmp_path / "train" / "dog", labels="folder")
    assert _actions(result) == {_real(cat): "keep", _real(dog): "remove"}  # as documented: splits
    assert "--labels folder labels none of the 2 files found" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="imgdup"):
        result = _scan(tmp_path / "train", labels="folder")
    assert _actions(result) == {_real(cat): "keep", _real(dog): "review"}  # name their parent: a conflict
    assert "labels none" not in caplog.text


def test_a_file_directly_in_a_named_folder_has_no_folder_label(tmp_path: Path) -> None:
    """``--reference train -d test --labels folder`` on flat splits (no class folders) took the
    split names for classes: every leak read "LABEL CONFLICT: test, train" and was left for
    review, so ``--remove 1`` removed none (QA pass 9). A folder named with -d or --reference
    is a split, not a class; a class folder below it, or the folder of listed files, still is."""
    train = _write(tmp_path / "train" / "a.jpg", _big(25))
    test = _write(tmp_path / "test" / "a.jpg", _small(25))
    result = _scan(tmp_path / "test", reference=[tmp_path / "train"], labels="folder")
    (c,) = result.clusters
    assert c.label_conflict == () and result.summary.label_conflicts == 0
    assert _actions(result) == {_real(train): "keep", _real(test): "remove"}
    assert [m.label for m in c.members] == [None, None]
    listed = _write(tmp_path / "split" / "cat" / "b.jpg", _small(25))  # a one-class list: its folder is cat
    (c,) = _scan(files=[listed], reference=[tmp_path / "train"], labels="folder").clusters
    assert {m.record.path: m.label for m in c.members} == {_real(train): None, _real(listed): "cat"}


def test_a_listed_file_beside_the_listed_class_folders_has_no_folder_label(tmp_path: Path) -> None:
    """Listed files (``--files``) are scanned under their deepest common folder. A file directly
    in it took that folder's name for its class when other listed files lie in class folders
    below it (``test/2.jpg`` beside ``test/cat/``: "LABEL CONFLICT: cat, test", its copy left for
    review), where the same tree named with -d reads it as unlabelled (the folder is a split,
    and ImageFolder lists no file there). It is now unlabelled too; one class's files listed
    alone still take their folder (test_a_file_directly_in_a_named_folder_has_no_folder_label).
    A file in the file system's root has no folder name: it read as the label ""."""
    from imgdup.labels import folder_label

    cat = _write(tmp_path / "data" / "test" / "cat" / "1.jpg", _big(27))
    dog = _write(tmp_path / "data" / "test" / "dog" / "1.jpg", _small(27))
    cat2 = _write(tmp_path / "data" / "test" / "cat" / "2.jpg", _big(28))
    stray = _write(tmp_path / "data" / "test" / "2.jpg", _small(28))
    listed = _scan(files=[cat, dog, cat2, stray], labels="folder")
    named = _scan(tmp_path / "data" / "test", labels="folder")

    def labels(result: ScanResult) -> dict[str, str | None]:
        return {m.record.path: m.label for c in result.clusters for m in c.members}

    assert labels(listed) == {_real(cat): "cat", _real(dog): "dog", _real(cat2): "cat", _real(stray): None}
    assert labels(listed) == labels(named)
    assert [c.label_conflict for c in listed.clusters] == [(), ("cat", "dog")]
    assert "label test" not in imgdup.format_text(listed)
    assert folder_label()(os.sep + "x.jpg") is None


def _image_folder(root: Path) -> dict[str, str]:
    """What torchvision's ImageFolder(root) reads, as its ``find_classes`` and ``make_dataset``
    do: the classes are the root's direct sub-folders, each walked recursively (links
    followed); a file directly in the root is no sample. ``{path as listed: class}``."""
    out = {}
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.is_dir():
            for folder, _dirs, names in os.walk(entry.path, followlinks=True):
                out.update({os.path.join(folder, n): entry.name for n in names if n.endswith(".jpg")})
    return out


def _labels(result: ScanResult) -> dict[str, str | None]:
    return {m.record.path: m.label for c in result.clusters for m in c.members}


def test_a_class_is_the_first_folder_under_the_split_as_imagefolder_reads_it(tmp_path: Path) -> None:
    """ImageFolder reads ``train/cat/2019/a.jpg`` as a cat (its classes are the root's direct
    sub-folders, each walked recursively), but ``--labels folder`` took the parent's name,
    ``2019``: a copy filed under cat and under dog (both in ``2019/``) was no label conflict and
    was removed, and two sub-folders of one class (``cat/a/x.jpg`` = ``cat/b/x.jpg``) were one.
    A file directly in the split has no label, as before; a folder named inside a class folder
    (``-d train/cat``) is the split, its sub-folders the classes, as ImageFolder(train/cat) reads it."""
    from imgdup.labels import folder_label

    train = tmp_path / "train"
    cat = _write(train / "cat" / "2019" / "a.jpg", _big(30))
    dog = _write(train / "dog" / "2019" / "a.jpg", _small(30))  # the same cat filed under dog
    one = _write(train / "cat" / "a" / "x.jpg", _big(31))
    two = _write(train / "cat" / "b" / "x.jpg", _small(31))  # two sub-folders of one class
    loose = _write(train / "z.jpg", _big(32))  # directly in the split: no class
    flat = _write(train / "cat" / "z.jpg", _small(32))
    result = _scan(train, labels="folder")
    expected: dict[str, str | None] = {_real(Path(p)): c for p, c in _image_folder(train).items()}
    assert _real(loose) not in expected
    expected[_real(loose)] = None
    assert _labels(result) == expected
    assert expected[_real(dog)] == "dog" and expected[_real(two)] == "cat" and expected[_real(flat)] == "cat"
    by_path = {m.record.path: c for c in result.clusters for m in c.members}
    assert by_path[_real(cat)].label_conflict == ("cat", "dog")
    assert _actions(result)[_real(dog)] == "review"
    assert by_path[_real(one)].label_conflict == ()
    assert {_actions(result)[_real(one)], _actions(result)[_real(two)]} == {"keep", "remove"}
    assert result.summary.label_conflicts == 1

    (inside,) = _scan(train / "cat", labels="folder").clusters  # -d train/cat: a and b are its classes
    assert inside.label_conflict == ("a", "b")

    label = folder_label([os.sep + os.path.join("d", "train")])
    assert label(os.sep + os.path.join("d", "train", "cat", "2019", "08", "a.jpg")) == "cat"
    assert label(os.sep + os.path.join("d", "train", "a.jpg")) is None
    assert label(os.sep + os.path.join("d", "trainee", "x", "a.jpg")) == "x"  # in no split: its folder


def test_a_leak_filed_in_another_sub_folder_of_its_class_is_no_label_conflict(tmp_path: Path) -> None:
    """``--reference train -d test --between --labels folder --remove 1`` on nested class
    folders (``train/cat/2019/``, ``test/cat/2020/``): every leak read LABEL CONFLICT: 2019, 2020
    and was left for review, while a cat copied into ``test/dog/2019/`` was removed as agreeing."""
    train, test = tmp_path / "train", tmp_path / "test"
    ref = _write(train / "cat" / "2019" / "a.jpg", _big(33))
    leak = _write(test / "cat" / "2020" / "a.jpg", _small(33))
    _write(train / "cat" / "2019" / "b.jpg", _big(34))
    misfiled = _write(test / "dog" / "2019" / "b.jpg", _small(34))
    result = _scan(test, reference=[train], labels="folder", between=True)
    assert sorted(c.label_conflict for c in result.clusters) == [(), ("cat", "dog")]
    assert _actions(result)[_real(ref)] == "keep"
    assert _actions(result)[_real(leak)] == "remove" and _actions(result)[_real(misfiled)] == "review"
    assert _labels(result)[_real(leak)] == "cat" and _labels(result)[_real(misfiled)] == "dog"


def test_listed_files_take_the_first_folder_under_their_common_folder(tmp_path: Path) -> None:
    """The torchvision recipe (``files=[p for p, _ in test.samples], reference=train.root``) on
    nested class folders, one of them a link (``test/cat -> store/cats_v2``): the listed files'
    common folder, as listed, is their split, and the first folder below it their class, as
    ImageFolder gave it (it read 2020: every leak a label conflict, the misfiled cat none)."""
    train, test = tmp_path / "data" / "train", tmp_path / "data" / "test"
    _write(train / "cat" / "2019" / "a.jpg", _big(35))
    _write(train / "cat" / "2019" / "b.jpg", _big(36))
    linked = _write(tmp_path / "store" / "cats_v2" / "2020" / "a.jpg", _small(35))
    misfiled = _write(test / "dog" / "2020" / "b.jpg", _small(36))
    test.mkdir(parents=True, exist_ok=True)
    (test / "cat").symlink_to(tmp_path / "store" / "cats_v2")
    samples = _image_folder(test)
    assert sorted(samples.values()) == ["cat", "dog"]
    result = _scan(files=list(samples), reference=train, labels="folder", between=True)
    assert _labels(result)[_real(linked)] == "cat" and _labels(result)[_real(misfiled)] == "dog"
    assert sorted(c.label_conflict for c in result.clusters) == [(), ("cat", "dog")]
    assert _actions(result)[_real(linked)] == "remove" and _actions(result)[_real(misfiled)] == "review"


def test_listed_files_of_one_class_with_subfolders_beside_the_reference_take_their_split(tmp_path: Path) -> None:
    """The torchvision recipe on a test split of one class whose files lie in year folders
    (``test/cat/2019``, ``test/cat/2020``): their common folder, ``test/cat``, was taken for the
    split, so the leak's class read ``2019``, a label conflict with the training copy's ``cat``,
    left for review: the exact leak was never removed (QA pass 34). Beside the reference folder
    (``data/train``), the listed files' split is the folder beside it that holds them
    (``data/test``), as ``-d data/test`` reads them."""
    train, test = tmp_path / "data" / "train", tmp_path / "data" / "test"
    _write(train / "cat" / "2019" / "a.jpg", _big(38))
    _write(train / "dog" / "b.jpg", _big(39))
    leak = _write(test / "cat" / "2019" / "leak.jpg", _small(38))
    other = _write(test / "cat" / "2020" / "x.jpg", _big(40))
    samples = _image_folder(test)
    assert sorted(set(samples.values())) == ["cat"]
    result = _scan(files=list(samples), reference=train, labels="folder", between=True)
    assert _labels(result)[_real(leak)] == "cat" and _actions(result)[_real(leak)] == "remove"
    assert result.summary.label_conflicts == 0
    (record,) = [r for r in result.to_records() if r["path"] == _real(leak)]
    assert record["split"] == "test"
    assert _real(other) not in _actions(result)


def test_a_labels_file_wins_over_nested_class_folders(tmp_path: Path) -> None:
    """A labels file's rows are the labels, whatever the folders say (unchanged)."""
    a = _write(tmp_path / "train" / "cat" / "2019" / "a.jpg", _big(37))
    b = _write(tmp_path / "train" / "dog" / "2019" / "a.jpg", _small(37))
    labels = tmp_path / "train" / "metadata.csv"
    labels.write_text("file_name,label\ncat/2019/a.jpg,dog\ndog/2019/a.jpg,dog\n", encoding="utf-8")
    result = _scan(tmp_path / "train", labels=labels)
    (c,) = result.clusters
    assert c.label_conflict == () and _labels(result) == {_real(a): "dog", _real(b): "dog"}
    (c,) = _scan(tmp_path / "train", labels="folder").clusters
    assert c.label_conflict == ("cat", "dog")


def test_a_folder_named_inside_another_makes_the_folders_beside_it_splits(tmp_path: Path) -> None:
    """``-d data --reference data/train`` (a reference inside the scanned folder): ``data/test``
    beside ``data/train`` is a split too, so ``data/test/cat/a.jpg`` is a cat, not of class
    ``test`` (every leak a conflict with the training cat); a file directly in ``data/new`` has
    no class. Likewise ``-d data -d data/test``."""
    data = tmp_path / "data"
    ref = _write(data / "train" / "cat" / "a.jpg", _big(38))
    leak = _write(data / "test" / "cat" / "a.jpg", _small(38))
    _write(data / "train" / "cat" / "b.jpg", _big(39))
    misfiled = _write(data / "test" / "dog" / "b.jpg", _small(39))
    new = _write(data / "new" / "c.jpg", _small(40))
    _write(data / "train" / "cat" / "c.jpg", _big(40))
    for result in (
        _scan(data, reference=[data / "train"], labels="folder"),
        _scan(data, data / "test", labels="folder"),
    ):
        labels = _labels(result)
        assert (labels[_real(ref)], labels[_real(leak)], labels[_real(misfiled)]) == ("cat", "cat", "dog")
        assert labels[_real(new)] is None
    result = _scan(data, reference=[data / "train"], labels="folder")
    assert _actions(result)[_real(leak)] == "remove" and _actions(result)[_real(misfiled)] == "review"


def test_label_conflict_from_a_labels_file(tmp_path: Path) -> None:
    a = _write(tmp_path / "imgs" / "a.jpg", _big(22))
    b = _write(tmp_path / "imgs" / "b.jpg", _small(22))
    labels = tmp_path / "imgs" / "metadata.csv"
    labels.write_text("file_name,label\na.jpg,3\nb.jpg,5\n", encoding="utf-8")
    assert read_labels_csv(labels) == {_real(a): "3", _real(b): "5"}
    result = _scan(tmp_path / "imgs", labels=labels)
    (c,) = result.clusters
    assert c.label_conflict == ("3", "5")
    assert [m.action for m in c.members] == [Action.KEEP, Action.REVIEW]
    labels.write_text(f"{a},3\n{b},3\n", encoding="utf-8")  # no header, absolute paths, agreeing
    (c,) = _scan(tmp_path / "imgs", labels=labels).clusters
    assert c.label_conflict == () and [m.label for m in c.members] == ["3", "3"]


def test_labels_given_in_python_as_a_mapping_read_as_a_labels_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An ML pipeline holds its labels in memory; ``labels=`` took only "folder" or a CSV path, so
    they had to be written to a file first (a dict was refused). A mapping ``{path: label}`` now
    labels as a labels file does: its paths (str, bytes or pathlib.Path) spelled as the scan
    spells them (relative to the current folder), a label without stray spaces, "" for none."""
    a = _write(tmp_path / "imgs" / "a.jpg", _big(22))
    b = _write(tmp_path / "imgs" / "b.jpg", _small(22))
    c = _write(tmp_path / "imgs" / "c.jpg", _small(22))
    labels = tmp_path / "imgs" / "metadata.csv"
    labels.write_text("file_name,label\na.jpg,cat\nb.jpg, dog\nc.jpg,\n", encoding="utf-8")
    from_file = _scan(tmp_path / "imgs", labels=labels)
    monkeypatch.chdir(tmp_path)
    given = {"imgs/a.jpg": "cat", Path("imgs/b.jpg"): " dog", os.fsencode(c): ""}
    from_mapping = _scan(tmp_path / "imgs", labels=given)
    assert from_mapping.clusters == from_file.clusters
    (cluster,) = from_mapping.clusters
    assert cluster.label_conflict == ("cat", "dog")
    assert {m.record.path: m.label for m in cluster.members} == {_real(a): "cat", _real(b): "dog", _real(c): None}
    assert from_mapping.settings.labels == "(mapping)"
    assert imgdup.to_document(from_mapping)["settings"]["labels"] == "(mapping)"
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="imgdup"):
        _scan(tmp_path / "imgs", labels={"imgs/a.jpg": "cat"})
    assert [r.getMessage() for r in caplog.records] == [
        "the labels mapping labels 1 of the 3 files found; the rest are unlabelled"
    ]
    with pytest.raises(imgdup.UsageError, match="the labels mapping names none of the 3 files found"):
        _scan(tmp_path / "imgs", labels={"a.jpg": "cat"})  # relative to the current folder, not imgs


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ({"imgs/a.jpg": 3}, "labels['imgs/a.jpg'] is 3, not a string"),
        ({"imgs/a.jpg": None}, "labels['imgs/a.jpg'] is None, not a string"),
        ({3: "cat"}, "labels has a key that is not a path: 3"),
        ({"imgs/a.jpg": "cat", "imgs/./a.jpg": "dog"}, "labels gives imgs/a.jpg two labels ('cat', 'dog')"),
        (["imgs/a.jpg"], "labels must be"),
    ],
)
def test_a_labels_mapping_of_the_wrong_types_is_a_usage_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: object, said: str
) -> None:
    """Refused before any file is read, the argument named (an int class index: the class names
    are what a conflict shows)."""
    _write(tmp_path / "imgs" / "a.jpg", _big(22))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(imgdup.UsageError) as exc:
        _scan(tmp_path / "imgs", labels=given)
    assert said in str(exc.value)


def test_labels_resolve_each_folder_once_not_each_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A labels file or mapping names every file of a dataset, a few folders' worth: each row's
    folder was resolved (realpath) again, 2 s for 100,000 labels in 100 folders, nine tenths of
    the reading (QA pass 28). Each folder is resolved once, with the same paths."""
    from imgdup.labels import labels_mapping, read_labels_csv

    for kind in ("cat", "dog"):
        (tmp_path / "imgs" / kind).mkdir(parents=True)
    mapping = {str(tmp_path / "imgs" / kind / f"{i}.jpg"): kind for kind in ("cat", "dog") for i in range(50)}
    csv_file = tmp_path / "imgs" / "labels.csv"
    csv_file.write_text("".join(f"{kind}/{i}.jpg,{kind}\n" for kind in ("cat", "dog") for i in range(50)))
    expected = {_real(Path(p)): kind for p, kind in mapping.items()}
    resolved: list[str] = []
    real = os.path.realpath
    monkeypatch.setattr(os.path, "realpath", lambda p, *a, **k: (resolved.append(p), real(p, *a, **k))[1])
    assert labels_mapping(mapping) == expected
    assert sorted(resolved) == [str(tmp_path / "imgs" / "cat"), str(tmp_path / "imgs" / "dog")]
    resolved.clear()
    assert read_labels_csv(csv_file) == expected
    assert sorted(resolved) == [str(tmp_path / "imgs" / "cat"), str(tmp_path / "imgs" / "dog")]


def test_a_label_given_under_another_name_of_the_file_counts(tmp_path: Path) -> None:
    """A hard-linked file is one record under its first name; its label was looked up by that
    name only, so a label given under its other name was ignored and the conflict missed (QA 9)."""
    _write(tmp_path / "imgs" / "a.jpg", _big(23))
    b = _write(tmp_path / "imgs" / "b.jpg", _small(23))
    (tmp_path / "imgs" / "other").mkdir()
    os.link(b, tmp_path / "imgs" / "other" / "b2.jpg")
    labels = tmp_path / "imgs" / "metadata.csv"
    labels.write_text("file_name,label\na.jpg,3\nother/b2.jpg,5\n", encoding="utf-8")
    (c,) = _scan(tmp_path / "imgs", labels=labels).clusters
    assert [m.record.path for m in c.members][1] == _real(b)  # listed under its first name
    assert c.label_conflict == ("3", "5") and [m.label for m in c.members] == ["3", "5"]


def test_a_file_filed_under_two_classes_by_hard_links_is_a_label_conflict(tmp_path: Path) -> None:
    """``train/cat/a.jpg`` and ``train/dog/a.jpg`` one file (hard links): ImageFolder reads it
    as a cat and as a dog, but its label was its first name's only, so a test copy of it was
    removed as a plain cat with no conflict in sight; and alone (no copy anywhere) it was no
    conflict at all, though it is the very "same photo under two class folders" (QA pass 18)."""
    train, test = tmp_path / "d" / "train", tmp_path / "d" / "test"
    a = _write(train / "cat" / "a.jpg", _big(24))
    (train / "dog").mkdir()
    os.link(a, train / "dog" / "a.jpg")
    copy = _write(test / "cat" / "a.jpg", _small(24))
    b = _write(train / "cat" / "b.jpg", _big(25))
    os.link(b, train / "dog" / "b.jpg")
    _write(train / "cat" / "c.jpg", _big(26))
    result = _scan(test, reference=[train], labels="folder")
    (c,) = result.clusters
    assert c.label_conflict == ("cat", "dog")
    assert _actions(result)[_real(copy)] == "review"
    (alone,) = result.linked_label_conflicts
    assert alone.names == (_real(train / "cat" / "b.jpg"), _real(train / "dog" / "b.jpg"))
    assert alone.labels == ("cat", "dog")
    assert result.summary.label_conflicts == 2
    doc = imgdup.to_document(result)
    assert doc["linked_label_conflicts"] == [{"names": list(alone.names), "labels": ["cat", "dog"]}]
    text = imgdup.format_text(result)
    assert "LABEL CONFLICT: cat, dog: one file under 2 names: train/cat/b.jpg = train/dog/b.jpg" in text
    assert "2 label conflicts" in text
    imgdup.write_report(result, tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "one file under several labels" in page and f"cat, dog: {alone.names[0]} = {alone.names[1]}" in page


def test_a_file_a_training_link_files_under_another_class_is_a_label_conflict(tmp_path: Path) -> None:
    """A split made of links: train/dog/x.jpg -> test/cat/x.jpg. ImageFolder reads that one file
    as a cat in test and as a dog in train, as it does a file hard-linked under two classes; the
    hard link was a label conflict, the symbolic link none (its name's label was never looked
    up): alone, and in the cluster of a copy of it, where the copy was removed as a plain cat."""
    train, test = tmp_path / "d" / "train", tmp_path / "d" / "test"
    x = _write(test / "cat" / "x.jpg", _big(24))
    _write(train / "cat" / "a.jpg", _big(25))
    (train / "dog").mkdir(parents=True)
    (train / "dog" / "x.jpg").symlink_to(x)
    y = _write(test / "cat" / "y.jpg", _big(26))
    (train / "dog" / "y.jpg").symlink_to(y)
    copy = _write(test / "cat" / "y-small.jpg", _small(26))
    result = _scan(test, reference=[train], labels="folder")
    (c,) = result.clusters
    assert c.label_conflict == ("cat", "dog")
    assert _actions(result)[_real(copy)] == "review"
    (alone,) = result.linked_label_conflicts
    assert alone.names == (_real(x), _real(train / "dog" / "x.jpg")) and alone.labels == ("cat", "dog")
    assert result.summary.label_conflicts == 2
    text = imgdup.format_text(result)
    assert "LABEL CONFLICT: cat, dog: one file under 2 names: test/cat/x.jpg = train/dog/x.jpg" in text


def test_labels_are_read_without_stray_spaces_and_an_empty_one_is_none(tmp_path: Path) -> None:
    """``cat`` against ``cat `` was a label conflict, and an empty label was a label
    (``LABEL CONFLICT: , cat``) while a missing row meant unlabelled (QA pass 5)."""
    labels = tmp_path / "metadata.csv"
    labels.write_text("file_name,label\na.jpg,cat\nb.jpg, cat \nc.jpg,\n", encoding="utf-8")
    got = read_labels_csv(labels)
    assert got == {_real(tmp_path / "a.jpg"): "cat", _real(tmp_path / "b.jpg"): "cat"}


def test_a_labelled_copy_is_not_removed_for_an_unlabelled_one(tmp_path: Path) -> None:
    """With a labels file, the only labelled copy of a picture was removed and an unlabelled one
    kept (path order), silently: a labelled training sample lost. It is left for review, as a
    label conflict is (``label_conflicts="remove"`` removes it as usual)."""
    a = _write(tmp_path / "imgs" / "0.jpg", _big(23))  # unlabelled, first in path order
    b = _write(tmp_path / "imgs" / "d.jpg", _small(23))
    labels = tmp_path / "imgs" / "metadata.csv"
    labels.write_text("file_name,label\nd.jpg,cat\n", encoding="utf-8")
    (c,) = _scan(tmp_path / "imgs", labels=labels, keep="path").clusters
    assert c.keep.path == _real(a)
    assert {m.record.path: m.action for m in c.members} == {_real(a): Action.KEEP, _real(b): Action.REVIEW}
    assert c.label_conflict == ()
    (c,) = _scan(tmp_path / "imgs", labels=labels, keep="path", label_conflicts="remove").clusters
    assert {m.record.path: m.action for m in c.members} == {_real(a): Action.KEEP, _real(b): Action.REMOVE}


def test_a_listed_file_in_a_linked_class_folder_takes_the_class_its_list_names(tmp_path: Path) -> None:
    """``test/cat`` a symbolic link to ``store/cats_v2`` (classes gathered by links): ImageFolder
    lists ``test/cat/x.jpg`` as a cat, but ``--labels folder`` read the class off the real
    folder, ``cats_v2``, so the torchvision recipe's every leak there was a LABEL CONFLICT (cat,
    cats_v2), left for review, not removed (QA pass 18). The class is the listed name's folder."""
    train = _write(tmp_path / "data" / "train" / "cat" / "a.jpg", _big(13))
    _write(tmp_path / "data" / "train" / "dog" / "b.jpg", _big(14))
    _write(tmp_path / "store" / "cats_v2" / "x.jpg", _small(13))
    _write(tmp_path / "data" / "test" / "dog" / "y.jpg", _big(15))
    (tmp_path / "data" / "test" / "cat").symlink_to(tmp_path / "store" / "cats_v2")
    listed = [tmp_path / "data" / "test" / "cat" / "x.jpg", tmp_path / "data" / "test" / "dog" / "y.jpg"]
    result = _scan(files=listed, reference=tmp_path / "data" / "train", labels="folder", between=True)
    (c,) = result.clusters
    assert c.label_conflict == ()
    assert {m.record.path: (m.label, m.action.value) for m in c.members} == {
        _real(train): ("cat", "keep"),
        _real(tmp_path / "store" / "cats_v2" / "x.jpg"): ("cat", "remove"),
    }


def test_a_labels_file_that_names_none_of_the_scanned_files_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Paths written relative to the current folder (``data/train/cat/x.jpg`` in
    ``data/labels.csv``) are read from the CSV's folder and named no scanned file: the run said
    "0 label conflicts" and would remove a copy filed under another class (QA pass 9)."""
    _write(tmp_path / "data" / "train" / "cat" / "x.jpg", _big(24))
    _write(tmp_path / "data" / "test" / "dog" / "x.jpg", _small(24))
    labels = tmp_path / "data" / "labels.csv"
    labels.write_text("path,label\ndata/train/cat/x.jpg,cat\ndata/test/dog/x.jpg,dog\n", encoding="utf-8")
    with pytest.raises(imgdup.UsageError, match="names none of the 2 files") as exc:
        _scan(tmp_path / "data" / "test", reference=[tmp_path / "data" / "train"], labels=labels)
    assert str(tmp_path / "data" / "data" / "train" / "cat" / "x.jpg") in str(exc.value)  # where it looked
    assert main(["-d", str(tmp_path / "data"), "--labels", str(labels), "--no-cache", "--no-progress"]) == 2
    assert "relative to its own folder" in capsys.readouterr().err
    labels.write_text("path,label\ntrain/cat/x.jpg,cat\ntest/dog/x.jpg,dog\n", encoding="utf-8")
    (c,) = _scan(tmp_path / "data", labels=labels).clusters
    assert c.label_conflict == ("cat", "dog")


@pytest.mark.parametrize(
    "text", ["", "path,label\n", "path,label\ntrain/cat/x.jpg,\ntest/dog/x.jpg,  \n"], ids=["empty", "header", "blank"]
)
def test_a_labels_file_that_holds_no_label_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    """An empty labels file (0 bytes, a header alone, every label blank) was only warned about
    ("labels 0 of the 2 files found") and the run said "0 label conflicts": a copy filed under
    another class would be removed (QA pass 33). It names none of the files, as one whose paths
    lead elsewhere does, and is refused the same way; so is an empty mapping."""
    _write(tmp_path / "data" / "train" / "cat" / "x.jpg", _big(24))
    _write(tmp_path / "data" / "test" / "dog" / "x.jpg", _small(24))
    labels = tmp_path / "labels.csv"
    labels.write_text(text, encoding="utf-8")
    with pytest.raises(imgdup.UsageError, match=r"the labels file .*labels\.csv holds no label .*2 files found"):
        _scan(tmp_path / "data", labels=labels)
    assert main(["-d", str(tmp_path / "data"), "--labels", str(labels), "--no-cache", "--no-progress"]) == 2
    assert "holds no label" in capsys.readouterr().err
    with pytest.raises(imgdup.UsageError, match="the labels mapping holds no label"):
        _scan(tmp_path / "data", labels={})


def test_a_labels_file_that_labels_only_some_files_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One split's ``metadata.csv`` given for two splits left the other split unlabelled, with
    no word of it: no label conflict could be seen there (QA pass 9)."""
    _write(tmp_path / "train" / "a.jpg", _big(26))
    _write(tmp_path / "test" / "a.jpg", _small(26))
    labels = tmp_path / "train" / "metadata.csv"
    labels.write_text("file_name,label\na.jpg,cat\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="imgdup"):
        _scan(tmp_path / "test", reference=[tmp_path / "train"], labels=labels)
    assert [r.getMessage() for r in caplog.records] == [
        f"the labels file {labels} labels 1 of the 2 files found; the rest are unlabelled"
    ]


def test_a_labels_file_giving_one_file_two_labels_is_a_usage_error(tmp_path: Path) -> None:
    """A second row for a file silently replaced its label (the last row won), so a file
    labelled both cat and dog read as a dog (QA pass 9); a repeated row that agrees is fine."""
    labels = tmp_path / "metadata.csv"
    labels.write_text("file_name,label\na.jpg,cat\nb.jpg,dog\na.jpg,cat\n./b.jpg,cat\n", encoding="utf-8")
    with pytest.raises(imgdup.UsageError, match=r"lines 3 and 5 .*b\.jpg.* two labels \('dog', 'cat'\)"):
        read_labels_csv(labels)
    labels.write_text("file_name,label\na.jpg,cat\nb.jpg,dog\na.jpg,cat\nb.jpg,\n", encoding="utf-8")
    assert read_labels_csv(labels) == {_real(tmp_path / "a.jpg"): "cat", _real(tmp_path / "b.jpg"): "dog"}


def test_a_labels_file_error_names_the_lines_an_editor_shows(tmp_path: Path) -> None:
    """The message counted data rows, leaving out the header and blank lines: "rows 1 and 2"
    for lines 2 and 4 of the file, and a label holding a comma read as two ("two labels (dog,
    large, cat)") (QA pass 18)."""
    labels = tmp_path / "labels.csv"
    labels.write_bytes(b'\xef\xbb\xbfpath,label\r\nb.jpg,"dog, large"\r\n\r\nb.jpg,cat\r\n')
    with pytest.raises(imgdup.UsageError, match=r"lines 2 and 4 give b\.jpg two labels \('dog, large', 'cat'\)"):
        read_labels_csv(labels)
    labels.write_bytes(b'path,label\na.jpg,"a\nmulti-line label"\nb.jpg,dog\n\nb.jpg\n')
    with pytest.raises(imgdup.UsageError, match=r"line 6 has no label column"):
        read_labels_csv(labels)


def test_a_binary_labels_file_is_refused_with_a_short_reason(tmp_path: Path) -> None:
    """``--labels photo.jpg`` (or any binary file) printed its raw bytes as the row that had no
    label column: a screenful of ``\\udcff\\x00...`` (QA pass 21)."""
    rng = random.Random(21)
    labels = tmp_path / "labels.csv"
    for data in (_big(9), bytes(rng.randrange(1, 256) for _ in range(300))):  # a JPEG; bytes with no NUL
        labels.write_bytes(data)
        with pytest.raises(imgdup.UsageError) as info:
            read_labels_csv(labels)
        assert str(info.value) == (
            f"the labels file {labels} is not a text file (binary data: an image?); "
            "--labels takes a CSV file of path,label rows, or folder"
        )
    labels.write_bytes(b'path,label\n"new\nline.jpg",cat\ntab\tname.jpg\n')  # odd names: text
    with pytest.raises(imgdup.UsageError, match="line 4 has no label column"):
        read_labels_csv(labels)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_a_utf16_labels_file_is_refused_as_utf16(tmp_path: Path, encoding: str) -> None:
    """A labels file saved as UTF-16 with its byte order mark (as Windows tools write it) was
    refused as "not a text file (binary data: an image?)" (QA pass 36): its mark says what it is."""
    labels = tmp_path / "labels.csv"
    text = "path,label\na.jpg,cat\n"
    labels.write_bytes(text.encode(encoding) if encoding != "utf-16-be" else b"\xfe\xff" + text.encode(encoding))
    with pytest.raises(imgdup.UsageError) as info:
        read_labels_csv(labels)
    name = encoding.upper().replace("-BE", "")
    assert str(info.value) == (
        f"the labels file {labels} is {name} text; --labels reads UTF-8: save it as UTF-8 (CSV UTF-8 in a spreadsheet)"
    )


def test_a_labels_file_names_a_file_whose_name_is_not_utf8(tmp_path: Path) -> None:
    """A labels file was refused whole ("not UTF-8 CSV") when one of its rows named a file
    whose name is not UTF-8 (``caf\\xe9.jpg``, written byte for byte): no file of that dataset
    could be labelled (QA pass 18). Such a name is read as the file system spells it, when that
    file exists; a label that is not UTF-8, or such a name that names nothing (a whole file in
    Latin-1, say), is still refused, with its line."""
    odd = os.path.join(os.fsencode(tmp_path / "d"), b"caf\xe9.jpg")
    os.makedirs(os.path.dirname(odd))
    Path(os.fsdecode(odd)).write_bytes(_big(9))
    labels = tmp_path / "d" / "labels.csv"
    labels.write_bytes(b"path,label\r\ncaf\xe9.jpg,cat\r\n")
    assert read_labels_csv(labels) == {
        os.fsdecode(os.path.join(os.fsencode(_real(tmp_path / "d")), b"caf\xe9.jpg")): "cat"
    }
    labels.write_bytes(b"path,label\ncaf\xe9.jpg,cat\nna\xefve.jpg,dog\n")
    with pytest.raises(imgdup.UsageError, match=r"line 3: the path na\\xefve\.jpg is not UTF-8 and names no file"):
        read_labels_csv(labels)
    labels.write_bytes(b"path,label\ncaf\xe9.jpg,ch\xe2t\n")
    with pytest.raises(imgdup.UsageError, match=r"line 2: the label ch\\xe2t is not UTF-8"):
        read_labels_csv(labels)


# --- inputs and outputs ----------------------------------------------------------------------------


ODD_NAMES = ("with space.jpg", "-leading-dash.jpg", "new\nline.jpg", "tab\tand ünïcode.jpg")


def _odd_tree(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "odd"
    paths = [_write(folder / name, _big(30) if i % 2 == 0 else _small(30)) for i, name in enumerate(ODD_NAMES)]
    _write(folder / "unlisted.jpg", _big(30))
    return paths


def test_parse_file_list_keeps_names_verbatim() -> None:
    assert parse_file_list(b"a b.jpg\n-x.jpg\r\n\nc.jpg") == ["a b.jpg", "-x.jpg", "c.jpg"]
    assert parse_file_list(b"new\nline.jpg\0 lead.jpg\0", null=True) == ["new\nline.jpg", " lead.jpg"]


def test_a_file_list_that_starts_with_a_byte_order_mark_keeps_its_first_name() -> None:
    """A list saved by a Windows editor starts with a UTF-8 byte order mark: the first name
    read ``\\ufefftest/a.jpg`` and was skipped as missing (QA pass 9; the labels CSV drops it)."""
    assert parse_file_list(b"\xef\xbb\xbfa.jpg\r\nb.jpg\r\n") == ["a.jpg", "b.jpg"]
    assert parse_file_list(b"\xef\xbb\xbfa.jpg\0b.jpg\0", null=True) == ["a.jpg", "b.jpg"]


def test_a_file_list_naming_no_existing_file_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A list of missing names, an empty list, or a one-name-per-line list read with --null
    (one long name) all said "no folder or file to scan" (QA pass 9)."""
    _write(tmp_path / "a.jpg", _big(46))
    with pytest.raises(imgdup.UsageError, match=r"none of the 1 listed files exists \(first: .*gone\.jpg"):
        _scan(files=[tmp_path / "gone.jpg"])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a.jpg\na.jpg\n")))
    assert main(["--files", "-", "--null", "--no-cache", "--no-progress"]) == 2
    assert "a line break" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    assert main(["--files", "-", "--no-cache", "--no-progress"]) == 2
    assert "the file list names no file" in capsys.readouterr().err


def test_a_folder_option_naming_a_file_list_says_where_lists_go(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``-d files.csv`` (a list as the Dask engine reads one, README "Running on a cluster") with the
    local engine skipped the list as "not an image" and said "no images found in" its folder, exit
    0, as if that folder had been scanned (QA pass 20)."""
    a = _write(tmp_path / "photos" / "a.jpg", _big(46))
    listing = tmp_path / "files.csv"
    listing.write_text(f"path\n{a}\n")
    with pytest.raises(imgdup.UsageError, match=r"files\.csv is neither a folder nor an image.*--files"):
        _scan(listing)
    assert main(["-d", str(listing), "--no-cache", "--no-progress"]) == 2
    assert "--files" in capsys.readouterr().err
    assert _scan(a).summary.images == 1  # an image file named as a root is still scanned


def test_a_nul_separated_list_read_without_null_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``find . -print0 | imgdup --files -`` without --null (or --files naming an image, not a
    list) ended in a traceback: "ValueError: embedded null byte" (QA pass 20)."""
    _write(tmp_path / "a.jpg", _big(46))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"./a.jpg\0./a.jpg\0")))
    assert main(["--files", "-", "--no-cache", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--null" in err and "Traceback" not in err
    assert main(["--files", "a.jpg", "--no-cache", "--no-progress"]) == 2
    assert "--null" in capsys.readouterr().err


def test_file_list_with_odd_names_from_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = _odd_tree(tmp_path)
    data = b"\0".join(os.fsencode(p) for p in paths) + b"\0"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code = main(["--files", "-", "--null", "-t", "8", "--format", "json", "--no-cache", "-j", "1"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    (cluster,) = doc["clusters"]
    assert sorted(m["path"] for m in cluster["members"]) == sorted(_real(p) for p in paths)  # not "unlisted"


def test_a_hard_link_into_the_reference_is_a_reference_file(tmp_path: Path) -> None:
    """One inode named in the reference and in the scanned folder (``cp -al`` splits) is one
    entry under its first name; it was a scanned file, marked remove, and --remove 1 then
    refused the whole run ("lies in the reference folder"). Any of its names in a reference
    folder makes it a reference file: kept, and the other copy is removed."""
    ref = _write(tmp_path / "d" / "train" / "a.jpg", _big(41))
    _write(tmp_path / "d" / "test" / "0.jpg", _big(41))
    os.link(ref, tmp_path / "d" / "test" / "a.jpg")
    result = _scan(tmp_path / "d" / "test", reference=[tmp_path / "d" / "train"])
    (c,) = result.clusters
    assert _actions(result) == {_real(tmp_path / "d" / "test" / "0.jpg"): "remove", c.keep.path: "keep"}
    assert c.keep.entry.inode == os.stat(ref).st_ino
    assert [m.reference for m in c.members if m.record is c.keep] == [True]  # and reported as one
    done = imgdup.remove(result, quarantine=tmp_path / "q")
    assert [r.path for r in done.removed] == [_real(tmp_path / "d" / "test" / "0.jpg")]
    assert ref.exists() and (tmp_path / "d" / "test" / "a.jpg").exists()


def test_a_file_hard_linked_into_train_and_test_is_listed_as_a_leak(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ``cp -al`` split: test/a.jpg is train/a.jpg under another name. It is one file (never
    a cluster of its own), so it was no leak in the per-folder summary or the leak pairs: the
    very leak a train/test check is run for. Listed now, as a hard-linked file of both folders;
    nothing is removed for it (it is one file: unlink the test name yourself)."""
    train, test = tmp_path / "d" / "train", tmp_path / "d" / "test"
    ref = _write(train / "a.jpg", _big(43))
    _write(train / "b.jpg", _big(44))
    _write(test / "c.jpg", _big(45))
    os.link(ref, test / "a.jpg")
    result = _scan(test, reference=[train], between=True)
    assert result.clusters == ()
    (pair,) = result.leak_pairs
    names = {_real(test): pair.files_a if pair.a == _real(test) else pair.files_b}
    assert pair.hard_links == 1 and pair.clusters == 0
    assert set(names[_real(test)]) == {_real(test / "a.jpg")}
    assert {s.name: dict(s.leaks) for s in result.sets}["test"] == {_real(train): 1}
    main(["--reference", str(train), "-d", str(test), "--between", "-t", "8", "--no-cache", "-j", "1", "--no-progress"])
    assert "1 hard-linked file" in capsys.readouterr().out


@pytest.mark.parametrize("what", ["file", "class folder"])
def test_a_test_link_to_a_training_image_is_listed_as_a_leak(tmp_path: Path, what: str) -> None:
    """The mirror of the case below: test/cat/x.jpg -> train/cat/x.jpg (or the whole class,
    test/cat -> ../train/cat). ImageFolder follows the link and reads the training image in test,
    but the link was only listed as skipped and the summary said "leaks: none" (QA pass 34). Now
    the training file has the link's name too, as a training folder's link gives one."""
    train, test = tmp_path / "d" / "train", tmp_path / "d" / "test"
    a = _write(train / "cat" / "a.jpg", _big(46))
    _write(test / "dog" / "y.jpg", _big(47))
    if what == "file":
        (test / "cat").mkdir(parents=True)
        (test / "cat" / "x.jpg").symlink_to(a)
    else:
        (test / "cat").symlink_to(train / "cat")
    result = _scan(test, reference=[train], between=True)
    assert result.clusters == ()
    (pair,) = result.leak_pairs
    assert (pair.clusters, pair.hard_links, pair.symlinks) == (0, 0, 1)
    names = {pair.a: pair.files_a, pair.b: pair.files_b}
    assert names == {_real(test): (str(test / "cat" / "x.jpg" if what == "file" else test / "cat" / "a.jpg"),),
                     _real(train): (_real(a),)}  # fmt: skip
    assert a.exists()


def test_a_listed_file_through_a_class_folder_linked_into_train_is_a_leak(tmp_path: Path) -> None:
    """The same class link (test/dog2 -> ../train/cat), its file listed as ImageFolder(test)
    gives it (``--files``, the recipe's ``test.samples``): the listed name was resolved to the
    training file and dropped, so there was no leak and no label conflict, where ``-d test``
    reports both (QA pass 36). The listed name is a name of the training file in test."""
    train, test = tmp_path / "d" / "train", tmp_path / "d" / "test"
    a = _write(train / "cat" / "a.jpg", _big(46))
    _write(test / "dog" / "y.jpg", _big(47))
    (test / "dog2").symlink_to(train / "cat")
    samples = _image_folder(test)
    assert samples[str(test / "dog2" / "a.jpg")] == "dog2"
    for result in (
        _scan(test, reference=[train], labels="folder", between=True),
        _scan(files=list(samples), reference=[train], labels="folder", between=True),
    ):
        (pair,) = result.leak_pairs
        assert (pair.clusters, pair.hard_links, pair.symlinks) == (0, 0, 1)
        names = {pair.a: pair.files_a, pair.b: pair.files_b}
        assert names == {_real(test): (str(test / "dog2" / "a.jpg"),), _real(train): (_real(a),)}
        assert [(x.names, x.labels) for x in result.linked_label_conflicts] == [
            ((str(test / "dog2" / "a.jpg"), _real(a)), ("cat", "dog2"))
        ]
        assert {s.name: s.files for s in result.sets} == {"test": 2, "train": 1}


def test_files_listed_through_a_linked_class_folder_lie_in_the_split_they_are_listed_in(tmp_path: Path) -> None:
    """``test/cat -> store/cats_v2`` (README's example), its files listed beside ``--reference
    train``: the split was read off their real folder, a split ``cats_v2`` of its own, so a copy
    inside test (test/dog/w.jpg = test/cat/z.jpg) was a leak "test <-> cats_v2", and
    ``--between --remove 1`` removed it (QA pass 36). They lie in test, as listed."""
    train, test, store = tmp_path / "data" / "train", tmp_path / "data" / "test", tmp_path / "store" / "cats_v2"
    a = _write(train / "cat" / "a.jpg", _big(48))
    _write(train / "dog" / "b.jpg", _big(49))
    x = _write(store / "x.jpg", _small(48))  # a copy of a training image
    z = _write(store / "z.jpg", _big(50))
    _write(test / "dog" / "w.jpg", z.read_bytes())  # a duplicate inside test
    (test / "cat").symlink_to(store)
    samples = _image_folder(test)
    result = _scan(files=list(samples), reference=[train], labels="folder", between=True)
    assert {s.name: (s.files, s.duplicates_within, dict(s.leaks)) for s in result.sets} == {
        "test": (3, 1, {_real(train): 1}),  # w.jpg = z.jpg, within test
        "train": (2, 0, {_real(test): 1}),
    }
    (pair,) = result.leak_pairs
    assert (pair.a, pair.b, pair.clusters) == (_real(test), _real(train), 1)
    assert pair.files_a == (str(test / "cat" / "x.jpg"),)
    (c,) = result.clusters
    assert {m.record.path: (m.split, m.label, m.action.value) for m in c.members} == {
        _real(a): ("train", "cat", "keep"),
        _real(x): ("test", "cat", "remove"),
    }
    done = imgdup.remove(result, quarantine=tmp_path / "q")
    assert [r.path for r in done.removed] == [_real(x)] and z.exists()


def test_a_test_file_a_training_link_points_at_is_listed_as_a_leak(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A split made of links: train/cat/x.jpg -> test/cat/x.jpg. ImageFolder reads that one
    file in both splits, so the test image is a training image: the very leak a train/test check
    is run for. It was kept as a reference file, but the summary said "leaks: none" and train
    counted 1 image of 2 (QA pass 18). Listed now as a file linked into both folders, as a
    hard-linked one is; nothing is removed for it."""
    train, test = tmp_path / "d" / "train", tmp_path / "d" / "test"
    _write(train / "cat" / "a.jpg", _big(43))
    x = _write(test / "cat" / "x.jpg", _big(44))
    _write(test / "cat" / "y.jpg", _big(45))
    (train / "cat" / "x.jpg").symlink_to(x)
    result = _scan(test, reference=[train], between=True)
    assert result.clusters == ()
    (pair,) = result.leak_pairs
    assert (pair.clusters, pair.hard_links, pair.symlinks) == (0, 0, 1)
    names = {pair.a: pair.files_a, pair.b: pair.files_b}
    assert names == {_real(test): (_real(x),), _real(train): (_real(train / "cat" / "x.jpg"),)}
    sets = {s.name: (s.files, dict(s.leaks)) for s in result.sets}
    assert sets == {"test": (2, {_real(train): 1}), "train": (2, {_real(test): 1})}
    args = ["--reference", str(train), "-d", str(test), "--between", "-t", "8", "--no-cache", "-j", "1"]
    args.append("--no-progress")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "1 file linked into both (a symbolic link)" in out and "leaks: none" not in out
    assert main([*args, "--format", "json"]) == 0
    (leak,) = json.loads(capsys.readouterr().out)["leaks"]
    assert (leak["clusters"], leak["hard_links"], leak["symlinks"]) == (0, 0, 1)
    assert main([*args, "--remove", "1", "--quarantine", str(tmp_path / "q")]) == 0
    assert x.exists() and (train / "cat" / "x.jpg").exists()


def test_a_file_hard_linked_into_two_folders_counts_among_the_images_of_each(tmp_path: Path) -> None:
    """The per-folder image count went by each file's first name in path order: a ``cp -al``
    split's test/a.jpg (named before train/a.jpg) was counted in test only, and the training
    folder said "1 image" though it holds two (QA pass 18). Each folder counts the files it names."""
    train, test = tmp_path / "d" / "train", tmp_path / "d" / "test"
    ref = _write(train / "a.jpg", _big(43))
    _write(train / "b.jpg", _big(44))
    _write(test / "c.jpg", _big(45))
    os.link(ref, test / "a.jpg")
    result = _scan(test, reference=[train], between=True)
    assert {s.name: s.files for s in result.sets} == {"test": 2, "train": 2}
    assert result.summary.files == 3  # one file under two names


def test_a_copy_of_a_training_file_named_first_in_test_is_a_leak(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """train/cat/a.jpg hard-linked as test/cat/a.jpg (a ``cp -al`` split) is one file under its
    first name, the test one, and test/cat/b.jpg is a resized copy of it. The cluster {a, b}
    was read as lying in test alone: with ``--between`` it was dropped, b was no leak, and
    ``--reference train -d test --between --remove 1`` left that copy of a training image in
    test (QA pass 18). A member lies in the folders of all its names."""
    train, test = tmp_path / "d" / "train", tmp_path / "d" / "test"
    a = _write(train / "cat" / "a.jpg", _big(46))
    _write(train / "cat" / "o.jpg", _big(47))
    (test / "cat").mkdir(parents=True)
    os.link(a, test / "cat" / "a.jpg")
    b = _write(test / "cat" / "b.jpg", _small(46))
    result = _scan(test, reference=[train], between=True)
    assert len(result.clusters) == 1
    assert _actions(result) == {_real(test / "cat" / "a.jpg"): "keep", _real(b): "remove"}
    assert result.summary.leaks == 1
    (pair,) = result.leak_pairs
    assert (pair.a, pair.b, pair.clusters, pair.hard_links) == (_real(test), _real(train), 1, 1)
    assert pair.files_a == (_real(test / "cat" / "a.jpg"), _real(b)) and pair.files_b == (_real(a),)
    sets = {t.name: (t.files, t.duplicates_within, dict(t.leaks)) for t in result.sets}
    assert sets == {"test": (2, 1, {_real(train): 2}), "train": (2, 0, {_real(test): 1})}
    args = ["--reference", str(train), "-d", str(test), "--between", "-t", "8", "--no-cache", "-j", "1"]
    assert main([*args, "--no-progress", "--remove", "1", "--quarantine", str(tmp_path / "q")]) == 0
    assert not b.exists() and a.exists() and (test / "cat" / "a.jpg").exists()


def test_a_listed_file_hard_linked_to_a_reference_file_is_still_a_leak(tmp_path: Path) -> None:
    """``find test | imgdup --files - --reference train``: a listed name of a file the
    reference folder holds (a ``cp -al`` split) was dropped as already seen, so the leak that a
    folder scan reports vanished from the leak pairs (QA pass 9). It is one more name now."""
    train, test = tmp_path / "d" / "train", tmp_path / "d" / "test"
    ref = _write(train / "a.jpg", _big(43))
    _write(train / "b.jpg", _big(44))
    other = _write(test / "c.jpg", _big(45))
    os.link(ref, test / "a.jpg")
    result = _scan(reference=[train], files=[test / "a.jpg", other], between=True)
    (pair,) = result.leak_pairs
    assert pair.hard_links == 1 and pair.clusters == 0
    assert {pair.a: pair.files_a, pair.b: pair.files_b}[_real(test)] == (_real(test / "a.jpg"),)
    assert result.summary.files == 3  # one file under two names


def test_the_dry_run_counts_no_bytes_for_a_file_whose_other_name_keeps_the_data(tmp_path: Path) -> None:
    """A file with a hard link outside the scanned folder frees nothing when removed (the
    removal said 0 B) but the dry run's "would remove" total counted its size (QA pass)."""
    _write(tmp_path / "d" / "a.jpg", _big(26))
    b = _write(tmp_path / "d" / "b.jpg", _small(26))
    before = _scan(tmp_path / "d", keep="path")
    assert before.summary.bytes_to_remove == b.stat().st_size
    (tmp_path / "elsewhere").mkdir()
    os.link(b, tmp_path / "elsewhere" / "b.jpg")
    after = _scan(tmp_path / "d", keep="path")
    assert after.summary.to_remove == 1 and after.summary.bytes_to_remove == 0
    done = imgdup.remove(after, quarantine=tmp_path / "q")
    assert done.bytes_freed == 0 == after.summary.bytes_to_remove


def test_file_list_alone_can_remove_and_make_montages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--files`` with no ``-d``: the README's own ``find . | imgdup --files -`` recipe, with
    --remove 1 and --montage, crashed on the missing folder list (a TypeError)."""
    paths = _odd_tree(tmp_path)
    data = b"\0".join(os.fsencode(p) for p in paths) + b"\0"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    quarantine = tmp_path / "q"
    code = main(["--files", "-", "--null", "-t", "8", "--no-cache", "-j", "1", "--remove", "1",
                 "--quarantine", str(quarantine), "--montage", str(tmp_path / "m"), "--no-progress"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert sum(1 for p in paths if os.path.exists(p)) == 1  # one kept, the rest in the quarantine
    assert any(quarantine.rglob("*.jpg"))


def test_listed_files_on_two_trees_get_a_root_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Listed files that share no folder but ``/`` made ``/`` their root: every quarantine lies
    inside it, so nothing could ever be removed (QA pass 5). Files of one top-level tree share
    its deepest common folder; each tree is a root of its own."""
    import imgdup.filelist as fl

    a = _write(tmp_path / "one" / "x" / "a.jpg", _big(27))
    b = _write(tmp_path / "one" / "y" / "b.jpg", _big(27))
    c = _write(tmp_path / "two" / "z" / "c.jpg", _small(27))
    paths = [_real(p) for p in (a, b, c)]
    top = os.path.realpath(tmp_path)
    assert fl.file_roots(paths, []) == [top]  # one tree (everything under /tmp): its deepest folder
    # tmp_path's sub-folders standing in for two top-level trees (/data, /tmp)
    depth = len(top.split(os.sep)) + 1
    monkeypatch.setattr(fl, "_tree", lambda p: p.split(os.sep)[:depth])
    assert fl.file_roots(paths, []) == [os.path.join(top, "one"), os.path.join(top, "two", "z")]
    assert fl.file_roots(paths, [os.path.join(top, "two")]) == [os.path.join(top, "one")]  # under a given root
    result = imgdup.find_duplicates(files=paths, threshold=8, jobs=1)
    assert sorted(result.roots) == [os.path.join(top, "one"), os.path.join(top, "two", "z")]
    done = imgdup.remove(result)
    assert len(done.removed) == 2 and done.manifest is not None


def test_file_list_api_and_missing_entries(tmp_path: Path) -> None:
    paths = _odd_tree(tmp_path)
    result = imgdup.find_duplicates(files=[*map(str, paths), str(tmp_path / "gone.jpg")], threshold=8, jobs=1)
    (cluster,) = result.clusters
    assert len(cluster.members) == len(ODD_NAMES)
    assert [s.path for s in result.skipped] == [_real(tmp_path / "gone.jpg")]
    done = imgdup.remove(result, quarantine=tmp_path / "q")
    assert len(done.removed) == len(ODD_NAMES) - 1
    assert (tmp_path / "odd" / "unlisted.jpg").exists()


def test_listed_files_of_an_earlier_runs_quarantine_are_not_scanned(tmp_path: Path) -> None:
    """``find . -name '*.jpg' | imgdup --files -`` from the folder above a dataset lists the
    files of the quarantine beside it, which a walk passes over: a removed copy (older, so
    ``--keep oldest`` kept it) was kept and the dataset's own copy moved to a new quarantine,
    leaving no copy of the picture in the dataset."""
    data = tmp_path / "data"
    a = _write(data / "a.jpg", _big(61))
    _write(data / "b.jpg", _small(61))
    first = imgdup.remove(_scan(data, cache=None))
    (moved,) = first.removed
    assert moved.path == _real(data / "b.jpg") and moved.quarantine  # premise: beside data, in tmp_path
    os.utime(moved.quarantine, ns=(10**18, 10**18))  # older than a.jpg
    listed = sorted(str(p) for p in tmp_path.rglob("*.jpg"))
    assert len(listed) == 2  # a.jpg and the quarantined b.jpg
    result = imgdup.find_duplicates(files=listed, threshold=8, jobs=1, keep=["oldest"], cache=None)
    assert result.clusters == ()
    assert [(s.path, s.reason.split(";")[0]) for s in result.skipped] == [
        (_real(Path(moved.quarantine)), "an imgdup quarantine (files removed as duplicates, with their manifest)")
    ]
    assert result.roots == (os.path.realpath(data),)  # not widened to hold the quarantine
    imgdup.remove(result)
    assert a.is_file()
    assert imgdup.undo(first.manifest).restored == (_real(data / "b.jpg"),)  # type: ignore[arg-type]


def test_a_string_root_and_a_generator_of_paths(tmp_path: Path) -> None:
    _splits(tmp_path)
    as_list = _scan(tmp_path / "train")
    as_string = imgdup.find_duplicates(str(tmp_path / "train"), threshold=8, jobs=1)
    assert [[m.record.path for m in c.members] for c in as_string.clusters] == [
        [m.record.path for m in c.members] for c in as_list.clusters
    ]
    files = (str(p) for p in sorted((tmp_path / "train").rglob("*.jpg")))
    from_files = imgdup.find_duplicates(files, threshold=8, jobs=1)
    assert [[m.record.path for m in c.members] for c in from_files.clusters] == [
        [m.record.path for m in c.members] for c in as_list.clusters
    ]


def test_to_records_one_row_per_member(tmp_path: Path) -> None:
    _splits(tmp_path)
    result = _scan(tmp_path / "test", reference=[tmp_path / "train"], labels="folder")
    rows = result.to_records()
    members = [m for c in (*result.clusters, *result.reference_clusters) for m in c.members]
    assert len(rows) == len(members)
    assert {"cluster", "action", "path", "root", "label", "split", "distance", "reference"} <= set(rows[0])
    leak = next(r for r in rows if r["path"].endswith(os.path.join("test", "dog", "l.jpg")))
    assert (leak["split"], leak["label"], leak["action"], leak["reference"]) == ("test", "dog", "remove", False)
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame(rows)
    assert list(frame.columns) == list(rows[0]) and len(frame) == len(rows)


def test_two_folders_of_one_name_are_two_splits(tmp_path: Path) -> None:
    """/a/data and /b/data are shown as data#1 and data#2, but every member's ``split`` (JSON,
    CSV, records) said "data" for both: a leak between them read as a duplicate within one."""
    a = _write(tmp_path / "a" / "data" / "x.jpg", _big(7))
    b = _write(tmp_path / "b" / "data" / "y.jpg", _small(7))
    result = _scan(tmp_path / "a" / "data", tmp_path / "b" / "data")
    splits = {r["path"]: r["split"] for r in result.to_records()}
    assert splits == {_real(a): "data#1", _real(b): "data#2"}
    assert sorted(s.name for s in result.sets) == ["data#1", "data#2"]


def test_to_dataframe_of_a_scan_without_clusters_has_the_columns(tmp_path: Path) -> None:
    """An empty frame had no columns at all: ``df[df.action == "remove"]`` raised KeyError."""
    pytest.importorskip("pandas")
    _write(tmp_path / "d" / "a.jpg", _big(5))
    frame = imgdup.to_dataframe(_scan(tmp_path / "d"))
    assert len(frame) == 0 and {"cluster", "action", "path", "reference"} <= set(frame.columns)
    assert len(frame[frame.action == "remove"]) == 0


def test_to_dataframe_matches_records(tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    _splits(tmp_path)
    result = _scan(tmp_path / "train", tmp_path / "test", labels="folder")
    frame = imgdup.to_dataframe(result)
    # pandas holds a missing text value (the kept file's linked_by) as NaN: None in the records
    rows = [{k: None if v != v else v for k, v in r.items()} for r in frame.to_dict("records")]
    assert rows == result.to_records()


def test_to_dataframe_keeps_a_name_that_is_not_utf8(tmp_path: Path) -> None:
    """pandas 3 stores text in Arrow strings when pyarrow is installed (every Hugging Face
    ``datasets`` environment has it), which cannot hold a name's undecodable byte: a class
    folder named ``caf\\xe9`` in Latin-1 made ``to_dataframe`` raise UnicodeEncodeError (QA
    pass 18). Such a column is kept as Python strings, exact (``os.fsencode`` gives the bytes)."""
    pytest.importorskip("pandas")
    folder = os.path.join(os.fsencode(tmp_path / "d"), b"caf\xe9")
    os.makedirs(folder)
    odd = os.path.join(folder, b"x\xff.jpg")
    Path(os.fsdecode(odd)).write_bytes(_big(8))
    _write(tmp_path / "d" / "dog" / "y.jpg", _small(8))
    result = _scan(tmp_path / "d", labels="folder")
    frame = imgdup.to_dataframe(result)
    # pandas holds a missing text value (the kept file's linked_by) as NaN: None in the records
    rows = [{k: None if v != v else v for k, v in r.items()} for r in frame.to_dict("records")]
    assert rows == result.to_records()
    assert os.fsencode(os.fsdecode(odd)) in [os.fsencode(p) for p in frame.path]
    assert sorted(frame.label) == ["caf\udce9", "dog"]


def test_a_reference_folder_nested_in_the_scanned_folder_is_protected(tmp_path: Path) -> None:
    ref = _write(tmp_path / "data" / "zz_train" / "a.jpg", _small(40))
    new = _write(tmp_path / "data" / "aa_new" / "a.jpg", _big(40))
    result = _scan(tmp_path / "data", reference=[tmp_path / "data" / "zz_train"], between=True)
    assert _actions(result) == {_real(ref): "keep", _real(new): "remove"}
    assert {s.name: s.reference for s in result.sets} == {"data": False, "zz_train": True}


def test_default_quarantine_sits_beside_the_scanned_folder_not_the_reference(tmp_path: Path) -> None:
    _write(tmp_path / "a_train" / "x.jpg", _big(41))
    new = _write(tmp_path / "b_new" / "x.jpg", _small(41))
    done = imgdup.remove(_scan(tmp_path / "b_new", reference=[tmp_path / "a_train"]))
    assert [r.path for r in done.removed] == [_real(new)]
    assert done.manifest is not None and os.path.basename(os.path.dirname(os.path.dirname(done.manifest))) == (
        "b_new.imgdup-quarantine"
    )


def test_two_folders_of_one_name_read_apart_in_the_folder_summary(tmp_path: Path) -> None:
    """``-d x/data -d y/data``: the roots line numbered them (data#1, data#2) but the summary
    printed "leaks data <-> data"."""
    from imgdup.report.text import sets_lines

    _write(tmp_path / "x" / "data" / "a.jpg", _big(24))
    _write(tmp_path / "y" / "data" / "b.jpg", _small(24))
    lines = sets_lines(_scan(tmp_path / "x" / "data", tmp_path / "y" / "data"))
    assert lines[0].startswith("data#1: ") and lines[1].startswith("data#2: ")
    assert any(line.startswith("leaks data#1 <-> data#2: 1 cluster") for line in lines), lines


def test_a_folder_given_to_scan_and_as_reference_is_a_usage_error(tmp_path: Path) -> None:
    """``-d data --reference data`` protected every file and acted on none, silently (QA pass);
    a folder inside a reference folder was refused already."""
    _write(tmp_path / "data" / "a.jpg", _big(25))
    _write(tmp_path / "data" / "b.jpg", _small(25))
    with pytest.raises(imgdup.UsageError, match="both to scan and as a reference"):
        _scan(tmp_path / "data", reference=[tmp_path / "data"])
    with pytest.raises(imgdup.UsageError, match="inside the reference folder"):
        _scan(tmp_path / "data", reference=[tmp_path])


def test_bad_labels_file_and_lonely_between_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path / "imgs" / "a.jpg", _big(42))
    bad = tmp_path / "labels.csv"
    bad.write_text("a.jpg\n", encoding="utf-8")
    with pytest.raises(imgdup.UsageError, match="no label column"):
        _scan(tmp_path / "imgs", labels=bad)
    with pytest.raises(SystemExit) as exc:
        main(["-d", str(tmp_path / "imgs"), "--between", "--no-cache"])
    assert exc.value.code == 2 and "--between compares two or more folders" in capsys.readouterr().err


def test_between_over_listed_files_of_one_folder_is_a_usage_error(tmp_path: Path) -> None:
    """``find test train | imgdup --files - --between``: the listed files make one folder (their
    common one), so no cluster could span two, and the run reported "0 clusters" over four
    leaks (QA pass 9). Splits are named as folders (-d, --reference)."""
    train = _write(tmp_path / "d" / "train" / "a.jpg", _big(47))
    test = _write(tmp_path / "d" / "test" / "a.jpg", _small(47))
    with pytest.raises(imgdup.UsageError, match="two or more folders"):
        _scan(files=[train, test], between=True)
    result = _scan(files=[test], reference=[train.parent], between=True)
    assert len(result.clusters) == 1


def test_an_edited_plan_cannot_remove_a_reference_file(tmp_path: Path) -> None:
    """A reviewed plan that marks the reference copy "remove" (and keeps the new one) is refused
    by apply, as by remove: reference files are never removed, whatever a plan says."""
    big = _write(tmp_path / "aa_new" / "big.jpg", _big(1))
    small = _write(tmp_path / "zz_ref" / "small.jpg", _small(1))
    doc = imgdup.to_document(_scan(tmp_path / "aa_new", reference=[tmp_path / "zz_ref"]))
    (cluster,) = doc["clusters"]
    for m in cluster["members"]:
        m["action"] = "remove" if m["path"] == _real(small) else "keep"
    cluster["keep"] = _real(big)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(imgdup.ImgdupError, match=r"a reference file is never removed|lies in the reference folder"):
        imgdup.apply(plan, quarantine=tmp_path / "q")
    assert small.exists() and big.exists()


def test_a_saved_reference_report_applies_as_scanned(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The train/test recipe in two steps: save the report of ``--reference train -d test``, review
    it, apply it. The reference folder is one of the plan's roots (not inside one): the plan is
    valid, and applying it removes exactly the leaked test file."""
    f = _splits(tmp_path)
    report = tmp_path / "leaks.json"
    args = ["--reference", str(tmp_path / "train"), "-d", str(tmp_path / "test"), "--between", "-t", "8"]
    assert main([*args, "--no-cache", "-j", "1", "--report", str(report), "-q"]) == 0
    assert main(["apply", str(report), "--quarantine", str(tmp_path / "q")]) == 0
    assert {k for k, p in f.items() if not p.exists()} == {"test_leak"}
    assert "moved to the quarantine: 1 file" in capsys.readouterr().out


def test_a_report_of_listed_files_around_the_reference_applies_as_scanned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``find data/test data/val | imgdup --files - --reference data/train --report plan.json``:
    the listed files' folder, data, holds the reference folder, whose files kept their own root
    (train), which is not among the scan's roots. ``imgdup apply plan.json`` refused the plan
    ("its root is not one of the plan's roots") and the text report named the reference files
    by their absolute paths (QA pass 18). Each listed file lies in the split beside the reference
    that holds it (data/test, data/val; QA pass 34), as with ``-d data/test -d data/val``."""
    ref = _write(tmp_path / "data" / "train" / "cat" / "a.jpg", _big(16))
    leak = _write(tmp_path / "data" / "test" / "cat" / "a.jpg", _small(16))
    other = _write(tmp_path / "data" / "val" / "dog" / "b.jpg", _big(17))
    listed = tmp_path / "list.txt"
    listed.write_text(f"{leak}\n{other}\n", encoding="utf-8")
    report = tmp_path / "plan.json"
    args = ["--files", str(listed), "--reference", str(tmp_path / "data" / "train"), "-t", "8", "--no-cache", "-j", "1"]
    assert main([*args, "--no-progress", "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "keep   train/cat/a.jpg" in out and "remove test/cat/a.jpg" in out
    assert "leaks test <-> train: 1 cluster" in out
    assert main(["apply", str(report), "--quarantine", str(tmp_path / "q")]) == 0
    assert ref.exists() and not leak.exists() and other.exists()


# --- a new batch against a cached reference --------------------------------------------------


def _batch(tmp_path: Path) -> tuple[Path, Path]:
    """A reference of 9 files (6 pictures, 3 of them with a smaller copy) and a new batch of 6:
    copies of 3 reference pictures (one that has a copy in the reference), and 2 pictures of
    its own, one with a copy."""
    ref, new = tmp_path / "ref", tmp_path / "new"
    for i in range(6):
        _write(ref / f"r{i}.jpg", _big(10 + i))
        if i < 3:
            _write(ref / f"r{i}-small.jpg", _small(10 + i))
    for i in (0, 3, 5):
        _write(new / f"n{i}.jpg", encode(picture(10 + i, (400, 300)), quality=60))
    for i in (40, 41):
        _write(new / f"own{i}.jpg", _big(i))
    _write(new / "own40-small.jpg", _small(40))
    return ref, new


def _outcome(result: ScanResult) -> list[tuple[int, list[tuple[str, str, int]]]]:
    return [
        (c.diameter, [(m.record.path, m.action.value, m.distance) for m in c.members])
        for c in (*result.clusters, *result.reference_clusters)
    ]


def test_a_new_batch_against_a_cached_reference_searches_only_around_the_new_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a cache that remembers a scan of the reference alone (any earlier scan of it),
    checking a new batch confirms only candidate pairs that hold a new file, runs the keep
    rules only for clusters without a reference file (the reference's own clusters say which
    of its files is kept), and finds exactly what a scan without any cache finds (clusters,
    keepers, reasons, actions, distances, reference clusters)."""
    from imgdup import pipeline, policy

    ref, new = _batch(tmp_path)
    cache = tmp_path / "c.sqlite3"
    _scan(reference=[ref], cache=cache)  # any earlier scan of the reference warms the cache
    seen: list[tuple[object, list[tuple[int, int, int]]]] = []
    real = pipeline.region_links

    def spy(images: list[object], *args: object, **kwargs: object) -> list[tuple[int, int, int]]:
        out = real(images, *args, **kwargs)  # type: ignore[arg-type]
        seen.append((kwargs.get("fresh"), out))
        return out

    monkeypatch.setattr(pipeline, "region_links", spy)
    chooser = policy.choose_keeper
    asked: list[list[str]] = []
    monkeypatch.setattr(
        policy, "choose_keeper", lambda rs, *a: (asked.append([r.path for r in rs]), chooser(rs, *a))[1]
    )
    incremental = _scan(new, reference=[ref], cache=cache)
    # (a lone reference file, r3 or r5 here, is "chosen" at no cost: it is the only candidate)
    assert [[Path(p).name for p in ps] for ps in asked if len(ps) > 1] == [["own40-small.jpg", "own40.jpg"]]
    ((fresh, links),) = seen
    # one entry per search node (copies may share one: hash value and colours), fresh when a new file has it
    values: dict[object, bool] = {}
    for r in incremental.records:
        node = pipeline._node(r, incremental.settings.hash)
        values[node] = values.get(node, False) or not r.path.startswith(_real(ref) + os.sep)
    assert fresh == list(values.values()) and 0 < sum(values.values()) < len(values)
    assert links and all(fresh[i] or fresh[j] for i, j, _ in links)  # type: ignore[index]
    monkeypatch.setattr(pipeline, "region_links", real)
    cold = _scan(new, reference=[ref])
    assert _outcome(incremental) == _outcome(cold)
    assert [(c.keep.path, c.keep_reason) for c in incremental.clusters] == [
        (c.keep.path, c.keep_reason) for c in cold.clusters
    ]
    assert len(cold.clusters) == 4 and len(cold.reference_clusters) == 2


def test_region_links_restricted_to_fresh_images_are_the_full_links_that_touch_them(tmp_path: Path) -> None:
    """The restricted search loses no link that holds a fresh image and adds none."""
    from imgdup.regions import link_item, region_links

    ref, new = _batch(tmp_path)
    records = [r for r in _scan(ref, new).records if not r.low_information]
    images = [[link_item(r)] for r in records]
    full = region_links(images, 8, bits=64)
    assert len(full) >= 6
    rng = np.random.default_rng(3)
    for _ in range(20):
        fresh = (rng.random(len(images)) < 0.3).tolist()
        got = region_links(images, 8, bits=64, fresh=fresh)
        assert got == [(i, j, d) for i, j, d in full if fresh[i] or fresh[j]]


# --- the README's recipes ------------------------------------------------------------------------


def _readme_recipe(marker: str) -> str:
    """The README's Python block that holds ``marker``."""
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    (block,) = [b.split("```", 1)[0] for b in text.split("```python\n")[1:] if marker in b.split("```", 1)[0]]
    return block


class _ImageFolder:
    """torchvision's ``ImageFolder`` as far as the recipe uses it: ``root`` and ``samples``,
    listed as its ``make_dataset`` does (sorted classes, a walk that follows symbolic links)."""

    def __init__(self, root: str) -> None:
        self.root = root
        classes = sorted(e.name for e in os.scandir(root) if e.is_dir())
        self.samples = [
            (os.path.join(folder, name), index)
            for index, cls in enumerate(classes)
            for folder, _, names in sorted(os.walk(os.path.join(root, cls), followlinks=True))
            for name in sorted(names)
            if name.lower().endswith((".jpg", ".jpeg", ".png"))
        ]

    def __len__(self) -> int:
        return len(self.samples)


class _Subset:
    def __init__(self, dataset: _ImageFolder, indices: list[int]) -> None:
        self.dataset, self.indices = dataset, indices

    def __len__(self) -> int:
        return len(self.indices)


def test_the_readme_imagefolder_recipe_drops_every_leaked_test_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The recipe collected cluster members only, so a test image that is a training image
    under another name (a ``cp -al`` split: one file, no cluster) stayed in the "clean" test
    set, and a symbolic link (which ImageFolder follows and imgdup does not) passed unseen
    (QA pass 9). Run verbatim, with ImageFolder and Subset stood in for (no torch here)."""
    for name, module in {
        "torch": {}, "torch.utils": {}, "torch.utils.data": {"Subset": _Subset},
        "torchvision": {}, "torchvision.datasets": {"ImageFolder": _ImageFolder},
    }.items():  # fmt: skip
        stub = type(sys)(name)
        stub.__dict__.update(module)
        monkeypatch.setitem(sys.modules, name, stub)
    data = _leaky_splits(tmp_path / "data", 50)
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {"__name__": "recipe"}
    exec(compile(_readme_recipe("ImageFolder("), "README.md", "exec"), scope)
    scope["main"]()  # type: ignore[operator]
    out = capsys.readouterr().out
    # the link test/dog/symlink.jpg -> a training cat: a leak, and a dog in test (QA pass 34)
    assert out.startswith("3 test images copy a training image; label conflicts: 1\n")
    assert f"not compared: {_real(data / 'test' / 'dog' / 'symlink.jpg')} (symbolic link (not followed))" in out


@pytest.mark.parametrize("copies", [0, 1])
def test_readme_python_api_example_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], copies: int
) -> None:
    """The "Python API" example, run as printed (its quarantine moved under tmp_path) on a folder
    with no duplicate ended in a traceback: remove() moved nothing, its manifest is None, and
    ``imgdup.undo(None)`` raised TypeError (QA pass 20)."""
    photos = tmp_path / "photos"
    _write(photos / "a.jpg", _big(61))
    for i in range(copies):
        _write(photos / f"copy{i}.jpg", _big(61))
    before = sorted(p.name for p in photos.iterdir())
    monkeypatch.chdir(tmp_path)
    code = _readme_recipe("imgdup.remove(result, quarantine=").replace('"/data/q"', repr(str(tmp_path / "q")))
    assert code.count(repr(str(tmp_path / "q"))) == 1
    scope: dict[str, object] = {"__name__": "recipe"}
    exec(compile(code, "README.md", "exec"), scope)
    scope["main"]()  # type: ignore[operator]
    assert sorted(p.name for p in photos.iterdir()) == before  # removed, then put back
    assert (tmp_path / "dups.json").is_file()
    with pytest.raises(imgdup.UsageError, match="nothing to undo"):
        imgdup.undo(None)  # type: ignore[arg-type]


def test_a_default_quarantine_beside_the_other_split_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--reference data/train -d data/test --between --remove 1`` (the README's recipe) moved
    the leaked files to data/test.imgdup-quarantine, inside data/: Hugging Face's imagefolder
    reads a folder named ``test.*`` as the test split, so ``load_dataset("imagefolder",
    data_dir="data")`` loaded them back; ``-d train/cat -d train/dog`` put one in train/, a new
    class to ImageFolder. Nothing said so (QA pass 20)."""
    data = tmp_path / "data"
    _write(data / "train" / "cat" / "a.jpg", _big(71))
    _write(data / "test" / "cat" / "a.jpg", _big(71))
    args = ["--reference", str(data / "train"), "-d", str(data / "test"), "--between", "--no-cache", "-j", "1"]
    assert main([*args, "--remove", "1"]) == 0
    err = capsys.readouterr().err
    assert f"{_real(data / 'test')}.imgdup-quarantine" in err and "--quarantine" in err
    assert "a folder named 'test.*' for the test split" in " ".join(err.split())
    assert not (data / "test" / "cat" / "a.jpg").exists()
    _write(data / "test" / "cat" / "b.jpg", _big(71))
    assert main([*args, "--remove", "1", "--quarantine", str(tmp_path / "q")]) == 0
    assert "--quarantine" not in capsys.readouterr().err  # a quarantine of your own choice: nothing to say
    alone = tmp_path / "photos"
    _write(alone / "a.jpg", _big(72))
    _write(alone / "b.jpg", _big(72))
    assert main(["-d", str(alone), "--no-cache", "-j", "1", "--remove", "1"]) == 0
    assert "--quarantine" not in capsys.readouterr().err  # beside one folder: nothing else there


def test_a_default_quarantine_named_as_a_split_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``-d data/train --remove 1`` alone: data/train.imgdup-quarantine is the train split to
    Hugging Face's imagefolder (``train.*``), though no other folder was scanned (QA pass 20)."""
    data = tmp_path / "data"
    _write(data / "train" / "cat" / "a.jpg", _big(73))
    _write(data / "train" / "cat" / "b.jpg", _big(73))
    _write(data / "test" / "cat" / "c.jpg", _big(74))
    assert main(["-d", str(data / "train"), "--no-cache", "-j", "1", "--remove", "1"]) == 0
    err = capsys.readouterr().err
    assert f"{_real(data / 'train')}.imgdup-quarantine" in err and "--quarantine" in err
    # the split it is, not always "test" (QA pass 33)
    assert "a folder named 'train.*' for the train split" in " ".join(err.split()) and "'test.*'" not in err
    _write(data / "val" / "cat" / "d.jpg", _big(75))
    _write(data / "val" / "cat" / "e.jpg", _big(75))
    assert main(["-d", str(data / "val"), "--no-cache", "-j", "1", "--remove", "1"]) == 0
    assert "a folder named 'val.*' for the validation split" in " ".join(capsys.readouterr().err.split())


def _leaky_splits(data: Path, seed: int) -> Path:
    """``data/train/{cat,cat,dog}/<i>.jpg`` and a ``data/test`` that leaks three of them: a resized
    copy of train/cat/0.jpg, a hard link to train/dog/2.jpg and a symbolic link to train/cat/1.jpg;
    and test/dog/new.jpg, a copy of nothing."""
    train = [_write(data / "train" / cls / f"{i}.jpg", _big(seed + i)) for i, cls in enumerate(["cat", "cat", "dog"])]
    _write(data / "test" / "cat" / "copy.jpg", _small(seed))
    _write(data / "test" / "dog" / "new.jpg", _big(seed + 10))
    (data / "test" / "dog").joinpath("linked.jpg").hardlink_to(train[2])
    (data / "test" / "dog").joinpath("symlink.jpg").symlink_to(train[1])
    return data


def test_the_readme_hugging_face_recipe_drops_every_leaked_test_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The ``datasets`` image-folder recipe, run verbatim with ``load_dataset`` and ``Image``
    stood in for (rows give each file's path, as ``Image(decode=False)`` does; the folder walk
    follows symbolic links): a resized copy, a hard link and a symbolic link into train are
    dropped, and a test file that a training link points at too."""
    stub = type(sys)("datasets")
    stub.__dict__.update({"Image": _HFImage, "load_dataset": _hf_load_dataset})
    monkeypatch.setitem(sys.modules, "datasets", stub)
    data = _leaky_splits(tmp_path / "data", 70)
    shared = _write(data / "test" / "dog" / "shared.jpg", _big(81))
    (data / "train" / "dog" / "shared.jpg").symlink_to(shared)  # train reads the test file
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {"__name__": "recipe"}
    exec(compile(_readme_recipe('load_dataset("imagefolder"'), "README.md", "exec"), scope)
    scope["main"]()  # type: ignore[operator]
    out = capsys.readouterr().out
    assert out.startswith("4 leaked test images dropped\n"), out
    assert f"not compared: {_real(data / 'test' / 'dog' / 'symlink.jpg')} (symbolic link (not followed))" in out


def test_between_removal_without_a_reference_says_a_training_file_can_go(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``-d train -d test --between --remove 1`` keeps each leak's best copy, wherever it lies:
    here the test copy is the larger, so the training file was removed without a word (QA pass
    14). The run now says so before it scans, and how to protect a folder; with --reference it
    does not."""
    train = _write(tmp_path / "train" / "dog" / "l.jpg", _small(11))
    test = _write(tmp_path / "test" / "dog" / "l.jpg", _big(11))
    common = ["--between", "-t", "8", "--no-cache", "-j", "1", "--no-progress"]
    code = main(["-d", str(tmp_path / "train"), "-d", str(tmp_path / "test"), *common, "--remove", "1",
                 "--quarantine", str(tmp_path / "q")])  # fmt: skip
    assert code == 0 and not train.exists() and test.exists()  # the documented behaviour the warning is about
    assert "--reference TRAIN -d TEST" in capsys.readouterr().err
    main(["--reference", str(tmp_path / "test"), "-d", str(tmp_path / "train"), *common])
    assert "--reference TRAIN" not in capsys.readouterr().err


def test_between_removal_with_two_scanned_folders_says_a_leak_between_them_keeps_either_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--reference train -d val -d test --between --remove 1``: a copy shared by val and test
    (and by no training file) is a leak too, and keeps its best copy in either folder: here the
    val file went, without a word, where the README's one-folder recipe promises that only
    copies of training images go (QA pass 18). The run says so before it scans."""
    _write(tmp_path / "train" / "dog" / "t.jpg", _big(12))
    val = _write(tmp_path / "val" / "dog" / "l.jpg", _small(11))
    test = _write(tmp_path / "test" / "dog" / "l.jpg", _big(11))
    common = ["--between", "-t", "8", "--no-cache", "-j", "1", "--no-progress", "--reference", str(tmp_path / "train")]
    code = main(["-d", str(tmp_path / "val"), "-d", str(tmp_path / "test"), *common, "--remove", "1",
                 "--quarantine", str(tmp_path / "q")])  # fmt: skip
    assert code == 0 and not val.exists() and test.exists()  # the behaviour the warning is about
    assert "a leak between two folders to scan keeps its best copy" in capsys.readouterr().err
    main(["-d", str(tmp_path / "test"), *common, "--remove", "1", "--quarantine", str(tmp_path / "q")])
    assert "keeps its best copy" not in capsys.readouterr().err


class _HFImage:
    """``datasets.Image`` as the recipe uses it: ``decode=False`` gives each row's path."""

    def __init__(self, decode: bool = True) -> None:
        self.decode = decode


class _HFSplit:
    """A ``datasets.Dataset`` of an image folder, as far as the recipe uses it."""

    def __init__(self, paths: list[str], decoded: bool = True) -> None:
        self.paths, self.decoded = paths, decoded

    def cast_column(self, name: str, feature: _HFImage) -> _HFSplit:
        assert name == "image"
        return _HFSplit(self.paths, feature.decode)

    def __getitem__(self, name: str) -> list[dict[str, object]]:
        assert name == "image" and not self.decoded  # paths only: nothing decoded
        return [{"path": p, "bytes": None} for p in self.paths]

    def select(self, indices: list[int]) -> _HFSplit:
        return _HFSplit([self.paths[i] for i in indices], self.decoded)

    def __len__(self) -> int:
        return len(self.paths)


def _hf_load_dataset(kind: str, *, data_dir: str) -> dict[str, _HFSplit]:
    """``load_dataset("imagefolder", data_dir=...)`` for train/test class folders: absolute
    paths as found by a walk that follows symbolic links, links not resolved."""
    assert kind == "imagefolder"
    return {
        split: _HFSplit(
            sorted(
                os.path.join(os.path.abspath(folder), name)
                for folder, _, names in os.walk(os.path.join(data_dir, split), followlinks=True)
                for name in names
                if name.endswith(".jpg")
            )
        )
        for split in ("train", "test")
    }


def test_a_label_with_a_comma_reads_as_one_label_in_the_text_report(tmp_path: Path) -> None:
    """QA pass 18 left it: labels "dog" and "dog, large" printed "LABEL CONFLICT: dog, dog, large",
    three labels to a reader; a label holding a comma (or a quote) is now quoted, as in CSV."""
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(encode(picture(71, (400, 300)), quality=95))
    (folder / "b.jpg").write_bytes((folder / "a.jpg").read_bytes())
    table = tmp_path / "labels.csv"
    with table.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([("path", "label"), ("d/a.jpg", "dog"), ("d/b.jpg", 'dog, "large"')])
    result = _scan(folder, labels=table)
    (cluster,) = result.clusters
    assert cluster.label_conflict == ("dog", 'dog, "large"')
    assert 'LABEL CONFLICT: dog, "dog, ""large"""' in imgdup.format_text(result)


def test_the_dataset_line_of_one_folder_with_labels_names_only_what_was_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``-d flat --labels labels.csv``, no reference and one folder: the line read "0 clusters span
    two or more folders, 1 label conflict, 0 clusters only inside the reference" (QA pass 34)."""
    flat = tmp_path / "flat"
    a = _write(flat / "a.jpg", _big(41))
    _write(flat / "b.jpg", a.read_bytes())
    (flat / "labels.csv").write_text("path,label\na.jpg,cat\nb.jpg,dog\n", encoding="utf-8")
    assert main(["-d", str(flat), "--labels", str(flat / "labels.csv"), "--no-cache", "-j", "1", "-q"]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if "label conflict" in x and "LABEL" not in x]
    assert lines == ["1 label conflict"]


def test_between_over_a_list_of_missing_files_says_they_are_missing(tmp_path: Path) -> None:
    """A ``find`` list made in another folder, every relative name wrong, with --between and a
    reference: it said "everything to scan lies in one (train): name the splits as folders",
    never that the listed files do not exist (QA pass 34)."""
    train = tmp_path / "data" / "train"
    _write(train / "cat" / "a.jpg", _big(42))
    missing = [str(tmp_path / "test" / "cat" / "x.jpg")]
    with pytest.raises(imgdup.UsageError, match=r"none of the 1 listed files exists"):
        imgdup.find_duplicates([], files=missing, reference=train, between=True, jobs=1)
