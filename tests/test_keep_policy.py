"""The keep policy ranks copies of one picture relative to each other (issue 9, issue 8 item 5).

Every case names its copies so that path order, "most pixels" or a higher JPEG quality would
pick the wrong file: only the sibling-relative rule keeps the right one.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import io
import logging
import os
import random
import shutil
import signal
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

import imgdup
from imgdup import hashing, pipeline, quality
from imgdup.models import Quality

from .synth import photo

# The accuracy benchmark's graphics generator itself, not a copy of it.
flat_graphic = importlib.import_module("benchmarks.accuracy.graphics").picture


def detailed(seed: int, size: tuple[int, int] = (400, 300)) -> Image.Image:
    """A synthetic photo with pixel-level texture, as a real camera picture has."""
    rng = np.random.default_rng(seed)
    arr = np.asarray(photo(seed, size), dtype=np.float64) + rng.normal(0, 12, (size[1], size[0], 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def keeper(root: Path) -> tuple[str, str]:
    result = imgdup.find_duplicates([root], threshold=8, jobs=1)
    (cluster,) = result.clusters
    return Path(cluster.keep.path).name, cluster.keep_reason


def decoded(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


@pytest.mark.parametrize("seed", [1, 2])
def test_colour_kept_over_a_grayscale_copy(tmp_path: Path, seed: int) -> None:
    img = detailed(seed)
    img.save(tmp_path / "z_colour.jpg", quality=85)
    img.convert("L").save(tmp_path / "a_grey.jpg", quality=95)
    img.convert("L").convert("RGB").save(tmp_path / "b_grey_rgb.jpg", quality=95)  # grey stored as RGB
    assert keeper(tmp_path) == ("z_colour.jpg", "colour (another copy is grayscale)")


@pytest.mark.parametrize("seed", [4, 5])
def test_a_copy_reduced_to_256_colours_is_no_lossless_copy(tmp_path: Path, seed: int) -> None:
    """A palette PNG (or BMP) of a photo holds a quantisation of it: it ranked as lossless (q100)
    and was kept over the camera JPEG and over an exact-pixel copy; a palette file is as
    unknown-lossy as a GIF of the same 256 colours."""
    img = detailed(seed)
    img.save(tmp_path / "z_camera.jpg", quality=90)
    decoded(tmp_path / "z_camera.jpg").quantize(256).save(tmp_path / "a_web_256.png")
    decoded(tmp_path / "z_camera.jpg").quantize(256).save(tmp_path / "b_web_256.bmp")
    name, _reason = keeper(tmp_path)
    assert name == "z_camera.jpg"


@pytest.mark.parametrize("method", [Image.Resampling.BICUBIC, Image.Resampling.LANCZOS])
def test_source_kept_over_its_4x_enlargement(tmp_path: Path, method: Image.Resampling) -> None:
    img = detailed(3, (200, 150))
    img.save(tmp_path / "z_small.jpg", quality=85)
    decoded(tmp_path / "z_small.jpg").resize((800, 600), method).save(tmp_path / "a_big.jpg", quality=95)
    assert keeper(tmp_path) == ("z_small.jpg", "the others are enlargements of it")


@pytest.mark.parametrize(("factor", "saved"), [(1.1, "png"), (1.2, "q95"), (1.5, "q95"), (2.0, "q92"), (3.0, "q95")])
def test_source_kept_over_its_nearest_neighbour_enlargement(tmp_path: Path, factor: float, saved: str) -> None:
    """A nearest-neighbour enlargement's blocky steps fill the top of its spectrum, which the
    spectral test took for detail: 2x and 3x copies, and every copy under 1.25x, were kept as
    "most pixels (WxH), not an enlargement" (QA pass 15). Its repeated columns and rows tell it."""
    img = detailed(8, (300, 220))
    img.save(tmp_path / "z_source.jpg", quality=75)
    size = (round(300 * factor), round(220 * factor))
    big = decoded(tmp_path / "z_source.jpg").resize(size, Image.Resampling.NEAREST)
    if saved == "png":
        big.save(tmp_path / "a_nearest.png")
    else:
        big.save(tmp_path / "a_nearest.jpg", quality=int(saved[1:]))
    assert keeper(tmp_path) == ("z_source.jpg", "the others are enlargements of it")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_original_repeats_no_columns_of_its_smaller_copies(seed: int) -> None:
    """The nearest-neighbour test does not call a camera file an enlargement of its downscales."""
    img = detailed(seed, (400, 300))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=75)
    grey = np.asarray(Image.open(io.BytesIO(out.getvalue())).convert("L"))
    top, left = (300 - 256) // 2 // 8 * 8, (400 - 256) // 2 // 8 * 8
    profile = quality.repeat_profile(grey[top : top + 256, left : left + 256], 300, 400, top, left)
    for scale in (0.95, 0.9, 0.8, 0.75, 2 / 3, 0.5, 1 / 3):
        assert not quality.nearest_enlargement(profile, (400, 300), (round(400 * scale), round(300 * scale)))


def test_a_drawing_repeats_no_columns_of_its_smaller_copies() -> None:
    """A flat drawing has columns and rows with nothing across them wherever no edge is: those
    passed for the repeats of a nearest-neighbour enlargement, and a generated graphic's PNG
    original lost to its JPEG copy (QA pass 15). Such a picture is not tested."""
    rng = random.Random(11)
    found = []
    for k in range(150):
        out = io.BytesIO()
        flat_graphic(rng).save(out, "JPEG", quality=92)
        grey = np.asarray(Image.open(io.BytesIO(out.getvalue())).convert("L"))
        h, w = grey.shape
        profile = quality.repeat_profile(grey, h, w, 0, 0)
        for scale in (0.95, 0.9, 0.8, 0.5):
            if quality.nearest_enlargement(profile, (w, h), (round(w * scale), round(h * scale))):
                found.append((k, scale))
    assert found == []


def _text_drawing(rng: random.Random) -> Image.Image:
    """A flat drawing with many edges: a window of text lines, a title bar and boxes."""
    w, h = rng.randint(300, 900), rng.randint(250, 700)
    img = Image.new("RGB", (w, h), tuple(rng.randrange(200, 256) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, w, rng.randint(20, 60)), fill=tuple(rng.randrange(256) for _ in range(3)))
    for _ in range(rng.randint(5, 40)):
        xy = (rng.randint(0, w // 2), rng.randint(0, h))
        draw.text(xy, f"lorem ipsum dolor {rng.randint(0, 10**6)}", fill=tuple(rng.randrange(120) for _ in range(3)))
    for _ in range(rng.randint(1, 4)):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        box = (x0, y0, x0 + rng.randint(20, w // 3), y0 + rng.randint(20, h // 3))
        draw.rectangle(box, fill=tuple(rng.randrange(256) for _ in range(3)))
    return img


def _profile(img: Image.Image) -> tuple[bytes, tuple[int, int]]:
    grey = np.asarray(img.convert("L"))
    h, w = grey.shape
    side_y, side_x = min(h, 256), min(w, 256)
    top, left = (h - side_y) // 2 // 8 * 8, (w - side_x) // 2 // 8 * 8
    return quality.repeat_profile(grey[top : top + side_y, left : left + side_x], h, w, top, left), (w, h)


@pytest.mark.parametrize("factor", [2, 3])
def test_source_kept_over_a_lossless_nearest_neighbour_enlargement_of_a_drawing(tmp_path: Path, factor: int) -> None:
    """A drawing's flat columns say nothing (FLAT_BOUNDARY), so its PNG enlarged 2x (nearest
    neighbour) was kept over it as "most pixels (1280x800), not an enlargement" (QA pass of
    session 20). Stored losslessly, the enlargement repeats its columns and rows exactly."""
    img = _text_drawing(random.Random(3))
    img.save(tmp_path / "z_source.png")
    img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST).save(tmp_path / "a_big.png")
    assert keeper(tmp_path) == ("z_source.png", "the others are enlargements of it")


def test_a_lossless_drawing_repeats_no_columns_of_its_smaller_copies() -> None:
    """The exact-repeat test finds nothing in drawings that are not enlargements (PNG: no JPEG
    noise), generated graphics and text drawings alike, at any smaller size; and finds most of
    text drawings' 2x and 3x nearest-neighbour enlargements (104 of 120 when written: a crop with
    few edges is not tested)."""
    rng = random.Random(17)
    false, found, tried = [], 0, 0
    for k in range(120):
        img = _text_drawing(rng) if k % 2 else flat_graphic(rng)
        profile, (w, h) = _profile(img)
        for scale in (0.95, 0.9, 0.8, 0.75, 2 / 3, 0.5, 1 / 3):
            if quality.nearest_enlargement(profile, (w, h), (round(w * scale), round(h * scale))):
                false.append((k, scale))
        if k % 2:
            for f in (2, 3):
                big = img.resize((img.width * f, img.height * f), Image.Resampling.NEAREST)
                profile, size = _profile(big)
                tried += 1
                found += quality.nearest_enlargement(profile, size, img.size)
    assert false == []
    assert found >= 0.8 * tried, (found, tried)


def test_the_reason_says_why_the_largest_copy_lost(tmp_path: Path) -> None:
    """The reason also says why the largest copy lost, the one a user expects to be kept: a source
    kept over its enlargement and a smaller thumbnail was explained only as "most pixels" (against
    the thumbnail), which reads as if the enlargement were not there."""
    img = detailed(3, (200, 150))
    img.save(tmp_path / "z_small.jpg", quality=85)
    decoded(tmp_path / "z_small.jpg").resize((800, 600), Image.Resampling.BICUBIC).save(tmp_path / "a_big.jpg")
    img.resize((100, 75), Image.Resampling.LANCZOS).save(tmp_path / "b_thumb.jpg", quality=90)
    why = "most pixels (200x150), not an enlargement; a larger copy (800x600) is an enlargement of it"
    assert keeper(tmp_path) == ("z_small.jpg", why)
    # A framed copy, larger still, is not the one a user asks about: its frame shows.
    _bordered(decoded(tmp_path / "a_big.jpg"), 0.1, (255, 255, 255)).save(tmp_path / "c_framed.jpg", quality=95)
    assert keeper(tmp_path) == ("z_small.jpg", why)


@pytest.mark.parametrize("factor", [1.6, 0.6])
def test_a_colour_filtered_copy_loses_to_the_true_colours(tmp_path: Path, factor: float) -> None:
    """A filter (saturation up or down) hardly moves the grey thumbnails the overlay test looks
    at; a filtered copy saved at a higher JPEG quality won on it (bench_keepers.py: 2 of 100)."""
    img = detailed(17)
    img.save(tmp_path / "z_original.jpg", quality=80)
    ImageEnhance.Color(img).enhance(factor).save(tmp_path / "a_filter.jpg", quality=95)
    img.resize((200, 150), Image.Resampling.LANCZOS).save(tmp_path / "b_thumb.jpg", quality=90)
    assert keeper(tmp_path) == ("z_original.jpg", "true colours (another copy's colours were changed: a filter)")
    img.save(tmp_path / "c_q70.jpg", quality=70)
    result = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1)
    (cluster,) = result.clusters
    records = [m.record for m in cluster.members]
    assert {Path(r.path).name for r, v in zip(records, quality.assess(records)) if v.recoloured} == {"a_filter.jpg"}
    assert Path(cluster.keep.path).name == "z_original.jpg"


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_a_bicubic_enlargement_by_half_is_told_by_its_source(tmp_path: Path, seed: int) -> None:
    """A 1.5x bicubic enlargement saved at q85: its block noise fills the band its own spectrum is
    tested on, and it was kept over its source (215 of 993 clusters of bench_e2e.py's 20k set).
    Its source holds far more in the same band of its own resolution: the source's spectrum,
    measured for that alone, tells (and "most pixels" then has no say)."""
    detailed(seed, (400, 300)).save(tmp_path / "z_original.jpg", quality=75)
    img = decoded(tmp_path / "z_original.jpg")
    img.resize((600, 450), Image.Resampling.BICUBIC).save(tmp_path / "a_upscale.jpg", quality=85)
    img.save(tmp_path / "b_q70.jpg", quality=70)
    name, reason = keeper(tmp_path)
    assert name == "z_original.jpg", reason


@pytest.mark.parametrize("seed", [24, 25])
def test_a_larger_original_is_no_enlargement_of_its_sharp_small_copies(tmp_path: Path, seed: int) -> None:
    """The other side of the sibling test: a Lanczos copy at 2/3 or 3/4 of the size, saved at
    q90 or as WebP, holds a little more near its resolution than the original (a q75 JPEG) does
    in the same band of its own, but nowhere near five times more."""
    detailed(seed, (600, 450)).save(tmp_path / "z_original.jpg", quality=75)
    img = decoded(tmp_path / "z_original.jpg")
    img.resize((400, 300), Image.Resampling.LANCZOS).save(tmp_path / "a_two_thirds.jpg", quality=90)
    img.resize((450, 338), Image.Resampling.LANCZOS).save(tmp_path / "b_three_quarters.webp", quality=75)
    img.save(tmp_path / "c_q70.jpg", quality=70)
    name, reason = keeper(tmp_path)
    assert name == "z_original.jpg" and reason.startswith("highest JPEG quality"), reason


def test_larger_original_kept_over_its_downscale(tmp_path: Path) -> None:
    img = detailed(4)
    img.save(tmp_path / "z_original.jpg", quality=75)
    img.resize((200, 150), Image.Resampling.LANCZOS).save(tmp_path / "a_half.jpg", quality=95)
    name, reason = keeper(tmp_path)
    assert name == "z_original.jpg" and reason.startswith("most pixels"), reason


def test_watermarked_copy_loses_to_what_the_others_agree_on(tmp_path: Path) -> None:
    img = detailed(5)
    img.save(tmp_path / "z_original.jpg", quality=80)
    img.resize((300, 225), Image.Resampling.LANCZOS).save(tmp_path / "m_smaller.jpg", quality=90)
    img.resize((200, 150), Image.Resampling.LANCZOS).save(tmp_path / "n_small.jpg", quality=90)
    marked = img.copy()
    draw = ImageDraw.Draw(marked)
    draw.rectangle((262, 262, 392, 292), fill=(245, 245, 245), outline=(20, 20, 20))  # 30% x 10%
    draw.text((270, 268), "(c) PHOTO", fill=(200, 30, 30))
    marked.save(tmp_path / "a_marked.jpg", quality=95)  # same size, higher quality, first path
    assert keeper(tmp_path) == ("z_original.jpg", "no overlay or edit (another copy differs where the others agree)")


@pytest.mark.parametrize(("seed", "box"), [(7, (40, 30, 360, 270)), (8, (0, 0, 368, 276)), (9, (20, 15, 380, 285))])
def test_a_zoomed_crop_loses_to_the_whole_picture(tmp_path: Path, seed: int, box: tuple[int, ...]) -> None:
    """A centre (or corner) crop enlarged back to the original's size and saved at a higher JPEG
    quality was kept, and the camera file, the only one holding the whole picture, removed:
    "highest JPEG quality (q92 vs q75)" (QA pass 35: 29 of 29 dogs-1000 photos)."""
    img = detailed(seed)
    img.save(tmp_path / "z_original.jpg", quality=75)
    img.crop(box).resize(img.size, Image.Resampling.LANCZOS).save(tmp_path / "a_zoomed.jpg", quality=92)
    assert keeper(tmp_path) == (
        "z_original.jpg", "the whole picture (another copy of its size shows only part of it: a crop)"
    )  # fmt: skip


def test_an_original_is_no_crop_of_its_copy_in_a_frame_of_its_size(tmp_path: Path) -> None:
    """A copy shrunk into a plain frame of the original's size holds the original's picture in
    its centre: the original must not count as a crop of it (the frame's pixels are no picture)."""
    img = detailed(10)
    img.save(tmp_path / "z_original.jpg", quality=90)
    framed = Image.new("RGB", img.size, (250, 250, 250))
    framed.paste(img.resize((360, 270), Image.Resampling.LANCZOS), (20, 15))
    framed.save(tmp_path / "a_framed.jpg", quality=75)
    name, reason = keeper(tmp_path)
    assert (name, "crop" in reason) == ("z_original.jpg", False), reason


def test_higher_jpeg_quality_wins_at_equal_size(tmp_path: Path) -> None:
    img = detailed(6)
    img.save(tmp_path / "z_q85.jpg", quality=85)
    img.save(tmp_path / "a_q30.jpg", quality=30)
    assert keeper(tmp_path) == ("z_q85.jpg", "highest JPEG quality (q85 vs q30)")


def test_original_kept_over_its_higher_quality_reencode_and_a_png_of_a_q30_copy(tmp_path: Path) -> None:
    img = detailed(7)
    img.save(tmp_path / "z_original.jpg", quality=75)
    decoded(tmp_path / "z_original.jpg").save(tmp_path / "a_q92_reencode.jpg", quality=92)
    img.save(tmp_path / "q30.jpg", quality=30)
    decoded(tmp_path / "q30.jpg").save(tmp_path / "b_png_of_q30.png")
    (tmp_path / "q30.jpg").unlink()
    name, reason = keeper(tmp_path)
    assert name == "z_original.jpg", reason
    assert reason == "not a re-encode (another copy went through q75)"


def test_lossless_copy_kept_over_a_lossy_resave_of_the_same_decode(tmp_path: Path) -> None:
    """Without the original, a PNG of its decode and a q92 JPEG re-encode of the same decode both
    went through q75: the PNG holds that picture exactly, the JPEG added a loss of its own. Path
    order decided between them ("first in path order", the JPEG kept: QA pass of session 20)."""
    img = detailed(7)
    img.save(tmp_path / "original.jpg", quality=75)
    decoded(tmp_path / "original.jpg").save(tmp_path / "a_q92_reencode.jpg", quality=92)
    decoded(tmp_path / "original.jpg").save(tmp_path / "b_decode.png")
    (tmp_path / "original.jpg").unlink()
    name, reason = keeper(tmp_path)
    assert name == "b_decode.png", reason
    assert reason == "lossless copy of a q75 picture (another copy of it was saved again at q92)"


def test_blurred_copy_loses_at_equal_size(tmp_path: Path) -> None:
    img = detailed(8)
    img.save(tmp_path / "z_original.jpg", quality=85)
    img.filter(ImageFilter.GaussianBlur(1.2)).save(tmp_path / "a_blur.jpg", quality=95)
    assert keeper(tmp_path) == ("z_original.jpg", "sharper (another copy has less detail)")


@pytest.mark.parametrize("seed", [8, 11])
def test_a_mild_blur_is_blurred_when_half_the_copies_are(tmp_path: Path, seed: int) -> None:
    """QA pass 7: a q75 original with a q90 copy blurred at radius 1 and one at radius 2. The
    tier's median detail was the mild blur's own, so it passed as sharp, then won on JPEG quality
    (the blur erased the q75 lattice): every original of an augmentation set was removed. A
    copy is blurred against the sharpest sibling, not against the median."""
    img = detailed(seed)
    img.save(tmp_path / "z_original.jpg", quality=75)
    img.filter(ImageFilter.GaussianBlur(1)).save(tmp_path / "a_blur1.jpg", quality=90)
    img.filter(ImageFilter.GaussianBlur(2)).save(tmp_path / "b_blur2.jpg", quality=90)
    assert keeper(tmp_path) == ("z_original.jpg", "sharper (another copy has less detail)")


@pytest.mark.parametrize("seed", [8, 11])
def test_a_sharpened_copy_does_not_make_its_original_blurred(tmp_path: Path, seed: int) -> None:
    """Sharpening halos raise the middle band 3-6x, as much as a blur takes from it, but the top
    band only a few times, where a blur takes nearly all: against the sharpest sibling, an
    unsharp-masked copy would otherwise make its lossless original "blurred" and win."""
    img = detailed(seed)
    img.save(tmp_path / "z_original.png")
    img.save(tmp_path / "b_q90.jpg", quality=90)
    img.filter(ImageFilter.UnsharpMask()).save(tmp_path / "a_sharpened.jpg", quality=95)
    name, reason = keeper(tmp_path)
    assert name == "z_original.png", reason
    assert reason.startswith("lossless"), reason


@pytest.mark.parametrize("seed", [8, 11])
def test_block_edges_of_low_quality_copies_do_not_make_the_original_blurred(tmp_path: Path, seed: int) -> None:
    """q30-q50 re-encodes lose some of the middle band and add block edges above it: none of
    them is a sharper sibling that the original is a blur of."""
    img = detailed(seed)
    img.save(tmp_path / "z_original.jpg", quality=95)
    for q in (30, 40, 50):
        img.save(tmp_path / f"a_q{q}.jpg", quality=q)
    assert keeper(tmp_path) == ("z_original.jpg", "highest JPEG quality (q95 vs q50)")
    result = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1)
    records = [m.record for m in result.clusters[0].members]
    assert not any(a.blurred for a in quality.assess(records))


def damaged_png(img: Image.Image) -> bytes:
    """A PNG whose image-data checksum is wrong: Pillow still decodes it, verify() fails."""
    buf = io.BytesIO()
    img.save(buf, "PNG")
    data = bytearray(buf.getvalue())
    at = data.index(b"IDAT")
    length = struct.unpack(">I", data[at - 4 : at])[0]
    data[at + 4 + length] ^= 0xFF  # the chunk's CRC
    return bytes(data)


def test_damaged_file_never_kept_over_intact_copies(tmp_path: Path) -> None:
    """Issue 8 item 5: a PNG with a bad CRC was kept and its intact copies removed."""
    img = detailed(9)
    img.save(tmp_path / "z_copy.jpg", quality=85)
    (tmp_path / "a_damaged.png").write_bytes(damaged_png(img))  # lossless, first in path order
    with Image.open(tmp_path / "a_damaged.png") as im:
        im.load()  # the premise: it decodes
    assert keeper(tmp_path) == ("z_copy.jpg", "intact (another copy fails Pillow's full check)")
    for i in range(3):  # more intact copies: still never the damaged one
        img.save(tmp_path / f"z_more{i}.jpg", quality=70 + i)
    result = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1)
    (cluster,) = result.clusters
    assert Path(cluster.keep.path).name == "z_copy.jpg"
    damaged = next(m for m in cluster.members if m.record.path.endswith("a_damaged.png"))
    assert damaged.action is imgdup.Action.REMOVE


def test_exact_copies_measure_nothing(tmp_path: Path) -> None:
    data = io.BytesIO()
    detailed(10).save(data, "JPEG", quality=85)
    for i in range(3):
        (tmp_path / f"c{i}.jpg").write_bytes(data.getvalue())
    result = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1)
    assert all(r.quality is None for r in result.records)
    assert result.clusters[0].keep_reason == "first in path order"


def test_enlargement_test_follows_the_siblings_factor() -> None:
    """Pure: a 2x enlargement is one relative to a half-size sibling, not to a 90% one."""
    img = detailed(11, (256, 256))
    big = np.asarray(img.resize((512, 512), Image.Resampling.BICUBIC).convert("L"))[128:384, 128:384]
    orig = np.asarray(img.convert("L"))
    assert quality.is_enlargement(quality.spectrum(big), 0.5)
    assert not quality.is_enlargement(quality.spectrum(big), 0.9)
    assert not quality.is_enlargement(quality.spectrum(orig), 0.5)


def test_jpeg_quality_is_read_from_the_quantisation_tables() -> None:
    for q in (30, 75, 92):
        buf = io.BytesIO()
        detailed(12).save(buf, "JPEG", quality=q)
        with Image.open(buf) as im:
            assert quality.estimate_jpeg_quality(im.quantization[0]) == q  # type: ignore[attr-defined]


def test_traits_and_measures_survive_the_cache(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    root.mkdir()
    img = detailed(13)
    img.save(root / "a.jpg", quality=85)
    img.save(root / "b.jpg", quality=60)
    cache = tmp_path / "c.sqlite3"
    cold = imgdup.find_duplicates([root], threshold=8, jobs=1, cache=cache)
    warm = imgdup.find_duplicates([root], threshold=8, jobs=1, cache=cache)
    assert warm.summary.from_cache == 2
    assert [(r.traits, r.quality) for r in warm.records] == [(r.traits, r.quality) for r in cold.records]
    assert all(r.traits is not None and r.traits.jpeg_quality in (85, 60) for r in warm.records)
    assert warm.clusters[0].keep_reason == cold.clusters[0].keep_reason == "highest JPEG quality (q85 vs q60)"


@pytest.mark.usefixtures("forked_workers")
def test_an_enlargement_is_measured_only_as_far_as_it_needs_and_in_full_once_it_could_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file whose spectrum shows an enlargement of a sibling skips the rest of the measurement
    (it can never be kept over that sibling): no pixel digest, no lattice test. That partial
    measurement survives the cache; when a later scan finds the same file with no sibling it is
    an enlargement of, it is measured again, in full, before the keeper is chosen."""
    root = tmp_path / "imgs"
    root.mkdir()
    img = detailed(14, (200, 150))
    img.save(root / "z_small.jpg", quality=85)
    big = decoded(root / "z_small.jpg").resize((800, 600), Image.Resampling.LANCZOS)
    big.save(root / "a_big.jpg", quality=95)
    cache = tmp_path / "c.sqlite3"
    first = imgdup.find_duplicates([root], threshold=8, jobs=1, cache=cache)
    by_name = {Path(r.path).name: r.quality for r in first.records}
    assert first.clusters[0].keep.path.endswith("z_small.jpg")
    enlarged, source = by_name["a_big.jpg"], by_name["z_small.jpg"]
    assert enlarged is not None and not enlarged.complete and enlarged.pixels_sha256 == "" and enlarged.spectrum
    assert source is None  # the smallest file, once its enlargement is out: nothing to compare
    warm = imgdup.find_duplicates([root], threshold=8, jobs=1, cache=cache)
    assert {Path(r.path).name: r.quality for r in warm.records} == by_name

    (root / "z_small.jpg").unlink()  # now a_big.jpg is the largest of two same-size copies
    big.save(root / "b_big_q60.jpg", quality=60)
    again = imgdup.find_duplicates([root], threshold=8, jobs=1, cache=cache)
    now = {Path(r.path).name: r.quality for r in again.records}
    assert now["a_big.jpg"] is not None and now["a_big.jpg"].complete and now["a_big.jpg"].pixels_sha256
    assert again.clusters[0].keep.path.endswith("a_big.jpg")
    assert again.clusters[0].keep_reason == "highest JPEG quality (q95 vs q60)"
    # ... and that full measurement is what the cache holds now: the next run decodes nothing.
    marker = tmp_path / "measured"
    monkeypatch.setattr(pipeline, "quality_entry_some_rgb", functools.partial(_mark_and_fail, marker))
    last = imgdup.find_duplicates([root], threshold=8, jobs=1, cache=cache)
    assert not marker.exists()
    assert {Path(r.path).name: r.quality for r in last.records} == now


@pytest.mark.parametrize("name", ["00000065.jpg", "00000157.jpg", "00000199.jpg"])
def test_a_rotated_reencode_is_found_on_its_sources_lattice_beside_a_png(dogs: Path, tmp_path: Path, name: str) -> None:
    """A same-size PNG makes the JPEGs' pixel digest come from a colour decode; the lattice test
    ran on that decode's RGB -> grey conversion, whose rounding hid the q75 lattice of an
    EXIF-rotated q92 re-encode of these real photos, kept over the original on the accuracy
    benchmark (7 clusters of 300). The test now reads the JPEG's own luminance plane."""
    shutil.copyfile(dogs / name, tmp_path / "z_original.jpg")
    img = decoded(tmp_path / "z_original.jpg")
    img.save(tmp_path / "a_lossless.png")
    stored, exif = img.transpose(Image.Transpose.ROTATE_90), Image.Exif()
    exif[0x0112] = 6  # Orientation: a viewer turns the stored pixels back upright
    stored.save(tmp_path / "b_rotated.jpg", quality=92, exif=exif.tobytes())
    assert ImageOps.exif_transpose(Image.open(tmp_path / "b_rotated.jpg")).size == img.size
    img.save(tmp_path / "c_q60.jpg", quality=60)
    name, reason = keeper(tmp_path)
    assert name == "z_original.jpg", reason


@pytest.mark.usefixtures("forked_workers")
def test_a_large_png_or_webp_is_not_decoded_again_to_tell_its_enlargements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PNG or WebP of a megapixel or more is decoded in full by the hash pass anyway, which takes
    its spectrum there: an enlargement among them is known as one, and a lone original on top
    as none, without a second decode (on bench_e2e.py's mixed set the measuring had spent 4 of
    its 5.5 s decoding such enlargements again)."""
    img = detailed(15, (300, 225))
    img.save(tmp_path / "z_small.jpg", quality=85)
    big = decoded(tmp_path / "z_small.jpg").resize((1200, 900), Image.Resampling.BICUBIC)
    big.save(tmp_path / "a_big.png")
    big.save(tmp_path / "b_big.webp", quality=90)
    original = detailed(16, (1200, 900))
    (tmp_path / "other").mkdir()
    original.save(tmp_path / "other" / "a_original.png")
    original.resize((600, 450), Image.Resampling.LANCZOS).save(tmp_path / "other" / "b_half.jpg", quality=90)
    marker = tmp_path / "measured"
    monkeypatch.setattr(pipeline, "quality_entry_some_rgb", functools.partial(_mark_and_fail, marker))
    result = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1)
    assert not marker.exists()
    kept = sorted((Path(c.keep.path).name, c.keep_reason) for c in result.clusters)
    assert kept == [("a_original.png", "most pixels (1200x900), not an enlargement"),
                    ("z_small.jpg", "the others are enlargements of it")]  # fmt: skip
    # What the hash pass took is what the measurement would give for that file, bit for bit.
    by_name = {Path(r.path).name: r for r in result.records}
    for name, factors in (("a_big.png", (0.25,)), ("b_big.webp", (0.25,)), ("a_original.png", ())):
        with Image.open(by_name[name].path) as im:
            im.load()
            again = hashing.measure_siblingwise(hashing.normalise(im), None, factors)
        assert by_name[name].quality is not None and by_name[name].quality.spectrum == again.spectrum, name
        assert by_name[name].quality.upscaled == again.upscaled and not by_name[name].quality.complete
    assert by_name["z_small.jpg"].quality is None and by_name["b_half.jpg"].quality is None


def _mark_and_fail(marker: Path, *args: object, **kwargs: object) -> None:
    marker.touch()  # in a worker process: a file is what the test can see
    raise AssertionError("measured again")


@pytest.mark.parametrize("n", [2, 3, 4, 7, 40])
def test_leave_one_out_medians_equal_separate_medians(n: int) -> None:
    """The one-sort median of "the others" equals n separate medians, ties included."""
    from imgdup.quality import _leave_one_out_medians

    rng = np.random.default_rng(n)
    for high in (3, 256):  # few distinct values: many ties
        stack = rng.integers(0, high, (n, 16, 16)).astype(np.float64)
        want = np.stack([np.median(np.delete(stack, i, axis=0), axis=0) for i in range(n)])
        assert np.array_equal(_leave_one_out_medians(stack), want)


def _exhaustive_fit(y: np.ndarray, below: int | None, offsets: list[tuple[int, int]]) -> int | None:
    """The lattice test without the coarse pass: every grid and table on every sampled block."""
    d = quality._dct8()
    lattices = quality.LATTICE_QUALITIES
    qualities = [q for q in lattices if below is None or (q < below and not quality._harmonic(q, below))]
    tables = np.stack([quality.ijg_table(q) for q in qualities])
    low = quality._LOW
    steps = np.concatenate([tables.reshape(-1, 64)[:, low], tables.transpose(0, 2, 1).reshape(-1, 64)[:, low]])
    best = np.full(len(steps), np.inf)
    for oy, ox in dict.fromkeys(offsets):
        h, w = ((y.shape[0] - oy) // 8) * 8, ((y.shape[1] - ox) // 8) * 8
        blocks = (y[oy : oy + h, ox : ox + w].astype(np.float64) - 128.0).reshape(h // 8, 8, w // 8, 8)
        blocks = blocks.transpose(0, 2, 1, 3).reshape(-1, 8, 8)
        blocks = blocks[:: max(1, len(blocks) // quality._FIT_BLOCKS)]
        coef = quality.distinct_rows((d @ blocks @ d.T).reshape(-1, 64)[:, low])
        best = np.minimum(best, quality._lattice_errors(coef, steps, 64))
    k = int(np.argmin(best))
    return (qualities * 2)[k] if best[k] < quality.LATTICE_FIT else None


def _ramps() -> Image.Image:
    """A synthetic pattern of colour ramps (sawtooth): most of its 8x8 blocks hold one ramp, whose
    few DCT coefficients fall near a coarse lattice by chance."""
    x, y = np.arange(300)[None, :], np.arange(200)[:, None]
    zero = 0 * x * y
    planes = [(x * 7) % 256 + zero, (y * 5) % 256 + zero, ((x + y) * 3) % 256]
    return Image.fromarray(np.stack(planes, axis=-1).astype(np.uint8))


def test_a_repeated_block_is_one_piece_of_evidence_for_a_lattice() -> None:
    """The ramps' lossless pixels fit the q50 and q80 lattices over all their blocks (mean error
    0.155 and 0.161, under LATTICE_FIT) because hundreds of blocks repeat a few coefficients;
    counted once each, they fit none (QA pass of session 20)."""
    y = np.asarray(_ramps().convert("L"))
    offsets = [(0, 0), (y.shape[0] % 8, 0), (0, y.shape[1] % 8), (y.shape[0] % 8, y.shape[1] % 8)]
    assert quality.lowest_fit(y, None, offsets) is None
    assert _exhaustive_fit(y, None, offsets) is None


@pytest.mark.parametrize("scale", [0.2, 3.0, 30.0])
def test_distinct_rows_keeps_the_first_of_each_rounded_row_in_order(scale: float) -> None:
    """The same rows as numpy's unique over rounded rows (which takes -0.0 for 0.0), in order."""
    rng = np.random.default_rng(int(scale * 10))
    coef = rng.normal(0, scale, (300, 14))
    coef = np.concatenate([coef, coef[::3] + 0.1])  # repeats within rounding
    _, first = np.unique(np.rint(coef), axis=0, return_index=True)
    assert np.array_equal(quality.distinct_rows(coef), coef[np.sort(first)])


def test_lossless_synthetic_original_kept_over_its_jpegs(tmp_path: Path) -> None:
    """The ramps' PNG "went through" a coarse lattice by chance, and its q75, q85 and q95 copies
    claimed q55-q60: the PNG original was removed and the q85 copy kept as "highest JPEG quality
    (q60 vs q55)"."""
    img = _ramps()
    img.save(tmp_path / "z_original.png")
    for q in (75, 85, 95):
        img.save(tmp_path / f"a_q{q}.jpg", quality=q)
    name, reason = keeper(tmp_path)
    assert name == "z_original.png", reason


@pytest.mark.parametrize(("first", "second"), [(30, 90), (50, 92), (75, 95), (None, 90), (40, None)])
def test_coarse_to_fine_lattice_test_matches_the_exhaustive_one(first: int | None, second: int | None) -> None:
    """The two-pass lattice test finds the lattice an exhaustive search finds (re-encodes of a
    coarser JPEG, stored with sides that are no multiple of 8, so four grids are tried)."""
    img = photo(3, (267, 205)).convert("L")
    if first is not None:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=first)
        img = Image.open(io.BytesIO(buf.getvalue())).convert("L")
    if second is not None:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=second)
        img = Image.open(io.BytesIO(buf.getvalue())).convert("L")
    y = np.asarray(img)
    offsets = [(0, 0), (y.shape[0] % 8, 0), (0, y.shape[1] % 8), (y.shape[0] % 8, y.shape[1] % 8)]
    want = _exhaustive_fit(y, second, offsets)
    assert quality.lowest_fit(y, second, offsets) == want
    if first is not None and second is not None:
        assert want == first  # the case is one where a coarser lattice is found


@pytest.mark.parametrize("shape", [(1, 1), (47, 63), (94, 125), (256, 256)])
def test_colourfulness_by_lookup_is_the_per_pixel_formula(shape: tuple[int, int]) -> None:
    """The table lookup gives the very float the per-pixel formula gives (it is stored in every
    record's traits, and a cache entry must not change with the implementation), strided views included."""
    rng = np.random.default_rng(shape[0])
    planes = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    if shape == (256, 256):  # every pair of levels once
        planes[..., 1], planes[..., 2] = np.divmod(np.arange(256 * 256).reshape(256, 256), 256)
    for cb, cr in ((planes[..., 1], planes[..., 2]), (planes[::2, ::2, 1], planes[::2, ::2, 2])):
        want = float(np.hypot(cb.astype(np.float64) - 128.0, cr.astype(np.float64) - 128.0).mean())
        assert quality.colourfulness(cb, cr) == want
    with pytest.raises(TypeError):
        quality.colourfulness(planes[..., 1].astype(np.int16), planes[..., 2])


def test_the_remembering_assessor_answers_as_assess_does(tmp_path: Path) -> None:
    """Assessor gives assess()'s answers for the same records in any order, and a record
    replaced by a measured one (a new object) is assessed afresh, not from memory."""
    root = tmp_path / "imgs"
    root.mkdir()
    img = detailed(15, (200, 150))
    img.save(root / "a.jpg", quality=90)
    img.convert("L").save(root / "b_grey.jpg", quality=90)
    decoded(root / "a.jpg").resize((800, 600), Image.Resampling.BICUBIC).save(root / "c_big.jpg", quality=90)
    records = list(imgdup.find_duplicates([root], threshold=8, jobs=1).records)
    assessor = quality.Assessor()
    assert assessor(records) == quality.assess(records)
    assert assessor(records[::-1]) == quality.assess(records)[::-1]
    big = next(r for r in records if r.path.endswith("c_big.jpg"))
    spectrum = tuple(1e4 * x for x in range(21))  # a flat, detailed spectrum: not an enlargement
    measured = [r if r is not big else dataclasses.replace(r, quality=_measured_as(spectrum)) for r in records]
    assert assessor(measured) == quality.assess(measured) != quality.assess(records)


def _measured_as(spectrum: tuple[float, ...]) -> Quality:
    return Quality(upscaled=False, pixels_sha256="x" * 64, spectrum=spectrum)


@pytest.mark.parametrize("seed", [1, 3, 5])
def test_an_enlargement_of_a_soft_noisy_photo_is_not_kept(tmp_path: Path, seed: int) -> None:
    """A soft photo with a little sensor noise: its 2x enlargement's top band holds only the
    noise of rounding and of its own re-encode, which is large next to the soft photo's little
    detail near its resolution (the ratio test alone kept such enlargements in 3 clusters of the
    benchmark). The original is kept; its half-size copy is no reason to call it enlarged."""
    rng = np.random.default_rng(seed)
    soft = np.asarray(photo(seed, (400, 300)).filter(ImageFilter.GaussianBlur(1.5)), dtype=np.float64)
    src = Image.fromarray(np.clip(soft + rng.normal(0, 4, soft.shape), 0, 255).astype(np.uint8), "RGB")
    src.save(tmp_path / "z_source.jpg", quality=75)
    original = decoded(tmp_path / "z_source.jpg")
    original.resize((800, 600), Image.Resampling.LANCZOS).save(tmp_path / "a_enlarged.jpg", quality=92)
    original.resize((200, 150), Image.Resampling.LANCZOS).save(tmp_path / "m_half.jpg", quality=75)
    name, reason = keeper(tmp_path)
    assert name == "z_source.jpg", reason
    assert "enlargement" in reason


@pytest.mark.parametrize("seed", [0, 2, 9])
def test_a_low_quality_copy_is_not_kept_for_its_block_edges(tmp_path: Path, seed: int) -> None:
    """A very smooth picture (a drawing, a render) holds no detail above its half-size copy's
    resolution, so its lossless original tests as an enlargement of that copy; a q30 copy of the
    same size showed its block edges as detail and was kept over the original (a known limit,
    kept in 4 of 12 such clusters). A same-size copy of lower quality cannot hold detail that its
    cleaner sibling lacks: it is an enlargement when that sibling is. Seeds whose original tests
    as an enlargement (checked, so that the case stays the one that failed)."""
    img = photo(seed, (640, 480))
    img.save(tmp_path / "z_original.png")
    img.save(tmp_path / "a_q30.jpg", quality=30)
    img.resize((320, 240), Image.Resampling.LANCZOS).save(tmp_path / "m_half.jpg", quality=92)
    result = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1)
    (cluster,) = result.clusters
    by_name = {Path(m.record.path).name: m.record for m in cluster.members}
    verdicts = dict(zip(by_name, quality.assess(list(by_name.values()))))
    assert verdicts["z_original.png"].enlarged  # the case: the lossless original tests as enlarged
    assert verdicts["a_q30.jpg"].enlarged
    assert Path(cluster.keep.path).name != "a_q30.jpg", cluster.keep_reason


@pytest.mark.parametrize("seed", [0, 2, 8])
def test_a_lossy_copys_verdict_is_not_passed_on_to_its_source(tmp_path: Path, seed: int) -> None:
    """The q92 re-encode of a smooth picture holds only noise above its half-size copy's
    resolution and is an enlargement by the noise test, which a q75 source is not judged by.
    When the lattice test misses that it is a re-encode (as for an EXIF-rotated copy on the
    accuracy benchmark), it ranks above its source; its verdict must not pass on to the source,
    which stays the larger file that is not an enlargement (it did: a half-size copy was kept)."""
    photo(seed, (640, 480)).save(tmp_path / "z_source.jpg", quality=75)
    original = decoded(tmp_path / "z_source.jpg")
    original.save(tmp_path / "a_q92.jpg", quality=92)
    original.resize((320, 240), Image.Resampling.LANCZOS).save(tmp_path / "m_half.jpg", quality=92)
    (cluster,) = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1).clusters
    entries = {Path(m.record.path).name: m.record for m in cluster.members}
    measured = {
        name: dataclasses.replace(r, quality=pipeline.quality_entry_some_rgb(r.entry, imgdup.HashSettings()).quality)
        for name, r in entries.items()
    }
    q92 = measured["a_q92.jpg"]
    assert q92.quality is not None
    missed = dataclasses.replace(q92, quality=dataclasses.replace(q92.quality, lowest_fit=None))  # ranks q92
    verdicts = quality.assess([missed, measured["z_source.jpg"], measured["m_half.jpg"]])
    assert verdicts[0].quality == 92 and verdicts[0].enlarged  # the case: the noise test's verdict
    assert not verdicts[1].enlarged


def _bordered(img: Image.Image, share: float, colour: tuple[int, int, int]) -> Image.Image:
    dx, dy = round(img.width * share), round(img.height * share)
    out = Image.new("RGB", (img.width + 2 * dx, img.height + 2 * dy), colour)
    out.paste(img, (dx, dy))
    return out


def _letterboxed(img: Image.Image) -> Image.Image:
    out = Image.new("RGB", (round(img.height * 16 / 9), img.height), (0, 0, 0))
    out.paste(img, ((out.width - img.width) // 2, 0))
    return out


def _captioned(img: Image.Image) -> Image.Image:
    band = round(img.height * 0.15)
    out = Image.new("RGB", (img.width, img.height + band), (255, 255, 255))
    out.paste(img, (0, band))
    ImageDraw.Draw(out).text((10, band // 3), "Figure 3: a photo by our reader (c) 2019", fill=(0, 0, 0))
    return out


@pytest.mark.parametrize("seed", [4, 5])
def test_copies_with_an_added_frame_lose_to_the_picture_without_it(tmp_path: Path, seed: int) -> None:
    """A border, letterbox bars or a caption band add pixels but no picture: "most pixels" kept
    one of them in every cluster of the accuracy benchmark that held one (0 of 150 originals)."""
    img = detailed(seed)
    img.save(tmp_path / "z_original.jpg", quality=90)
    img.save(tmp_path / "y_q70.jpg", quality=70)
    _bordered(img, 0.1, (0, 0, 0)).save(tmp_path / "a_border.jpg", quality=95)
    _bordered(img, 0.2, (200, 40, 160)).save(tmp_path / "b_colour_border.jpg", quality=95)
    _letterboxed(img).save(tmp_path / "c_letterbox.jpg", quality=95)
    _captioned(img).save(tmp_path / "d_caption.jpg", quality=95)
    result = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1)
    (cluster,) = result.clusters
    assert Path(cluster.keep.path).name == "z_original.jpg"
    records = [m.record for m in cluster.members]
    framed = {Path(r.path).name for r, v in zip(records, quality.assess(records)) if v.framed}
    assert framed == {"a_border.jpg", "b_colour_border.jpg", "c_letterbox.jpg", "d_caption.jpg"}
    shares = {Path(r.path).name: r.traits.content for r in records if r.traits}
    assert shares["z_original.jpg"] == 1.0 and all(shares[n] < 0.9 for n in framed)


@pytest.mark.parametrize(
    ("width", "fill", "saved", "others"), [(1, "white", "q90", 0), (2, "black", "png", 3), (4, "red", "q75", 1)]
)
def test_a_copy_with_a_thin_border_loses_to_the_picture_without_it(
    tmp_path: Path, width: int, fill: str, saved: str, others: int
) -> None:
    """A border of a few pixels is too thin for the reduced decode's content box: a copy with a 1
    or 2 px border was kept as "most pixels (WxH), not an enlargement", beside three other copies
    too (QA pass 15)."""
    detailed(11).save(tmp_path / "z_original.jpg", quality=75)
    bordered = ImageOps.expand(decoded(tmp_path / "z_original.jpg"), width, fill=fill)
    if saved == "png":
        bordered.save(tmp_path / "a_bordered.png")
    else:
        bordered.save(tmp_path / "a_bordered.jpg", quality=int(saved[1:]))
    for k in range(others):
        decoded(tmp_path / "z_original.jpg").save(tmp_path / f"b_copy{k}.jpg", quality=60 - 10 * k)
    name, reason = keeper(tmp_path)
    assert name == "z_original.jpg", reason
    if not others:
        assert reason == "no added border, bars or caption (another copy has them)"


def test_a_plain_background_is_no_thin_border() -> None:
    """A plain band wider than a thin border (a studio wall, a canvas) is no thin border: the
    content box and the frame rule deal with it."""
    picture = ImageOps.expand(detailed(12, (200, 150)), 20, fill="white")
    grey = np.asarray(picture.convert("L"))
    sides = grey[:5], grey[::-1][:5], grey.T[:5], grey.T[::-1][:5]
    assert quality.thin_bars(*sides) == (0, 0, 0, 0)
    grey = np.asarray(ImageOps.expand(detailed(12, (200, 150)), 3, fill="white").convert("L"))
    assert quality.thin_bars(grey[:5], grey[::-1][:5], grey.T[:5], grey.T[::-1][:5]) == (3, 3, 3, 3)


def test_a_coloured_frame_does_not_make_a_grey_photo_lose_to_its_crop(tmp_path: Path) -> None:
    """A grey picture's copies are all grey; a coloured border around one of them is no colour of
    the picture's, so it must not turn the plain copies into "grayscale" next to a colour one."""
    img = detailed(6).convert("L").convert("RGB")
    img.save(tmp_path / "z_original.jpg", quality=90)
    img.save(tmp_path / "y_q80.jpg", quality=80)
    _bordered(img, 0.2, (40, 200, 60)).save(tmp_path / "a_green_border.jpg", quality=95)
    _letterboxed(img).save(tmp_path / "b_letterbox.jpg", quality=95)
    name, reason = keeper(tmp_path)
    assert name == "z_original.jpg" and "grayscale" not in reason


def test_a_plain_background_peeled_in_the_original_is_no_frame(tmp_path: Path) -> None:
    """A photo on a plain background peels that band as a frame would; its copies peel it too, so
    none of them is framed, and an edge crop that cut the band away is not preferred."""
    img = _bordered(detailed(7, (300, 220)), 0.0, (0, 0, 0))
    canvas = Image.new("RGB", (400, 300), (235, 235, 235))
    canvas.paste(img, (100, 40))  # a plain wall left of and around the subject
    canvas.save(tmp_path / "z_original.jpg", quality=90)
    canvas.save(tmp_path / "y_q60.jpg", quality=60)
    canvas.save(tmp_path / "x_q80.jpg", quality=80)
    canvas.save(tmp_path / "w_q85.jpg", quality=85)
    canvas.crop((80, 0, 400, 300)).save(tmp_path / "a_edge_crop.jpg", quality=95)
    result = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1)
    (cluster,) = result.clusters
    verdicts = quality.assess([m.record for m in cluster.members])
    assert not any(v.framed for m, v in zip(cluster.members, verdicts) if m.record.path.endswith("z_original.jpg"))
    assert Path(cluster.keep.path).name == "z_original.jpg"


def test_three_copies_are_too_few_to_call_one_framed(tmp_path: Path) -> None:
    """With two others, "what the others agree on" is their mean, which an edge crop drags as far
    as a frame does: an original on a plain background was taken for a framed copy of the crop
    that cut the background away (8 of 298 dogs-1000 triples). Fewer than four members: more
    pixels decide, as they did before frames were looked for."""
    for seed in range(8, 14):
        folder = tmp_path / str(seed)
        folder.mkdir()
        canvas = Image.new("RGB", (400, 300), (235, 235, 235))
        canvas.paste(detailed(seed, (300, 220)), (100, 40))
        canvas.save(folder / "z_original.jpg", quality=90)
        canvas.save(folder / "y_q70.jpg", quality=70)
        canvas.crop((80, 0, 400, 300)).save(folder / "a_edge_crop.jpg", quality=95)
        assert keeper(folder)[0] == "z_original.jpg", seed


def test_a_damaged_palette_png_is_still_found_damaged(tmp_path: Path) -> None:
    """Palette PNGs are no longer "lossless" for the ranking; Pillow's full check of them stays."""
    (tmp_path / "a.png").write_bytes(damaged_png(detailed(6).quantize(256)))
    st = (tmp_path / "a.png").stat()
    from imgdup.models import FileEntry, HashSettings, ImageRecord

    entry = FileEntry(str(tmp_path / "a.png"), str(tmp_path), "a.png", st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)
    rec = hashing.hash_entry(entry, HashSettings())
    assert isinstance(rec, ImageRecord) and rec.traits is not None
    assert not rec.traits.lossless and not rec.traits.intact


@pytest.mark.parametrize("seed", range(4))
def test_two_edits_in_one_direction_do_not_make_the_original_edited(seed: int) -> None:
    """QA pass 7: an original, two blurred copies (the same thumbnail), a brightened and a
    contrast-raised copy. The original's four others have a median halfway to the two edits in
    bright cells, so it passed for edited, as they did, and the brightened q90 copy won on JPEG
    quality over the q75 original. The median of all five is the original's picture."""
    rng = np.random.default_rng(seed)
    grid = rng.uniform(20, 160, (4, 4)).astype(np.uint8)
    original = np.asarray(Image.fromarray(grid, "L").resize((16, 16), Image.Resampling.BICUBIC), dtype=np.float64)
    original[4:8, 4:8] = 205  # a bright patch: where both edits move it up, and brightness does not clip
    blurred = [np.clip(original + rng.normal(0, 1, original.shape), 0, 255) for _ in range(2)]
    bright = np.clip(original * 1.2, 0, 255)
    mean = original.mean()  # Pillow's contrast turns about the mean grey level
    contrast = np.clip(mean + 1.3 * (original - mean), 0, 255)
    thumbs = [original, *blurred, bright, contrast]
    edited = [s > quality.EDIT_LEVELS for s in quality.edit_scores([t.round().astype(np.uint8) for t in thumbs])]
    assert edited == [False, False, False, True, True]


def _versions(tmp_path: Path, seed: int) -> dict[str, Path]:
    """What a phone and two filter apps leave of one picture: the camera file (a q92 re-save of
    a q75 decode, as bench_keepers' camera file is), a q60 chat re-send of it, and a grainy and a
    sharpened copy saved at q90 (the filters wipe the q75 lattice: they claim q90)."""
    img = detailed(seed)
    img.save(tmp_path / "src.jpg", quality=75)
    src = decoded(tmp_path / "src.jpg")
    (tmp_path / "src.jpg").unlink()
    paths = {k: tmp_path / f"{k}.jpg" for k in ("z_camera", "chat", "grain", "sharpened")}
    src.save(paths["z_camera"], quality=92)
    src.save(paths["chat"], quality=60)
    rng = np.random.default_rng(seed)
    ycc = np.asarray(src.convert("YCbCr"), dtype=np.float64)
    ycc[..., 0] += rng.normal(0, 6, ycc.shape[:2])
    Image.fromarray(np.clip(np.rint(ycc), 0, 255).astype(np.uint8), "YCbCr").convert("RGB").save(
        paths["grain"], quality=90
    )
    src.filter(ImageFilter.UnsharpMask(radius=1, percent=80)).save(paths["sharpened"], quality=90)
    return paths


def _every_member_measured(
    folder: Path, measure: Callable[..., Any] = hashing.quality_entry
) -> list[imgdup.ImageRecord]:
    """The scan's records with every file measured in full (as a cache filled by another
    ``--keep`` leaves them), not only those the keep policy's rounds would measure."""
    records = imgdup.find_duplicates([folder], threshold=8, jobs=1, keep="path").records
    return [dataclasses.replace(r, quality=measure(r.entry, hashing.HashSettings()).quality) for r in records]


def _signature(path: Path) -> bytes:
    entry = imgdup.discover.discover([path.parent])[0]
    (found,) = [e for e in entry if e.path == str(path)]
    measured = hashing.quality_entry(found, hashing.HashSettings())
    assert isinstance(measured, imgdup.ImageRecord) and measured.quality is not None
    return measured.quality.blocks


@pytest.mark.parametrize("seed", [21, 22])
def test_plain_reencodes_agree_and_filtered_copies_do_not(tmp_path: Path, seed: int) -> None:
    """Block signatures: two re-encodes of one picture (q92, q60) are consistent; a grainy or a
    sharpened copy is not consistent with the q92 one, the grainy one not even with the q60 one
    (whose coarse steps can hide a light sharpening)."""
    paths = _versions(tmp_path, seed)
    sig = {k: _signature(p) for k, p in paths.items()}
    assert quality.consistent(sig["z_camera"], sig["chat"]) is True
    assert quality.consistent(sig["grain"], sig["z_camera"]) is False
    assert quality.consistent(sig["sharpened"], sig["z_camera"]) is False
    assert quality.consistent(sig["grain"], sig["chat"]) is False
    assert quality.consistent(sig["grain"], sig["sharpened"]) is False
    detailed(seed).resize((300, 225)).save(tmp_path / "smaller.jpg", quality=92)
    assert quality.consistent(_signature(tmp_path / "smaller.jpg"), sig["z_camera"]) is None


def test_answers_remembered_across_rounds_are_those_of_a_fresh_assessment(tmp_path: Path) -> None:
    """One PairMemo serves every measuring round of a clustering (Assessor): its answers for the
    filtered-copy test and the nearest-neighbour test must be a fresh assessment's, also when a
    member's measurement changes between rounds or the same signatures are compared through
    other qualities (a memo keyed on the signatures alone would answer the first question)."""
    paths = _versions(tmp_path, 23)
    decoded(paths["z_camera"]).resize((800, 600), Image.Resampling.NEAREST).save(tmp_path / "a_nearest.png")
    # a second smaller size: the nearest-neighbour test asks about each (it repeats the 400 px one's)
    decoded(paths["z_camera"]).resize((320, 240), Image.Resampling.LANCZOS).save(tmp_path / "m_small.jpg", quality=90)
    members = _every_member_measured(tmp_path)
    memo = quality.PairMemo()
    fresh = quality.assess(members)
    assert quality.assess(members, memo=memo) == fresh == quality.assess(members, memo=memo)
    names = [Path(r.path).name for r in members]
    assert "grain.jpg" in {n for n, a in zip(names, fresh) if a.processed}
    assert {n for n, a in zip(names, fresh) if a.enlarged} == {"a_nearest.png"}
    assert memo.nearest and memo.consistent  # the questions were asked, and remembered
    # A round later the grainy file's measurement is the camera file's (as if it were a re-save):
    by_name = dict(zip(names, members))
    camera = by_name["z_camera.jpg"].quality
    later = [dataclasses.replace(r, quality=camera) if Path(r.path).name == "grain.jpg" else r for r in members]
    assert quality.assess(later, memo=memo) == quality.assess(later) != fresh
    profile = by_name["a_nearest.png"].quality.repeats  # type: ignore[union-attr]
    answers = [memo.nearest_enlargement(profile, (800, 600), side) for side in ((320, 240), (400, 300))]
    assert answers == [quality.nearest_enlargement(profile, (800, 600), side) for side in ((320, 240), (400, 300))]
    assert answers == [False, True]  # a 2x nearest-neighbour copy of the 400 px one, not of the 320 px one
    sig = {n: r.quality.blocks for n, r in by_name.items() if r.quality}
    for through in ((None, None), (75, None), (None, 30), (30, 30)):
        expected = quality.consistent(sig["grain.jpg"], sig["chat.jpg"], through)
        assert memo.consistent_through(sig["grain.jpg"], sig["chat.jpg"], through) is expected


def test_the_remembered_answers_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cluster of thousands of measured copies asks about millions of pairs: past
    PAIR_MEMO_MAX answers a kind, they are found again rather than held, and stay right."""
    paths = _versions(tmp_path, 24)
    members = _every_member_measured(tmp_path)
    fresh = quality.assess(members)
    monkeypatch.setattr(quality, "PAIR_MEMO_MAX", 2)
    memo = quality.PairMemo()
    assert quality.assess(members, memo=memo) == fresh == quality.assess(members, memo=memo)
    assert len(paths) == 4 and 0 < len(memo.consistent) <= 2 and len(memo.signed) <= 2


@pytest.mark.parametrize("seed", [21, 22])
def test_a_grainy_copy_saved_at_higher_quality_loses_to_the_camera_file(tmp_path: Path, seed: int) -> None:
    """bench_keepers --processed kept the grainy q90 copy in 97 of 100 clusters ("highest JPEG
    quality (q90 vs q75)": the camera file sits on its source's q75 lattice, the filter wiped
    it). The camera file and its chat re-send are plain re-encodes of one picture, the grainy
    copy is not: it ranks below."""
    _versions(tmp_path, seed)["sharpened"].unlink()
    (cluster,) = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1).clusters
    assert Path(cluster.keep.path).name == "z_camera.jpg", cluster.keep_reason
    members = [m.record for m in cluster.members]
    flagged = [Path(r.path).name for r, p in zip(members, quality.processed(members)) if p]
    assert flagged == ["grain.jpg"]


@pytest.mark.parametrize("seed", [1, 2])
def test_a_grainy_copy_saved_losslessly_loses_to_the_camera_file(tmp_path: Path, seed: int) -> None:
    """Only JPEGs were called filtered: the grainy copy saved as PNG, whose noise wiped the q75
    lattice, was kept over the camera file and its chat re-send as "lossless (vs q75)" (QA pass 15)."""
    paths = _versions(tmp_path, seed)
    for name in ("sharpened", "grain"):
        paths[name].unlink()
    rng = np.random.default_rng(seed)
    ycc = np.asarray(decoded(paths["chat"]).convert("YCbCr"), dtype=np.float64)  # any decode: the grain hides it
    ycc[..., 0] += rng.normal(0, 6, ycc.shape[:2])
    Image.fromarray(np.clip(np.rint(ycc), 0, 255).astype(np.uint8), "YCbCr").convert("RGB").save(tmp_path / "grain.png")
    (cluster,) = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1).clusters
    assert Path(cluster.keep.path).name == "z_camera.jpg", cluster.keep_reason
    assert "a lossless copy of its size is no plain re-encode" in cluster.keep_reason


def test_two_copies_that_disagree_alone_are_not_called_filtered(tmp_path: Path) -> None:
    """A pair alone does not tell which one was filtered (a sharpened copy, or a blurred one):
    no verdict, and files with the same pixels count once (a grainy copy saved twice is no
    majority against the camera file)."""
    paths = _versions(tmp_path, 23)
    paths["chat"].unlink()
    paths["sharpened"].unlink()
    shutil.copyfile(paths["grain"], tmp_path / "grain_copy.jpg")
    decoded(paths["grain"]).save(tmp_path / "grain.png")  # the same pixels, losslessly
    # measured as the keep policy does beside a same-size PNG: JPEG pixel digests in colour
    members = _every_member_measured(tmp_path, hashing.quality_entry_rgb)
    assert len(members) == 4
    assert quality.processed(members) == [False] * 4


def test_a_better_source_is_not_called_filtered_by_copies_of_a_coarser_reencode(tmp_path: Path) -> None:
    """The q90 original beside three copies of a q50 re-save of it, saved again at q92, q95 and
    q98: they went through q50, so the original lies within their q50 steps plus their own
    (their own steps alone are too fine to hold it: counted on those, the three agreeing copies
    called the original filtered and one of them was kept). It keeps its place."""
    img = detailed(24)
    img.save(tmp_path / "z_original.jpg", quality=90)
    decoded(tmp_path / "z_original.jpg").save(tmp_path / "mid.jpg", quality=50)
    mid = decoded(tmp_path / "mid.jpg")
    (tmp_path / "mid.jpg").unlink()
    mid.save(tmp_path / "a_resaved.jpg", quality=92)
    resaved = decoded(tmp_path / "a_resaved.jpg")
    resaved.save(tmp_path / "b_sent.jpg", quality=95)
    resaved.save(tmp_path / "c_sent.jpg", quality=98)
    name, reason = keeper(tmp_path)
    assert name == "z_original.jpg", reason
    assert "filtered" not in reason, reason


def test_block_signatures_compare_only_like_blocks() -> None:
    """A noisy copy of a luminance plane disagrees with it; another EXIF orientation (a square
    picture stored turned has the same size but not the same blocks) or blocks that hold clipped
    samples (a decode clips what the steps let overshoot) do not compare."""
    y = np.asarray(detailed(25, (256, 256)).convert("L"), dtype=np.uint8)
    rng = np.random.default_rng(25)
    noisy = np.clip(np.rint(y + rng.normal(0, 6, y.shape)), 0, 255).astype(np.uint8)
    plain = quality.block_signature(y, None)
    assert quality.consistent(plain, quality.block_signature(y, None)) is True
    assert quality.consistent(plain, quality.block_signature(noisy, None)) is False
    assert quality.consistent(plain, quality.block_signature(y, None, orientation=6)) is None
    blown = y.copy()
    blown[:, :240] = 255  # all but the last two columns of blocks hold a clipped sample
    assert quality.consistent(plain, quality.block_signature(blown, None)) is None
    assert quality.consistent(b"not a signature", plain) is None


@pytest.mark.parametrize("name", ["00000411.jpg", "00000200.jpg", "00000300.jpg"])
def test_a_source_is_not_called_filtered_by_coarser_copies_of_an_unseen_reencode(
    dogs: Path, tmp_path: Path, name: str
) -> None:
    """The q95 original beside four copies of a q70 re-save of it (the re-save itself gone),
    sent on at q65 down to q35. Each copy lies within half its steps of the q70 picture, and
    that one within half a q70 step of the original: within one of the copy's own steps in all.
    Counted on half steps, the four agreeing copies called the original filtered once every
    file was measured (a cache left by a `--keep pixels,quality` run), and a q65 copy was kept."""
    with Image.open(dogs / name) as im:  # halved: a picture without the dataset file's lattice
        img = im.convert("RGB").reduce(2)
    img.save(tmp_path / "z_original.jpg", quality=95)
    buf = io.BytesIO()
    decoded(tmp_path / "z_original.jpg").save(buf, "JPEG", quality=70)
    with Image.open(buf) as im:
        mid = im.convert("RGB")
    for q in (65, 55, 45, 35):
        mid.save(tmp_path / f"copy_q{q}.jpg", quality=q)
    members = _every_member_measured(tmp_path)
    assert len(members) == 5
    assert not any(quality.processed(members)), [Path(r.path).name for r in members]
    cache = tmp_path.parent / f"{tmp_path.name}.db"  # every file measured, as a later default run finds them
    imgdup.find_duplicates([tmp_path], threshold=8, jobs=1, keep="pixels,quality,path", cache=cache)
    (cluster,) = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1, cache=cache).clusters
    assert Path(cluster.keep.path).name == "z_original.jpg", cluster.keep_reason


def test_a_coarse_copy_is_not_called_filtered_beside_its_sources(dogs: Path, tmp_path: Path) -> None:
    """The q95 original, a q80 re-save of it, and copies of a q60 re-save of that one (gone)
    saved again at q92 and sent on at q55-q25: the q35 copy disagreed on half steps with the
    finer files (whose family is larger) and was called filtered, though it is a plain re-encode
    of them; a copy stored coarser than a sibling may lie within one of its own steps of it."""
    with Image.open(dogs / "00000411.jpg") as im:  # halved: without the dataset file's lattice
        img = im.convert("RGB").reduce(2)
    img.save(tmp_path / "z_original.jpg", quality=95)
    decoded(tmp_path / "z_original.jpg").save(tmp_path / "resaved.jpg", quality=80)
    buf = io.BytesIO()
    decoded(tmp_path / "resaved.jpg").save(buf, "JPEG", quality=60)
    with Image.open(buf) as im:
        gone = im.convert("RGB")
    for q in (92, 55, 45, 35, 25):
        gone.save(tmp_path / f"copy_q{q}.jpg", quality=q)
    members = _every_member_measured(tmp_path)
    assert len(members) == 7
    flagged = [Path(r.path).name for r, p in zip(members, quality.processed(members)) if p]
    assert flagged == []


@pytest.mark.parametrize("name", ["00000300.jpg", "00000520.jpg"])
def test_a_grainy_copy_loses_to_a_camera_file_stored_at_q75(dogs: Path, tmp_path: Path, name: str) -> None:
    """The camera file stored at q75 itself (no re-save), two chat re-sends (q60, q50) and a
    grainy copy saved at q90: the grain lies within one q75 step of the camera file at most
    coefficients (1.1-1.4% further apart), which an unseen re-encode between them would
    explain, but a chain of plain re-encodes holds at every coefficient; the grainy copy is
    still filtered."""
    with Image.open(dogs / name) as im:  # halved: a picture without the dataset file's lattice
        img = im.convert("RGB").reduce(2)
    img.save(tmp_path / "z_camera.jpg", quality=75)
    src = decoded(tmp_path / "z_camera.jpg")
    src.save(tmp_path / "chat60.jpg", quality=60)
    src.save(tmp_path / "chat50.jpg", quality=50)
    rng = np.random.default_rng(0)
    ycc = np.asarray(src.convert("YCbCr"), dtype=np.float64)
    ycc[..., 0] += rng.normal(0, 6, ycc.shape[:2])
    Image.fromarray(np.clip(np.rint(ycc), 0, 255).astype(np.uint8), "YCbCr").convert("RGB").save(
        tmp_path / "grain.jpg", quality=90
    )
    name, reason = keeper(tmp_path)
    assert name == "z_camera.jpg", reason


def test_the_reason_names_a_finer_copy_set_aside_as_filtered(tmp_path: Path) -> None:
    """The camera file (q92 of a q75 decode), its q60 re-send and a grainy copy saved at q90:
    the reason compared the camera file with the runner-up only ("not a re-encode (another
    copy went through q75)", the re-send's words), not with the q90 file it was kept over
    (removed without a word about it)."""
    paths = _versions(tmp_path, 21)
    paths["sharpened"].unlink()
    name, reason = keeper(tmp_path)
    assert name == "z_camera.jpg", reason
    assert reason.startswith("not filtered (a q90 copy of its size"), reason


def test_block_signatures_are_read_from_the_cache_only_when_decisions_are_made_again(tmp_path: Path) -> None:
    """A warm run reads rows without their block signatures (a warm 20,000-file run peaked 33 MiB
    higher with them); a run that decides again (a file was added) reads them for the files
    measured before, and the grainy copy still loses; a file changed since has none read."""
    from imgdup.cache import HashCache

    folder = tmp_path / "set"
    folder.mkdir()
    _versions(folder, 26)["sharpened"].unlink()
    cache = tmp_path / "c.sqlite3"
    first = imgdup.find_duplicates([folder], threshold=8, jobs=1, cache=cache)
    assert Path(first.clusters[0].keep.path).name == "z_camera.jpg"
    entries = imgdup.discover.discover([folder])[0]
    with HashCache(cache, hashing.settings_key(first.settings.hash)) as store:
        rows = [r for r in store.get_many(entries) if isinstance(r, imgdup.ImageRecord)]
        measured = [r for r in rows if r.quality is not None and r.quality.complete]
        assert len(measured) >= 2 and all(r.quality.blocks == b"" for r in rows if r.quality)  # type: ignore[union-attr]
        assert set(store.get_blocks(measured)) == {r.path for r in measured}
    detailed(27).save(folder / "other.jpg", quality=90)  # another picture: the decisions are made again
    second = imgdup.find_duplicates([folder], threshold=8, jobs=1, cache=cache)
    (cluster,) = second.clusters
    assert Path(cluster.keep.path).name == "z_camera.jpg", cluster.keep_reason
    grain = folder / "grain.jpg"
    grain.write_bytes(grain.read_bytes() + b"\0")  # another version of the file: its row is not its own
    with HashCache(cache, hashing.settings_key(first.settings.hash)) as store:
        again = [r for r in measured if r.path != str(grain)] + [
            dataclasses.replace(r, entry=e) for r in measured for e in imgdup.discover.discover([folder])[0]
            if r.path == str(grain) and e.path == r.path
        ]  # fmt: skip
        assert str(grain) not in store.get_blocks(again)


def test_an_original_with_plain_edges_is_no_bordered_copy_of_its_crop(tmp_path: Path) -> None:
    """A flat graphic whose own background shows as a 2 px plain edge, its re-encodes, and a crop
    that cuts the edge off: the crop's size is the original's less a thin border, so the rule
    for thin borders called the original framed, and a q70 JPEG or a watermarked q60 copy was
    kept over the PNG original (2 of 148 clusters of the graphics benchmark). A bordered copy is
    a size fewer members hold than its sibling's; here the original's size is the cluster's."""
    canvas = Image.new("RGB", (96, 72), (200, 30, 30))
    canvas.paste(detailed(13, (92, 68)), (2, 2))
    canvas.save(tmp_path / "z_original.png")
    for q in (90, 80, 70):
        canvas.save(tmp_path / f"b_q{q}.jpg", quality=q)
    canvas.crop((2, 2, 94, 70)).save(tmp_path / "a_crop.jpg", quality=90)
    name, reason = keeper(tmp_path)
    assert name == "z_original.png", reason


def test_measuring_cluster_by_cluster_chooses_as_measuring_in_rounds(tmp_path: Path) -> None:
    """The local workers take each cluster's next measuring step as soon as its last one is in
    (imgdup.parallel.map_files' ``more``); another engine's ``measure`` takes the steps in
    rounds. Clusters share no file, so both must measure the same files and choose alike."""
    from imgdup import pipeline
    from imgdup.parallel import hash_all

    root = tmp_path / "d"
    root.mkdir()
    for i in range(4):
        img = photo(170 + i)
        img.save(root / f"{i}.png")
        img.resize((img.width * 2, img.height * 2), Image.Resampling.BICUBIC).save(root / f"{i}-x2.png")
        img.resize((img.width // 2, img.height // 2)).save(root / f"{i}-half.jpg", quality=90)
        img.save(root / f"{i}-q30.jpg", quality=30)
        img.convert("L").save(root / f"{i}-grey.jpg", quality=95)
    result = imgdup.find_duplicates(root, jobs=2, cache=None)
    assert len(result.clusters) == 4
    calls: list[int] = []

    def in_rounds(entries, settings, work):  # type: ignore[no-untyped-def]
        calls.append(len(entries))
        return hash_all(entries, settings, jobs=2, work=work)

    records = [dataclasses.replace(r, quality=None) for r in result.records]
    again = pipeline.cluster_records(
        records, result.settings.hash, threshold=result.settings.threshold, keep=result.settings.keep, jobs=2,
        measure=in_rounds,
    )  # fmt: skip
    assert len(calls) >= 2  # the tiers took more than one round
    assert [(c.keep.path, c.keep_reason, [(m.record.path, m.action) for m in c.members]) for c in again.clusters] == [
        (c.keep.path, c.keep_reason, [(m.record.path, m.action) for m in c.members]) for c in result.clusters
    ]
    assert {r.path: r.quality for r in again.records} == {r.path: r.quality for r in result.records}


def _measuring_killed(need: Any, settings: Any) -> Any:
    """The keep policy's measuring decode, in a worker killed from outside (SIGKILL: the
    out-of-memory killer takes the largest process, the worker decoding the largest file) on
    "a_big.png"."""
    if need.path.endswith("a_big.png"):
        os.kill(os.getpid(), signal.SIGKILL)
    return pipeline._measure_need_batch([need])(need.entry, settings)


def _big_half_and_q30(tmp_path: Path) -> Path:
    """A folder of a lossless 600 x 450 picture, its half-size q90 copy and a q30 copy of its size."""
    root = tmp_path / "d"
    root.mkdir()
    img = detailed(181, (600, 450))
    img.save(root / "a_big.png")
    img.resize((img.width // 2, img.height // 2)).save(root / "b_half.jpg", quality=90)
    img.save(root / "c_q30.jpg", quality=30)
    return root


def test_a_measuring_worker_killed_from_outside_leaves_the_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The worker measuring the original was killed from outside (the out-of-memory killer's
    SIGKILL): that read as "its full decode fails", so the original was ranked damaged and its
    smaller copy kept "intact (another copy fails Pillow's full check)", a false reason, with
    nothing said without -v; --remove 1 removed the original. Such a kill says nothing of the
    file: it stays unmeasured, as after a timeout, and a warning says so (QA pass 35)."""
    root = _big_half_and_q30(tmp_path)
    monkeypatch.setattr(pipeline, "_measure_need", _measuring_killed)
    with caplog.at_level(logging.WARNING, logger="imgdup"):
        (cluster,) = imgdup.find_duplicates(root, jobs=1, cache=None).clusters
    assert cluster.keep.path.endswith("a_big.png") and "intact" not in cluster.keep_reason
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "a_big.png" in r.getMessage()]
    assert said and all("killed from outside" in m for m in said) and "unknown" in said[-1]


def test_a_file_whose_full_decode_fails_in_the_measuring_never_wins(tmp_path: Path) -> None:
    """Issue 9: a file that fails a full decode never wins. The hash pass may read a file that the
    keep policy's full decode then cannot (a decoder crash, a broken stream past what a reduced
    decode reads): it was kept as "most pixels, not an enlargement", unmeasured (QA pass 25). A
    failure that says nothing of the file (a timeout, the memory bound: transient) leaves it as
    it was."""
    from imgdup import pipeline
    from imgdup.models import HashFailure

    root = _big_half_and_q30(tmp_path)
    result = imgdup.find_duplicates(root, jobs=1, cache=None)
    (cluster,) = result.clusters
    assert cluster.keep.path.endswith("a_big.png")
    records = [dataclasses.replace(r, quality=None) for r in result.records]

    def decide(reason: str, transient: bool) -> imgdup.models.Cluster:
        def measure(entries, settings, work):  # type: ignore[no-untyped-def]
            return [
                HashFailure(e.path, reason, transient=transient) if e.path.endswith("a_big.png") else work(e, settings)
                for e in entries
            ]

        (c,) = pipeline.cluster_records(
            records, result.settings.hash, threshold=result.settings.threshold, keep=result.settings.keep,
            jobs=1, measure=measure,
        ).clusters  # fmt: skip
        return c

    broken = decide("cannot decode: OSError: broken data stream when reading image file", False)
    assert not broken.keep.path.endswith("a_big.png")
    assert "intact" in broken.keep_reason
    crashed = decide("the decoder crashed (signal 11); file skipped", False)
    assert crashed.keep.path == broken.keep.path
    slow = decide("decoding took longer than 60 s; file skipped", True)
    assert slow.keep.path.endswith("a_big.png")


@pytest.mark.parametrize("resave", [95, 98, 100])
def test_a_camera_file_wins_over_its_upright_resave_at_a_finer_quality(tmp_path: Path, resave: int) -> None:
    """A q92 camera file (EXIF-rotated) and the copy an editor saves upright at q95-q100: the
    lattice test tried the standard q90 lattice but not q92's, and for a q95 file not even q90
    (half its steps), so the re-save's claimed quality won and the camera file was removed as
    "highest JPEG quality (q95 vs q92)" (QA pass 36)."""
    img = detailed(30, (400, 304))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: a viewer turns the stored pixels back upright
    img.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "z_IMG_0030.jpg", quality=92, exif=exif.tobytes())
    ImageOps.exif_transpose(Image.open(tmp_path / "z_IMG_0030.jpg")).save(tmp_path / "a_upright.jpg", quality=resave)
    name, reason = keeper(tmp_path)
    assert name == "z_IMG_0030.jpg", reason
    assert reason == "not a re-encode (another copy went through q92)", reason


def test_a_resave_that_went_through_a_coarser_quality_is_named_by_both(tmp_path: Path) -> None:
    """The camera file beat a q98 copy of a q85 re-send as "highest JPEG quality (q92 vs q85)":
    the copy's header says q98; q85 is the lattice its pixels sit on (QA pass 36)."""
    detailed(31).save(tmp_path / "z_IMG_0031.jpg", quality=92)
    decoded(tmp_path / "z_IMG_0031.jpg").save(tmp_path / "sent.jpg", quality=85)
    decoded(tmp_path / "sent.jpg").save(tmp_path / "a_copy.jpg", quality=98)
    (tmp_path / "sent.jpg").unlink()
    reason = "highest JPEG quality (q92 vs a q98 file whose pixels went through q85)"
    assert keeper(tmp_path) == ("z_IMG_0031.jpg", reason)
