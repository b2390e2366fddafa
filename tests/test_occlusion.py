"""A copy with a watermark, a logo or a caption in one corner joins its original (regions'
occlusion rule, :func:`imgdup.regions.occluded_distance`), while different pictures that share
three quarters of the image stay apart."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

import imgdup
from imgdup import regions

from .synth import photo


def watermarked(img: Image.Image, corner: str) -> Image.Image:
    """The accuracy benchmark's watermark (generate.py): a light box of 30% x 10% of the image
    with a line of text, 2% in from the sides of one corner (``corner``: tl, tr, bl or br)."""
    out = img.copy()
    w, h = round(img.width * 0.3), round(img.height * 0.1)
    margin = round(min(img.size) * 0.02)
    left = margin if corner[1] == "l" else img.width - w - margin
    top = margin if corner[0] == "t" else img.height - h - margin
    draw = ImageDraw.Draw(out)
    draw.rectangle((left, top, left + w, top + h), fill=(245, 245, 245), outline=(20, 20, 20))
    font = ImageFont.load_default(size=round(h * 0.6))
    draw.text((left + margin, top + h * 0.15), "(c) PHOTO", fill=(200, 30, 30), font=font)
    return out


def names(result: imgdup.ScanResult) -> list[set[str]]:
    return [{Path(m.record.path).stem for m in c.members} for c in result.clusters]


# One photo per corner whose watermarked copy the rule before this one did not find: plain
# hashes 10-14 bits apart (the default threshold is 8), and no region of one near the other's.
@pytest.mark.parametrize(("seed", "corner"), [(1, "tr"), (1, "bl"), (12, "tl"), (18, "br")])
def test_corner_watermarked_copy_joins_its_original(tmp_path: Path, seed: int, corner: str) -> None:
    original = photo(seed, (400, 300))
    original.save(tmp_path / "original.jpg", quality=92)
    watermarked(original, corner).save(tmp_path / "marked.jpg", quality=92)
    watermarked(original, corner).save(tmp_path / "marked_q60.jpg", quality=60)
    photo(seed + 100, (400, 300)).save(tmp_path / "other.jpg", quality=92)
    found = imgdup.find_duplicates([tmp_path], jobs=1)
    assert names(found) == [{"original", "marked", "marked_q60"}]
    assert all(m.distance <= found.settings.threshold for m in found.clusters[0].members)


def _object_in_a_quadrant(background: Image.Image, seed: int) -> Image.Image:
    """``background`` with another picture filling its bottom-right quadrant."""
    out = background.copy()
    w, h = out.width // 2, out.height // 2
    out.paste(photo(seed, (w, h)), (w, h))
    return out


def test_a_different_object_filling_a_quadrant_is_not_a_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same background, a different picture in one quadrant: the top and the left halves agree
    exactly, as they do for a watermarked copy; what tells them apart is how much of the
    quadrant differs (regions.OCCLUDED_CELLS), and without that bound they would be linked."""
    background = photo(30, (400, 300))
    _object_in_a_quadrant(background, 31).save(tmp_path / "a.jpg", quality=92)
    _object_in_a_quadrant(background, 32).save(tmp_path / "b.jpg", quality=92)
    assert names(imgdup.find_duplicates([tmp_path], jobs=1)) == []
    monkeypatch.setattr(regions, "OCCLUDED_CELLS", 16)  # any change in the quadrant passes
    assert names(imgdup.find_duplicates([tmp_path], jobs=1)) == [{"a", "b"}]


def test_pictures_on_a_blank_canvas_are_not_compared_by_their_blank_halves(tmp_path: Path) -> None:
    """Two small pictures in the same corner of one plain canvas differ in a few grid cells, as
    a watermark does, and their other halves are blank, alike in every such image: they stay
    apart, and the blank halves carry no hash (regions.HALF_FLAT_STD: a value shared by every
    blank half would make every such pair a candidate)."""
    for name, seed in (("a", 41), ("b", 42)):
        canvas = Image.new("RGB", (400, 300), (250, 250, 250))
        canvas.paste(photo(seed, (60, 45)), (262, 190))
        canvas.save(tmp_path / f"{name}.png")
    found = imgdup.find_duplicates([tmp_path], jobs=1)
    assert names(found) == []
    for record in found.records:
        parts = regions.occlusion_parts(record.regions)
        assert parts is not None
        coarse, fine, _grid = parts
        assert coarse[0] == coarse[2] == fine[0] == fine[2] == 0  # top and left: blank
        assert coarse[1] and coarse[3] and fine[1] and fine[3]  # bottom and right hold the picture
