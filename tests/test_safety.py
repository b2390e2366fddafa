"""Fault injection: hostile input, races between scan and removal, crashes, full disks.

Every test stages one fault deterministically and checks that no picture is lost and that the
run says what happened.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import imgdup
from imgdup.cli import main
from imgdup.models import FileEntry
from imgdup.report.text import human_bytes

from .synth import photo

REPO = Path(__file__).resolve().parents[1]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def regular_files(root: Path) -> dict[str, str]:
    """relpath -> sha256 of every regular file (symlinks and special files excluded)."""
    out = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            p = Path(folder) / name
            if p.is_file() and not p.is_symlink():
                with contextlib.suppress(OSError):
                    out[str(p.relative_to(root))] = digest(p)
    return out


def save(img: Image.Image, path: Path, fmt: str | None = None, **kw: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, fmt, **kw)
    return path


def build_hostile_tree(root: Path, outside: Path) -> None:
    """Every category of bad or odd input next to one real duplicate pair."""
    save(photo(1), root / "dup" / "a.jpg", quality=92)
    shutil.copyfile(root / "dup" / "a.jpg", root / "dup" / "b.jpg")
    # odd but legal images, each unique
    save(Image.new("RGB", (1, 1), (200, 10, 10)), root / "odd" / "one-pixel.png")
    save(photo(2).convert("CMYK"), root / "odd" / "cmyk.jpg", quality=90)
    save(Image.fromarray(np.asarray(photo(3).convert("L"), dtype=np.uint16) * 257), root / "odd" / "grey16.png")
    save(photo(4).quantize(32), root / "odd" / "palette-transparent.png", transparency=0)
    rgba = photo(5).convert("RGBA")
    rgba.putalpha(128)
    save(rgba, root / "odd" / "rgba.png")
    photo(6).save(root / "odd" / "anim.gif", save_all=True, append_images=[photo(7)], duration=50)
    photo(8).save(root / "odd" / "pages.tiff", save_all=True, append_images=[photo(9)])
    save(photo(10), root / "odd" / "pic.webp", quality=80)
    save(photo(11), root / "odd" / "pic.bmp")
    save(photo(12), root / "odd" / "no_extension", "JPEG")
    save(photo(13), root / "odd" / "UPPER.PNG")
    exif = Image.Exif()
    exif[0x010E] = "<script>alert('imgdup')</script>"  # ImageDescription
    save(photo(14), root / "odd" / "meta-html.jpg", exif=exif)
    # hostile names
    for i, name in enumerate(["with space.jpg", "ünïcødé-图像.jpg", "new\nline.jpg", "-leading-dash.jpg",
                              "<b>tag</b>.jpg", "tab\there.jpg"]):  # fmt: skip
        save(photo(20 + i), root / "names" / name, "JPEG")
    # broken files
    bad = root / "bad"
    bad.mkdir()
    (bad / "empty.jpg").write_bytes(b"")
    (bad / "text.jpg").write_text("this is not a picture\n")
    (bad / "random.png").write_bytes(np.random.default_rng(0).bytes(5000))
    good = (root / "dup" / "a.jpg").read_bytes()
    (bad / "truncated.jpg").write_bytes(good[: len(good) // 2])
    png = (root / "odd" / "UPPER.PNG").read_bytes()
    broken = bytearray(png)
    broken[40] ^= 0xFF  # inside the first IDAT chunk: its CRC no longer matches
    (bad / "bad-crc.png").write_bytes(bytes(broken))
    ihdr = b"\x00\x00\x9c\x40\x00\x00\x9c\x40\x08\x00\x00\x00\x00"  # 40000 x 40000
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    (bad / "bomb.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 99)) + chunk(b"IEND", b"")
    )
    # a folder named like an image, and a deep tree
    save(photo(30), root / "x.jpg" / "inside.png")
    deep = root.joinpath(*[f"d{i}" for i in range(40)])
    save(photo(31), deep / "deep.png")
    # a path longer than PATH_MAX, built through directory descriptors
    fd = os.open(root, os.O_RDONLY)
    try:
        for _ in range(20):
            name = "L" * 250
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
        with os.fdopen(os.open("far.png", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as fh:
            photo(32).save(fh, "PNG")
    finally:
        os.close(fd)
    # links
    links = root / "links"
    links.mkdir()
    save(photo(40), outside / "outside.jpg")
    os.symlink(root / "dup" / "a.jpg", links / "inside-link.jpg")
    os.symlink(outside / "outside.jpg", links / "outside-link.jpg")
    os.symlink(root / "nowhere.jpg", links / "dangling.jpg")
    os.symlink(links / "loop.jpg", links / "loop.jpg")
    os.symlink(root, links / "dir-loop")
    os.link(root / "odd" / "pic.bmp", root / "odd" / "pic-hardlink.bmp")
    # special files: never opened
    os.mkfifo(root / "special-fifo.jpg")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "special-socket.jpg"))
    sock.close()
    if os.geteuid() == 0:
        os.mknod(root / "special-null.jpg", 0o600 | 0o020000, os.makedev(1, 3))
    unreadable = save(photo(41), root / "odd" / "unreadable.png")
    unreadable.chmod(0)


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "data"
    root.mkdir()
    build_hostile_tree(root, tmp_path / "outside")
    yield root
    (root / "odd" / "unreadable.png").chmod(0o644)


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imgdup", *args, "--no-progress"],
        capture_output=True, text=True, timeout=timeout, cwd=REPO, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_remove_over_the_hostile_tree_loses_nothing_and_never_hangs(hostile: Path, tmp_path: Path) -> None:
    before = regular_files(hostile)
    outside_before = regular_files(tmp_path / "outside")
    proc = run_cli("-d", str(hostile), "-r", "1", "--no-cache", "--quarantine", str(tmp_path / "q"), "--format", "json")
    assert proc.returncode == 3, proc.stderr  # done, but some files failed
    doc = json.loads(proc.stdout)
    removed = set(doc["removal"]["removed"])
    assert removed == {str(hostile / "dup" / "b.jpg")}
    assert [len(c["members"]) for c in doc["clusters"]] == [2]
    after = regular_files(hostile)
    assert set(before) - set(after) == {"dup/b.jpg"}
    assert all(after[k] == v for k, v in before.items() if k in after)
    assert regular_files(tmp_path / "outside") == outside_before
    failures = {Path(f["path"]).name: f["reason"] for f in doc["failures"]}
    for name in ("empty.jpg", "text.jpg", "random.png", "truncated.jpg", "bad-crc.png", "bomb.png"):
        assert failures.get(name), name
    assert "bomb" in failures["bomb.png"]
    skipped = {Path(s["path"]).name: s["reason"] for s in doc["skipped"]}
    for name in ("inside-link.jpg", "outside-link.jpg", "dangling.jpg", "loop.jpg", "dir-loop"):
        assert "symbolic link" in skipped[name]
    assert "regular file" in skipped["special-fifo.jpg"] and "regular file" in skipped["special-socket.jpg"]
    assert any("too long" in f["reason"] for f in doc["failures"])  # past PATH_MAX: never read
    hashed = {Path(m["path"]).name for c in doc["clusters"] for m in c["members"]}
    assert hashed == {"a.jpg", "b.jpg"}
    assert doc["summary"]["images"] >= 20  # every odd-but-legal image was decoded
    assert "files could not be read" in proc.stderr


def test_hostile_names_are_escaped_in_text_and_csv(hostile: Path, tmp_path: Path) -> None:
    for name in ("new\nline.jpg", "-leading-dash.jpg", "tab\there.jpg"):
        shutil.copyfile(hostile / "names" / name, hostile / "names" / ("copy " + name))
    proc = run_cli("-d", str(hostile), "--no-cache", "--report", str(tmp_path / "r.csv"))
    lines = proc.stdout.splitlines()
    assert any("new\\nline.jpg" in line for line in lines) and any("tab\\there.jpg" in line for line in lines)
    assert not any(line.startswith("line.jpg") for line in lines)  # no raw newline split a line
    csv_text = (tmp_path / "r.csv").read_text()
    assert "'-leading-dash.jpg" not in csv_text  # only cells that start with - are guarded
    assert "script" not in proc.stdout  # metadata never reaches the report


# --- races between scan and removal -------------------------------------------------------


@pytest.fixture
def two_clusters(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for group in ("g1", "g2"):
        save(photo(50 if group == "g1" else 51), root / group / "keep.png")
        shutil.copyfile(root / group / "keep.png", root / group / "copy.png")
    return root


def remove_with_hook(
    root: Path, quarantine: Path, hook: Callable[[imgdup.Cluster], None] | None
) -> imgdup.RemovalResult:
    result = imgdup.find_duplicates([root], jobs=1)
    assert [len(c.members) for c in result.clusters] == [2, 2]
    return imgdup.remove(result, quarantine=quarantine, before_cluster=hook)


def test_keeper_deleted_between_scan_and_removal_skips_its_cluster(two_clusters: Path, tmp_path: Path) -> None:
    last_copy: list[str] = []

    def hook(cluster: imgdup.Cluster) -> None:
        if cluster.id == 0:
            os.unlink(cluster.keep.path)
            last_copy.extend(m.record.path for m in cluster.removable)

    done = remove_with_hook(two_clusters, tmp_path / "q", hook)
    assert [s.cluster for s in done.skipped] == [0] and "gone" in done.skipped[0].reason
    assert len(last_copy) == 1 and os.path.exists(last_copy[0])  # the last copy stays
    assert len(regular_files(two_clusters / "g2")) == 1


@pytest.mark.parametrize("victim", ["keep", "copy"])
def test_file_replaced_with_mtime_preserved_skips_its_cluster(two_clusters: Path, tmp_path: Path, victim: str) -> None:
    def hook(cluster: imgdup.Cluster) -> None:
        if cluster.id == 0:
            path = two_clusters / "g1" / f"{victim}.png"
            st = path.stat()
            data = bytearray(path.read_bytes())
            data[-20] ^= 0x01  # same size, different content, in place (same inode)
            with open(path, "r+b") as fh:
                fh.write(data)
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))

    done = remove_with_hook(two_clusters, tmp_path / "q", hook)
    assert [s.cluster for s in done.skipped] == [0] and "content" in done.skipped[0].reason
    assert (two_clusters / "g1" / "copy.png").exists() and (two_clusters / "g1" / "keep.png").exists()
    assert [r.cluster for r in done.removed] == [1]


def test_parent_swapped_for_a_symlink_cannot_redirect_removal(two_clusters: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"

    def hook(cluster: imgdup.Cluster) -> None:
        if cluster.id == 0:
            # same names, same inode numbers are impossible, so copy the folder whole and
            # point the old name at it: a naive path-based move would take files from there
            shutil.copytree(two_clusters / "g1", elsewhere, copy_function=shutil.copy2)
            shutil.rmtree(two_clusters / "g1")
            os.symlink(elsewhere, two_clusters / "g1")

    done = remove_with_hook(two_clusters, tmp_path / "q", hook)
    assert [s.cluster for s in done.skipped] == [0]
    assert sorted(os.listdir(elsewhere)) == ["copy.png", "keep.png"]


def test_directory_swapped_after_the_check_is_still_refused(
    two_clusters: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import imgdup.actions as actions

    real_check = actions._check_unchanged
    elsewhere = tmp_path / "elsewhere"

    def check_then_swap(path: str, root: str, entry: FileEntry, digest_: str, *rest: Any) -> str | None:
        problem = real_check(path, root, entry, digest_, *rest)
        if path.endswith("g1/copy.png") and not elsewhere.exists():
            shutil.copytree(two_clusters / "g1", elsewhere)
            shutil.rmtree(two_clusters / "g1")
            os.symlink(elsewhere, two_clusters / "g1")
        return problem

    monkeypatch.setattr(actions, "_check_unchanged", check_then_swap)
    done = remove_with_hook(two_clusters, tmp_path / "q", None)
    assert 0 in [s.cluster for s in done.skipped] and "symbolic link" in done.skipped[0].reason
    assert sorted(os.listdir(elsewhere)) == ["copy.png", "keep.png"]


# --- crashes ----------------------------------------------------------------------------------


def test_sigkill_during_removal_then_undo_restores_everything(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for i in range(4):
        save(photo(60 + i), root / f"g{i}" / "keep.png")
        for k in range(2):
            shutil.copyfile(root / f"g{i}" / "keep.png", root / f"g{i}" / f"copy{k}.png")
    before = regular_files(root)
    script = textwrap.dedent(
        f"""
        import os, signal, imgdup
        result = imgdup.find_duplicates([{str(root)!r}], jobs=1)
        def hook(cluster):
            if cluster.id == 2:
                os.kill(os.getpid(), signal.SIGKILL)
        imgdup.remove(result, quarantine={str(tmp_path / "q")!r}, before_cluster=hook)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert len(regular_files(root)) == 12 - 4  # two clusters were done before the kill
    (manifest,) = (tmp_path / "q").glob("*/manifest.json")
    assert main(["--undo", str(manifest)]) == 0
    assert regular_files(root) == before


def test_sigkill_during_hashing_then_rerun_equals_a_clean_run(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for i in range(300):
        save(photo(1000 + i, (48, 36)), root / f"{i:03d}.png")
    shutil.copyfile(root / "007.png", root / "copy.png")
    cache = tmp_path / "cache.sqlite3"
    script = textwrap.dedent(
        f"""
        import os, signal, imgdup
        def progress(stage, done, total):
            if stage == "hash" and done == 280:
                os.kill(os.getpid(), signal.SIGKILL)
        imgdup.find_duplicates([{str(root)!r}], jobs=2, cache={str(cache)!r}, progress=progress)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    resumed = imgdup.find_duplicates([root], jobs=2, cache=cache)
    assert resumed.summary.from_cache >= 256  # the batches written before the kill
    clean = imgdup.find_duplicates([root], jobs=1)
    assert imgdup.to_document(resumed) == imgdup.to_document(clean)


def test_manifest_from_another_machine_or_pointing_outside_is_refused(two_clusters: Path, tmp_path: Path) -> None:
    done = remove_with_hook(two_clusters, tmp_path / "q", None)
    manifest = Path(done.manifest)
    original = json.loads(manifest.read_text())
    # another machine: another name, and folders that are not the ones the removal saw
    other = {**original, "host": "some-other-machine", "root_ids": [[0, 0] for _ in original["roots"]]}
    manifest.write_text(json.dumps(other))
    with pytest.raises(imgdup.ManifestError, match="not on this machine"):
        imgdup.undo(manifest)
    manifest.write_text(json.dumps({k: v for k, v in other.items() if k != "root_ids"}))  # an older manifest
    with pytest.raises(imgdup.ManifestError, match="not on this machine"):
        imgdup.undo(manifest)
    # a forged entry that would "restore" a file outside the roots, from outside the quarantine
    forged = dict(original)
    victim = tmp_path / "victim.txt"
    keeper = original["entries"][0]["keep"]
    forged["entries"] = [{**original["entries"][0], "path": str(victim), "quarantine": keeper}]
    manifest.write_text(json.dumps(forged))
    res = imgdup.undo(manifest)
    assert res.problems and "refused" in res.problems[0][1]
    assert not victim.exists() and os.path.exists(keeper)


@pytest.mark.parametrize("roots", [None, "/tmp", [], ["relative/data"], [3], ["/tmp/a\x00b"]])
def test_a_manifest_whose_roots_are_not_a_list_of_folders_is_refused_in_one_line(
    two_clusters: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], roots: object
) -> None:
    """``"roots": null`` in a hand-damaged manifest was a TypeError traceback, and ``"roots":
    "/tmp"`` was read letter by letter: ``/`` became a root, and a file was restored outside the
    scanned folder (QA pass 33)."""
    done = remove_with_hook(two_clusters, tmp_path / "q", None)
    manifest = Path(done.manifest or "")
    doc = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**doc, "roots": roots}))
    with pytest.raises(imgdup.ManifestError, match=r"is not an imgdup manifest .*its roots"):
        imgdup.undo(manifest)
    assert main(["--undo", str(manifest)]) == 1
    assert "Traceback" not in capsys.readouterr().err
    manifest.write_text(json.dumps(doc))
    assert len(imgdup.undo(manifest).restored) == 2  # nothing was lost meanwhile


def test_a_manifest_entry_that_does_not_match_its_roots_is_refused_and_the_others_restored(
    two_clusters: Path, tmp_path: Path
) -> None:
    """A manifest edited to name a wider root (``/``) or an entry's path changed restored a file
    outside the scanned folder; a NUL byte in one entry's path was a ValueError that stopped the
    whole undo (QA pass 33). An entry's quarantined name is its root's folder and its path below
    that root: one that does not match is refused, and every other entry is restored."""
    done = remove_with_hook(two_clusters, tmp_path / "q", None)
    manifest = Path(done.manifest or "")
    doc = json.loads(manifest.read_text())
    first, second = doc["entries"]
    elsewhere = tmp_path / "elsewhere.png"
    # (widened to tmp_path, not "/": undo locks its roots, and "/" met every other test's lock)
    for roots, entries in (
        ([str(tmp_path)], doc["entries"]),  # widened: the files and elsewhere.png inside it
        (doc["roots"], [{**first, "path": str(elsewhere)}, second]),  # outside the roots
        ([str(tmp_path), *doc["roots"]], [{**first, "path": str(elsewhere)}, second]),
        (doc["roots"], [{**first, "path": first["path"] + "\x00x"}, second]),
        (doc["roots"], [{**first, "stored": first["stored"] + "\x00x"}, second]),
    ):
        manifest.write_text(json.dumps({**doc, "roots": roots, "entries": entries}))
        res = imgdup.undo(manifest)
        assert not elsewhere.exists()
        assert all("refused" in why for _path, why in res.problems), res.problems
        if roots == doc["roots"]:
            assert res.restored == (second["path"],), res
            assert len(res.problems) == 1
            Path(second["quarantine"]).parent.mkdir(parents=True, exist_ok=True)  # undo pruned it, emptied
            os.rename(second["path"], second["quarantine"])  # as the removal left it, for the next case
        else:
            assert not res.restored and len(res.problems) == 2
    manifest.write_text(json.dumps(doc))
    assert len(imgdup.undo(manifest).restored) == 2


def test_undo_of_a_run_whose_files_another_run_holds_names_that_run(two_clusters: Path, tmp_path: Path) -> None:
    """A run killed before it moved its files, then run again: undo of the first run's manifest
    (which lists every planned file) said "missing from the quarantine" of each file the second
    run holds, 281 lines that read like 281 pictures lost (QA pass 33). The same state: a run
    undone, then its files removed again by another. Undo names the run that holds them; a file
    no run holds is still missing."""
    first = remove_with_hook(two_clusters, tmp_path / "q", None)
    assert len(imgdup.undo(first.manifest or "").restored) == 2
    second = remove_with_hook(two_clusters, tmp_path / "q", None)
    assert second.manifest and second.manifest != first.manifest and len(second.removed) == 2
    res = imgdup.undo(first.manifest or "")
    said = (
        "never moved by this run, or put back since: another run moved it to its own quarantine"
        f" (imgdup --undo {shlex.quote(second.manifest)} puts it back)"
    )
    assert not res.restored and [why for _path, why in res.problems] == [said, said]
    os.unlink(second.removed[0].quarantine or "")  # gone from every quarantine: missing, as it is
    res = imgdup.undo(first.manifest or "")
    assert sorted(why.split(" (")[0] for _path, why in res.problems) == [
        "missing from the quarantine",
        "never moved by this run, or put back since: another run moved it to its own quarantine",
    ]
    assert len(imgdup.undo(second.manifest).restored) == 1


@pytest.mark.parametrize("content", [b"<!doctype html>\n<html>", b"cluster,action,distance\n", b"\xff\xd8\xff\xe0JFIF"])
def test_undo_of_a_file_that_is_no_manifest_says_what_to_give_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    """``imgdup --undo report.html`` (or the CSV report, or a picture) said "cannot read manifest
    ...: Expecting value: line 1 column 1 (char 0)" or a codec error (QA pass 20)."""
    given = tmp_path / "report.html"
    given.write_bytes(content)
    assert main(["--undo", str(given)]) == 1
    err = capsys.readouterr().err
    assert "is not an imgdup manifest" in err and "manifest.json" in err
    assert "Expecting value" not in err and "codec" not in err


def test_corrupt_manifest_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "manifest.json"
    bad.write_text('{"schema": "imgdup.manifest/1", "entries": [')
    with pytest.raises(imgdup.ManifestError):
        imgdup.undo(bad)
    bad.write_text('{"schema": "something-else", "entries": []}')
    assert main(["--undo", str(bad)]) == 1
    assert "not an imgdup manifest" in capsys.readouterr().err


def test_an_undo_given_a_manifest_through_a_pipe_says_where_to_read_it(two_clusters: Path, tmp_path: Path) -> None:
    # `--undo <(cat manifest)` has no run folder beside it: the files cannot be found, and the
    # command said only "missing from the quarantine" (QA pass 8).
    done = imgdup.remove(imgdup.find_duplicates([two_clusters], jobs=1), quarantine=tmp_path / "q")
    assert done.manifest is not None
    script = f"{shlex.quote(sys.executable)} -m imgdup --undo <(cat {shlex.quote(done.manifest)})"
    proc = subprocess.run(["bash", "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "not a regular file" in proc.stderr and "its own run folder" in proc.stderr
    assert len(imgdup.undo(done.manifest).restored) == 2  # from its folder, nothing was lost


# --- concurrency and full disks ------------------------------------------------------------------


def test_a_second_removal_on_the_same_root_is_refused(two_clusters: Path, tmp_path: Path) -> None:
    result = imgdup.find_duplicates([two_clusters], jobs=1)
    fd = os.open(two_clusters, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(imgdup.RemovalError, match="another imgdup removal"):
            imgdup.remove(result, quarantine=tmp_path / "q")
    finally:
        os.close(fd)
    assert len(regular_files(two_clusters)) == 4
    assert len(imgdup.remove(result, quarantine=tmp_path / "q").removed) == 2


def test_an_undo_refused_by_the_lock_does_not_claim_a_removal_holds_it(two_clusters: Path, tmp_path: Path) -> None:
    # The holder may be another undo as well as a removal: the message names both (QA pass 8).
    done = imgdup.remove(imgdup.find_duplicates([two_clusters], jobs=1), quarantine=tmp_path / "q")
    fd = os.open(two_clusters, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(imgdup.RemovalError, match="another imgdup removal or undo is running"):
            imgdup.undo(done.manifest)
    finally:
        os.close(fd)
    assert len(imgdup.undo(done.manifest).restored) == 2


@contextlib.contextmanager
def tiny_tmpfs(path: Path, size: str, *, read_only: bool = False) -> Iterator[Path]:
    path.mkdir()
    options = f"size={size}" + (",ro" if read_only else "")
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)]).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root and mount rights)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.mark.parametrize(("size", "read_only"), [("4k", False), ("64k", True)])
def test_full_or_read_only_quarantine_removes_nothing(
    two_clusters: Path, tmp_path: Path, size: str, read_only: bool
) -> None:
    before = regular_files(two_clusters)
    result = imgdup.find_duplicates([two_clusters], jobs=1)
    with tiny_tmpfs(tmp_path / "small", size, read_only=read_only) as q:
        if not read_only:
            (q / "filler").write_bytes(b"x" * 4096)  # fill it
        with pytest.raises(imgdup.RemovalError, match="nothing was removed"):
            imgdup.remove(result, quarantine=q / "quarantine")
    assert regular_files(two_clusters) == before


def test_quarantine_that_fills_up_mid_copy_keeps_every_original(two_clusters: Path, tmp_path: Path) -> None:
    big = two_clusters / "g1" / "keep.png"
    save(photo(70, (900, 700)), big)
    shutil.copyfile(big, two_clusters / "g1" / "copy.png")
    before = regular_files(two_clusters)
    result = imgdup.find_duplicates([two_clusters], jobs=1)
    with tiny_tmpfs(tmp_path / "small", "64k") as q:  # room for the manifest, not the big copy
        done = imgdup.remove(result, quarantine=q / "quarantine")
        assert done.skipped and "No space left" in done.skipped[0].reason
    after = regular_files(two_clusters)
    for rel, value in before.items():
        moved = str(two_clusters / rel) in {r.path for r in done.removed}
        assert moved or after[rel] == value


@pytest.mark.parametrize(
    ("case", "given"), [("another user's", False), ("mode 0777", False), ("mode 0775", True), ("mode 0777", True)]
)
def test_a_quarantine_of_another_user_or_writable_by_others_is_refused_before_the_scan(
    two_clusters: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, given: bool
) -> None:
    """Another user of a shared (1777) folder made ``data.imgdup-quarantine`` (mode 777) before the
    run; imgdup took it without a word, and she could swap the run folder made in it and receive,
    read and delete every moved file (QA pass 36). A quarantine that exists must be the user's
    (or root's) and writable by no one else (a sticky one, as /tmp, aside): refused before the
    scan, the default one or --quarantine's, and again by remove()."""
    q = tmp_path / ("q" if given else "data.imgdup-quarantine")
    q.mkdir()
    if case == "another user's":
        if os.geteuid() != 0:
            pytest.skip("making a folder of another user needs root")
        os.chown(q, 65534, 65534)
        q.chmod(0o755)
        why = "belongs to uid 65534" if not _uid_named(65534) else f"belongs to {_uid_named(65534)} (uid 65534)"
    else:
        q.chmod(int(case.removeprefix("mode "), 8))
        why = f"is writable by {'others' if case.endswith('7') else 'its group'} (mode {case.removeprefix('mode ')})"
    before = regular_files(two_clusters)
    args = ["-d", str(two_clusters), "-r", "1", "--no-cache", "--no-progress"]
    assert main([*args, *(["--quarantine", str(q)] if given else [])]) == 2
    out, err = capsys.readouterr()
    assert out == "" and f"the quarantine {q} {why}" in err and "nothing was removed" not in err
    with pytest.raises(imgdup.RemovalError, match=re.escape(f"the quarantine {q} {why}")):
        imgdup.remove(imgdup.find_duplicates([two_clusters], jobs=1), quarantine=q if given else None)
    assert regular_files(two_clusters) == before and list(q.iterdir()) == []


def _uid_named(uid: int) -> str | None:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def test_the_quarantine_imgdup_makes_is_private_and_a_sticky_shared_one_is_taken(
    two_clusters: Path, tmp_path: Path
) -> None:
    """The default quarantine was made with the umask's mode (0755: anyone could list the runs in
    it); it is made 0700 now, as each run folder is. A folder shared as /tmp is (mode 1777) is
    taken: no one else can rename or delete the user's run folder in it."""
    done = imgdup.remove(imgdup.find_duplicates([two_clusters], jobs=1))
    base = tmp_path / "data.imgdup-quarantine"
    assert Path(done.manifest or "").parent.parent == base and len(done.removed) == 2
    assert stat.S_IMODE(base.stat().st_mode) == 0o700
    assert stat.S_IMODE(Path(done.manifest or "").parent.stat().st_mode) & 0o077 == 0
    assert len(imgdup.undo(done.manifest).restored) == 2
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    done = imgdup.remove(imgdup.find_duplicates([two_clusters], jobs=1), quarantine=shared)
    assert len(done.removed) == 2
    assert stat.S_IMODE(Path(done.manifest or "").parent.stat().st_mode) & 0o077 == 0


def test_the_moves_go_to_the_run_folder_made_even_when_its_name_is_swapped(two_clusters: Path, tmp_path: Path) -> None:
    """Each move reopened the run folder by its path: another user who could rename it put a folder
    of her own (with files/0-data) at its name and received every moved file, read and deleted them,
    and the undo printed found no manifest (QA pass 36). The moves go through the descriptor of the
    folder made, held for the whole run, so they follow it wherever it is renamed."""
    before = regular_files(two_clusters)
    q = tmp_path / "q"
    planted: list[Path] = []

    def hook(cluster: imgdup.Cluster) -> None:
        if not planted:
            (run,) = q.iterdir()
            run.rename(q / "renamed")
            (run / "files" / "0-data").mkdir(parents=True)
            planted.append(run)

    done = remove_with_hook(two_clusters, q, hook)
    assert len(done.removed) == 2 and not done.skipped
    assert [p for p in planted[0].rglob("*") if not p.is_dir()] == []
    res = imgdup.undo(q / "renamed" / "manifest.json")
    assert len(res.restored) == 2 and not res.problems and regular_files(two_clusters) == before


def test_a_manifest_that_cannot_be_rewritten_at_the_end_says_so(
    two_clusters: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A quarantine disk filled by the moves: the closing rewrite of the manifest (to list what was
    moved) failed without a word, and the manifest still listed a file that never moved (QA pass 36)."""
    import imgdup.actions as actions

    real = actions.write_output

    def full_on_rewrite(path: str, data: bytes, is_ours: Callable[[bytes], bool], **kw: Any) -> None:
        if os.path.exists(path):
            raise imgdup.OutputError(f"cannot write {path}: No space left on device", errno=28)
        real(path, data, is_ours, **kw)

    monkeypatch.setattr(actions, "write_output", full_on_rewrite)

    def hook(cluster: imgdup.Cluster) -> None:
        if cluster.id == 1:
            (two_clusters / "g2" / "copy.png").unlink()

    with caplog.at_level("WARNING", logger="imgdup"):
        done = remove_with_hook(two_clusters, tmp_path / "q", hook)
    assert len(done.removed) == 1 and len(done.skipped) == 1
    assert f"could not rewrite the manifest {done.manifest} to list only what moved" in caplog.text
    assert "No space left on device; it still lists 1 file that did not move" in caplog.text


def test_report_on_a_full_disk_fails_before_anything_moves(two_clusters: Path, tmp_path: Path) -> None:
    before = regular_files(two_clusters)
    with tiny_tmpfs(tmp_path / "small", "4k") as full:
        (full / "filler").write_bytes(b"x" * 4096)
        rc = main(["-d", str(two_clusters), "-r", "1", "--no-cache", "--report", str(full / "r.json"),
                   "--quarantine", str(tmp_path / "q")])  # fmt: skip
    assert rc == 1
    assert regular_files(two_clusters) == before


def test_html_report_escapes_hostile_names(tmp_path: Path) -> None:
    root = tmp_path / "data"
    evil = "<img src=x onerror=alert(1)>&'\".png"
    save(photo(80), root / evil)
    shutil.copyfile(root / evil, root / "copy.png")
    result = imgdup.find_duplicates([root], jobs=1)
    page = Path(imgdup.write_report(result, tmp_path / "r.html")).read_text()
    # Names travel only inside the JSON data block, with <, > and & escaped (the browser test
    # tests/test_gallery.py checks a hostile name is shown as text); only the page's own script runs.
    assert "<img src=x" not in page and "\\u003cimg src=x onerror=alert(1)\\u003e\\u0026" in page
    assert page.count("<script") == 2 and "'unsafe-inline'" not in page
    assert "default-src 'none'" in page and "script-src 'sha256-" in page


def test_unreadable_file_is_a_failure_and_the_run_goes_on(tmp_path: Path) -> None:
    """Also as root: the scan then runs without the capabilities that bypass file modes."""
    root = tmp_path / "data"
    save(photo(90), root / "readable.png")
    shutil.copyfile(root / "readable.png", root / "copy.png")
    save(photo(91), root / "secret.png").chmod(0)
    script = "import json, sys, imgdup; print(json.dumps(imgdup.to_document(imgdup.find_duplicates([sys.argv[1]]))))"
    cmd = [sys.executable, "-c", script, str(root)]
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: cannot make a file unreadable")
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *cmd]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [Path(f["path"]).name for f in doc["failures"]] == ["secret.png"]
    assert "ermission" in doc["failures"][0]["reason"]
    assert [len(c["members"]) for c in doc["clusters"]] == [2]


def test_unreadable_folders_are_failures_and_the_run_exits_3(tmp_path: Path) -> None:
    """A folder that cannot be listed (mode 000), or files that cannot be stat'ed (a folder that
    can be listed but not searched), were only skipped and the run exited 0: their images were
    never read (QA pass 35). They are failures, as an unreadable file is; a listed file too."""
    root = tmp_path / "data"
    save(photo(92), root / "ok" / "a.png")
    shutil.copyfile(root / "ok" / "a.png", root / "ok" / "copy.png")
    save(photo(93), root / "locked" / "b.png")
    save(photo(94), root / "noexec" / "c.png")
    save(photo(95), tmp_path / "other" / "d.png")
    (tmp_path / "list.txt").write_text(f"{tmp_path / 'other' / 'd.png'}\n{tmp_path / 'gone.png'}\n")
    cmd = [sys.executable, "-m", "imgdup", "-d", str(root), "--files", str(tmp_path / "list.txt"), "--no-cache"]
    cmd += ["--no-progress", "-j", "1", "--format", "json"]
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: cannot make a folder unreadable")
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *cmd]
    folders = {root / "locked": 0o000, root / "noexec": 0o644, tmp_path / "other": 0o644}
    for folder, mode in folders.items():
        folder.chmod(mode)
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    finally:
        for folder in folders:
            folder.chmod(0o755)
    assert proc.returncode == 3, proc.stderr
    doc = json.loads(proc.stdout)
    failures = {Path(f["path"]).name: f["reason"] for f in doc["failures"]}
    assert set(failures) == {"locked", "c.png", "d.png"}
    assert all("ermission" in why for why in failures.values())
    assert "cannot list folder" in failures["locked"] and "cannot stat" in failures["c.png"]
    assert [Path(s["path"]).name for s in doc["skipped"]] == ["gone.png"]  # a missing name is no failure
    assert [len(c["members"]) for c in doc["clusters"]] == [2]
    assert proc.stderr.splitlines()[-1].startswith("imgdup: 2 files could not be read, 1 folder could not be listed")


def test_a_folder_the_user_cannot_reach_is_not_reported_as_missing(tmp_path: Path) -> None:
    """A folder to scan (or a reference folder) under one the user may not search read "not a
    directory or a file", word for word a typo's, or "is not a folder" (QA pass 36)."""
    closed = tmp_path / "closed"
    save(photo(96), closed / "ds" / "a.png")
    save(photo(97), tmp_path / "mine" / "b.png")
    base = [sys.executable, "-m", "imgdup", "--no-cache", "--no-progress"]
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: cannot make a folder unreachable")
        base = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *base]
    runs = [["-d", str(closed / "ds")], ["--reference", str(closed / "ds"), "-d", str(tmp_path / "mine")]]
    closed.chmod(0)
    try:
        procs = [subprocess.run([*base, *a], cwd=REPO, capture_output=True, text=True, timeout=120) for a in runs]
    finally:
        closed.chmod(0o755)
    for proc in procs:
        assert proc.returncode == 2, proc.stderr
        assert f"cannot reach {closed / 'ds'}: Permission denied" in proc.stderr, proc.stderr
    with pytest.raises(imgdup.UsageError, match="not a directory or a file"):  # a typo's words stay
        imgdup.find_duplicates([tmp_path / "nothere"])


def test_removing_a_file_whose_other_hard_link_is_outside_the_roots_says_no_space_is_freed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "data"
    save(photo(95), root / "a.png")
    shutil.copyfile(root / "a.png", root / "b.png")
    os.link(root / "b.png", tmp_path / "elsewhere.png")  # a name outside the scanned root
    rc = main(["-d", str(root), "-r", "1", "--no-cache", "--quarantine", str(tmp_path / "q")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "b.png: another name of this file (a hard link) keeps its data" in out
    assert (tmp_path / "elsewhere.png").exists() and (root / "a.png").exists()
    assert "moved to the quarantine: 1 file (0 B)" in out


def test_two_names_of_one_removed_file_inside_the_roots_are_not_said_to_keep_its_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Both names move: neither keeps the data, and its bytes are freed once (QA pass 8).
    root = tmp_path / "data"
    save(photo(95), root / "a" / "k.png")
    shutil.copyfile(root / "a" / "k.png", root / "a" / "x.png")
    (root / "b").mkdir()
    os.link(root / "a" / "x.png", root / "b" / "x2.png")
    size = (root / "a" / "x.png").stat().st_size
    rc = main(["-d", str(root), "-r", "1", "--no-cache", "--quarantine", str(tmp_path / "q")])
    out = capsys.readouterr().out
    assert rc == 0
    assert not (root / "a" / "x.png").exists() and not (root / "b" / "x2.png").exists()
    assert "keeps its data" not in out
    assert f"moved to the quarantine: 1 file ({human_bytes(size)}; 2 names: hard links go with their file)" in out


def test_undo_counts_a_file_with_two_names_as_the_removal_did(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The removal said "1 file (...; 2 names: hard links go with their file)", and its undo
    "restored 2 files" (QA pass 20)."""
    root = tmp_path / "data"
    save(photo(95), root / "a" / "k.png")
    shutil.copyfile(root / "a" / "k.png", root / "a" / "x.png")
    (root / "b").mkdir()
    os.link(root / "a" / "x.png", root / "b" / "x2.png")
    assert main(["-d", str(root), "-r", "1", "--no-cache", "--quarantine", str(tmp_path / "q")]) == 0
    (manifest,) = (tmp_path / "q").glob("*/manifest.json")
    capsys.readouterr()
    assert main(["--undo", str(manifest)]) == 0
    assert "restored 1 file (2 names), 0 already in place, 0 problems" in capsys.readouterr().out
    assert os.path.samefile(root / "a" / "x.png", root / "b" / "x2.png")


@pytest.mark.parametrize("module", ["imgdup.cli", "imgdup.models"])
def test_ctrl_c_while_the_command_starts_ends_without_a_traceback(tmp_path: Path, module: str) -> None:
    # A Ctrl-C while the command's modules load printed Python's traceback (QA pass 8), and so did
    # one while the package itself loaded its records, before the command's handler (QA pass 35:
    # imgdup.models, ~40 ms of start-up). The interrupt is raised by the import of that module
    # itself: the same moment, every time.
    hook = tmp_path / "hook" / "sitecustomize.py"
    hook.parent.mkdir()
    hook.write_text(
        textwrap.dedent(
            f"""
            import sys

            class Interrupt:
                def find_spec(self, name, path=None, target=None):
                    if name == {module!r}:
                        raise KeyboardInterrupt

            sys.meta_path.insert(0, Interrupt())
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hook.parent), str(REPO)])}
    for cmd in (["-m", "imgdup", "--version"], ["-c", "import sys, imgdup.__main__ as m; sys.exit(m.run())"]):
        proc = subprocess.run([sys.executable, *cmd], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 130, proc.stderr
        assert proc.stderr.strip() == "imgdup: interrupted", proc.stderr


def test_a_file_whose_every_name_is_removed_frees_its_space_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both names of a file (hard links in two scanned folders) were moved, yet the second
    read "another name of this file (a hard link) keeps its data" and was listed under
    ``no_space_freed``: no name was left to keep it (QA pass 9). Its bytes count once."""
    save(photo(96), tmp_path / "a" / "a.png")
    shutil.copyfile(tmp_path / "a" / "a.png", tmp_path / "a" / "b.png")
    (tmp_path / "o").mkdir()
    os.link(tmp_path / "a" / "b.png", tmp_path / "o" / "b2.png")
    size = (tmp_path / "a" / "b.png").stat().st_size
    args = ["-d", str(tmp_path / "a"), "-d", str(tmp_path / "o"), "-r", "1", "--no-cache", "--format", "json"]
    assert main([*args, "--quarantine", str(tmp_path / "q")]) == 0
    removal = json.loads(capsys.readouterr().out)["removal"]
    assert sorted(Path(p).name for p in removal["removed"]) == ["b.png", "b2.png"]
    assert removal["no_space_freed"] == [] and removal["bytes_freed"] == size
    assert not (tmp_path / "o" / "b2.png").exists() and (tmp_path / "a" / "a.png").exists()
