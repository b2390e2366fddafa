"""The HTML report's thumbnail folder holds the current page's thumbnails, not every earlier
run's (QA pass 10)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import imgdup
from imgdup.report.html import thumbnail_folder

from .conftest import scan
from .synth import photo


def _pairs(folder: Path, seeds: range) -> Path:
    folder.mkdir()
    for s in seeds:
        photo(s).save(folder / f"{s}.png")
        shutil.copyfile(folder / f"{s}.png", folder / f"{s}-copy.png")
    return folder


def test_a_later_report_drops_the_thumbnails_only_an_earlier_one_used(tmp_path: Path) -> None:
    """Content-addressed thumbnails were never removed: a page rewritten for another folder (or
    after a removal) left every earlier picture's thumbnail in ``FILE_files/``, growing run after
    run and keeping previews of pictures the page no longer shows. What is not imgdup's thumbnail
    (a file of the user's, a JPEG without imgdup's mark) stays."""
    page = tmp_path / "review.html"
    imgdup.write_report(scan(_pairs(tmp_path / "a", range(3))), page)
    folder = Path(thumbnail_folder(str(page)))
    first = {p.name for p in folder.iterdir()}
    assert len(first) == 3
    (folder / "notes.txt").write_text("mine", encoding="utf-8")
    photo(99).save(folder / ("f" * 32 + ".jpg"))  # a JPEG named like a thumbnail, not written by imgdup
    imgdup.write_report(scan(_pairs(tmp_path / "b", range(10, 12))), page)
    linked = set(re.findall(r"review_files/([0-9a-f]{32}\.jpg)", page.read_text(encoding="utf-8")))
    assert len(linked) == 2 and not linked & first
    assert {p.name for p in folder.iterdir()} == linked | {"notes.txt", "f" * 32 + ".jpg"}


def test_a_page_whose_thumbnail_folder_another_page_uses_is_refused(tmp_path: Path) -> None:
    """``review.html`` and ``review.htm`` (both written as HTML) keep their thumbnails in one
    folder, ``review_files/``: writing the second removed every thumbnail of the first, whose
    previews then showed broken, and nothing said so (QA pass 35). The second is refused before
    anything is written, naming the first; a page that is not imgdup's takes no folder."""
    page = tmp_path / "review.html"
    (tmp_path / "review.htm").write_text("<!doctype html>mine")  # not imgdup's: it keeps no thumbnails
    imgdup.write_report(scan(_pairs(tmp_path / "a", range(3))), page)
    folder = Path(thumbnail_folder(str(page)))
    first = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert len(first) == 3
    (tmp_path / "review.htm").unlink()
    other = tmp_path / "review.htm"
    with pytest.raises(imgdup.OutputError, match=f"in {re.escape(str(folder))}, as the report {re.escape(str(page))}"):
        imgdup.write_report(scan(_pairs(tmp_path / "b", range(10, 12))), other)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == first and not other.exists()


def test_the_page_shows_the_clusters_inside_the_reference_with_their_thumbnails(tmp_path: Path) -> None:
    """Duplicates inside a reference set are reported apart and never acted on (issue 10): the
    text, JSON and CSV reports listed them, the HTML page did not show them at all."""
    train, test = tmp_path / "train", tmp_path / "test"
    train.mkdir(), test.mkdir()
    photo(3).save(train / "a.png")
    shutil.copyfile(train / "a.png", train / "a-copy.png")
    photo(4).save(train / "b.png")
    shutil.copyfile(train / "b.png", test / "b-copy.png")
    result = imgdup.find_duplicates([test], reference=[train], jobs=1)
    assert len(result.reference_clusters) == 1 and len(result.clusters) == 1
    page = tmp_path / "report" / "r.html"
    page.parent.mkdir()
    imgdup.write_report(result, page)
    text = page.read_text(encoding="utf-8")
    section = text[text.index("<section id='reference'>") :]
    section = section[: section.index("</section>")]
    assert "a.png" in section and "a-copy.png" in section and "b-copy.png" not in section
    assert "never acted on" in section
    thumbs = {p.name for p in Path(thumbnail_folder(str(page))).iterdir()}
    digest = result.reference_clusters[0].members[0].record.digest
    assert f"{digest[:32]}.jpg" in thumbs
    assert f"{digest[:32]}.jpg" in section  # shown with its thumbnail
    # its size written as the tiles of the clusters write it (the page's script: "320\u00d7240")
    w, h = result.reference_clusters[0].members[0].record.width, result.reference_clusters[0].members[0].record.height
    assert f"{w}\u00d7{h} · " in section and f"{w}x{h}" not in section


def _distinct_pairs(folder: Path, seeds: range) -> Path:
    """Pairs of one photo saved as PNG and as JPEG: every member has its own thumbnail."""
    folder.mkdir()
    for s in seeds:
        photo(s).save(folder / f"{s}.png")
        photo(s).save(folder / f"{s}.jpg", quality=95)
    return folder


def test_thumbnails_made_by_several_workers_are_the_ones_one_makes(tmp_path: Path) -> None:
    """The page's thumbnails are decoded in worker processes (a 20,000-file report's 8,937 took
    42 s in one): the same files, byte for byte, and the same page, with any number of them."""
    from imgdup.report.html import write_thumbnails

    result = scan(_distinct_pairs(tmp_path / "d", range(6)))
    assert len(result.clusters) == 6
    made = {}
    for jobs in (1, 2, 3):
        page = tmp_path / f"j{jobs}.html"
        thumbs = write_thumbnails(result, page, jobs=jobs)
        folder = Path(thumbnail_folder(str(page)))
        made[jobs] = ({d: Path(u).name for d, u in thumbs.items()}, {p.name: p.read_bytes() for p in folder.iterdir()})
    assert len(made[1][0]) == 12 and len(made[1][1]) == 12
    assert made[1] == made[2] == made[3]


@pytest.mark.usefixtures("forked_workers")
def test_a_file_that_hangs_its_thumbnail_costs_its_preview_not_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Making the page's thumbnails decodes every member again, with the scan's per-file timeout:
    a file that blocks its decoder (here a member replaced by a named pipe after the scan: its
    open never returns) is shown without a preview, and the page is written. Before, the report
    waited on it forever. (A named pipe is refused before it is opened since QA pass 25: that
    check is taken out here, in the forked workers too, so that the timeout is what is tested.)"""
    import os

    from imgdup import hashing

    monkeypatch.setattr(hashing, "check_as_scanned", lambda *_: None)

    root = _distinct_pairs(tmp_path / "d", range(3))
    result = scan(root)
    stuck = root / "1.jpg"
    stuck.unlink()
    os.mkfifo(stuck)
    page = tmp_path / "review.html"
    imgdup.write_report(result, page, timeout=1.0)
    text = page.read_text(encoding="utf-8")
    digests = {m.record.path: m.record.digest for c in result.clusters for m in c.members}
    for path, digest in digests.items():
        assert (f"review_files/{digest[:32]}.jpg" in text) == (path != str(stuck)), path


def test_a_thumbnail_the_folder_refuses_fails_the_report_with_its_name(tmp_path: Path) -> None:
    """A worker that cannot write a thumbnail (here: a symbolic link stands at its name, which
    imgdup never writes through) hands the error back: the report fails naming the file, as it
    did when thumbnails were written in this process, and writes no page."""
    import pytest

    result = scan(_distinct_pairs(tmp_path / "d", range(2)))
    page = tmp_path / "review.html"
    folder = Path(thumbnail_folder(str(page)))
    folder.mkdir()
    digest = result.clusters[0].members[0].record.digest
    (folder / f"{digest[:32]}.jpg").symlink_to(tmp_path / "elsewhere.jpg")
    with pytest.raises(imgdup.OutputError, match=f"{digest[:32]}.jpg"):
        imgdup.write_report(result, page, jobs=2)
    assert not page.exists() and not (tmp_path / "elsewhere.jpg").exists()


def test_montages_drawn_by_several_workers_are_the_ones_one_draws(tmp_path: Path) -> None:
    """The contact sheets are drawn in worker processes: the same PNGs, byte for byte, with any
    number of them."""
    from imgdup.report.montage import write_montages

    result = scan(_distinct_pairs(tmp_path / "d", range(5)))
    sheets = {}
    for jobs in (1, 2, 3):
        written = write_montages(result, tmp_path / f"sheets{jobs}", jobs=jobs)
        sheets[jobs] = {Path(p).name: Path(p).read_bytes() for p in written}
    assert len(sheets[1]) == 5
    assert sheets[1] == sheets[2] == sheets[3]


@pytest.mark.usefixtures("forked_workers")
def test_a_file_that_hangs_a_montage_reads_unreadable_and_the_others_are_drawn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A member whose decode blocks (replaced by a named pipe since the scan) used to hang
    ``--montage`` forever; its sheet is now drawn again file by file under the timeout, and it
    comes out as it does for a file deleted since the scan: that place reads "(unreadable)".
    (A named pipe is refused before it is opened since QA pass 25: that check is taken out for
    the hung sheets, in the forked workers too, so that the timeout and the redrawing are tested.)"""
    import os

    from imgdup import hashing
    from imgdup.report.montage import write_montages

    root = _distinct_pairs(tmp_path / "d", range(3))
    result = scan(root)
    stuck = root / "1.jpg"
    (scanned,) = [m.record.entry for c in result.clusters for m in c.members if m.record.path == str(stuck)]
    stuck.unlink()
    gone = write_montages(result, tmp_path / "gone", jobs=2)
    os.mkfifo(stuck)
    with monkeypatch.context() as patch:
        patch.setattr(hashing, "check_as_scanned", lambda *_: None)
        hung = write_montages(result, tmp_path / "hung", jobs=2, timeout=1.0)
    assert [Path(p).name for p in hung] == [Path(p).name for p in gone]
    assert [Path(p).read_bytes() for p in hung] == [Path(p).read_bytes() for p in gone]
    refused = write_montages(result, tmp_path / "refused", jobs=2)  # the named pipe, refused before its open
    assert [Path(p).read_bytes() for p in refused] == [Path(p).read_bytes() for p in gone]
    stuck.unlink()
    photo(1).save(stuck, quality=95)  # readable again, as scanned: its sheet differs
    os.utime(stuck, ns=(scanned.mtime_ns, scanned.mtime_ns))
    assert [Path(p).read_bytes() for p in write_montages(result, tmp_path / "back", jobs=2)] != [
        Path(p).read_bytes() for p in gone
    ]


def test_the_thumbnails_and_montages_report_their_progress(tmp_path: Path) -> None:
    """Making the page's thumbnails and the montages decodes every member again (half a minute
    on a 20,000-file set): both tell a scan's progress callback how far they are."""
    from imgdup.report.montage import write_montages

    result = scan(_distinct_pairs(tmp_path / "d", range(3)))
    seen: list[tuple[str, int, int]] = []
    imgdup.write_report(result, tmp_path / "r.html", jobs=2, progress=lambda *a: seen.append(a))
    write_montages(result, tmp_path / "sheets", jobs=2, progress=lambda *a: seen.append(a))
    thumbs = [s for s in seen if s[0] == "thumbnails"]
    sheets = [s for s in seen if s[0] == "montages"]
    assert {s[0] for s in seen} == {"thumbnails", "montages"}
    assert thumbs[0] == ("thumbnails", 0, 6) and thumbs[-1] == ("thumbnails", 6, 6)
    assert sheets[0] == ("montages", 0, 3) and sheets[-1] == ("montages", 3, 3)
    assert [s[1] for s in thumbs] == sorted(s[1] for s in thumbs)


def test_the_command_draws_bars_for_the_page_thumbnails_and_montages(tmp_path: Path) -> None:
    """On a terminal, ``--report FILE.html`` and ``--montage`` show bars of their own after the
    scan's (the command sat silent while it decoded every member again)."""
    import os
    import pty
    import subprocess
    import sys

    root = _distinct_pairs(tmp_path / "d", range(3))
    leader, follower = pty.openpty()
    cmd = [sys.executable, "-m", "imgdup", "-d", str(root), "--no-cache", "-j", "2"]
    cmd += ["--report", str(tmp_path / "r.html"), "--montage", str(tmp_path / "sheets")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=follower, stdin=subprocess.DEVNULL)
    os.close(follower)
    err = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the follower side closed: the command is done
            break
        if not chunk:
            break
        err += chunk
    assert proc.wait(timeout=120) == 0
    os.close(leader)
    text = err.decode("utf-8", "replace")
    assert "report thumbnails" in text and "6/6" in text, text
    assert "montages" in text and "3/3" in text, text


def _report_in_a_pool_worker(args: tuple[object, str, str]) -> tuple[int, list[str]]:
    """In a multiprocessing.Pool worker (a daemonic process, which may start no process)."""
    from imgdup.report.montage import write_montages

    result, page, sheets = args
    thumbs = imgdup.report.html.write_thumbnails(result, page)  # type: ignore[arg-type]
    imgdup.write_report(result, page)  # type: ignore[arg-type]
    return len(thumbs), write_montages(result, sheets)  # type: ignore[arg-type]


def test_a_report_written_in_a_daemonic_process_makes_its_thumbnails_there(tmp_path: Path) -> None:
    """A DataLoader or multiprocessing.Pool worker may start no worker of its own: the page's
    thumbnails and the montages are then made in that process, one by one, as they were before
    they had workers (a scan there is refused: it needs its workers' timeout)."""
    import multiprocessing

    result = scan(_distinct_pairs(tmp_path / "d", range(2)))
    with multiprocessing.get_context("fork").Pool(1) as pool:
        count, sheets = pool.apply(_report_in_a_pool_worker, ((result, str(tmp_path / "r.html"), str(tmp_path / "s")),))
    assert count == 4 and len(sheets) == 2
    assert len(list(Path(thumbnail_folder(str(tmp_path / "r.html"))).iterdir())) == 4


def test_verbose_says_what_the_page_and_the_montages_cost(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """-v logs each stage with its time: the page's thumbnails and the montages too (a second page
    reuses the first one's thumbnails and says so)."""
    from imgdup.cli import main

    root = _distinct_pairs(tmp_path / "d", range(2))
    args = ["-d", str(root), "-v", "--no-progress", "--no-cache", "-j", "2", "--report", str(tmp_path / "r.html")]
    assert main([*args, "--montage", str(tmp_path / "s")]) == 0
    err = capsys.readouterr().err
    assert re.search(r"made 4 thumbnails for the page in \d+\.\d\d s \(0 reused", err), err
    assert re.search(r"drew 2 montages in \d+\.\d\d s", err), err
    assert main(args) == 0
    assert re.search(r"made 0 thumbnails for the page in \d+\.\d\d s \(4 reused", capsys.readouterr().err)


def test_the_report_writers_refuse_a_worker_count_or_timeout_a_scan_refuses(tmp_path: Path) -> None:
    """QA pass 25: write_report, write_thumbnails and write_montages took any jobs and timeout.
    A timeout of 0 or below timed every thumbnail out at once and wrote the page without a
    single preview, NaN timed nothing out, jobs="2" raised a TypeError from inside the pool,
    and jobs=0 or -2 ran as something else. They are refused as find_duplicates refuses them,
    before anything is written."""
    import pytest

    from imgdup.report.html import write_thumbnails
    from imgdup.report.montage import write_montages

    result = scan(_distinct_pairs(tmp_path / "d", range(2)))
    page, sheets = tmp_path / "review.html", tmp_path / "sheets"
    bad: list[dict[str, object]] = [
        {"timeout": 0}, {"timeout": -1.0}, {"timeout": float("nan")}, {"timeout": True}, {"timeout": "5"},
        {"jobs": 0}, {"jobs": -2}, {"jobs": True}, {"jobs": "2"}, {"jobs": 1.5},
    ]  # fmt: skip
    for options in bad:
        for write, where in ((imgdup.write_report, page), (write_thumbnails, page), (write_montages, sheets)):
            with pytest.raises(imgdup.UsageError, match=r"(jobs|timeout) must"):
                write(result, where, **options)  # type: ignore[operator]
    assert not page.exists() and not Path(thumbnail_folder(str(page))).exists() and not sheets.exists()
    imgdup.write_report(result, page, jobs=1, timeout=30)  # the good ones still work
    assert len(list(Path(thumbnail_folder(str(page))).iterdir())) == 4


def test_a_picture_whose_first_copy_is_gone_is_previewed_from_another_copy(tmp_path: Path) -> None:
    """QA pass 25: thumbnails are content-addressed, one per digest, made from the first member
    with it. When that file was gone since the scan (or no longer decodes), its byte-identical
    copies were not tried, as they were when thumbnails were made one by one in this process:
    the picture showed no preview anywhere although a copy was there to make it from."""
    root = _pairs(tmp_path / "d", range(3))
    result = scan(root)
    assert [len(c.members) for c in result.clusters] == [2, 2, 2]
    gone = result.clusters[1].members[0].record
    Path(gone.path).unlink()
    for jobs in (1, 2):
        page = tmp_path / f"j{jobs}.html"
        imgdup.write_report(result, page, jobs=jobs)
        text = page.read_text(encoding="utf-8")
        for c in result.clusters:
            assert f"j{jobs}_files/{c.members[0].record.digest[:32]}.jpg" in text
        made = Path(thumbnail_folder(str(page))) / f"{gone.digest[:32]}.jpg"
        assert made.read_bytes() == (tmp_path / "j1_files" / made.name).read_bytes()


def test_a_file_replaced_since_the_scan_gives_no_thumbnail_under_the_scanned_digest(tmp_path: Path) -> None:
    """QA pass 25: a thumbnail is named by the scanned content's digest, and every later report
    reuses it for that digest; it was made from whatever the member's file held by then. A
    member overwritten with another picture since the scan had the other picture shown as its
    own and as its byte-identical copy's, in this report and the next ones. The file is checked
    (size and modification time, as a removal checks it) before and after it is decoded; the
    copy gives the thumbnail."""
    root = _pairs(tmp_path / "d", range(2))
    result = scan(root)
    first = result.clusters[0].members[0].record
    before = tmp_path / "before.html"
    imgdup.write_report(result, before, jobs=1)
    name = f"{first.digest[:32]}.jpg"
    expected = (Path(thumbnail_folder(str(before))) / name).read_bytes()
    photo(77, (200, 150)).save(first.path, format="PNG")  # another picture under the member's name
    for jobs in (1, 2):
        page = tmp_path / f"j{jobs}.html"
        imgdup.write_report(result, page, jobs=jobs)
        assert (Path(thumbnail_folder(str(page))) / name).read_bytes() == expected


def test_a_montage_shows_no_other_picture_under_a_members_name(tmp_path: Path) -> None:
    """QA pass 25: a member overwritten with another picture since the scan was drawn on its
    sheet, labelled with its name, size and action (REMOVE d=0), as if that picture were the
    duplicate. Its place reads "(unreadable)", as for a file deleted since the scan; the file
    as scanned (bytes and modification time) is drawn as before."""
    import os

    from imgdup.report.montage import write_montages

    root = _distinct_pairs(tmp_path / "d", range(2))
    result = scan(root)
    member = result.clusters[0].members[1].record
    kept = Path(member.path).read_bytes()
    Path(member.path).unlink()
    gone = [Path(p).read_bytes() for p in write_montages(result, tmp_path / "gone", jobs=2)]
    photo(90).save(member.path, format="JPEG" if member.path.endswith(".jpg") else "PNG")
    assert [Path(p).read_bytes() for p in write_montages(result, tmp_path / "other", jobs=2)] == gone
    Path(member.path).write_bytes(kept)
    os.utime(member.path, ns=(member.entry.mtime_ns, member.entry.mtime_ns))
    assert [Path(p).read_bytes() for p in write_montages(result, tmp_path / "back", jobs=2)] != gone


_PER_FILE = """
import json, multiprocessing, os, sys, time
from pathlib import Path

import imgdup
from imgdup import parallel
from imgdup.report import montage


class Clock:
    # imgdup.parallel's clock, shared with the forked workers: it moves only when a stand-in
    # decode spends time, and keeps the latest time the parent read (a timeout is decided at
    # such a reading), so that a decode can wait for the parent to have seen it.

    def __init__(self):
        self.now, self.seen = multiprocessing.RawValue("d", 0.0), multiprocessing.RawValue("d", 0.0)
        self.parent = os.getpid()

    def monotonic(self):
        now = self.now.value
        if os.getpid() == self.parent:
            self.seen.value = now
        return now

    def spend(self, seconds):
        self.now.value += seconds
        deadline = time.monotonic() + 60
        while self.seen.value < self.now.value and time.monotonic() < deadline:
            time.sleep(0.005)


root, out = Path(sys.argv[1]), Path(sys.argv[2])
result = imgdup.find_duplicates(root, jobs=1)
plain = {Path(p).name: Path(p).read_bytes() for p in montage.write_montages(result, out / "plain", jobs=1)}
clock, log, real = Clock(), out / "decoded", montage.load_thumbnail


def stand_in(path, size, scanned=None):
    with open(log, "a") as fh:
        fh.write(os.path.basename(path) + " ")
    clock.spend(1.5 if path.endswith("slow.png") else 0.6)
    return real(path, size, scanned=scanned)


parallel.time, montage.load_thumbnail = clock, stand_in
assert parallel._context().get_start_method() == "fork"  # the workers have the stand-ins
drawn = montage.write_montages(result, out / "sheets", jobs=1, timeout=1.0)
sheets = {Path(p).name: Path(p).read_bytes() for p in drawn}
decoded = log.read_text().split()
sizes = {f"cluster-{c.id:04d}.png": len(c.members) for c in result.clusters}
print(json.dumps({
    "decoded": {n: decoded.count(n) for n in sorted(set(decoded))},
    "as_plain": {sizes[n]: sheets[n] == plain[n] for n in sorted(plain)},
}))
"""


def test_the_montages_timeout_holds_per_file_not_per_sheet(tmp_path: Path) -> None:
    """A sheet is drawn in one worker, and the timeout counted from the sheet's start: a sheet of
    files each within the limit but over it together (47 two-second PNGs, 60 s) was timed out,
    then drawn again file by file, the files decoded again and the limit's time lost. Each
    file now has the limit; one over it still costs its place. On a clock of the test's own
    (no timing): each file takes 0.6 of the limit, "slow.png" 1.5. (In a process of its own,
    which forks its workers: the stand-ins must be theirs, and this one may have threads.)"""
    import json
    import subprocess
    import sys

    root = tmp_path / "d"
    root.mkdir()
    photo(1).save(root / "a.png")
    for name in ("b", "c", "d"):
        shutil.copyfile(root / "a.png", root / f"{name}.png")
    photo(2).save(root / "e.png")
    photo(2).save(root / "slow.png")
    script = tmp_path / "per_file.py"
    script.write_text(_PER_FILE, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, str(script), str(root), str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    # each of the 4-file sheet's files once (two of them were decoded twice: the sheet redrawn)
    assert got["decoded"] == {"a.png": 1, "b.png": 1, "c.png": 1, "d.png": 1, "e.png": 2, "slow.png": 2}
    assert got["as_plain"] == {"4": True, "2": False}  # slow.png, over the limit, reads "(unreadable)"
