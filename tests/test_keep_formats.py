"""The keep policy and what a file's format, mode and decode path say (QA pass 6).

Each case names its copies so that path order would keep the wrong file.
"""

from __future__ import annotations

import io
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter, ImageOps, features

import imgdup
from imgdup import hashing, quality
from imgdup.models import HashSettings

from .test_keep_policy import decoded, detailed, keeper


def grey_texture(seed: int, side: int = 256) -> np.ndarray:
    """A grey picture with a natural (1/f) spectrum, values 0..1."""
    rng = np.random.default_rng(seed)
    fy, fx = np.fft.fftfreq(side)[:, None], np.fft.fftfreq(side)[None, :]
    f = np.hypot(fx, fy)
    f[0, 0] = 1
    a = np.real(np.fft.ifft2((rng.normal(size=(side, side)) + 1j * rng.normal(size=(side, side))) / f**1.25))
    return (a - a.min()) / (a.max() - a.min())


def grey8(seed: int) -> Image.Image:
    return Image.fromarray((grey_texture(seed) * 255).round().astype(np.uint8), "L")


@pytest.mark.skipif(not features.check("webp"), reason="Pillow without WebP")
@pytest.mark.parametrize("seed", [1, 2])
def test_a_lossless_webp_is_kept_over_its_low_quality_jpeg(tmp_path: Path, seed: int) -> None:
    img = detailed(seed)
    img.save(tmp_path / "z_original.webp", lossless=True)
    img.save(tmp_path / "a_q30.jpg", quality=30)
    assert keeper(tmp_path) == ("z_original.webp", "lossless (vs q30)")


@pytest.mark.skipif(not features.check("webp"), reason="Pillow without WebP")
def test_only_a_vp8l_webp_is_lossless() -> None:
    img = detailed(3, (64, 48))
    settings = HashSettings()
    for kwargs, lossless in ((dict(lossless=True), True), (dict(quality=95), False)):
        out = io.BytesIO()
        img.save(out, "WEBP", **kwargs)
        traits = hashing._load_first_frame(io.BytesIO(out.getvalue()), settings)[4]
        assert (traits.format, traits.lossless) == ("WEBP", lossless)


@pytest.mark.skipif(not features.check("webp"), reason="Pillow without WebP")
def test_an_animated_webp_is_lossless_when_its_frames_are() -> None:
    """An animated WebP holds its frames in ANMF chunks: a lossless one (VP8L frames) was ranked
    "of unknown quality, as q60", a lossy one stays lossy (QA pass 6)."""
    frames = [detailed(k, (64, 48)) for k in (4, 5, 6)]
    settings = HashSettings()
    for kwargs, lossless in ((dict(lossless=True), True), (dict(quality=90), False)):
        out = io.BytesIO()
        frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:], duration=100, **kwargs)
        traits = hashing._load_first_frame(io.BytesIO(out.getvalue()), settings)[4]
        assert (traits.format, traits.lossless) == ("WEBP", lossless)


@pytest.mark.skipif(not features.check("webp"), reason="Pillow without WebP")
@pytest.mark.parametrize("seed", [1, 2])
def test_a_webp_of_unknown_quality_is_not_ranked_below_a_q30_jpeg(tmp_path: Path, seed: int) -> None:
    """Unknown is not worse: the q95 WebP ties with the JPEG on quality and path order decides
    (the JPEG sorts first: before the fix it won as "JPEG quality q30")."""
    img = detailed(seed)
    img.save(tmp_path / "b_original_q95.webp", quality=95)
    img.save(tmp_path / "c_q30.jpg", quality=30)
    name, _reason = keeper(tmp_path)
    assert name == "b_original_q95.webp"


@pytest.mark.skipif(not features.check("webp"), reason="Pillow without WebP")
def test_a_lossy_webp_copy_still_loses_to_its_q75_original(tmp_path: Path) -> None:
    """Unknown is not ranked as good as the best JPEG: the benchmark's WebP copies of q75 camera
    files were then kept over them."""
    detailed(4).save(tmp_path / "z_original.jpg", quality=75)
    decoded(tmp_path / "z_original.jpg").save(tmp_path / "a_copy.webp", quality=90)
    reason = "highest JPEG quality (q75 vs WEBP of unknown quality, ranked as q60)"
    assert keeper(tmp_path) == ("z_original.jpg", reason)


def test_a_16_bit_original_is_kept_over_its_8_bit_export(tmp_path: Path) -> None:
    a = grey_texture(1)
    Image.fromarray((a * 65535).round().astype(np.uint16)).save(tmp_path / "z_scan_16bit.png")
    Image.fromarray((a * 255).round().astype(np.uint8)).save(tmp_path / "a_scan_8bit.png")
    assert keeper(tmp_path) == ("z_scan_16bit.png", "more bits per sample (16 vs 8)")


def png_16bit_rgb(path: Path, rgb: np.ndarray) -> None:
    """A 16-bit RGB PNG (colour type 2), written by hand: Pillow reads such files (as 8-bit RGB)
    but cannot write them."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    h, w, _ = rgb.shape
    rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in rgb)
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)


def test_a_16_bit_rgb_original_is_kept_over_its_8_bit_export(tmp_path: Path) -> None:
    # Pillow opens a 16-bit RGB PNG as 8-bit RGB: the two files looked like twins holding the
    # same pixels, and the smaller one, the 8-bit export, was kept (QA pass 6).
    rgb = np.stack([grey_texture(s) for s in (3, 4, 5)], axis=-1)
    png_16bit_rgb(tmp_path / "z_scan_16bit.png", (rgb * 65535).round())
    with Image.open(tmp_path / "z_scan_16bit.png") as im:
        im.convert("RGB").save(tmp_path / "a_scan_8bit.png")  # what Pillow reads: the same 8-bit pixels
    traits = hashing._load_first_frame(str(tmp_path / "z_scan_16bit.png"), HashSettings())[4]
    assert quality.bits_per_sample(traits.mode) == 16
    assert keeper(tmp_path) == ("z_scan_16bit.png", "more bits per sample (16 vs 8)")


@pytest.mark.parametrize("seed", [9, 10])
def test_a_grey_palette_png_holding_the_pixels_exactly_is_lossless(tmp_path: Path, seed: int) -> None:
    grey = grey8(seed)
    palette = grey.convert("P")  # the 256 grey levels: the very same pixels
    assert np.array_equal(np.asarray(palette.convert("L")), np.asarray(grey))
    palette.save(tmp_path / "z_original_palette.png")
    grey.save(tmp_path / "a_q50.jpg", quality=50)
    assert keeper(tmp_path) == ("z_original_palette.png", "lossless (vs q50)")


def test_a_posterised_grey_palette_is_no_lossless_copy(tmp_path: Path) -> None:
    """Only a palette of every grey level holds any grey picture: 16 greys are a quantisation."""
    grey = grey8(9)
    grey.quantize(16).save(tmp_path / "a_16_greys.png")
    traits = hashing._load_first_frame(str(tmp_path / "a_16_greys.png"), HashSettings())[4]
    assert not traits.lossless


@pytest.mark.parametrize("seed", [1, 2])
def test_a_dithered_1_bit_copy_never_wins_over_the_grey_original(tmp_path: Path, seed: int) -> None:
    grey = detailed(seed, (250, 188)).convert("L")
    grey.save(tmp_path / "z_grey_original.png")
    grey.convert("1").save(tmp_path / "a_dithered.png")
    assert keeper(tmp_path) == ("z_grey_original.png", "grey levels (another copy is black and white, 1 bit per pixel)")


@pytest.mark.parametrize("seed", [0, 1])
def test_the_thumbnail_covers_exactly_the_picture(seed: int) -> None:
    """Sides that are no multiple of the hash's reduction (201 x 250 by 3): a box reduction's
    partial last row and column made the thumbnail differ from a box over the whole picture by
    up to 51 grey levels on sharp blocks; a JPEG's DCT-scaled decode is no box, but close."""
    rng = np.random.default_rng(seed)
    blocks = (rng.random((25, 20)) < 0.5).astype(np.uint8) * 255
    img = Image.fromarray(blocks, "L").resize((201, 250), Image.Resampling.NEAREST)
    expected = np.asarray(img.resize((16, 16), Image.Resampling.BOX), dtype=np.int64).ravel()
    for fmt, tolerance in (("PNG", 0), ("JPEG", 32)):
        out = io.BytesIO()
        img.save(out, fmt, quality=95)
        thumb = hashing._load_first_frame(io.BytesIO(out.getvalue()), HashSettings())[4].thumb
        assert np.abs(np.frombuffer(thumb, np.uint8).astype(np.int64) - expected).max() <= tolerance


@pytest.mark.parametrize("name", ["00000338.jpg", "00000355.jpg"])
def test_a_lossless_original_is_not_edited_for_its_decode_path(dogs: Path, tmp_path: Path, name: str) -> None:
    """A PNG and its q95/q80/q70 JPEGs: the PNG's thumbnail (a box reduction) differed from the
    JPEGs' (DCT-scaled decodes) by 20-25 grey levels, and the q95 JPEG was kept as "no edit"."""
    with Image.open(dogs / name) as im:
        img = im.convert("RGB").resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS)
    img.save(tmp_path / "z_original.png")
    for q in (95, 80, 70):
        img.save(tmp_path / f"a_q{q}.jpg", quality=q)
    assert keeper(tmp_path) == ("z_original.png", "lossless (vs q95)")


@pytest.mark.parametrize("seed", [1, 2])
def test_a_lossless_original_of_odd_size_is_kept_over_its_jpegs(tmp_path: Path, seed: int) -> None:
    """Sides that are no multiple of the reduction: the PNG's box reduction and the JPEGs' DCT
    scaling cover the picture differently at its last row and column, and the thumbnails the
    edit check compares differed by up to 25 grey levels: the q95 JPEG was kept as "no edit"."""
    img = detailed(seed, (201, 250))
    img.save(tmp_path / "z_original.png")
    for q in (95, 80, 70):
        decoded(tmp_path / "z_original.png").save(tmp_path / f"a_q{q}.jpg", quality=q)
    assert keeper(tmp_path) == ("z_original.png", "lossless (vs q95)")


def sepia(grey: Image.Image, gain: tuple[float, float, float], offset: tuple[int, int, int]) -> Image.Image:
    """A uniform tint of a grey picture: every pixel's colour is a function of its grey level."""
    a = np.asarray(grey, dtype=np.float64)[..., None]
    return Image.fromarray(np.clip(a * gain + offset, 0, 255).astype(np.uint8), "RGB")


@pytest.mark.parametrize(
    ("seed", "gain", "offset"), [(5, (1.0, 0.95, 0.85), (12, 6, 0)), (6, (0.8, 0.9, 1.0), (0, 5, 20))]
)
def test_a_tinted_copy_is_no_colour_original(
    tmp_path: Path, seed: int, gain: tuple[float, float, float], offset: tuple[int, int, int]
) -> None:
    """A sepia (or blue-toned) q80 JPEG of a grey original won as "colour (another copy is
    grayscale)": a uniform tint is no real colour, and the lossless original is kept."""
    grey = grey8(seed)
    grey.save(tmp_path / "z_original.png")
    sepia(grey, gain, offset).save(tmp_path / "a_toned_q80.jpg", quality=80)
    assert keeper(tmp_path) == ("z_original.png", "lossless (vs q80)")


@pytest.mark.parametrize("seed", [1, 2])
def test_a_photo_with_colour_is_no_tint(seed: int) -> None:
    """Colours that vary at every grey level are real colour; the same picture's tint is not."""
    img = detailed(seed)
    for picture, real in ((img, True), (sepia(img.convert("L"), (1.0, 0.95, 0.85), (12, 6, 0)), False)):
        out = io.BytesIO()
        picture.save(out, "JPEG", quality=90)
        traits = hashing._load_first_frame(io.BytesIO(out.getvalue()), HashSettings())[4]
        assert quality.real_colour(traits) is real


def test_format_mode_and_chroma_spread_survive_the_cache(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    root.mkdir()
    a = grey_texture(2)
    Image.fromarray((a * 65535).round().astype(np.uint16)).save(root / "z_16bit.png")
    Image.fromarray((a * 255).round().astype(np.uint8)).save(root / "a_8bit.png")
    sepia(grey8(2), (1.0, 0.95, 0.85), (12, 6, 0)).save(root / "b_toned.jpg", quality=95)
    cache = tmp_path / "c.sqlite3"
    cold = imgdup.find_duplicates([root], threshold=8, jobs=1, cache=cache)
    warm = imgdup.find_duplicates([root], threshold=8, jobs=1, cache=cache)
    assert warm.summary.from_cache == 3
    assert [r.traits for r in warm.records] == [r.traits for r in cold.records]
    modes = {Path(r.path).name: (r.traits.format, r.traits.mode) for r in warm.records if r.traits}
    assert modes["z_16bit.png"][1].startswith("I;16") and modes["b_toned.jpg"] == ("JPEG", "RGB")
    assert all(r.traits and (r.traits.chroma_spread is not None) == (r.path.endswith(".jpg")) for r in warm.records)
    assert Path(warm.clusters[0].keep.path).name == "z_16bit.png"


def test_an_animation_is_kept_over_a_still_of_its_first_frame(tmp_path: Path) -> None:
    """A still PNG of the first frame was kept (it sorts first) and the animation itself, that
    frame and four more, was left for review: the still holds a fifth of the picture. The
    animation is kept; the still, whose frames differ from it, stays for review (QA pass 6)."""
    frames = [detailed(k, (160, 120)) for k in (11, 12, 13, 14, 15)]
    frames[0].save(tmp_path / "a_first_frame.png")
    frames[0].save(tmp_path / "b_clip.png", save_all=True, append_images=frames[1:], duration=100)
    (cluster,) = imgdup.find_duplicates([tmp_path], jobs=1).clusters
    assert Path(cluster.keep.path).name == "b_clip.png" and "frames" in cluster.keep_reason
    assert {Path(m.record.path).name: m.action for m in cluster.members}["a_first_frame.png"] is imgdup.Action.REVIEW


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_cmyk_jpeg_print_conversion_is_not_kept_over_its_camera_original(tmp_path: Path, seed: int) -> None:
    """A CMYK JPEG's quantisation tables are those of its ink channels: their quality says
    nothing of the picture's, and the conversion hides the lattice of the file it was made
    from. A q95 CMYK copy of a q92 camera file was kept as "highest JPEG quality (q95 vs q92)"
    (6 of 6 such pairs; QA pass 13); it ranks as a file of unknown quality now, as a lossy WebP
    does."""
    detailed(seed).save(tmp_path / "z_camera.jpg", quality=92)
    decoded(tmp_path / "z_camera.jpg").convert("CMYK").save(tmp_path / "a_print_cmyk.jpg", quality=95)
    assert Image.open(tmp_path / "a_print_cmyk.jpg").mode == "CMYK"
    name, reason = keeper(tmp_path)
    assert name == "z_camera.jpg", reason
    assert reason == "highest JPEG quality (q92 vs CMYK JPEG of unknown quality, ranked as q60)"


def _fade_in(path: Path, pictures: list[Image.Image], fmt: str = "PNG") -> None:
    """An animation that opens on a black frame (a fade-in), then ``pictures``."""
    black = Image.new("RGB", pictures[0].size, (0, 0, 0))
    black.save(path, fmt, save_all=True, append_images=pictures, duration=100)


@pytest.mark.parametrize("seed", [1, 2])
def test_an_enlarged_or_blurred_fade_in_loses_to_its_original(tmp_path: Path, seed: int) -> None:
    """Quality was measured on an animation's first frame: a black one told nothing, so a 2x
    enlargement of a fade-in was kept as "most pixels (640x480), not an enlargement" and a
    blurred copy as "first in path order" or as "smallest of the files with identical pixels"
    (QA pass 15). It is measured on the frame the file is searched by, the first that holds a
    picture."""
    pictures = [detailed(seed * 10 + k, (320, 240)) for k in range(3)]
    big = tmp_path / "big"
    big.mkdir()
    _fade_in(big / "z_original.png", pictures)
    _fade_in(big / "a_enlarged.png", [p.resize((640, 480), Image.Resampling.BICUBIC) for p in pictures])
    assert keeper(big) == ("z_original.png", "the others are enlargements of it")
    soft = tmp_path / "soft"
    soft.mkdir()
    _fade_in(soft / "z_original.png", pictures)
    _fade_in(soft / "a_blurred.png", [p.filter(ImageFilter.GaussianBlur(2)) for p in pictures])
    assert keeper(soft) == ("z_original.png", "sharper (another copy has less detail)")


def test_animations_differing_after_their_first_frame_are_no_pixel_twins(tmp_path: Path) -> None:
    """Two animations were "identical pixels" when their first frames were and the hashes of the
    later ones agreed: a copy whose later frames were blurred (a smaller PNG) was kept as
    "smallest of the files with identical pixels" and the original removed (QA pass 15). The
    pixel digest of a multi-frame file covers every frame."""
    title = detailed(7, (320, 240))
    pictures = [detailed(70 + k, (320, 240)) for k in range(3)]
    title.save(tmp_path / "z_original.png", save_all=True, append_images=pictures, duration=100)
    soft = [p.filter(ImageFilter.GaussianBlur(1.5)) for p in pictures]
    title.save(tmp_path / "a_soft_later.png", save_all=True, append_images=soft, duration=100)
    result = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1)
    (cluster,) = result.clusters
    assert "identical pixels" not in cluster.keep_reason
    digests = {Path(r.path).name: r.quality.pixels_sha256 for r in result.records if r.quality}
    assert digests["a_soft_later.png"] != digests["z_original.png"]


@pytest.mark.parametrize("seed", [3, 4])
def test_jpegs_with_one_luminance_and_other_colours_are_no_pixel_twins(tmp_path: Path, seed: int) -> None:
    """A colour JPEG's pixel digest is of its luminance (all the measures decode): a copy saved
    with the same luminance table but 4:2:0 chroma, or coarser chroma tables, held "identical
    pixels" and was kept as the smaller file over the 4:4:4 original (QA pass 15)."""
    img = detailed(seed)
    img.save(tmp_path / "z_444.jpg", quality=90, subsampling=0)
    img.save(tmp_path / "a_420.jpg", quality=90, subsampling=2)
    with Image.open(tmp_path / "z_444.jpg") as im:
        luma = list(im.quantization[0])
    with Image.open(tmp_path / "a_420.jpg") as im:
        coarse = list(im.quantization[1])
    img.save(tmp_path / "b_coarse_chroma.jpg", qtables=[luma, [min(255, 3 * v) for v in coarse]], subsampling=0)
    result = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1)
    (cluster,) = result.clusters
    assert "identical pixels" not in cluster.keep_reason, cluster.keep_reason
    digests = {r.quality.pixels_sha256 for r in result.records if r.quality and r.quality.pixels_sha256}
    assert len(digests) == 3


def _with_holes(seed: int) -> Image.Image:
    """An RGBA picture whose alpha is used: a transparent band and a half-transparent one."""
    rgba = np.asarray(detailed(seed).convert("RGBA")).copy()
    rgba[:, :60, 3] = 0
    rgba[:, 60:120, 3] = 128
    return Image.fromarray(rgba, "RGBA")


@pytest.mark.parametrize("seed", [3, 4])
def test_a_transparent_original_is_kept_over_its_flattened_copy(tmp_path: Path, seed: int) -> None:
    """A copy flattened onto white shows what the transparent original shows on white (the pixels
    every measure sees): it was "identical pixels" and kept as the smaller file, its original's
    transparency lost with the other (QA pass 15)."""
    picture = _with_holes(seed)
    picture.save(tmp_path / "z_transparent.png")
    white = Image.new("RGBA", picture.size, (255, 255, 255, 255))
    Image.alpha_composite(white, picture).convert("RGB").save(tmp_path / "a_flattened.png")
    assert keeper(tmp_path) == ("z_transparent.png", "transparency (another copy was flattened onto a background)")


def test_an_opaque_alpha_channel_is_no_transparency(tmp_path: Path) -> None:
    """An RGBA file whose alpha is opaque everywhere holds the very picture of its RGB copy: the
    smaller of the two is kept, as of any files with identical pixels."""
    picture = detailed(5)
    picture.convert("RGBA").save(tmp_path / "a_rgba.png")
    picture.save(tmp_path / "b_rgb.png")
    smaller = min(("a_rgba.png", "b_rgb.png"), key=lambda n: (tmp_path / n).stat().st_size)
    assert keeper(tmp_path) == (smaller, "smallest of the files with identical pixels")


@pytest.mark.parametrize("seed", [3, 4])
def test_full_chroma_wins_over_subsampled_chroma_at_one_quality(tmp_path: Path, seed: int) -> None:
    """At one luminance quality a 4:2:0 copy of a 4:4:4 file holds a quarter of its colour
    samples: it was kept by path order (QA pass 15)."""
    img = detailed(seed)
    img.save(tmp_path / "z_444.jpg", quality=90, subsampling=0)
    img.save(tmp_path / "a_420.jpg", quality=90, subsampling=2)
    img.save(tmp_path / "b_422.jpg", quality=90, subsampling=1)
    assert keeper(tmp_path) == ("z_444.jpg", "more colour samples (1 per pixel vs 1 per 2 pixels: chroma subsampling)")


def test_transparency_and_chroma_subsampling_survive_the_cache(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    root.mkdir()
    _with_holes(6).save(root / "a_holes.png")
    detailed(6).save(root / "b_422.jpg", quality=90, subsampling=1)
    detailed(6).convert("RGBA").save(root / "c_opaque.png")
    cache = tmp_path / "c.sqlite3"
    cold = imgdup.find_duplicates([root], threshold=8, jobs=1, cache=cache)
    warm = imgdup.find_duplicates([root], threshold=8, jobs=1, cache=cache)
    assert warm.summary.from_cache == 3
    assert [r.traits for r in warm.records] == [r.traits for r in cold.records]
    found = {Path(r.path).name: (r.traits.transparent, r.traits.subsampling) for r in warm.records if r.traits}
    assert found == {"a_holes.png": (True, None), "b_422.jpg": (False, 2), "c_opaque.png": (False, None)}


def test_twins_of_one_size_are_decided_by_path_order_and_say_so(tmp_path: Path) -> None:
    """Files with identical pixels and the same number of bytes (other text chunks) were kept as
    "smallest of the files with identical pixels": path order decided (QA pass 15)."""
    from PIL import PngImagePlugin

    picture = detailed(9)
    for name, text in (("b_x.png", "AAAA"), ("a_y.png", "BBBB"), ("c_z.png", "CCCC")):
        info = PngImagePlugin.PngInfo()
        info.add_text("note", text)
        picture.save(tmp_path / name, pnginfo=info)
    assert keeper(tmp_path) == ("a_y.png", "first in path order of files with identical pixels, all of one size")


def test_a_transparent_picture_is_kept_over_its_flattening_with_the_same_pixels(tmp_path: Path) -> None:
    """A PNG with a transparent hole and a copy flattened onto white show the same pixels (a
    picture is compared as seen on white), so the smaller, flattened copy was kept as "smallest
    of the files with identical pixels" and the one holding the transparency removed: its mask
    was lost with it. The transparent file is kept (rule 5: transparency kept; QA passes 14, 15)."""
    img = detailed(4).convert("RGBA")
    alpha = np.full((img.height, img.width), 255, dtype=np.uint8)
    alpha[60:200, 80:260] = 0  # a cut-out's hole
    img.putalpha(Image.fromarray(alpha, "L"))
    img.save(tmp_path / "z_cutout.png")
    white = Image.new("RGBA", img.size, (255, 255, 255, 255))
    white.alpha_composite(img)
    white.convert("RGB").save(tmp_path / "a_flat.png")
    assert (tmp_path / "a_flat.png").stat().st_size < (tmp_path / "z_cutout.png").stat().st_size  # premise
    name, reason = keeper(tmp_path)
    assert name == "z_cutout.png"
    assert "transparency" in reason


def test_a_file_with_a_colour_profile_is_kept_over_its_twin_stripped_of_it(tmp_path: Path) -> None:
    """The same JPEG with and without its embedded colour profile (``exiftool -all=``, an upload
    that strips metadata) holds identical pixels, so the stripped copy, smaller by the profile,
    was kept as "smallest of the files with identical pixels": with a Display P3 or Adobe RGB
    profile it shows other colours, and the original went. The profile is remembered by the
    cache (a warm run keeps the same file)."""
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()  # any profile's bytes
    img = detailed(5)
    img.save(tmp_path / "z_original.jpg", quality=92, icc_profile=profile)
    img.save(tmp_path / "a_stripped.jpg", quality=92)
    assert decoded(tmp_path / "a_stripped.jpg").tobytes() == decoded(tmp_path / "z_original.jpg").tobytes()
    assert (tmp_path / "a_stripped.jpg").stat().st_size < (tmp_path / "z_original.jpg").stat().st_size  # premise
    assert keeper(tmp_path) == (
        "z_original.jpg",
        "colour profile (the others hold its pixels without the profile that says what they mean)",
    )
    cache = tmp_path.parent / f"{tmp_path.name}.sqlite3"
    for _run in range(2):
        result = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1, cache=cache)
        assert Path(result.clusters[0].keep.path).name == "z_original.jpg"
    assert result.summary.from_cache == 2


@pytest.mark.parametrize("seed", [3, 4])
def test_a_grayscale_copy_of_a_nearly_grey_photo_gains_nothing_by_chroma_subsampling(tmp_path: Path, seed: int) -> None:
    """A photo with too little colour for the colour rule (colourfulness 1.5-3) and its grayscale
    copy (a q90 re-encode, which went through q75): counted as full chroma, the grey copy won
    "more colour samples" over the 4:2:0 original (the accuracy benchmark, seed 1, while QA pass
    15 added the rule)."""
    from PIL import ImageEnhance

    ImageEnhance.Color(detailed(seed)).enhance(0.05).save(tmp_path / "z_original.jpg", quality=75)
    decoded(tmp_path / "z_original.jpg").convert("L").save(tmp_path / "a_grey.jpg", quality=90)
    result = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1)
    (original,) = [r for r in result.records if r.path.endswith("z_original.jpg")]
    assert 1.5 <= original.traits.colourfulness < 3.0
    (cluster,) = result.clusters
    assert Path(cluster.keep.path).name == "z_original.jpg", cluster.keep_reason


# QA pass 34: copies the accuracy benchmark does not make.


def test_a_444_reencode_of_a_420_original_gains_no_colour_samples(dogs: Path, tmp_path: Path) -> None:
    """A camera file (q75, 4:2:0) and its q95 re-encode saved with full chroma (4:4:4, what
    Photoshop's and GIMP's highest settings write): the copy's colours went through the
    original's 4:2:0 planes, yet its own header won "more colour samples" over the original."""
    shutil.copyfile(dogs / "00000005.jpg", tmp_path / "z_original.jpg")
    decoded(tmp_path / "z_original.jpg").save(tmp_path / "a_q95_444.jpg", quality=95, subsampling=0)
    assert keeper(tmp_path) == ("z_original.jpg", "not a re-encode (another copy went through q75)")


def test_a_lossless_master_is_kept_over_its_q100_jpeg(tmp_path: Path) -> None:
    """A q100 JPEG is lossy (DCT rounding, YCbCr): it ranked equal to the lossless PNG it was made
    from, so path order kept the JPEG."""
    img = detailed(6)
    img.save(tmp_path / "z_master.png")
    img.save(tmp_path / "a_q100.jpg", quality=100, subsampling=0)
    assert keeper(tmp_path) == ("z_master.png", "lossless (vs q100)")


def test_a_kept_q100_jpeg_is_not_called_lossless(tmp_path: Path) -> None:
    img = detailed(7)
    for q in (85, 95, 100):
        img.save(tmp_path / f"q{q}.jpg", quality=q)
    assert keeper(tmp_path) == ("q100.jpg", "highest JPEG quality (q100 vs q95)")


def _with_orientation(jpeg: bytes, orientation: int) -> bytes:
    """The JPEG with an EXIF segment holding ``orientation`` after its start marker (pixels untouched)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    body = exif.tobytes()
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + jpeg[2:]


def test_a_file_whose_orientation_tag_was_stripped_is_no_twin_of_it(dogs: Path, tmp_path: Path) -> None:
    """With --rotations a camera file tagged "turn 90 degrees to show" (EXIF orientation 6) and the
    same file stripped of its EXIF (it shows sideways) match; they hold the same stored pixels,
    and the stripped one, smaller by the tag, was kept as "smallest of the files with identical
    pixels". They do not show the same picture: the tagged file is kept, and the cache remembers
    the orientation (a warm run keeps the same file)."""
    stripped = (dogs / "00000007.jpg").read_bytes()
    (tmp_path / "a_stripped.jpg").write_bytes(stripped)
    (tmp_path / "z_tagged.jpg").write_bytes(_with_orientation(stripped, 6))
    expected = (
        "z_tagged.jpg",
        "EXIF orientation (the others hold its pixels without the tag that says how to turn them)",
    )
    cache = tmp_path.parent / f"{tmp_path.name}.sqlite3"
    for _run in range(2):
        result = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1, rotations=True, cache=cache)
        (cluster,) = result.clusters
        assert (Path(cluster.keep.path).name, cluster.keep_reason) == expected
    assert result.summary.from_cache == 2


def test_a_16_bit_png_of_a_jpeg_decode_claims_no_more_bits(dogs: Path, tmp_path: Path) -> None:
    """A 16-bit RGB PNG made from an 8-bit camera JPEG (every sample v * 257) holds the JPEG's
    picture and nothing more: it won "more bits per sample (16 vs 8)" over its original."""
    shutil.copyfile(dogs / "00000012.jpg", tmp_path / "z_original.jpg")
    rgb = np.asarray(decoded(tmp_path / "z_original.jpg"), dtype=np.uint16) * 257
    png_16bit_rgb(tmp_path / "a_16bit.png", rgb)
    assert keeper(tmp_path) == ("z_original.jpg", "not a re-encode (another copy went through q75)")


@pytest.mark.parametrize(("side", "fill", "saved"), [("bottom", "black", "png"), ("right", "white", "q95")])
def test_a_copy_with_a_thin_bar_on_one_side_loses_to_the_picture_without_it(
    dogs: Path, tmp_path: Path, side: str, fill: str, saved: str
) -> None:
    """A bar of 3 plain rows on one side only (a bad crop, a pad to a size) is no border all
    round, and the copy, the original plus those rows, was kept as "most pixels" (QA pass 34)."""
    shutil.copyfile(dogs / "00000005.jpg", tmp_path / "z_original.jpg")
    img = decoded(tmp_path / "z_original.jpg")
    w, h = img.size
    barred = Image.new("RGB", (w, h + 3) if side == "bottom" else (w + 3, h), fill)
    barred.paste(img, (0, 0))
    if saved == "png":
        barred.save(tmp_path / "a_barred.png")
    else:
        barred.save(tmp_path / "a_barred.jpg", quality=95)
    assert keeper(tmp_path) == ("z_original.jpg", "no added border, bars or caption (another copy has them)")


def test_a_picture_whose_own_edge_row_is_plain_is_not_framed_by_itself(dogs: Path, tmp_path: Path) -> None:
    """A photo whose top row happens to be plain, beside copies of its size: with a pixel of
    slack its own size matched "its size less a 1 px bar", and the original was framed (the
    accuracy benchmark, 1 of 150 sources on each seed, while one-sided bars were added)."""
    img = decoded(dogs / "00000069.jpg")
    arr = np.asarray(img).copy()
    arr[0] = arr[0].mean(axis=0).astype(np.uint8)  # one plain row at the top
    Image.fromarray(arr).save(tmp_path / "z_original.png")
    Image.fromarray(arr).save(tmp_path / "a_q70.jpg", quality=70)
    records = [m.record for m in imgdup.find_duplicates([tmp_path], threshold=8, jobs=1).clusters[0].members]
    assert quality.unpack_bars(next(r for r in records if r.path.endswith("png")).quality.border)[0] == 1
    assert not any(a.framed for a in quality.assess(records))


def test_a_larger_copy_is_told_an_enlargement_beside_a_blurred_copy_of_its_source(dogs: Path, tmp_path: Path) -> None:
    """A camera file (q75), its q40 copy, a blurred copy saved at q90 (the best claimed quality of
    their size) and a 1.5x enlargement: the enlargement was compared with the blurred copy alone,
    held more detail than it, and was kept as "most pixels (750x562), not an enlargement", the
    camera file removed (QA pass 34). A blurred sibling is no source to compare with, and a second
    sibling of that size is measured before a larger file is called no enlargement."""
    shutil.copyfile(dogs / "00000070.jpg", tmp_path / "z_original.jpg")
    img = decoded(tmp_path / "z_original.jpg")
    img.save(tmp_path / "c_q40.jpg", quality=40)
    img.filter(ImageFilter.GaussianBlur(2)).save(tmp_path / "b_blur.jpg", quality=90)
    img.resize((img.width * 3 // 2, img.height * 3 // 2), Image.Resampling.BICUBIC).save(
        tmp_path / "a_big.jpg", quality=85
    )
    name, reason = keeper(tmp_path)
    assert name == "z_original.jpg", reason


def test_a_stripped_twin_beside_a_third_copy_is_explained_by_its_tag(dogs: Path, tmp_path: Path) -> None:
    """With a q70 copy beside them, the tagged file's reason against its stripped twin (not
    measured: its sideways thumbnail passed for an edit) read "no overlay or edit (another copy
    differs where the others agree)", which neither copy is (QA pass 36). It names the tag."""
    stripped = (dogs / "00000007.jpg").read_bytes()
    (tmp_path / "a_stripped.jpg").write_bytes(stripped)
    (tmp_path / "z_tagged.jpg").write_bytes(_with_orientation(stripped, 6))
    with Image.open(tmp_path / "z_tagged.jpg") as im:
        ImageOps.exif_transpose(im).save(tmp_path / "m_other.jpg", quality=70)
    (cluster,) = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1, rotations=True).clusters
    assert Path(cluster.keep.path).name == "z_tagged.jpg"
    assert "overlay or edit" not in cluster.keep_reason, cluster.keep_reason
    reason = cluster.keep_reason
    assert "EXIF orientation (another copy holds its picture without the tag" in reason, reason
