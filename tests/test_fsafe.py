"""File-system safety (issue 8): undo never deletes, deletion acts on the checked inode, locks
cover nested roots, outputs never overwrite what imgdup did not write, cross-device moves.

Every race is staged deterministically: a hook runs a real second process (``mv``, another
imgdup) at the exact moment the race needs, never a timing loop.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import imgdup
import imgdup.actions as actions
import imgdup.fsafe as fsafe
from imgdup.cli import main

from .synth import photo

# Undo in a child process whose every rename or link across the quarantine fails as EXDEV: a
# quarantine on another disk, with the folders' permissions as the test leaves them.
_UNDO_ACROSS_DISKS = textwrap.dedent(
    """
    import errno, json, sys, imgdup, imgdup.fsafe as fsafe
    def exdev(*a, **k):
        raise OSError(errno.EXDEV, "Invalid cross-device link")
    fsafe._rename_between = fsafe._link_between = exdev
    res = imgdup.undo(sys.argv[1])
    print(json.dumps({"restored": res.restored, "problems": res.problems}))
    """
)

REPO = Path(__file__).resolve().parents[1]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_png(seed: int, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    photo(seed).save(path)
    return path


def pair(folder: Path, seed: int, keep: str = "a-keep.png", copy: str = "copy.png") -> None:
    """A kept file and a byte-identical copy: a cluster whose ``copy`` is removed (path rule)."""
    save_png(seed, folder / keep)
    shutil.copyfile(folder / keep, folder / copy)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    pair(root / "g1", 50)
    pair(root / "g2", 51)
    return root


def files_under(root: Path) -> dict[str, str]:
    out = {}
    for folder, _dirs, names in os.walk(root):
        for name in names:
            p = Path(folder) / name
            if p.is_file() and not p.is_symlink():
                out[str(p.relative_to(root))] = digest(p)
    return out


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imgdup", *args, "--no-progress", "--no-cache"],
        capture_output=True, text=True, timeout=120, cwd=REPO, stdin=subprocess.DEVNULL,
    )  # fmt: skip


# --- 1. undo never deletes -----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["folder", "file"])
def test_undo_never_deletes_the_quarantined_file_reached_through_a_symlink(
    data: Path, tmp_path: Path, how: str
) -> None:
    done = imgdup.remove(imgdup.find_duplicates([data], jobs=1), quarantine=tmp_path / "q")
    removed = {r.path: r.quarantine for r in done.removed}
    q_copy = Path(removed[str(data / "g1" / "copy.png")])
    if how == "folder":  # the folder that held the removed file now points at its quarantine folder
        shutil.move(data / "g1" / "a-keep.png", tmp_path / "keep-aside.png")
        shutil.rmtree(data / "g1")
        os.symlink(q_copy.parent, data / "g1")
    else:
        os.symlink(q_copy, data / "g1" / "copy.png")
    kept = digest(q_copy)
    res = imgdup.undo(done.manifest)
    assert q_copy.exists() and digest(q_copy) == kept  # the only copy is still there
    problems = dict(res.problems)
    assert str(data / "g1" / "copy.png") in problems and "symbolic link" in problems[str(data / "g1" / "copy.png")]
    assert str(data / "g1" / "copy.png") not in res.already_in_place
    assert (data / "g2" / "copy.png").exists()  # every other entry is still restored


def test_undo_counts_an_identical_copy_in_place_and_still_deletes_nothing(data: Path, tmp_path: Path) -> None:
    done = imgdup.remove(imgdup.find_duplicates([data], jobs=1), quarantine=tmp_path / "q")
    first = next(r for r in done.removed if r.path.endswith("g1/copy.png"))
    shutil.copyfile(first.quarantine, first.path)  # a different inode, identical bytes
    res = imgdup.undo(done.manifest)
    assert first.path in res.already_in_place and not res.problems
    assert os.path.exists(first.quarantine)  # left where it was: undo never deletes


# --- 2. deletion acts on the checked inode ---------------------------------------------------------


@pytest.mark.parametrize("permanent", [True, False])
def test_file_renamed_over_the_checked_one_just_before_the_unlink_survives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, permanent: bool
) -> None:
    """A real ``mv`` renames another picture over the checked duplicate at the last moment: just
    before imgdup's first system call that acts on that name (link, rename or unlink)."""
    root = tmp_path / "data"
    pair(root, 52, keep="a.png", copy="victim.png")
    intruder = save_png(53, tmp_path / "intruder.png")
    wanted = digest(intruder)
    result = imgdup.find_duplicates([root], jobs=1)
    fired: list[str] = []

    def staged(real: Callable[..., Any]) -> Callable[..., Any]:
        def call(src: Any, *args: Any, **kw: Any) -> Any:
            if not fired and os.path.basename(os.fsdecode(src)) == "victim.png":
                fired.append(real.__name__)
                subprocess.run(["mv", "-f", str(intruder), str(root / "victim.png")], check=True)
            return real(src, *args, **kw)

        return call

    for name in ("link", "rename", "unlink", "replace"):
        monkeypatch.setattr(os, name, staged(getattr(os, name)))
    done = imgdup.remove(result, quarantine=tmp_path / "q", permanent=permanent)
    monkeypatch.undo()
    assert fired  # the renamer really ran
    assert (root / "victim.png").exists() and digest(root / "victim.png") == wanted
    assert (root / "a.png").exists()
    assert not done.removed and len(done.skipped) == 1


def _kill_between_rename_and_unlink(root: Path, name: str) -> None:
    """A real ``--permanent`` deletion of ``root/name``, SIGKILLed right after the file was
    renamed into its private folder (before it is checked and unlinked)."""
    script = textwrap.dedent(
        f"""
        import os, signal
        import imgdup.fsafe as fsafe
        fsafe._verify = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
        st = os.stat({str(root / name)!r})
        with fsafe.anchored({str(root / name)!r}, {str(root)!r}) as (fd, n):
            fsafe.unlink_checked(fd, n, fsafe.Identity.of(st))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, timeout=120)
    assert proc.returncode == -signal.SIGKILL


def test_a_file_left_aside_by_a_killed_permanent_removal_is_reported_and_put_back(tmp_path: Path) -> None:
    """A kill between the rename into the private folder and the unlink leaves the file in a
    hidden ``.imgdup-unlink-*`` folder. The next scan names that folder instead of scanning its
    file as a picture of its own; the next removal puts the file back first; a file whose name
    was taken meanwhile stays where it is. Nothing is deleted."""
    root = tmp_path / "data"
    pair(root, 56, keep="a.png", copy="b.png")
    save_png(57, root / "sub" / "c.png")
    save_png(58, root / "sub" / "d.png")
    c_digest, d_digest = digest(root / "sub" / "c.png"), digest(root / "sub" / "d.png")
    _kill_between_rename_and_unlink(root, "sub/c.png")
    _kill_between_rename_and_unlink(root, "sub/d.png")
    stages = sorted(p for p in (root / "sub").iterdir() if p.name.startswith(".imgdup-unlink-"))
    assert len(stages) == 2 and not (root / "sub" / "c.png").exists()
    save_png(59, root / "sub" / "d.png")  # d.png's name is taken meanwhile

    result = imgdup.find_duplicates([root], jobs=1)
    assert sorted(os.path.basename(r.path) for r in result.records) == ["a.png", "b.png", "d.png"]
    flagged = [s for s in result.skipped if "interrupted --permanent" in s.reason]
    assert sorted(s.path for s in flagged) == [str(p) for p in stages]

    done = imgdup.remove(result, quarantine=tmp_path / "q", permanent=True)
    assert [os.path.basename(r.path) for r in done.removed] == ["b.png"]
    assert digest(root / "sub" / "c.png") == c_digest  # back at its name
    left = [p for stage in (root / "sub").glob(".imgdup-unlink-*") for p in stage.iterdir()]
    assert [digest(p) for p in left] == [d_digest]  # kept aside, not deleted, not over the new d.png
    assert digest(root / "sub" / "d.png") != d_digest


def test_a_duplicate_left_aside_by_a_killed_removal_is_removed_by_the_next_run(tmp_path: Path) -> None:
    """SIGKILLed during ``--remove 1 --permanent`` (600 files, 30 kills at random times: 1 of
    them), a duplicate was left in a private folder; the next run scanned without it, put it back
    only when it removed, and said "removed" with that duplicate still there, for a third run
    to find. A run that removes now puts such files back before it scans."""
    root = tmp_path / "data"
    pair(root, 60, keep="a.png", copy="b.png")
    pair(root / "sub", 61, keep="c.png", copy="d.png")
    shutil.copyfile(root / "a.png", root / "e.png")
    _kill_between_rename_and_unlink(root, "e.png")
    assert not (root / "e.png").exists()
    proc = cli("-d", str(root), "-r", "1", "--permanent", "--quarantine", str(tmp_path / "q"))
    assert proc.returncode == 0, proc.stderr
    assert f"put back {root / 'e.png'}" in proc.stderr
    assert sorted(files_under(root)) == ["a.png", "sub/c.png"]  # e.png put back, scanned, removed
    assert "removed 3 files" in proc.stdout


def test_a_removal_says_which_files_it_put_back_without_having_scanned_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """In Python, a scan and its removal are two calls: a file put back by the removal was not in
    the scan, so its duplicates are not known; the warning says to scan again, and the API's
    put_back_interrupted does it before the scan."""
    root = tmp_path / "data"
    pair(root, 62, keep="a.png", copy="b.png")
    shutil.copyfile(root / "a.png", root / "e.png")
    _kill_between_rename_and_unlink(root, "e.png")
    result = imgdup.find_duplicates([root], jobs=1)
    with caplog.at_level("WARNING", logger="imgdup"):
        done = imgdup.remove(result, quarantine=tmp_path / "q", permanent=True)
    assert [os.path.basename(r.path) for r in done.removed] == ["b.png"]
    assert "1 file put back was not in this scan" in caplog.text and (root / "e.png").exists()

    _kill_between_rename_and_unlink(root, "e.png")
    assert imgdup.put_back_interrupted(str(root)) == (str(root / "e.png"),)
    done = imgdup.remove(imgdup.find_duplicates([root], jobs=1), quarantine=tmp_path / "q", permanent=True)
    assert [os.path.basename(r.path) for r in done.removed] == ["e.png"]
    assert imgdup.put_back_interrupted([root]) == ()


def test_a_file_left_aside_that_cannot_be_put_back_is_reported_with_the_real_reason(tmp_path: Path) -> None:
    """A file left in a private folder by an interrupted --permanent run, in a folder the user may
    not change: the warning said its name "is taken" (it was free); the private folder of another
    user (a killed sudo run) was passed over without a word, run after run, while each scan said
    the next removal would put the file back (QA pass 36). Each now says why it stays."""
    root = tmp_path / "data"
    pair(root, 68, keep="a.png", copy="b.png")
    stage = root / "sub" / ".imgdup-unlink-0123456789ab"
    save_png(69, stage / "lost.png")
    theirs = root / ".imgdup-unlink-00112233aabb"
    if os.geteuid() == 0:  # another user's private folder, as a killed run of theirs leaves it
        save_png(70, theirs / "photo.png")
        theirs.chmod(0o700)
        os.chown(theirs, 65534, 65534)
    (root / "sub").chmod(0o555)
    try:
        proc = subprocess.run(
            _without_file_modes_bypass([sys.executable, "-m", "imgdup", "-d", str(root), "-r", "1", "--no-progress",
                                        "--no-cache", "--quarantine", str(tmp_path / "q")]),
            capture_output=True, text=True, timeout=120, cwd=REPO, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    finally:
        (root / "sub").chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    assert "is taken" not in proc.stderr
    assert (
        f"left at {stage / 'lost.png'} by an interrupted --permanent removal: cannot put it back in {root / 'sub'}"
        " (Permission denied); move it back yourself"
    ) in proc.stderr
    if os.geteuid() == 0:
        assert (
            f"left at {theirs} by an interrupted --permanent removal: cannot open it (Permission denied): it belongs"
            " to uid 65534, whose removal was interrupted; only that user (or root) can put its files back"
        ) in proc.stderr.replace("nobody (uid 65534)", "uid 65534")
    assert (stage / "lost.png").exists() and not (root / "b.png").exists()


def test_an_undo_on_a_folder_that_cannot_be_listed_says_what_needs_it(tmp_path: Path) -> None:
    """A scanned folder one may enter but not list (mode 311): undo (and apply) ended with Python's
    "[Errno 13] Permission denied: '...'" (QA pass 36); it now says that the lock on the scanned
    folder needs to open it, and that nothing was changed."""
    root = tmp_path / "data"
    pair(root, 71)
    done = imgdup.remove(imgdup.find_duplicates([root], jobs=1), quarantine=tmp_path / "q")
    root.chmod(0o311)
    try:
        proc = subprocess.run(
            _without_file_modes_bypass([sys.executable, "-m", "imgdup", "--undo", str(done.manifest)]),
            capture_output=True, text=True, timeout=120, cwd=REPO, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    finally:
        root.chmod(0o755)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"imgdup: error: cannot lock the scanned folder {root}: Permission denied (")
    assert proc.stderr.endswith("; nothing was changed\n") and "Errno" not in proc.stderr
    assert not (root / "copy.png").exists()


# --- 3. locks cover nested roots ----------------------------------------------------------------


@pytest.mark.parametrize("outer_first", [True, False])
def test_two_removals_on_nested_roots_never_both_run(tmp_path: Path, outer_first: bool) -> None:
    data = tmp_path / "data"
    pair(data / "top", 54)
    pair(data / "sub", 55)
    outer, inner = imgdup.find_duplicates([data], jobs=1), imgdup.find_duplicates([data / "sub"], jobs=1)
    first, second = (outer, data / "sub") if outer_first else (inner, data)
    other: list[subprocess.CompletedProcess[str]] = []

    def hook(cluster: imgdup.Cluster) -> None:
        if not other:  # the second removal starts while the first one holds its lock
            other.append(cli("-d", str(second), "-r", "1", "--quarantine", str(tmp_path / "q2")))

    done = imgdup.remove(first, quarantine=tmp_path / "q1", before_cluster=hook)
    assert other[0].returncode == 1 and "another imgdup removal" in other[0].stderr, other[0].stderr
    assert done.removed and not done.skipped
    assert not (tmp_path / "q2").exists() or not list((tmp_path / "q2").rglob("*.png"))


def test_undo_is_refused_while_a_removal_holds_the_same_tree(tmp_path: Path) -> None:
    data = tmp_path / "data"
    pair(data / "sub", 62)
    first = imgdup.remove(imgdup.find_duplicates([data / "sub"], jobs=1), quarantine=tmp_path / "q1")
    pair(data / "top", 63)
    refused: list[str] = []

    def hook(cluster: imgdup.Cluster) -> None:
        with pytest.raises(imgdup.RemovalError, match="another imgdup removal") as exc:
            imgdup.undo(first.manifest)
        refused.append(str(exc.value))

    imgdup.remove(imgdup.find_duplicates([data], jobs=1), quarantine=tmp_path / "q2", before_cluster=hook)
    assert refused and not (data / "sub" / "copy.png").exists()
    assert imgdup.undo(first.manifest).restored == (str(data / "sub" / "copy.png"),)


def test_removals_on_sibling_folders_do_not_block_each_other(tmp_path: Path) -> None:
    data = tmp_path / "data"
    pair(data / "a", 56)
    pair(data / "b", 57)
    other: list[subprocess.CompletedProcess[str]] = []

    def hook(cluster: imgdup.Cluster) -> None:
        if not other:
            other.append(cli("-d", str(data / "b"), "-r", "1", "--quarantine", str(tmp_path / "q2")))

    imgdup.remove(imgdup.find_duplicates([data / "a"], jobs=1), quarantine=tmp_path / "q1", before_cluster=hook)
    assert other[0].returncode == 0, other[0].stderr
    assert sorted(os.listdir(data / "a")) == sorted(os.listdir(data / "b")) == ["a-keep.png"]


# --- 7. outputs never overwrite what imgdup did not write ------------------------------------------


def test_montage_never_overwrites_or_follows_a_symlink(data: Path, tmp_path: Path) -> None:
    sheets = tmp_path / "sheets"
    sheets.mkdir()
    (sheets / "cluster-0000.png").write_bytes(b"my own picture")
    precious = tmp_path / "precious.txt"
    precious.write_text("do not touch")
    os.symlink(precious, sheets / "cluster-0001.png")
    proc = cli("-d", str(data), "--montage", str(sheets))
    assert proc.returncode == 2, proc.stderr
    assert "cluster-0000.png" in proc.stderr and "not written by imgdup" in proc.stderr
    assert (sheets / "cluster-0000.png").read_bytes() == b"my own picture"
    assert precious.read_text() == "do not touch"
    (sheets / "cluster-0000.png").unlink()
    proc = cli("-d", str(data), "--montage", str(sheets))
    assert proc.returncode == 2 and "cluster-0001.png" in proc.stderr and "symbolic link" in proc.stderr
    assert precious.read_text() == "do not touch"


def test_montages_and_reports_replace_only_their_own_earlier_output(data: Path, tmp_path: Path) -> None:
    sheets, report = tmp_path / "sheets", tmp_path / "r.json"
    for _ in range(2):  # a second run replaces the first run's files (they carry imgdup's mark)
        proc = cli("-d", str(data), "--montage", str(sheets), "--report", str(report))
        assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(sheets)) == ["cluster-0000.png", "cluster-0001.png"]
    assert json.loads(report.read_text())["schema"] == "imgdup.report/1"
    mine = tmp_path / "notes.csv"
    mine.write_text("my,own,table\n")
    proc = cli("-d", str(data), "--report", str(mine))
    assert proc.returncode == 2 and "not written by imgdup" in proc.stderr
    assert mine.read_text() == "my,own,table\n"
    os.symlink(tmp_path / "elsewhere.html", tmp_path / "link.html")
    proc = cli("-d", str(data), "--report", str(tmp_path / "link.html"))
    assert proc.returncode == 2 and not (tmp_path / "elsewhere.html").exists()


def test_a_second_run_leaves_no_sheet_of_a_cluster_it_no_longer_has(data: Path, tmp_path: Path) -> None:
    """Sheets of an earlier run's clusters stayed beside the new ones, labelled REMOVE for files
    long gone and looking like current output (QA pass 5); other files are left alone."""
    sheets = tmp_path / "sheets"
    assert cli("-d", str(data), "--montage", str(sheets)).returncode == 0
    assert sorted(os.listdir(sheets)) == ["cluster-0000.png", "cluster-0001.png"]
    shutil.copyfile(sheets / "cluster-0001.png", sheets / "cluster-0007.png")  # as a run with more clusters left
    (sheets / "notes.txt").write_text("mine")
    assert cli("-d", str(data), "--montage", str(sheets)).returncode == 0
    assert sorted(os.listdir(sheets)) == ["cluster-0000.png", "cluster-0001.png", "notes.txt"]


def test_montage_folder_inside_a_scanned_root_is_refused(data: Path) -> None:
    proc = cli("-d", str(data), "--montage", str(data / "sheets"))
    assert proc.returncode == 2 and "inside the scanned folder" in proc.stderr
    assert not (data / "sheets").exists()


def test_an_html_report_inside_a_scanned_root_is_refused(data: Path, tmp_path: Path) -> None:
    """Its thumbnails (``FILE_files/*.jpg``) are images: the next scan clustered them with the
    photos (15 of them marked remove, thumbnails of thumbnails piling up on later runs). Refused
    before the scan as a montage folder there is; a JSON or CSV report there stays allowed, and
    the library refuses too."""
    proc = cli("-d", str(data), "--report", str(data / "review.html"))
    assert proc.returncode == 2 and "inside the scanned folder" in proc.stderr and "review_files" in proc.stderr
    assert not (data / "review.html").exists() and not (data / "review_files").exists()
    assert cli("-d", str(data), "--report", str(data / "r.json"), "--report", str(data / "r.csv")).returncode == 0
    result = imgdup.find_duplicates([data], jobs=1)
    with pytest.raises(imgdup.OutputError, match="inside the scanned folder"):
        imgdup.write_report(result, data / "g1" / "review.html")
    assert imgdup.write_report(result, tmp_path / "review.html")


@pytest.fixture
def no_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line's scan, replaced by a failure: what a test runs must stop before it."""
    import imgdup.cli as cli_mod

    def scan(*_a: object, **_k: object) -> None:
        raise AssertionError("the scan ran before the output location was checked")

    monkeypatch.setattr(cli_mod, "find_duplicates", scan)


@pytest.mark.usefixtures("no_scan")
def test_report_into_a_missing_folder_fails_before_the_scan(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "missing" / "r.json"
    assert main(["-d", str(data), "--no-cache", "--report", str(target)]) == 2
    err = capsys.readouterr().err
    assert str(target) in err and ".tmp" not in err


@pytest.mark.usefixtures("no_scan")
def test_montage_folder_that_cannot_be_created_fails_before_the_scan(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A montage folder under a file (or a missing drive) failed only after the whole scan."""
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    target = tmp_path / "notes.txt" / "sheets" / "run1"
    assert main(["-d", str(data), "--no-cache", "--montage", str(target)]) == 2
    err = capsys.readouterr().err
    assert str(target) in err and "notes.txt is not a folder" in err
    assert (tmp_path / "notes.txt").read_text() == "a file, not a folder"


@pytest.mark.usefixtures("no_scan")
def test_an_html_report_whose_thumbnail_folder_is_a_link_into_a_root_or_a_file_fails_before_the_scan(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """QA pass 16: ``review_files`` a symbolic link to a scanned folder passed the check (only
    the folder above it was resolved): the thumbnails were written into the dataset, and the next
    scan found 15 duplicates among them. ``review_files`` a file failed only after the whole scan
    ("[Errno 17] File exists"), and no report was written."""
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(data / "g1", out / "review_files")
    before = files_under(data)
    assert main(["-d", str(data), "--no-cache", "--report", str(out / "review.html")]) == 2
    assert "inside the scanned folder" in capsys.readouterr().err
    with pytest.raises(imgdup.OutputError, match="inside the scanned folder"):
        imgdup.write_report(imgdup.find_duplicates([data], jobs=1), out / "review.html")
    assert files_under(data) == before
    (out / "review_files").unlink()
    (out / "review_files").write_text("mine")
    assert main(["-d", str(data), "--no-cache", "--report", str(out / "review.html")]) == 2
    err = capsys.readouterr().err
    assert "review_files" in err and "not a folder" in err
    assert (out / "review_files").read_text() == "mine"


@pytest.mark.parametrize("output", ["thumbnails", "montages"])
def test_a_thumbnail_or_montage_folder_that_is_not_writable_fails_before_the_scan(
    data: Path, tmp_path: Path, output: str
) -> None:
    """An HTML report's ``r_files/``, or an existing ``--montage`` folder, the user cannot write (an
    earlier ``sudo imgdup`` made it) was found only after the whole scan: exit 1, nothing on
    stdout, not even the text report, and ``-r 1`` removed nothing (QA pass 36). A usage error
    before the scan, as for a report's own folder that is not writable."""
    out = tmp_path / "out"
    folder = out / ("r_files" if output == "thumbnails" else "m")
    folder.mkdir(parents=True)
    option = ["--report", str(out / "r.html")] if output == "thumbnails" else ["--montage", str(folder)]
    before = files_under(data)
    cmd = [sys.executable, "-m", "imgdup", "-d", str(data), *option, "-r", "1", "--no-cache", "--no-progress", "-v"]
    folder.chmod(0o555)
    try:
        proc = subprocess.run(_without_file_modes_bypass(cmd), cwd=REPO, capture_output=True, text=True, timeout=120)
    finally:
        folder.chmod(0o755)
    assert proc.returncode == 2, proc.stderr
    assert f"{folder}" in proc.stderr and "not writable" in proc.stderr
    assert "hashed" not in proc.stderr  # -v: no scan ran
    assert files_under(data) == before and not list(folder.iterdir())


def test_several_reports_one_per_format(data: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "r.json", tmp_path / "r.csv"
    assert main(["-d", str(data), "--no-cache", "--no-progress", "--report", str(a), "--report", str(b)]) == 0
    assert json.loads(a.read_text())["schema"] == "imgdup.report/1"
    assert b.read_text().startswith("cluster,action,")
    with pytest.raises(SystemExit) as exc:  # a usage error: one file per format
        main(["-d", str(data), "--no-cache", "--report", str(a), "--report", str(tmp_path / "s.json")])
    assert exc.value.code == 2


# --- 9. undo restores every entry it can ------------------------------------------------------------


def test_undo_goes_on_past_a_dangling_symlink_at_an_original_path(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    done = imgdup.remove(imgdup.find_duplicates([data], jobs=1), quarantine=tmp_path / "q")
    os.symlink(tmp_path / "nowhere", data / "g1" / "copy.png")
    assert main(["--undo", str(done.manifest)]) == 3
    out = capsys.readouterr()
    assert "restored 1 file," in out.out and "symbolic link" in out.err
    assert (data / "g2" / "copy.png").is_file()
    assert len(list((tmp_path / "q").rglob("copy.png"))) == 1  # the other one waits in the quarantine


def test_undo_finds_a_moved_quarantine_from_the_manifest_location(data: Path, tmp_path: Path) -> None:
    before = files_under(data)
    done = imgdup.remove(imgdup.find_duplicates([data], jobs=1), quarantine=tmp_path / "q")
    shutil.move(tmp_path / "q", tmp_path / "moved")
    manifest = tmp_path / "moved" / Path(done.manifest).relative_to(tmp_path / "q")
    res = imgdup.undo(manifest)
    assert not res.problems and len(res.restored) == 2
    assert files_under(data) == before


def test_undo_of_an_older_manifest_without_relative_paths_after_a_move(data: Path, tmp_path: Path) -> None:
    before = files_under(data)
    done = imgdup.remove(imgdup.find_duplicates([data], jobs=1), quarantine=tmp_path / "q")
    doc = json.loads(Path(done.manifest).read_text())
    for item in doc["entries"]:
        del item["stored"]  # as written before entries were relative to the manifest's folder
    Path(done.manifest).write_text(json.dumps(doc))
    shutil.move(tmp_path / "q", tmp_path / "moved")
    res = imgdup.undo(tmp_path / "moved" / Path(done.manifest).relative_to(tmp_path / "q"))
    assert not res.problems and files_under(data) == before


def test_undo_refuses_a_copy_of_a_manifest_and_removes_only_the_folders_it_emptied(data: Path, tmp_path: Path) -> None:
    """A manifest copied elsewhere (the README said such a copy is refused; it was not) found
    none of the files, reported each missing, and tidied up by removing every empty folder under
    ``files/`` beside it: copied beside a dataset's own ``files/`` folder, its empty class
    folders were deleted. A copy is refused while its run folder is there; without it (the
    quarantine deleted) undo removes only the folders it emptied."""
    done = imgdup.remove(imgdup.find_duplicates([data], jobs=1), quarantine=tmp_path / "q")
    run = Path(done.manifest).parent  # type: ignore[arg-type]
    own = tmp_path / "other"
    (own / "files" / "empty_class").mkdir(parents=True)
    shutil.copy(done.manifest, own / "manifest.json")  # type: ignore[arg-type]
    with pytest.raises(imgdup.ManifestError, match="is a copy of"):
        imgdup.undo(own / "manifest.json")
    moved = run.rename(tmp_path / "moved")
    res = imgdup.undo(own / "manifest.json")
    assert not res.restored and len(res.problems) == 2  # missing from the quarantine
    assert (own / "files" / "empty_class").is_dir()
    (moved / "files" / "ours_empty").mkdir()  # an empty folder that undo did not empty stays too
    res = imgdup.undo(moved / "manifest.json")
    assert len(res.restored) == 2
    assert sorted(p.name for p in (moved / "files").iterdir()) == ["ours_empty"]  # the emptied ones went


def test_undo_through_a_symbolic_link_to_the_manifest_restores(data: Path, tmp_path: Path) -> None:
    """A script's ``last-removal.json -> Q/RUN/manifest.json`` was refused as "a copy of" the very
    manifest it points at: undo took the folder of the link, not of its target (QA pass 35)."""
    before = files_under(data)
    done = imgdup.remove(imgdup.find_duplicates([data], jobs=1), quarantine=tmp_path / "q")
    link = tmp_path / "last-removal.json"
    link.symlink_to(done.manifest or "")
    res = imgdup.undo(link)
    assert not res.problems and len(res.restored) == 2 and files_under(data) == before


# --- 11. cross-device quarantine ------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(path: Path) -> Iterator[Path]:
    path.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(path)]).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root and mount rights)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def stage_exdev(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every rename and link between two folders fails as it would across file systems."""

    def exdev(*_a: object, **_k: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(fsafe, "_rename_between", exdev)
    monkeypatch.setattr(fsafe, "_link_between", exdev)


def metadata(path: Path) -> tuple[int, int, int, int, int]:
    st = path.lstat()
    return (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns, st.st_size)


@pytest.mark.parametrize("how", ["tmpfs", "staged"])
def test_cross_device_move_keeps_metadata_and_hard_links_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    with contextlib.ExitStack() as stack:
        if how == "tmpfs":
            root = stack.enter_context(tmpfs(tmp_path / "mnt")) / "data"
        else:
            stage_exdev(monkeypatch)
            root = tmp_path / "data"
        pair(root, 58)
        copy = root / "copy.png"
        os.link(copy, root / "copy-link.png")
        os.chmod(copy, 0o640)
        os.utime(copy, ns=(1_600_000_000_000_000_000, 1_600_000_000_123_456_789))
        if os.geteuid() == 0:
            os.chown(copy, 1234, 2345)
        meta = metadata(copy)
        before = files_under(root)
        done = imgdup.remove(imgdup.find_duplicates([root], jobs=1), quarantine=tmp_path / "q")
        assert sorted(os.listdir(root)) == ["a-keep.png"] and not done.skipped
        moved = {Path(r.path).name: Path(r.quarantine or "") for r in done.removed}
        assert metadata(moved["copy.png"]) == meta
        assert moved["copy.png"].stat().st_ino == moved["copy-link.png"].stat().st_ino  # still one file
        assert not [p for p in (tmp_path / "q").rglob("*") if "imgdup-" in p.name]  # no temporary left
        res = imgdup.undo(done.manifest)
        assert not res.problems and files_under(root) == before
        assert metadata(copy) == meta
        assert copy.stat().st_ino == (root / "copy-link.png").stat().st_ino
        assert not [p for p in root.rglob("*") if "imgdup-" in p.name]


def test_sigkill_in_the_middle_of_a_cross_device_copy_loses_nothing_and_undo_cleans_up(tmp_path: Path) -> None:
    root = tmp_path / "data"
    pair(root, 59)
    before = files_under(root)
    script = textwrap.dedent(
        f"""
        import errno, os, signal, imgdup, imgdup.fsafe as fsafe
        def exdev(*a, **k):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        fsafe._rename_between = fsafe._link_between = exdev
        real = fsafe._copy_data
        def half(src, dst, *a, **k):
            os.write(dst, os.read(src, 1000))
            os.fsync(dst)
            os.kill(os.getpid(), signal.SIGKILL)
        fsafe._copy_data = half
        imgdup.remove(imgdup.find_duplicates([{str(root)!r}], jobs=1), quarantine={str(tmp_path / "q")!r})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert files_under(root) == before  # the original is unlinked only after a complete, durable copy
    assert [p for p in (tmp_path / "q").rglob("*") if "imgdup-" in p.name]  # the partial copy
    (manifest,) = (tmp_path / "q").glob("*/manifest.json")
    res = imgdup.undo(manifest)
    assert not res.problems and res.already_in_place == (str(root / "copy.png"),)
    assert not [p for p in (tmp_path / "q").rglob("*") if "imgdup-" in p.name]
    assert files_under(root) == before


def test_sigkill_in_the_middle_of_a_cross_device_restore_then_undo_again(tmp_path: Path) -> None:
    root = tmp_path / "data"
    pair(root, 61)
    before = files_under(root)
    done = imgdup.remove(imgdup.find_duplicates([root], jobs=1), quarantine=tmp_path / "q")
    script = textwrap.dedent(
        f"""
        import errno, os, signal, imgdup, imgdup.fsafe as fsafe
        def exdev(*a, **k):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        fsafe._rename_between = fsafe._link_between = exdev
        def half(src, dst, *a, **k):
            os.write(dst, os.read(src, 1000))
            os.kill(os.getpid(), signal.SIGKILL)
        fsafe._copy_data = half
        imgdup.undo({done.manifest!r})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert [p.name for p in root.iterdir() if "imgdup-partial" in p.name]  # the cut-short copy
    assert not (root / "copy.png").exists()  # never a partial file under the real name
    res = imgdup.undo(done.manifest)
    assert res.restored == (str(root / "copy.png"),) and not res.problems
    assert files_under(root) == before and sorted(os.listdir(root)) == ["a-keep.png", "copy.png"]


# --- 12. a symlinked default quarantine ------------------------------------------------------------


def test_symlinked_default_quarantine_pointing_into_the_root_is_refused(data: Path, tmp_path: Path) -> None:
    before = files_under(data)
    (data / "inside").mkdir()
    os.symlink(data / "inside", tmp_path / "data.imgdup-quarantine")
    with pytest.raises(imgdup.RemovalError, match="outside the scanned folder"):
        imgdup.remove(imgdup.find_duplicates([data], jobs=1))
    assert files_under(data) == before


def test_a_quarantine_that_holds_the_scanned_folder_is_refused_for_that_reason(data: Path, tmp_path: Path) -> None:
    """``--quarantine`` given the scanned folder's parent was refused as "must be outside the
    scanned folder", which it was: it holds it (QA pass 33)."""
    before = files_under(data)
    for where in (tmp_path, tmp_path.parent):
        with pytest.raises(imgdup.RemovalError) as exc:
            imgdup.remove(imgdup.find_duplicates([data], jobs=1), quarantine=where)
        assert str(exc.value) == (
            f"the quarantine {os.path.realpath(where)} holds the scanned folder {os.path.realpath(data)}:"
            " give a folder outside it"
        )
    with pytest.raises(imgdup.RemovalError, match="must be outside the scanned folder"):
        imgdup.remove(imgdup.find_duplicates([data], jobs=1), quarantine=data / "q")
    assert files_under(data) == before


@pytest.mark.parametrize("permanent", [True, False])
def test_ctrl_c_in_the_middle_of_a_file_lets_that_file_finish(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, permanent: bool
) -> None:
    """SIGINT arrives between the rename and the check of the first file: that file's move (or
    deletion) completes, no private folder is left behind, and the interruption says so."""
    real = fsafe._verify

    def interrupted(*a: Any) -> str | None:
        os.kill(os.getpid(), signal.SIGINT)
        return real(*a)

    monkeypatch.setattr(fsafe, "_verify", interrupted)
    # Whatever handler was there is put back (a background job starts with SIGINT ignored).
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt) as exc:
        imgdup.remove(imgdup.find_duplicates([data], jobs=1), quarantine=tmp_path / "q", permanent=permanent)
    done = exc.value.done  # type: ignore[attr-defined]
    assert [Path(r.path).relative_to(data).as_posix() for r in done.removed] == ["g1/copy.png"]
    assert not (data / "g1" / "copy.png").exists() and (data / "g2" / "copy.png").exists()
    assert not [p for p in data.rglob("*") if "imgdup-" in p.name]
    assert signal.getsignal(signal.SIGINT) is handler


# --- small traps ------------------------------------------------------------------------------------


def test_an_empty_root_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    pair(tmp_path, 60)
    assert main(["-d", "", "-r", "1", "--no-cache"]) == 2
    assert sorted(os.listdir(tmp_path)) == ["a-keep.png", "copy.png"]
    with pytest.raises(imgdup.UsageError, match="empty"):
        imgdup.find_duplicates([""])


@pytest.mark.parametrize("no_cache", [True, False])
def test_ctrl_c_during_removal_says_what_was_done_and_how_to_undo(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], no_cache: bool
) -> None:
    real = actions._check_unchanged
    calls: list[str] = []

    def interrupt_second_cluster(path: str, *a: Any) -> str | None:
        calls.append(path)
        if "g2" in path:
            raise KeyboardInterrupt
        return real(path, *a)

    monkeypatch.setattr(actions, "_check_unchanged", interrupt_second_cluster)
    cache = ["--no-cache"] if no_cache else ["--cache", str(tmp_path / "c.sqlite3")]
    rc = main(["-d", str(data), "-r", "1", "--no-progress", "--quarantine", str(tmp_path / "q"), *cache])
    err = capsys.readouterr().err
    assert rc == 130
    (manifest,) = (tmp_path / "q").glob("*/manifest.json")
    assert "1 file moved to the quarantine" in err and f"imgdup --undo {manifest}" in err
    assert "cache" not in err
    assert not (data / "g1" / "copy.png").exists() and (data / "g2" / "copy.png").exists()


def test_a_quarantine_inside_a_later_scanned_folder_is_not_scanned(tmp_path: Path) -> None:
    """``-d data/train -d data/test --remove 1`` quarantines beside the first root, inside
    ``data``; a later ``-d data`` scanned the quarantined files as pictures, kept them by path
    order and removed the real copies: once the quarantine was emptied, no copy was left (QA pass
    8). A quarantine folder (its name, or a run folder holding an imgdup manifest) is skipped,
    and so are temporary copies an interrupted cross-disk move left."""
    data = tmp_path / "data"
    pair(data / "train", 60, keep="t.png", copy="u.png")
    save_png(61, data / "test" / "x.png")
    first = imgdup.find_duplicates([data / "train", data / "test"], jobs=1, keep="path")
    imgdup.remove(first)
    quarantine = data / "test.imgdup-quarantine"
    assert any(quarantine.rglob("u.png"))
    custom = data / "mine"  # a quarantine of the user's choosing, inside a folder scanned later
    pair(tmp_path / "other", 62, keep="k.png", copy="c.png")
    imgdup.remove(imgdup.find_duplicates([tmp_path / "other"], jobs=1, keep="path"), quarantine=custom)
    shutil.copyfile(data / "test" / "x.png", data / "test" / ".x.png.imgdup-partial-0123abcd")
    later = imgdup.find_duplicates([data], jobs=1)
    assert sorted(os.path.basename(r.path) for r in later.records) == ["t.png", "x.png"]
    skipped = {s.path: s.reason for s in later.skipped}
    assert "quarantine" in skipped[str(quarantine)]
    assert any("quarantine" in reason for path, reason in skipped.items() if path.startswith(str(custom)))
    assert "temporary copy" in skipped[str(data / "test" / ".x.png.imgdup-partial-0123abcd")]
    assert later.clusters == ()


def test_sigterm_during_removal_stops_like_ctrl_c_and_says_how_to_undo(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """SIGTERM (a batch system's time limit, a pre-emption) ended a removal silently: exit 143,
    no manifest path, no undo command, with files already moved (QA pass 8). The command takes
    it as Ctrl-C: it stops between two files and says what was done."""
    real = actions._check_unchanged

    def terminate_at_second_cluster(path: str, *a: Any) -> str | None:
        if "g2" in path:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(path, *a)

    def fallback(_signum: int, _frame: object) -> None:  # what the old code met: no handler of its own
        raise SystemExit(143)

    monkeypatch.setattr(actions, "_check_unchanged", terminate_at_second_cluster)
    previous = signal.signal(signal.SIGTERM, fallback)
    try:
        rc = main(["-d", str(data), "-r", "1", "--no-progress", "--no-cache", "--quarantine", str(tmp_path / "q")])
    finally:
        assert signal.getsignal(signal.SIGTERM) is fallback  # the command put the handler back
        signal.signal(signal.SIGTERM, previous)
    err = capsys.readouterr().err
    (manifest,) = (tmp_path / "q").glob("*/manifest.json")
    assert rc == 130 and f"imgdup --undo {manifest}" in err
    assert not (data / "g1" / "copy.png").exists() and (data / "g2" / "copy.png").exists()


def test_a_long_name_in_a_multibyte_script_moves_across_disks_and_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The temporary copy's name took the first 100 characters of the name: 80 CJK characters
    are 240 bytes, and the temporary name 265, past NAME_MAX (255), so such a file could not be
    moved to a quarantine on another disk ("File name too long"), nor back (QA pass 23)."""
    stage_exdev(monkeypatch)
    root = tmp_path / "data"
    long_name = "写真" * 40 + ".png"  # 244 bytes: a valid name
    pair(root, 62, copy=long_name)
    before = files_under(root)
    done = imgdup.remove(imgdup.find_duplicates([root], jobs=1), quarantine=tmp_path / "q")
    assert not done.skipped and [Path(r.path).name for r in done.removed] == [long_name]
    assert sorted(os.listdir(root)) == ["a-keep.png"]
    res = imgdup.undo(done.manifest)
    assert not res.problems and res.restored == (str(root / long_name),)
    assert files_under(root) == before


def test_a_cross_device_move_from_a_folder_that_is_not_writable_leaves_no_copy_in_the_quarantine(
    tmp_path: Path,
) -> None:
    """The copy was made, then deleting the original failed (its folder not writable): the
    cluster was skipped, rightly, but its copy stayed in the quarantine, listed in no manifest
    (a dataset on a read-only folder filled the quarantine's disk and freed nothing; QA pass 23)."""
    root = tmp_path / "data"
    pair(root / "locked", 63)
    before = files_under(root)
    quarantine = tmp_path / "q"
    script = textwrap.dedent(
        f"""
        import errno, json, imgdup, imgdup.fsafe as fsafe
        def exdev(*a, **k):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        fsafe._rename_between = fsafe._link_between = exdev
        done = imgdup.remove(imgdup.find_duplicates([{str(root)!r}], jobs=1), quarantine={str(quarantine)!r})
        print(json.dumps({{"removed": len(done.removed), "skipped": [s.reason for s in done.skipped]}}))
        """
    )
    cmd = [sys.executable, "-c", script]
    if os.geteuid() == 0:  # root writes anywhere: run without the capabilities that bypass file modes
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: cannot make a folder unwritable")
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *cmd]
    (root / "locked").chmod(0o555)
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    finally:
        (root / "locked").chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    done = json.loads(proc.stdout)
    assert done["removed"] == 0 and len(done["skipped"]) == 1 and "ermission denied" in done["skipped"][0]
    assert files_under(root) == before
    assert not [p for p in quarantine.rglob("*") if p.is_file()]  # no copy, and no manifest of nothing


@pytest.mark.parametrize("how", ["same disk", "another disk", "permanent"])
def test_a_file_whose_other_name_is_in_a_folder_that_is_not_writable_is_not_half_moved(
    tmp_path: Path, how: str
) -> None:
    """A duplicate with a second name (hard link) in a read-only folder: its first name moved, the
    second could not, and the run said "moved to the quarantine: 1 file (743 B)" of a file still in
    the dataset under its other name; across disks the quarantine kept a copy, and undo brought the
    name back as a file of its own, the link broken (QA pass 36). The names of a file move together
    or not at all: the name moved is put back, linked to the other, and the cluster is skipped."""
    root = tmp_path / "data"
    pair(root, 64)
    (root / "locked").mkdir()
    os.link(root / "copy.png", root / "locked" / "copy-link.png")
    before = files_under(root)
    quarantine = tmp_path / "q"
    script = textwrap.dedent(
        f"""
        import errno, json, imgdup, imgdup.fsafe as fsafe
        def exdev(*a, **k):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        if {how == "another disk"!r}:
            fsafe._rename_between = fsafe._link_between = exdev
        done = imgdup.remove(
            imgdup.find_duplicates([{str(root)!r}], jobs=1), quarantine={str(quarantine)!r},
            permanent={how == "permanent"!r},
        )
        print(json.dumps({{"removed": [r.path for r in done.removed], "freed": done.bytes_freed,
                           "skipped": [[s.reason, s.moved] for s in done.skipped]}}))
        """
    )
    (root / "locked").chmod(0o555)
    try:
        proc = subprocess.run(
            _without_file_modes_bypass([sys.executable, "-c", script]), cwd=REPO, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
    finally:
        (root / "locked").chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    done = json.loads(proc.stdout)
    assert done["removed"] == [] and done["freed"] == 0
    ((reason, moved),) = done["skipped"]
    assert moved == 0 and "copy-link.png: Permission denied" in reason and "put back" in reason, reason
    assert files_under(root) == before
    assert (root / "copy.png").stat().st_ino == (root / "locked" / "copy-link.png").stat().st_ino
    assert not [p for p in quarantine.rglob("*") if p.is_file()]  # no copy, and no manifest of nothing


def test_undo_run_again_after_a_partial_undo_gives_the_second_name_back_linked_to_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two names of one file, moved to a quarantine on another disk; undo while the second name's
    folder was read-only restored the first (a copy, the quarantine's other name of it left), and
    the undo run again once the folder was writable gave the second name back as a file of its own:
    two files where there was one (QA pass 36). It is linked to the first, already in place."""
    root = tmp_path / "data"
    pair(root, 66)
    (root / "x").mkdir()
    (root / "y").mkdir()
    shutil.copyfile(root / "a-keep.png", root / "x" / "z.png")
    os.link(root / "x" / "z.png", root / "y" / "z.png")
    (root / "copy.png").unlink()
    before = files_under(root)
    stage_exdev(monkeypatch)
    done = imgdup.remove(imgdup.find_duplicates([root], jobs=1), quarantine=tmp_path / "q")
    assert len(done.removed) == 2 and not (root / "x" / "z.png").exists()
    script = _UNDO_ACROSS_DISKS
    (root / "y").chmod(0o555)
    try:
        proc = subprocess.run(
            _without_file_modes_bypass([sys.executable, "-c", script, str(done.manifest)]),
            cwd=REPO, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        (root / "y").chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    first = json.loads(proc.stdout)
    assert first["restored"] == [str(root / "x" / "z.png")] and len(first["problems"]) == 1, first
    res = imgdup.undo(done.manifest)
    assert res.restored == (str(root / "y" / "z.png"),) and res.already_in_place == (str(root / "x" / "z.png"),)
    assert not res.problems and files_under(root) == before
    assert (root / "x" / "z.png").stat().st_ino == (root / "y" / "z.png").stat().st_ino


def test_ctrl_c_in_the_middle_of_a_restore_lets_that_file_finish_and_undo_again_completes(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """SIGINT arrives between the link that gives the file its name back and the unlink of its
    quarantined name: undo stopped there, both names stayed, and every later undo reported
    "the original path is another name (hard link) of the quarantined copy; both left as they
    are", for good (QA pass 23). The file being restored now finishes first, as in a removal."""
    before = files_under(data)
    done = imgdup.remove(imgdup.find_duplicates([data], jobs=1), quarantine=tmp_path / "q")
    assert len(done.removed) == 2
    real = fsafe._link_between

    def interrupted(*a: Any, **k: Any) -> None:
        real(*a, **k)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(fsafe, "_link_between", interrupted)
    assert main(["--undo", str(done.manifest)]) == 130
    assert f"to restore the rest: imgdup --undo {done.manifest}" in capsys.readouterr().err
    monkeypatch.setattr(fsafe, "_link_between", real)
    res = imgdup.undo(done.manifest)
    assert not res.problems, res.problems
    assert files_under(data) == before
    assert not [p for p in (tmp_path / "q").rglob("*") if p.is_file() and p.name != "manifest.json"]


def test_undo_cut_by_a_kill_between_link_and_unlink_is_finished_by_the_next_undo(data: Path, tmp_path: Path) -> None:
    """SIGKILL (which no handler holds back) between the link that gives a file its name back and
    the unlink of its quarantined name leaves both names of one file: every later undo reported
    "the original path is another name (hard link) of the quarantined copy; both left as they
    are", for good (QA pass 23 left it). The next undo finishes the restore: the same file, with
    the manifest's content, so dropping the quarantine's name loses nothing (the file stays at
    its name, all it loses is its second one; two earlier tests had pinned "both left", taking
    the state for one no run of imgdup leaves)."""
    before = files_under(data)
    done = imgdup.remove(imgdup.find_duplicates([data], jobs=1), quarantine=tmp_path / "q")
    assert len(done.removed) == 2
    cut, other = done.removed
    os.link(cut.quarantine or "", cut.path)  # the state the kill left: both names, one inode
    res = imgdup.undo(done.manifest)
    assert not res.problems, res.problems
    assert sorted(res.restored) == sorted([cut.path, other.path])
    assert files_under(data) == before
    assert os.stat(cut.path).st_nlink == 1
    assert not [p for p in (tmp_path / "q").rglob("*") if p.is_file() and p.name != "manifest.json"]


def test_undo_leaves_both_names_of_a_file_changed_since_it_was_quarantined(data: Path, tmp_path: Path) -> None:
    """The same two names of one file, but its content is no longer the manifest's: not an
    interrupted restore of this entry, so nothing is unlinked and undo says why."""
    done = imgdup.remove(imgdup.find_duplicates([data], jobs=1), quarantine=tmp_path / "q")
    cut = done.removed[0]
    os.link(cut.quarantine or "", cut.path)
    with open(cut.path, "ab") as fh:
        fh.write(b"changed")
    res = imgdup.undo(done.manifest)
    assert [why for path, why in res.problems if path == cut.path] == [
        f"the original path is another name (hard link) of the quarantined copy {cut.quarantine}, which was "
        "modified since; both left as they are"
    ]
    assert os.stat(cut.path).st_nlink == 2


def test_undo_of_a_manifest_whose_paths_are_its_quarantined_files_deletes_nothing(data: Path, tmp_path: Path) -> None:
    """A manifest is data: one edited so that each entry's original path is its own quarantined
    file (its roots the run folder) made the original path and the quarantined name one name, not
    two, and finishing an interrupted restore by unlinking the quarantined name deleted each
    quarantined file for good (QA pass 28). Nothing is unlinked, and undo says why."""
    done = imgdup.remove(imgdup.find_duplicates([data], jobs=1), quarantine=tmp_path / "q")
    assert len(done.removed) == 2
    manifest = Path(done.manifest or "")
    doc = json.loads(manifest.read_text())
    doc["roots"] = [str(manifest.parent)]
    for item in doc["entries"]:
        item["path"] = item["quarantine"]
    quarantined = {r.quarantine: digest(Path(r.quarantine or "")) for r in done.removed}
    # Its quarantined names no longer match its paths under its roots: refused at once (QA pass
    # 33); a manifest from before "stored" (absolute quarantine paths only) reaches the inode check.
    for stored, why in (True, "does not match its path"), (False, "itself, not another name of it"):
        entries = doc["entries"] if stored else [{k: v for k, v in e.items() if k != "stored"} for e in doc["entries"]]
        manifest.write_text(json.dumps({**doc, "entries": entries}))
        res = imgdup.undo(manifest)
        assert {q: digest(Path(q or "")) for q in quarantined if os.path.exists(q or "")} == quarantined
        assert not res.restored and len(res.problems) == 2
        assert all(why in said for _p, said in res.problems), res.problems


def test_undo_cut_between_link_and_unlink_with_the_quarantine_read_only_leaves_the_file_at_its_name(
    data: Path, tmp_path: Path
) -> None:
    """A restore a kill cut after its link leaves the file at its name and in the quarantine; the
    next undo, unable to unlink the quarantined name (a read-only quarantine), took the original
    name away instead (the roll-back of a fresh move_in), and the file the user saw back was gone
    from the dataset (QA pass 28). Both names stay until the quarantine can be changed."""
    before = files_under(data)
    done = imgdup.remove(imgdup.find_duplicates([data], jobs=1), quarantine=tmp_path / "q")
    cut = done.removed[0]
    os.link(cut.quarantine or "", cut.path)  # the state the kill left: both names, one inode
    script = (
        "import json, sys, imgdup; res = imgdup.undo(sys.argv[1]); "
        "print(json.dumps({'restored': res.restored, 'problems': res.problems}))"
    )
    res = _undo_with_the_quarantine_read_only(done, script)
    assert os.path.exists(cut.path) and os.path.exists(cut.quarantine or "")
    assert cut.path in dict(res["problems"]) and cut.path not in res["restored"]
    again = imgdup.undo(done.manifest)  # writable again: finished
    assert not again.problems and files_under(data) == before


def _no_hard_links_to_others_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """``fs.protected_hardlinks=1`` (Debian, Ubuntu, Fedora) for a file the user neither owns nor
    can write (a colleague's, in a shared folder): every ``link()`` of it fails with EPERM."""

    def eperm(*a: Any, **k: Any) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", eperm)


def test_undo_restores_every_hard_linked_name_of_a_file_it_may_not_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second name of a file owned by another user was not restored (``protected_hardlinks``
    refuses to link it): "cannot restore: Operation not permitted; left in the quarantine", exit 3,
    until a second undo (QA pass 35). It is given its name back by a rename of the quarantined name,
    one file with the first: the two names stay linked."""
    root = tmp_path / "data"
    pair(root, 70)
    os.link(root / "copy.png", root / "copy-link.png")
    before = files_under(root)
    done = imgdup.remove(imgdup.find_duplicates([root], jobs=1), quarantine=tmp_path / "q")
    assert sorted(os.listdir(root)) == ["a-keep.png"]
    _no_hard_links_to_others_files(monkeypatch)
    res = imgdup.undo(done.manifest)
    assert not res.problems and len(res.restored) == 2 and files_under(root) == before
    assert (root / "copy.png").stat().st_ino == (root / "copy-link.png").stat().st_ino


def test_undo_without_hard_links_never_replaces_a_file_made_at_the_name_meanwhile(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where a file cannot be linked (``protected_hardlinks``, a file system without hard links),
    undo checked that the name was free, then renamed: a file made at the name between the two was
    replaced, though undo never overwrites anything of yours (QA pass 35). The rename itself
    refuses an existing name (``renameat2(RENAME_NOREPLACE)``, Linux)."""
    if fsafe._renameat2() is None:
        pytest.skip("no renameat2 here")
    done = imgdup.remove(imgdup.find_duplicates([data], jobs=1), quarantine=tmp_path / "q")
    yours = data / "g1" / "copy.png"
    _no_hard_links_to_others_files(monkeypatch)
    real = fsafe._free

    def then_made(name: str, dir_fd: int) -> bool:
        free = real(name, dir_fd)
        if name == yours.name and not yours.exists():  # just after the check, once
            yours.write_bytes(b"yours")
        return free

    monkeypatch.setattr(fsafe, "_free", then_made)
    res = imgdup.undo(done.manifest)
    assert yours.read_bytes() == b"yours"
    assert [path for path, _why in res.problems] == [str(yours)]
    assert [r.quarantine for r in done.removed if r.path == str(yours) and os.path.exists(r.quarantine or "")]


def test_undo_into_a_scanned_folder_that_is_gone_says_so_and_restores_once_it_is_back(
    data: Path, tmp_path: Path
) -> None:
    """A renamed (or deleted) dataset folder: each entry said only "cannot restore: No such file
    or directory" (QA pass 23). Undo does not make the folder itself (a renamed dataset would
    be split in two); it names it, and restores once it is back."""
    before = files_under(data)
    done = imgdup.remove(imgdup.find_duplicates([data], jobs=1), quarantine=tmp_path / "q")
    data.rename(tmp_path / "moved")
    res = imgdup.undo(done.manifest)
    assert not res.restored and len(res.problems) == 2
    assert all(f"its scanned folder {data} is gone" in why for _path, why in res.problems)
    assert not data.exists()
    (tmp_path / "moved").rename(data)
    res = imgdup.undo(done.manifest)
    assert not res.problems and len(res.restored) == 2 and files_under(data) == before


@pytest.mark.parametrize("chosen", [True, False])
def test_a_root_whose_name_is_near_the_name_limit_can_be_removed_from_and_restored(
    tmp_path: Path, chosen: bool
) -> None:
    """A root named with 254 bytes: its folder in the quarantine, ``0-<name>``, was 256 bytes and
    every file was skipped ("File name too long"); the default quarantine, ``<name>.imgdup-quarantine``,
    could not be made, once the scan was done (QA pass 23). Both names are cut to fit now."""
    root = tmp_path / ("r" * 254)
    pair(root, 64)
    before = files_under(root)
    quarantine = tmp_path / "q" if chosen else None
    done = imgdup.remove(imgdup.find_duplicates([root], jobs=1), quarantine=quarantine)
    assert not done.skipped and len(done.removed) == 1 and done.manifest
    assert sorted(os.listdir(root)) == ["a-keep.png"]
    assert imgdup.find_duplicates([tmp_path], jobs=1).summary.files == 1  # the quarantine is never scanned
    res = imgdup.undo(done.manifest)
    assert not res.problems and files_under(root) == before


@pytest.mark.parametrize("permanent", [True, False])
def test_undo_after_a_kill_inside_a_checked_deletion_puts_the_file_back_at_its_name(
    tmp_path: Path, permanent: bool
) -> None:
    """A kill between the rename into the private ``.imgdup-unlink-*`` folder and the unlink (a
    --permanent removal, or the deletion that ends a move to another disk): undo said "deleted
    permanently; there is nothing to restore" while the file was there, or restored the
    quarantined copy beside it and left the original hidden in the dataset, a duplicate each
    later removal warned about (QA pass 23). Undo now puts it back at its name first."""
    root = tmp_path / "data"
    pair(root, 65)
    before = files_under(root)
    script = textwrap.dedent(
        f"""
        import errno, os, signal, imgdup, imgdup.fsafe as fsafe
        def exdev(*a, **k):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        fsafe._rename_between = fsafe._link_between = exdev
        def killed(*a, **k):
            os.kill(os.getpid(), signal.SIGKILL)
        fsafe._verify = killed  # in the private folder, before its check and unlink
        imgdup.remove(imgdup.find_duplicates([{str(root)!r}], jobs=1), quarantine={str(tmp_path / "q")!r},
                      permanent={permanent!r})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert [p.name for p in root.iterdir() if p.name.startswith(".imgdup-unlink-")]
    (manifest,) = (tmp_path / "q").glob("*/manifest.json")
    if permanent:
        with pytest.raises(imgdup.ManifestError, match="1 file was not deleted yet"):
            imgdup.undo(manifest)
    else:
        res = imgdup.undo(manifest)
        assert not res.problems and res.already_in_place == (str(root / "copy.png"),)
    assert sorted(os.listdir(root)) == ["a-keep.png", "copy.png"] and files_under(root) == before


def _without_file_modes_bypass(cmd: list[str]) -> list[str]:
    """``cmd`` run so that file modes hold: as root, without the capabilities that bypass them."""
    if os.geteuid() != 0:
        return cmd
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: cannot make a folder unwritable")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *cmd]


def _undo_with_the_quarantine_read_only(done: imgdup.RemovalResult, script: str) -> dict[str, Any]:
    """Run ``script`` (an undo of ``done.manifest``, given as argv[1], printing its outcome as
    JSON) in a process that cannot write the quarantine's folders; the folders are writable again
    afterwards whatever happens."""
    folders = sorted({Path(r.quarantine or "").parent for r in done.removed})
    for folder in folders:
        folder.chmod(0o555)
    try:
        proc = subprocess.run(
            _without_file_modes_bypass([sys.executable, "-c", script, str(done.manifest)]),
            cwd=REPO, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        for folder in folders:
            folder.chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def test_undo_from_a_quarantine_that_is_not_writable_changes_nothing_and_says_so(data: Path, tmp_path: Path) -> None:
    """The file got its name back (a hard link), then its quarantined name could not be removed:
    undo said "cannot restore: Permission denied; left in the quarantine" of a file back at its
    name, and once the quarantine was writable again every undo reported "the original path is
    another name (hard link) of the quarantined copy; both left as they are", for good (QA pass
    23). The new name is taken back: nothing changes until the quarantine can be changed."""
    before = files_under(data)
    done = imgdup.remove(imgdup.find_duplicates([data], jobs=1), quarantine=tmp_path / "q")
    script = (
        "import json, sys, imgdup; res = imgdup.undo(sys.argv[1]); "
        "print(json.dumps({'restored': res.restored, 'problems': res.problems}))"
    )
    res = _undo_with_the_quarantine_read_only(done, script)
    assert res["restored"] == [] and len(res["problems"]) == 2
    assert all("cannot leave the folder it is in" in why for _path, why in res["problems"])
    assert not (data / "g1" / "copy.png").exists() and not (data / "g2" / "copy.png").exists()
    assert all(Path(r.quarantine or "").stat().st_nlink == 1 for r in done.removed)
    again = imgdup.undo(done.manifest)
    assert not again.problems and len(again.restored) == 2 and files_under(data) == before


def test_undo_across_disks_from_a_quarantine_that_is_not_writable_restores_and_says_restored(
    data: Path, tmp_path: Path
) -> None:
    """A quarantine on another disk that cannot be changed (a read-only snapshot of it): each file
    was copied back whole, then undo said "cannot restore: ...; left in the quarantine" of it
    (QA pass 23). It is restored; the quarantine keeps its copy, found in place by a later undo."""
    before = files_under(data)
    done = imgdup.remove(imgdup.find_duplicates([data], jobs=1), quarantine=tmp_path / "q")
    script = _UNDO_ACROSS_DISKS
    res = _undo_with_the_quarantine_read_only(done, script)
    assert res["problems"] == [] and len(res["restored"]) == 2 and files_under(data) == before
    again = imgdup.undo(done.manifest)
    assert not again.problems and len(again.already_in_place) == 2


def test_a_second_ctrl_c_while_the_manifest_is_settled_still_says_what_moved_and_how_to_undo(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C pressed twice: the second came while the interrupted removal rewrote its manifest,
    and the command said only "imgdup: interrupted", with no count, no manifest and no undo
    command (QA pass 23). The rewrite is not cut, and the removal says what it did."""
    real_check, real_write = actions._check_unchanged, actions._write_manifest

    def interrupt_second_cluster(path: str, *a: Any) -> str | None:
        if "g2" in path:
            raise KeyboardInterrupt
        return real_check(path, *a)

    def pressed_again(path: str, doc: dict[str, Any], **k: Any) -> None:
        if k.get("replace"):
            os.kill(os.getpid(), signal.SIGINT)
        real_write(path, doc, **k)

    monkeypatch.setattr(actions, "_check_unchanged", interrupt_second_cluster)
    monkeypatch.setattr(actions, "_write_manifest", pressed_again)
    rc = main(["-d", str(data), "-r", "1", "--no-progress", "--no-cache", "--quarantine", str(tmp_path / "q")])
    err = capsys.readouterr().err
    assert rc == 130
    (manifest,) = (tmp_path / "q").glob("*/manifest.json")
    assert "1 file moved to the quarantine" in err and f"imgdup --undo {manifest}" in err
    assert [e["path"] for e in json.loads(manifest.read_text())["entries"]] == [str(data / "g1" / "copy.png")]


def test_ctrl_c_during_the_walk_for_links_after_a_removal_still_says_what_moved(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Once every file has moved, the removal walks the roots for links to them (seconds on a
    large tree): Ctrl-C there ended the command with "imgdup: interrupted" alone (QA pass 23)."""

    def interrupted(*_a: Any) -> tuple[str, ...]:
        raise KeyboardInterrupt

    monkeypatch.setattr(actions, "links_to", interrupted)
    rc = main(["-d", str(data), "-r", "1", "--no-progress", "--no-cache", "--quarantine", str(tmp_path / "q")])
    err = capsys.readouterr().err
    (manifest,) = (tmp_path / "q").glob("*/manifest.json")
    assert rc == 130 and "2 files moved to the quarantine" in err and f"imgdup --undo {manifest}" in err


def test_ctrl_c_while_the_report_of_a_removal_is_laid_out_still_says_what_moved(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The text report of a large scan takes a second or more to lay out, after the removal:
    Ctrl-C there said "imgdup: interrupted" alone (QA pass 23)."""
    import imgdup.cli as cli

    def interrupted(*_a: Any, **_k: Any) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "format_text", interrupted)
    rc = main(["-d", str(data), "-r", "1", "--no-progress", "--no-cache", "--quarantine", str(tmp_path / "q")])
    err = capsys.readouterr().err
    (manifest,) = (tmp_path / "q").glob("*/manifest.json")
    assert rc == 130 and "2 files moved to the quarantine" in err and f"imgdup --undo {manifest}" in err


def test_a_move_across_disks_and_back_keeps_the_files_extended_attributes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Extended attributes (where a file was downloaded from, a label a tool wrote, an ACL) were
    dropped by the copy a move across disks makes, both ways: undo gave back the bytes, mode and
    times, not the file (QA pass 23)."""
    stage_exdev(monkeypatch)
    root = tmp_path / "data"
    pair(root, 66)
    copy = root / "copy.png"
    try:
        os.setxattr(copy, "user.xdg.origin.url", b"https://example.org/dog.png")
    except OSError:
        pytest.skip("this file system keeps no user extended attributes")
    done = imgdup.remove(imgdup.find_duplicates([root], jobs=1), quarantine=tmp_path / "q")
    (moved,) = done.removed
    assert os.getxattr(moved.quarantine or "", "user.xdg.origin.url") == b"https://example.org/dog.png"
    res = imgdup.undo(done.manifest)
    assert res.restored == (str(copy),)
    assert os.getxattr(copy, "user.xdg.origin.url") == b"https://example.org/dog.png"


def test_a_quarantine_on_a_disk_that_refuses_modes_still_takes_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A FAT or exFAT USB stick (or a CIFS share) holds one mode for all its files, set when it is
    mounted, and chmod to any other fails "Operation not permitted": a file of mode 0664 (umask
    002) or 0600 could not be moved there, its cluster skipped (QA pass 23). The mode is kept
    where the disk allows, as the owner is; the content check is what guards the file."""
    stage_exdev(monkeypatch)
    root = tmp_path / "data"
    pair(root, 67)
    before = files_under(root)
    real = os.fchmod

    def fat(fd: int, mode: int) -> None:
        if mode != 0o644:
            raise PermissionError(errno.EPERM, "Operation not permitted")
        real(fd, mode)

    monkeypatch.setattr(os, "fchmod", fat)
    (root / "copy.png").chmod(0o664)
    done = imgdup.remove(imgdup.find_duplicates([root], jobs=1), quarantine=tmp_path / "q")
    assert not done.skipped and len(done.removed) == 1
    res = imgdup.undo(done.manifest)
    assert not res.problems and files_under(root) == before


def kept_and_copies(root: Path, seed: int, copies: int = 3) -> Path:
    """``root`` holding ``a-keep.png`` (the file path order keeps) and ``copies`` exact copies of it."""
    save_png(seed, root / "a-keep.png")
    for n in range(copies):
        shutil.copyfile(root / "a-keep.png", root / f"copy{n}.png")
    return root


@pytest.mark.parametrize("permanent", [True, False])
def test_a_kept_file_deleted_while_its_cluster_is_removed_stops_the_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, permanent: bool
) -> None:
    """The kept file was checked once, before the first of its cluster's files moved; a large
    cluster takes a while, and a kept file deleted meanwhile (another program, a user tidying
    up) did not stop it: with --permanent every copy was deleted after it, the picture gone
    (QA pass 23). The kept files are looked at again before each file."""
    root = kept_and_copies(tmp_path / "data", 68)
    real = actions._move_one
    moved: list[str] = []

    def then_keeper_deleted(path: str, *a: Any) -> None:
        real(path, *a)
        moved.append(path)
        if len(moved) == 1:
            os.unlink(root / "a-keep.png")

    monkeypatch.setattr(actions, "_move_one", then_keeper_deleted)
    done = imgdup.remove(imgdup.find_duplicates([root], jobs=1), quarantine=tmp_path / "q", permanent=permanent)
    assert len(done.removed) == 1 and len(moved) == 1
    assert [s.reason for s in done.skipped] == [f"{root / 'a-keep.png'} (a kept file) is gone; the others were left"]
    assert sorted(os.listdir(root)) == ["copy1.png", "copy2.png"]


def test_a_kept_file_rewritten_in_place_with_its_time_put_back_stops_the_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``rsync --inplace -t`` (or an editor that keeps timestamps) writes another picture into the
    kept file while its cluster is removed: same inode, same size, modification time put back.
    The look before each file compared only those, and with --permanent every copy was deleted,
    the picture gone (QA pass 34). The change time, which no one can set, gives it away."""
    root = kept_and_copies(tmp_path / "data", 68)
    other = tmp_path / "other.png"
    save_png(69, other)
    keep = root / "a-keep.png"
    real = actions._move_one
    moved: list[str] = []

    def then_keeper_rewritten(path: str, *a: Any) -> None:
        real(path, *a)
        moved.append(path)
        if len(moved) == 1:
            st = keep.stat()
            data = other.read_bytes()[: st.st_size].ljust(st.st_size, b"\0")
            with open(keep, "r+b") as fh:  # in place: the inode and size stay
                fh.write(data)
            os.utime(keep, ns=(st.st_atime_ns, st.st_mtime_ns))
            assert (keep.stat().st_ino, keep.stat().st_size, keep.stat().st_mtime_ns) == (
                st.st_ino, st.st_size, st.st_mtime_ns
            )  # fmt: skip

    monkeypatch.setattr(actions, "_move_one", then_keeper_rewritten)
    done = imgdup.remove(imgdup.find_duplicates([root], jobs=1), permanent=True)
    assert len(done.removed) == 1 and len(moved) == 1
    assert [s.reason for s in done.skipped] == [f"{keep} (a kept file) changed; the others were left"]
    assert sorted(os.listdir(root)) == ["a-keep.png", "copy1.png", "copy2.png"]


def test_a_file_to_remove_rewritten_in_place_during_the_removal_is_put_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file to remove rewritten in place (``rsync --inplace -t``: another picture, same size,
    modification time put back) after its cluster's check was moved without a word: a move on one
    file system checked only inode, size and time after its rename, and undo then refused the
    quarantined file as modified, the new picture in the quarantine alone (QA pass 35). The moved
    file's content is checked in the private run folder: it goes back and the cluster stops."""
    root = kept_and_copies(tmp_path / "data", 68)
    other = tmp_path / "other.png"
    save_png(69, other)
    victim = root / "copy1.png"
    real = fsafe._rename_between

    def rewritten_then_renamed(src: str, dst: str, **fds: int) -> None:
        if src == victim.name:  # after the cluster's check, just before its move
            st = victim.stat()
            with open(victim, "r+b") as fh:  # in place: the inode and size stay
                fh.write(other.read_bytes()[: st.st_size].ljust(st.st_size, b"\0"))
            os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
        real(src, dst, **fds)

    monkeypatch.setattr(fsafe, "_rename_between", rewritten_then_renamed)
    done = imgdup.remove(imgdup.find_duplicates([root], jobs=1), quarantine=tmp_path / "q")
    new = digest(victim)
    assert [r.path for r in done.removed] == [str(root / "copy0.png")]
    assert [(s.reason, s.moved) for s in done.skipped] == [(f"{victim}: changed (content)", 1)]
    assert sorted(os.listdir(root)) == ["a-keep.png", "copy1.png", "copy2.png"]
    assert new != digest(root / "a-keep.png") and not list((tmp_path / "q").rglob("copy1.png"))
    res = imgdup.undo(done.manifest)
    assert not res.problems and res.restored == (str(root / "copy0.png"),) and digest(victim) == new


def test_undo_where_the_machine_has_another_name_but_the_same_folders_restores(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A container gets a new host name each run (docker run without --hostname): a removal run
    in one was refused by every later undo, "written on 'a1b2c3', not on this machine", for good
    (QA pass 23). The manifest names its folders by device and inode too; when they are the very
    folders, the name does not matter, and the refusal says how to run it under the old name."""
    before = files_under(data)
    done = imgdup.remove(imgdup.find_duplicates([data], jobs=1), quarantine=tmp_path / "q")
    manifest = Path(done.manifest or "")
    doc = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**doc, "host": "a1b2c3d4e5f6"}))
    res = imgdup.undo(manifest)
    assert not res.problems and len(res.restored) == 2 and files_under(data) == before
    manifest.write_text(json.dumps({**doc, "host": "a1b2c3d4e5f6", "root_ids": [[1, 2]]}))
    assert main(["--undo", str(manifest)]) == 1
    assert "docker run --hostname" in capsys.readouterr().err


def _disk_full_for_private_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk, for the one new folder a checked deletion makes (the quarantine is elsewhere)."""
    real = os.mkdir

    def full(path: Any, *a: Any, **k: Any) -> None:
        if os.fsdecode(path).startswith(".imgdup-unlink-"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, *a, **k)

    monkeypatch.setattr(os, "mkdir", full)


@pytest.mark.parametrize("permanent", [True, False])
def test_duplicates_on_a_full_disk_can_still_be_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, permanent: bool
) -> None:
    """On a full disk (8 MiB ext4 filled, the manifest on another disk) the private folder each
    checked deletion renames its file into could not be made, and every cluster was skipped "No
    space left on device", with --permanent or with a quarantine on another disk: no duplicate
    could be removed where the space was most needed (QA pass 23). The file is renamed beside
    itself instead, checked, then deleted."""
    stage_exdev(monkeypatch)  # the quarantine on another disk: the move ends with a checked deletion
    _disk_full_for_private_folders(monkeypatch)
    root = tmp_path / "data"
    pair(root, 69)
    done = imgdup.remove(imgdup.find_duplicates([root], jobs=1), quarantine=tmp_path / "q", permanent=permanent)
    assert not done.skipped and len(done.removed) == 1
    assert sorted(os.listdir(root)) == ["a-keep.png"]  # nothing left beside it


def test_a_kill_inside_a_checked_deletion_on_a_full_disk_leaves_the_file_to_be_put_back(tmp_path: Path) -> None:
    root = tmp_path / "data"
    pair(root, 70)
    before = files_under(root)
    script = textwrap.dedent(
        f"""
        import errno, os, signal, imgdup, imgdup.fsafe as fsafe
        real = os.mkdir
        def full(path, *a, **k):
            if os.fsdecode(path).startswith(".imgdup-unlink-"):
                raise OSError(errno.ENOSPC, "No space left on device")
            real(path, *a, **k)
        os.mkdir = full
        def killed(*a, **k):
            os.kill(os.getpid(), signal.SIGKILL)
        fsafe._verify = killed  # renamed beside itself, before its check and unlink
        imgdup.remove(imgdup.find_duplicates([{str(root)!r}], jobs=1), quarantine={str(tmp_path / "q")!r},
                      permanent=True)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    (staged,) = [p for p in root.iterdir() if p.name.startswith(".imgdup-unlink-")]
    assert staged.name.endswith("-copy.png") and staged.is_file()
    result = imgdup.find_duplicates([root], jobs=1)
    assert [os.path.basename(r.path) for r in result.records] == ["a-keep.png"]
    assert [s.path for s in result.skipped if "interrupted --permanent" in s.reason] == [str(staged)]
    (manifest,) = (tmp_path / "q").glob("*/manifest.json")
    with pytest.raises(imgdup.ManifestError, match="1 file was not deleted yet"):
        imgdup.undo(manifest)
    assert files_under(root) == before and sorted(os.listdir(root)) == ["a-keep.png", "copy.png"]


def test_a_quarantine_on_a_full_disk_says_to_put_it_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "data"
    pair(root, 71)
    result = imgdup.find_duplicates([root], jobs=1)
    real = os.mkdir

    def full(path: Any, *a: Any, **k: Any) -> None:
        if os.path.basename(os.fsdecode(path)) == "q":
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, *a, **k)

    monkeypatch.setattr(os, "mkdir", full)
    with pytest.raises(imgdup.RemovalError, match="give --quarantine DIR"):
        imgdup.remove(result, quarantine=tmp_path / "q", permanent=True)
    assert sorted(os.listdir(root)) == ["a-keep.png", "copy.png"]


@contextlib.contextmanager
def _bind_mount(source: Path, target: Path) -> Iterator[None]:
    """``source`` shown again at ``target`` (a bind mount: one folder, two paths, as a container's
    volume); skips where this process may not mount (only root may)."""
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"bind mounts need root: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(target)], check=True)


def test_a_folder_bind_mounted_inside_the_root_is_one_copy_of_its_files(data: Path) -> None:
    """A folder shown twice inside the root: each file was found under two names of one directory
    entry (read as hard links); the first move took the file, and the second name was reported as
    a skipped cluster ("No such file or directory", exit 3) though nothing was lost (QA pass 33)."""
    with _bind_mount(data / "g1", data / "mirror"):
        result = imgdup.find_duplicates([data], jobs=1)
        assert all(not r.entry.aliases for r in result.records)  # one name per directory entry
        assert sorted(len(c.members) for c in result.clusters) == [2, 2]
        done = imgdup.remove(result, quarantine=data.parent / "q")
        assert not done.skipped and len(done.removed) == 2
        assert len(imgdup.undo(done.manifest or "").restored) == 2


def test_two_roots_that_are_one_folder_through_a_bind_mount_lock_once(data: Path, tmp_path: Path) -> None:
    """``-d data -d mounted`` where ``mounted`` is ``data`` bind-mounted: the removal stopped with
    "another imgdup removal or undo is running", its own second lock on the same folder (QA pass 33)."""
    other = tmp_path / "mounted"
    with _bind_mount(data, other):
        result = imgdup.find_duplicates([data, other], jobs=1)
        assert sorted(len(c.members) for c in result.clusters) == [2, 2]
        done = imgdup.remove(result, quarantine=tmp_path / "q")
        assert not done.skipped and len(done.removed) == 2
        assert len(imgdup.undo(done.manifest or "").restored) == 2


def test_a_copy_across_disks_keeps_a_sparse_file_sparse(tmp_path: Path) -> None:
    """A small picture followed by a 64 MiB hole (4 KiB on disk) became 64 MiB of written zeros in
    a quarantine on another disk, and again in the dataset when undone: a hostile sparse file of
    a few KiB could fill both disks (QA pass 34). Runs of zeros are left as holes; the bytes read
    back are the same."""
    src = tmp_path / "sparse.png"
    save_png(70, src)
    head = src.read_bytes()
    with open(src, "r+b") as fh:
        fh.truncate(64 * 1024 * 1024)
        fh.seek(64 * 1024 * 1024 - 3)
        fh.write(b"end")
    if src.stat().st_blocks * 512 > 8 * 1024 * 1024:
        pytest.skip("this file system stores no holes")
    out = tmp_path / "out"
    out.mkdir()
    fd, dir_fd = os.open(src, os.O_RDONLY), os.open(out, os.O_RDONLY)
    try:
        fsafe.copy_durable(fd, dir_fd, "copy.png")
    finally:
        os.close(fd)
        os.close(dir_fd)
    copy = out / "copy.png"
    assert copy.stat().st_size == src.stat().st_size
    assert copy.stat().st_blocks * 512 < 8 * 1024 * 1024, copy.stat().st_blocks
    with open(copy, "rb") as a, open(src, "rb") as b:
        assert a.read() == b.read()
    assert copy.read_bytes()[: len(head)] == head


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_cluster_stopped_part_way_says_how_many_of_its_files_moved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    """A quarantine disk that fills after 2 of a cluster's 3 copies: the cluster was reported as
    "skipped cluster 0", which reads as untouched, while two of its files had moved and were
    listed as removed (QA pass 34)."""
    root = kept_and_copies(tmp_path / "data", 71)
    real = actions._move_one
    calls: list[str] = []

    def full_on_the_third(path: str, *a: Any) -> None:
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, *a)

    monkeypatch.setattr(actions, "_move_one", full_on_the_third)
    code = main(["-d", str(root), "--no-cache", "-q", "-j", "1", "--remove", "1", "--format", fmt])
    out = capsys.readouterr().out
    assert code == 3
    assert sorted(os.listdir(root)) == ["a-keep.png", "copy2.png"]
    if fmt == "text":
        assert f"stopped cluster 0 after 2 files moved (the others left): {root / 'copy2.png'}: No space" in out, out
        assert "skipped cluster" not in out
    else:
        (stopped,) = json.loads(out)["removal"]["skipped_clusters"]
        assert (stopped["cluster"], stopped["moved"]) == (0, 2)


def test_a_manifest_that_cannot_be_written_leaves_no_run_folder_and_says_where_to_go(tmp_path: Path) -> None:
    """A quarantine on a full disk: each try removed nothing, rightly, but left an empty run
    folder behind, and the message lacked the "--quarantine DIR on a disk with room" hint that
    a quarantine folder that cannot be made gets (QA pass 34)."""
    root = tmp_path / "data"
    pair(root, 59)
    before = files_under(root)
    with tmpfs(tmp_path / "mnt") as mnt:
        (mnt / "q").mkdir()
        with open(mnt / "filler", "wb") as fh, contextlib.suppress(OSError):
            while True:
                fh.write(b"\1" * 65536)
                fh.flush()
        for _try in range(2):
            with pytest.raises(imgdup.RemovalError, match="on a disk with room for it") as err:
                imgdup.remove(imgdup.find_duplicates([root], jobs=1), quarantine=mnt / "q")
            assert "No space left on device; nothing was removed" in str(err.value)
        assert os.listdir(mnt / "q") == []
    assert files_under(root) == before
