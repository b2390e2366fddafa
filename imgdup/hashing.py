"""Decode images and compute perceptual hashes: the only module that opens image files.

An image is hashed as a viewer sees it: EXIF orientation applied, transparency composited on
white, palette / CMYK data converted to 8-bit colour, 16-bit / float grey stretched to 8 bits.
Hashes leave this module as plain ints (``bits`` wide, row-major, most significant bit first: the same value as
``int(str(imagehash_hash), 16)``). Every per-file problem becomes a :class:`HashFailure`.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import importlib
import io
import os
import re
import struct
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from . import quality as quality_mod
from .fsafe import check_as_scanned
from .models import FileEntry, HashFailure, HashSettings, ImageRecord, Quality, Traits
from .regions import (
    FRAMED_SHARE,
    SUB_REGIONS,
    content_box,
    content_share,
    half_boxes,
    occlusion_tail,
    pack_regions,
    peeled_to_canvas,
    small_marks_on_canvas,
    sub_boxes,
)

# Formats Pillow may open: raster image formats only, so a file can never reach a plugin that
# runs an external program (EPS -> Ghostscript) or a rarely used, rarely audited decoder.
# (Multi-picture JPEGs, MPO, are opened by the JPEG plugin.) Pillow tries them in this order:
# TGA, which has no signature, comes last, or it claims files of a format that has one (an ICO
# header is a plausible TGA header: a 256 px .ico failed as "cannot load this image").
IMAGE_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "DIB", "TIFF", "WEBP", "PPM", "ICO", "TGA")

# The Pillow plugins that register IMAGE_FORMATS (BMP's registers DIB too; JPEG's opens MPO).
DECODER_MODULES = tuple(
    f"PIL.{name}ImagePlugin" for name in ("Jpeg", "Png", "Gif", "Bmp", "Tiff", "WebP", "Ppm", "Ico", "Tga")
)


def load_decoders() -> None:
    """Import the plugins of IMAGE_FORMATS now, in the process that forks the workers.

    Pillow imports its plugins at a process's first ``Image.open`` (~20-50 ms), and all ~40 of
    them (~60 ms more) at the first file of a format its first five lack (TIFF, WebP, ICO,
    TGA): in every worker, and the keep policy forks a new pair of workers for each of its
    measuring rounds (on the accuracy benchmark 1.6 s of the workers' CPU went to imports).
    Imported once here, every worker forked afterwards has them, and no worker needs the rest."""
    Image.preinit()
    for name in DECODER_MODULES:
        importlib.import_module(name)


# Formats of the ISO base media file family (a ``ftyp`` box at byte 4), read only where this
# installation can: AVIF by Pillow's own plugin when Pillow was built with libavif, HEIC/HEIF
# by the optional pillow-heif package (imgdup's heic extra).
_ISOBMFF_EXTENSIONS = {".heic": "HEIF", ".heif": "HEIF", ".avif": "AVIF"}


@functools.cache
def optional_formats() -> tuple[str, ...]:
    """The optional formats this installation reads (imports pillow-heif at most once)."""
    from PIL import features

    found = []
    if "avif" in features.modules and features.check_module("avif"):
        found.append("AVIF")
    try:
        import pillow_heif  # type: ignore[import-not-found, import-untyped, unused-ignore]

        pillow_heif.register_heif_opener()
        found.append("HEIF")
    except ImportError:
        pass
    return tuple(found)


def _formats_for(source: str | io.BytesIO) -> tuple[str, ...]:
    """The formats Pillow may try on this file: the optional ones only for an ISO-BMFF file."""
    if isinstance(source, io.BytesIO):
        head = source.getbuffer()[:12].tobytes()
    else:
        with open(source, "rb") as fh:
            head = fh.read(12)
    if head[4:8] != b"ftyp":
        return IMAGE_FORMATS
    return IMAGE_FORMATS[:-1] + optional_formats() + IMAGE_FORMATS[-1:]  # TGA, with no signature, last


_UNIDENTIFIED = "not an image Pillow can identify (or a format imgdup does not open)"
_WITHOUT_HEIF = (
    "HEIC/HEIF image: not read without the optional pillow-heif package (pip install pillow-heif, imgdup's heic extra)"
)
_WITHOUT_AVIF = "AVIF image: this Pillow was built without AVIF support (see PIL.features.check('avif'))"


# Leading bytes of the formats imgdup opens that say which one a file means to be (BMP's "BM"
# and TGA, with no real signature, are left out: text can start so).
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def _claimed_format(head: bytes) -> str | None:
    """The format a file's first bytes claim, if they are one imgdup opens (pure)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return next((fmt for magic, fmt in _SIGNATURES if head.startswith(magic)), None)


def _unidentified(path: str) -> tuple[str, bool]:
    """Why Pillow could not identify a file, and whether that depends on this installation (a
    format it cannot read: the message says how to enable it) rather than on the file."""
    wanted = _ISOBMFF_EXTENSIONS.get(os.path.splitext(path)[1].lower())
    if wanted == "HEIF" and wanted not in optional_formats():
        return _WITHOUT_HEIF, True
    if wanted == "AVIF" and wanted not in optional_formats():
        return _WITHOUT_AVIF, True
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return _UNIDENTIFIED, False
    with os.fdopen(fd, "rb") as fh:
        claimed = _claimed_format(fh.read(16))
        if claimed is None:
            return _UNIDENTIFIED, False
        # It starts like one of the formats imgdup reads, so no plugin is missing: its header
        # is cut short or corrupt (a PNG with a bad IHDR checksum, a GIF with no image), or of a
        # kind Pillow does not handle (a 12-bit JPEG). Pillow's own plugin says which; Image.open
        # drops its reason.
        fh.seek(0)
        try:
            with _decoding():
                Image.OPEN[claimed][0](fh, path)
        except Exception as exc:  # noqa: BLE001 - the plugin's complaint is the reason we want
            cut = (struct.error, EOFError, IndexError)  # read past what the file holds (PNG re-raises it)
            if isinstance(exc, cut) or isinstance(exc.__context__, cut):
                detail = "its header is cut short (a truncated file)"
            else:
                detail = str(exc) or type(exc).__name__
        else:
            detail = "its header cannot be read"
    return f"damaged or unsupported {claimed} file: {detail}", False


# Files up to this size are read into memory once, so the content digest and the decoder see
# exactly the same bytes; larger files are digested in a streaming pass and decoded from disk.
_READ_WHOLE_LIMIT = 256 * 1024 * 1024

# Bump when a change here alters hash values: it is part of every cache key.
HASH_VERSION = 33  # 2: 2x enlargements detected by the quality check; 3: every frame hashed;
# 4: traits for the keep policy (colour, JPEG quality, integrity, thumbnail); 5: colour on every second chroma pixel;
# 6: a caption's dense text lines no longer end its band (content-box hashes of captioned copies)
# 7: a run of text lines as tall as a picture ends the band, and a flat content box is none (picture on a canvas);
# 8: a palette PNG/BMP/TIFF is not lossless (traits); 9: regions carry colour layouts
# 10: 16-bit and float grey stretched to their own range; colour-key (tRNS) transparency composited on white;
#     sparse detail (star fields) is not low information; a file with a blank first frame is searched by
#     its first frame with information
# 11: traits: format, mode and chroma spread, lossless WebP (VP8L) and grey-ramp palettes are lossless, the
# thumbnail covers exactly the picture (a box over the full decode, or over a draft's true extent)
# 12: an animated WebP of lossless (VP8L) frames is lossless (traits)
# 13: (the link rule) colours are compared only where the finer hashes agree loosely: a colour filter links
# 14: traits: a 16-bit RGB(A) file that Pillow reads as 8-bit records its 16 bits (mode "RGB;16")
# 15: regions carry hashes of the four halves and an 8 x 8 grey grid (copies with a corner watermark or logo)
# 16: a file searched by a later frame (its first is blank) takes that frame's colour traits, thumbnail and chroma
# 17: AVIF sequences and HEIF collections count their frames (images), and every one is hashed
# 18: a picture over 32 times as long as it is wide (and over 4096 px long) is box-reduced along its length first
# 19: an MPO's extra pictures are frames unless every one is a preview (a stereo pair's second view counts)
# 20: a multi-frame file is measured on the frame it is searched by, and its pixel digest covers every frame;
#     a colour JPEG's luminance digest covers its chroma subsampling and tables; traits: transparency, subsampling
# 21: small marks on a plain canvas that the peel cannot box (a picture under ~12% of the width) are low information
# 22: whether the file embeds a colour profile (traits: of files with identical pixels, one with a profile is kept)
# 23: a framed picture's content box is peeled to the picture and hashed on a decode where it is 64 px a side
# 24: a framed image whose peel, carried on, ends in blank canvas (sparse lines: a chart) is its own box, not framed
# 25: with --rotations, regions end with the finer hashes of the whole image's and the content box's 7 turned versions
# 26: 24's rule with --regions on dhash, ahash and whash too (a chart's blank box is no framed picture)
# 27: the lattice test counts each distinct block once (quality.distinct_rows: a pattern's repeated blocks fitted
#     a coarse lattice by chance, and its lossless original was ranked as that quality)
# 28: traits: the EXIF orientation a file is shown with (of files with identical pixels, one whose tag turns them
#     is kept over a copy stripped of the tag)
# 29: thin plain bars measured on each side alone (Quality.border packs the four widths): a bar on one side frames
# 30: the pixel count of a multi-frame file's largest later frame (a cached record is held to --max-pixels by it)
# 31: --regions on dhash, ahash and whash at --hash-size 32 hashes its finer hashes at 64 a side (each file had
#     failed, and the failure was cached)
# 32: an ICO's sizes are its frames (each one hashed and compared, not only the largest)
# 33: the lattice test tries q92 too, and for a q95-q100 file the lattices of twice its steps (a re-save of a q92 file)

# Formats whose files may hold several pictures (animation frames, pages, an AVIF sequence, the
# images of a HEIF collection), all of which are hashed. (AVIF and HEIF files were read by their
# first picture alone: a 4-picture file was removed as a copy of a still of its first.) A JPEG's
# extra MPO pictures count only when one is not a preview: see _mpo_frames.
_MULTI_FRAME = ("GIF", "PNG", "WEBP", "TIFF", "AVIF", "HEIF")

# MP types (CIPA DC-007) of an MPO picture that shows the first one again, smaller: a preview.
_MPO_PREVIEWS = ("Large Thumbnail (VGA Equivalent)", "Large Thumbnail (Full HD Equivalent)")


def _mpo_frames(img: Image.Image) -> int:
    """The pictures of an MPO that count as frames: all of them when any extra one is not a
    preview (a stereo camera's second view, a panorama's parts, or a type left undefined: kept
    safe), else 1 (a camera JPEG with an embedded preview is one picture). A stereo pair was
    removed beside a JPEG of its left view as "smallest of the files with identical pixels", and
    its right view lost with it (QA pass 13)."""
    count = int(getattr(img, "n_frames", 1))
    try:
        entries = img.mpinfo[0xB002][1:]  # type: ignore[attr-defined]
        types = [e["Attribute"]["MPType"] for e in entries]
    except (AttributeError, KeyError, IndexError, TypeError):
        return count  # an index Pillow read but not as expected: every picture counts
    return count if any(t not in _MPO_PREVIEWS for t in types) else 1


def _icon_sizes(img: Image.Image) -> list[tuple[int, int]]:
    """An ICO's picture sizes as its frames: the one it opens on (its largest) first, then the
    others, largest first. Pillow shows an ICO by its largest entry and has no frames for the
    rest; an icon's small sizes may be other pictures (a hand-drawn 16 px icon), and two icons
    were removed as copies of a PNG of their 256 px picture, and those lost (QA pass 36). Entries
    of one size in several colour depths are one picture (Pillow reads the size's first)."""
    sizes: Iterable[tuple[int, int]] = img.info.get("sizes", ())
    return [img.size, *sorted((s for s in sizes if s != img.size), key=lambda s: (-s[0] * s[1], s))]


def _frame_count(img: Image.Image) -> int:
    """The pictures of an opened file that count as its frames (1 for a still image)."""
    if img.format in _MULTI_FRAME:
        return int(getattr(img, "n_frames", 1))
    if img.format == "ICO":
        return len(_icon_sizes(img))
    return _mpo_frames(img) if img.format == "MPO" else 1


MAX_FRAMES = 64
"""Frames hashed per file: a bound on the cost of one file (every frame is decoded). A file with
more frames is compared on these only, and is never removed as a duplicate unless it is a
byte-identical copy (see :mod:`imgdup.frames`)."""

_BACKGROUND = (255, 255, 255)


def hash_input_size(settings: HashSettings) -> int:
    """Short side, in pixels, of the image the hash function actually samples."""
    if settings.algorithm in ("phash", "whash"):
        return 4 * settings.hash_size
    return settings.hash_size + 1  # dhash samples (n+1) x n, ahash n x n


def draft_size(settings: HashSettings) -> int:
    """Smallest short side a draft (DCT-scaled) JPEG decode may produce.

    Twice the hash's own input: measured on dogs-1000, forcing smaller decodes (1/8 scale)
    lost 10-23% recall on half-size copies, while >= 2x kept recall intact.
    """
    return max(2 * hash_input_size(settings), 32)


def settings_key(settings: HashSettings) -> str:
    """Everything that changes a hash value, as one string (cache key component).

    Pillow's and numpy's versions are part of it (decoders; float products and FFTs may move a
    bit). ImageHash's version is part of the key only for the algorithms it computes (dhash, ahash,
    whash): phash is imgdup's own code, so a run that only reads the cache never imports
    ImageHash (and the key stays correct when ImageHash is upgraded).
    """
    if settings.algorithm == "phash":
        library = "own"
    else:
        import imagehash

        library = f"imagehash-{imagehash.__version__}"
    heif = _heif_version()
    return (
        f"{settings.algorithm}/{settings.hash_size}/{settings.decode}{'/rot' if settings.rotations else ''}"
        f"{'/reg' if settings.regions else ''}"
        f"/v{HASH_VERSION}/{library}/pillow-{Image.__version__}/numpy-{np.__version__}"
        f"{f'/pillow-heif-{heif}' if heif else ''}"
    )


@functools.cache
def _heif_version() -> str | None:
    """pillow-heif's version when it is installed (it decodes HEIC/HEIF files: an upgrade may
    change their pixels), read from its small version module: importing pillow-heif (~80 ms) or
    reading package metadata (~120 ms) would cost more than a warm 1,000-file run's whole search."""
    import importlib.util

    spec = importlib.util.find_spec("pillow_heif")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        try:
            text = Path(folder, "_version.py").read_text(encoding="utf-8")
        except OSError:
            continue
        found = re.search(r"""__version__\s*=\s*["']([^"']+)["']""", text)
        if found:
            return found.group(1)
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pillow-heif")
    except PackageNotFoundError:
        return "unknown"


def bits_to_int(bits: np.ndarray) -> int:
    """Flattened boolean array -> int, first element most significant."""
    flat = np.asarray(bits, dtype=bool).ravel()
    pad = (-flat.size) % 8
    return int.from_bytes(np.packbits(flat).tobytes(), "big") >> pad


def _whash(img: Image.Image, hash_size: int) -> np.ndarray:
    # ImageHash derives whash's working scale from the image size, so a 50% copy would be hashed
    # at a different scale than its original; a fixed scale makes resized copies comparable.
    import imagehash  # only for dhash/ahash/whash: phash runs without it (~15 ms of imports)

    return imagehash.whash(img, hash_size=hash_size, image_scale=4 * hash_size).hash


def _dhash(img: Image.Image, hash_size: int) -> np.ndarray:
    import imagehash

    return imagehash.dhash(img, hash_size=hash_size).hash


def _ahash(img: Image.Image, hash_size: int) -> np.ndarray:
    import imagehash

    return imagehash.average_hash(img, hash_size=hash_size).hash


@functools.cache
def _dct_rows(size: int, rows: int) -> np.ndarray:
    """The first ``rows`` rows of the unnormalised DCT-II matrix (scipy.fftpack.dct's type 2)."""
    k = np.arange(rows)[:, None]
    i = np.arange(size)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * i + 1) / (2 * size))


def _phash(img: Image.Image, hash_size: int) -> np.ndarray:
    # ImageHash's phash, with the 2-D DCT as two small matrix products: bit-identical (a test
    # pins it against ImageHash) and it spares every worker the ~0.3 s import of scipy.fft.
    side = 4 * hash_size
    pixels = np.asarray(_luma(img).resize((side, side), Image.Resampling.LANCZOS), dtype=np.float64)
    dct = _dct_rows(side, hash_size)
    low = dct @ pixels @ dct.T
    # np.median costs ~50 us here; the mean of the two middle values of the sorted block is
    # the same float (an even count), for a few microseconds.
    middle = np.sort(low, axis=None)[low.size // 2 - 1 : low.size // 2 + 1]
    return low > (middle[0] + middle[1]) / 2


_HASHERS: dict[str, Callable[[Image.Image, int], np.ndarray]] = {
    "phash": _phash,
    "dhash": _dhash,
    "ahash": _ahash,
    "whash": _whash,
}


def normalise(img: Image.Image) -> Image.Image:
    """Convert to what a viewer sees, in mode "RGB" or "L"."""
    mode = img.mode
    if mode in ("RGB", "L") and "transparency" in img.info:
        # a colour key (PNG tRNS): that one colour is transparent, shown on white like an alpha
        # channel (it was shown opaque: the icon did not match its RGBA copy)
        keyed = normalise(img.convert("RGBA"))
        return keyed.convert("L") if mode == "L" else keyed
    if mode in ("RGB", "L"):
        return img
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        # Pillow's I -> L conversion clips at 255 instead of scaling, which would turn most
        # 16-bit images white. The levels as stored (2 or 4 bytes a pixel): no float64 copy of
        # the whole (see _to_grey).
        return _stretched(np.asarray(img), is_float=mode == "F")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode == "1":
        return img.convert("L")
    return img.convert("RGB")  # CMYK, YCbCr, LAB, HSV, ...


# Levels stretched at a time by _to_grey: float64 steps of 2 MB. Over the whole picture at once
# they took 8 bytes a pixel each, several alive together: a 9000 x 9000 16-bit X-ray (81 MP,
# under the pixel limit) needed 2.3 GB and failed in a 2 GiB worker (QA pass 35).
_STRETCH_SLICE = 1 << 18


def _to_grey(arr: np.ndarray, lo: float, hi: float) -> Image.Image:
    """``arr`` with ``lo``..``hi`` mapped linearly onto 0..255 (mid grey when they are equal),
    a slice at a time in float64: the values of the whole-array sum, in a fraction of its memory."""
    if hi <= lo:
        return Image.fromarray(np.full(arr.shape, 128, dtype=np.uint8), "L")
    scale = 255.0 / (hi - lo)
    flat, out = arr.reshape(-1), np.empty(arr.size, dtype=np.uint8)
    for start in range(0, flat.size, _STRETCH_SLICE):
        part = flat[start : start + _STRETCH_SLICE].astype(np.float64)
        part -= lo
        part *= scale
        part += 0.5
        out[start : start + _STRETCH_SLICE] = np.clip(part, 0, 255, out=part).astype(np.uint8)
    return Image.fromarray(out.reshape(arr.shape), "L")


def _stretched(arr: np.ndarray, is_float: bool) -> Image.Image:
    """High-bit-depth or float grey levels as 8-bit grey: stretched from their own minimum to
    their maximum, unless the picture is flat (:func:`is_low_information`) at its own depth.

    12-bit data in a 16-bit file (X-ray, CT), a narrow window of a 16-bit range and floats in
    0..1 all came out as grey levels 0-16, "low information", and were never compared. phash
    ignores a gain and an offset, so the stretch hashes like any linearly scaled 8-bit copy.
    The depth (0..2^bits - 1, the fewest bits >= 8 that hold the largest value; 0..1 or 0..255
    for floats within them) decides flatness, so a blank 16-bit scan's noise is not stretched
    into a picture, and a solid colour keeps its grey level.
    """
    if is_float:
        finite = np.isfinite(arr)
        if not finite.all():  # NaN / infinity in a float file: no data, shown as its darkest value
            arr = np.where(finite, arr, arr[finite].min() if finite.any() else 0.0)
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if lo < 0:
        depth = (lo, hi)
    elif is_float:
        depth = (0.0, 1.0) if hi <= 1 else (0.0, 255.0) if hi <= 255 else (lo, hi)
    else:
        depth = (0.0, float(2 ** max(8, int(hi).bit_length()) - 1))
    seen = _to_grey(arr, *depth)
    return seen if hi <= lo or is_low_information(seen) else _to_grey(arr, lo, hi)


def _luma(img: Image.Image) -> Image.Image:
    """``img`` as grey levels; the image itself when it already is (a conversion would copy it)."""
    return img if img.mode == "L" else img.convert("L")


# numpy's version of each EXIF orientation's transpose (what ImageOps.exif_transpose does), for
# the chroma planes a JPEG's reduced decode gives before it is turned upright
_ORIENTED: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, :, ::-1],
    3: lambda a: a[:, ::-1, ::-1],
    4: lambda a: a[:, ::-1, :],
    5: lambda a: a.transpose(0, 2, 1),
    6: lambda a: np.rot90(a, -1, axes=(1, 2)),
    7: lambda a: a[:, ::-1, ::-1].transpose(0, 2, 1),
    8: lambda a: np.rot90(a, 1, axes=(1, 2)),
}


def hash_image(img: Image.Image, settings: HashSettings) -> int:
    """Perceptual hash of an already oriented and normalised PIL image, as an int."""
    return bits_to_int(_HASHERS[settings.algorithm](img, settings.hash_size))


# The 7 non-identity elements of the dihedral group: every rotation and mirror of a picture.
DIHEDRAL = (
    Image.Transpose.FLIP_LEFT_RIGHT,
    Image.Transpose.FLIP_TOP_BOTTOM,
    Image.Transpose.ROTATE_90,
    Image.Transpose.ROTATE_180,
    Image.Transpose.ROTATE_270,
    Image.Transpose.TRANSPOSE,
    Image.Transpose.TRANSVERSE,
)


def variant_hashes(img: Image.Image, settings: HashSettings) -> tuple[int, ...]:
    """Hashes of the 7 rotated/flipped versions of ``img`` (already reduced: transposing it is cheap).

    phash's DCT and threshold run on the 7 resized versions at once: the same products, one per
    version, as :func:`_phash` computes for one image (the same hashes), for fewer numpy calls.
    """
    luma = _luma(img)
    if settings.algorithm != "phash":
        return tuple(hash_image(luma.transpose(t), settings) for t in DIHEDRAL)
    side = 4 * settings.hash_size
    pixels = np.stack(
        [
            np.asarray(luma.transpose(t).resize((side, side), Image.Resampling.LANCZOS), dtype=np.float64)
            for t in DIHEDRAL
        ]
    )
    dct = _dct_rows(side, settings.hash_size)
    return tuple(_median_rows((dct @ pixels @ dct.T).reshape(len(DIHEDRAL), -1)))


@functools.cache
def _lanczos_rows(size_in: int, size_out: int) -> np.ndarray:
    """Pillow's Lanczos resampling from ``size_in`` to ``size_out`` samples as a matrix (out x in)."""
    scale = size_in / size_out
    filterscale = max(scale, 1.0)
    support = 3.0 * filterscale
    centre = (np.arange(size_out) + 0.5) * scale
    lo = np.maximum((centre - support + 0.5).astype(np.int64), 0)[:, None]
    hi = np.minimum((centre + support + 0.5).astype(np.int64), size_in)[:, None]
    j = np.arange(size_in)[None, :]
    x = (j - centre[:, None] + 0.5) / filterscale
    w = np.sinc(x) * np.sinc(x / 3.0) * ((j >= lo) & (j < hi) & (np.abs(x) < 3.0))
    total = w.sum(axis=1, keepdims=True)
    return np.divide(w, total, out=np.zeros_like(w), where=total != 0)


@functools.cache
def _phash_rows(size_in: int, hash_size: int) -> np.ndarray:
    """Lanczos resampling to phash's input size followed by the first ``2 * hash_size`` DCT rows:
    one (2 * hash_size x in) matrix."""
    side = 4 * hash_size
    return _dct_rows(side, 2 * hash_size) @ _lanczos_rows(size_in, side)


def _median_rows(blocks: np.ndarray) -> list[int]:
    """phash's rule on each row of ``blocks`` (n x bits): 1 above the row's median, as ints."""
    half, width = blocks.shape[1] // 2, blocks.shape[1] // 8
    ordered = np.sort(blocks, axis=1)
    bits = blocks > ((ordered[:, half - 1] + ordered[:, half]) / 2)[:, None]
    packed = np.packbits(bits, axis=1).tobytes()  # one bytes object, sliced: no numpy call per row
    return [int.from_bytes(packed[k : k + width], "big") for k in range(0, len(packed), width)]


def _box_lows(grey: np.ndarray, boxes: list[tuple[int, int, int, int]], hash_size: int) -> np.ndarray:
    """The lowest ``2 * hash_size`` x ``2 * hash_size`` frequencies of phash's DCT of each box of
    ``grey`` (see :func:`_phash_boxes`), (n, side, side)."""
    n, (h, w), side = len(boxes), grey.shape, 2 * hash_size
    # Each box's row and column matrices, zero outside the box: every box in two batched
    # products instead of two small ones each (the per-call overhead was most of the cost).
    rows, cols = np.zeros((n, side, h)), np.zeros((n, w, side))
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        rows[k, :, y0:y1] = _phash_rows(y1 - y0, hash_size)
        cols[k, x0:x1, :] = _phash_rows(x1 - x0, hash_size).T
    return (rows @ grey) @ cols


def _whole_and_halves(grey: np.ndarray, hash_size: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_box_lows` of the whole image and of its four halves (top, bottom, left, right:
    :data:`imgdup.regions.HALVES`), (5, side, side), and the mean grey level of an 8 x 8 grid of
    cells, (8, 8). The left and right halves share the whole image's rows, the top and bottom
    its columns, and each product covers only the pixels of its half: small products that stay
    on one thread (one product for all of it, larger, ran ~3.5x slower in a scan's loop)."""
    (h, w), top, left = grey.shape, round(grey.shape[0] / 2), round(grey.shape[1] / 2)  # half_boxes' edges
    whole_rows, whole_cols = _phash_rows(h, hash_size), _phash_rows(w, hash_size).T
    by_rows = whole_rows @ grey  # (side, w)
    upper, lower = _phash_rows(top, hash_size) @ grey[:top], _phash_rows(h - top, hash_size) @ grey[top:]
    blocks = np.stack(
        [
            by_rows @ whole_cols,
            upper @ whole_cols,
            lower @ whole_cols,
            by_rows[:, :left] @ _phash_rows(left, hash_size).T,
            by_rows[:, left:] @ _phash_rows(w - left, hash_size).T,
        ]
    )
    return blocks, (_cell_means(h) @ grey) @ _cell_means(w).T


@functools.cache
def _cell_means(size: int) -> np.ndarray:
    """(8 x size): each row the mean over one of 8 equal runs of ``size`` samples (0 where a run
    is empty, in an image under 8 pixels a side)."""
    edges = np.rint(np.arange(9) * size / 8).astype(np.int64)
    out = np.zeros((8, size))
    for i in range(8):
        if edges[i + 1] > edges[i]:
            out[i, edges[i] : edges[i + 1]] = 1.0 / (edges[i + 1] - edges[i])
    return out


@functools.cache
def _ac_weights(hash_size: int) -> np.ndarray:
    """Weights that turn the squares of :func:`_box_lows`' coefficients into the variance of the
    picture they hold (Parseval, for the unnormalised DCT-II of :func:`_dct_rows` over a square of
    4 * hash_size): the DC term left out."""
    size = 4 * hash_size
    alpha = np.full(2 * hash_size, np.sqrt(2 / size))
    alpha[0] = np.sqrt(1 / size)
    weights = np.square(np.outer(alpha, alpha) / 4) / size**2
    weights[0, 0] = 0.0
    return weights


def _low_deviation(lows: np.ndarray) -> np.ndarray:
    """(k, side, side) blocks of :func:`_box_lows` -> the grey-level standard deviation of what
    each holds at those frequencies (what the box's hashes see), (k,)."""
    return np.sqrt((np.square(lows) * _ac_weights(lows.shape[-1] // 2)).sum(axis=(1, 2)))


def _phash_boxes(
    grey: np.ndarray, boxes: list[tuple[int, int, int, int]], hash_size: int
) -> tuple[list[int], list[int]]:
    """phash of each box (left, top, right, bottom) of ``grey``, and a finer hash of each (4x the bits).

    The resize and the DCT are both linear, so they fold into one matrix per side: two small
    products per box instead of a Pillow crop, resize and DCT (~150 us). The first list is
    phash (the lowest ``hash_size`` x ``hash_size`` frequencies of the 4 * hash_size square),
    not bit-identical to :func:`_phash` of the crop (Pillow rounds to 8 bits between its two
    resize passes) but within a bit or two. The second thresholds twice as many frequencies on
    each side of the same square: more detail, to confirm a link. (Hash sizes are powers of two
    >= 4, so every bit count is a multiple of 8 and packs into whole bytes.)
    """
    return _lows_to_hashes(_box_lows(grey, boxes, hash_size), hash_size)


def _lows_to_hashes(lows: np.ndarray, hash_size: int) -> tuple[list[int], list[int]]:
    """:func:`_box_lows` blocks -> (phash of each, the finer hash of each)."""
    n = len(lows)
    return _median_rows(lows[:, :hash_size, :hash_size].reshape(n, -1)), _median_rows(lows.reshape(n, -1))


def _turned_lows(lows: np.ndarray) -> np.ndarray:
    """:func:`_box_lows` of one box (side x side) -> the same frequencies of its 7 turned versions
    (:data:`DIHEDRAL`'s order), (7, side, side). Exact, no new products: mirroring a picture
    negates its odd frequencies along that axis (phash's resize matrices are symmetric as well as
    the DCT), and a quarter turn transposes the block (checked against the turned images'
    own blocks: 1e-10 apart)."""
    odd = (-1.0) ** np.arange(lows.shape[-1])
    rows, cols = odd[:, None], odd[None, :]
    t = lows.T
    return np.stack([cols * lows, rows * lows, rows * t, rows * cols * lows, cols * t, t, rows * cols * t])


def region_hashes(
    img: Image.Image,
    settings: HashSettings,
    plain: int,
    box: tuple[int, int, int, int] | None = None,
    chroma: np.ndarray | None = None,
) -> tuple[int, ...]:
    """Content-box and sub-region hashes of ``img`` (already reduced: cropping it is cheap).

    The layout is :func:`imgdup.regions.split`'s and :func:`imgdup.regions.colour_layout`'s: the
    content-box hash and the sub-region hashes at the scan's hash size, then finer hashes (4x the
    bits) of the whole image, the content box and the sub-regions, which confirm every link,
    then the colour layouts of the same boxes (:func:`colour_layouts`; ``chroma``: the image's
    chroma planes, None for a grey one), then what :func:`imgdup.regions.occluded_distance`
    compares (:func:`imgdup.regions.occlusion_tail`: the four halves' hashes at both sizes and a
    grey grid), then, with ``--rotations`` (``settings.rotations``), the finer hashes of the whole
    image's 7 turned versions and of the content box's (:func:`imgdup.regions.turned_fine`). The
    content box is found on the reduced
    grey image (:func:`imgdup.regions.content_box`); when nothing is peeled its hash is
    ``plain``, the image's plain hash. ``box``: the content box, when the caller found it already.
    """
    luma = _luma(img)
    arr = np.asarray(luma)
    full = (0, 0, luma.width, luma.height)
    boxes = [content_box(arr) if box is None else box, *sub_boxes(luma.width, luma.height)]
    colour = colour_layouts(chroma, [full, *boxes], luma.size)
    grey = arr.astype(np.float64)
    whole_and_halves, grid = _whole_and_halves(grey, settings.hash_size)
    deviation = _low_deviation(whole_and_halves[1:])
    if settings.algorithm == "phash":
        peeled = boxes[0] != full  # most photos: nothing peeled, the content box is the image
        lows = _box_lows(grey, boxes if peeled else boxes[1:], settings.hash_size)
        coarse, fine = _lows_to_hashes(
            np.concatenate([whole_and_halves[:1], lows, whole_and_halves[1:]]), settings.hash_size
        )
        (coarse, half_coarse), (fine, half_fine) = (coarse[:-4], coarse[-4:]), (fine[:-4], fine[-4:])
        if not peeled:
            coarse, fine = [plain, plain, *coarse[1:]], [fine[0], *fine]
        turned: list[int] = []
        if settings.rotations:  # the whole image's and the content box's turned versions (see turned_fine)
            blocks = [whole_and_halves[0], lows[0] if peeled else whole_and_halves[0]]
            turned = _median_rows(np.concatenate([_turned_lows(b) for b in blocks]).reshape(2 * len(DIHEDRAL), -1))
        return (*coarse[1:], *fine, *colour, *occlusion_tail(half_coarse, half_fine, deviation, grid), *turned)
    coarse = [plain if b == full else hash_image(luma.crop(b), settings) for b in boxes]
    halves = half_boxes(luma.width, luma.height)
    half_coarse = [hash_image(luma.crop(b), settings) for b in halves]
    half_fine = [_finer_hash(luma.crop(b), settings) for b in halves]
    return (
        *coarse,
        *(_finer_hash(luma if b == full else luma.crop(b), settings) for b in [full, *boxes]),
        *colour,
        *occlusion_tail(half_coarse, half_fine, deviation, grid),
        *(_finer_hash(luma.transpose(t), settings) for t in (DIHEDRAL if settings.rotations else ())),
        *(_finer_hash(luma.crop(boxes[0]).transpose(t), settings) for t in (DIHEDRAL if settings.rotations else ())),
    )


def _finer_hash(img: Image.Image, settings: HashSettings) -> int:
    """The finer hash of a region: the scan's hash at twice its side (4x the bits), as phash's
    finer hashes are. Called through the hasher, not a :class:`HashSettings`: at
    ``--hash-size 32`` the side is 64, past the scan's own sizes (asked of HashSettings, it failed
    every file)."""
    return bits_to_int(_HASHERS[settings.algorithm](img, 2 * settings.hash_size))


_GRID = 4  # cells a side of a box's colour layout


def colour_layouts(
    colour: np.ndarray | None, boxes: list[tuple[int, int, int, int]], size: tuple[int, int]
) -> tuple[int, ...]:
    """Each box's colour layout: the mean Cb and Cr (less 128) of a 4 x 4 grid of cells, as 32
    signed bytes packed in one int (see :func:`imgdup.regions.colour_grids`); 0 for a grey image.
    ``colour``: the image's Cb and Cr planes less 128, (2, h, w), at any scale (the hash pass
    has them at 32 x 32 or half size); ``boxes`` in pixels of the image, whose ``size`` it is.

    Perceptual hashes see grey levels only; where two images' colours lie is what tells a flag
    from another with a blue stripe for a black one. Means of cells, not a phash of the chroma
    planes: on flat graphics most of a phash's bits are the sign of a near-zero coefficient,
    alike in any two pictures of stripes."""
    if colour is None:
        return (0,) * len(boxes)
    _, h, w = colour.shape
    total = np.zeros((2, h + 1, w + 1))  # integral images: every cell's sum from four corners
    total[:, 1:, 1:] = colour.cumsum(axis=1).cumsum(axis=2)
    corners, area = _cell_corners(h, w, size, tuple(boxes))
    at = total.reshape(2, -1)[:, corners]  # (2, 4 corners, k, 4, 4)
    means = (at[:, 3] - at[:, 1] - at[:, 2] + at[:, 0]) / area
    raw = np.clip(np.rint(means), -128, 127).astype(np.int8).transpose(1, 2, 3, 0).tobytes()  # (k, 4, 4, 2)
    return tuple(int.from_bytes(raw[k : k + 32], "big") for k in range(0, len(raw), 32))


@functools.lru_cache(maxsize=1024)
def _cell_corners(
    h: int, w: int, size: tuple[int, int], boxes: tuple[tuple[int, int, int, int], ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Where each cell of each box starts and ends in an (h + 1) x (w + 1) integral image, as flat
    indices (4 corners: top-left, top-right, bottom-left, bottom-right; k boxes; 4 x 4 cells),
    and each cell's area. Images of one size share them (the boxes are fractions of the image,
    the content box too when nothing is peeled): cached."""
    edges = np.arange(_GRID + 1) / _GRID
    b = np.array(boxes, dtype=np.float64) * ([w / size[0], h / size[1]] * 2)  # (k, 4): all boxes at once
    ys = np.rint(b[:, 1:2] + (b[:, 3:4] - b[:, 1:2]) * edges).astype(np.int64)  # (k, 5)
    xs = np.rint(b[:, 0:1] + (b[:, 2:3] - b[:, 0:1]) * edges).astype(np.int64)
    top, left = np.minimum(ys[:, :-1], h - 1)[:, :, None], np.minimum(xs[:, :-1], w - 1)[:, None, :]
    bottom, right = np.maximum(ys[:, 1:, None], top + 1), np.maximum(xs[:, None, 1:], left + 1)
    corners = np.stack([top * (w + 1) + left, top * (w + 1) + right, bottom * (w + 1) + left, bottom * (w + 1) + right])
    return corners, ((bottom - top) * (right - left)).astype(np.float64)


# Grey-level standard deviation (0-255) of a 32x32 reduction below which an image is "low
# information". Measured: the flattest photo of dogs-1000 has 14.5 (00000246.jpg), a blank scan
# with sensor noise (sigma 8 at full size) 0.5, a horizontal ramp over 8 grey levels 2.3.
LOW_INFO_STD = 4.0
_LOW_INFO_SIDE = 32

# Sparse detail (stars, sparse dots) that the 32x32 reduction averages away: a 64x64 reduction
# (the size a draft decode gives anyway) in which at least SPARSE_SHARE of the cells stand out
# from the median by more than SPARSE_LEVEL grey levels and 6 robust sigmas of the cells' own
# spread. Measured (seeded fields as in tests/test_lowinfo.py): 512 px star fields with 300
# stars 6.8-9.3% of cells, with 50 stars 1.3-1.6%; a blank scan (sigma 6 noise) 0%, with 20 dust
# specks 0.5-0.8%; a ramp over 8 levels 0%; the 32x32 std of the 300-star fields is 2.9.
SPARSE_SHARE = 0.01
SPARSE_LEVEL = 4.0
_SPARSE_SIDE = 64


def _sparse_detail(grey: Image.Image) -> bool:
    """Whether enough small spots stand out of a flat background to make the picture."""
    fine = np.asarray(grey.resize((_SPARSE_SIDE, _SPARSE_SIDE), Image.Resampling.BOX), dtype=np.float64)
    deviation = np.abs(fine - np.median(fine))
    spread = 1.4826 * float(np.median(deviation))  # robust sigma: the spots themselves do not count
    return float((deviation > max(SPARSE_LEVEL, 6.0 * spread)).mean()) >= SPARSE_SHARE


def is_low_information(img: Image.Image) -> bool:
    """True for solid colours, blank pages, near-flat scans: a perceptual hash of them is noise.

    A picture of sparse spots on a flat background (a star field) is not flat although its
    32x32 reduction nearly is: its hash is set by where the spots are.
    """
    grey = _luma(img)
    small = grey.resize((_LOW_INFO_SIDE, _LOW_INFO_SIDE), Image.Resampling.BOX)
    return float(np.asarray(small, dtype=np.float64).std()) < LOW_INFO_STD and not _sparse_detail(grey)


def load_for_hashing(source: str | io.BytesIO, settings: HashSettings) -> tuple[Image.Image, int, int]:
    """Open, decode (reduced where allowed), orient and normalise one image (its first frame).

    Returns the image and the full, oriented width and height. Decompression-bomb warnings
    are errors here: a small file declaring a huge size must fail, not eat the memory.
    """
    img, width, height, _frames, _traits, _measured, _chroma = _load_first_frame(source, settings)
    return img, width, height


# Formats that store pixels exactly (their quality is what they hold, not what they lost).
_LOSSLESS = ("PNG", "BMP", "DIB", "TIFF", "PPM", "TGA")
_THUMB = 16


# A file this large that the hash pass decodes in full anyway (not a JPEG) has its enlargement
# spectrum taken there (a 256 px crop: ~1-2 ms, 3-5% of such a decode): in a cluster where it
# is an enlargement of a sibling, which a large PNG or WebP copy usually is, it is then never
# decoded again (mixed set of bench_e2e.py: 96 such copies, ~4 s of the measuring's 5.5 s).
# Smaller files skip it: the crop would cost up to ~20% of their decode, paid by every file
# whether or not it has a sibling.
SPECTRUM_IN_HASH_PIXELS = 1_000_000


def _load_first_frame(
    source: str | io.BytesIO, settings: HashSettings
) -> tuple[Image.Image, int, int, int, Traits, Quality | None, np.ndarray | None]:
    """:func:`load_for_hashing`, plus the file's number of frames (1 for a still image), the
    :class:`Traits` its reduced decode shows for free, for a large file decoded in full the
    spectrum part of its :class:`Quality` (see :data:`SPECTRUM_IN_HASH_PIXELS`), and with
    regions its chroma planes for :func:`colour_layouts` (None for a grey image), from what
    the colourfulness trait samples anyway.

    A colour JPEG is decoded as YCbCr instead of grey: the luminance plane is exactly what a
    grey decode gives (same hash), and the chroma planes say whether the picture has colour.
    """
    with _decoding(), Image.open(source, formats=_formats_for(source)) as img:
        fmt = img.format
        mode = _stored_mode(img)  # as stored (a draft decode changes it)
        icc = bool(img.info.get("icc_profile"))  # read before the decode (a draft may drop info)
        lossless = _stores_exactly(img, source)
        width, height = stored = img.size
        frames = _frame_count(img)
        orientation = img.getexif().get(0x0112, 1)
        if orientation in (5, 6, 7, 8):
            width, height = height, width
        jpeg_quality = None
        if fmt in ("JPEG", "MPO") and getattr(img, "quantization", None):
            jpeg_quality = quality_mod.estimate_jpeg_quality(img.quantization[min(img.quantization)])
        subsampling = _subsampling(img)
        reduced = settings.decode == "draft"
        if reduced and fmt in ("JPEG", "MPO"):
            # libjpeg scales by 1/2, 1/4 or 1/8 while decoding (DCT scaling) and, for colour
            # files, can skip colour conversion: every hash works on grey levels anyway.
            w, h = img.size
            scale = draft_size(settings) / min(w, h)  # draft() keeps both sides >= the request
            want = "YCbCr" if img.mode in ("RGB", "YCbCr") else "L" if img.mode == "L" else img.mode
            img.draft(want, (int(w * scale), int(h * scale)))
        img.load()
        transparent = _transparent(img)
        if orientation != 1 and img.getexif().get(0x0112, 1) == 1:
            # The decoder turned the picture itself (Pillow's TIFF plugin does; it is never
            # reduced): what it holds now is the displayed picture, at its full size.
            width, height = stored = img.size
            orientation = 1
        # The picture's extent in decoded pixels: a DCT-scaled decode's last row and column
        # cover part of a pixel (201 px at 1/2: 100.5 of 101), which the thumbnail leaves out.
        scale_down = 2 ** round(np.log2(stored[0] / img.width)) if img.width != stored[0] else 1
        extent = (stored[0] / scale_down, stored[1] / scale_down)
        colour, chroma, spread = 0.0, None, None
        if img.mode == "YCbCr":
            planes = np.asarray(img.resize((32, 32), Image.Resampling.BOX))  # as the RGB path's below
            spread = quality_mod.chroma_spread(planes[..., 0], planes[..., 1], planes[..., 2])
            # Every second row and column: chroma is stored at half resolution in most JPEGs,
            # so this loses next to nothing and costs a quarter (0.15 -> 0.04 ms a file).
            ycc = np.asarray(img)[::2, ::2]  # one copy of the planes instead of a split and two
            colour = quality_mod.colourfulness(ycc[..., 1], ycc[..., 2])
            if settings.regions:
                step = max(1, min(ycc.shape[:2]) // 32)  # 4 x 4 means need no more
                chroma = np.moveaxis(ycc[::step, ::step, 1:], -1, 0).astype(np.float64) - 128.0
                chroma = _ORIENTED[orientation](chroma) if orientation in _ORIENTED else chroma
            img = img.getchannel(0)
        img = normalise(ImageOps.exif_transpose(img) if orientation != 1 else img)
        if orientation in (5, 6, 7, 8):
            extent = extent[::-1]
        measured = None
        if fmt not in ("JPEG", "MPO") and orientation == 1 and img.width * img.height >= SPECTRUM_IN_HASH_PIXELS:
            # as stored (no rotation: what measure_siblingwise sees), before any reduction
            measured = spectrum_only(img, None)
        thumb = None
        if reduced and min(img.size) >= 2 * draft_size(settings):
            # A full decode's thumbnail is a box over every pixel, as a JPEG's DCT-scaled
            # decode gives: the reduction's partial last boxes moved a sharp edge by up to 18
            # grey levels, and a lossless original passed for "edited" beside its JPEGs.
            thumb = _thumbnail(img, img.size)
            # Other formats decode in full; a box reduction to >= the draft size is far
            # cheaper than letting the hash's Lanczos resize read every source pixel.
            img = img.reduce(min(img.size) // draft_size(settings))
        if img.mode == "RGB":
            colour, spread, chroma = _rgb_colour(img, settings)
        if thumb is None:
            thumb = _thumbnail(img, extent)
        img = _capped(img)
        traits = Traits(
            colourfulness=round(colour, 3),
            jpeg_quality=jpeg_quality,
            lossless=lossless,
            thumb=thumb,
            format=fmt or "",
            mode=mode,
            chroma_spread=None if spread is None else round(spread, 3),
            transparent=transparent,
            subsampling=subsampling,
            icc=icc,
            orientation=int(orientation) if orientation in range(2, 9) else 1,
        )
        return img, width, height, frames, traits, measured, chroma


# Longest side of the picture the hashes work on, unless it is under 32 times the short side.
# The reduction above bounds the short side only; the region hashes build matrices as long as
# each side, so a 1 x 1,000,000 PNG (12 KB, far under the pixel limit) took 1.5 GB and 9 s and
# then failed "not enough memory". Photos and full-page screenshots (1080 x 30000) are never
# this thin: their hashes are unchanged.
_LONG_SIDE = 4096


def _capped(img: Image.Image) -> Image.Image:
    """``img`` with its long side box-reduced to :data:`_LONG_SIDE` (or 32 times its short side)
    when it is longer: the hashes see a 32 x 32 reduction of it anyway."""
    w, h = img.size
    limit = max(_LONG_SIDE, 32 * min(w, h))
    if max(w, h) <= limit:
        return img
    return img.resize((min(w, limit), min(h, limit)), Image.Resampling.BOX)


def _rgb_colour(img: Image.Image, settings: HashSettings) -> tuple[float, float, np.ndarray | None]:
    """An RGB picture's colourfulness, chroma spread and (with regions) chroma planes less 128,
    from a 32 x 32 box reduction (the traits a JPEG's YCbCr decode gives from its own planes)."""
    small = np.asarray(img.resize((32, 32), Image.Resampling.BOX).convert("YCbCr"))
    colour = quality_mod.colourfulness(small[..., 1], small[..., 2])
    spread = quality_mod.chroma_spread(small[..., 0], small[..., 1], small[..., 2])
    chroma = np.moveaxis(small[..., 1:], -1, 0).astype(np.float64) - 128.0 if settings.regions else None
    return colour, spread, chroma


def _frame_traits(traits: Traits, frame: Image.Image, settings: HashSettings) -> tuple[Traits, np.ndarray | None]:
    """``traits`` and the chroma planes with what :func:`_load_first_frame` takes from a file's
    first picture (colour, thumbnail) taken from ``frame`` instead: the first frame with
    information of a file whose first frame is blank, by which the file is searched. (A fade-in
    from black was "grayscale" by its black frame: a still of its first picture won "colour" and
    the animation was left for review.)"""
    colour, spread, chroma = _rgb_colour(frame, settings) if frame.mode == "RGB" else (0.0, None, None)
    return replace(
        traits,
        colourfulness=round(colour, 3),
        chroma_spread=None if spread is None else round(spread, 3),
        thumb=_thumbnail(frame, frame.size),
    ), chroma


def _subsampling(img: Image.Image) -> int | None:
    """A colour JPEG's pixels per chroma sample, from its header (1 for 4:4:4, 2 for 4:2:2 or
    4:4:0, 4 for 4:2:0 or 4:1:1); None for another file (a grey or CMYK JPEG too)."""
    layer = getattr(img, "layer", None) if img.format in ("JPEG", "MPO") else None
    if not layer or len(layer) != 3:
        return None
    try:
        (_, h0, v0, _), (_, h1, v1, _) = layer[0], layer[1]
        return max(1, (int(h0) * int(v0)) // max(1, int(h1) * int(v1)))
    except (TypeError, ValueError):
        return None


_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def _transparent(img: Image.Image) -> bool:
    """Whether a loaded picture's alpha channel (or colour key) leaves some pixel less than
    opaque: an RGBA file that is opaque everywhere holds no more than its RGB copy."""
    if img.mode in _ALPHA_MODES:
        alpha = img.getchannel("A")
    elif img.mode in ("P", "RGB", "L") and "transparency" in img.info:
        alpha = img.convert("RGBA").getchannel("A")
    else:
        return False
    low = alpha.getextrema()[0]  # an 8-bit channel's (least, greatest)
    return isinstance(low, int) and low < 255


def _stored_mode(img: Image.Image) -> str:
    """The mode of the samples the file stores: Pillow's mode, with ";16" added where Pillow reads
    16-bit samples into an 8-bit mode (a 16-bit RGB or RGBA PNG or TIFF opens as "RGB"/"RGBA",
    and its 8-bit export then held "the same pixels" and was kept as the smaller twin)."""
    tile = getattr(img, "tile", None)  # an ImageFile's, before load()
    raw = tile[0].args if tile else None
    raw = raw[0] if isinstance(raw, tuple) and raw else raw
    if isinstance(raw, str) and img.mode in ("RGB", "RGBA") and ";16" in raw:
        return f"{img.mode};16"
    return img.mode


def _thumbnail(img: Image.Image, extent: tuple[float, float]) -> bytes:
    """The 16x16 grey thumbnail of the picture, which covers ``extent`` (width, height) of ``img``."""
    box = (0.0, 0.0, min(extent[0], img.width), min(extent[1], img.height))
    return _luma(img.resize((_THUMB, _THUMB), Image.Resampling.BOX, box=box)).tobytes()


def _stores_exactly(img: Image.Image, source: str | io.BytesIO) -> bool:
    """Whether the file holds its pixels exactly (lossless), from its format and header.

    A palette file holds at most 256 colours: of a photo, a quantisation (as lossy as a GIF of
    them), not a lossless copy; it was kept over the camera file as "lossless". A palette of
    all 256 grey levels is no quantisation: it holds any 8-bit grey picture exactly (a grey
    original stored so lost to its q50 JPEG). A WebP is lossless when its image chunk is VP8L.
    """
    if img.format == "WEBP":
        return _webp_lossless(source)
    if img.format not in _LOSSLESS:
        return False
    return img.mode not in ("P", "PA") or _grey_ramp(img.getpalette() or [])


def _grey_ramp(palette: Sequence[int]) -> bool:
    """True for a palette (RGB triplets) that holds each of the 256 grey levels."""
    if len(palette) < 768:
        return False
    rgb = np.asarray(palette[:768], dtype=np.int64).reshape(256, 3)
    return bool((rgb[:, 0] == rgb[:, 1]).all() and (rgb[:, 1] == rgb[:, 2]).all() and len(set(rgb[:, 0])) == 256)


_WEBP_HEAD = 64 * 1024  # bytes read to find a WebP's image chunk (after ICC, EXIF chunks)


def _webp_lossless(source: str | io.BytesIO) -> bool:
    """True when a WebP's (first) image chunk is VP8L, the lossless codec (Pillow does not say).
    A simple file has it at byte 12; an extended one (VP8X) after its metadata chunks; an
    animation inside its first frame (ANMF: a 16-byte frame header, then the frame's chunks;
    encoders use one codec for every frame)."""
    if isinstance(source, io.BytesIO):
        head = source.getbuffer()[:_WEBP_HEAD].tobytes()
    else:
        with open(source, "rb") as fh:
            head = fh.read(_WEBP_HEAD)
    at = 12
    while at + 8 <= len(head):
        tag, size = head[at : at + 4], int.from_bytes(head[at + 4 : at + 8], "little")
        if tag == b"VP8L":
            return True
        if tag == b"ANMF":  # the first frame: its own chunks follow its header
            at += 8 + 16
            continue
        if tag in (b"VP8 ", b"ALPH"):  # lossy data, lossy alpha's partner
            return False
        at += 8 + size + (size & 1)
    return False


def _intact(source: str | io.BytesIO) -> bool:
    """Pillow's full check of a PNG (every chunk checksum): a damaged file must never be kept
    over an intact copy, and a PNG with a bad checksum still decodes."""
    if isinstance(source, io.BytesIO):
        source.seek(0)
    try:
        with Image.open(source, formats=_formats_for(source)) as img:
            if img.format == "PNG":
                img.verify()
    except Exception:  # noqa: BLE001 - any complaint of the checker means "not intact"
        return False
    return True


def other_frame_hashes(source: str | io.BytesIO, settings: HashSettings, frames: int) -> tuple[int, ...]:
    """Hashes of frames 2 .. min(frames, MAX_FRAMES), each seen as a viewer sees it."""
    return tuple(hash_image(frame, settings) for _, frame in _later_frames(source, settings, frames))


def _later_frames(source: str | io.BytesIO, settings: HashSettings, frames: int) -> Iterator[tuple[int, Image.Image]]:
    """Frames 2 .. min(frames, MAX_FRAMES), each oriented, normalised and reduced like the first,
    after its pixel count as stored (what the pixel limit holds it to).

    The first frame is the one the file opens on: a HEIF collection opens on its primary image,
    which need not be its first, so the others are the rest in file order.
    """
    for _index, frame, orientation in _frames_at(source, frames):
        yield frame.width * frame.height, _hash_view(frame, orientation, settings)


# What ImageOps.exif_transpose does for each EXIF orientation (a normalised frame has no EXIF of its own).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _frames_at(
    source: str | io.BytesIO, frames: int, indices: Sequence[int] | None = None
) -> Iterator[tuple[int, Image.Image, int]]:
    """(index, frame, EXIF orientation) for the frames of ``indices`` (None: every frame but the
    one the file opens on), within the first :data:`MAX_FRAMES`: each normalised, as stored (not
    turned by its EXIF orientation), a copy of its own.

    Every frame passes the decompression-bomb limit on its own (a TIFF page may declare any
    size), and is decoded, handed over and dropped before the next, within the worker's memory bound.
    """
    if isinstance(source, io.BytesIO):
        source.seek(0)
    with _decoding(), Image.open(source, formats=_formats_for(source)) as img:
        opened = img.tell()
        icon = _icon_sizes(img) if img.format == "ICO" else None  # an ICO's sizes are its frames
        wanted = [k for k in range(frames) if k != opened][: MAX_FRAMES - 1] if indices is None else indices
        for index in wanted:
            try:
                if icon is None:
                    img.seek(index)
                else:
                    img.size = icon[index]  # type: ignore[misc]  # IcoImageFile's setter picks the entry
                w, h = img.size
                if Image.MAX_IMAGE_PIXELS and w * h > Image.MAX_IMAGE_PIXELS:
                    raise _FrameOverLimit(index, w * h)
                img.load()
            except (EOFError, OSError) as exc:
                if isinstance(exc, OSError) and exc.errno is not None:
                    raise  # the system's read error, not the file's: see _guarded
                # Pillow's own words ("Truncated File Read") read as a cut file; a header that
                # declares frames the file does not hold is the usual cause (QA pass 13).
                raise OSError(
                    f"frame {index + 1} of the {frames} frames its header declares cannot be read ({exc})"
                ) from exc
            orientation = img.getexif().get(0x0112, 1)
            frame = normalise(img)
            # the file's next seek changes the frame in place: hand over a copy of its own
            yield index, frame.copy() if frame is img else frame, orientation


def _hash_view(frame: Image.Image, orientation: int, settings: HashSettings) -> Image.Image:
    """A later frame (normalised, as stored) as the hashes see it: turned upright by its EXIF
    ``orientation``, reduced, capped."""
    if orientation in _TRANSPOSE:
        frame = frame.transpose(_TRANSPOSE[orientation])
    if min(frame.size) >= 2 * draft_size(settings):
        frame = frame.reduce(min(frame.size) // draft_size(settings))
    return _capped(frame)


def _read(entry: FileEntry) -> tuple[str | io.BytesIO, str]:
    """The bytes (or the path, for huge files) and the SHA-256 of exactly what was read."""
    fd = os.open(entry.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if (st.st_ino, st.st_size, st.st_mtime_ns) != (entry.inode, entry.size, entry.mtime_ns):
            raise _Changed()
        if entry.size <= _READ_WHOLE_LIMIT:
            data = fh.read()
            if len(data) != entry.size:
                raise _Changed()
            return io.BytesIO(data), hashlib.sha256(data).hexdigest()
        digest = sha256_stream(fh)
        return entry.path, digest


def sha256_stream(fh: BinaryIO) -> str:
    """SHA-256 of the rest of an open file, read in 1 MiB blocks (hashlib.file_digest is 3.11+)."""
    digest = hashlib.sha256()
    while block := fh.read(1024 * 1024):
        digest.update(block)
    return digest.hexdigest()


class _Changed(Exception):
    pass


GONE_REASON = "file disappeared while it was being scanned"
CHANGED_REASON = "file changed while it was being scanned"  # (its size, mtime or inode moved under it)
_memory_bound_mb: int | None = None  # what this process may add (a worker's bound: set_memory_bound), else None


def set_memory_bound(megabytes: int) -> None:
    """Say that this process may add ``megabytes`` of memory at most (a worker of
    :mod:`imgdup.parallel` under its bound): a file that needs more fails naming that bound."""
    global _memory_bound_mb
    _memory_bound_mb = megabytes


def memory_reason() -> str:
    """The failure a MemoryError is: past this process's own bound where it has one (the machine
    may have plenty free: "not enough memory" pointed at it), else the machine's memory."""
    if _memory_bound_mb is None:
        return "not enough memory to decode"
    return f"more than the memory bound ({_memory_bound_mb} MB) needed"


_RAISE_LIMIT = "for a trusted file, raise the limit with --max-pixels N (PIL.Image.MAX_IMAGE_PIXELS)"


class _FrameOverLimit(Image.DecompressionBombError):
    """A frame after the one the file opens on is over the pixel limit (Pillow checks only that
    one): ``pixels``, its count, goes into the refusal as a first frame's does."""

    def __init__(self, index: int, pixels: int) -> None:
        super().__init__(f"frame {index + 1} has {pixels} pixels, more than the limit of {Image.MAX_IMAGE_PIXELS}")
        self.pixels = pixels


def _bomb_reason(what: str, exc: Exception) -> str:
    """The refusal in terms of the limit that --max-pixels sets. Over twice the limit Pillow's
    own message gives twice it ("exceeds limit of 178956970 pixels"), and a --max-pixels just
    above that number was refused again."""
    if isinstance(exc, _FrameOverLimit):
        return _refusal(exc.pixels, later=True)
    found = re.search(r"\((\d+) pixels\)", str(exc))
    if found is None or not Image.MAX_IMAGE_PIXELS:
        return f"refused: {what} ({exc}; {_RAISE_LIMIT})"
    return _refusal(int(found.group(1)))


def over_the_limit(r: ImageRecord) -> HashFailure | None:
    """The refusal a decode of ``r``'s file gives under this run's pixel limit (--max-pixels), for
    a record read from the cache: hashed under a higher limit, it was served to a run that a cold
    scan of the same files refuses, and a warm --remove 1 acted on them (QA pass 34). Its first
    frame is checked first, then its largest later one, as a decode checks them (QA pass 35)."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit and r.pixels > limit:
        return HashFailure(r.path, _refusal(r.pixels), transient=True)
    if limit and r.largest_frame > limit:
        return HashFailure(r.path, _refusal(r.largest_frame, later=True), transient=True)
    return None


def held_to_the_limit(r: ImageRecord | HashFailure) -> ImageRecord | HashFailure:
    """A result read from the cache, as this run's pixel limit has it: a record over the limit
    becomes its refusal (:func:`over_the_limit`); a failure stays as it is. Every reader of
    cached records (a warm scan, the Dask engine, apply) goes through it."""
    return (over_the_limit(r) or r) if isinstance(r, ImageRecord) else r


def _refusal(pixels: int, *, later: bool = False) -> str:
    """The refusal of a frame of ``pixels`` over this run's limit: the file's first (the one it
    opens on), or a ``later`` one. Over twice the limit a "decompression bomb", else a
    "possible" one, as Pillow says of a first frame (a later one was a bomb at any size)."""
    limit = Image.MAX_IMAGE_PIXELS or 0
    what = "decompression bomb" if pixels > 2 * limit else "possible decompression bomb"
    return (
        f"refused: {what} ({'another frame has ' if later else ''}{pixels:,} pixels, over the limit of {limit:,};"
        f" for a trusted file, raise the limit with --max-pixels {pixels} or more (PIL.Image.MAX_IMAGE_PIXELS))"
    )


@contextlib.contextmanager
def _decoding() -> Iterator[None]:
    """Decoder warnings for a file: a decompression-bomb warning is an error; Pillow's notes on
    a file's metadata (UserWarning: "Corrupt EXIF data", a malformed MPO, ...) are dropped, as the
    picture still decodes. They went to stderr as Python warnings, from Pillow's source line,
    naming no file, several times a file, with -q too (every worker prints its own).

    Python's warning filters are one list for the whole process, and ``catch_warnings`` restores
    the list it saw on entry: two threads decoding at once (reports or montages written from a
    thread pool, a Dask worker's threads) restored each other's, and the caller's process was
    left ignoring every UserWarning for good. So the first decoder in sets the filters and the
    last one out restores them; where Python keeps filters per thread (3.14's
    ``context_aware_warnings``) a plain ``catch_warnings`` is right."""
    _quiet_libtiff()
    if getattr(sys.flags, "context_aware_warnings", False):
        with warnings.catch_warnings():
            _decoder_filters()
            yield
        return
    global _decoders, _saved_filters
    with _FILTERS_LOCK:
        if _decoders == 0:
            _saved_filters = warnings.catch_warnings()
            _saved_filters.__enter__()
            _decoder_filters()
        _decoders += 1
    try:
        yield
    finally:
        with _FILTERS_LOCK:
            _decoders -= 1
            if _decoders == 0 and _saved_filters is not None:
                _saved_filters.__exit__(None, None, None)
                _saved_filters = None


@functools.cache
def _quiet_libtiff() -> None:
    """libtiff writes its complaints about a damaged TIFF to stderr from C ("ZIPDecode: Decoding
    error at scanline 0, ..."), naming no file, in every process that decodes, with -q too.
    Pillow takes the failure from the call's result, and the report names the file; so libtiff's
    handlers are set to none, once per process. Reached through Pillow's own extension, whose
    symbols include the libtiff it links; where that fails (another build), nothing changes."""
    try:
        import ctypes

        from PIL import _imaging

        lib = ctypes.CDLL(_imaging.__file__)
        for name in ("TIFFSetErrorHandler", "TIFFSetWarningHandler"):
            handler = getattr(lib, name)
            handler.argtypes, handler.restype = [ctypes.c_void_p], ctypes.c_void_p
            handler(None)
    except (OSError, AttributeError):  # pragma: no cover - a Pillow without libtiff, or not ELF
        pass


def _decoder_filters() -> None:
    warnings.simplefilter("ignore", UserWarning)
    warnings.simplefilter("error", Image.DecompressionBombWarning)


_FILTERS_LOCK = threading.Lock()
_decoders = 0  # decodes under way in this process (any thread): the filters are set while > 0
_saved_filters: warnings.catch_warnings[None] | None = None  # holds the filters to restore


def _guarded(entry: FileEntry, work: Callable[[], ImageRecord]) -> ImageRecord | HashFailure:
    """Run ``work`` on one file; every problem a bad file can cause becomes a readable failure."""
    if entry.size == 0:
        return HashFailure(entry.path, "empty file")
    try:
        with _decoding():
            return work()
    except _Changed:
        return HashFailure(entry.path, CHANGED_REASON, transient=True)
    # A refusal under the pixel limit and a format this installation lacks depend on the run,
    # not the file: transient, so a cache does not serve them once the limit is raised or the
    # format enabled, as their messages advise.
    except Image.DecompressionBombWarning as exc:
        return HashFailure(entry.path, _bomb_reason("possible decompression bomb", exc), transient=True)
    except Image.DecompressionBombError as exc:
        return HashFailure(entry.path, _bomb_reason("decompression bomb", exc), transient=True)
    except Image.UnidentifiedImageError:
        reason, transient = _unidentified(entry.path)
        return HashFailure(entry.path, reason, transient=transient)
    except OSError as exc:
        # An error number comes from the system reading the file (a decoder's complaints carry
        # none): gone, an I/O error, too many open files, a permission since fixed. The file may
        # be fine on the next run, so the failure is not cached (it was, under the file's size
        # and times: "cannot read or decode: Input/output error" stood for a file that reads well).
        if exc.errno == errno.ENOENT:
            return HashFailure(entry.path, GONE_REASON, transient=True)
        if exc.errno is not None:
            return HashFailure(entry.path, f"cannot read: {exc.strerror or exc}", transient=True)
        return HashFailure(entry.path, f"cannot read or decode: {exc.strerror or exc}")
    except MemoryError:
        return HashFailure(entry.path, memory_reason(), transient=True)
    except Exception as exc:  # noqa: BLE001 - a hostile file may raise anything from a decoder
        guard = _png_inflation_limit(exc)
        if guard is not None:  # a limit of the run (a library user may raise it), as the pixel limit's
            return HashFailure(entry.path, guard, transient=True)
        return HashFailure(entry.path, f"cannot decode: {type(exc).__name__}: {exc}")


# Pillow's guards on a PNG's compressed chunks (text, colour profile): a few KB that inflate to
# gigabytes would exhaust memory before a pixel is read. Their ValueErrors name the limit.
_PNG_LIMITS = {
    "MAX_TEXT_CHUNK": "a compressed text or colour-profile chunk that inflates past Pillow's limit for one chunk",
    "MAX_TEXT_MEMORY": "compressed text chunks that inflate past Pillow's limit for all of them",
}


def _png_inflation_limit(exc: Exception) -> str | None:
    """The refusal, in words, when ``exc`` is one of Pillow's PNG inflation guards, else None:
    not a damaged file ("cannot decode"), a decompression bomb it declines to open. The limits
    are module constants of Pillow's with no imgdup option (a trusted file is rare enough); a
    library user may raise them, so the refusal is not cached."""
    if not isinstance(exc, ValueError):
        return None
    from PIL import PngImagePlugin  # loaded already: only a PNG raises these

    for name, what in _PNG_LIMITS.items():
        if name in str(exc):
            limit = getattr(PngImagePlugin, name, None)
            size = f", {limit / 2**20:g} MB" if isinstance(limit, int) else ""
            return f"refused: possible decompression bomb ({what}: PngImagePlugin.{name}{size})"
    return None


def hash_entry(entry: FileEntry, settings: HashSettings) -> ImageRecord | HashFailure:
    """Hash one file; never raises for a bad file, returns a failure with a readable reason."""

    def work() -> ImageRecord:
        source, digest = _read(entry)
        img, width, height, frames, traits, measured, chroma = _load_first_frame(source, settings)
        # Pillow's full check covers a PNG's chunks only; any other file, opened again, passed
        # as it did a moment ago from the same bytes (a WebP's second opening cost ~0.6 ms).
        if traits.format == "PNG" and not _intact(source):
            traits = replace(traits, intact=False)
        # Every hash below works on grey levels: convert a colour image once, not once per step
        # (the colour traits were taken from the decode already).
        grey = _luma(img)
        low = is_low_information(grey)
        frame_hashes: list[int] = []
        largest = 0  # pixels of the largest later frame: a cached record is refused by it too (over_the_limit)
        for pixels, frame in _later_frames(source, settings, frames) if frames > 1 else ():
            largest = max(largest, pixels)
            frame_grey = _luma(frame)
            frame_hashes.append(hash_image(frame_grey, settings))
            if low and not is_low_information(frame_grey):
                # A blank cover page, a fade-in from black: the file is searched by its first
                # frame with information (a blank first frame's hash is noise, and would group
                # every file that opens on a blank), and compared frame by frame as before.
                grey, low = frame_grey, False
                traits, chroma = _frame_traits(traits, frame, settings)
                measured = None  # the blank frame's spectrum: the measuring takes this frame's
        plain = hash_image(grey, settings)
        arr = np.asarray(grey)
        box = content_box(arr) if settings.regions else None
        if box is not None:
            traits = replace(traits, content=content_share(box, grey.size))
        if not low and small_marks_on_canvas(arr):
            # The canvas is all its hashes show: only exact copies are safe to group (regions.py).
            full = (0, 0, grey.width, grey.height)
            low = (box if box is not None else content_box(arr)) == full
        regions = region_hashes(grey, settings, plain, box, chroma) if box is not None else ()
        if regions and not low and frames == 1 and traits.content < FRAMED_SHARE:
            framed = _framed_box_regions(source, settings, grey, regions)
            if framed is None:
                # Peeled on down, the box ran out into blank page: the first peel went through
                # sparse marks (a line chart's columns hold a few dots of ink each) and stopped
                # at its limit on whatever was left, a corner of axis labels the same in every
                # chart of one style, so different charts met at distance 0 through it. No
                # picture is framed there: the image is its own box.
                full = (0, 0, grey.width, grey.height)
                traits = replace(traits, content=1.0)
                regions = region_hashes(grey, settings, plain, full, chroma)
            else:
                regions = framed
        return ImageRecord(
            entry=entry,
            width=width,
            height=height,
            hash=plain,
            digest=digest,
            variants=variant_hashes(grey, settings) if settings.rotations else (),
            low_information=low,
            frames=frames,
            frame_hashes=tuple(frame_hashes),
            regions=pack_regions(regions, settings.bits),  # one buffer: cheap to send, store and compare
            traits=traits,
            quality=measured,
            largest_frame=largest,
        )

    return _guarded(entry, work)


# A framed picture (under regions.FRAMED_SHARE of its image: a product shot on a white page) is a
# few pixels of the reduced decode, and the peel stops at a third of each side (regions._MIN_KEEP):
# at 13% of an 800 px page's width the photo was 13 of 100 px inside a 30 px box of page. Its box
# hashes were mostly the page's: of 150 different dogs-1000 photos centred at 13% of one white
# page, 11 were marked for removal (16%: 3, 19%: 1), and no finer-hash margin parted them (copies
# up to 72 of 256 bits apart, different photos from 54). So a framed image's content box is
# peeled down to the picture (_FRAMED_MIN_KEEP) and hashed again on a decode where the picture is
# at least _FRAMED_BOX_PIXELS a side (or the file's own size): there the box's finer hashes of
# copies came a median 2 of 256 bits apart (341 of 354 pairs within 64; the rest, two photos whose
# edge peels differently) and different photos 96 or more. Only framed images pay the second decode.
_FRAMED_BOX_PIXELS = 64
_FRAMED_MIN_KEEP = 0.05


def _upright_grey(source: str | io.BytesIO, short_side: int) -> Image.Image:
    """The file's first picture, upright and grey, decoded (reduced where allowed) to about
    ``short_side`` pixels on its short side, or its own size when smaller."""
    if isinstance(source, io.BytesIO):
        source.seek(0)
    with _decoding(), Image.open(source, formats=_formats_for(source)) as img:
        img.draft("RGB", (short_side, short_side))  # a JPEG: DCT scaling keeps both sides >= the request
        img.load()
        if min(img.size) >= 2 * short_side:
            img = img.reduce(min(img.size) // short_side)
        return _luma(normalise(ImageOps.exif_transpose(img)))


def _framed_box_regions(
    source: str | io.BytesIO, settings: HashSettings, grey: Image.Image, regions: tuple[int, ...]
) -> tuple[int, ...] | None:
    """``regions`` with the content box's hashes (coarse and finer) taken from the framed picture
    itself on a larger decode (see _FRAMED_BOX_PIXELS); unchanged when that decode cannot be had
    or its picture is smaller than the hash's input; None when peeling on finds no picture at all."""
    x0, y0, x1, y1 = content_box(np.asarray(grey), _FRAMED_MIN_KEEP)
    short = min(x1 - x0, y1 - y0)
    target = int(np.ceil(min(grey.size) * _FRAMED_BOX_PIXELS / max(short, 1)))
    try:
        big = _upright_grey(source, target) if short < _FRAMED_BOX_PIXELS else grey
    except (OSError, ValueError, Image.DecompressionBombError):
        return regions  # decoded once already: keep the reduced decode's hashes
    arr = np.asarray(big)
    if peeled_to_canvas(arr, _FRAMED_MIN_KEEP):
        return None  # no picture under the marks: see hash_entry
    if settings.algorithm != "phash":
        # The box's hashes below are phash's own frequencies; the other hashes (--regions with
        # dhash, ahash or whash) keep the reduced decode's, but not a box of blank page (above:
        # with them, different charts met at distance 0 through their axis labels' box).
        return regions
    box = content_box(arr, _FRAMED_MIN_KEEP)
    # A picture smaller than the hash's own input even in the file (a small shape in a small graphic)
    # gains no pixels: it keeps the reduced decode's hashes (with 16 px, 9 of the 1,640 expected
    # copies of the graphics benchmark's 40 sources were lost, with the input size 3 net).
    if box == (0, 0, big.width, big.height) or min(box[2] - box[0], box[3] - box[1]) < hash_input_size(settings):
        return regions
    x0, y0, x1, y1 = box
    picture = arr[y0:y1, x0:x1].astype(np.float64)  # the box alone: the same lows, smaller products
    lows = _box_lows(picture, [(0, 0, x1 - x0, y1 - y0)], settings.hash_size)
    coarse, fine = _lows_to_hashes(lows, settings.hash_size)
    n = 1 + len(SUB_REGIONS)  # regions.split's layout: the box is the first coarse hash, the second fine one
    out = list(regions)
    out[0], out[n + 1] = coarse[0], fine[0]
    if settings.rotations:  # the box's turned versions, from the same picture (see turned_fine)
        at = len(out) - len(DIHEDRAL)
        out[at:] = _median_rows(_turned_lows(lows[0]).reshape(len(DIHEDRAL), -1))
    return tuple(out)


def load_thumbnail(path: str, size: int, *, scanned: tuple[int, int] | None = None) -> Image.Image:
    """An upright RGB thumbnail for the report and the montages, decoded with the same guards as
    hashing. ``scanned``: the file's size and modification time at the scan; the file must still
    have them before and after it is decoded (:func:`imgdup.fsafe.check_as_scanned`, ValueError),
    or its preview would show another picture under the scanned one's name."""
    if scanned is not None:
        check_as_scanned(path, *scanned)
    with _decoding(), Image.open(path, formats=_formats_for(path)) as img:
        img.draft("RGB", (size, size))
        img.load()
        img = normalise(ImageOps.exif_transpose(img))
        img.thumbnail((size, size))
        thumb = img.convert("RGB")
    if scanned is not None:
        check_as_scanned(path, *scanned)  # not replaced while it was decoded
    return thumb


# Central crop (native pixels, so the per-pixel detail is unchanged) the quality check looks at.
# 256 rather than 512: 5.5 instead of 14 ms a file. Best copies kept on the accuracy benchmark:
# 15.3% with 512 px and the 50% test alone, 14.0% with 256 px, 15.3% with 256 px and both tests.
_QUALITY_CROP = 256
# An image whose round trip through 80% of its size loses less than UPSCALE_RATIO of what a
# round trip through 50% loses, or less than UPSCALE_RATIO_QUARTER of what one through 25% loses,
# carries fewer details than pixels: it was enlarged. The second test catches 2x enlargements,
# which survive a 50% round trip almost intact. Measured on 200 dogs-1000 photos (256 px crops):
# originals flagged 2.0%; enlargements by 1.3x / 1.5x / 2x detected 94% / 95% / 85% (the first
# test alone: 91.5% / 91.5% / 60.5% at the same 2.0%).
UPSCALE_RATIO = 0.15
UPSCALE_RATIO_QUARTER = 0.02


def _round_trip_loss(grey: Image.Image, arr: np.ndarray, factor: float) -> float:
    size = (max(1, round(grey.width * factor)), max(1, round(grey.height * factor)))
    small = grey.resize(size, Image.Resampling.LANCZOS)
    back = np.asarray(small.resize(grey.size, Image.Resampling.LANCZOS), dtype=np.float64)
    return float(((back - arr) ** 2).mean())


def measure_quality(img: Image.Image) -> Quality:
    """Whether a full-resolution, normalised image looks enlarged, and a digest of its pixels."""
    digest = hashlib.sha256(f"{img.mode} {img.width} {img.height}\n".encode()).digest()
    pixels_sha256 = hashlib.sha256(digest + img.tobytes()).hexdigest()
    grey = img.convert("L")
    if min(grey.size) > _QUALITY_CROP:
        left, top = (grey.width - _QUALITY_CROP) // 2, (grey.height - _QUALITY_CROP) // 2
        grey = grey.crop((left, top, left + _QUALITY_CROP, top + _QUALITY_CROP))
    arr = np.asarray(grey, dtype=np.float64)
    upscaled = False
    if min(grey.size) >= 16:
        half = _round_trip_loss(grey, arr, 0.5)
        # A flat image loses nothing either way: it is not an enlargement of anything.
        if half > 1e-3:
            slight = _round_trip_loss(grey, arr, 0.8)
            quarter = _round_trip_loss(grey, arr, 0.25)
            upscaled = slight < UPSCALE_RATIO * half or slight < UPSCALE_RATIO_QUARTER * quarter
    return Quality(upscaled=upscaled, pixels_sha256=pixels_sha256)


def _centre_crop(height: int, width: int) -> tuple[int, int, int, int]:
    """Height, width, top and left of the centre crop the sibling-relative measures look at (on
    the 8 px grid: a JPEG's blocks)."""
    side_y, side_x = min(height, quality_mod.MEASURE_CROP), min(width, quality_mod.MEASURE_CROP)
    return side_y, side_x, ((height - side_y) // 2) // 8 * 8, ((width - side_x) // 2) // 8 * 8


def _crop_spectrum(
    crop: np.ndarray, width: int, height: int, jpeg_quality: int | None
) -> tuple[tuple[float, ...], float, bool]:
    """The centre crop's spectrum, the noise energy :func:`quality.is_enlargement` takes for a
    ``width`` x ``height`` file, and whether it looks enlarged by 1.5-2x (informational)."""
    spec = quality_mod.spectrum(crop)
    energy = quality_mod.noise_energy(width, height, jpeg_quality)
    return spec, energy, any(quality_mod.is_enlargement(spec, f, energy) for f in (0.5, 2 / 3))


def spectrum_only(img: Image.Image, jpeg_quality: int | None) -> Quality:
    """The spectrum part of :func:`measure_siblingwise` (``complete`` False: no lattice test, no
    pixel digest), from the full-resolution image as stored: what it returns when the spectrum
    shows an enlargement, bit for bit. Only the crop is converted to grey (the conversion is per
    pixel): a 2.4 MP RGB image's conversion had cost more than the spectrum."""
    side_y, side_x, top, left = _centre_crop(img.height, img.width)
    crop = np.asarray(_luma(img.crop((left, top, left + side_x, top + side_y))))
    spec, _energy, upscaled = _crop_spectrum(crop, img.width, img.height, jpeg_quality)
    repeats = quality_mod.repeat_profile(crop, img.height, img.width, top, left)
    return _spectrum_alone(spec, upscaled, repeats, _thin_border(img))


def _spectrum_alone(spec: Sequence[float], upscaled: bool, repeats: bytes, border: int) -> Quality:
    """A measurement of the spectrum (rounded as stored), of the crop's repeated columns and
    rows and of a thin border only: no lattice test, no digest."""
    return Quality(upscaled, "", tuple(round(x, 4) for x in spec), None, complete=False, repeats=repeats, border=border)


def _thin_border(img: Image.Image) -> int:
    """:func:`imgdup.quality.thin_bars` of a picture, from its outer rows and columns alone (grey),
    packed (:func:`imgdup.quality.pack_bars`)."""
    w, h, d = img.width, img.height, quality_mod.THIN_BORDER + 1
    if min(w, h) < 4 * d:
        return 0
    # the outermost row of each side first: almost every picture ends there (a fifth of the cost)
    outer = [
        np.asarray(_luma(img.crop(box))).reshape(1, -1)
        for box in ((0, 0, w, 1), (0, h - 1, w, h), (0, 0, 1, h), (w - 1, 0, w, h))
    ]
    if all(quality_mod.plain_level(row[0, d : row.shape[1] - d]) is None for row in outer):
        return 0
    top = np.asarray(_luma(img.crop((0, 0, w, d))))
    bottom = np.asarray(_luma(img.crop((0, h - d, w, h))))[::-1]
    left = np.asarray(_luma(img.crop((0, 0, d, h)))).T
    right = np.asarray(_luma(img.crop((w - d, 0, w, h)))).T[::-1]
    return quality_mod.pack_bars(quality_mod.thin_bars(top, bottom, left, right))


def measure_siblingwise(
    img: Image.Image,
    jpeg_quality: int | None = None,
    enlargement_factors: Sequence[float] = (),
    pixels: Callable[[], Image.Image] | None = None,
    steps: Sequence[int] | None = None,
    orientation: int = 1,
    more: Callable[[], Iterable[Image.Image]] | None = None,
    stored_as: str = "",
) -> Quality:
    """What :mod:`imgdup.quality` compares across siblings, from a full decode as stored
    (no rotation applied: the crop's 8x8 blocks are the file's JPEG blocks). A JPEG is only
    tested against lattices as coarse as its own table or coarser.

    ``enlargement_factors``: the siblings' scales (as :func:`imgdup.quality.assess` computes
    them). When the spectrum shows an enlargement at one of them, the file can never be kept
    over that sibling, so the rest (lattice test, pixel digest: most of the cost) is skipped.
    ``pixels``: the image the pixel digest is of, when it is not ``img`` (a JPEG's colour decode).
    ``steps``: a JPEG's luminance quantisation table (natural order), and ``orientation`` its EXIF
    orientation, for the block signature. ``more``: a multi-frame file's other frames, which the
    pixel digest covers too (files are pixel twins only when every frame is the same).
    ``stored_as``: what else the digest covers, where ``img`` is not all the file holds (a colour
    JPEG's luminance: its layers and chroma tables).
    """
    grey = np.asarray(_luma(img))
    h, w = grey.shape
    side_y, side_x, top, left = _centre_crop(h, w)
    crop = grey[top : top + side_y, left : left + side_x]
    spec, energy, upscaled = _crop_spectrum(crop, w, h, jpeg_quality)
    repeats = quality_mod.repeat_profile(crop, h, w, top, left)
    border = _thin_border(img)
    if any(quality_mod.is_enlargement(spec, f, energy) for f in enlargement_factors):
        return _spectrum_alone(spec, upscaled, repeats, border)
    shown = pixels() if pixels is not None else img
    digest = hashlib.sha256(f"{shown.mode} {shown.width} {shown.height}\n{stored_as}".encode()).digest()
    summed = hashlib.sha256(digest)
    summed.update(grey.data if shown is img and img.mode == "L" else shown.tobytes())  # grey: as they are, no copy
    for frame in more() if more is not None else ():
        summed.update(f"{frame.mode} {frame.width} {frame.height}\n".encode())
        summed.update(frame.tobytes())
    pixels_sha256 = summed.hexdigest()
    # 8 more rows and columns, so that a block grid shifted by the sides' remainder fits too.
    wide = grey[top : top + side_y + 8, left : left + side_x + 8]
    offsets = [(0, 0), (h % 8, 0), (0, w % 8), (h % 8, w % 8)]
    return Quality(
        # informational (the policy compares with the actual siblings' sizes): a 1.5x-2x enlargement
        upscaled=upscaled,
        pixels_sha256=pixels_sha256,
        spectrum=tuple(round(x, 4) for x in spec),
        lowest_fit=quality_mod.lowest_fit(wide, jpeg_quality, offsets),
        blocks=quality_mod.block_signature(grey, steps, orientation),
        repeats=repeats,
        border=border,
    )


def _quality_work(
    entry: FileEntry,
    settings: HashSettings,
    colour: bool,
    factors: Sequence[float] = (),
    spectrum: bool = False,
) -> ImageRecord:
    source, digest = _read(entry)

    def in_colour() -> Image.Image:
        if isinstance(source, io.BytesIO):
            source.seek(0)
        with Image.open(source, formats=_formats_for(source)) as again:
            again.load()
            return normalise(again)

    with _decoding():
        with Image.open(source, formats=_formats_for(source)) as img:
            width, height = img.size
            count = _frame_count(img)
            opened = img.tell()
            own = None
            steps = None
            orientation = img.getexif().get(0x0112, 1)
            colour_jpeg = False
            stored_as = ""
            jpeg = img.format in ("JPEG", "MPO")
            if jpeg and getattr(img, "quantization", None):
                steps = img.quantization[min(img.quantization)]  # the luminance table
                own = quality_mod.estimate_jpeg_quality(steps)
                if img.mode in ("RGB", "YCbCr"):
                    # Full size, luminance only: about half the cost of a colour decode, and the
                    # exact plane the encoder quantised (a conversion to RGB and back rounds it,
                    # enough to hide a coarser lattice: an EXIF-rotated q92 re-encode of a q75
                    # original was kept over it). The pixel digest is then of the luminance,
                    # and of how the colours were stored: copies with one luminance and 4:2:0
                    # chroma, or coarser chroma tables, were "identical pixels" (QA pass 15).
                    chroma = [(k, list(v)) for k, v in sorted(img.quantization.items()) if k != min(img.quantization)]
                    stored_as = f"luminance of {img.mode} {getattr(img, 'layer', None)} {chroma}"
                    img.draft("L", img.size)
                    colour_jpeg = colour
            img.load()
            img = normalise(img)
        orientation = orientation if isinstance(orientation, int) and 0 < orientation < 256 else 1
        measured_at = opened
        if count > 1 and not jpeg:
            # Measured on the frame the file is searched by: a fade-in's black first frame told
            # nothing, and a 2x enlargement of the animation was kept over it (QA pass 15).
            found = _searched_frame(source, settings, count, img, orientation)
            if found is not None:
                measured_at, img = found
        if spectrum:  # all a smaller sibling is asked for: what a larger copy is compared with
            measured = spectrum_only(img, own)
        else:
            # Every other frame goes into the pixel digest: two animations whose first frames
            # are the same, and whose later ones differ by less than their hashes tell, were
            # "identical pixels" (a blurred copy, the smaller file, was kept so).
            others = [k for k in dict.fromkeys([opened, *range(count)]) if k != measured_at][: MAX_FRAMES - 1]
            # With a same-size lossless sibling, the digest is of a colour decode (a PNG of the
            # same pixels has the same one), made only once the spectrum shows no enlargement.
            measured = measure_siblingwise(
                img,
                own,
                factors,
                pixels=in_colour if colour_jpeg else None,
                steps=steps,
                orientation=orientation,
                more=(lambda: (f for _, f, _ in _frames_at(source, count, others))) if others else None,
                stored_as="" if colour_jpeg else stored_as,
            )
    return ImageRecord(entry=entry, width=width, height=height, hash=0, digest=digest, quality=measured)


def _searched_frame(
    source: str | io.BytesIO, settings: HashSettings, count: int, first: Image.Image, orientation: int
) -> tuple[int, Image.Image] | None:
    """(index, frame: normalised, as stored) of the later frame a multi-frame file is searched by
    (see :func:`hash_entry`), when its first frame is blank; None when that is the first frame."""
    view = first.transpose(_TRANSPOSE[orientation]) if orientation in _TRANSPOSE else first
    if settings.decode == "draft" and min(view.size) >= 2 * draft_size(settings):
        view = view.reduce(min(view.size) // draft_size(settings))  # as _load_first_frame reduces it
    if not is_low_information(_luma(_capped(view))):
        return None
    for index, frame, turned in _frames_at(source, count):
        if not is_low_information(_luma(_hash_view(frame, turned, settings))):
            return index, frame
    return None


def quality_entry(entry: FileEntry, settings: HashSettings) -> ImageRecord | HashFailure:
    """Decode one file in full and measure its :class:`Quality` (a worker function).

    The record's hash is not computed (0); only ``quality``, the size and the digest matter.
    A JPEG is decoded as luminance only (all the measures need).
    """
    return _guarded(entry, lambda: _quality_work(entry, settings, colour=False))


def quality_entry_rgb(entry: FileEntry, settings: HashSettings) -> ImageRecord | HashFailure:
    """:func:`quality_entry` with a colour decode, so that the pixel digest of a JPEG equals that
    of a lossless copy of the same pixels (asked for when a same-size lossless sibling exists)."""
    return _guarded(entry, lambda: _quality_work(entry, settings, colour=True))


def quality_entry_some_rgb(
    entry: FileEntry,
    settings: HashSettings,
    *,
    colour_paths: frozenset[str] = frozenset(),
    factors: Mapping[str, tuple[float, ...]] | None = None,
    spectrum_paths: frozenset[str] = frozenset(),
) -> ImageRecord | HashFailure:
    """:func:`quality_entry_rgb` for ``colour_paths``, :func:`quality_entry` for the rest: one
    batch, one set of workers (bind ``colour_paths`` with functools.partial). ``factors``: per
    path, the siblings' scales for :func:`measure_siblingwise`. ``spectrum_paths``: files whose
    spectrum alone is asked for (:func:`spectrum_only`)."""
    key = entry.key  # an object-store file's local copy: the object's path (QA pass 33)
    scales = (factors or {}).get(key, ())
    return _guarded(
        entry,
        lambda: _quality_work(
            entry, settings, colour=key in colour_paths, factors=scales, spectrum=key in spectrum_paths
        ),
    )
