"""The Dask engine gives exactly the local engine's hashes, pairs, clusters and kept files.

One real LocalCluster (2 worker processes) serves the module. Without the dask extra the tests
skip with a message, except in CI (CI=true), where they fail: CI installs the extra.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import imgdup
from imgdup import index, subsets
from imgdup.cli import main
from imgdup.plan import to_document

from .conftest import need, picture

REPO = Path(__file__).resolve().parents[1]


def _need(module: str) -> Any:
    return need(module, "test,dask")


@pytest.fixture(scope="module")
def engine() -> Any:
    return _need("imgdup.engine.dask")


@pytest.fixture(scope="module")
def client(engine: Any) -> Iterator[Any]:
    with engine.connect(jobs=2) as c:
        yield c


def _planted_hashes(n: int, bits: int, t: int, seed: int) -> list[int]:
    """Random hashes plus near copies at 1..t bits (and a few just past t), unique values."""
    rng = random.Random(seed)
    base = [rng.getrandbits(bits) for _ in range(n)]
    near = []
    for h in base[: n // 5]:
        for d in (1, t, t + 1):
            near.append(h ^ sum(1 << b for b in rng.sample(range(bits), min(d, bits))))
    return list(dict.fromkeys(base + near))


def _join_locally(hashes: list[int], t: int, bits: int, chunks: int | None, buckets: int, part: int) -> set[tuple]:
    """The pure kernels chained in one process: map partitions, then one reduce per bucket."""
    words = index.to_words(hashes, bits)
    ids = np.arange(len(hashes))
    plan = subsets.subset_plan(len(hashes), t, bits, chunks=chunks)
    maps = [subsets.emit_rows(ids[s : s + part], words[s : s + part], plan, buckets) for s in range(0, len(ids), part)]
    got: list[tuple[int, int, int]] = []
    for q in range(buckets):
        a, b, d = subsets.join_rows(subsets.concat_rows([m[q] for m in maps], words.shape[1]), plan, t)
        got += zip(a.tolist(), b.tolist(), d.tolist())
    assert len(got) == len(set(got)), "a pair came out of two subsets or buckets"
    return set(got)


# --- pure kernels (no cluster) ----------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    bits=st.sampled_from([16, 64, 256]),
    t=st.integers(0, 10),
    extra_chunks=st.integers(0, 3),
    buckets=st.integers(1, 4),
    seed=st.integers(0, 10_000),
)
def test_subset_join_matches_the_brute_force_oracle(
    bits: int, t: int, extra_chunks: int, buckets: int, seed: int
) -> None:
    t = min(t, bits)
    hashes = _planted_hashes(60, bits, t, seed)
    chunks = min(t + 1 + extra_chunks, bits, 64)
    expected = {(m.a, m.b, m.distance) for m in index.self_join(hashes, t, bits=bits, backend="brute")}
    assert _join_locally(hashes, t, bits, chunks, buckets, part=23) == expected


def test_rows_of_different_subsets_never_share_a_key() -> None:
    """A shared key is only a false candidate (the subset check drops it), but many of them
    would flood the buckets: keys must separate subsets."""
    hashes = _planted_hashes(4000, 64, 8, seed=5)
    plan = subsets.subset_plan(len(hashes), 8, 64, chunks=10)
    key, sub, _, _ = subsets.emit_rows(np.arange(len(hashes)), index.to_words(hashes, 64), plan, 1)[0]
    pairs = np.unique(np.stack([key, sub.astype(np.uint64)]), axis=1)
    assert len(np.unique(pairs[0])) == pairs.shape[1]


def test_cost_model_prefers_more_chunks_than_the_textbook_plan() -> None:
    for t in (4, 8):
        plan = subsets.subset_plan(1_000_000, t, 64)
        textbook = subsets.subset_plan(1_000_000, t, 64, chunks=t + 1)
        assert len(plan.widths) >= t + 1 and plan.agree == len(plan.widths) - t
        assert plan.cost < textbook.cost


def test_a_worker_that_cannot_see_a_folder_says_so(tmp_path: Path) -> None:
    """A Dask worker on a node where the dataset's mount was missing reported every file as "file
    disappeared while it was being scanned", which points at a race on the client's side; the
    files never moved (QA pass 35). A file gone from a folder that is there still reads so."""
    from imgdup.discover import discover
    from imgdup.hashing import GONE_REASON
    from imgdup.kernels import run_batch
    from imgdup.models import HashSettings

    for name in ("mount/a.png", "kept/b.png"):
        (tmp_path / name).parent.mkdir()
        picture(1).save(tmp_path / name)
    entries, _skipped, _failed = discover([tmp_path])
    shutil.rmtree(tmp_path / "mount")  # this worker does not see the folder
    (tmp_path / "kept" / "b.png").unlink()  # the folder is there, the file went
    gone, unseen = run_batch(entries, HashSettings(), isolate=False)  # in path order: kept/, mount/
    assert not isinstance(unseen, imgdup.ImageRecord) and not isinstance(gone, imgdup.ImageRecord)
    assert unseen.reason.startswith(f"its folder {tmp_path / 'mount'} is not there on the worker ") and unseen.transient
    assert "same paths" in unseen.reason
    assert gone.reason == GONE_REASON


def test_import_imgdup_does_not_import_dask() -> None:
    code = "import sys, imgdup, imgdup.cli; print([m for m in ('dask', 'distributed', 'pyarrow') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- on a LocalCluster -------------------------------------------------------------------------


def test_workers_may_isolate_a_decoder_in_a_child(client: Any) -> None:
    from imgdup.kernels import can_isolate

    assert all(client.run(can_isolate).values())


def test_a_replaced_worker_may_still_isolate_a_decoder(engine: Any) -> None:
    """connect() made its workers non-daemonic only while the cluster started: the nanny reads the
    setting again when it replaces a worker (one that died, or restart()), and the replacement
    came back daemonic, without the guarded child: a file that hangs its decoder then hung the
    run. Fails on the code before (QA pass 19)."""
    from imgdup.kernels import can_isolate

    dask = _need("dask")
    before = dask.config.get("distributed.worker.daemon", None)
    with engine.connect(jobs=1, dashboard_address=None) as c:
        c.restart()
        assert all(c.run(can_isolate).values())
    assert dask.config.get("distributed.worker.daemon", None) == before  # the setting ends with the client


def test_local_workers_leave_ctrl_c_to_the_driver(engine: Any) -> None:
    """Ctrl-C in the terminal reached connect()'s worker processes too (one process group): each
    printed a KeyboardInterrupt traceback, 70 lines of stderr for two workers before the
    driver's 'imgdup: interrupted'. They ignore SIGINT now, as the local engine's workers do, a
    replaced worker too. Fails on the code before (QA pass 19)."""
    with engine.connect(jobs=1, dashboard_address=None) as c:
        ignored = lambda: signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # noqa: E731
        assert all(c.run(ignored).values())
        c.restart()
        assert all(c.run(ignored).values())


@pytest.mark.parametrize(("bits", "t"), [(64, 4), (64, 8), (256, 12)])
def test_distributed_join_equals_local_mih(client: Any, engine: Any, bits: int, t: int) -> None:
    hashes = _planted_hashes(3000, bits, t, seed=bits + t)
    expected = index.self_join(hashes, t, bits=bits, backend="mih")
    assert len(expected) >= 600  # the planted pairs are there to be found
    # Small partitions and buckets: many map and reduce tasks, as at scale.
    a, b, d = engine.join_arrays(client, index.to_words(hashes, bits), t, bits, part_hashes=700, rows_per_bucket=9000)
    assert list(zip(a.tolist(), b.tolist(), d.tolist())) == [(m.a, m.b, m.distance) for m in expected]
    assert engine.self_join(client, hashes, t, bits=bits) == expected


@pytest.mark.parametrize("parts", [4])
def test_min_label_components_equal_union_find(client: Any, engine: Any, parts: int) -> None:
    from imgdup.cluster import components
    from imgdup.models import Match

    rng = np.random.default_rng(parts)
    n = 2000
    a, b = rng.integers(0, 1500, 300), rng.integers(0, 1500, 300)  # small components; 1500+: the chain
    chain = np.arange(1500, 1512)  # a 11-hop chain, numbered backwards: labels travel its whole length
    a, b = np.r_[a, chain[:-1][::-1]], np.r_[b, chain[1:][::-1]]
    halves = [(a[:150], b[:150]), (a[150:], b[150:])]
    labels, rounds = engine.min_label_components(client, n, halves, parts=parts)
    expected = np.empty(n, dtype=np.int64)
    for comp in components(n, [Match(int(x), int(y), 0) for x, y in zip(a, b)]):
        expected[comp] = comp[0]
    assert np.array_equal(labels, expected)
    assert 12 <= rounds <= 13


def _same_scan(local: imgdup.ScanResult, dask: imgdup.ScanResult) -> None:
    assert [(r.path, r.hash, r.digest) for r in dask.records] == [(r.path, r.hash, r.digest) for r in local.records]
    assert dask.failures == local.failures
    assert to_document(dask) == to_document(local)  # clusters, members, actions, keepers, summary
    assert [c.keep.path for c in dask.clusters] == [c.keep.path for c in local.clusters]


def test_dogs1000_identical_to_local_engine(client: Any, engine: Any, dogs: Path) -> None:
    local = imgdup.find_duplicates([dogs], threshold=8, jobs=2)
    seen: list[tuple[str, int, int]] = []
    dask = engine.find_duplicates([dogs], client=client, threshold=8, progress=lambda *a: seen.append(a))
    _same_scan(local, dask)
    hashed = [done for stage, done, total in seen if stage == "hash" and total == 1000]
    assert hashed[0] == 0 and hashed[-1] == 1000 and hashed == sorted(hashed) and len(hashed) >= 5  # per task
    assert len(dask.clusters) == 3 and dask.summary.to_remove == 7


def test_variant_set_identical_to_local_engine(client: Any, engine: Any, dogs: Path, tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO))
    try:
        build_scale_set = importlib.import_module("benchmarks.bench_e2e").build_scale_set
    finally:
        sys.path.remove(str(REPO))
    source = tmp_path / "src"
    source.mkdir()
    for p in sorted(dogs.iterdir())[:40]:
        shutil.copyfile(p, source / p.name)
    root = build_scale_set(source, tmp_path / "variants", 360)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")  # a per-file failure, both engines
    for t in (4, 8):
        local = imgdup.find_duplicates([root], threshold=t, jobs=2)
        dask = engine.find_duplicates([root], client=client, threshold=t, batch=64)
        _same_scan(local, dask)
        assert len(dask.clusters) >= 35 and len(dask.failures) == 1
        # the keep policy's quality measurements ran on the workers, with the same results
        assert [r.quality for r in dask.records] == [r.quality for r in local.records]
        assert sum(r.quality is not None for r in dask.records) >= 35


def test_two_folders_give_the_same_folder_summary_and_leaks(
    client: Any, engine: Any, dogs: Path, tmp_path: Path
) -> None:
    """The Dask engine left out the per-folder summary and the leak counts of a scan of several
    folders (``sets: []``, ``summary.leaks: 0``; the clusters were the same). QA pass 3."""
    photos = sorted(dogs.iterdir())[:12]
    for name, part in (("a", photos[:8]), ("b", photos[4:])):
        (tmp_path / name).mkdir()
        for p in part:
            shutil.copyfile(p, tmp_path / name / p.name)
    roots = [tmp_path / "a", tmp_path / "b"]
    local = imgdup.find_duplicates(roots, threshold=8, jobs=1)
    dask = engine.find_duplicates(roots, client=client, threshold=8)
    assert local.summary.leaks >= 4 and local.sets
    _same_scan(local, dask)
    with pytest.raises(imgdup.UsageError, match="reference: not with the Dask engine"):
        engine.find_duplicates(roots[:1], client=client, reference=roots[1:])  # a TypeError before


def test_removal_from_a_dask_scan_keeps_the_same_files(client: Any, engine: Any, dogs: Path, tmp_path: Path) -> None:
    copy = tmp_path / "dogs"
    shutil.copytree(dogs, copy)
    result = engine.find_duplicates([copy], client=client, threshold=4)
    done = imgdup.remove(result)
    assert len(done.removed) == 7 and not done.skipped
    assert len(os.listdir(copy)) == 993
    assert all(Path(c.keep.path).exists() for c in result.clusters)


def test_file_lists_parquet_and_csv(client: Any, engine: Any, dogs: Path, tmp_path: Path) -> None:
    pa = _need("pyarrow")
    pq = _need("pyarrow.parquet")
    files = sorted(str(p) for p in dogs.iterdir())[:120]
    pq.write_table(pa.table({"path": files}), tmp_path / "list.parquet")
    (tmp_path / "list.csv").write_text("path\n" + "\n".join(files) + "\n")
    local = imgdup.find_duplicates([dogs], threshold=8, jobs=1)
    wanted = {os.path.realpath(f) for f in files}
    expected = [(r.path, r.hash) for r in local.records if r.path in wanted]
    for name in ("list.parquet", "list.csv"):
        result = engine.find_duplicates([tmp_path / name], client=client, threshold=8)
        assert [(r.path, r.hash) for r in result.records] == expected


def _listed_copies(tmp_path: Path, seed: int, client: Any) -> tuple[Path, Path, list[str]]:
    """``data/a.png`` and its copy ``b.png``, listed in ``lists/list.csv``; the command's
    arguments to scan that list on the module's cluster."""
    data, lists = tmp_path / "data", tmp_path / "lists"
    data.mkdir()
    lists.mkdir()
    picture(seed).save(data / "a.png")
    shutil.copyfile(data / "a.png", data / "b.png")
    (lists / "list.csv").write_text(f"path\n{data / 'a.png'}\n{data / 'b.png'}\n")
    return data, lists, ["-d", str(lists / "list.csv"), "--engine", "dask", "--scheduler", client.scheduler.address,
                         "--no-cache"]  # fmt: skip


def test_removal_from_a_file_list_of_local_files(client: Any, tmp_path: Path, capsys: Any) -> None:
    """README's ``imgdup -d /shared/photos -d files.parquet --engine dask ... -r 1``: a list's roots
    were the list file itself, and the removal ended in "error: [Errno 20] Not a directory:
    '.../list.csv'" (nothing moved), the text naming its files by full paths (QA pass 20)."""
    data, _lists, args = _listed_copies(tmp_path, 3, client)
    assert main([*args, "-q", "-r", "1", "--quarantine", str(tmp_path / "q")]) == 0
    assert sorted(p.name for p in data.iterdir()) == ["a.png"]
    (manifest,) = (tmp_path / "q").glob("*/manifest.json")
    assert imgdup.undo(manifest).restored == (str(data / "b.png"),)
    capsys.readouterr()
    assert main([*args, "--no-progress"]) == 0
    assert f"roots: data = {data}" in capsys.readouterr().out


def test_an_html_report_beside_a_file_list_is_not_inside_a_scanned_folder(client: Any, tmp_path: Path) -> None:
    """``-d lists/list.csv --engine dask --report lists/r.html`` was refused before the scan: "would
    put its thumbnails inside the scanned folder lists" (the list taken for an image file there),
    though nothing in that folder is scanned (QA pass 20)."""
    data, lists, args = _listed_copies(tmp_path, 4, client)
    assert main([*args, "-q", "--report", str(lists / "r.html")]) == 0
    assert (lists / "r.html").is_file()
    assert main([*args, "-q", "--report", str(data / "r.html")]) == 2  # the listed files' folder is scanned


def test_a_file_that_kills_its_worker_is_one_failure(engine: Any, tmp_path: Path) -> None:
    """On a daemonic worker (no guarded child possible) a crash kills the worker: Dask retries,
    then the batch runs file by file and only the killer is reported."""
    dask = _need("dask")
    distributed = _need("distributed")
    cloudpickle = _need("cloudpickle")
    from imgdup.engine.sources import collect

    class CrashOnKill(distributed.WorkerPlugin):  # type: ignore[misc]
        """Stands in for a decoder segfault: hashing a file holding b"KILL" exits the worker."""

        def setup(self, worker: Any) -> None:
            import imgdup.kernels as kernels

            real = kernels.WORK["hash"]

            def work(entry: Any, settings: Any) -> Any:
                with open(entry.path, "rb") as fh:
                    if fh.read() == b"KILL":
                        os._exit(70)
                return real(entry, settings)

            kernels.WORK["hash"] = work

    for i in range(6):
        (tmp_path / f"{i}.jpg").write_bytes(b"not an image")
    (tmp_path / "3.jpg").write_bytes(b"KILL")
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        with (
            # daemonic on purpose: the module's client (connect) holds daemon=False while it is open
            dask.config.set({"distributed.scheduler.allowed-failures": 0, "distributed.worker.daemon": True}),
            distributed.Client(n_workers=1, threads_per_worker=1, dashboard_address=None) as c,
        ):
            c.register_plugin(CrashOnKill(), name="crash-on-kill")
            entries, *_ = collect([tmp_path])
            results = engine.run_batches(c, entries, imgdup.HashSettings(), batch=6)
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    reasons = {Path(r.path).name: r.reason for r in results}
    assert len(results) == 6
    assert "crashed its Dask worker" in reasons["3.jpg"]
    assert all("not an image" in why for name, why in reasons.items() if name != "3.jpg"), reasons


def test_cli_dask_engine_writes_the_same_report_and_tables(
    client: Any, dogs: Path, tmp_path: Path, capsys: Any
) -> None:
    """The command against a running scheduler (--scheduler tcp://...), as on a real cluster."""
    pq = _need("pyarrow.parquet")
    args = ["-d", str(dogs), "-t", "4", "--no-cache", "--no-progress", "--format", "json", "-j", "1"]
    assert main(args) == 0
    local = json.loads(capsys.readouterr().out)
    dask_args = [*args, "--engine", "dask", "--scheduler", client.scheduler.address]
    assert main([*dask_args, "--tables", str(tmp_path / "tables")]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out) == local
    assert "Parquet tables written" in out.err
    members = pq.read_table(tmp_path / "tables" / "members").to_pydict()
    clusters = pq.read_table(tmp_path / "tables" / "clusters").to_pydict()
    assert len(members["path"]) == 1000 and len(clusters["path"]) == 10
    assert sorted(clusters["action"]) == ["keep"] * 3 + ["remove"] * 7
    assert main([*dask_args, "--tables", str(tmp_path / "tables")]) == 2  # never mixed with old parts
    assert "already holds" in capsys.readouterr().err


def test_cli_dask_engine_decodes_under_the_pixel_limit_given(client: Any, tmp_path: Path, capsys: Any) -> None:
    """``--max-pixels`` holds on the Dask workers as in the local pool: a file over twice the
    limit is refused there, naming the option that raises it; raised, it is hashed. (The engine
    refused the option, while its bomb message suggested it.)"""
    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    picture(1, (400, 300)).save(tmp_path / "big.png")
    picture(2, (100, 80)).save(tmp_path / "small.png")
    args = ["-d", str(tmp_path), "--no-cache", "--no-progress", "--format", "json", "--engine", "dask",
            "--scheduler", client.scheduler.address]  # fmt: skip
    try:
        assert main([*args, "--max-pixels", "50000"]) == 3  # a file refused: partial
        doc = json.loads(capsys.readouterr().out)
        (failure,) = doc["failures"]
        assert failure["path"].endswith("big.png") and "decompression bomb" in failure["reason"]
        assert "--max-pixels" in failure["reason"] and doc["summary"]["images"] == 1
        Image.MAX_IMAGE_PIXELS = saved
        assert main([*args, "--max-pixels", "200000"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["failures"] == [] and doc["summary"]["images"] == 2
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def test_cli_quiet_dask_run_says_nothing_on_stderr(client: Any, tmp_path: Path, capsys: Any) -> None:
    """``-q`` is "only errors on stderr" (README, Options): with --engine dask it still printed the
    dashboard's link and "Parquet tables written to" (QA pass 20)."""
    data = tmp_path / "data"
    data.mkdir()
    picture(1).save(data / "a.png")
    shutil.copyfile(data / "a.png", data / "b.png")
    args = ["-d", str(data), "--no-cache", "-q", "--engine", "dask", "--scheduler", client.scheduler.address]
    assert main([*args, "--tables", str(tmp_path / "tables")]) == 0
    assert capsys.readouterr().err == ""
    assert (tmp_path / "tables" / "clusters").is_dir()


def test_a_dask_removal_puts_back_what_a_killed_permanent_run_left_aside(client: Any, tmp_path: Path) -> None:
    """``--remove 1`` puts back the files a killed ``--permanent`` run set aside before it scans,
    so the scan sees them; with --engine dask it did not, and a duplicate among them stayed for
    the run after, where the local engine removed it (QA pass 35)."""
    from .test_fsafe import _kill_between_rename_and_unlink, files_under, pair

    root = tmp_path / "data"
    pair(root, 60, keep="a.png", copy="b.png")
    shutil.copyfile(root / "a.png", root / "e.png")
    _kill_between_rename_and_unlink(root, "e.png")
    assert not (root / "e.png").exists()
    args = ["-d", str(root), "-r", "1", "--permanent", "--quarantine", str(tmp_path / "q"), "--no-cache", "-q"]
    assert main([*args, "--engine", "dask", "--scheduler", client.scheduler.address]) == 0
    assert sorted(files_under(root)) == ["a.png"]  # e.png put back, scanned, removed


def test_one_folder_as_roots_is_one_folder(client: Any, engine: Any, tmp_path: Path) -> None:
    """``find_duplicates("photos", client=c)``, as the local engine takes it (README, "Python
    API"): the Dask engine read the string as its characters ("not a directory: p", QA pass 20)."""
    data = tmp_path / "photos"
    data.mkdir()
    picture(2).save(data / "a.png")
    shutil.copyfile(data / "a.png", data / "b.png")
    one = engine.find_duplicates(str(data), client=client)
    assert one.roots == engine.find_duplicates([str(data)], client=client).roots == (str(data),)
    assert one.summary.to_remove == 1
    assert engine.find_duplicates(data, client=client).summary.to_remove == 1


def test_cli_refuses_removal_of_object_store_files(capsys: Any) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["-d", "s3://bucket/photos", "--engine", "dask", "-r", "1"])
    assert exc.value.code == 2
    assert "report-only" in capsys.readouterr().err


def _table(path: Path) -> dict[str, list[Any]]:
    return _need("pyarrow.parquet").read_table(path).to_pydict()  # type: ignore[no-any-return]


def test_tables_hold_names_that_are_not_utf8_and_every_link(client: Any, engine: Any, tmp_path: Path) -> None:
    """write_tables raised UnicodeEncodeError on a file name that is not UTF-8 (the command ended
    in a traceback, no report written), and the clusters table left out via/via_distance, the
    link that puts a far member in its cluster (issue 9). Fails on the code before (QA pass 19)."""
    from imgdup.names import from_escaped

    root = tmp_path / "set"
    root.mkdir()
    odd = os.fsdecode(os.path.join(os.fsencode(root), b"caf\xe9 \\ 'b.jpg"))  # Latin-1, a backslash, a quote
    picture(7).save(odd, "JPEG", quality=95)
    picture(7).save(root / "a.jpg", quality=60)
    picture(8).save(root / "alone.png")
    result = engine.find_duplicates([root], client=client, threshold=8)
    assert [m.record.path for m in result.clusters[0].members] == [odd, str(root / "a.jpg")]  # the premise
    # A far member, as a chain of near copies gives (the join decides it; here set by hand).
    far = dataclasses.replace(
        result.clusters[0].members[1], distance=20, via=odd, via_distance=5, linked_by="part of the picture"
    )
    result = dataclasses.replace(
        result, clusters=(dataclasses.replace(result.clusters[0], members=(result.clusters[0].members[0], far)),)
    )
    assert engine.write_tables(client, result, str(tmp_path / "t")) == {"members": 3, "clusters": 2}
    members, clusters = _table(tmp_path / "t" / "members"), _table(tmp_path / "t" / "clusters")
    assert [os.fsencode(from_escaped(p)) for p in members["path"]] == [os.fsencode(r.path) for r in result.records]
    assert [from_escaped(p) for p in members["relpath"]] == [r.entry.relpath for r in result.records]
    assert {from_escaped(p) for p in members["root"]} == {str(root)}
    assert [from_escaped(p) for p in clusters["path"]] == [odd, str(root / "a.jpg")]
    assert clusters["distance"] == [0, 20] and clusters["via_distance"] == [None, 5]
    assert clusters["linked_by"] == [None, "part of the picture"]
    assert [None if v is None else from_escaped(v) for v in clusters["via"]] == [None, odd]


def test_tables_are_written_when_they_have_no_rows(client: Any, engine: Any, tmp_path: Path) -> None:
    """A scan with no duplicates wrote no clusters table, an empty folder no table at all, while
    the command said "Parquet tables written": a reader of run/clusters failed with
    FileNotFoundError on a clean dataset. Fails on the code before (QA pass 19)."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "unique").mkdir()
    for k in range(3):
        picture(30 + k).save(tmp_path / "unique" / f"{k}.png")
    for name, images in (("empty", 0), ("unique", 3)):
        out = tmp_path / f"tables-{name}"
        result = engine.find_duplicates([tmp_path / name], client=client, tables=str(out))
        assert engine.write_tables(client, result, str(out)) == {"members": images, "clusters": 0}
        assert list(_table(out / "members")) == [*engine.TABLE_COLUMNS["members"]]
        assert len(_table(out / "members")["path"]) == images
        assert _table(out / "clusters") == {k: [] for k in engine.TABLE_COLUMNS["clusters"]}
        assert _table(out / "pairs") == {k: [] for k in engine.TABLE_COLUMNS["pairs"]}


@pytest.mark.parametrize("jobs", [0, -1])
def test_a_local_cluster_needs_one_worker_at_least(engine: Any, jobs: int, capsys: Any) -> None:
    """-j -1 started a LocalCluster with no worker, and the run waited for one forever; -j 0 was
    taken as 'all cores', where the local engine refuses both. Fails on the code before (QA pass 19)."""
    with pytest.raises(imgdup.UsageError, match="at least 1"):
        engine.connect(jobs=jobs)
    assert main(["-d", ".", "--engine", "dask", "-j", str(jobs), "--no-cache", "--no-progress"]) == 2
    assert "jobs must be a whole number of worker processes, at least 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    "address",
    [
        "nonsense", "tcp://127.0.0.1:port", "foo://127.0.0.1:8786",
        # each waited 30 s for Dask's connect timeout (QA pass 33)
        "tcp://127.0.0.1:99999", "tcp://127.0.0.1:65536", "tcp://127.0.0.1:0", "tcp://:8786",
    ],
)  # fmt: skip
def test_a_malformed_scheduler_address_is_a_usage_error(
    engine: Any, address: str, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """distributed's ValueError ended the command in a traceback (exit 1). QA pass 19: fails before.
    No Client is made for such an address: one whose constructor failed was left half-built, and
    its finaliser, run by the garbage collector inside the next Client's start, deadlocked the
    test process (CI hung on the third of these, after the first two)."""

    def no_client(*args: object, **kwargs: object) -> None:
        raise AssertionError("a Client was made for a malformed address")

    monkeypatch.setattr(engine, "Client", no_client)
    with pytest.raises(imgdup.UsageError, match="scheduler address"):
        engine.connect(address)
    assert main(["-d", ".", "--engine", "dask", "--scheduler", address, "--no-cache", "--no-progress"]) == 2
    err = capsys.readouterr().err
    # (an earlier test's cluster may still log its shutdown here, from its own threads: the
    # command's own line is looked for, not the first one)
    assert any(line.startswith("imgdup: error: bad scheduler address") and address in line for line in err.splitlines())
    assert "ValueError" not in err


def test_a_tables_folder_that_cannot_be_written_is_refused_before_the_scan(
    client: Any, engine: Any, tmp_path: Path
) -> None:
    """--tables under a file (or anywhere not writable) failed only in the search's reduce tasks,
    after every file was hashed: the scan was lost, with no report, and the message
    ('[Errno 20] Not a directory') did not name --tables. Fails on the code before (QA pass 19)."""
    (tmp_path / "set").mkdir()
    for k in range(2):
        picture(40 + k).save(tmp_path / "set" / f"{k}.png")
    (tmp_path / "file").write_text("")
    stages: list[str] = []
    with pytest.raises(imgdup.UsageError, match=r"cannot write the tables to .*file/t"):
        engine.find_duplicates(
            [tmp_path / "set"],
            client=client,
            tables=str(tmp_path / "file" / "t"),
            progress=lambda s, *_: stages.append(s),
        )
    assert stages == []  # nothing was hashed


def test_cli_refuses_a_tables_folder_before_it_starts_a_cluster(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A --tables folder that already holds tables is refused before the scan, but only after a
    local cluster of -j workers was started (its dashboard line printed, and once in a while its
    shutdown's CommClosedError): the check needs no cluster (QA pass 34)."""
    dask_engine = pytest.importorskip("imgdup.engine.dask")
    (tmp_path / "set").mkdir()
    picture(42).save(tmp_path / "set" / "a.png")
    (tmp_path / "tables" / "members").mkdir(parents=True)
    started: list[object] = []
    monkeypatch.setattr(dask_engine, "connect", lambda *a, **_k: started.append(a) or pytest.fail("a cluster started"))
    code = main(["-d", str(tmp_path / "set"), "--engine", "dask", "--tables", str(tmp_path / "tables"), "--no-cache"])
    assert code == 2 and not started
    assert "already holds a members table" in capsys.readouterr().err


def test_cli_refuses_removal_of_object_store_files_named_by_a_file_list(tmp_path: Path, capsys: Any) -> None:
    """A .csv or .parquet file list naming s3:// objects passed the report-only check (it looked at
    the -d strings only): the whole scan ran, then the removal stopped on 'Not a directory:
    list.csv' (exit 1, nothing removed, the scan lost). Fails on the code before (QA pass 19)."""
    pa = _need("pyarrow")
    pq = _need("pyarrow.parquet")
    (tmp_path / "list.csv").write_text("path\n/local/a.jpg\ns3://bucket/photos/b.jpg\n")
    pq.write_table(pa.table({"path": ["gs://bucket/c.jpg"]}), tmp_path / "list.parquet")
    for name in ("list.csv", "list.parquet"):
        with pytest.raises(SystemExit) as exc:
            main(["-d", str(tmp_path / name), "--engine", "dask", "-r", "1", "--no-cache"])
        assert exc.value.code == 2
        assert "report-only" in capsys.readouterr().err


def test_roots_are_taken_as_the_local_engine_takes_them(engine: Any, client: Any, tmp_path: Path) -> None:
    picture(1).save(tmp_path / "a.png")
    shutil.copyfile(tmp_path / "a.png", tmp_path / "b.png")
    local = imgdup.find_duplicates(tmp_path, jobs=1)
    for roots in (bytes(tmp_path), [bytes(tmp_path)], (p for p in [tmp_path])):  # bytes raised TypeError
        dask = engine.find_duplicates(roots, client=client, threshold=np.int64(8))  # so did np.int64
        assert dask.roots == local.roots and dask.clusters == local.clusters
    with pytest.raises(imgdup.UsageError, match=r"^roots\[1\] is not a path: None$"):
        engine.find_duplicates([tmp_path, None], client=client)
    with pytest.raises(imgdup.UsageError, match=r"^client must be a dask\.distributed\.Client .*got NoneType$"):
        engine.find_duplicates(tmp_path, client=None)  # it raised AttributeError once the files were listed
    for option, value in (("cache", 3), ("progress", True)):  # a TypeError once the files were listed / mid-scan
        with pytest.raises(imgdup.UsageError, match=f"^{option} must be"):
            engine.find_duplicates(tmp_path, client=client, **{option: value})


def test_a_scheduler_lost_during_the_run_is_one_error_line(
    engine: Any, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler's process killed while the scan ran: the command ended in a traceback of
    distributed's FutureCancelledError ("scheduler-connection-lost"), with no ``imgdup: error:``
    line (QA pass 33). A real scheduler in a process of its own is killed just before the first
    batch is handed over."""
    root = tmp_path / "data"
    root.mkdir()
    for k in range(4):
        picture(k).save(root / f"{k}.png")
    shutil.copyfile(root / "0.png", root / "copy.png")
    address = tmp_path / "address"
    script = (
        "import os, sys, time\n"
        "from dask.distributed import LocalCluster\n"
        "if __name__ == '__main__':\n"
        "    c = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None)\n"
        f"    open({str(address)!r} + '.tmp', 'w').write(c.scheduler_address)\n"
        f"    os.rename({str(address)!r} + '.tmp', {str(address)!r})\n"
        "    time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        for _ in range(600):
            if address.exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert address.exists(), "the scheduler did not start"
        real = engine.run_batches

        def killed_first(*args: Any, **kwargs: Any) -> Any:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            return real(*args, **kwargs)

        monkeypatch.setattr(engine, "run_batches", killed_first)
        args = ["-d", str(root), "--engine", "dask", "--scheduler", address.read_text(), "--no-cache", "--no-progress"]
        with _need("dask").config.set({"distributed.comm.timeouts.connect": "2s"}):  # the client gives up sooner
            assert main([*args, "-r", "1"]) == 1
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("imgdup: error:")]
    assert lines and "lost the Dask scheduler" in lines[-1] and "nothing was removed" in lines[-1], lines
    assert sorted(p.name for p in root.iterdir()) == ["0.png", "1.png", "2.png", "3.png", "copy.png"]


def test_the_pairs_table_holds_the_members_hash_pairs_each_once(client: Any, engine: Any, tmp_path: Path) -> None:
    """With regions (the default) the search runs the join three times (whole pictures, then top
    and bottom halves), and each run wrote pairs/part-00000.parquet over the last: the table held
    bottom halves' hashes, none of them a member's; with --rotations, turned versions. It now
    holds every pair of distinct members' hash values within the threshold, once each, with
    regions and rotations alike. Fails on the code before (QA pass 35)."""
    root = tmp_path / "set"
    root.mkdir()
    for k in range(4):
        img = picture(60 + k)
        img.save(root / f"{k}.png")
        img.save(root / f"{k}-q40.jpg", quality=40)
        img.resize((160, 120)).save(root / f"{k}-half.jpg", quality=70)
    # regions on (the default) and turned versions too: the searches that joined other values
    result = engine.find_duplicates([root], client=client, threshold=8, rotations=True, tables=str(tmp_path / "t"))
    values = sorted({r.hash for r in result.records if not r.low_information})
    expected = sorted(
        (f"{a:016x}", f"{b:016x}", (a ^ b).bit_count())
        for i, a in enumerate(values)
        for b in values[i + 1 :]
        if (a ^ b).bit_count() <= 8
    )
    assert len(expected) >= 2  # copies a few bits apart, the premise
    pairs = _table(tmp_path / "t" / "pairs")
    assert sorted(zip(pairs["a"], pairs["b"], pairs["distance"])) == expected


def test_a_folder_nested_in_another_is_not_a_second_root(client: Any, engine: Any, tmp_path: Path) -> None:
    """``-d data -d data/sub``: the local engine drops the nested root (the same files), the Dask
    engine kept it, and every cluster of a file in data with its copy in data/sub was reported
    as a leak between the two folders. Fails on the code before (QA pass 35)."""
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    for k in range(2):
        picture(70 + k).save(data / f"{k}.png")
        shutil.copyfile(data / f"{k}.png", data / "sub" / f"{k}.png")
    roots = [data, data / "sub"]
    local = imgdup.find_duplicates(roots, jobs=1)
    assert local.roots == (str(data),) and len(local.clusters) == 2  # the premise
    dask = engine.find_duplicates(roots, client=client)
    assert dask.roots == local.roots and dask.summary.leaks == 0
    _same_scan(local, dask)


def test_a_relative_tables_folder_is_the_drivers(client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--tables rel-tables`` was resolved by each worker in its own working directory (a
    hand-started, Slurm or Kubernetes worker's): the command said "Parquet tables written to
    rel-tables" and the folder it checked and made stayed empty. Fails on the code before (QA pass 35)."""
    data, driver, elsewhere = tmp_path / "data", tmp_path / "driver", tmp_path / "worker-home"
    for folder in (data, driver, elsewhere):
        folder.mkdir()
    picture(80).save(data / "a.png")
    shutil.copyfile(data / "a.png", data / "b.png")
    monkeypatch.chdir(driver)
    before = client.run(os.getcwd)
    client.run(os.chdir, str(elsewhere))  # the workers run somewhere else, as on a cluster
    try:
        args = ["-d", str(data), "--no-cache", "-q", "--engine", "dask", "--scheduler", client.scheduler.address]
        assert main([*args, "--tables", "rel-tables"]) == 0
    finally:
        for worker, cwd in before.items():
            client.run(os.chdir, cwd, workers=[worker])
    assert sorted(p.name for p in (driver / "rel-tables").iterdir()) == ["clusters", "members", "pairs"]
    assert not list(elsewhere.iterdir())


def test_a_scheduler_address_where_nothing_answers_is_an_error(engine: Any, tmp_path: Path, capsys: Any) -> None:
    """--scheduler at a port where something listens but never answers (a proxy, a firewall, the
    dashboard's HTTP port): distributed waits for the handshake's answer with no limit, and the
    command waited forever, where README promises an error after the connect timeout. A local
    socket accepts (the kernel does) and never answers. Fails on the code before (QA pass 35)."""
    import socket
    import threading

    dask = _need("dask")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    args = ["-d", str(tmp_path), "--engine", "dask", "--scheduler", address, "--no-cache", "-q"]
    codes: list[int] = []
    try:
        with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
            run = threading.Thread(target=lambda: codes.append(main(args)), daemon=True)
            run.start()
            run.join(20)  # the code before never returned: the thread is left behind, the test fails
    finally:
        listener.close()  # the connection is reset: a thread left behind ends too
    assert codes == [1]
    err = capsys.readouterr().err
    assert any(line.startswith("imgdup: error: ") and address in line for line in err.splitlines()), err


def test_a_cached_file_is_held_to_the_pixel_limit_given(client: Any, tmp_path: Path, capsys: Any) -> None:
    """With --engine dask a file hashed under a higher --max-pixels was served from the cache at a
    lower one (exit 0, the file in the report), where the local engine and a cold Dask run refuse
    it: the engine read the cache without this run's limit. Fails on the code before (QA pass 35)."""
    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    data = tmp_path / "data"
    data.mkdir()
    picture(81, (400, 300)).save(data / "big.png")
    picture(82, (100, 80)).save(data / "small.png")
    args = ["-d", str(data), "--cache", str(tmp_path / "cache.db"), "--no-progress", "--format", "json",
            "--engine", "dask", "--scheduler", client.scheduler.address]  # fmt: skip
    try:
        assert main([*args, "--max-pixels", "200000"]) == 0  # both hashed, and cached
        capsys.readouterr()
        assert main([*args, "--max-pixels", "50000"]) == 3
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    doc = json.loads(capsys.readouterr().out)
    (failure,) = doc["failures"]
    assert failure["path"].endswith("big.png") and "--max-pixels 120000" in failure["reason"]
    assert doc["summary"]["images"] == 1


def test_a_local_worker_that_dies_at_start_is_one_error_line(engine: Any, tmp_path: Path) -> None:
    """A local worker that died while the cluster started (the out-of-memory killer, a broken
    worker environment) ended the command in a 59-line traceback of distributed's "Nanny failed
    to start.", with no ``imgdup: error:`` line. A worker preload that cannot be imported stands
    in for it; in a process of its own, as a Client whose start failed is left half-built (see
    test_a_malformed_scheduler_address_is_a_usage_error). Fails on the code before (QA pass 35)."""
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__PRELOAD": '["imgdup_no_such_module"]'}
    code = "import sys; from imgdup.cli import main; sys.exit(main(sys.argv[1:]))"
    args = ["-d", str(tmp_path), "--engine", "dask", "-j", "1", "--no-cache", "-q"]
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("imgdup: error: could not start the local Dask cluster: Nanny failed to start."), last
    assert "imgdup_no_such_module" in last


def test_an_image_file_as_a_root_is_taken_as_the_local_engine_takes_it(
    client: Any, engine: Any, tmp_path: Path, capsys: Any
) -> None:
    """``-d data -d lone.jpg``: the local engine takes an image file given as a root as it is
    (README, "Python API"); the Dask engine refused it, "not a directory: lone.jpg", exit 2,
    after its cluster had started. Fails on the code before (QA pass 35)."""
    data = tmp_path / "data"
    data.mkdir()
    picture(80).save(data / "a.png")
    picture(81).save(data / "b.png")
    shutil.copyfile(data / "a.png", tmp_path / "lone.png")
    shutil.copyfile(data / "b.png", data / "c.png")
    for roots in ([data, tmp_path / "lone.png"], [tmp_path / "lone.png"], [data, data / "b.png"]):
        local = imgdup.find_duplicates(roots, jobs=1)
        dask = engine.find_duplicates(roots, client=client)
        assert dask.roots == local.roots and dask.sets == local.sets
        _same_scan(local, dask)
    assert len(local.clusters) == 1  # the premise: data/b.png, given twice, is one file
    args = ["-d", str(data), "-d", str(tmp_path / "lone.png"), "--engine", "dask", "--no-cache", "-q"]
    assert main([*args, "--scheduler", client.scheduler.address, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["leaks"] == 1


def test_cli_refuses_a_missing_root_before_it_starts_a_cluster(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``-d /nonexistent-folder --engine dask`` was refused "not a directory" only once a local
    cluster of -j workers had started, seconds later; the local engine says "not a directory or a
    file" at once. Fails on the code before (QA pass 35)."""
    dask_engine = pytest.importorskip("imgdup.engine.dask")
    (tmp_path / "notes.txt").write_text("not an image\n")
    monkeypatch.setattr(dask_engine, "connect", lambda *a, **_k: pytest.fail("a cluster started"))
    for root, said in (
        (tmp_path / "gone", f"not a directory or a file: {tmp_path / 'gone'}"),
        (tmp_path / "notes.txt", "is neither a folder nor an image file"),
    ):
        assert main(["-d", str(root), "--engine", "dask", "--no-cache"]) == 2
        assert said in capsys.readouterr().err


def test_cli_quiet_drops_distributeds_own_log_lines_for_the_run(
    client: Any, engine: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``-q`` is "only errors on stderr", and distributed's own lines still reached it: the nanny's
    "Restarting worker", "Worker process still alive after 4.0 seconds, killing" and the workers'
    "Async instruction ... ended with CancelledError" on Ctrl-C, a failed task's "Compute Failed".
    During a -q run on a local cluster, here the module's, neither this process nor a worker logs
    them; after it, both log as before. Fails on the code before (QA pass 35)."""
    import contextlib
    import logging

    data = tmp_path / "data"
    data.mkdir()
    picture(90).save(data / "a.png")

    def loud() -> list[bool]:  # whether a distributed line of each kind would be written
        return [logging.getLogger(n).isEnabledFor(logging.WARNING) for n in ("distributed.nanny", "distributed.client")]

    seen: dict[str, Any] = {}
    scan = engine.find_duplicates

    def watched(*args: Any, **kwargs: Any) -> Any:
        seen["driver"] = loud()
        seen["workers"] = sorted(client.run(loud).values())
        return scan(*args, **kwargs)

    monkeypatch.setattr(engine, "connect", lambda *_a, **_k: contextlib.nullcontext(client))  # the module's
    monkeypatch.setattr(engine, "find_duplicates", watched)
    before = loud()
    assert before == [True, True] and all(w == before for w in client.run(loud).values())  # the premise
    try:
        assert main(["-d", str(data), "--engine", "dask", "--no-cache", "-q"]) == 0
        assert seen == {"driver": [False, False], "workers": [[False, False]] * 2}
    finally:
        client.unregister_worker_plugin("imgdup-quiet-logs")
    assert loud() == before and all(w == before for w in client.run(loud).values())
    assert main(["-d", str(data), "--engine", "dask", "--no-cache", "--no-progress"]) == 0  # not quiet
    assert seen == {"driver": before, "workers": [before] * 2}
