"""--regions finds copies with borders, bars, frames, small rotations and crops, and keeps
different pictures with the same layout apart."""

from __future__ import annotations

import importlib
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

import imgdup
from imgdup.cache import HashCache
from imgdup.discover import discover
from imgdup.hashing import _phash, _phash_boxes, bits_to_int, hash_entry, settings_key
from imgdup.models import FileEntry, HashSettings, ImageRecord, Traits
from imgdup.policy import distance
from imgdup.regions import HALVES, SUB_REGIONS, content_box, link_item, region_distance, split

from .synth import photo

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # benchmarks/ is not an installed package
    sys.path.insert(0, str(REPO_ROOT))
edits = importlib.import_module("benchmarks.accuracy.edits")

Edit = Callable[[Image.Image], Image.Image]

# The edits the default targets name, as the benchmark makes them (edits.py), with fixed seeds.
EDITS: dict[str, Edit] = {
    "border_white": lambda im: edits.bordered(im, 0.05, (255, 255, 255)),
    "border_black": lambda im: edits.bordered(im, 0.10, (0, 0, 0)),
    "border_colour": lambda im: edits.bordered(im, 0.20, (40, 90, 200)),
    "letterbox": edits.letterboxed,
    "caption": lambda im: edits.captioned(im, random.Random(3)),
    "rotate_3": lambda im: edits.rotated(im, random.Random(1), 3),
    "edge_crop_5": lambda im: edits.edge_cropped(im, random.Random(2), 0.05),
    "centre_crop_20": lambda im: edits.centre_cropped(im, 0.20),
    "screenshot": lambda im: edits.screenshot(im, random.Random(4)),
}


def names(result: imgdup.ScanResult) -> list[set[str]]:
    return [{Path(m.record.path).stem for m in c.members} for c in result.clusters]


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_edited_copy_joins_its_original_only_with_regions(tmp_path: Path, edit: str) -> None:
    original = photo(21, (400, 300))
    original.save(tmp_path / "original.jpg", quality=92)
    EDITS[edit](original).save(tmp_path / "copy.jpg", quality=92)
    for seed in (22, 23):  # unrelated pictures with the same edit stay apart
        EDITS[edit](photo(seed, (400, 300))).save(tmp_path / f"other-{seed}.jpg", quality=92)
    found = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1, regions=True)
    assert names(found) == [{"copy", "original"}]
    (cluster,) = found.clusters
    (member,) = cluster.removable
    # The reported distance is the link's own distance, and removal uses that same number.
    assert member.distance == distance(cluster.keep, member.record) <= 8
    assert cluster.diameter == member.distance


@pytest.mark.parametrize("edit", ["border_white", "border_black", "letterbox", "caption"])
def test_plain_hashes_miss_the_added_frames(tmp_path: Path, edit: str) -> None:
    """What --regions adds: without it these copies are not found (the test can fail)."""
    original = photo(21, (400, 300))
    original.save(tmp_path / "original.jpg", quality=92)
    EDITS[edit](original).save(tmp_path / "copy.jpg", quality=92)
    assert imgdup.find_duplicates([tmp_path], threshold=8, jobs=1, regions=False).clusters == ()


def test_same_layout_different_pictures_stay_apart(tmp_path: Path) -> None:
    """Two different photos in the same frame (border, letterbox, caption, window) share most
    of their pixels; the content box and the finer hashes keep them apart."""
    for seed in range(30, 40):
        img = photo(seed, (400, 300))
        for edit in ("border_colour", "letterbox", "caption", "screenshot"):
            EDITS[edit](img).save(tmp_path / f"{edit}-{seed}.jpg", quality=92)
        # Half the screen is the same window: plain hashes of different photos come within 8 bits.
        edits.screenshot(img, random.Random(4), 0.5).save(tmp_path / f"window-{seed}.jpg", quality=92)
    plain = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1, regions=False)
    assert any(len({n.rsplit("-", 1)[1] for n in group}) > 1 for group in names(plain))
    found = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1)  # the default: regions on
    for group in names(found):  # every cluster holds one picture only
        assert len({n.rsplit("-", 1)[1] for n in group}) == 1, group


def _noisy(arr: np.ndarray, seed: int, sigma: float = 4.0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, arr.shape)
    return np.clip(arr + noise, 0, 255).astype(np.uint8)


def test_content_box_peels_noisy_borders_of_any_colour_and_caption_text() -> None:
    pic = np.asarray(photo(5, (120, 90)).convert("L"), dtype=np.float64)
    for value in (0, 128, 255):
        framed = np.full((130, 160), float(value))
        framed[20:110, 25:145] = pic
        assert content_box(_noisy(framed, value)) == (25, 20, 145, 110)
    caption = np.asarray(edits.captioned(photo(5, (120, 90)), random.Random(0)).convert("L"))
    band = caption.shape[0] - 90
    assert content_box(caption)[1] in (band - 1, band, band + 1)
    assert content_box(_noisy(pic, 1)) == (0, 0, 120, 90)  # a photo keeps all of itself


def test_content_box_keeps_at_least_a_third_of_a_plain_image() -> None:
    box = content_box(np.full((60, 80), 200, dtype=np.uint8))
    assert box[2] - box[0] >= 0.3 * 80 and box[3] - box[1] >= 0.3 * 60


def test_matrix_phash_matches_pillow_phash() -> None:
    grey = photo(9, (125, 94)).convert("L")
    arr = np.asarray(grey, dtype=np.float64)
    box = (10, 8, 110, 80)
    (whole, part), (fine_whole, _fine_part) = _phash_boxes(arr, [(0, 0, 125, 94), box], 8)
    assert (whole ^ bits_to_int(_phash(grey, 8))).bit_count() <= 2
    assert (part ^ bits_to_int(_phash(grey.crop(box), 8))).bit_count() <= 2
    assert (part ^ bits_to_int(_phash(photo(10, (125, 94)).convert("L"), 8))).bit_count() > 8
    assert fine_whole.bit_length() > 64  # 256 bits


def test_region_rule_needs_the_finer_hashes_to_agree() -> None:
    n = 1 + len(SUB_REGIONS)
    coarse = tuple(range(1, n + 1))
    a = (coarse[0], *coarse[1:], *([0] * (n + 1)))
    b_far = (coarse[0], *coarse[1:], *([(1 << 256) - 1] * (n + 1)))  # every finer hash disagrees
    b_near = (coarse[0], *coarse[1:], *([0] * (n + 1)))
    assert region_distance(0xF0, a, 0xF0 ^ 0b111, b_near, bits=64) == 0  # content boxes equal, confirmed
    assert region_distance(0xF0, a, 0xF0 ^ 0b111, b_far, bits=64) == 64  # nothing confirmed: unrelated
    assert region_distance(0xF0, a, 0xF0, b_far, bits=64) == 0  # identical plain hashes need nothing
    assert len(split(a)[0]) == n and len(split(a)[1]) == n + 1


def test_on_by_default_for_phash_only(tmp_path: Path) -> None:
    photo(1).save(tmp_path / "a.jpg")
    assert imgdup.find_duplicates([tmp_path], jobs=1).settings.hash.regions is True
    assert imgdup.find_duplicates([tmp_path], jobs=1, hash="dhash").settings.hash.regions is False
    assert imgdup.to_document(imgdup.find_duplicates([tmp_path], jobs=1))["settings"]["regions"] is True


def test_regions_are_in_the_cache_key_and_round_trip(tmp_path: Path) -> None:
    assert settings_key(HashSettings()) != settings_key(HashSettings(regions=True))
    photo(1).save(tmp_path / "a.jpg")
    (entry,), _, _ = discover([str(tmp_path)])
    settings = HashSettings(regions=True)
    record = hash_entry(entry, settings)
    # coarse hashes of the content box and sub-regions; fine and colour ones of those and the image;
    # both sizes of the four halves and a grey grid
    n = 1 + len(SUB_REGIONS)
    assert isinstance(record, imgdup.ImageRecord) and len(record.regions) == 3 * n + 2 + 2 * len(HALVES) + 1
    assert all(record.regions[2 * n + 1 :])  # a colour photo has a colour layout everywhere, halves with detail
    assert hash_entry(entry, HashSettings()).regions == ()  # type: ignore[union-attr]
    with HashCache(tmp_path / "c.sqlite3", settings_key(settings)) as cache:
        cache.put_many([(entry, record)])
        assert cache.get(entry) == record


def test_cli_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from imgdup.cli import main

    original = photo(21, (400, 300))
    original.save(tmp_path / "original.jpg", quality=92)
    EDITS["letterbox"](original).save(tmp_path / "copy.jpg", quality=92)
    args = ["-d", str(tmp_path), "-t", "8", "--no-cache", "-j", "1", "--no-progress"]
    assert main([*args, "--no-regions"]) == 0
    assert "0 clusters" in capsys.readouterr().out
    assert main(args) == 0  # on by default with phash
    assert "1 cluster," in capsys.readouterr().out
    assert main([*args, "--hash", "dhash"]) == 0  # measured with phash only: off for the others
    assert "0 clusters" in capsys.readouterr().out
    assert main([*args, "--hash", "dhash", "--regions"]) == 0
    assert "1 cluster," in capsys.readouterr().out


@pytest.mark.parametrize("algorithm", ["dhash", "ahash", "whash", "phash"])
def test_regions_at_hash_size_32_hash_every_file(tmp_path: Path, algorithm: str) -> None:
    """--regions on dhash, ahash or whash at --hash-size 32 failed every file as "cannot decode"
    (their finer hashes, 64 a side, were refused as a hash size), so not even byte-identical
    copies were found (QA pass 36). The finer hashes are now 4x the bits at every size, as phash's."""
    original = photo(31, (200, 150))
    original.save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes((tmp_path / "a.png").read_bytes())
    original.resize((150, 112), Image.Resampling.LANCZOS).save(tmp_path / "small.png")
    photo(32, (200, 150)).save(tmp_path / "other.png")
    found = imgdup.find_duplicates([tmp_path], threshold=64, jobs=1, hash=algorithm, hash_size=32, regions=True)
    assert not found.failures
    assert names(found) == [{"a", "b", "small"}]
    record = next(m.record for m in found.clusters[0].members)
    n = 1 + len(SUB_REGIONS)
    assert all(r.bit_length() <= 4 * 1024 for r in record.regions[n : 2 * n + 1])  # the finer hashes
    assert max(r.bit_length() for r in record.regions[n : 2 * n + 1]) > 1024


def test_regions_combine_with_rotations(tmp_path: Path) -> None:
    """A rotated copy links through --rotations, a letterboxed one through --regions, together."""
    original = photo(21, (400, 300))
    original.save(tmp_path / "original.jpg", quality=92)
    original.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "rotated.jpg", quality=92)
    EDITS["letterbox"](original).save(tmp_path / "letterbox.jpg", quality=92)
    photo(22, (400, 300)).save(tmp_path / "other.jpg", quality=92)
    found = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1, regions=True, rotations=True)
    assert names(found) == [{"original", "rotated", "letterbox"}]
    assert all(m.distance == distance(found.clusters[0].keep, m.record) <= 8 for m in found.clusters[0].removable)
    only_regions = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1, regions=True)
    assert names(only_regions) == [{"original", "letterbox"}]


def _near(rng: random.Random, value: int, bits: int, flips: int) -> int:
    for b in rng.sample(range(bits), flips):
        value ^= 1 << b
    return value


def _recoloured(rng: random.Random, layout: int) -> int:
    """A colour layout (32 signed bytes) near ``layout``: grey (0), the same, shifted a little or
    a lot in some cells, so that colour checks sometimes pass and sometimes fail."""
    if rng.random() < 0.2:
        return 0
    grid = np.frombuffer(layout.to_bytes(32, "big"), dtype=np.int8).astype(np.int64)
    noise = np.array([rng.choice([0] * 10 + [3, 60]) for _ in range(32)]) * rng.choice([0, 0, 1, 2])
    return int.from_bytes(np.clip(grid + noise, -128, 127).astype(np.int8).tobytes(), "big")


def _item(rng: random.Random, base: tuple[int, list[int]], bits: int, regions: bool, variants: int):
    """An image's (plain, regions, variants) near ``base``: a few bits flipped here and there, so
    that comparisons are sometimes confirmed by the finer hashes and sometimes not."""
    plain, layout = base
    flips = rng.choice([0, 0, 1, 3, 8, bits // 4, bits // 2])
    # bits flips of a finer hash (4x the bits) against an unflipped one: exactly FINE_SHARE's limit
    regs = [
        _near(rng, h, (bits if i < 7 else 4 * bits), rng.choice([0, 0, 2, flips, bits // 3] + [bits] * (i >= 7)))
        for i, h in enumerate(layout[:15])
    ]
    regs += [_recoloured(rng, h) for h in layout[15:23]]
    if len(layout) > 23 and rng.random() < 0.8:  # the halves and the grey grid (older records have none)
        halves = [_near(rng, h, bits, rng.choice([0, 0, 2, flips, bits // 3])) for h in layout[23:27]]
        # finer halves: up to and just past OCCLUDED_FINE_SHARE's limit (bits // 2 of 4 * bits)
        halves += [_near(rng, h, 4 * bits, rng.choice([0, 0, 2, bits // 2, bits // 2 + 1])) for h in layout[27:31]]
        for k in range(4):  # a flat half: both of its hashes 0
            if rng.random() < 0.1:
                halves[k] = halves[k + 4] = 0
        grid = bytearray(layout[31].to_bytes(64, "big"))
        r0, c0 = rng.choice([0, 4]), rng.choice([0, 4])  # a mark in one quadrant, or noise anywhere
        quadrant = [8 * (r0 + r) + c0 + c for r in range(4) for c in range(4)]
        kind = rng.random()
        cells = [] if kind < 0.4 else rng.sample(quadrant, rng.choice([1, 5, 6])) if kind < 0.85 else []
        cells += rng.sample(range(64), 4) if kind >= 0.85 else []
        for cell in cells:
            grid[cell] = min(255, grid[cell] + rng.choice([3, 17, 40, 90]))
        regs += [*halves, int.from_bytes(bytes(grid), "big")]
        if variants and rng.random() < 0.7:  # --rotations: the turned finer hashes, whole image and content box
            near = [0, 2, bits, bits + 1, 2 * bits]  # about FINE_SHARE's limit (bits of 4 * bits)
            regs += [_near(rng, layout[7 + k // 7], 4 * bits, rng.choice(near)) for k in range(14)]
    own = _near(rng, plain, bits, flips)
    if rng.random() < 0.3:  # nothing peeled: the content box is the image
        regs[0], regs[8] = own, regs[7]
    turned = tuple(_near(rng, plain, bits, rng.choice([0, 2, bits // 2])) for _ in range(variants))
    # a picture in a wide frame (regions.FRAMED_SHARE): then the content boxes must agree
    return (own, tuple(regs) if regions else (), turned, regions and regs[8] != regs[7] and rng.random() < 0.5)


@pytest.mark.parametrize("bits", [16, 64, 256])
def test_vectorised_link_distances_equal_the_one_pair_rule(bits: int) -> None:
    """LinkHashes (the cluster decisions' and region search's numpy kernel) gives exactly
    link_distance's numbers: regions on both, one or neither side, rotation variants on either."""
    from imgdup.regions import LinkHashes, link_distance

    rng = random.Random(bits)
    items = []
    for _ in range(12):
        layout = [rng.getrandbits(bits) for _ in range(7)] + [rng.getrandbits(4 * bits) for _ in range(8)]
        layout += [rng.getrandbits(256) for _ in range(8)]  # colour layouts
        layout += [rng.getrandbits(bits) for _ in range(4)] + [rng.getrandbits(4 * bits) for _ in range(4)]  # halves
        # grey grid: random, or alike in every turn (else no turned version passes the grid check)
        rings = [rng.randrange(120) for _ in range(99)]
        symmetric = [rings[(2 * r - 7) ** 2 + (2 * c - 7) ** 2] for r in range(8) for c in range(8)]
        cells = symmetric if rng.random() < 0.5 else [rng.randrange(120) for _ in range(64)]
        layout.append(int.from_bytes(bytes(cells), "big"))
        base = (rng.getrandbits(bits), layout)
        for _ in range(15):
            items.append(_item(rng, base, bits, regions=rng.random() < 0.8, variants=rng.choice([0, 0, 7])))
    ia = [rng.randrange(len(items)) for _ in range(3000)]
    ib = [rng.randrange(len(items)) if rng.random() < 0.3 else (i // 15) * 15 + rng.randrange(15) for i in ia]
    hashes = LinkHashes(items, bits=bits)
    got = hashes.distances(np.array(ia), np.array(ib)).tolist()
    want = [link_distance(items[a], items[b], bits=bits) for a, b in zip(ia, ib)]
    assert got == want
    assert len(set(want)) > 10 and min(want) == 0  # the cases cover the rule's branches
    # symmetric, kinds too: the keep decisions compute each pair of members once, in either order
    there, back = (
        hashes.distances_and_kinds(np.array(ia), np.array(ib)),
        hashes.distances_and_kinds(np.array(ib), np.array(ia)),
    )
    assert there[0].tolist() == back[0].tolist() and there[1].tolist() == back[1].tolist()


@pytest.mark.parametrize("bits", [16, 64, 256])
def test_packed_regions_read_as_their_values_and_convert_alike(bits: int) -> None:
    """Regions packed into one buffer (as the hasher hands them over and the cache stores them)
    read back as the same values, by index, slice and iteration, and LinkHashes makes the same
    arrays of them as of the values themselves, for every layout length (none, no colour, no
    halves, all, --rotations), mixed in one batch; values too wide for their place stay a tuple."""
    import pickle

    from imgdup.regions import (
        LinkHashes,
        PackedRegions,
        coarse_hashes,
        colour_layout,
        occlusion_parts,
        pack_regions,
        split,
        top_bottom_hashes,
        whole_colour,
    )

    rng = random.Random(7 + bits)
    widths = [bits] * 7 + [4 * bits] * 8 + [256] * 8 + [bits] * 4 + [4 * bits] * 4 + [512] + [4 * bits] * 14
    plain_items, packed_items = [], []
    for k in range(60):
        length = rng.choice([0, 15, 23, 32, 46])
        values = tuple(rng.getrandbits(w) if rng.random() < 0.9 else 0 for w in widths[:length])
        packed = pack_regions(values, bits)
        assert isinstance(packed, PackedRegions) == bool(values)
        assert tuple(packed) == values and len(packed) == length and list(packed[3:-2]) == list(values[3:-2])
        if values:
            assert packed[-1] == values[-1] and packed[length // 2] == values[length // 2]
            assert pickle.loads(pickle.dumps(packed)) == packed and hash(pickle.loads(pickle.dumps(packed))) == hash(
                packed
            )
            with pytest.raises(IndexError):
                packed[length]
        for r in (values, packed):  # what the search reads of every record, read alone
            assert tuple(coarse_hashes(r)) == tuple(split(values)[0])
            halves = occlusion_parts(values)
            assert top_bottom_hashes(r) == (None if halves is None else tuple(halves[0][:2]))
            assert whole_colour(r) == colour_layout(values)[0]
        variants = tuple(rng.getrandbits(bits) for _ in range(rng.choice([0, 7])))
        plain = rng.getrandbits(bits)
        plain_items.append((plain, values, variants, k % 3 == 0))
        packed_items.append((plain, packed, variants, k % 3 == 0))
    a, b = LinkHashes(plain_items, bits=bits), LinkHashes(packed_items, bits=bits)
    for name in LinkHashes._ROWS:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert b.has_halves.any() and b.has_turned.any() and (~b.has_regions).any()
    ia, ib = np.array([rng.randrange(60) for _ in range(500)]), np.array([rng.randrange(60) for _ in range(500)])
    assert a.distances(ia, ib).tolist() == b.distances(ia, ib).tolist()
    too_wide = (1 << 64 * max(1, bits // 64),) + (0,) * 14  # past the whole words a coarse hash takes
    assert pack_regions(too_wide, bits) == too_wide and pack_regions((0,) * 47, bits) == (0,) * 47


@pytest.mark.parametrize("bits", [16, 64, 256])
def test_region_search_reading_a_table_finds_the_links_of_the_one_by_one_search(bits: int) -> None:
    """With the scan's LinkTable, the search reads the entries of images of one record from its
    arrays (64-bit hashes), and of the others value by value: the links are the same as without
    a table, with and without fresh images, packed or not, with rotation variants, hand-made
    short regions and images of two records (a content box shared by two framed copies)."""
    from imgdup.regions import LinkTable, pack_regions, region_links

    rng = random.Random(30 + bits)
    images: list[list[Any]] = []
    for _ in range(25):
        layout = [rng.getrandbits(bits) for _ in range(7)] + [rng.getrandbits(4 * bits) for _ in range(8)]
        layout += [rng.getrandbits(256) for _ in range(8)]
        layout += [rng.getrandbits(bits) for _ in range(4)] + [rng.getrandbits(4 * bits) for _ in range(4)]
        layout.append(_turn_alike_grid(rng))
        base = (rng.getrandbits(bits), layout)
        for _ in range(8):
            items = [_item(rng, base, bits, regions=rng.random() < 0.85, variants=rng.choice([0, 0, 7]))]
            if rng.random() < 0.1:
                items.append(_item(rng, base, bits, regions=True, variants=0))
            if rng.random() < 0.05:
                items[0] = (items[0][0], tuple(items[0][1][:3]), *items[0][2:])  # a record of three values
            if rng.random() < 0.5:
                items = [(p, pack_regions(r, bits), *rest) for p, r, *rest in items]
            images.append(items)
    fresh = [rng.random() < 0.2 for _ in images]
    for threshold in (bits // 16, bits // 6):  # 4 and 10 at 64 bits
        want = region_links(images, threshold, bits=bits)
        assert len(want) > 100  # the copies of each base are found, not only a few
        assert region_links(images, threshold, bits=bits, table=LinkTable(bits=bits)) == want
        want_fresh = region_links(images, threshold, bits=bits, fresh=fresh)
        assert region_links(images, threshold, bits=bits, fresh=fresh, table=LinkTable(bits=bits)) == want_fresh
        # restricted to fresh images, exactly the links of the whole search that hold one
        assert want_fresh == [(i, j, d) for i, j, d in want if fresh[i] or fresh[j]]


@pytest.mark.parametrize("subs", [False, True])
def test_entry_pairs_of_fresh_images_are_the_pairs_that_hold_one(subs: bool) -> None:
    """The search's pairs of entries restricted to fresh images are exactly the unrestricted
    pairs that hold a fresh entry, for every mix of canonical, sub-region, fresh and old entries."""
    from imgdup.regions import _entry_pairs

    rng = np.random.default_rng(11)
    for _ in range(30):
        n, n_values = int(rng.integers(1, 60)), int(rng.integers(1, 8))
        slot, is_sub, is_new = rng.integers(0, n_values, n), rng.random(n) < 0.4, rng.random(n) < 0.3
        order = np.lexsort((~is_new, is_sub, slot))  # as region_links sorts them
        slot, is_sub, is_new = slot[order], is_sub[order], is_new[order]
        count = np.bincount(slot, minlength=n_values)
        fresh_canon = np.bincount(slot[~is_sub & is_new], minlength=n_values)
        fresh_sub = np.bincount(slot[is_sub & is_new], minlength=n_values)
        blocks = (
            np.cumsum(count) - count,
            count,
            np.bincount(slot[~is_sub], minlength=n_values),
            fresh_canon,
            fresh_sub,
        )
        u, v = rng.integers(0, n_values, 12), rng.integers(0, n_values, 12)

        def pairs(fresh_only: bool, blocks: Any = blocks, u: Any = u, v: Any = v) -> set[tuple[int, int]]:
            found = _entry_pairs(blocks, u, v, subs=subs, fresh_only=fresh_only)
            return {(a, b) for x, y in found for a, b in zip(x.tolist(), y.tolist())}

        every = pairs(False)
        assert pairs(True) == {(a, b) for a, b in every if is_new[a] or is_new[b]}
        assert all(not is_sub[a] or (subs and not is_sub[b]) for a, b in every)  # a canonical side in each


def _turn_alike_grid(rng: random.Random) -> int:
    """A grey grid of rings about its centre: alike in every turn, so turned versions reach the
    finer check."""
    rings = [rng.randrange(120) for _ in range(99)]
    return int.from_bytes(bytes(rings[(2 * r - 7) ** 2 + (2 * c - 7) ** 2] for r in range(8) for c in range(8)), "big")


def _assert_turned_checks_agree(items: list[Any], ia: list[int], ib: list[int], bits: int) -> None:
    """LinkHashes gives link_distance's numbers for the pairs (ia, ib), and the turned finer hashes
    (the regions' last 14 values) decide many of them."""
    from imgdup.regions import LinkHashes, link_distance

    hashes = LinkHashes(items, bits=bits)
    got = hashes.distances(np.array(ia), np.array(ib)).tolist()
    want = [link_distance(items[a], items[b], bits=bits) for a, b in zip(ia, ib)]
    assert got == want
    assert hashes.distances(np.array(ib), np.array(ia)).tolist() == got  # symmetric (see _distances_once)
    untailed = [(it[0], tuple(it[1][:-14]) if len(it[1]) > 32 else it[1], *it[2:]) for it in items]
    without = [link_distance(untailed[a], untailed[b], bits=bits) for a, b in zip(ia, ib)]
    assert sum(w != o for w, o in zip(want, without)) > 20  # the turned finer hashes decided these


@pytest.mark.parametrize("bits", [16, 64, 256])
def test_vectorised_turned_finer_checks_equal_the_one_pair_rule(bits: int) -> None:
    """The same with every image turned (--rotations) and carrying its turned finer hashes, grids
    alike in every turn (so turned versions reach the finer check), grey or colour: the finer
    check decides many pairs, and both versions decide them alike."""
    rng = random.Random(1000 + bits)
    items = []
    for _ in range(8):
        layout = [rng.getrandbits(bits) for _ in range(7)] + [rng.getrandbits(4 * bits) for _ in range(8)]
        layout += [rng.getrandbits(256) if rng.random() < 0.3 else 0 for _ in range(8)]  # mostly grey
        layout += [rng.getrandbits(bits) for _ in range(4)] + [rng.getrandbits(4 * bits) for _ in range(4)]
        layout.append(_turn_alike_grid(rng))
        base = (rng.getrandbits(bits), layout)
        items += [_item(rng, base, bits, regions=rng.random() < 0.9, variants=7) for _ in range(15)]
    ia = [rng.randrange(len(items)) for _ in range(3000)]
    ib = [rng.randrange(len(items)) if rng.random() < 0.3 else (i // 15) * 15 + rng.randrange(15) for i in ia]
    _assert_turned_checks_agree(items, ia, ib, bits)


@pytest.mark.parametrize("bits", [16, 64])
def test_link_table_grown_in_parts_gives_the_one_pair_rule(bits: int) -> None:
    """A LinkTable asked for items in several parts (some items again, some without rotation
    variants first and with them later: rows of different widths joined) gives every pair
    link_distance's number, and one row per distinct item."""
    from imgdup.regions import LinkTable, link_distance

    rng = random.Random(100 + bits)
    items = []
    for _ in range(6):
        layout = [rng.getrandbits(bits) for _ in range(7)] + [rng.getrandbits(4 * bits) for _ in range(8)]
        layout += [rng.getrandbits(256) for _ in range(8)]
        layout += [rng.getrandbits(bits) for _ in range(4)] + [rng.getrandbits(4 * bits) for _ in range(4)]
        layout.append(int.from_bytes(bytes(rng.randrange(120) for _ in range(64)), "big"))
        base = (rng.getrandbits(bits), layout)
        items += [_item(rng, base, bits, regions=rng.random() < 0.8, variants=0) for _ in range(10)]
        items += [_item(rng, base, bits, regions=rng.random() < 0.8, variants=7) for _ in range(5)]
    table = LinkTable(bits=bits)
    plain_first = [it for it in items if not it[2]]
    rows = {it: int(r) for it, r in zip(plain_first[:40], table.rows(plain_first[:40]))}
    for part in (plain_first[20:], items, items[::-1]):  # overlapping parts, then all of them again
        rows |= {it: int(r) for it, r in zip(part, table.rows(part))}
    assert sorted(rows.values()) == list(range(len(set(items))))
    ia = [rng.randrange(len(items)) for _ in range(2000)]
    ib = [rng.randrange(len(items)) if rng.random() < 0.3 else (i // 15) * 15 + rng.randrange(15) for i in ia]
    got = table.distances(np.array([rows[items[a]] for a in ia]), np.array([rows[items[b]] for b in ib])).tolist()
    assert got == [link_distance(items[a], items[b], bits=bits) for a, b in zip(ia, ib)]
    assert any(items[a][2] or items[b][2] for a, b in zip(ia, ib) if items[a][2] != items[b][2])


def _clusters(rng: random.Random, sizes: list[int], root_of: Callable[[int, int], str]) -> list[list[ImageRecord]]:
    """Groups of records around random base pictures (``_item``), in path order; member k of
    group g lies under ``root_of(g, k)``."""
    groups = []
    for g, size in enumerate(sizes):
        layout = [rng.getrandbits(64) for _ in range(7)] + [rng.getrandbits(256) for _ in range(16)]
        base = (rng.getrandbits(64), layout)
        records = []
        for k in range(size):
            plain, regs, turned, framed = _item(rng, base, 64, regions=True, variants=0)
            root = root_of(g, k)
            entry = FileEntry(f"{root}/{g}-{k:02d}.jpg", root, f"{g}-{k:02d}.jpg", 1, 1, 1, 1)
            traits = Traits(content=0.1 if framed else 1.0)
            records.append(ImageRecord(entry, 10, 10, plain, f"{g}-{k}", regions=regs, variants=turned, traits=traits))
        groups.append(sorted(records, key=lambda r: r.path))
    return groups


def test_batched_decisions_use_the_one_pair_distances(monkeypatch: pytest.MonkeyPatch) -> None:
    """decide_all (every distance of many clusters in one vectorised pass) reports for each member
    link_distance to the nearest kept file, and as diameter the largest link_distance of any two
    members; the same with a batch budget so small that every cluster goes alone and the
    diameter block by block."""
    from imgdup import policy
    from imgdup.models import Action
    from imgdup.regions import link_distance

    groups = _clusters(random.Random(5), [3 + 4 * g for g in range(6)], lambda g, k: "/d")

    def check(clusters: list) -> None:
        assert len(clusters) == len(groups)
        for c in clusters:
            items = {m.record.path: link_item(m.record) for m in c.members}
            keep = items[c.keep.path]
            for m in c.members:
                assert m.distance == link_distance(keep, items[m.record.path], bits=64)
                assert (m.action is Action.REMOVE) == (m.record is not c.keep and m.distance <= 8)
            assert c.diameter == max(link_distance(a, b, bits=64) for a in items.values() for b in items.values())

    batched = policy.decide_all(groups, threshold=8, keep=["path"])
    check(batched)
    assert len({c.diameter for c in batched}) > 1 and any(m.action is Action.REVIEW for c in batched for m in c.members)
    monkeypatch.setattr(policy, "_BATCH_PAIRS", 16)
    alone = policy.decide_all(groups, threshold=8, keep=["path"])
    check(alone)
    assert [(c.id, c.diameter, c.members) for c in alone] == [(c.id, c.diameter, c.members) for c in batched]


@pytest.mark.parametrize("variants", [0, 7])
def test_region_links_are_every_pair_within_the_threshold(variants: int) -> None:
    """The region search (candidates from one self-join over plain, content-box, sub-region and
    rotation values, then confirmed) finds exactly the pairs of images whose link_distance is
    within the threshold: none missed, none extra; images with two records take the nearer."""
    from imgdup.regions import link_distance, region_links

    rng = random.Random(variants)
    items = []
    for _ in range(15):
        layout = [rng.getrandbits(64) for _ in range(7)] + [rng.getrandbits(256) for _ in range(16)]
        base = (rng.getrandbits(64), layout)
        items += [_item(rng, base, 64, regions=rng.random() < 0.9, variants=variants) for _ in range(8)]
    images = [[it] for it in items[:100]] + [[a, b] for a, b in zip(items[100::2], items[101::2])]
    for threshold in (4, 10):
        want = [
            (i, j, d)
            for i in range(len(images))
            for j in range(i + 1, len(images))
            if (d := min(link_distance(a, b, bits=64) for a in images[i] for b in images[j])) <= threshold
        ]
        assert region_links(images, threshold, bits=64) == want
        assert len(want) > 20


def _groups(n: int, links: list[tuple[int, int]]) -> list[list[int]]:
    from imgdup.cluster import components
    from imgdup.models import Match

    return components(n, [Match(a, b, 0) for a, b in links])


@pytest.mark.parametrize("rounds", [0, 1, 16])
def test_spanning_region_links_connect_exactly_what_every_link_connects(
    rounds: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The search confirms only the links that join two groups not yet joined (a fresh copy
    of a photo is near all ~20 of its reference siblings: one confirmed link is enough), seeded
    with links known already; the groups are those of every link, never more, never fewer,
    with fresh images or without, whatever the known links are, and however many rounds of
    one candidate a group come before the rest are confirmed at once."""
    from imgdup import regions
    from imgdup.regions import link_distance, region_links

    monkeypatch.setattr(regions, "_ONE_EACH_ROUNDS", rounds)

    rng = random.Random(11)
    items = []
    for _ in range(12):
        layout = [rng.getrandbits(64) for _ in range(7)] + [rng.getrandbits(256) for _ in range(16)]
        base = (rng.getrandbits(64), layout)
        items += [_item(rng, base, 64, regions=rng.random() < 0.9, variants=0) for _ in range(10)]
    images = [[it] for it in items[:100]] + [[a, b] for a, b in zip(items[100::2], items[101::2])]
    n = len(images)
    for threshold in (4, 10):
        full = region_links(images, threshold, bits=64)
        confirmed = 0
        for trial in range(6):
            fresh = [rng.random() < 0.3 for _ in range(n)] if trial % 2 else None
            # known: links among the images that are not fresh (a remembered reference search)
            known = [(i, j) for i, j, _ in full if rng.random() < 0.5 and not (fresh and (fresh[i] or fresh[j]))]
            want = [(i, j) for i, j, _ in full if fresh is None or fresh[i] or fresh[j]]
            got = region_links(images, threshold, bits=64, fresh=fresh, spanning=True, known=known)
            assert _groups(n, [(i, j) for i, j, _ in got] + known) == _groups(n, want + known)
            for i, j, d in got:  # every link it gives is a real one, at its distance
                assert d == min(link_distance(a, b, bits=64) for a in images[i] for b in images[j]) <= threshold
            if rounds:  # a spanning forest's links, not every link (rounds=0: every candidate at once)
                assert len(got) < len(want) and len(got) < n
            confirmed += len(got)
        assert confirmed > 20


def test_batched_decisions_with_reference_files_measure_to_the_nearest_one() -> None:
    """With reference files in a cluster, every one of them is kept (distance to the keeper) and
    every other member is measured against the nearest reference file."""
    from imgdup import policy
    from imgdup.models import Action
    from imgdup.regions import link_distance

    groups = _clusters(
        random.Random(9), [4 + 3 * g for g in range(5)], lambda g, k: "/ref" if k % 3 == g % 2 else "/new"
    )

    def is_ref(r: ImageRecord) -> bool:
        return r.path.startswith("/ref/")

    clusters = policy.decide_all(groups, threshold=8, keep=["path"], protected=is_ref)
    reviewed = 0
    for c in clusters:
        item = {m.record.path: link_item(m.record) for m in c.members}
        refs = [p for p in item if p.startswith("/ref/")]
        assert is_ref(c.keep) and c.keep.path == min(refs)
        for m in c.members:
            if is_ref(m.record):
                assert m.action is Action.KEEP
                assert m.distance == link_distance(item[c.keep.path], item[m.record.path], bits=64)
            else:
                nearest = min(link_distance(item[p], item[m.record.path], bits=64) for p in refs)
                assert m.distance == nearest and (m.action is Action.REMOVE) == (nearest <= 8)
                reviewed += m.action is Action.REVIEW
    assert reviewed and any(m.action is Action.REMOVE for c in clusters for m in c.members)


def test_a_caption_with_dense_letters_is_peeled_whole() -> None:
    """On the reduced image a caption's line of text is a few rows of mostly ink: they ended the
    band in its middle (a 40 px meme band: 3 of 10 rows peeled), so the content box kept the rest
    of the band and its text. Busy rows that a plain row follows within a few rows are text; more
    busy rows than that are the picture, and the band ends before them."""
    pic = np.asarray(photo(6, (120, 90)).convert("L"), dtype=np.float64)
    meme = np.full((102, 120), 250.0)
    meme[12:, :] = pic
    meme[3:8, 5:115] = 20.0  # five rows of ink: letters that fill 92% of each row
    assert content_box(_noisy(meme, 2))[1] == 12
    tall = meme.copy()
    tall[3:11, 5:115] = 20.0  # eight rows of ink and one plain row: a dark stripe of the picture
    assert content_box(_noisy(tall, 2))[1] == 3


def _on_canvas(img: Image.Image, size: tuple[int, int], at: tuple[int, int]) -> Image.Image:
    canvas = Image.new("RGB", size, "white")
    canvas.paste(img, at)
    return canvas


def test_a_small_picture_on_a_plain_canvas_is_its_content_box() -> None:
    """Rows through a picture that covers under ~70% of a plain canvas's width are mostly
    canvas: they were read as a caption's text rows, and the peel ran through the picture to
    the canvas's blank corner (every such image then had the same content-box hash)."""
    pic = photo(7, (105, 79))
    grey = np.asarray(_on_canvas(pic, (250, 188), (15, 38)).convert("L"))
    left, top, right, bottom = content_box(_noisy(grey.astype(np.float64), 3))
    assert abs(left - 15) <= 1 and abs(top - 38) <= 1 and abs(right - 120) <= 1 and abs(bottom - 117) <= 1


@pytest.mark.parametrize("layout", ["off-centre", "border-0.5", "border-1.0"])
def test_different_pictures_on_the_same_plain_canvas_stay_apart(tmp_path: Path, layout: str) -> None:
    """Product shots and padded images: different pictures on the same white canvas must never
    be linked (they were, at distance 0, by the blank corner the peel had left as content box)."""
    for seed in range(40, 48):
        pic = photo(seed, (420, 315))
        if layout == "off-centre":
            img = _on_canvas(pic, (1000, 750), (60, 150))
        else:
            img = ImageOps.expand(pic, border=int(float(layout.split("-")[1]) * 420), fill="white")
        img.save(tmp_path / f"{layout}-{seed}.png")
    found = imgdup.find_duplicates([tmp_path], jobs=1)  # the defaults: regions on
    assert names(found) == []


def test_a_flat_content_box_is_no_content_box() -> None:
    """A picture too small to stop the peel (under the text-line bound) is passed over as a line
    of text; the box left is blank canvas, the same in every such image: the whole image is
    taken instead."""
    canvas = np.full((188, 250), 255.0)
    canvas[12:30, 10:34] = np.asarray(photo(8, (24, 18)).convert("L"), dtype=np.float64)
    grey = _noisy(canvas, 4, sigma=1.0)
    box = content_box(grey)
    left, top, right, bottom = box
    assert box == (0, 0, 250, 188) or grey[top:bottom, left:right].std() >= 4.0


def test_different_pictures_in_frames_wider_than_themselves_stay_apart(tmp_path: Path) -> None:
    """A white frame 1.5x the picture's width on every side is most of the image: the plain
    hashes of different pictures in it came within the threshold and their finer whole-image
    hashes agreed (mostly frame too), so they were linked. Their content boxes, which both
    images have, hold the pictures and disagree: then no comparison links them."""
    for seed in range(50, 70):
        ImageOps.expand(photo(seed, (300, 225)), border=450, fill="white").save(tmp_path / f"{seed}.jpg", quality=90)
    assert names(imgdup.find_duplicates([tmp_path], jobs=1)) == []
    copy = ImageOps.expand(photo(50, (300, 225)), border=450, fill="white")  # a re-encoded copy is still found
    copy.save(tmp_path / "copy.jpg", quality=60)
    assert names(imgdup.find_duplicates([tmp_path], jobs=1)) == [{"50", "copy"}]


# Flags of three stripes (RGB): their grey levels nearly agree, their colours do not.
_RED, _YELLOW, _BLUE, _BLACK = (206, 17, 38), (252, 209, 22), (0, 35, 149), (0, 0, 0)
_WHITE, _GREEN = (255, 255, 255), (0, 150, 57)


def _stripes(colours: tuple[tuple[int, int, int], ...], vertical: bool) -> Image.Image:
    size = (300, 200)
    img = Image.new("RGB", size)
    w, h = size
    for k, colour in enumerate(colours):
        box = (k * w // 3, 0, (k + 1) * w // 3, h) if vertical else (0, k * h // 3, w, (k + 1) * h // 3)
        img.paste(colour, box)
    return img


FLAGS = {
    "belgium": ((_BLACK, _YELLOW, _RED), True),
    "romania": ((_BLUE, _YELLOW, _RED), True),
    "bulgaria": ((_WHITE, _GREEN, _RED), False),
    "lithuania": ((_YELLOW, _GREEN, _RED), False),
    "russia": ((_WHITE, _BLUE, _RED), False),
}


def test_pictures_that_differ_only_in_colour_stay_apart(tmp_path: Path) -> None:
    """phash sees grey levels only: the flags of Belgium and Romania (black or blue stripe), or of
    Bulgaria, Lithuania and Russia, were linked at 2-6 bits and all but one of each removed.
    Where both images carry colour, their colour layouts must agree too."""
    for name, (colours, vertical) in FLAGS.items():
        _stripes(colours, vertical).save(tmp_path / f"{name}.png")
    assert names(imgdup.find_duplicates([tmp_path], jobs=1)) == []


def test_copies_with_changed_brightness_or_no_colour_are_still_found(tmp_path: Path) -> None:
    """The colour check compares colour layouts, not colours: a brighter or re-encoded copy and a
    smaller one still join their original, the flag that differs in colour does not. A grayscale
    copy has no colour to compare, and is as near one flag as the other: it joins both, and the
    other flag, beyond the threshold of the kept file, is left for review (never removed)."""
    from PIL import ImageEnhance

    belgium = _stripes(*FLAGS["belgium"])
    belgium.save(tmp_path / "belgium.png")
    _stripes(*FLAGS["romania"]).save(tmp_path / "romania.png")
    ImageEnhance.Brightness(belgium).enhance(1.25).save(tmp_path / "brighter.jpg", quality=80)
    belgium.resize((150, 100), Image.Resampling.LANCZOS).save(tmp_path / "smaller.jpg", quality=70)
    assert names(imgdup.find_duplicates([tmp_path], jobs=1)) == [{"belgium", "brighter", "smaller"}]
    belgium.convert("L").save(tmp_path / "grey.png")
    (cluster,) = imgdup.find_duplicates([tmp_path], jobs=1).clusters
    actions = {Path(m.record.path).stem: m.action for m in cluster.members}
    assert Path(cluster.keep.path).stem == "belgium"
    assert actions["romania"] is imgdup.Action.REVIEW
    assert actions["brighter"] is actions["grey"] is imgdup.Action.REMOVE and "smaller" in actions


def test_identical_grey_levels_in_other_colours_are_a_colour_filter(tmp_path: Path) -> None:
    """Two pictures with the same luminance in other colours: the grey levels agree in every
    detail, as a colour filter leaves them (a warm or cool cast, a hue shift), so they are one
    picture; the colour check asks only where the finer hashes agree loosely (flags of one
    layout in other colours: 32-64 bits of 256 apart)."""
    y = np.asarray(photo(21, (240, 180)).convert("L"))
    yy, xx = np.mgrid[0:180, 0:240]
    for name, sign in (("warm", 1), ("cold", -1)):
        cb = np.clip(128 + sign * 60 * np.sign(xx - 120), 0, 255).astype(np.uint8)
        cr = np.clip(128 - sign * 60 * np.sign(yy - 90), 0, 255).astype(np.uint8)
        planes = [Image.fromarray(p) for p in (y, cb, cr)]
        Image.merge("YCbCr", planes).convert("RGB").save(tmp_path / f"{name}.png")
    assert names(imgdup.find_duplicates([tmp_path], jobs=1)) == [{"warm", "cold"}]


def test_identical_plain_hashes_need_their_colours_to_agree_where_the_detail_is_loose() -> None:
    """The rule on constructed hashes: one plain hash (every other box different), colour layouts
    far apart; the whole images' finer hashes 40 bits apart (loose: the colours decide, no link)
    or 8 (a colour filter: linked at 0). The vectorised kernel says the same."""
    from imgdup.regions import LinkHashes, link_distance

    rng = random.Random(9)
    stripes = int.from_bytes(np.array([100, -40, -40, 100] * 8, dtype=np.int8).tobytes(), "big")
    other = int.from_bytes(np.array([-40, 100, 100, -40] * 8, dtype=np.int8).tobytes(), "big")
    fine0 = rng.getrandbits(256)

    def item(flips: int, colour: int) -> tuple:
        coarse = [rng.getrandbits(64) for _ in range(7)]
        fine = [fine0 ^ ((1 << flips) - 1), *(rng.getrandbits(256) for _ in range(7))]
        return (12345, (*coarse, *fine, *[colour] * 8), (), False)

    for flips, want in ((40, 64), (8, 0)):
        a, b = item(0, stripes), item(flips, other)
        assert link_distance(a, b, bits=64) == want
        assert LinkHashes([a, b], bits=64).distances(np.array([0]), np.array([1])).tolist() == [want]


_UNDO = {  # the transpose that stores an upright picture under each EXIF orientation
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_colour_layouts_of_an_exif_rotated_jpeg_are_those_of_the_upright_picture(
    tmp_path: Path, orientation: int
) -> None:
    """A JPEG's colour layouts come from its reduced decode before it is turned upright: they
    must be turned as the picture is, or an EXIF-rotated copy would differ from its original."""
    from imgdup.regions import colour_grids, colour_layout

    upright = _stripes(*FLAGS["romania"]).resize((240, 180))
    upright.paste((0, 150, 57), (0, 0, 120, 60))  # no symmetry: every turn and mirror shows
    upright.save(tmp_path / "upright.png")
    stored = upright.transpose(_UNDO[orientation]) if orientation in _UNDO else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.save(tmp_path / "stored.jpg", quality=95, exif=exif)
    layouts = []
    for entry in discover([str(tmp_path)])[0]:  # stored.jpg, then upright.png
        record = hash_entry(entry, HashSettings(regions=True))
        assert isinstance(record, ImageRecord)
        layouts.append(colour_grids(colour_layout(record.regions)))
    (grid_a, rms_a), (grid_b, rms_b) = layouts
    assert (rms_a > 30).all() and np.abs(rms_a - rms_b).max() < 6
    unit_a, unit_b = grid_a / rms_a[:, None, None], grid_b / rms_b[:, None, None]
    assert np.abs(unit_a - unit_b).max() < 0.25


@pytest.mark.parametrize("cast", [(1.12, 1.0, 0.82), (0.85, 1.0, 1.15)])
def test_a_colour_filtered_copy_is_still_found(dogs: Path, tmp_path: Path, cast: tuple[float, float, float]) -> None:
    """A warm or cool cast keeps the grey levels: the colour check split such copies off their
    original (a cool cast lost 12 of 20 dogs-1000 copies, these three among them) until it
    asked only where the finer hashes agree loosely."""
    for name in ("00000503.jpg", "00000504.jpg", "00000505.jpg"):
        pic = ImageOps.exif_transpose(Image.open(dogs / name)).convert("RGB")
        pic.save(tmp_path / f"{name[:8]}_a.jpg", quality=92)
        arr = np.clip(np.asarray(pic, dtype=np.float64) * cast, 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(tmp_path / f"{name[:8]}_b.jpg", quality=90)
    found = sorted(sorted(group) for group in names(imgdup.find_duplicates([tmp_path], jobs=1)))
    assert found == [[f"0000050{k}_a", f"0000050{k}_b"] for k in (3, 4, 5)]


def test_the_search_work_grows_with_the_copies_of_one_picture_not_their_square(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """QA pass 22: the copies of one file (a placeholder saved in every class folder) are one
    search node, but each entered every region value of its own: each entry met every other,
    so the candidate pairs grew as the square of the copies (1,000 entries of one value on
    100,000 files: a million pairs each, 1.0 GB more memory). Counted here: the pairs that the
    search builds (every candidate and confirmation goes through ``_cross``)."""
    from imgdup import regions

    copies = 120
    photo(7).save(tmp_path / "a.png")
    data = (tmp_path / "a.png").read_bytes()
    for i in range(1, copies):
        (tmp_path / f"a{i:03d}.png").write_bytes(data)
    photo(8).save(tmp_path / "b.jpg", quality=90)
    photo(8).save(tmp_path / "b2.jpg", quality=70)  # a near copy: still found
    for i in range(10):
        photo(20 + i).save(tmp_path / f"u{i}.jpg")
    built: list[int] = []
    real = regions._cross

    def counting(*args: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = real(*args)
        built.append(len(x))
        return x, y

    monkeypatch.setattr(regions, "_cross", counting)
    result = imgdup.find_duplicates(tmp_path, cache=None, jobs=1)
    assert sorted(len(c.members) for c in result.clusters) == [2, copies]
    assert sum(built) < copies * copies // 4  # it was 4 x copies^2 and more


@pytest.mark.parametrize("bits", [16, 64, 256])
def test_vectorised_turned_same_share_edge_equals_the_one_pair_rule(bits: int) -> None:
    """The same about TURNED_SAME_SHARE's edge: turned versions whose whole image's finer hashes are
    drawn just within, at and just past it of the base (the box then not asked, or asked), with
    content boxes that agree, sit at FINE_SHARE's edge or differ: both versions decide alike."""
    from imgdup.regions import TURNED_SAME_SHARE

    edge = int(TURNED_SAME_SHARE * 4 * bits)
    rng = random.Random(2000 + bits)
    items = []
    for _ in range(8):
        layout = [rng.getrandbits(bits) for _ in range(7)] + [rng.getrandbits(4 * bits) for _ in range(8)]
        layout += [0] * 8  # grey: the colour check passes
        layout += [rng.getrandbits(bits) for _ in range(4)] + [rng.getrandbits(4 * bits) for _ in range(4)]
        layout.append(_turn_alike_grid(rng))
        base = (rng.getrandbits(bits), layout)
        for _ in range(15):
            plain, regs, turned, framed = _item(rng, base, bits, regions=True, variants=7)
            regs = list(regs)
            if len(regs) == 46:  # carries its turned finer hashes: put them about the edge
                for k in range(7):
                    regs[32 + k] = _near(rng, layout[7], 4 * bits, rng.choice([edge - 1, edge, edge + 1, 2 * bits]))
                    regs[39 + k] = _near(rng, layout[8], 4 * bits, rng.choice([0, bits, bits + 1, 3 * bits]))
            items.append((plain, tuple(regs), turned, framed))
    ia = [rng.randrange(len(items)) for _ in range(3000)]
    ib = [(i // 15) * 15 + rng.randrange(15) for i in ia]
    _assert_turned_checks_agree(items, ia, ib, bits)


def _backdrop(side: int, kind: str) -> Image.Image:
    """A grey studio backdrop: a radial gradient (light centre, darker corners) or a sweep
    (light top, darker towards the floor)."""
    yy, xx = np.mgrid[0:side, 0:side] / side
    if kind == "gradient":
        grey = 235 - 150 * np.hypot(xx - 0.5, yy - 0.5) / 0.5**0.5
    else:
        grey = 230 - 60 * yy**2 - 20 * (xx - 0.5) ** 2
    return Image.fromarray(np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[..., None], 3, axis=2), "RGB")


def _on_backdrop(seed: int, kind: str, share: float, side: int = 400) -> Image.Image:
    """Picture ``seed`` centred on a backdrop at ``share`` of its side (an oval cut-out on the sweep)."""
    canvas = _backdrop(side, kind)
    pic = photo(seed, (320, 240)).resize((int(side * share), int(side * share * 3 / 4)))
    mask = None
    if kind == "sweep":
        mask = Image.new("L", pic.size, 0)
        ImageDraw.Draw(mask).ellipse((0, 0, pic.width - 1, pic.height - 1), fill=255)
    canvas.paste(pic, ((side - pic.width) // 2, (side - pic.height) // 2), mask)
    return canvas


def test_different_pictures_on_one_gradient_backdrop_stay_apart(tmp_path: Path) -> None:
    """Different pictures at a quarter of a radial gradient's side, which the content box cannot
    peel: every hash, the finer ones too, is mostly the gradient, and pairs of them were linked
    (QA pass 35). Their thumbnails show one backdrop with a different picture in its middle."""
    from imgdup.regions import LinkHashes, link_distance

    for seed in range(40, 48):
        _on_backdrop(seed, "gradient", 0.25).save(tmp_path / f"{seed}.jpg", quality=90)
    found = imgdup.find_duplicates([tmp_path], jobs=1)
    assert names(found) == []
    # the numpy kernel gives the one-pair rule's distances, in either order
    items = [link_item(r) for r in found.records]
    ia, ib = np.triu_indices(len(items), 1)
    hashes = LinkHashes(items, bits=64)
    want = [link_distance(items[a], items[b], bits=64) for a, b in zip(ia, ib)]
    assert hashes.distances(ia, ib).tolist() == want == hashes.distances(ib, ia).tolist()


@pytest.mark.parametrize(("kind", "share"), [("gradient", 0.25), ("sweep", 0.65)])
def test_copies_of_a_picture_on_a_backdrop_are_still_found(tmp_path: Path, kind: str, share: float) -> None:
    """A 5% crop and a sticker in the middle of a picture on a backdrop are copies, not different
    pictures on one backdrop: a crop moves a large picture's outline by under a thumbnail cell,
    so most of its cells differ (the first version of the backdrop rule parted 5 of these 6 crops
    on the sweep), and a sticker differs in a cell or two (it parted 4 of the 6 on the gradient)."""
    for seed in range(43, 49):
        img = _on_backdrop(seed, kind, share)
        img.save(tmp_path / f"{seed}.jpg", quality=90)
        w, h = img.size
        img.crop((w // 40, h // 40, w - w // 40, h - h // 40)).save(tmp_path / f"{seed}-crop.jpg", quality=90)
        ImageDraw.Draw(img).ellipse(
            (w // 2 - w // 20, h // 2 - w // 20, w // 2 + w // 20, h // 2 + w // 20), fill="red"
        )
        img.save(tmp_path / f"{seed}-sticker.jpg", quality=90)
    found = names(imgdup.find_duplicates([tmp_path], jobs=1))
    for seed in range(43, 49):  # different pictures on the gradient may still join (see the README)
        assert any({f"{seed}", f"{seed}-crop", f"{seed}-sticker"} <= group for group in found), seed
