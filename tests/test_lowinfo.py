"""Low-information images (solid colours, blank scans) are never matched by their hash."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

import imgdup
import imgdup.report
from imgdup.hashing import is_low_information

from .synth import photo

COLOURS = [(0, 0, 0), (255, 255, 255), (128, 128, 128), (200, 30, 30), (30, 200, 30), (30, 30, 200),
           (250, 250, 245), (5, 5, 5), (127, 127, 127)]  # fmt: skip


def blank_scan(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(np.clip(238 + rng.normal(0, 6, (600, 450)), 0, 255).astype(np.uint8), "L")


def test_detector() -> None:
    assert all(is_low_information(Image.new("RGB", (64, 48), c)) for c in COLOURS)
    assert is_low_information(blank_scan(1))
    assert not any(is_low_information(photo(s)) for s in range(10))


def test_distinct_solid_colours_are_never_duplicates(tmp_path: Path) -> None:
    for i, c in enumerate(COLOURS):
        Image.new("RGB", (320, 240), c).save(tmp_path / f"solid-{i}.png")
    result = imgdup.find_duplicates([tmp_path], threshold=64, jobs=1)  # even at the loosest threshold
    assert result.clusters == ()
    assert len(result.low_information) == len(COLOURS)


def test_byte_identical_blanks_cluster_and_stay_out_of_photo_clusters(tmp_path: Path) -> None:
    Image.new("RGB", (320, 240), (255, 255, 255)).save(tmp_path / "white.png")
    shutil.copyfile(tmp_path / "white.png", tmp_path / "white-copy.png")
    blank_scan(1).save(tmp_path / "scan-1.png")
    blank_scan(2).save(tmp_path / "scan-2.png")  # the same page scanned again: only the noise differs
    for s in (1, 2):
        photo(s).save(tmp_path / f"photo-{s}.jpg", quality=90)
        photo(s).save(tmp_path / f"photo-{s}-q60.jpg", quality=60)
    result = imgdup.find_duplicates([tmp_path], threshold=16, jobs=1)
    groups = [{Path(m.record.path).name for m in c.members} for c in result.clusters]
    assert {"white.png", "white-copy.png"} in groups
    assert {"photo-1.jpg", "photo-1-q60.jpg"} in groups and {"photo-2.jpg", "photo-2-q60.jpg"} in groups
    assert len(groups) == 3  # the blank scans join nothing
    assert {Path(r.path).name for r in result.low_information} == {"scan-1.png", "scan-2.png"}

    doc = json.loads(imgdup.report.to_json(result))
    assert {Path(d["path"]).name for d in doc["low_information"]} == {"scan-1.png", "scan-2.png"}
    assert doc["summary"]["low_information"] == 2
    text = imgdup.report.format_text(result)
    assert "low information" in text and "scan-1.png" in text


def star_field(seed: int, stars: int = 300) -> Image.Image:
    """A night sky: faint sensor noise and small blurred stars (an astronomy dataset's frame)."""
    rng = np.random.default_rng(seed)
    sky = 8 + rng.normal(0, 2, (512, 512))
    for _ in range(stars):
        y, x = rng.integers(3, 509, 2)
        sky[y - 1 : y + 2, x - 1 : x + 2] += rng.uniform(60, 250)
    return Image.fromarray(np.clip(sky, 0, 255).astype(np.uint8), "L").filter(ImageFilter.GaussianBlur(0.8))


def test_sparse_detail_is_information_and_dust_is_not() -> None:
    # the 32x32 reduction averages the stars away (std ~2.9, under LOW_INFO_STD)
    assert float(np.asarray(star_field(0).resize((32, 32), Image.Resampling.BOX), dtype=np.float64).std()) < 4
    assert not any(is_low_information(star_field(s)) for s in range(4))
    assert not is_low_information(star_field(4, stars=80))
    dusty = np.asarray(blank_scan(3)).copy()
    for y, x in np.random.default_rng(3).integers(5, 440, (10, 2)):
        dusty[y : y + 3, x : x + 3] = 40  # a handful of dust specks on a blank page
    assert is_low_information(Image.fromarray(dusty, "L"))


@pytest.mark.parametrize("decode", ["draft", "full"])
def test_star_field_copies_match_and_other_fields_do_not(tmp_path: Path, decode: str) -> None:
    for s in range(3):
        star_field(s).save(tmp_path / f"field-{s}.png")
    star_field(0).save(tmp_path / "field-0-q90.jpg", quality=90)
    result = imgdup.find_duplicates([tmp_path], jobs=1, decode=decode)
    assert result.low_information == ()
    groups = [{Path(m.record.path).name for m in c.members} for c in result.clusters]
    assert groups == [{"field-0.png", "field-0-q90.jpg"}]
