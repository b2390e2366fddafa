"""The keep policy keeps the best copy: not an enlargement, not a lossless re-encode."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import imgdup
import imgdup.memo
from imgdup.hashing import measure_quality
from imgdup.models import Remembered
from imgdup.policy import DEFAULT_KEEP

from .synth import photo


def detailed(seed: int) -> Image.Image:
    """A synthetic photo with pixel-level texture, as a real camera picture has."""
    rng = np.random.default_rng(seed)
    arr = np.asarray(photo(seed, (400, 300)), dtype=np.float64) + rng.normal(0, 12, (300, 400, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def test_enlargement_is_recognised_and_the_original_is_not() -> None:
    img = detailed(1)
    assert not measure_quality(img).upscaled
    assert measure_quality(img.resize((600, 450), Image.Resampling.LANCZOS)).upscaled
    assert not measure_quality(img.resize((200, 150), Image.Resampling.LANCZOS)).upscaled
    flat = Image.new("RGB", (300, 200), (40, 90, 200))
    assert not measure_quality(flat).upscaled


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_original_kept_over_its_upscale_and_png_reencode(tmp_path: Path, seed: int) -> None:
    img = detailed(seed)
    img.save(tmp_path / "c_original.jpg", quality=85)
    with Image.open(tmp_path / "c_original.jpg") as decoded:
        decoded.load()
        # Names sort before the original's, and the copies are larger files with as many or more
        # pixels: "first in path order", "most pixels" and "largest file" would all pick them.
        decoded.resize((600, 450), Image.Resampling.LANCZOS).save(tmp_path / "a_upscale.jpg", quality=95)
        decoded.save(tmp_path / "b_lossless.png")
    result = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1)
    (cluster,) = result.clusters
    assert len(cluster.members) == 3
    assert Path(cluster.keep.path).name == "c_original.jpg", cluster.keep_reason
    old = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1, keep="pixels,size,path")
    assert Path(old.clusters[0].keep.path).name == "a_upscale.jpg"  # the case the rule fixes


def test_quality_is_first_in_the_default_policy() -> None:
    assert DEFAULT_KEEP[0] == "quality"
    assert "size" not in DEFAULT_KEEP  # a larger re-encode is not a better copy (benchmark)


def test_lazy_quality_tiers_pick_the_same_keepers_as_measuring_everything(tmp_path: Path) -> None:
    """The pipeline measures one pixel tier at a time; the keepers must equal full measurement."""
    from dataclasses import replace

    from imgdup.hashing import quality_entry
    from imgdup.models import HashSettings, ImageRecord
    from imgdup.pipeline import cluster_records

    for seed in range(4):
        img = detailed(10 + seed)
        folder = tmp_path / f"g{seed}"
        folder.mkdir()
        img.save(folder / "m_original.jpg", quality=85)
        img.resize((600, 450), Image.Resampling.LANCZOS).save(folder / "a_up150.jpg", quality=90)
        img.resize((800, 600), Image.Resampling.LANCZOS).save(folder / "b_up200.jpg", quality=90)
        img.save(folder / "c_q60.jpg", quality=60)
        with Image.open(folder / "m_original.jpg") as decoded:
            decoded.save(folder / "d_twin.png")  # same pixels as the original, bigger file
        img.resize((200, 150), Image.Resampling.LANCZOS).save(folder / "e_half.jpg", quality=85)
    lazy = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1)
    assert len(lazy.clusters) == 4
    # Measure every clustered record up front: nothing is left for the lazy path to decide.
    full_records = []
    for r in lazy.records:
        measured = quality_entry(r.entry, HashSettings())
        assert isinstance(measured, ImageRecord)
        full_records.append(replace(r, quality=measured.quality))
    full = cluster_records(full_records, HashSettings(), threshold=8, keep=DEFAULT_KEEP)
    assert [c.keep.path for c in lazy.clusters] == [c.keep.path for c in full.clusters]
    assert "a_up150.jpg" not in {Path(c.keep.path).name for c in lazy.clusters}
    # and the lazy path really skipped files: the half-size copies were never measured
    assert all(r.quality is None for r in lazy.records if r.path.endswith("e_half.jpg"))


def test_a_reference_clusters_remembered_keeper_and_diameter_give_what_deciding_afresh_gives() -> None:
    """decide_all(chosen=...) takes the keeper, reason and diameter of a set of reference files
    from a remembered scan of them; the cluster must equal one decided afresh, and the diameter
    must come from the remembered one where the widest pair is two reference files (a new member
    is nearer to both)."""
    from imgdup.models import FileEntry, ImageRecord
    from imgdup.policy import decide_all

    def rec(name: str, h: int) -> ImageRecord:
        return ImageRecord(FileEntry(f"/d/{name}", "/d", name, 10, 1, hash(name) & 0xFFFF, 1), 8, 8, h, name * 8)

    a, b, c = rec("ref/a", 0), rec("ref/b", 0b1111), rec("new/c", 0b1)  # a-b 4 bits; c-a 1, c-b 3
    protected = lambda r: r.path.startswith("/d/ref/")  # noqa: E731
    options = {"threshold": 8, "keep": ("pixels", "path"), "protected": protected}
    (alone,) = decide_all([[a, b]], **options)  # the reference scanned alone: what the cache remembers
    (fresh,) = decide_all([[c, a, b]], **options)
    chosen = {frozenset({a.path, b.path}): Remembered(alone.keep.path, alone.keep_reason, alone.diameter)}
    (remembered,) = decide_all([[c, a, b]], chosen=chosen, **options)
    assert remembered == fresh and fresh.diameter == 4
    wrong = {frozenset({a.path, b.path}): Remembered(b.path, "first in path order", 0)}  # a memo saying otherwise...
    (told,) = decide_all([[c, a, b]], chosen=wrong, **options)
    assert told.keep is b and told.diameter == 3  # ...is what it is used for


def test_a_reference_cluster_no_new_file_joined_is_taken_as_remembered_in_its_place() -> None:
    """A cluster made of exactly the reference files of a remembered cluster is not decided
    again: its members come as remembered (a 20,000-file reference's own clusters cost 0.4 s to
    decide again on every new batch). It keeps its place and id among the clusters decided now;
    a cluster that a new file joined, or that holds other reference files, is decided afresh."""
    from imgdup.memo import keepers
    from imgdup.models import Action, FileEntry, ImageRecord
    from imgdup.policy import decide_all

    def rec(name: str, h: int) -> ImageRecord:
        return ImageRecord(FileEntry(f"/d/{name}", "/d", name, 10, 1, hash(name) & 0xFFFF, 1), 8, 8, h, name * 8)

    a, b = rec("ref/a", 0), rec("ref/b", 0b1111)
    c, d = rec("ref/c", 1 << 40), rec("ref/d", (1 << 40) | 0b11)
    e, f = rec("new/e", 1 << 20), rec("ref/f", (1 << 20) | 0b1)
    protected = lambda r: r.path.startswith("/d/ref/")  # noqa: E731
    options = {"threshold": 8, "keep": ("pixels", "path"), "protected": protected}
    groups = [[e, f], [a, b], [c, d]]
    fresh = decide_all(groups, **options)
    alone = decide_all([[a, b], [c, d], [f]], **options)  # the reference scanned alone (f had no copy)
    scanned = imgdup.pipeline.Clustered(tuple(alone[:2]), (), (a, b, c, d, f))
    chosen = keepers(imgdup.memo.encode(scanned), [a, b, c, d, f])
    assert chosen is not None
    assert decide_all(groups, chosen=chosen, **options) == fresh
    # what is remembered is what is used: a memo whose a-b cluster says otherwise...
    ab = frozenset({a.path, b.path})
    told = dict(chosen)
    told[ab] = chosen[ab]._replace(
        keep=b.path,
        reason="as remembered",
        members=((b, 0, Action.KEEP, None, None, None), (a, 7, Action.KEEP, None, None, "whole")),
    )
    got = decide_all(groups, chosen=told, first_id=10, **options)
    assert [x.id for x in got] == [10, 11, 12]
    assert got[1].keep_reason == "as remembered" and [(m.record, m.distance) for m in got[1].members] == [
        (b, 0),
        (a, 7),
    ]
    assert got[1].keep is b and got[1].members[0].record is b  # this scan's records
    assert got[0] == replace(fresh[0], id=10) and got[2] == replace(fresh[2], id=12)
    # a cluster holding another file is decided: only its keeper comes from the memo
    (joined,) = decide_all([[a, b, c]], chosen=told, **options)
    assert joined.keep_reason != "as remembered"


@pytest.mark.parametrize("spec", ["oldest,", ",size", "oldest,,size", "", "oldest, nope"])
def test_a_keep_policy_with_an_empty_or_unknown_rule_is_refused(spec: str) -> None:
    """``--keep oldest,`` (a trailing comma) was accepted as ``oldest`` (QA pass 3)."""
    from imgdup.policy import parse_keep

    with pytest.raises(imgdup.UsageError, match="unknown keep rule"):
        parse_keep(spec)
    assert parse_keep(" oldest , size ") == ("oldest", "size", "path")


def test_pixel_twins_share_what_their_pixels_say() -> None:
    """Files with identical pixels (a JPEG and its PNG) hold one picture; only the smaller is
    ranked. Their thumbnails come from different reduced decodes, so one of them can pass for
    "edited" and the other not: the smaller one, so flagged, lost to a colour-filtered copy,
    which was kept (a warm run whose cache held both twins' measurements; QA pass 4)."""
    from dataclasses import replace

    from imgdup.models import FileEntry, ImageRecord, Quality
    from imgdup.policy import choose_keeper
    from imgdup.quality import Assessment

    def rec(name: str, size: int, pixels: str) -> ImageRecord:
        entry = FileEntry(f"/d/{name}", "/d", name, size, 1, len(name), 1)
        return ImageRecord(entry, 400, 300, 0, name * 8, quality=Quality(False, pixels, (), None))

    jpeg, png, sat = (
        rec("a_q60.jpg", 30_000, "p" * 64),
        rec("a_q60.png", 300_000, "p" * 64),
        rec("a_sat.jpg", 60_000, "s" * 64),
    )
    verdicts = {
        jpeg.path: Assessment(edited=True, quality=60),  # a noisy thumbnail
        png.path: Assessment(quality=60, reencoded_from=60),
        sat.path: Assessment(edited=True, recoloured=True, quality=75),
    }
    keeper, _reason = choose_keeper([jpeg, png, sat], ("quality", "path"), lambda rs: [verdicts[r.path] for r in rs])
    assert keeper.path in (jpeg.path, png.path)
    verdicts[png.path] = replace(verdicts[png.path], edited=True)  # both twins edited: then the filter may win
    keeper, _reason = choose_keeper([jpeg, png, sat], ("quality", "path"), lambda rs: [verdicts[r.path] for r in rs])
    assert keeper.path == sat.path


def test_the_keep_reason_does_not_say_one_rule_twice() -> None:
    """ "highest JPEG quality (q94 vs q92); highest JPEG quality (q94 vs q30)": the clause about
    the largest copy repeated the runner-up's rule when that copy had the keeper's size (QA pass 5)."""
    from imgdup.models import FileEntry, ImageRecord, Traits
    from imgdup.policy import choose_keeper
    from imgdup.quality import Assessment

    def rec(name: str, q: int) -> ImageRecord:
        entry = FileEntry(f"/d/{name}", "/d", name, 1000, 1, len(name), 1)
        return ImageRecord(entry, 500, 375, 0, name * 8, traits=Traits(jpeg_quality=q))

    best, second, worst = rec("c_q94.jpg", 94), rec("b_q92.jpg", 92), rec("a_q30.jpg", 30)
    verdicts = {r.path: Assessment(quality=q) for r, q in ((best, 94), (second, 92), (worst, 30))}
    keeper, reason = choose_keeper(
        [worst, second, best], ("quality", "path"), lambda rs: [verdicts[r.path] for r in rs]
    )
    assert keeper is best and reason == "highest JPEG quality (q94 vs q92)"


@pytest.mark.parametrize(
    "members",
    [
        [[0, 0, "keep", None, None, None], [1, 4, "keep", 0, 4, None]],  # keeper (c) not a member
        [[0, 0, "keep", None, None, None], [1, 4, "keep", 0, 4, None], [1, 4, "keep", 0, 4, None]],  # b twice
    ],
)
def test_a_hand_edited_remembered_cluster_is_a_miss_not_a_crash_nor_a_member_twice(members: list[object]) -> None:
    """QA pass 25: a remembered reference cluster is read from the cache's ``searches`` table,
    which anyone may edit. A row whose keeper is another cluster's file ended the scan with a
    KeyError (taken as remembered, its keeper was looked up among its members); one listing a
    member twice showed it twice. Both are misses: the cluster is decided afresh."""
    from imgdup.memo import decode, keepers
    from imgdup.models import FileEntry, ImageRecord
    from imgdup.policy import decide_all

    def rec(name: str, h: int) -> ImageRecord:
        return ImageRecord(FileEntry(f"/d/{name}", "/d", name, 10, 1, sum(map(ord, name)), 1), 8, 8, h, name * 8)

    a, b, c, e = rec("ref/a", 0), rec("ref/b", 0b1111), rec("ref/c", 1 << 40), rec("new/e", 1 << 20)
    keep = 2 if len(members) == 2 else 0
    value = [[[0, keep, "r", 4, members]], []]
    assert keepers(value, [a, b, c]) is None and decode(value, [a, b, c]) is None
    options = {"threshold": 8, "keep": ("pixels", "path"), "protected": lambda r: r.path.startswith("/d/ref/")}
    chosen = keepers(value, [a, b, c]) or {}
    got = decide_all([[a, b], [e, c]], chosen=chosen, **options)  # type: ignore[arg-type]
    assert got == decide_all([[a, b], [e, c]], **options)  # type: ignore[arg-type]


def test_the_diameter_pairs_that_hold_another_member_are_those_of_every_pair() -> None:
    """A cluster whose reference members' widest pair is remembered measures only the pairs that
    hold another member: exactly every pair (i < j) with one, none twice, whatever the mix."""
    import numpy as np

    from imgdup.policy import _pairs_with

    rng = np.random.default_rng(3)
    for n in (0, 1, 2, 5, 23):
        for _ in range(5):
            other = rng.random(n) < rng.choice([0.0, 0.1, 0.5, 1.0])
            ia, ib = _pairs_with(other)
            every = [(i, j) for i in range(n) for j in range(i + 1, n) if other[i] or other[j]]
            assert sorted(zip(ia.tolist(), ib.tolist())) == every
