"""--rotations: one distance (plain hash against the other's 8 orientations) for every rule."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

from PIL import Image, ImageOps

import imgdup
from imgdup.index import oriented_distance
from imgdup.models import Action, FileEntry, HashSettings, ImageRecord
from imgdup.pipeline import cluster_records

from .synth import photo

ROT = HashSettings(rotations=True)


def record(name: str, h: int, variants: tuple[int, ...]) -> ImageRecord:
    entry = FileEntry(f"/r/{name}", "/r", name, 1, 1, hash(name) & 0xFFFF, 1)
    return ImageRecord(entry, 10, 10, h, name, variants=variants)


def test_two_rotated_versions_alone_never_link_two_images() -> None:
    # A's 90-degree version equals B's mirror, but each plain hash is 32+ bits from every
    # orientation of the other: the any-of-8 against any-of-8 search on main linked them (0).
    x = 0xF0F0_F0F0_0000_0000
    a = record("a.jpg", 0, (x, *(1 << i for i in range(6))))
    b = record("b.jpg", 0xFFFF_FFFF_0000_0000, (x ^ 1, *(0xFFFF_FFFF_0000_0000 | 1 << (40 + i) for i in range(6))))
    assert oriented_distance(a.hash, a.variants, b.hash, b.variants) > 8
    assert cluster_records([a, b], ROT, threshold=8, keep=("pixels", "path")).clusters == ()


def test_distance_is_symmetric_and_one_sided_plain() -> None:
    a = record("a.jpg", 0b1111, (0b0111,))
    b = record("b.jpg", 0b0000, (0b1110_0000,))
    assert oriented_distance(a.hash, a.variants, b.hash, b.variants) == 3  # a's variant vs b's plain
    assert oriented_distance(b.hash, b.variants, a.hash, a.variants) == 3


def test_chained_rotations_report_the_distances_that_linked_them(tmp_path: Path) -> None:
    """A chain of rotated and mirrored copies plus unrelated photos: every reported distance and
    diameter is the oriented distance, every link is within the threshold, and only members
    within the threshold of the kept file are removed."""
    base = photo(21)
    base.save(tmp_path / "a.jpg", quality=92)
    base.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "b.jpg", quality=92)
    ImageOps.mirror(base.transpose(Image.Transpose.ROTATE_90)).save(tmp_path / "c.jpg", quality=92)
    ImageOps.flip(base).resize((200, 150)).save(tmp_path / "d.jpg", quality=70)
    for seed in (22, 23, 24, 25):
        photo(seed).transpose(Image.Transpose.ROTATE_180).save(tmp_path / f"o{seed}.jpg", quality=92)
    threshold = 8
    result = imgdup.find_duplicates([tmp_path], threshold=threshold, rotations=True, jobs=1)
    by_name = {Path(r.path).name: r for r in result.records}
    assert {"a.jpg", "b.jpg", "c.jpg", "d.jpg"} in [
        {Path(m.record.path).name for m in c.members} for c in result.clusters
    ]
    for c in result.clusters:
        recs = [m.record for m in c.members]
        dist = [[oriented_distance(x.hash, x.variants, y.hash, y.variants) for y in recs] for x in recs]
        assert c.diameter == max(dist[i][j] for i, j in combinations(range(len(recs)), 2))
        for m in c.members:
            assert m.distance == oriented_distance(c.keep.hash, c.keep.variants, m.record.hash, m.record.variants)
            assert (m.action is Action.REMOVE) == (m.distance <= threshold and m.record is not c.keep)
        # connected through links within the threshold (union-find never bridges a larger gap)
        reached = {0}
        while True:
            more = {j for i in reached for j in range(len(recs)) if dist[i][j] <= threshold} - reached
            if not more:
                break
            reached |= more
        assert reached == set(range(len(recs)))
    assert len(by_name) == 8
