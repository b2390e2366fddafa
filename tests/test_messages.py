"""What a run says: quiet when all is well, right plurals, no images, formats it cannot read."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import imgdup
from imgdup import hashing
from imgdup.cli import main
from imgdup.models import FileEntry, HashFailure, HashSettings

from .synth import photo


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main([*args, "--no-cache", "--no-progress", "-j", "1"])
    out, err = capsys.readouterr()
    return rc, out, err


def test_a_clean_run_prints_no_failure_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo(1).save(tmp_path / "a.png")
    shutil.copyfile(tmp_path / "a.png", tmp_path / "b.png")
    for quiet in ([], ["-q"]):
        rc, _out, err = cli(capsys, "-d", str(tmp_path), *quiet)
        assert rc == 0 and "could not be read" not in err and err == ""
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    rc, _out, err = cli(capsys, "-d", str(tmp_path), "-q")
    assert rc == 3 and err.strip().splitlines()[-1] == "imgdup: 1 file could not be read (listed above)"


def test_a_folder_that_cannot_be_listed_is_counted_as_a_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder that could not be listed was counted as a file: "2 files scanned ..., 2 images
    hashed, 1 failed" and "1 file could not be read", of a folder whose files were never counted
    (QA pass 36). It is said as a folder, and the files' counts add up."""
    photo(1).save(tmp_path / "a.png")
    shutil.copyfile(tmp_path / "a.png", tmp_path / "b.png")
    (tmp_path / "locked").mkdir()
    photo(2).save(tmp_path / "locked" / "c.png")
    real = os.scandir

    def scandir(path: str = ".") -> Any:  # mode 000 as an ordinary user sees it (root reads any folder)
        if os.fspath(path) == str(tmp_path / "locked"):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    rc, out, err = cli(capsys, "-d", str(tmp_path))
    assert (
        rc == 3 and "2 files scanned (0 from the cache), 2 images hashed, 0 failed, 1 folder could not be listed" in out
    )
    assert err.strip().splitlines()[-1] == "imgdup: 1 folder could not be listed (listed above)"
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    rc, out, err = cli(capsys, "-d", str(tmp_path))
    assert "3 files scanned (0 from the cache), 2 images hashed, 1 failed, 1 folder could not be listed" in out
    assert (
        err.strip().splitlines()[-1] == "imgdup: 1 file could not be read, 1 folder could not be listed (listed above)"
    )


def test_a_scanned_folder_that_cannot_be_listed_is_not_reported_as_holding_no_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """When the folder given to ``-d`` could not be listed, the report said "no images found in
    data" above the counts, as of an empty folder (QA pass 36): it now says the folder could not
    be listed, and an empty folder keeps its words."""
    data = tmp_path / "data"
    data.mkdir()
    photo(1).save(data / "a.png")
    real = os.scandir

    def scandir(path: str = ".") -> Any:  # mode 000 as an ordinary user sees it (root reads any folder)
        if os.fspath(path) == str(data):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    rc, out, _err = cli(capsys, "-d", str(data))
    assert rc == 3 and "no images found" not in out, out
    assert f"nothing to compare in {data}: 1 folder could not be listed (see above)" in out, out
    monkeypatch.setattr(os, "scandir", real)
    (tmp_path / "empty").mkdir()
    rc, out, _err = cli(capsys, "-d", str(tmp_path / "empty"))
    assert f"no images found in {tmp_path / 'empty'}" in out, out


def test_counts_of_one_are_singular(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo(1).save(tmp_path / "a.png")
    shutil.copyfile(tmp_path / "a.png", tmp_path / "b.png")
    _rc, out, _err = cli(capsys, "-d", str(tmp_path))
    assert "1 cluster, 1 duplicate: would remove 1 file (" in out
    assert "2 files scanned" in out and "2 images hashed" in out
    shutil.copyfile(tmp_path / "a.png", tmp_path / "c.png")
    _rc, out, _err = cli(capsys, "-d", str(tmp_path))
    assert "1 cluster, 2 duplicates: would remove 2 files (" in out


def test_a_folder_without_images_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("no pictures here\n")
    rc, out, _err = cli(capsys, "-d", str(tmp_path))
    assert rc == 0 and f"no images found in {tmp_path}" in out
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    rc, out, _err = cli(capsys, "-d", str(tmp_path))
    assert rc == 3 and "no image could be read" in out


def entry(path: Path) -> FileEntry:
    st = path.stat()
    return FileEntry(str(path), str(path.parent), path.name, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


def isobmff(brand: bytes) -> bytes:
    """The start of a HEIC/AVIF file (an ftyp box), not a decodable picture."""
    return b"\x00\x00\x00\x18ftyp" + brand + b"\x00\x00\x00\x00mif1" + brand + b"\x00" * 64


@pytest.mark.parametrize(("name", "brand", "hint"), [
    # the package itself: imgdup-ml is not on PyPI yet, so 'imgdup-ml[heic]' could not be installed
    ("photo.heic", b"heic", "pip install pillow-heif"),
    ("photo.avif", b"avif", "without AVIF support"),
])  # fmt: skip
def test_heic_and_avif_are_listed_with_how_to_enable_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, brand: bytes, hint: str
) -> None:
    path = tmp_path / name
    path.write_bytes(isobmff(brand))
    result = imgdup.find_duplicates(tmp_path, jobs=1)
    assert [f.path for f in result.failures] == [str(path)]  # found and listed, not silently skipped
    monkeypatch.setattr(hashing, "optional_formats", lambda: ())  # an installation without either
    res = hashing.hash_entry(entry(path), HashSettings())
    assert isinstance(res, HashFailure) and hint in res.reason


def test_a_format_this_installation_cannot_read_is_not_cached_as_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failure depends on the installation, not on the file: cached, it stood after
    ``pip install pillow-heif``, as its own message advises (QA pass 9)."""
    path = tmp_path / "photo.heic"
    path.write_bytes(isobmff(b"heic"))
    monkeypatch.setattr(hashing, "optional_formats", lambda: ())
    res = hashing.hash_entry(entry(path), HashSettings())
    assert isinstance(res, HashFailure) and "pip install" in res.reason and res.transient


def test_heic_is_read_when_pillow_heif_is_installed(tmp_path: Path) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    if "HEIF" not in hashing.optional_formats():
        pytest.skip("pillow-heif cannot register its opener here")
    picture = photo(3)
    picture.save(tmp_path / "a.jpg", quality=95)
    pillow_heif.from_pillow(picture).save(str(tmp_path / "a.heic"), quality=90)
    result = imgdup.find_duplicates(tmp_path, jobs=1, keep="path")
    assert not result.failures
    assert [sorted(Path(m.record.path).name for m in c.members) for c in result.clusters] == [["a.heic", "a.jpg"]]


def test_avif_is_read_when_pillow_supports_it(tmp_path: Path) -> None:
    if "AVIF" not in hashing.optional_formats():
        pytest.skip("this Pillow has no AVIF support")
    picture = photo(4)
    picture.save(tmp_path / "a.png")
    picture.save(tmp_path / "a.avif", quality=90)
    result = imgdup.find_duplicates(tmp_path, jobs=1)
    assert not result.failures and len(result.clusters) == 1


@pytest.mark.parametrize("kind", [str, Path])
def test_find_duplicates_accepts_one_folder(tmp_path: Path, kind: type) -> None:
    photo(1).save(tmp_path / "a.png")
    shutil.copyfile(tmp_path / "a.png", tmp_path / "b.png")
    result = imgdup.find_duplicates(kind(tmp_path), jobs=1)
    assert result.roots == (str(tmp_path),) and result.summary.clusters == 1


def test_skipped_paths_are_named_with_their_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A listed file that is missing, or a symbolic link, is skipped: the text report names each
    one and why (not only a count labelled "symlinks, special files"), up to a cap."""
    photo(1).save(tmp_path / "a.png")
    (tmp_path / "link.png").symlink_to(tmp_path / "a.png")
    listed = tmp_path / "list.txt"
    listed.write_text(f"{tmp_path / 'gone.png'}\n", encoding="utf-8")
    rc, out, _err = cli(capsys, "-d", str(tmp_path), "--files", str(listed))
    assert rc == 0
    lines = out.splitlines()
    assert any(ln.startswith("skipped ") and "gone.png" in ln and "cannot stat" in ln for ln in lines)
    assert any(ln.startswith("skipped ") and "link.png" in ln and "symbolic link" in ln for ln in lines)
    assert "2 skipped (listed above)" in out
    for i in range(25):
        (tmp_path / f"l{i:02}.png").symlink_to(tmp_path / "a.png")
    rc, out, _err = cli(capsys, "-d", str(tmp_path))
    assert sum(ln.startswith("skipped ") for ln in out.splitlines()) == 20
    assert "... and 6 more skipped (a JSON report lists every one: --report FILE.json)" in out
    assert "26 skipped (20 listed above)" in out


def test_failed_and_skipped_paths_are_named_by_their_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Skipped and failed files were named by their absolute paths while every other line reads
    ``<root name>/<path>``; past 20 skipped paths the report sent the reader to "the JSON report"
    that no one had asked for, and its summary said "(listed above)" of 26 when 20 were (QA pass 36)."""
    root = tmp_path / "photos"
    root.mkdir()
    photo(1).save(root / "a.png")
    (root / "bad.jpg").write_bytes(b"not a picture")
    (root / "link.png").symlink_to(root / "a.png")
    rc, out, _err = cli(capsys, "-d", str(root), "--no-cache")
    lines = out.splitlines()
    assert rc == 3 and f"roots: photos = {root}" in lines
    assert any(ln.startswith("failed  photos/bad.jpg: ") for ln in lines), out
    assert "skipped photos/link.png: symbolic link (not followed)" in lines
    assert str(root) not in out.replace(f"roots: photos = {root}", "")


def test_dataset_summaries_count_in_the_right_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One leak, one conflict: singular words, and no stray blank in a member's detail."""
    for split, label in (("train", "cat"), ("test", "dog")):
        (tmp_path / split / label).mkdir(parents=True)
        photo(1).save(tmp_path / split / label / "a.png")
    _rc, out, _err = cli(
        capsys, "--reference", str(tmp_path / "train"), "-d", str(tmp_path / "test"), "--labels", "folder"
    )
    assert "1 cluster spans two or more folders, 1 label conflict, 0 clusters only inside the reference" in out
    assert "leaks test <-> train: 1 cluster, 1 file in test, 1 in train" in out
    assert "test: 1 image, 0 duplicates within, leaks: 1 to train" in out
    assert "[320x240 px, " in out and ";  " not in out
    (tmp_path / "labels.csv").write_text("path,label\ntrain/cat/a.png,cat\ntest/dog/a.png,dog\n", encoding="utf-8")
    _rc, out, _err = cli(capsys, "-d", str(tmp_path), "--labels", str(tmp_path / "labels.csv"))
    assert "; label cat]" in out and ";  " not in out


def test_a_threshold_near_chance_level_is_warned_about(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Unrelated photos differ in about half the bits: above a quarter of them, different pictures
    group and get marked remove (measured on a 65-photo set: T=30 without regions put all 65 in one
    cluster). Said on stderr, not refused: a review at a high threshold is legitimate."""
    photo(1).save(tmp_path / "a.png")
    _rc, _out, err = cli(capsys, "-d", str(tmp_path), "-t", "16")
    assert err == ""
    _rc, _out, err = cli(capsys, "-d", str(tmp_path), "-t", "17")
    assert "threshold 17 is high for 64-bit hashes" in err
    _rc, _out, err = cli(capsys, "-d", str(tmp_path), "-t", "40", "--hash-size", "16")
    assert err == ""
    _rc, _out, err = cli(capsys, "-d", str(tmp_path), "-t", "17", "-q")
    assert err == ""


def test_a_threshold_above_the_hash_s_own_default_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ahash and whash at phash's threshold marked 43 and 47 unique dogs-1000 photos for removal:
    their defaults are lower, and a threshold above them says why it is risky."""
    photo(1).save(tmp_path / "a.png")
    _rc, _out, err = cli(capsys, "-d", str(tmp_path), "--hash", "whash")
    assert err == ""
    _rc, out, err = cli(capsys, "-d", str(tmp_path), "--hash", "whash", "-t", "8")
    assert "threshold 8 is above whash's default (2)" in err and "threshold 8" in out
    _rc, _out, err = cli(capsys, "-d", str(tmp_path), "--hash", "dhash", "--hash-size", "16", "-t", "16")
    assert err == ""  # dhash's 4 at 64 bits is 16 at 256


def test_a_quarantine_inside_a_scanned_folder_is_a_usage_error_before_the_scan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused at removal time it cost a whole scan and exited 1 (an error), not 2 (usage)."""
    photo(1).save(tmp_path / "a.png")
    shutil.copyfile(tmp_path / "a.png", tmp_path / "b.png")
    rc, _out, err = cli(capsys, "-d", str(tmp_path), "-r", "1", "--quarantine", str(tmp_path / "q"))
    assert rc == 2 and "quarantine" in err
    assert (tmp_path / "b.png").exists() and not (tmp_path / "q").exists()


def test_a_quarantine_that_is_a_file_is_named_as_such_before_the_scan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It said "cannot create the quarantine ...: File exists", after the whole scan."""
    root = tmp_path / "d"
    root.mkdir()
    photo(1).save(root / "a.png")
    shutil.copyfile(root / "a.png", root / "b.png")
    (tmp_path / "q").write_text("not a folder")
    rc, _out, err = cli(capsys, "-d", str(root), "-r", "1", "--quarantine", str(tmp_path / "q"))
    assert rc == 2 and "is not a folder" in err
    assert (root / "b.png").exists()
    result = imgdup.find_duplicates([root], jobs=1)
    with pytest.raises(imgdup.RemovalError, match="is not a folder"):
        imgdup.remove(result, quarantine=tmp_path / "q")


def _scan_forbidden(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the CLI's scan fail the test: what is checked must be checked before it."""
    import imgdup.cli as cli_mod

    def no_scan(*_a: object, **_k: object) -> None:
        raise AssertionError("the scan ran before the quarantine was checked")

    monkeypatch.setattr(cli_mod, "find_duplicates", no_scan)


def _pair_and_its_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    """A folder of two identical pictures, its plan, and a file (notes.txt) beside them."""
    root = tmp_path / "d"
    root.mkdir()
    photo(1).save(root / "a.png")
    shutil.copyfile(root / "a.png", root / "b.png")
    plan = tmp_path / "plan.json"
    assert cli(capsys, "-d", str(root), "--report", str(plan), "-q")[0] == 0
    (tmp_path / "notes.txt").write_text("mine")
    return root, plan


def test_a_quarantine_under_a_file_is_refused_before_the_scan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--quarantine notes.txt/q``: refused only at removal time, after the whole scan (exit 1,
    "cannot create the quarantine ...: Not a directory"), as no other bad option is (QA pass 21)."""

    root, plan = _pair_and_its_plan(tmp_path, capsys)
    target = tmp_path / "notes.txt" / "sub" / "q"

    _scan_forbidden(monkeypatch)
    for args in (["-d", str(root), "-r", "1"], ["apply", str(plan)]):
        rc, _out, err = cli(capsys, *args, "--quarantine", str(target))
        assert rc == 2, err
        assert f"cannot create the quarantine {target}: {tmp_path / 'notes.txt'} is not a folder" in err
        assert "nothing was removed" not in err  # a usage error: nothing was started
    assert sorted(p.name for p in root.iterdir()) == ["a.png", "b.png"]
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_permanent_checks_its_quarantine_before_the_scan_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--permanent`` writes its manifest in the quarantine too, but a ``--quarantine`` inside the
    dataset or under a file was refused only after the whole scan, exit 1 (QA pass 35)."""

    root, plan = _pair_and_its_plan(tmp_path, capsys)

    _scan_forbidden(monkeypatch)
    for target, said in (
        (root / "q", "must be outside the scanned folder"),
        (tmp_path / "notes.txt" / "q", "is not a folder"),
    ):
        for args in (["-d", str(root), "-r", "1"], ["apply", str(plan)]):
            rc, _out, err = cli(capsys, *args, "--permanent", "--quarantine", str(target))
            assert rc == 2 and said in err, err
    assert sorted(p.name for p in root.iterdir()) == ["a.png", "b.png"]


def test_a_dry_run_checks_its_quarantine_as_the_removal_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ``-r 1`` a ``--quarantine`` inside the dataset or under a file was accepted without a
    word (exit 0, "add --remove 1 to act"), and the same command with ``-r 1`` was then refused:
    a dry run that previews the real command did not check it (QA pass 36)."""
    import imgdup.cli as cli_mod

    root, _plan = _pair_and_its_plan(tmp_path, capsys)
    scan = cli_mod.find_duplicates

    _scan_forbidden(monkeypatch)
    for target, said in (
        (root / "q", "must be outside the scanned folder"),
        (tmp_path / "notes.txt" / "q", "is not a folder"),
    ):
        rc, _out, err = cli(capsys, "-d", str(root), "--quarantine", str(target))
        assert rc == 2 and said in err, err
    monkeypatch.setattr(cli_mod, "find_duplicates", scan)
    rc, out, _err = cli(capsys, "-d", str(root), "--quarantine", str(tmp_path / "q"))  # a good one: a dry run
    assert rc == 0 and "dry run: nothing was changed" in out and not (tmp_path / "q").exists()
    assert sorted(p.name for p in root.iterdir()) == ["a.png", "b.png"]


def test_a_quarantine_on_a_read_only_disk_is_refused_before_the_scan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``--quarantine`` on a read-only disk (or in a folder the user may not write) failed only
    at removal time, after the whole scan, exit 1 (QA pass 35)."""

    root = tmp_path / "d"
    root.mkdir()
    photo(1).save(root / "a.png")
    shutil.copyfile(root / "a.png", root / "b.png")
    locked = tmp_path / "locked"
    locked.mkdir()
    with contextlib.ExitStack() as stack:
        if os.geteuid() == 0:  # root writes any folder: a read-only mount
            if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,ro", "tmpfs", str(locked)]).returncode:
                pytest.skip("cannot mount a read-only tmpfs here")
            stack.callback(subprocess.run, ["umount", "-l", str(locked)], check=False)
        else:
            locked.chmod(0o555)
            stack.callback(locked.chmod, 0o755)

        _scan_forbidden(monkeypatch)
        for extra in ([], ["--permanent"]):
            rc, _out, err = cli(capsys, "-d", str(root), "-r", "1", *extra, "--quarantine", str(locked / "q"))
            assert rc == 2 and f"cannot create the quarantine {locked / 'q'}: {locked} is not writable" in err, err
    assert sorted(p.name for p in root.iterdir()) == ["a.png", "b.png"]


def test_undo_with_format_json_prints_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--format json meant plain text from --undo (scan, --remove 1 and apply honour it)."""
    root = tmp_path / "d"
    root.mkdir()
    photo(1).save(root / "a.png")
    shutil.copyfile(root / "a.png", root / "b.png")
    rc, _out, _err = cli(capsys, "-d", str(root), "-r", "1", "--quarantine", str(tmp_path / "q"))
    assert rc == 0
    (manifest,) = (tmp_path / "q").rglob("manifest.json")
    rc, out, _err = cli(capsys, "--undo", str(manifest), "--format", "json")
    doc = json.loads(out)
    assert rc == 0 and doc["undo"]["restored"] == [str(root / "b.png")] and doc["undo"]["problems"] == []


def test_a_missing_file_list_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """It gave exit 1 and Python's '[Errno 2] ...' (a missing --labels file: exit 2, clear)."""
    rc, _out, err = cli(capsys, "--files", str(tmp_path / "nolist.txt"))
    assert rc == 2 and "cannot read the file list" in err and "nolist.txt" in err


def test_labels_given_twice_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The second --labels silently replaced the first (one metadata.csv per split; QA pass 5)."""
    with pytest.raises(SystemExit) as exc:
        cli(capsys, "-d", str(tmp_path), "--labels", "a.csv", "--labels", "b.csv")
    assert exc.value.code == 2 and "--labels is given once" in capsys.readouterr().err


def test_outputs_inside_a_listed_files_folder_are_refused_before_the_scan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Listed files belong to their common folder: a montage inside it was refused only after
    the scan, with exit 1 (README: a usage error at once, exit 2) (QA pass 5)."""
    root = tmp_path / "d"
    root.mkdir()
    photo(1).save(root / "a.png")
    shutil.copyfile(root / "a.png", root / "b.png")
    listed = tmp_path / "list.txt"
    listed.write_text(f"{root / 'a.png'}\n{root / 'b.png'}\n")
    rc, _out, err = cli(capsys, "--files", str(listed), "--montage", str(root / "sheets"))
    assert rc == 2 and "inside the scanned folder" in err
    rc, _out, err = cli(capsys, "--files", str(listed), "-r", "1", "--quarantine", str(root / "q"))
    assert rc == 2 and "outside the scanned folder" in err
    assert (root / "b.png").exists()


@pytest.fixture
def pixel_limit() -> object:
    """Pillow's pixel limit is process-wide: put it back after a test that sets it."""
    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    yield saved
    Image.MAX_IMAGE_PIXELS = saved


def test_the_pixel_limit_can_be_raised_for_trusted_large_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pixel_limit: object
) -> None:
    """A 108-megapixel phone photo is over Pillow's decompression-bomb limit (89.5 MP) and was
    refused with no way forward: the message names --max-pixels, which sets the limit for the
    scan's workers too (here a limit scaled down to a 300 x 300 picture)."""
    photo(3, (300, 300)).save(tmp_path / "big.png")
    shutil.copyfile(tmp_path / "big.png", tmp_path / "copy.png")
    rc, out, _err = cli(capsys, "-d", str(tmp_path), "-j", "2", "--no-cache", "--max-pixels", "40000")
    assert rc == 3 and "refused: decompression bomb" in out and "raise the limit with --max-pixels" in out
    rc, out, _err = cli(capsys, "-d", str(tmp_path), "-j", "2", "--no-cache", "--max-pixels", "90000")
    assert rc == 0 and "1 cluster" in out and "decompression bomb" not in out
    with pytest.raises(SystemExit):
        main(["-d", str(tmp_path), "--max-pixels", "0"])


def _scanned_pair(tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: int) -> Path:
    """A picture and its JPEG copy in ``tmp_path/d``, scanned; the report's path (output dropped)."""
    (tmp_path / "d").mkdir()
    photo(seed).save(tmp_path / "d" / "a.png")
    photo(seed).save(tmp_path / "d" / "b.jpg", quality=60)
    report = tmp_path / "r.json"
    assert main(["-d", str(tmp_path / "d"), "-j", "1", "--no-cache", "--no-progress", "--report", str(report)]) == 0
    capsys.readouterr()
    return report


def test_apply_names_each_skipped_cluster_once_and_ends_with_a_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each skip was printed twice (stdout, and the library's warning on stderr), and apply's
    exit 3 had no closing line saying how many and where, as a scan's removal has."""
    report = _scanned_pair(tmp_path, capsys, 5)
    (tmp_path / "d" / "b.jpg").unlink()
    assert main(["apply", str(report), "-j", "1", "--no-cache"]) == 3
    out, err = capsys.readouterr()
    assert out.count("skipped cluster 0") == 1 and "cluster 0" not in err
    assert err.strip().splitlines()[-1] == "imgdup: 1 cluster skipped (listed above)"


@pytest.mark.parametrize("permanent", [False, True])
def test_apply_with_every_cluster_skipped_still_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pixel_limit: object, permanent: bool
) -> None:
    """With nothing left to remove, apply printed "nothing to remove" and, on stderr, "1 cluster
    skipped (listed above)" with nothing listed (QA pass 8); with --permanent it said "nothing was
    moved" of files it would have deleted (QA pass 36)."""
    report = _scanned_pair(tmp_path, capsys, 6)
    # files that cannot be checked now (a pixel limit below them): apply skips before removing
    args = ["apply", str(report), "-j", "1", "--no-cache", "--max-pixels", "100"]
    assert main([*args, *(["--permanent"] if permanent else [])]) == 3
    out, _err = capsys.readouterr()
    verb = "deleted" if permanent else "moved"
    assert f"nothing was {verb}: every cluster was skipped" in out and "skipped cluster 0" in out


def _closed_stdout_run(*args: str) -> subprocess.CompletedProcess[str]:
    """``imgdup ARGS | head`` whose reader has gone: every write to stdout fails (EPIPE)."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [sys.executable, "-m", "imgdup", *args, "--no-cache", "--no-progress", "-j", "1"],
            stdout=write, stderr=subprocess.PIPE, text=True, timeout=120, check=False,
        )  # fmt: skip
    finally:
        os.close(write)


@pytest.mark.parametrize("verb", ["scan", "apply"])
def test_a_removal_whose_output_reader_closed_still_says_what_it_did(tmp_path: Path, verb: str) -> None:
    """``imgdup -d X --remove 1 | head -1``: the files were moved, then the report met a closed
    pipe and the run said only "error: [Errno 32] Broken pipe", exit 1 (documented as "nothing,
    or only what is listed, was done"), without the manifest or how to undo (QA pass 9)."""
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        photo(i).save(data / f"{i}.png")
        shutil.copyfile(data / f"{i}.png", data / f"{i}b.png")
    if verb == "scan":
        done = _closed_stdout_run("-d", str(data), "--remove", "1")
    else:
        plan = tmp_path / "plan.json"
        assert main(["-d", str(data), "--report", str(plan), "--no-cache", "--no-progress", "-q", "-j", "1"]) == 0
        done = _closed_stdout_run("apply", str(plan))
    assert sorted(p.name for p in data.iterdir()) == ["0.png", "1.png", "2.png"]  # the removal was done
    assert done.returncode == 0, done.stderr
    assert "Broken pipe" not in done.stderr and "Traceback" not in done.stderr and "Exception" not in done.stderr
    (manifest,) = data.parent.glob("data.imgdup-quarantine/*/manifest.json")
    assert "3 files moved to the quarantine" in done.stderr and f"imgdup --undo {manifest}" in done.stderr


def test_a_scan_whose_output_reader_closed_ends_quietly(tmp_path: Path) -> None:
    photo(1).save(tmp_path / "a.png")
    shutil.copyfile(tmp_path / "a.png", tmp_path / "b.png")
    done = _closed_stdout_run("-d", str(tmp_path))
    assert (done.returncode, done.stderr) == (0, "")


def test_a_listing_cut_off_by_a_closed_output_is_not_said_to_be_above(tmp_path: Path) -> None:
    """``imgdup -d D | head``: the closing line said "1 file could not be read (listed above)"
    though the listing never reached the reader (QA pass 21); so did apply's skipped clusters."""
    data = tmp_path / "data"
    data.mkdir()
    photo(1).save(data / "a.png")
    shutil.copyfile(data / "a.png", data / "b.png")
    (data / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    done = _closed_stdout_run("-d", str(data))
    assert done.returncode == 3 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "imgdup: 1 file could not be read (not shown: the output was closed by its reader)"
    )
    (data / "bad.png").unlink()
    plan = tmp_path / "plan.json"
    assert main(["-d", str(data), "--report", str(plan), "--no-cache", "--no-progress", "-q", "-j", "1"]) == 0
    done = _closed_stdout_run("apply", str(plan), "--max-pixels", "100")  # the kept file cannot be checked
    assert done.returncode == 3 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "imgdup: 1 cluster skipped (not shown: the output was closed by its reader)"
    )
    assert sorted(p.name for p in data.iterdir()) == ["a.png", "b.png"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--label-conflicts", "remove"], "--label-conflicts needs --labels"),
        (["--cache", ""], "--cache needs a file name"),
    ],
)
def test_an_option_that_would_be_ignored_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    """Each was silently ignored: conflicts 'removed' without labels to conflict, an empty
    --cache name read as the default cache (QA pass 9). (A dry run with --quarantine is the
    removal's command line without -r 1: allowed, and it creates nothing.)"""
    with pytest.raises(SystemExit) as exc:
        cli(capsys, "-d", str(tmp_path), *args)
    assert exc.value.code == 2 and says in capsys.readouterr().err


def test_apply_with_cache_and_no_cache_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A scan refuses the pair; `imgdup apply` took --no-cache and ignored --cache (QA pass 9)."""
    with pytest.raises(SystemExit) as exc:
        cli(capsys, "apply", str(tmp_path / "plan.json"), "--cache", str(tmp_path / "c.db"), "--no-cache")
    assert exc.value.code == 2 and "--cache and --no-cache exclude each other" in capsys.readouterr().err


def _jpeg_with_cut_exif(path: Path, seed: int) -> None:
    """A JPEG whose EXIF block ends inside its first IFD (no next-IFD offset): Pillow decodes the
    picture and warns "Corrupt EXIF data" on every look at the EXIF."""
    ifd = b"II*\x00\x08\x00\x00\x00" + b"\x01\x00" + b"\x12\x01\x03\x00\x01\x00\x00\x00\x01\x00\x00\x00"
    photo(seed).save(path, "JPEG", quality=90, exif=b"Exif\x00\x00" + ifd)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_decoder_warning_never_reaches_stderr_raw(tmp_path: Path, jobs: str) -> None:
    """Pillow's warnings about a file's metadata ("UserWarning: Corrupt EXIF data ...") went to
    stderr as Python warnings, with Pillow's source line, naming no file, several times a file,
    under -q too (which promises only errors); the picture itself decodes and is compared (QA
    pass 13)."""
    for k in range(2):
        _jpeg_with_cut_exif(tmp_path / f"cut-exif-{k}.jpg", 20)
    photo(20).save(tmp_path / "plain.png")
    with pytest.warns(UserWarning, match="Corrupt EXIF"):  # the premise: Pillow warns on these files
        from PIL import Image

        with Image.open(tmp_path / "cut-exif-0.jpg") as img:
            img.getexif()
    run = subprocess.run(
        [sys.executable, "-m", "imgdup", "-d", str(tmp_path), "-q", "--no-cache", "--no-progress", "-j", jobs,
         "--format", "json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0 and run.stderr == "", run.stderr
    (cluster,) = json.loads(run.stdout)["clusters"]
    assert len(cluster["members"]) == 3


def test_a_removal_with_a_report_says_where_its_skipped_clusters_are_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """QA pass 16: ``--remove 1 --report r.json`` ended with "1 cluster skipped (listed in
    r.json)", but the report is written before the removal and lists no skipped cluster: they
    are listed above (stdout), the report lists the unreadable files."""
    import imgdup.actions

    data = tmp_path / "d"
    data.mkdir()
    photo(7).save(data / "a.png")
    photo(7).save(data / "b.jpg", quality=60)
    (data / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not a picture")
    original = imgdup.actions.remove

    def racing(result: imgdup.ScanResult, **kwargs: object) -> imgdup.RemovalResult:
        # the file to remove changes between the scan and its re-check: its cluster is skipped
        return original(result, before_cluster=lambda _c: (data / "b.jpg").write_bytes(b"changed"), **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(imgdup.actions, "remove", racing)
    report = tmp_path / "r.json"
    rc, out, err = cli(capsys, "-d", str(data), "-r", "1", "--quarantine", str(tmp_path / "q"), "--report", str(report))
    assert rc == 3 and "skipped cluster 0" in out
    assert "skipped" not in json.dumps(json.loads(report.read_text(encoding="utf-8"))["clusters"])  # premise
    last = err.strip().splitlines()[-1]
    assert last == f"imgdup: 1 file could not be read (listed in {report}), 1 cluster skipped (listed above)", last


def test_a_removal_counts_files_as_the_report_does_and_names_their_hard_links_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """QA pass 16: the report said "would remove 1 file" and the removal of that very plan said
    "moved to the quarantine: 2 files": it counted the names (a hard link goes with its file)."""
    data = tmp_path / "d"
    data.mkdir()
    photo(8).save(data / "a.png")
    photo(8).save(data / "b.jpg", quality=90)
    os.link(data / "b.jpg", data / "b-link.jpg")
    rc, out, _err = cli(capsys, "-d", str(data))
    assert rc == 0 and "would remove 1 file (" in out  # premise: one file, two names
    rc, out, _err = cli(capsys, "-d", str(data), "-r", "1", "--quarantine", str(tmp_path / "q"))
    assert rc == 0 and not (data / "b.jpg").exists() and not (data / "b-link.jpg").exists()
    assert "removed 1 file (" in out
    (line,) = [x for x in out.splitlines() if x.startswith("moved to the quarantine:")]
    assert line.startswith("moved to the quarantine: 1 file (") and "2 names" in line, line


def test_verbose_says_what_each_stage_did_and_took(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``-v`` ("more log messages") added almost nothing (QA pass 20): a user who asks why a run
    is slow gets, per stage, what it did and its seconds: the walk, the hashing (from the cache
    or decoded), the search, the keep policy's measuring rounds, the decisions."""
    import re

    from .synth import photo as _photo

    _photo(1, (320, 240)).save(tmp_path / "a.png")
    _photo(1, (160, 120)).save(tmp_path / "a-small.png")
    _photo(2).save(tmp_path / "b.png")
    (tmp_path / "c.png").write_bytes(b"not a picture")
    cache = tmp_path / "c.db"
    for run in (1, 2):
        rc = main(["-d", str(tmp_path), "-v", "--no-progress", "-j", "1", "--cache", str(cache)])
        err = capsys.readouterr().err
        assert rc == 3  # the damaged file
        lines = [line for line in err.splitlines() if re.search(r"in \d+\.\d\d s", line)]
        assert any("found 4 files under 1 folder" in line for line in lines), err
        hashed = "4 files: 0 from the cache, 4 decoded (1 failed)" if run == 1 else "4 files: 4 from the cache"
        assert any(hashed in line for line in lines), err
        if run == 1:
            assert any("searched 3 images" in line and "1 cluster" in line for line in lines), err
            assert any(re.search(r"measured \d+ files? in up to \d+ steps? a cluster", line) for line in lines), err
            assert any("decided 1 cluster" in line for line in lines), err
        else:
            assert any("decisions remembered from an earlier run" in line for line in err.splitlines()), err


def test_between_says_the_duplicates_within_a_folder_were_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --between, a duplicate inside the reference folder is left out of the clusters: the
    summary said "0 clusters only inside the reference" above a per-folder line "1 duplicate
    within" for that folder (QA pass 21)."""
    (tmp_path / "train").mkdir()
    (tmp_path / "test").mkdir()
    photo(1).save(tmp_path / "train" / "a.png")
    shutil.copyfile(tmp_path / "train" / "a.png", tmp_path / "train" / "a2.png")
    photo(2).save(tmp_path / "train" / "b.png")
    shutil.copyfile(tmp_path / "train" / "b.png", tmp_path / "test" / "b.png")
    args = ("--reference", str(tmp_path / "train"), "-d", str(tmp_path / "test"))
    _rc, out, _err = cli(capsys, *args, "--between")
    assert "train (reference): 3 images, 1 duplicate within" in out
    assert "only inside the reference" not in out
    # (without --labels no label conflict can be: the line says none, QA pass 34)
    assert "1 cluster spans two or more folders, duplicates within one folder left out by --between" in out
    _rc, out, _err = cli(capsys, *args)  # without --between, the reference-only cluster is counted
    assert "1 cluster spans two or more folders, 1 cluster only inside the reference" in out


def _damaged_tiff(path: Path) -> None:
    """A deflate-compressed TIFF whose strip is damaged: libtiff's decoder fails on it."""
    buf = io.BytesIO()
    photo(4).resize((64, 64)).save(buf, "TIFF", compression="tiff_deflate")
    data = bytearray(buf.getvalue())
    for k in range(20, 60):  # inside the first strip, after the 8-byte header
        data[k] ^= 0x55
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_damaged_tiff_leaves_only_its_own_failure_line_on_stderr(tmp_path: Path, jobs: str) -> None:
    """libtiff prints its complaints to stderr from C ("ZIPDecode: Decoding error at scanline 0,
    invalid bit length repeat."), naming no file, in every process that decodes, with -q too;
    the report's own line for the file ("failed ... decoder error") was already there."""
    _damaged_tiff(tmp_path / "bad.tif")
    photo(1).save(tmp_path / "a.png")
    run = subprocess.run(
        [sys.executable, "-m", "imgdup", "-d", str(tmp_path), "-q", "--no-cache", "-j", jobs],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 3, run.stderr
    assert run.stderr.splitlines() == ["imgdup: 1 file could not be read (listed above)"], run.stderr
    assert any(line.startswith("failed") and "bad.tif" in line for line in run.stdout.splitlines()), run.stdout


def test_a_reader_that_leaves_in_the_middle_of_a_long_output_is_noticed(tmp_path: Path) -> None:
    """``imgdup -d D -r 1 --format json | head -c 100``: the reader left while the JSON (one write
    of ~200 KB) was half in the pipe; the kernel wrote part of it and Python said nothing, so
    the run said "(in the JSON)" of a JSON nobody got and gave no manifest and no undo command
    for the files it had moved (QA pass 33)."""
    data = tmp_path / "data"
    data.mkdir()
    # Long names make even the text report (~100 KB) more than a pipe holds (64 KiB): with short
    # names it was 28 KB, which the run could write whole before the reader left (a race CI lost).
    for k in range(150):
        name = f"{k:03d}-{'x' * 200}"
        photo(k).resize((48, 36)).save(data / f"{name}.png")
        shutil.copyfile(data / f"{name}.png", data / f"{name}-copy.png")
    (data / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    for fmt in ("json", "text"):
        proc = subprocess.Popen(
            [sys.executable, "-m", "imgdup", "-d", str(data), "-r", "1", "--format", fmt, "--no-cache",
             "--no-progress", "-j", "1", "--quarantine", str(tmp_path / f"q-{fmt}")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        assert len(proc.stdout.read(100)) == 100  # the output has begun: more than a pipe holds is on its way
        proc.stdout.close()
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 3, err
        assert "output closed by its reader" in err and "imgdup --undo" in err, err
        assert "(not shown: the output was closed by its reader)" in err.splitlines()[-1]
        assert "Traceback" not in err
        assert imgdup.undo(next((tmp_path / f"q-{fmt}").glob("*/manifest.json"))).restored
