"""Object-store input: the Dask engine scans ``s3://bucket/prefix`` served by a local S3 server.

moto's server runs in this process on 127.0.0.1 (a free port); nothing leaves the machine.
Without the test/dask/s3 extras the test skips, except in CI (CI=true), where it fails.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import imgdup
from imgdup.cli import main

from .conftest import need, picture


def _need(module: str) -> Any:
    return need(module, "test,dask,s3")


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A bucket ``photos`` on a moto server at 127.0.0.1; fsspec (driver and workers) points at it."""
    server_mod = _need("moto.server")
    s3fs = _need("s3fs")
    fsspec = _need("fsspec")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    options = {"endpoint_url": endpoint, "key": "testing", "secret": "testing"}
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "FSSPEC_S3_ENDPOINT_URL": endpoint,
                       "FSSPEC_S3_KEY": "testing", "FSSPEC_S3_SECRET": "testing"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)  # worker processes started by the test read these
    monkeypatch.setitem(fsspec.config.conf, "s3", options)  # this process read its config at import
    fs = s3fs.S3FileSystem(**options)
    if fs.exists("photos"):  # moto's store outlives its server within a process: a fresh bucket per test
        fs.rm("photos", recursive=True)
    fs.mkdir("photos")
    try:
        yield fs
    finally:
        fs.clear_instance_cache()
        server.stop()


@pytest.fixture
def small_set(tmp_path: Path, dogs: Path) -> Path:
    root = tmp_path / "set"
    (root / "sub").mkdir(parents=True)
    for k, photo in enumerate(sorted(dogs.iterdir())[:24]):
        with Image.open(photo) as im:
            im = im.convert("RGB")
            im.save(root / photo.name, "JPEG", quality=90)
            if k % 3 == 0:
                im.resize((im.width // 2, im.height // 2)).save(root / "sub" / f"half-{photo.name}", "JPEG")
                im.save(root / "sub" / f"{photo.stem}.png", "PNG")
    (root / "sub" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    return root


def _by_relpath(result: imgdup.ScanResult) -> tuple[dict[str, int], list[list[tuple[str, str]]], list[str]]:
    hashes = {r.entry.relpath: r.hash for r in result.records}
    clusters = [[(m.record.entry.relpath, m.action.value) for m in c.members] for c in result.clusters]
    return hashes, clusters, sorted(os.path.basename(f.path) for f in result.failures)


def test_s3_prefix_scans_like_the_local_folder(s3: Any, small_set: Path, tmp_path: Path, capsys: Any) -> None:
    engine = _need("imgdup.engine.dask")
    s3.put(str(small_set) + "/", "photos/set/", recursive=True)
    local = imgdup.find_duplicates([small_set], threshold=8, jobs=1)
    assert len(local.clusters) == 8 and len(local.failures) == 1  # the set's own premise
    with engine.connect(jobs=1, processes=False, dashboard_address=None) as client:
        remote = engine.find_duplicates(["s3://photos/set"], client=client, threshold=8)
        # the driver's cache keys objects by URL, size and modification time: a re-run reads nothing
        cache = tmp_path / "cache.sqlite3"
        cold = engine.find_duplicates(["s3://photos/set"], client=client, threshold=8, cache=cache)
        warm = engine.find_duplicates(["s3://photos/set"], client=client, threshold=8, cache=cache)
    assert cold.summary.from_cache == 0 and warm.summary.from_cache == warm.summary.files  # failures too
    assert _by_relpath(warm) == _by_relpath(cold) == _by_relpath(remote)
    assert _by_relpath(remote) == _by_relpath(local)
    assert remote.roots == ("s3://photos/set",)
    assert all(r.path.startswith("s3://photos/set/") for r in remote.records)

    # End to end through the command, with worker processes reading the endpoint from the environment.
    report = tmp_path / "report.json"
    args = ["-d", "s3://photos/set", "--engine", "dask", "-j", "1", "-t", "8", "--no-cache", "--no-progress"]
    assert main([*args, "--report", str(report), "--tables", "s3://photos/tables"]) == 3  # one unreadable file
    doc = json.loads(report.read_text())
    assert [[m["relpath"] for m in c["members"]] for c in doc["clusters"]] == [
        [rel for rel, _ in c] for c in _by_relpath(local)[1]
    ]
    assert "dry run" in capsys.readouterr().out
    assert s3.ls("photos/tables/members") and s3.ls("photos/tables/clusters")


def test_store_errors_are_messages_and_a_missing_listed_object_is_skipped(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """Two store errors ended the command in a traceback. QA pass 19, both fail on the code before:
    - no credentials: botocore's NoCredentialsError from the listing (exit 1, a traceback);
    - a file list naming an object that is gone: FileNotFoundError from fs.info stopped the
      whole run, where a listed local file that is gone is one skipped line."""
    fsspec = _need("fsspec")
    engine = _need("imgdup.engine.dask")
    picture(3).save(tmp_path / "a.png")
    s3.put(str(tmp_path / "a.png"), "photos/set/a.png")
    listing = tmp_path / "list.csv"
    listing.write_text("path\ns3://photos/set/a.png\ns3://photos/set/gone.png\n")
    with engine.connect(jobs=1, processes=False, dashboard_address=None) as client:
        result = engine.find_duplicates([listing], client=client)
    assert [r.path for r in result.records] == ["s3://photos/set/a.png"]
    assert [(s.path, s.reason) for s in result.skipped] == [("s3://photos/set/gone.png", "listed but not found")]

    endpoint = fsspec.config.conf["s3"]["endpoint_url"]
    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": endpoint})  # no key, no secret
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "FSSPEC_S3_KEY", "FSSPEC_S3_SECRET"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # botocore would ask 169.254.169.254
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    s3.clear_instance_cache()
    args = ["-d", "s3://photos/set", "--engine", "dask", "-j", "1", "--no-cache", "--no-progress"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "imgdup: error: cannot list s3://photos/set: NoCredentialsError" in err and "Traceback" not in err


def test_removal_refuses_object_store_files(s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """imgdup.remove on a scan of s3://... read the URLs as local paths, relative to the working
    folder ('No such file or directory: CWD/s3:/photos'): it failed by luck, where README says
    object-store inputs are report-only. Fails on the code before (QA pass 19)."""
    engine = _need("imgdup.engine.dask")
    picture(4).save(tmp_path / "a.jpg", quality=95)
    picture(4).save(tmp_path / "b.jpg", quality=60)
    s3.put([str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")], "photos/dup/")
    with engine.connect(jobs=1, processes=False, dashboard_address=None) as client:
        result = engine.find_duplicates(["s3://photos/dup"], client=client, threshold=8)
    assert [m.action.value for m in result.clusters[0].members] == ["keep", "remove"]  # the premise
    monkeypatch.chdir(tmp_path)
    with pytest.raises(imgdup.RemovalError, match="report-only; nothing was removed"):
        imgdup.remove(result, quarantine=tmp_path / "q")
    assert sorted(s3.find("photos/dup")) == ["photos/dup/a.jpg", "photos/dup/b.jpg"]
    assert sorted(os.listdir(tmp_path)) == ["a.jpg", "b.jpg"]


def _twins(dogs: Path, root: Path, n: int) -> Path:
    """``n`` photos as JPEGs, each with a PNG of its exact pixels (its twin): ``n`` clusters of two."""
    root.mkdir()
    for photo in sorted(dogs.iterdir())[:n]:
        with Image.open(photo) as im:
            im.convert("RGB").save(root / f"{photo.stem}.jpg", "JPEG", quality=85)
        with Image.open(root / f"{photo.stem}.jpg") as jpeg:
            jpeg.save(root / f"{photo.stem}-twin.png", "PNG")
    return root


def _scan_on_s3(s3: Any, root: Path) -> imgdup.ScanResult:
    """``root`` put under ``s3://photos/<its name>`` and scanned there by the Dask engine."""
    engine = _need("imgdup.engine.dask")
    s3.put(str(root) + "/", f"photos/{root.name}/", recursive=True)
    with engine.connect(jobs=1, processes=False, dashboard_address=None) as client:
        return engine.find_duplicates([f"s3://photos/{root.name}"], client=client)


def test_s3_objects_get_the_keepers_and_reasons_of_local_files(s3: Any, dogs: Path, tmp_path: Path) -> None:
    """A JPEG and a PNG of its exact pixels: the smaller file, the JPEG, is kept ("smallest of the
    files with identical pixels"). From S3 the PNG was kept: the keep policy's per-file options (a
    colour decode for a JPEG with a same-size lossless twin) were looked up by the name of the
    object's local copy and never found, so the digests differed (QA pass 33)."""
    root = _twins(dogs, tmp_path / "twins", 3)
    local = imgdup.find_duplicates([root], jobs=1)
    assert [c.keep_reason for c in local.clusters] == ["smallest of the files with identical pixels"] * 3
    remote = _scan_on_s3(s3, root)
    assert [(c.keep.entry.relpath, c.keep_reason) for c in remote.clusters] == [
        (c.keep.entry.relpath, c.keep_reason) for c in local.clusters
    ]


def test_an_html_report_of_s3_objects_shows_their_previews(s3: Any, dogs: Path, tmp_path: Path) -> None:
    """The page of an object-store scan had no preview at all (the thumbnails were decoded from
    the object's URL as if it were a local path, and failed), nothing said so, and ``-v`` said
    "made 36 thumbnails" (QA pass 33): a review page without pictures cannot be decided on."""
    engine = _need("imgdup.report.html")
    root = _twins(dogs, tmp_path / "pairs", 2)
    remote = _scan_on_s3(s3, root)
    assert [len(c.members) for c in remote.clusters] == [2, 2]
    thumbs = engine.write_thumbnails(remote, tmp_path / "page.html", jobs=1)
    assert set(thumbs) == {m.record.digest for c in remote.clusters for m in c.members}
    (tmp_path / "local").mkdir()
    local = engine.write_thumbnails(imgdup.find_duplicates([root], jobs=1), tmp_path / "local" / "page.html", jobs=1)
    assert {d: (tmp_path / url).read_bytes() for d, url in thumbs.items()} == {
        d: (tmp_path / "local" / url).read_bytes() for d, url in local.items()
    }  # the same previews as of the files on disk


def test_montages_of_s3_objects_are_drawn_from_local_copies(
    s3: Any, small_set: Path, tmp_path: Path, capsys: Any
) -> None:
    """``--montage DIR`` with an ``s3://`` input was refused as "not a directory: s3://..." and,
    through the API, drew every tile "(unreadable)" (QA pass 33): the same sheets as of the files
    on disk."""
    s3.put(str(small_set) + "/", "photos/set/", recursive=True)
    args = ["--engine", "dask", "-j", "1", "-t", "8", "--no-cache", "--no-progress", "-q"]
    assert main(["-d", "s3://photos/set", *args, "--montage", str(tmp_path / "remote")]) == 3  # one unreadable file
    assert main(["-d", str(small_set), *args, "--montage", str(tmp_path / "local")]) == 3
    capsys.readouterr()
    remote = sorted((tmp_path / "remote").iterdir())
    local = sorted((tmp_path / "local").iterdir())
    assert [p.name for p in remote] == [p.name for p in local] and len(remote) == 8
    for a, b in zip(remote, local):
        with Image.open(a) as x, Image.open(b) as y:
            assert x.tobytes() == y.tobytes()  # the same pictures under the same names
