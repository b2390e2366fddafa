"""The accuracy benchmark's generator and evaluator, on a tiny synthetic dataset (no dogs-1000)."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # benchmarks/ is not an installed package
    sys.path.insert(0, str(REPO_ROOT))
generate = importlib.import_module("benchmarks.accuracy.generate")
evaluate = importlib.import_module("benchmarks.accuracy.evaluate")
sweep = importlib.import_module("benchmarks.accuracy.sweep")

N_SOURCES, N_DISTRACTORS = 2, 2


def _photo(seed: int, size: tuple[int, int] = (160, 120)) -> Image.Image:
    """A deterministic, non-square picture with some structure (so hashes have something to see)."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, size[0])[None, :, None]
    y = np.linspace(0, 1, size[1])[:, None, None]
    base = (rng.random(3) * 255 * x + rng.random(3) * 255 * y) % 256
    img = Image.fromarray(base.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, size[0] - 20)), int(rng.integers(0, size[1] - 20))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        draw.ellipse((x0, y0, x0 + int(rng.integers(10, 60)), y0 + int(rng.integers(10, 60))), fill=color)
    return img


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any], Path]:
    """Source photos (one byte-identical duplicate among them), the dataset and its truth."""
    base = tmp_path_factory.mktemp("acc")
    photos = base / "photos"
    photos.mkdir()
    for i in range(N_SOURCES + N_DISTRACTORS):
        _photo(i).save(photos / f"dog_{i:02d}.jpg", quality=95)
    (photos / "dog_99.jpg").write_bytes((photos / "dog_00.jpg").read_bytes())  # must be ignored
    out = base / "dataset"
    truth_path = generate.default_truth_path(out)
    truth = generate.generate(photos, out, truth_path, seed=1, n_sources=N_SOURCES, n_distractors=N_DISTRACTORS)
    return photos, out, truth, truth_path


def test_byte_identical_inputs_are_deduplicated(built: tuple[Path, Path, dict[str, Any], Path]) -> None:
    photos, _out, truth, _ = built
    kept, dropped = generate.unique_photos(photos)
    assert dropped == 1 and len(kept) == N_SOURCES + N_DISTRACTORS
    used = [f["source"] for f in truth["files"] if f["transform"] in ("original", "distractor")]
    assert len(used) == len(set(used)) == N_SOURCES + N_DISTRACTORS
    assert not {"dog_00.jpg", "dog_99.jpg"} <= set(used)


def test_truth_lies_beside_the_dataset(built: tuple[Path, Path, dict[str, Any], Path], tmp_path: Path) -> None:
    photos, out, truth, truth_path = built
    assert truth_path.is_file() and out not in truth_path.parents
    assert json.loads(truth_path.read_text()) == truth
    on_disk = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert on_disk == sorted(f["relpath"] for f in truth["files"])
    assert len(on_disk) == N_SOURCES * (len(generate.TRANSFORMS) + 1) + N_DISTRACTORS
    with pytest.raises(generate.GenerateError):
        generate.generate(photos, tmp_path / "ds", tmp_path / "ds" / "truth.json", n_sources=1)


def test_names_reveal_nothing(built: tuple[Path, Path, dict[str, Any], Path]) -> None:
    _photos, _out, truth, _ = built
    words = {t.name for t in generate.TRANSFORMS} | {"original", "distractor", "dog", "copy", "jpeg_q"}
    for f in truth["files"]:
        rel = f["relpath"]
        assert re.fullmatch(r"([0-9a-z]{2,6}/)*[0-9a-z]{12}\.(jpe?g|png|webp)", rel, re.IGNORECASE), rel
        stem = rel.rsplit(".", 1)[0].lower()  # the extension names the format, as it must
        assert not any(w in stem for w in words), rel
    assert any("/" in f["relpath"] for f in truth["files"])  # nested folders are used
    transforms = {f["transform"] for f in truth["files"]}
    assert transforms == {t.name for t in generate.TRANSFORMS} | {"original", "distractor"}
    hard = {f["transform"] for f in truth["files"] if f["hard"]}
    edits_hard = {name for name, is_hard, *_ in importlib.import_module("benchmarks.accuracy.edits").EDITS if is_hard}
    assert hard == {"flip", "rotate_90", "crop_20"} | edits_hard
    assert all(f["group"] is None for f in truth["files"] if f["transform"] == "distractor")


def test_exif_rotated_variant_displays_upright(built: tuple[Path, Path, dict[str, Any], Path]) -> None:
    _photos, out, truth, _ = built
    by_key = {(f["group"], f["transform"]): f["relpath"] for f in truth["files"]}
    for group in range(N_SOURCES):
        with Image.open(out / by_key[(group, "original")]) as im:
            original = im.convert("RGB")
        with Image.open(out / by_key[(group, "exif_rotated")]) as im:
            assert im.getexif().get(generate.EXIF_ORIENTATION) in (6, 8)
            assert im.size == original.size[::-1]  # the stored pixels really are rotated
            upright = ImageOps.exif_transpose(im).convert("RGB")
        assert upright.size == original.size
        diff = np.abs(np.asarray(upright, np.int16) - np.asarray(original, np.int16)).mean()
        assert diff < 8, diff  # same picture up to JPEG noise, not a mirrored or upside-down one


def _report(truth: dict[str, Any], clusters: list[list[str]]) -> dict[str, Any]:
    """A hand-made imgdup.report/1: the first member of each cluster is kept, the rest removed."""
    root = truth["dataset"]
    return {
        "schema": "imgdup.report/1",
        "roots": [root],
        "clusters": [
            {
                "id": i,
                "keep": f"{root}/{rels[0]}",
                "members": [
                    {
                        "path": f"{root}/{r}",
                        "root": root,
                        "relpath": r,
                        "action": "keep" if j == 0 else "remove",
                    }
                    for j, r in enumerate(rels)
                ],
            }
            for i, rels in enumerate(clusters)
        ],
        "failures": [],
    }


def _groups(truth: dict[str, Any]) -> dict[int, list[str]]:
    """Each source's files, original first."""
    out: dict[int, list[str]] = {}
    for f in sorted(truth["files"], key=lambda f: f["transform"] != "original"):
        if f["group"] is not None:
            out.setdefault(f["group"], []).append(f["relpath"])
    return out


def test_perfect_report_scores_one(built: tuple[Path, Path, dict[str, Any], Path]) -> None:
    truth = built[2]
    result = evaluate.evaluate(_report(truth, list(_groups(truth).values())), truth)
    for split in ("expected", "hard", "all"):
        p = result["pairs"][split]
        assert p["precision"] == p["recall"] == p["f1"] == 1.0
        assert p["wrong_pairs"] == 0
        assert result["variant_recall"][split]["recall"] == 1.0
    n = len(generate.TRANSFORMS) + 1
    assert result["pairs"]["all"]["true_pairs"] == N_SOURCES * n * (n - 1) // 2
    h = sum(t.hard for t in generate.TRANSFORMS)  # pairs touching a hard transform are "hard"
    assert result["pairs"]["hard"]["true_pairs"] == N_SOURCES * (n * (n - 1) // 2 - (n - h) * (n - h - 1) // 2)
    removal = result["removal"]
    assert removal["lost_pictures"] == 0 and removal["wrongly_removed"]["all"] == 0
    assert removal["best_copy_kept"]["pct"] == 100.0


def test_merged_groups_and_distractors_are_counted_exactly(
    built: tuple[Path, Path, dict[str, Any], Path],
) -> None:
    truth = built[2]
    groups = _groups(truth)
    a, b = groups[0], groups[1]
    d0, _d1 = (f["relpath"] for f in truth["files"] if f["group"] is None)
    upscale = next(f["relpath"] for f in truth["files"] if f["group"] == 1 and f["transform"] == "upscale_150")
    # One cluster: group 1 kept as its upscale, all of group 0 and one distractor; d1 stays a singleton.
    merged = [upscale] + [r for r in b if r != upscale] + a + [d0]
    result = evaluate.evaluate(_report(truth, [merged]), truth)

    n, hard = len(a), sum(t.hard for t in generate.TRANSFORMS)  # files per source; hard transforms
    pairs = result["pairs"]
    assert pairs["all"]["wrong"] == {
        "cross_source": n * n,
        "distractor_variant": 2 * n,
        "distractor_distractor": 0,
    }
    assert pairs["all"]["wrong_pairs"] == n * n + 2 * n
    assert pairs["all"]["correct_pairs"] == pairs["all"]["true_pairs"] == 2 * (n * (n - 1) // 2)
    assert pairs["all"]["precision"] == pytest.approx(n * (n - 1) / (n * (n - 1) + n * n + 2 * n))
    assert pairs["all"]["recall"] == 1.0
    assert pairs["hard"]["wrong"]["cross_source"] == n * n - (n - hard) ** 2
    assert pairs["hard"]["wrong"]["distractor_variant"] == 2 * hard
    assert pairs["expected"]["wrong_pairs"] == (n - hard) ** 2 + 2 * (n - hard)
    assert result["counts"]["mixed_clusters"] == 1
    assert result["variant_recall"]["all"]["found"] == 2 * (n - 1)

    removal = result["removal"]
    assert removal["lost_groups"] == 1 and removal["lost_distractors"] == 1 and removal["lost_pictures"] == 2
    assert removal["wrongly_removed"] == {"expected": n - hard + 1, "hard": hard, "all": n + 1}
    assert removal["best_copy_kept"] == {"best": 0, "eligible": 1, "pct": 0.0}
    assert removal["keeper_transforms"] == {"upscale_150": 1}
    assert "cross" in evaluate.format_text(result)


def test_sweep_table_has_one_row_per_run(built: tuple[Path, Path, dict[str, Any], Path]) -> None:
    truth = built[2]
    result = evaluate.evaluate(_report(truth, list(_groups(truth).values())), truth)
    settings = {"hash": "phash", "hash_size": 8, "threshold": 4, "decode": "draft"}
    runs = [sweep.Run("phash", 8, t, 0.1, result, {**settings, "threshold": t}) for t in (2, 4)]
    table = sweep.markdown(runs, truth, "python -m benchmarks.accuracy.sweep")
    assert "| phash | 64 | 2 | 1.000 | 1.000 | 1.000 |" in table
    assert "| phash | 64 | 4 | 1.000 |" in table
    assert 'decode="draft"' in table
    assert sweep.thresholds_for(8, {8: [4, 0, 4]}) == [0, 4]
    assert sweep.thresholds_for(32, {}) == [t * 16 for t in sweep.THRESHOLDS[8]]


def test_missing_source_folder_exits_non_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = generate.main(["--source", str(tmp_path / "nope"), "--out", str(tmp_path / "ds")])
    assert rc != 0
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "ds").exists()


def test_benchmarks_time_imgdup_with_its_bytecode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The timed commands import imgdup as an install does, from bytecode: without it, a run
    that writes no bytecode compiles every changed module again in each timed command."""
    common = importlib.import_module("benchmarks._common")
    package = tmp_path / "imgdup"
    package.mkdir()
    (package / "__init__.py").write_text("VALUE = 1\n")
    (package / "stage.py").write_text("def f() -> int:\n    return 2\n")
    monkeypatch.chdir(tmp_path)  # `python -m imgdup` from here finds this package first
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    folder = common.byte_compile_imgdup()
    assert Path(folder) == package
    for module in ("__init__", "stage"):
        assert Path(importlib.util.cache_from_source(str(package / f"{module}.py"))).is_file()


def test_a_timed_commands_peak_memory_is_its_own_not_the_benchmarks(tmp_path: Path) -> None:
    """A child that Python starts execs from the parent's memory, and Linux gives the new process
    the peak resident set of the memory it replaces: every timed command's peak read at least the
    benchmark's own (all six commands of the mixed set "116 MiB" once the script had decoded the
    set itself; a `true` started by a 300 MB process, 313 MiB)."""
    common = importlib.import_module("benchmarks._common")
    ballast = bytearray(400 * 2**20)
    ballast[:: 2**12] = b"\1" * len(ballast[:: 2**12])  # resident: one byte a page
    small = common.run_measured([sys.executable, "-c", "print(7)"])
    big = common.run_measured([sys.executable, "-c", "b = bytearray(200 * 2**20); b[::4096] = bytes(len(b[::4096]))"])
    del ballast
    assert small[2] == "7\n" and small[0] > 0
    assert small[1] < 60, small  # an interpreter alone: ~10 MiB, not the 400 MiB of this process
    assert 200 < big[1] < 300, big  # its own 200 MiB
    with pytest.raises(RuntimeError, match="failed"):
        common.run_measured([sys.executable, "-c", "raise SystemExit(5)"])


def test_the_index_benchmarks_peak_memory_is_the_childs_own(tmp_path: Path) -> None:
    """bench_index measures each backend in a child of its own "so its peak RSS is its own"; read
    as ru_maxrss, the child's figure was at least the benchmark's peak (see the test above)."""
    bench_index = importlib.import_module("benchmarks.bench_index")
    ballast = bytearray(400 * 2**20)
    ballast[:: 2**12] = b"\1" * len(ballast[:: 2**12])
    row = bench_index.run_child("bktree", 200, 4, argparse.Namespace(seed=0, budget=30.0, repeats=1))
    del ballast
    assert row is not None and row["pairs"] is not None
    assert row["peak_mib"] < 200, row  # an interpreter with numpy and 200 hashes, not 400 MiB of this process


def test_incremental_sets_built_from_another_recipe_are_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bench_incremental reuses a complete workdir, but not one built from another list of
    variants: its reference set of 2026-11-29 predated the layout edits and was timed again for a
    day as if it were what the script builds."""
    incremental = importlib.import_module("benchmarks.bench_incremental")
    ref, new = incremental.build(tmp_path, ref_size=6, batch_size=2, jobs=1, kind="distinct")
    stale = ref / "00" / "left-from-another-recipe.jpg"
    stale.write_bytes(b"x")
    incremental.build(tmp_path, ref_size=6, batch_size=2, jobs=1, kind="distinct")
    assert stale.exists()  # same recipe: reused as it is
    monkeypatch.setattr(incremental, "recipe", lambda: "another")
    incremental.build(tmp_path, ref_size=6, batch_size=2, jobs=1, kind="distinct")
    assert not stale.exists() and any(ref.rglob("*.jpg")) and any(new.iterdir())


def test_incremental_sets_follow_the_reference_split_of_the_last_build(tmp_path: Path) -> None:
    """The reference set depends on the batch size (the photos only the batch holds are left out
    of it), and both kinds share its folder. Built for a batch of 100, then of 10, then of 100
    again in one workdir, the third build had reused the folder as the second left it (the first
    build's marker was still there), and the first batch against it: the 100-file batch's new
    photos were in the reference, and a benchmark run timed another set than it named (2026-12-03:
    988 of 1,000 files already held instead of 898)."""
    incremental = importlib.import_module("benchmarks.bench_incremental")
    photos, _ = incremental.unique_photos(incremental.dogs1000())

    def held_back(ref: Path) -> set[str]:
        """The dogs-1000 photos whose byte-identical copy is not in the reference."""
        inside = {p.read_bytes() for p in ref.rglob("*-orig.*")}
        return {p.name for p in photos if p.read_bytes() not in inside}

    size = len(photos)  # one copy of every photo the reference holds (the split shows only then)
    ref, _ = incremental.build(tmp_path, ref_size=size, batch_size=100, jobs=2, kind="distinct")
    first = held_back(ref)
    assert first == {p.name for p in photos[-10:]}
    incremental.build(tmp_path, ref_size=size, batch_size=10, jobs=2, kind="grouped")
    assert held_back(ref) == {photos[-1].name}
    ref, new = incremental.build(tmp_path, ref_size=size, batch_size=100, jobs=2, kind="distinct")
    assert held_back(ref) == first
    fresh = {p.read_bytes() for p in new.glob("fresh-?????.*")}
    assert len(fresh) == 10 and not fresh & {p.read_bytes() for p in ref.rglob("*-orig.*")}


def test_keepers_benchmark_keeps_the_camera_file_not_a_framed_copy(tmp_path: Path) -> None:
    """bench_keepers on 10 dogs-1000 photos: the camera file is kept in every cluster (before the
    frame rule the copy in a thin white frame was, in all 10: "most pixels")."""
    keepers = importlib.import_module("benchmarks.bench_keepers")
    out = tmp_path / "k.json"
    assert keepers.main(["--photos", "10", "--jobs", "1", "--json", str(out)]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["clusters"] == 10 and doc["kept"] == {"camera": 10}


def test_keepers_page_pairs_hold_the_photo_at_the_share_of_the_page(tmp_path: Path) -> None:
    """bench_keepers --pages: per share, one folder per photo with the photo and a copy of it
    centred on a white 800 px page, covering that share of the page's area (the pairs whose
    keeper README's "Not told" for small clusters counts)."""
    keepers = importlib.import_module("benchmarks.bench_keepers")
    photo = tmp_path / "photo.jpg"
    _photo(3, (500, 375)).save(photo, quality=92)
    keepers.write_page_pairs(photo, tmp_path / "pairs", 7, [0.15, 0.5])
    for share in (0.15, 0.5):
        pair = tmp_path / "pairs" / f"{share:g}" / "007"
        assert sorted(p.name for p in pair.iterdir()) == ["IMG_0007.jpg", "page.jpg"]
        with Image.open(pair / "page.jpg") as im:
            grey = np.asarray(im.convert("L"))
        assert grey.shape == (800, 800)
        rows, cols = np.nonzero(grey < 235)  # the photo's pixels; the page is white
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert abs(box / 800**2 - share) < 0.01, box
        assert abs((rows.min() + rows.max()) / 2 - 399.5) < 3 and abs((cols.min() + cols.max()) / 2 - 399.5) < 3


def test_bench_e2e_counts_which_variant_each_cluster_kept(tmp_path: Path) -> None:
    """bench_e2e.py's labelled scale set says which variant the default policy kept per cluster
    (a 1.5x bicubic enlargement was kept in 215 of its 993 clusters, unreported)."""
    bench_e2e = importlib.import_module("benchmarks.bench_e2e")
    source = tmp_path / "photos"
    source.mkdir()
    for i in range(2):
        _photo(40 + i, (300, 225)).save(source / f"{i}.jpg", quality=75)
    root = bench_e2e.build_scale_set(source, tmp_path / "scale-20", 20)
    import imgdup

    doc = imgdup.to_document(imgdup.find_duplicates(root, jobs=1))
    kept = bench_e2e.keeper_variants(root, doc)
    truth = {row["file"]: row["variant"] for row in json.loads((tmp_path / "scale-20.truth.json").read_text())}
    expected: dict[str, int] = {}
    holding = 0
    for cluster in doc["clusters"]:
        name = truth[Path(cluster["keep"]).relative_to(root).as_posix()]
        expected[name] = expected.get(name, 0) + 1
        holding += any(truth[Path(m["path"]).relative_to(root).as_posix()] == "original" for m in cluster["members"])
    assert kept.pop("clusters holding the original") == holding == 2
    assert kept == expected and sum(kept.values()) == len(doc["clusters"]) == 2
    assert bench_e2e.keeper_variants(source, doc) == {}  # no truth file beside it: not a labelled set
    # the accuracy benchmark's truth is a document, not the scale set's rows: it stopped the script
    (tmp_path / f"{source.name}.truth.json").write_text(json.dumps({"schema": "imgdup.accuracy-truth/1"}))
    assert bench_e2e.keeper_variants(source, doc) == {}


def test_graphics_sources_are_reproducible_distinct_and_feed_the_generator(tmp_path: Path) -> None:
    """graphics.py writes the same pictures for the same seed, no two alike, refuses a folder
    that holds files, and generate.py builds the benchmark from them as from photos."""
    graphics = importlib.import_module("benchmarks.accuracy.graphics")
    for name in ("a", "b"):
        assert graphics.main(["--out", str(tmp_path / name), "--count", "12", "--seed", "3"]) == 0
    a = sorted((tmp_path / "a").iterdir())
    assert len(a) == 12 and [p.read_bytes() for p in a] == [p.read_bytes() for p in sorted((tmp_path / "b").iterdir())]
    assert len({np.asarray(Image.open(p)).tobytes() for p in a}) == 12
    with pytest.raises(SystemExit):
        graphics.main(["--out", str(tmp_path / "a"), "--count", "1"])
    out = tmp_path / "dataset"
    argv = ["--source", str(tmp_path / "a"), "--out", str(out), "--sources", "2", "--distractors", "3"]
    assert generate.main(argv) == 0
    groups = [r["group"] for r in json.loads(generate.default_truth_path(out).read_text())["files"]]
    assert set(groups) - {None} == {0, 1} and groups.count(None) == 3


def test_lone_benchmark_scores_one_copy_per_photo_and_counts_mixed_clusters(tmp_path: Path) -> None:
    """lone.py: a folder per edit holds each photo and one copy of it; a copy is found when it
    is clustered with its own original, and a cluster of two different photos is mixed."""
    lone = importlib.import_module("benchmarks.accuracy.lone")
    source = tmp_path / "photos"
    source.mkdir()
    for i in range(3):
        _photo(60 + i, (240, 180)).save(source / f"{i}.jpg", quality=92)
    out = tmp_path / "lone.json"
    argv = ["--source", str(source), "--photos", "3", "--edits", "border_5_white,one_edge_10", "--jobs", "1"]
    assert lone.main([*argv, "--workdir", str(tmp_path / "w"), "--json", str(out)]) == 0
    folder = tmp_path / "w" / "seed0" / "one_edge_10"
    assert sorted(p.name for p in folder.iterdir()) == [f"{i:03d}-{s}.jpg" for i in range(3) for s in "ab"]
    with Image.open(folder / "000-a.jpg") as a, Image.open(folder / "000-b.jpg") as b:
        assert (a.width - b.width, a.height - b.height) in {(round(a.width * 0.1), 0), (0, round(a.height * 0.1))}
    figures = json.loads(out.read_text(encoding="utf-8"))["seeds"]["0"]
    assert set(figures) == {"border_5_white", "one_edge_10"}
    assert figures["border_5_white"] == {"photos": 3, "found": 3, "mixed": 0, "removed_for_another": 0}
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for name in ("000-a.jpg", "000-b.jpg", "001-a.jpg"):  # 001's original is 000's picture
        _photo(60).save(mixed / name, quality=92)
    _photo(61).save(mixed / "001-b.jpg", quality=92)
    assert lone.score(mixed, 2, 1) == {"photos": 2, "found": 1, "mixed": 1, "removed_for_another": 1}


def test_negatives_benchmark_puts_different_photos_on_one_backdrop(tmp_path: Path) -> None:
    """negatives.py: every file of a set is a different photo at the set's share of a shared
    backdrop (a radial gradient, a viewer window, a sweep), scored at three settings."""
    negatives = importlib.import_module("benchmarks.accuracy.negatives")
    source = tmp_path / "photos"
    source.mkdir()
    for i in range(8):
        _photo(70 + i, (200, 150)).save(source / f"{i}.jpg", quality=92)
    out = tmp_path / "neg.json"
    assert negatives.main(["--smoke", "--source", str(source), "--jobs", "1", "--json", str(out)]) == 0
    sets = json.loads(out.read_text(encoding="utf-8"))["sets"]
    assert set(sets) == {"gradient 20%", "viewer 15%"}
    assert all(set(s) == {"defaults", "--no-regions", "--hash-size 16"} for s in sets.values())
    photo = Image.new("RGB", (200, 100), (255, 0, 0))
    for kind, share, size in (
        ("gradient", 0.25, (800, 800)),
        ("viewer", 0.35, (1280, 800)),
        ("sweep", 0.5, (800, 800)),
    ):
        grid = np.asarray(negatives.place(photo, kind, share))
        assert grid.shape[:2] == size[::-1]
        cols = np.nonzero((grid[..., 0] > 200) & (grid[..., 1] < 60))[1]
        assert abs(cols.max() - cols.min() + 1 - share * size[0]) <= 1
