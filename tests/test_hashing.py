"""Hashing sees what a viewer sees: twins match, different pictures do not."""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from imgdup.hashing import bits_to_int, hash_entry, hash_image, load_for_hashing, normalise
from imgdup.models import FileEntry, HashFailure, HashSettings, ImageRecord

from .synth import photo

FULL = HashSettings(decode="full")
DRAFT = HashSettings(decode="draft")


def entry_for(path: Path) -> FileEntry:
    st = path.stat()
    return FileEntry(str(path), str(path.parent), path.name, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


def file_hash(path: Path, settings: HashSettings = FULL) -> int:
    res = hash_entry(entry_for(path), settings)
    assert isinstance(res, ImageRecord), res
    return res.hash


def dist(a: int, b: int) -> int:
    return (a ^ b).bit_count()


@pytest.mark.parametrize("algorithm", ["phash", "dhash", "ahash", "whash"])
@pytest.mark.parametrize("size", [8, 16])
def test_int_equals_imagehash_hex(algorithm: str, size: int) -> None:
    img = photo(1)
    value = hash_image(img, HashSettings(algorithm=algorithm, hash_size=size, decode="full"))
    fn = {"phash": imagehash.phash, "dhash": imagehash.dhash, "ahash": imagehash.average_hash}.get(algorithm)
    ref = fn(img, hash_size=size) if fn else imagehash.whash(img, hash_size=size, image_scale=4 * size)
    assert value == int(str(ref), 16)
    assert value.bit_length() <= size * size


def test_bits_to_int_order() -> None:
    assert bits_to_int(np.array([[1, 0], [0, 0]], dtype=bool)) == 0b1000
    assert bits_to_int(np.array([0, 0, 0, 0, 0, 0, 0, 0, 1], dtype=bool)) == 1  # not a multiple of 8


def test_exif_rotated_copy_matches_its_upright_twin(tmp_path: Path) -> None:
    img = photo(2)
    img.save(tmp_path / "upright.jpg", quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated; a viewer rotates it 90 degrees clockwise
    img.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "rotated.jpg", quality=95, exif=exif)
    assert ImageOps.exif_transpose(Image.open(tmp_path / "rotated.jpg")).size == img.size
    for settings in (FULL, DRAFT):
        a, b = file_hash(tmp_path / "upright.jpg", settings), file_hash(tmp_path / "rotated.jpg", settings)
        assert dist(a, b) <= 4
    # the reason EXIF matters: ignoring the tag puts the twins about half the bits apart
    raw = Image.open(tmp_path / "rotated.jpg").convert("RGB")
    assert dist(hash_image(raw, FULL), file_hash(tmp_path / "upright.jpg")) > 16
    record = hash_entry(entry_for(tmp_path / "rotated.jpg"), FULL)
    assert isinstance(record, ImageRecord) and (record.width, record.height) == img.size


def test_16bit_grey_matches_8bit_twin_and_not_a_stranger(tmp_path: Path) -> None:
    grey8 = photo(3).convert("L")
    Image.fromarray(np.asarray(grey8, dtype=np.uint16) * 257).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    grey8.save(tmp_path / "g8.png")
    Image.fromarray(np.asarray(photo(4).convert("L"), dtype=np.uint16) * 257).save(tmp_path / "other16.png")
    h16, h8, other = (file_hash(tmp_path / n) for n in ("g16.png", "g8.png", "other16.png"))
    assert dist(h16, h8) <= 2
    assert dist(h16, other) > 12


def test_transparency_is_composited_on_white(tmp_path: Path) -> None:
    base = photo(5)
    rgba = base.convert("RGBA")
    alpha = Image.new("L", base.size, 0)
    alpha.paste(255, (40, 30, 280, 210))
    rgba.putalpha(alpha)
    rgba.save(tmp_path / "alpha.png")
    flat = Image.new("RGB", base.size, (255, 255, 255))
    flat.paste(base, mask=alpha)
    flat.save(tmp_path / "flat.png")
    # the same pixels on black would look different to a viewer: it must not match
    dark = Image.new("RGB", base.size, (0, 0, 0))
    dark.paste(base, mask=alpha)
    dark.save(tmp_path / "dark.png")
    a, f, d = (file_hash(tmp_path / n) for n in ("alpha.png", "flat.png", "dark.png"))
    assert dist(a, f) <= 2
    assert dist(a, d) > 4


def test_palette_with_transparency_and_cmyk_match_their_rgb_twins(tmp_path: Path) -> None:
    base = photo(6)
    pal = base.quantize(64)
    pal.save(tmp_path / "pal.png")
    pal.convert("RGB").save(tmp_path / "pal-as-rgb.png")
    base.save(tmp_path / "rgb.png")
    pal.save(tmp_path / "pal-transparent.png", transparency=0)
    # what a viewer shows for the transparent one: palette colour 0 replaced by the white page
    white = Image.new("RGBA", base.size, (255, 255, 255, 255))
    Image.alpha_composite(white, Image.open(tmp_path / "pal-transparent.png").convert("RGBA")).save(
        tmp_path / "seen.png"
    )
    base.convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(tmp_path / "pal.png").mode == "P" and Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    assert file_hash(tmp_path / "pal.png") == file_hash(tmp_path / "pal-as-rgb.png")
    rgb = file_hash(tmp_path / "rgb.png")
    assert file_hash(tmp_path / "pal-transparent.png") == file_hash(tmp_path / "seen.png")
    assert dist(rgb, file_hash(tmp_path / "cmyk.jpg")) <= 4
    assert dist(rgb, file_hash(tmp_path / "cmyk.jpg", DRAFT)) <= 6
    assert dist(rgb, hash_image(photo(7), FULL)) > 12


def test_animated_image_is_hashed_on_its_first_frame(tmp_path: Path) -> None:
    first, second = photo(8), photo(9)
    first.save(tmp_path / "anim.gif", save_all=True, append_images=[second], duration=100)
    first.save(tmp_path / "first.png")
    second.save(tmp_path / "second.png")
    anim = file_hash(tmp_path / "anim.gif")
    assert dist(anim, file_hash(tmp_path / "first.png")) <= 6
    assert dist(anim, file_hash(tmp_path / "second.png")) > 12


@pytest.mark.parametrize("algorithm", ["phash", "dhash", "ahash", "whash"])
def test_half_size_copy_stays_close_in_both_decode_modes(tmp_path: Path, algorithm: str) -> None:
    img = photo(10, (640, 480))
    img.save(tmp_path / "full.jpg", quality=90)
    img.resize((320, 240), Image.Resampling.LANCZOS).save(tmp_path / "half.jpg", quality=90)
    photo(11, (640, 480)).save(tmp_path / "other.jpg", quality=90)
    for decode in ("full", "draft"):
        s = HashSettings(algorithm=algorithm, decode=decode)
        full, half, other = (file_hash(tmp_path / n, s) for n in ("full.jpg", "half.jpg", "other.jpg"))
        assert dist(full, half) <= 4, (decode, dist(full, half))
        assert dist(full, other) > 8


def test_draft_decodes_jpeg_reduced_but_not_below_twice_the_hash_input(tmp_path: Path) -> None:
    photo(12, (1600, 1200)).save(tmp_path / "big.jpg", quality=90)
    with open(tmp_path / "big.jpg", "rb") as fh:
        data = io.BytesIO(fh.read())
    img, w, h = load_for_hashing(data, DRAFT)
    assert (w, h) == (1600, 1200)
    assert 64 <= min(img.size) < 300  # 1/8 scale = 150 px; phash samples 32 px


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("width", "height"), [(12_000, 9_000), (20_000, 10_000)])
def test_a_refused_bomb_names_the_limit_to_raise_and_how_far(tmp_path: Path, width: int, height: int) -> None:
    """Over twice the limit, Pillow's message gives twice the limit ("exceeds limit of 178956970
    pixels"): --max-pixels 180000000, as it suggested, refused a 200 MP file again (QA pass 20)."""
    from PIL import Image

    path = tmp_path / "bomb.png"
    path.write_bytes(_png_declaring(width, height))
    res = hash_entry(entry_for(path), FULL)
    assert isinstance(res, HashFailure)
    assert f"{width * height:,} pixels" in res.reason and f"limit of {Image.MAX_IMAGE_PIXELS:,}" in res.reason
    assert f"--max-pixels {width * height}" in res.reason and f"{2 * Image.MAX_IMAGE_PIXELS}" not in res.reason


@pytest.mark.parametrize(("side", "word"), [(12_000, "bomb"), (40_000, "bomb")])
def test_decompression_bombs_are_refused(tmp_path: Path, side: int, word: str) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_declaring(side, side))  # 144 M pixels warns, 1.6 G pixels errors
    res = hash_entry(entry_for(path), FULL)
    assert isinstance(res, HashFailure) and word in res.reason


def _png_with(*chunks: tuple[bytes, bytes]) -> bytes:
    """A small valid PNG (8 x 8 grey) with ``chunks`` (type, data) before its pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0)
    extra = b"".join(chunk(kind, data) for kind, data in chunks)
    idat = chunk(b"IDAT", zlib.compress(b"".join(b"\0" + bytes(range(0, 256, 32)) for _ in range(8))))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + idat + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("chunks", "limit"),
    [
        # 20 MB of comment in 20 KB: past PngImagePlugin.MAX_TEXT_CHUNK (1 MB) once inflated
        ([(b"zTXt", b"comment\0\0" + zlib.compress(b"A" * 20 * 2**20))], "MAX_TEXT_CHUNK"),
        ([(b"iCCP", b"profile\0\0" + zlib.compress(b"\0" * 20 * 2**20))], "MAX_TEXT_CHUNK"),
        # 70 chunks of 0.99 MB each: past MAX_TEXT_MEMORY (64 MB) in all
        ([(b"zTXt", b"c%d\0\0" % i + zlib.compress(b"A" * (2**20 - 2**14))) for i in range(70)], "MAX_TEXT_MEMORY"),
    ],
)
def test_a_png_chunk_that_inflates_past_pillows_limit_is_refused_as_a_bomb(
    tmp_path: Path, chunks: list[tuple[bytes, bytes]], limit: str
) -> None:
    """Pillow refuses a PNG whose compressed text or colour profile inflates past its limits (a
    decompression-bomb guard); the failure said "cannot decode: ValueError: ..." as for a damaged
    file, where the file is refused by a guard that names no pixels."""
    path = tmp_path / "inflates.png"
    path.write_bytes(_png_with(*chunks))
    res = hash_entry(entry_for(path), FULL)
    assert isinstance(res, HashFailure)
    assert res.reason.startswith("refused: ") and "decompression bomb" in res.reason, res.reason
    assert f"PngImagePlugin.{limit}" in res.reason and "ValueError" not in res.reason, res.reason
    assert res.transient  # like the pixel limit's refusal: not cached, so a limit raised is heeded next run
    plain = tmp_path / "plain.png"
    plain.write_bytes(_png_with((b"zTXt", b"comment\0\0" + zlib.compress(b"A" * 1000))))
    assert isinstance(hash_entry(entry_for(plain), FULL), ImageRecord)  # a small comment is fine


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.jpg", b"", "empty"),
        ("text.jpg", b"hello, I am not a picture\n", "not an image"),
        ("cut.jpg", None, "decode"),
    ],
)
def test_bad_files_become_failures(tmp_path: Path, name: str, data: bytes | None, reason: str) -> None:
    path = tmp_path / name
    if data is None:
        buf = io.BytesIO()
        photo(13).save(buf, "JPEG")
        data = buf.getvalue()[: len(buf.getvalue()) // 3]
    path.write_bytes(data)
    res = hash_entry(entry_for(path), FULL)
    assert isinstance(res, HashFailure) and reason in res.reason


def test_file_changed_after_discovery_is_a_transient_failure(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    photo(14).save(path)
    entry = entry_for(path)
    photo(15).save(path)
    res = hash_entry(entry, FULL)
    assert isinstance(res, HashFailure) and res.transient


def test_normalise_modes() -> None:
    assert normalise(Image.new("1", (4, 4))).mode == "L"
    assert normalise(Image.new("LA", (4, 4))).mode == "RGB"
    assert normalise(Image.new("I;16", (4, 4))).mode == "L"
    assert normalise(Image.new("YCbCr", (4, 4))).mode == "RGB"


def test_formats_that_run_external_programs_are_never_opened(tmp_path: Path) -> None:
    eps = tmp_path / "drawing.jpg"  # an extension means nothing: Pillow would sniff EPS
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    res = hash_entry(entry_for(eps), FULL)
    assert isinstance(res, HashFailure) and "does not open" in res.reason


def test_ico_and_tga_files_decode(tmp_path: Path) -> None:
    # An ICO header (00 00 01 00) is also a plausible TGA header, and TGA has no signature of its
    # own: tried first, TGA claimed an .ico whose byte 16 (here the third byte of the embedded
    # PNG's length: 64-128 KiB) is a valid TGA depth, and failed to load it.
    noise = np.random.default_rng(0).normal(0, 4, (256, 256, 3))
    noisy = np.asarray(photo(16, (256, 256)), dtype=np.float64) + noise
    base = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    base.save(tmp_path / "icon.ico", sizes=[(256, 256)])
    base.save(tmp_path / "small.ico", sizes=[(48, 48)])
    base.save(tmp_path / "twin.png")
    base.save(tmp_path / "plain.tga")
    base.save(tmp_path / "packed.tga", rle=True)
    assert Image.open(tmp_path / "icon.ico", formats=("TGA", "ICO")).format == "TGA"  # the premise
    twin = file_hash(tmp_path / "twin.png")
    for name in ("icon.ico", "plain.tga", "packed.tga"):
        record = hash_entry(entry_for(tmp_path / name), FULL)
        assert isinstance(record, ImageRecord), (name, record)
        assert (record.width, record.height) == (256, 256)
        assert dist(record.hash, twin) <= 2, name
    small = hash_entry(entry_for(tmp_path / "small.ico"), FULL)
    assert isinstance(small, ImageRecord) and (small.width, small.height) == (48, 48)
    assert dist(small.hash, twin) <= 6


# What a viewer does for each EXIF orientation, and the stored picture that it turns upright.
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_STORED = {**_UPRIGHT, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_gives_the_displayed_size_and_hash_in_tiff_and_jpeg(tmp_path: Path, orientation: int) -> None:
    # Pillow's TIFF decoder applies the orientation itself (and reports the turned size before
    # loading); the JPEG decoder leaves it to the caller. Both must come out as a viewer shows them.
    upright = photo(17, (320, 200))
    stored = upright.transpose(_STORED[orientation]) if orientation in _STORED else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.save(tmp_path / "o.tif", exif=exif.tobytes())
    stored.save(tmp_path / "o.jpg", quality=95, exif=exif.tobytes())
    assert ImageOps.exif_transpose(Image.open(tmp_path / "o.jpg")).size == upright.size  # the premise
    upright.save(tmp_path / "upright.png")
    reference = file_hash(tmp_path / "upright.png")
    for name in ("o.tif", "o.jpg"):
        for settings in (FULL, DRAFT):
            record = hash_entry(entry_for(tmp_path / name), settings)
            assert isinstance(record, ImageRecord), record
            assert (record.width, record.height) == upright.size, (name, settings.decode)
            assert dist(record.hash, reference) <= 4, (name, settings.decode)


def _unit(seed: int) -> np.ndarray:
    """A grey picture as floats spanning exactly 0..1."""
    a = np.asarray(photo(seed).convert("L"), dtype=np.float64)
    return (a - a.min()) / (a.max() - a.min())


def test_high_bit_depth_and_float_pictures_are_stretched_to_their_range(tmp_path: Path) -> None:
    a = _unit(18)
    Image.fromarray((a * 4095).round().astype(np.uint16)).save(tmp_path / "12bit.png")  # X-ray, CT
    Image.fromarray((1000 + a * 2000).round().astype(np.uint16)).save(tmp_path / "window.png")
    Image.fromarray(a.astype(np.float32), "F").save(tmp_path / "float.tif")
    Image.fromarray((0.25 + a * 0.5).astype(np.float32), "F").save(tmp_path / "float-window.tif")
    # an 8-bit copy made by another linear scaling: phash ignores gain and offset
    Image.fromarray((40 + a * 180).round().astype(np.uint8), "L").save(tmp_path / "8bit.png")
    Image.fromarray((_unit(19) * 4095).round().astype(np.uint16)).save(tmp_path / "stranger.png")
    assert Image.open(tmp_path / "12bit.png").mode.startswith("I") and Image.open(tmp_path / "float.tif").mode == "F"
    records = {}
    for name in ("12bit.png", "window.png", "float.tif", "float-window.tif", "8bit.png", "stranger.png"):
        record = hash_entry(entry_for(tmp_path / name), FULL)
        assert isinstance(record, ImageRecord), record
        assert not record.low_information, name
        records[name] = record.hash
    eight = records.pop("8bit.png")
    stranger = records.pop("stranger.png")
    for name, value in records.items():
        assert dist(value, eight) <= 2, name
    assert dist(stranger, eight) > 12
    # the stretch covers the whole 8-bit range
    grey = np.asarray(normalise(Image.open(tmp_path / "window.png")))
    assert (int(grey.min()), int(grey.max())) == (0, 255)


@pytest.mark.parametrize("mode", ["I;16", "I", "F"])
def test_high_bit_depth_pictures_are_stretched_without_a_float_copy_of_the_whole(mode: str) -> None:
    """A 16-bit grey picture was stretched as float64 copies of the whole (the levels, then each
    step of the sum: over 24 bytes a pixel), so a 9000 x 9000 X-ray, under the pixel limit,
    failed "not enough memory" in a 2 GiB worker (QA pass 35). The stretch is done a slice at a
    time, with the same values: a few bytes a pixel beyond the levels, the 8-bit picture included."""
    import tracemalloc

    rng = np.random.default_rng(7)
    levels = rng.integers(0, 4096, (1000, 2000)).astype({"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode])
    levels[0, :2] = 0, 4095  # 12 bits, all of them: the stretch is onto 0..4095 whichever the mode
    img = Image.fromarray(levels)
    assert img.mode == mode
    want = np.clip(levels.astype(np.float64) * (255.0 / 4095) + 0.5, 0, 255).astype(np.uint8)

    def peak(work: Callable[[], object]) -> int:
        tracemalloc.start()
        try:
            work()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert np.array_equal(np.asarray(normalise(img)), want)
    # reading the levels (Pillow joins its chunks: twice their bytes), then a few bytes a pixel
    assert peak(lambda: normalise(img)) < peak(lambda: np.asarray(img)) + 4 * levels.size


def test_flat_high_bit_depth_pictures_stay_low_information(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    flat = {
        "solid16.png": Image.fromarray(np.full((240, 320), 30000, dtype=np.uint16)),
        "white16.png": Image.fromarray(np.full((240, 320), 65535, dtype=np.uint16)),
        # a blank page scanned at 16 bits: sensor noise only (sigma 6 of 255)
        "scan16.png": Image.fromarray(np.clip(60000 + rng.normal(0, 6 * 257, (600, 450)), 0, 65535).astype(np.uint16)),
        "solid.tif": Image.fromarray(np.full((240, 320), 0.4, dtype=np.float32), "F"),
    }
    for name, img in flat.items():
        img.save(tmp_path / name)
        record = hash_entry(entry_for(tmp_path / name), FULL)
        assert isinstance(record, ImageRecord) and record.low_information, name
    white = np.asarray(normalise(Image.open(tmp_path / "white16.png")))
    assert int(white.min()) == 255  # a white page stays white


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_colour_key_transparency_is_composited_on_white_like_alpha(tmp_path: Path, mode: str) -> None:
    # A PNG's tRNS chunk in an RGB or grey file names one colour that is transparent.
    base = photo(20).convert(mode)
    inside = Image.new("L", base.size, 0)
    ImageDraw.Draw(inside).ellipse((30, 10, 290, 230), fill=255)
    key = (0, 0, 0) if mode == "RGB" else 0
    pixels = np.asarray(base).copy()
    lit = np.asarray(inside) >= 128
    pixels[lit & (pixels.reshape(*lit.shape, -1).sum(axis=-1) == 0)] = 1  # the key only outside
    pixels[~lit] = 0
    keyed = Image.fromarray(pixels, mode)
    keyed.save(tmp_path / "keyed.png", transparency=key)
    assert (np.asarray(Image.open(tmp_path / "keyed.png").convert("RGBA"))[..., 3] == 0).sum() == (~lit).sum()
    alpha = keyed.convert("RGBA")
    alpha.putalpha(inside)
    alpha.save(tmp_path / "alpha.png")
    keyed.save(tmp_path / "on-black.png")  # the same pixels, no key: the background is black
    k, a, black = (file_hash(tmp_path / n) for n in ("keyed.png", "alpha.png", "on-black.png"))
    assert k == a
    assert dist(k, black) > 4


@pytest.mark.parametrize(
    ("name", "data", "fmt"),
    [
        ("header.png", _png_declaring(64, 64)[:33], "PNG"),  # the signature and IHDR, nothing after
        ("bad-ihdr-crc.png", _png_declaring(64, 64)[:29] + b"\0\0\0\0" + _png_declaring(64, 64)[33:], "PNG"),
        ("screen-only.gif", b"GIF89a" + struct.pack("<HH", 64, 64) + b"\0\0\0", "GIF"),
        ("IMG_0001", b"\xff\xd8\xff\xe0" + b"\0" * 12, "JPEG"),  # no extension: found by its first bytes
        ("cut.webp", b"RIFF\xff\0\0\0WEBP", "WEBP"),
    ],
)
def test_a_damaged_header_is_called_damaged_not_a_non_image(tmp_path: Path, name: str, data: bytes, fmt: str) -> None:
    """A file that starts like a PNG (GIF, JPEG, WebP) but whose header Pillow cannot read was
    "not an image Pillow can identify (or a format imgdup does not open)": the message sent the
    user looking for a missing plugin rather than at a truncated or corrupt file (QA pass 13)."""
    path = tmp_path / name
    path.write_bytes(data)
    res = hash_entry(entry_for(path), FULL)
    assert isinstance(res, HashFailure) and not res.transient
    assert res.reason.startswith(f"damaged or unsupported {fmt} file: "), res.reason
    assert "not an image" not in res.reason
    if name == "header.png":
        assert res.reason.endswith("its header is cut short (a truncated file)"), res.reason


def test_a_jpeg_of_a_kind_pillow_does_not_handle_says_why(tmp_path: Path) -> None:
    """A 12-bit JPEG is no damaged file: the reason is Pillow's own ("cannot handle 12-bit")."""
    buf = io.BytesIO()
    Image.new("L", (8, 8), 5).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    data[data.index(b"\xff\xc0") + 4] = 12  # the frame header's sample precision
    (tmp_path / "x-ray.jpg").write_bytes(bytes(data))
    res = hash_entry(entry_for(tmp_path / "x-ray.jpg"), FULL)
    assert isinstance(res, HashFailure) and "12-bit" in res.reason, res


def test_a_file_gone_after_discovery_says_so_and_is_not_cached(tmp_path: Path) -> None:
    """It read "cannot read or decode: No such file or directory", as if the file were damaged,
    and was a lasting failure (QA pass 13)."""
    path = tmp_path / "a.png"
    photo(16).save(path)
    entry = entry_for(path)
    path.unlink()
    res = hash_entry(entry, FULL)
    assert isinstance(res, HashFailure) and res.transient
    assert "decode" not in res.reason and "disappeared" in res.reason, res.reason


def test_an_error_of_the_system_reading_a_file_is_not_a_lasting_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An I/O error (a flaky disk or network share), too many open files, a permission since
    fixed: the file itself may be fine, so the failure must not be cached under its size and
    times (it was: every later run served "cannot read or decode: Input/output error" for a file
    that reads well now; QA pass 13)."""
    import errno

    from imgdup import hashing

    path = tmp_path / "a.png"
    photo(17).save(path)

    def failing_read(entry: FileEntry) -> tuple[str, str]:
        raise OSError(errno.EIO, os.strerror(errno.EIO), entry.path)

    monkeypatch.setattr(hashing, "_read", failing_read)
    res = hash_entry(entry_for(path), FULL)
    assert isinstance(res, HashFailure) and res.transient
    assert res.reason == "cannot read: Input/output error", res.reason


def test_a_very_long_thin_image_is_hashed_in_bounded_memory(tmp_path: Path) -> None:
    """A 1 x 1,000,000 grey PNG (12 KB, a ninetieth of the pixel limit) made the region hashes
    build matrices as long as the image: 1.5 GB and 9 s, then "not enough memory to decode" under
    the worker's bound (QA pass 13). Its hashes see a 32 x 32 reduction anyway."""
    import tracemalloc

    rng = np.random.default_rng(3)
    column = np.repeat(rng.integers(0, 256, (400, 1), dtype=np.uint8), 500, axis=0)  # 1 x 200,000
    path = tmp_path / "strip.png"
    Image.fromarray(column).save(path)
    Image.fromarray(np.ascontiguousarray(column.T)).save(tmp_path / "wide.png")
    for name in ("strip.png", "wide.png"):
        tracemalloc.start()
        try:
            res = hash_entry(entry_for(tmp_path / name), HashSettings(regions=True))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert isinstance(res, ImageRecord) and res.regions, res
        assert peak < 40 * 1024 * 1024, f"{name}: {peak / 2**20:.0f} MiB"
