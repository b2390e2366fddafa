"""How much of a picture a copy carries, relative to its siblings (pure functions over arrays).

A score of one file alone cannot tell an original from an enlargement or a re-encode, so the
measurements here are compared across the members of one cluster:

* **colour**: a member is grey when its chroma is nearly zero while a sibling has real colour;
* **enlargement**: a file is an enlargement of a smaller sibling (linear factor ``f``) when it
  holds almost no power above ``f`` of its Nyquist frequency compared with the octave below
  ``f``: whatever resampling made it, it carries no detail the sibling scaled up lacks;
* **JPEG history**: the quality the luminance quantisation table says, and the standard
  quality whose lattice the decoded pixels sit on best (a q90 re-encode of a q75 file, or a
  PNG of a q30 JPEG, went through that coarser quantisation);
* **edits and overlays**: a 16x16 thumbnail that differs locally from the per-pixel median of
  the siblings (a watermark, a caption, a brightness change);
* **detail**: power in the middle and top bands compared with each same-size sibling (a blur).

hashing.py opens the files and hands over arrays; policy.py ranks and explains.
"""

from __future__ import annotations

import bisect
import functools
import struct
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

import numpy as np

from . import index
from .models import ImageRecord, Traits
from .regions import SUB_REGIONS, fine_words, split

# Cut-off frequencies (fractions of Nyquist) at which a spectrum stores the power above it.
CUTOFFS = tuple(2.0 ** (-k / 4) for k in range(21))  # 1 .. 1/32, four per octave

# Chroma (mean distance from grey in Cb/Cr, 0-255 units) below which a picture is grey, and
# above which a sibling counts as having real colour. A grey JPEG stored as RGB measures < 0.5;
# the least colourful dogs-1000 photos measure > 3.
GREY_MAX = 1.5
COLOUR_MIN = 3.0

# A file is an enlargement of a sibling f times its size (linear) when its power density above
# 1.3 f (past the interpolation kernel's roll-off) is below ENLARGED_RATIO * f**1.5 times its
# density in the octave below f (natural photos fall off with frequency, hence the f term).
# Measured on 30 dogs-1000 photos (q92 enlargements): originals' least ratio at f = 3/4, 2/3,
# 1/2, 1/4, 1/8 is 0.055, 0.037, 0.028, 0.015, 0.0043 (threshold 0.042, 0.035, 0.023, 0.0081,
# 0.0029); median enlargements 1.5x Lanczos 0.013, 2x bicubic 0.0125, 2x Lanczos 0.0056,
# 4x bicubic 0.0016, 8x Lanczos 0.0001 (the largest: 0.071, 0.049, 0.036, 0.0038, 0.0005).
ENLARGED_RATIO = 0.065
# Soft photos (little detail near the sibling's resolution) fail that ratio: their enlargements'
# band above 1.3 f holds only the noise of 8-bit rounding and of their own re-encode, which is
# large next to the little the octave below holds. So a JPEG of quality NOISE_MIN_QUALITY or more
# (its own encoding keeps that band) whose power above 1.3 f (f <= NOISE_MAX_F) is below
# NOISE_VAR grey levels squared per pixel (about 3.5x rounding's 1/12) holds nothing of its own
# there either. Measured on the keep-policy benchmark (seeds 0 and 1, 300 sources, crops as
# measured): 2x enlargements 0.011-27.6 (1% below 0.19; the ratio missed those of soft photos,
# 0.16-0.20), 1.5x enlargements from 0.02; originals (q75 JPEGs) at f = 1/2 and 2/3 at least
# 0.49 and 0.54 but for one, itself an enlargement (0.15). Lossless files and JPEGs below q85
# are left to the ratio: a smooth drawing's PNG holds no more above 1.3 f than rounding either,
# and a q30 copy's block edges would then outrank it.
NOISE_VAR = 0.3
NOISE_MAX_F = 0.7
NOISE_MIN_QUALITY = 85
# A 1.25-1.67x enlargement (of a sibling SIBLING_SCALES times its size) is told by its sibling too:
# its power above 1.3 f is below SIBLING_RATIO of the sibling's own power in the same relative
# band (above 1.3 f of the sibling's resolution). A photo's spectrum is roughly scale-invariant,
# so a larger original holds about as much there as its smaller copy does; an enlargement holds
# only the interpolation's residue. Its own ratio test misses bicubic 1.5x enlargements saved at
# q85 (their block noise fills the band: 215 of 993 kept on bench_e2e.py's 20k set, T=8). Measured on
# 150 dogs-1000 photos (power ratio): 1.5x bicubic q85 0.045-0.52 (75% below 0.2), 1.5x Lanczos
# q92 0.015-0.40; originals against their Lanczos copies of 2/3 and 3/4 the size, saved as JPEG
# q30/q50/q90 or WebP q75, 0.24 and more (0.30 and more at 3/4).
SIBLING_RATIO = 0.2
SIBLING_SCALES = (0.6, 0.8)
# Side of the native-resolution centre crop the sibling-relative measurements look at (a
# multiple of 8 so that its blocks are the JPEG blocks).
MEASURE_CROP = 256
# Siblings closer in size than this (linear) are "the same resolution" for the policy.
SAME_SIZE = 0.8
# A copy is *framed* (an added border, letterbox bars, a caption band, a window around it; see
# framed()) when its content box covers less than FRAME_SHARE of the share a sibling's covers
# while that sibling holds at least SAME_PICTURE of its picture's pixels: the frame's pixels are
# no more picture. Shares come from the reduced decode (a pixel or two of ~100 a side); the
# share is only a first sieve (the evidence and "edited" tests below decide), so it is loose: a
# caption band of 8-10% of the height was missed at 0.9 (benchmarks/bench_keepers.py: original
# kept in 48 of 100 clusters at 0.9, 88 at 0.97); the benchmark's frames take 13-64% of the area.
FRAME_SHARE = 0.97
SAME_PICTURE = 0.9
# Bits (of the finer 4x hashes) by which a framed copy's content box must match its sibling's
# picture better than its whole image does: the benchmark's frames gain a median of 69-106 bits
# by kind (5th percentile 14-70).
FRAME_EVIDENCE = 16
# "Edited" compares a thumbnail with the median of the others: with two others that is their mean,
# which a crop drags as far as a frame does. On 298 dogs-1000 clusters of {original, q70 copy,
# 10% edge crop} the crop was kept in 8 as the "unframed" copy; with a fourth copy, in none.
_FRAME_MIN_MEMBERS = 4

# A member with colour (COLOUR_MIN) whose colour is a uniform tint (sepia, a blue cast on a grey
# picture) is no "real colour" for the colour rule: its chroma is what its grey level predicts
# (chroma_spread below TINT_SPREAD and below TINT_SHARE of its colourfulness). Measured on the
# 32 x 32 reductions the hash pass takes: of 985 dogs-1000 photos with colour, one (a toned
# black-and-white photo, 0.56) is a tint by this rule, the next a blue snow scene with a red
# date stamp (1.36, 0.11 of its colourfulness); 2,478 of 2,500 tinted JPEGs of 500 of them
# (5 tints, q30-q90) and their lossless copies are (missed: 18 at q50, 3 at q75, 1 at q30).
TINT_SPREAD = 1.2
TINT_SHARE = 0.15

# A thumbnail cell (2x2 of 16x16) more than EDIT_LEVELS grey levels from the siblings' median,
# on average, is an edit or an overlay. Copies of other sizes are decoded at other DCT scales,
# whose rounded sizes shift a sharp edge by a fraction of a cell: up to 11 levels measured on
# synthetic shapes; a 30% x 10% caption box or a x1.25 brightness moves cells by > 25.
EDIT_LEVELS = 14.0
# A thumbnail whose grey-level spread differs from the siblings' median spread by this factor
# (x1.3 contrast, say) is edited as well, even where no cell moves by EDIT_LEVELS.
CONTRAST_EDIT = 0.15
# A member whose colourfulness is this factor above or below the median of the others' (those
# with colour, frames left out) had its colours changed: a filter, a saturation boost, a fade.
# Such an edit barely moves the grey thumbnails the overlay test compares. Measured (member /
# median of the others): originals 0.99-1.05 on the accuracy benchmark (seed 0, 147 clusters),
# re-encodes, crops, rotations and enlargements 0.45-1.53 only for crops of 20-30% (smaller: they
# do not compete at equal size), brightness and contrast edits 0.74-1.31 (found by the thumbnails
# already); bench_keepers.py's x1.6 saturation filter 1.48-1.64, its camera files 0.81-1.01.
COLOUR_EDIT = 1.4
# A same-size member is blurred when some same-size sibling holds more than 1 / BLUR_RATIO times
# its power in the middle band (1/4-1/2 of Nyquist) and more than 1 / BLUR_TOP times its power
# above 1/2 of Nyquist: a blur takes the top band almost entirely, while sharpening halos raise
# it only a few times (as much as they raise the middle band). Compared with each sibling, not
# with the tier's median: once half the copies were blurred, the median was a blurred copy's
# own detail and a radius-1 blur passed as sharp. Measured on 100 dogs-1000 photos (q75, luma
# centre crops) against their q90 copies: Gaussian blur radius 1 / 1.2 / 2 holds 0.18-0.38 /
# 0.10-0.26 / 0.005-0.03 of the original's middle band and 0.008-0.21 / 0.002-0.16 / 0-0.10 of
# its top band (flagged: 98, 99, 100 of 100; radius 0.6, 0.53-0.81 of the middle band: 0);
# the original holds 0.18-0.36 and 0.15-0.33 of an UnsharpMask() copy's, 0.40-0.61 and
# 0.22-0.35 of a SHARPEN copy's (flagged: 0), and 0.54 or more of the middle band of q30, q50
# and q90 re-encodes and of a x1.3 contrast copy (0). Added noise is the known limit: it fills
# both bands, and the original passed for blurred next to 1 of 100 copies with Gaussian noise
# of sigma 8 and 19 of 100 with sigma 16 (the tier median had the same weakness in two-file
# tiers, and called an original blurred next to its UnsharpMask() copy).
BLUR_RATIO = 0.5
BLUR_TOP = 0.15

# Standard (IJG) qualities tried as the lattice a file's pixels went through, and how close to
# it they must sit (mean distance of quantised coefficients from an integer; uniform: 0.25).
# Measured on 15 benchmark sources (dogs-1000 originals are IJG q75): originals 0.03-0.09 from
# the q75 lattice, their q90/q92 re-encodes 0.09-0.19, WebP / blurred / brightened copies 0.20-0.28.
# q92 too: phone cameras save at it, and a q95-q100 re-save of such a file sits 0.11-0.17 from
# its lattice (6 dogs-1000 photos) but 0.18-0.22 from q90's, and was kept over the camera file
# (QA pass 36); originals at q95-q100 sit 0.25-0.26 from it.
LATTICE_QUALITIES = tuple(sorted({*range(10, 100, 5), 92}))
# Lattices tried only for files whose own steps are 1 (q95 and finer): a q93 or q94 original
# sits 0.21 from the q92 lattice, too near LATTICE_FIT to tell.
_FINE_ONLY = (92,)
LATTICE_FIT = 0.18
# JPEG blocks sampled for the lattice test (every k-th block of the crop): enough to be sure.
_FIT_BLOCKS = 256

_IJG_LUMA = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.float64,
)


@functools.cache
def ijg_table(quality: int) -> np.ndarray:
    """The standard luminance quantisation table libjpeg writes at ``quality`` (8x8, read-only:
    computed once per quality, as the lattice test asks for the same tables for every file)."""
    q = min(100, max(1, quality))
    scale = 5000 / q if q < 50 else 200 - 2 * q
    table = np.clip(np.floor((_IJG_LUMA * scale + 50) / 100), 1, 255)
    table.flags.writeable = False
    return table


# The sums of the 100 standard tables, computed once: estimating a file's quality is then one
# vectorised comparison (recomputing 100 tables per file was ~1 ms of a ~2 ms hash).
_IJG_SUMS = np.array([ijg_table(q).sum() for q in range(1, 101)])


def estimate_jpeg_quality(luma_table: Sequence[int]) -> int:
    """The IJG quality whose luminance table is closest to ``luma_table`` (64 values)."""
    return _quality_of_sum(float(sum(luma_table)))


@functools.lru_cache(maxsize=1024)
def _quality_of_sum(total: float) -> int:
    """:func:`estimate_jpeg_quality` of a table's sum, remembered: the files of one camera or
    encoder share a few tables (dogs-1000: 12 sums), and numpy's calls cost more than the answer."""
    return int(np.argmin(np.abs(_IJG_SUMS - total))) + 1  # the first (lowest) quality on a tie, as min() did


@functools.cache
def _chroma_distances() -> np.ndarray:
    """``hypot(cb - 128, cr - 128)`` for every pair of 8-bit levels, at index ``cb * 256 + cr``
    (512 KiB once per process): looking the ~3,000 pixels of a file up costs a third of computing
    them, and gives the very same floats, computed the same way."""
    cb, cr = np.divmod(np.arange(256 * 256), 256)
    table = np.hypot(cb.astype(np.float64) - 128.0, cr.astype(np.float64) - 128.0)
    table.flags.writeable = False
    return table


def colourfulness(cb: np.ndarray, cr: np.ndarray) -> float:
    """Mean distance from grey of Cb/Cr planes (uint8, 128 = no colour)."""
    if cb.dtype != np.uint8 or cr.dtype != np.uint8:
        raise TypeError("colourfulness takes uint8 planes")
    return float(_chroma_distances().take((cb.astype(np.intp) << 8) | cr).mean())


def chroma_spread(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> float:
    """Mean distance of each pixel's chroma (Cb, Cr; uint8 planes of one shape) from the mean
    chroma of the pixels of its grey level (32 bands of 8 levels): how much of a picture's colour
    its grey levels do not explain. A tinted grey picture's chroma is a function of its grey
    level (0 but for rounding and compression); a photo's colours vary at every grey level."""
    band = (y.astype(np.intp) >> 3).ravel()
    b, r = cb.ravel().astype(np.float64), cr.ravel().astype(np.float64)
    count = np.maximum(np.bincount(band, minlength=32), 1)
    mean_b, mean_r = np.bincount(band, b, 32) / count, np.bincount(band, r, 32) / count
    return float(np.hypot(b - mean_b[band], r - mean_r[band]).mean())


def real_colour(traits: Traits | None) -> bool:
    """True when a file has colour (:data:`COLOUR_MIN`) that is not a uniform tint of a grey
    picture (:data:`TINT_SPREAD`, :data:`TINT_SHARE`)."""
    if traits is None or traits.colourfulness < COLOUR_MIN:
        return False
    return not tinted(traits)


def tinted(traits: Traits | None) -> bool:
    """True when a file's colour (more than :data:`GREY_MAX`) is a uniform tint of a grey picture:
    a chroma its grey levels predict (:data:`TINT_SPREAD`, :data:`TINT_SHARE`)."""
    if traits is None or traits.colourfulness < GREY_MAX or traits.chroma_spread is None:
        return False
    spread = traits.chroma_spread
    return spread < TINT_SPREAD and spread < TINT_SHARE * traits.colourfulness


@functools.cache
def _dct8() -> np.ndarray:
    k = np.arange(8)[:, None]
    i = np.arange(8)[None, :]
    m = np.cos(np.pi * k * (2 * i + 1) / 16) * np.sqrt(2 / 8)
    m[0] /= np.sqrt(2)
    return m


# AC positions (row-major index in an 8x8 block) with u + v <= 4: the DC term's level shift and
# rounding make it fit anything, high frequencies are mostly quantised to zero.
_LOW = np.array([u * 8 + v for u in range(8) for v in range(8) if 0 < u + v <= 4])


@functools.cache
def _low_dct() -> np.ndarray:
    """The :data:`_LOW` rows of the 2-D 8x8 DCT as one (len(_LOW) x 64) matrix on row-major
    blocks: ``kron(d, d) @ block`` is ``d @ block @ d.T`` flattened, and only those rows are used."""
    m = np.kron(_dct8(), _dct8())[_LOW]
    m.flags.writeable = False
    return m


@functools.cache
def _harmonic(coarse: int, own: int) -> bool:
    """True when a coarser lattice says nothing about a file's history: steps under 1.5x its own
    (a q92 file sits near the q90 lattice whatever it went through), or about twice its own
    (every other point of the own lattice lies on it: a q75 file half fits the q50 lattice,
    0.16-0.28 measured), unless the own steps are 1; and a :data:`_FINE_ONLY` lattice for a file
    whose steps are not 1."""
    ratio = float(np.median(ijg_table(coarse).ravel()[_LOW] / ijg_table(own).ravel()[_LOW]))
    if np.median(ijg_table(own).ravel()[_LOW]) <= 1:
        # Steps of 1 (q95 and finer): a decode's rounding blurs that lattice, so no coarser one
        # half-fits it (q95-q100 originals sit 0.25-0.26 from the q90 and q92 lattices, twice
        # their steps), while a re-save of a q92 file sits 0.11-0.17 from q92's (QA pass 36).
        return ratio < 1.5
    return ratio < 1.5 or abs(ratio - 2) < 0.25 or coarse in _FINE_ONLY


def lowest_fit(y: np.ndarray, below: int | None, offsets: Sequence[tuple[int, int]] = ((0, 0),)) -> int | None:
    """The standard quality under ``below`` (a JPEG's own quality: only coarser lattices, and none
    that is a whole multiple of its own) whose luminance lattice ``y`` sits on best, if any.

    ``y`` is the luminance of the file as stored (no rotation applied), cropped at a multiple
    of 8 pixels from the top-left corner so that its 8x8 blocks are the JPEG blocks; each of
    ``offsets`` (rows, columns) is tried as the block grid too (a copy rotated or mirrored from
    a picture whose sides are no multiple of 8 has its source's grid shifted). Only
    coefficients quantised to a non-zero step count (zero says nothing about a lattice); a
    transposed table is tried too (a copy stored rotated by 90 degrees).
    """
    low = _low_dct()
    grids = []
    for oy, ox in dict.fromkeys(offsets):
        rows, cols = (y.shape[0] - oy) // 8, (y.shape[1] - ox) // 8
        if rows < 2 or cols < 2:
            continue
        # Every k-th block (row-major), gathered from a view of the grid: only the sampled
        # blocks are copied and converted (converting the whole crop was most of the cost).
        picked = np.arange(0, rows * cols, max(1, rows * cols // _FIT_BLOCKS))
        grid = y[oy : oy + rows * 8, ox : ox + cols * 8].reshape(rows, 8, cols, 8)
        blocks = grid[picked // cols, :, picked % cols, :].reshape(-1, 64).astype(np.float64) - 128.0
        grids.append(distinct_rows(blocks @ low.T))  # the low frequencies of every block, one product
    qualities = [q for q in LATTICE_QUALITIES if below is None or (q < below and not _harmonic(q, below))]
    if not grids or not qualities:
        return None
    tables = np.stack([ijg_table(q) for q in qualities])
    steps = np.concatenate([tables.reshape(-1, 64)[:, _LOW], tables.transpose(0, 2, 1).reshape(-1, 64)[:, _LOW]])
    # Coarse to fine: every grid and table on a quarter of the blocks, then the few best
    # candidates on all of them (a wrong grid or table fits like noise, ~0.25: far from the best).
    coarse = np.stack([_lattice_errors(coef[::_COARSE_STEP], steps, 64 // _COARSE_STEP) for coef in grids])
    order = np.argsort(coarse, axis=None, kind="stable")[:_FINE_CANDIDATES]
    best, k = np.inf, -1
    for g, t in zip(*np.unravel_index(order, coarse.shape)):
        if np.isfinite(coarse[g, t]):
            err = float(_lattice_errors(grids[g], steps[t : t + 1], 64)[0])
            if err < best or (err == best and t < k):
                best, k = err, int(t)
    # The best-fitting lattice among those tried (the file's own is not: it always fits best).
    return (qualities * 2)[k] if k >= 0 and best < LATTICE_FIT else None


def distinct_rows(coef: np.ndarray) -> np.ndarray:
    """The rows of ``coef`` (blocks' DCT coefficients) that differ from every earlier one once
    rounded to whole numbers, in order: a block repeated over a picture is one piece of evidence
    for a lattice, not hundreds. A synthetic pattern of ramps repeats a few coefficients that fell
    near the q50 lattice by chance (mean error 0.155 over its blocks, 0.26 over its distinct ones),
    and its lossless original lost to a q85 copy. A photo's blocks hardly ever repeat."""
    whole = np.rint(coef) + 0.0  # -0.0 -> 0.0: rows are compared by their bytes
    # each row as one opaque value: 4x faster than np.unique(axis=0) (~0.4 ms a grid, 4 grids a file)
    rows = np.ascontiguousarray(whole).view(np.dtype((np.void, whole.dtype.itemsize * whole.shape[1]))).ravel()
    _, first = np.unique(rows, return_index=True)
    return coef[np.sort(first)]


# Same-size copies that are plain re-encodes of one picture have every luminance DCT coefficient
# within half a quantisation step of that picture's, so within half of both files' steps of each
# other (plus a decode's rounding: CONSISTENT_SLACK); a copy saved after a filter (added noise,
# sharpening, a blur, a brightness change) is not, whatever quality it was saved at. Measured on 25
# dogs-1000 photos (block_signature's 16 frequencies of 256 blocks, slack 3, the files' own steps
# only), the share of coefficients further apart: re-encodes of one decode (q92, q60, q30, a PNG
# of the q92, a colour filter's luminance) 0-3.3%, the original against them 0-2.1%;
# grainy copies (noise sigma 6, q90) 9.0-36%; sharpened ones (UnsharpMask radius 1, 80%, q90)
# 3.3-40% against a q60 sibling, 7.4-59% against a q92 one; blurred 5.5-67%; brightened 7.5-27%;
# a 5% crop resized back 32-81%. The share allowed, 3%, keeps a margin over the original's 2.1%
# (calling an original filtered is the harm to avoid); the steps of a coarser quality a file went
# through are added to its own (the q92 re-saves above went through q75: their 2.3-3.3%).
CONSISTENT_SLACK = 3.0
CONSISTENT_SHARE = 0.03
# With the steps of an unseen re-encode as coarse as the coarser file added (UNSEEN_SHARE): a
# chain of plain re-encodes is a hard bound, a filter's noise has tails. Measured on 15 dogs-1000
# photos (halved; #120-#733; QA pass 11's pairs, on the 16 frequencies): a q95 original vs
# q65/q45/q35 copies of a q70 re-save of it 0-0.15% further apart; a grainy copy (sigma 6, q90)
# vs a q75 camera file 4.3-5.4%, vs a q60 re-send 1.5-2.0%; a sharpened one (UnsharpMask radius
# 1, 80%, q90) vs the camera file 1.5-18%. 0.5% leaves 3x on either side (QA pass 11 took 0.2%
# on all 64 frequencies, where the chain came 0-0.04%).
UNSEEN_SHARE = 0.005
_SIGNATURE_GRID = 16  # blocks a side, spread evenly over the image
# Frequencies of each block kept and compared: the lowest 4 x 4. There the steps are small, so
# a filter's change shows against them; the higher ones are mostly quantised to zero in both
# files and only dilute the share (bench_keepers --processed, camera file kept: 67 of 100 with
# all 64 frequencies and a 2% share, 91 with these 16 at 2%, 88 at 3%; the accuracy benchmark's
# keepers unchanged with each).
_SIGNATURE_SIDE = 4
_SIGNATURE_HEAD = struct.Struct("<IIHHB64B")
# Fewer comparable blocks than this (most of them clipped): the pair is not compared.
_SIGNATURE_MIN_BLOCKS = 32


def block_signature(y: np.ndarray, steps: Sequence[int] | None, orientation: int = 1) -> bytes:
    """The lowest 4 x 4 luminance DCT coefficients (rounded) of up to 16 x 16 of the 8x8 blocks of ``y`` (a
    file's luminance as stored, so that its blocks are the JPEG blocks), spread evenly over the
    image, which of them hold a clipped sample (0 or 255: a decode clips what the steps let
    overshoot, so there the bound does not hold), the file's luminance quantisation steps
    (natural order; None: a lossless or non-JPEG file) and its EXIF orientation (the blocks of
    a copy stored turned are not the same blocks), compressed: what :func:`consistent` compares."""
    h, w = y.shape
    none = np.zeros(0, dtype=np.int64)
    rows = np.unique(np.linspace(0, h // 8 - 1, _SIGNATURE_GRID).round().astype(np.int64)) if h >= 8 else none
    cols = np.unique(np.linspace(0, w // 8 - 1, _SIGNATURE_GRID).round().astype(np.int64)) if w >= 8 else none
    table = [0] * 64 if steps is None else [min(255, max(0, int(v))) for v in steps][:64]
    head = _SIGNATURE_HEAD.pack(h, w, len(rows), len(cols), orientation, *table, *[0] * (64 - len(table)))
    if not len(rows) or not len(cols):
        return head
    blocks = y[: (h // 8) * 8, : (w // 8) * 8].reshape(h // 8, 8, w // 8, 8)[rows][:, :, cols].transpose(0, 2, 1, 3)
    clipped = ((blocks == 0) | (blocks == 255)).any(axis=(2, 3)).astype(np.uint8)
    d = _dct8()[:_SIGNATURE_SIDE]
    coef = d @ (blocks.astype(np.float64) - 128.0) @ d.T  # the lowest 4 x 4 frequencies of each block
    raw = clipped.tobytes() + np.clip(np.rint(coef), -32768, 32767).astype("<i2").tobytes()
    return head + zlib.compress(raw, 1)


@functools.lru_cache(maxsize=256)
def _parse_signature(sig: bytes) -> tuple[tuple[int, ...], np.ndarray, np.ndarray, np.ndarray] | None:
    """((stored height, width, block rows, columns, orientation), the steps (4, 4), which blocks
    are clipped (k,), the coefficients (k, 4, 4)); None for a malformed signature (a foreign
    cache row) or one without blocks."""
    try:
        h, w, r, c, orientation, *table = _SIGNATURE_HEAD.unpack_from(sig)
        raw = zlib.decompress(sig[_SIGNATURE_HEAD.size :]) if r and c else b""
        k = r * c
        clipped = np.frombuffer(raw[:k], dtype=np.uint8).astype(bool)
        side = _SIGNATURE_SIDE
        coef = np.frombuffer(raw[k:], dtype="<i2").astype(np.float64).reshape(k, side, side)
    except (struct.error, zlib.error, ValueError):
        return None
    if not len(coef) or len(clipped) != len(coef):
        return None
    steps = np.array(table, dtype=np.float64).reshape(8, 8)[:side, :side]
    return (h, w, r, c, orientation), steps, clipped, coef


def consistent(
    a: bytes,
    b: bytes,
    through: tuple[int | None, int | None] = (None, None),
    unseen: int | None = None,
    share: float = CONSISTENT_SHARE,
) -> bool | None:
    """Whether two files could both be plain re-encodes of one picture (see
    :data:`CONSISTENT_SHARE`), on the blocks neither clipped; None when their signatures do not
    compare (another size or orientation as stored, too few blocks unclipped). ``through``: the
    coarser quality each file's pixels went through (:attr:`Assessment.reencoded_from`), whose
    steps add to its own: a q92 re-save of a q75 file lies within both of the picture. ``unseen``:
    the quality of a re-encode that may have gone between them, not among the files (its steps
    add too). ``share``: the share of coefficients that may lie further apart."""
    pa, pb = _parse_signature(a), _parse_signature(b)
    if pa is None or pb is None or pa[0] != pb[0]:
        return None
    use = ~(pa[2] | pb[2])
    if use.sum() < _SIGNATURE_MIN_BLOCKS:
        return None
    bound = (pa[1] + pb[1]) / 2 + CONSISTENT_SLACK
    for fit in (*through, unseen):
        if fit is not None:
            bound = bound + ijg_table(fit)[:_SIGNATURE_SIDE, :_SIGNATURE_SIDE] / 2
    return float((np.abs(pa[3][use] - pb[3][use]) > bound).mean()) <= share


def may_be_filtered(r: ImageRecord) -> bool:
    """Whether :func:`processed` may call the file filtered: a JPEG or a lossless file (what a
    filter app saves)."""
    t = r.traits
    return t is not None and (t.format in ("JPEG", "MPO") or t.lossless)


_K = TypeVar("_K")
_V = TypeVar("_V")
# Answers a PairMemo holds at most, per kind: a cluster of thousands of measured copies asks
# about millions of pairs (~170 bytes an answer), past which they are found again, not held.
PAIR_MEMO_MAX = 200_000


@dataclass(eq=False)
class PairMemo:
    """Answers about files' measurements alone, remembered for one clustering (:class:`Assessor`):
    every measuring round assesses each cluster again, with most of its measurements unchanged,
    and redid these (the signatures' parse and comparison, the nearest-neighbour repeat test):
    on the accuracy benchmark (seed 0) assess took 2.8 s of the main process's CPU while the
    workers measured, 1.8 s with them remembered. Keyed by the measurements' bytes, which the
    records hold anyway."""

    signed: dict[bytes, bool] = field(default_factory=dict)
    consistent: dict[tuple[bytes, bytes, int | None, int | None], bool | None] = field(default_factory=dict)
    nearest: dict[tuple[bytes, int, int, int, int], bool] = field(default_factory=dict)

    def has_signature(self, sig: bytes) -> bool:
        return self._kept(self.signed, sig, lambda: _parse_signature(sig) is not None)

    def consistent_through(self, a: bytes, b: bytes, through: tuple[int | None, int | None]) -> bool | None:
        return self._kept(self.consistent, (a, b, *through), lambda: consistent(a, b, through))

    def nearest_enlargement(self, profile: bytes, oriented: tuple[int, int], sibling: tuple[int, int]) -> bool:
        return self._kept(
            self.nearest, (profile, *oriented, *sibling), lambda: nearest_enlargement(profile, oriented, sibling)
        )

    @staticmethod
    def _kept(table: dict[_K, _V], key: _K, find: Callable[[], _V]) -> _V:
        """``table[key]``, found and (under :data:`PAIR_MEMO_MAX` entries) kept when missing."""
        if key in table:
            return table[key]
        found = find()
        if len(table) < PAIR_MEMO_MAX:
            table[key] = found
        return found


def processed(members: Sequence[ImageRecord], memo: PairMemo | None = None) -> list[bool]:
    """Which members are filtered copies (added noise, sharpening...) of the picture that more
    of their same-size siblings are plain re-encodes of: inconsistent (:func:`consistent`) with a
    sibling whose family (itself and the siblings consistent with it) is larger than its own and
    holds two files at least. Files with the same pixels count once. With no larger family
    (two copies that disagree, alone) nothing is said: the pair does not tell which one was
    filtered. A lossy WebP, AVIF or HEIF file takes no part: its codec's errors are not bounded
    by a JPEG's steps (a WebP re-encode is no filtered copy, and ranks as it did). JPEGs and
    lossless files are called filtered (a grainy copy saved as PNG, its lattice gone, was kept
    as "lossless": QA pass 15); a palette file, ranked last anyway, counts in the families only."""
    memo = memo if memo is not None else PairMemo()
    out = [False] * len(members)
    firsts: dict[str, int] = {}
    for i, r in enumerate(members):
        q = r.quality
        if q is not None and q.blocks and not unknown_quality(r) and memo.has_signature(q.blocks):
            firsts.setdefault(q.pixels_sha256 or r.digest, i)
    pick = list(firsts.values())
    if len(pick) < 3:
        return out
    sig = [members[i].quality.blocks for i in pick]  # type: ignore[union-attr]
    fits = [effective_quality(members[i])[1] for i in pick]
    n = len(pick)
    agree = np.eye(n, dtype=bool)
    comparable = np.eye(n, dtype=bool)
    for x in range(n):
        for y in range(x + 1, n):
            c = memo.consistent_through(sig[x], sig[y], (fits[x], fits[y]))
            comparable[x, y] = comparable[y, x] = c is not None
            agree[x, y] = agree[y, x] = bool(c)
    family = agree.sum(axis=1)
    claimed = [effective_quality(members[i])[0] for i in pick]
    stored = [t.jpeg_quality or 0 if (t := members[i].traits) is not None else 0 for i in pick]
    same_pixels: dict[str, list[int]] = {}
    for i, r in enumerate(members):
        same_pixels.setdefault((r.quality.pixels_sha256 if r.quality else "") or r.digest, []).append(i)
    for x, key in enumerate(firsts):
        if not may_be_filtered(members[pick[x]]):
            continue
        against = comparable[x] & ~agree[x] & (family >= 2) & (family > family[x])
        for y in map(int, np.flatnonzero(against)):
            # A copy stored coarser than the other file may have been made from it through a
            # re-encode that is gone, no coarser than the copy (a q95 original, copies of a q70
            # re-save of it sent on at q65-q35): within one of the copy's own steps, not half,
            # every coefficient (UNSEEN_SHARE: a grainy copy beside a q75 camera file is not).
            unseen = [q for q, other in ((stored[y], claimed[x]), (stored[x], claimed[y])) if 0 < q < other]
            if unseen and consistent(sig[x], sig[y], (fits[x], fits[y]), min(unseen), UNSEEN_SHARE):
                against[y] = False
        if against.any():
            for i in same_pixels[key]:
                out[i] = True
    return out


# The lattice test's first pass looks at every _COARSE_STEP-th sampled block, the second pass
# at all of them for the _FINE_CANDIDATES best (grid, table) pairs of the first.
_COARSE_STEP = 4
_FINE_CANDIDATES = 4


def _lattice_errors(coef: np.ndarray, steps: np.ndarray, min_used: int) -> np.ndarray:
    """For each row of ``steps``, the mean distance of ``coef / step`` from an integer over the
    coefficients not quantised to zero (inf where fewer than ``min_used`` are)."""
    c = coef[None, :, :] / steps[:, None, :]
    used = np.abs(c) >= 0.5
    np.subtract(c, np.rint(c), out=c)  # in place: the largest arrays of a file's measurement
    np.abs(c, out=c)
    c *= used  # then plain sums: a third cheaper than sum(where=) and count_nonzero
    err = c.sum(axis=(1, 2))
    n = used.sum(axis=(1, 2))
    return np.where(n >= min_used, err / np.maximum(n, 1), np.inf)


@functools.lru_cache(maxsize=16)
def _spectrum_layout(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Hann window, rfft column weights and cut-off bin of every frequency for an h x w
    crop: the same for nearly every file (the crop is 256 x 256), so computed once."""
    window = np.outer(np.hanning(h), np.hanning(w))
    fy = np.abs(np.fft.fftfreq(h))[:, None] * 2
    fx = np.fft.rfftfreq(w)[None, :] * 2
    radius = np.maximum(fy, fx)  # per-axis Nyquist fraction: a resize scales each axis
    weight = np.where((fx == 0) | (fx == 1), 1.0, 2.0)  # rfft holds each other column twice
    # bin k holds the power between CUTOFFS[k] and CUTOFFS[k-1]; cumulative sums give "above"
    edges = np.array(CUTOFFS[::-1])
    bins = np.searchsorted(edges, radius.ravel(), side="left")  # 0: at or below the lowest cut-off
    for arr in (window, weight, bins):
        arr.flags.writeable = False
    return window, weight, bins


def spectrum(grey: np.ndarray) -> tuple[float, ...]:
    """Mean power per pixel above each of :data:`CUTOFFS` (Hann-windowed 2-D FFT of a crop)."""
    h, w = grey.shape
    if h < 16 or w < 16:
        return ()
    window, weight, bins = _spectrum_layout(h, w)
    a = grey.astype(np.float64)
    a -= a.mean()  # in place, here and below: the same values, fewer passes over fresh memory
    a *= window
    f = np.fft.rfft2(a)
    power = f.real * f.real  # |f|^2 without the square root
    power += f.imag * f.imag
    power *= weight
    per_bin = np.bincount(bins, weights=power.ravel(), minlength=len(CUTOFFS) + 1) / (h * w)
    above = np.cumsum(per_bin[::-1])[::-1]  # above[i] = power in bins >= i
    return tuple(float(above[len(CUTOFFS) - k]) for k in range(len(CUTOFFS)))


def power_above(spec: Sequence[float], f: float) -> float:
    """Power above ``f`` (Nyquist fraction), interpolated in log-frequency between cut-offs."""
    if not spec or f >= 1.0:
        return 0.0
    pos = _position(f)
    k = min(int(pos), len(spec) - 2)
    t = pos - k
    return float(spec[k] * (1 - t) + spec[k + 1] * t)


@functools.lru_cache(maxsize=4096)
def _position(f: float) -> float:
    """``f``'s place among :data:`CUTOFFS` (remembered: a scan asks ~100,000 times for a few
    hundred distinct values, the siblings' scales and the fixed bands)."""
    return float(-4 * np.log2(max(f, CUTOFFS[-1])))


def window_energy(width: int, height: int) -> float:
    """The sum of the squared Hann weights over the crop a ``width`` x ``height`` image is
    measured on: white noise of variance v has a spectrum density of v times this."""
    return _hann_energy(min(width, MEASURE_CROP)) * _hann_energy(min(height, MEASURE_CROP))


@functools.cache
def _hann_energy(n: int) -> float:
    return float((np.hanning(n) ** 2).sum())


@functools.lru_cache(maxsize=4096)  # every member of every cluster, each measuring round: a few sizes
def noise_energy(width: int, height: int, jpeg_quality: int | None) -> float:
    """The ``energy`` :func:`is_enlargement` takes for a file: its :func:`window_energy` when
    the noise test applies to it (a JPEG of NOISE_MIN_QUALITY or more), else 0."""
    return window_energy(width, height) if jpeg_quality is not None and jpeg_quality >= NOISE_MIN_QUALITY else 0.0


def is_enlargement(spec: Sequence[float], f: float, energy: float = 0.0) -> bool:
    """True when a picture holds no detail above ``f`` of its resolution (a sibling's size).
    ``energy``: :func:`window_energy` of the picture's size (0: the noise test is not made)."""
    if not spec or f > SAME_SIZE:
        return False
    hi = _top_band(spec, f)
    mid = (power_above(spec, f / 2) - power_above(spec, f)) / (0.75 * f * f)
    if mid <= 1e-6:
        return False
    return hi < ENLARGED_RATIO * f**1.5 * mid or (f <= NOISE_MAX_F and hi < NOISE_VAR * energy)


def enlarged_against(spec: Sequence[float], sibling: Sequence[float], f: float) -> bool:
    """True when a picture holds far less above 1.3 ``f`` than its sibling (``f`` times its size,
    within :data:`SIBLING_SCALES`) holds in the same band of its own resolution: an enlargement
    of it (:data:`SIBLING_RATIO`)."""
    if not spec or not sibling or not SIBLING_SCALES[0] <= f <= SIBLING_SCALES[1]:
        return False
    theirs = _top_band(sibling, f)
    return theirs > 0 and _top_band(spec, f) < SIBLING_RATIO * theirs


def _top_band(spec: Sequence[float], f: float) -> float:
    """Power density above 1.3 ``f`` (past an interpolation kernel's roll-off), per unit of
    frequency area: where an enlargement from a sibling ``f`` times the size holds nothing."""
    lo = min(1.3 * f, 0.95)
    return (power_above(spec, lo) - power_above(spec, 1.0)) / (1 - lo * lo)


def holds_only_noise(spec: Sequence[float], f: float, energy: float) -> bool:
    """True when a picture holds no more above 1.3 ``f`` than the noise of 8-bit rounding
    (:data:`NOISE_VAR`): nothing there is detail, whatever the picture's encoding. Only for
    ``f`` <= :data:`NOISE_MAX_F`: the band above 1.3 f of a larger ``f`` is the top few percent
    of the spectrum, which a q75 JPEG source quantises away too. ``energy``:
    :func:`window_energy` of its size."""
    return bool(spec) and f <= NOISE_MAX_F and _top_band(spec, f) < NOISE_VAR * energy


# A thin border or bar (THIN_BORDER px at most on a side, plain: BORDER_SHARE of each row of
# pixels along that side within BORDER_LEVELS of the row's median, all rows of the side one level)
# is too thin for the reduced decode's content box (a pixel or two of ~100 a side): a copy with a
# 1 or 2 px white border was kept as "most pixels" even beside three other copies (QA pass 15),
# and one with a 3 px bar on one side (a bad crop, a pad to a size) in any cluster (QA pass 34:
# the border had to go all round). Such a copy is framed when a sibling's size is its own less the
# bars (a pixel of slack). Measured on dogs-1000: 17 of 1,000 photos have a plain edge of their own
# (dark scan edges; none matters without a sibling of that size); 1-4 px borders (white, black,
# red) added to 100 of them: found in 97-99% of PNG, q90, q75 copies.
THIN_BORDER = 4
BORDER_LEVELS = 12.0
BORDER_SHARE = 0.9
_BAR_BITS = 3  # bits a side's width takes in Quality.border (0 to THIN_BORDER)


def plain_level(row: np.ndarray) -> float | None:
    """The grey level of a plain row of pixels (:data:`BORDER_SHARE` of it within
    :data:`BORDER_LEVELS` of its median), None when it is not plain (or empty)."""
    if not row.size:
        return None
    values = row.astype(np.float64)
    m = float(np.median(values))
    return m if float((np.abs(values - m) <= BORDER_LEVELS).mean()) >= BORDER_SHARE else None


def _bar(side: np.ndarray) -> int:
    """The width of a plain bar along one side (rows outermost first, corners left out), 0 when
    none or when it is wider than :data:`THIN_BORDER` (a background, not a bar)."""
    level = None
    for k in range(len(side)):
        m = plain_level(side[k])
        if m is None or (level is not None and abs(m - level) > BORDER_LEVELS):
            return k if k <= THIN_BORDER else 0
        level = m if level is None else level
    return 0


def thin_bars(top: np.ndarray, bottom: np.ndarray, left: np.ndarray, right: np.ndarray) -> tuple[int, int, int, int]:
    """The widths (top, bottom, left, right) of thin plain bars along a picture's sides, from its
    outer :data:`THIN_BORDER` + 1 rows (``top``, ``bottom``: outermost first) and columns
    (``left``, ``right``: as rows, outermost first), grey; each 0 where there is none. The ends
    of each row, where another side's bar may lie, are left out."""
    d = THIN_BORDER + 1
    return tuple(_bar(side[: THIN_BORDER + 1, d : side.shape[1] - d]) for side in (top, bottom, left, right))  # type: ignore[return-value]


def pack_bars(bars: Sequence[int]) -> int:
    """:func:`thin_bars` as the one number :attr:`imgdup.models.Quality.border` holds."""
    return sum(int(b) << (_BAR_BITS * i) for i, b in enumerate(bars))


def unpack_bars(border: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of :func:`pack_bars`' number."""
    mask = (1 << _BAR_BITS) - 1
    return tuple((border >> (_BAR_BITS * i)) & mask for i in range(4))  # type: ignore[return-value]


# A file is a nearest-neighbour enlargement of a smaller sibling when, on its centre crop, the
# column (and row) boundaries that such an enlargement from the sibling's size repeats hold a
# median difference under NN_RATIO of that of the others: a repeated column differs from its
# neighbour by the encoding's noise only. The spectrum test misses these at any factor (the
# blocky steps fill the top band): a 2x or 3x nearest-neighbour copy, and every 1.1-1.33x copy,
# was kept as "most pixels" (QA pass 15). Measured on 100 dogs-1000 photos (q75) against siblings
# of 0.9, 0.8 and 0.5 their size: originals 0.80 and more; nearest-neighbour enlargements by 1.1,
# 1.2, 1.5, 2 and 3 saved as PNG 0, at q92 0.09-0.75 (95% under 0.53), at q75 0.19-0.94 (medians
# 0.33-0.55); bicubic ones at q92 0.55 and more (an enlargement either way).
NN_RATIO = 0.6
# Grey levels across a boundary under which it is flat: a quarter of the boundaries that are not
# repeats must differ by more, or the test is not made. A drawing's flat columns (and a JPEG's
# noise over them) say nothing: without it 8, at 0.5 1, of 2,000 pairs of a generated graphic
# (q92 JPEG; benchmarks/accuracy/graphics.py) and a 0.5-0.95 size passed for enlargements, and
# the accuracy benchmark's graphics set kept a JPEG over the PNG original; at 1.0 none. The
# photos' nearest-neighbour copies above are found all the same but for 1-3 of 50 soft ones.
FLAT_BOUNDARY = 1.0
_PROFILE_HEAD = struct.Struct("<IIIIHH")  # stored height, width; crop top, left; crop rows, columns


def repeat_profile(crop: np.ndarray, height: int, width: int, top: int, left: int) -> bytes:
    """The mean absolute difference across every column and row boundary of a file's centre
    crop (grey, as stored, at ``top``, ``left`` of a ``height`` x ``width`` file), as float16:
    what :func:`nearest_enlargement` tests against a sibling's size."""
    a = crop.astype(np.float32)
    cols = np.abs(np.diff(a, axis=1)).mean(axis=0) if a.shape[1] > 1 else np.zeros(0, np.float32)
    rows = np.abs(np.diff(a, axis=0)).mean(axis=1) if a.shape[0] > 1 else np.zeros(0, np.float32)
    head = _PROFILE_HEAD.pack(height, width, top, left, a.shape[0], a.shape[1])
    return head + cols.astype("<f2").tobytes() + rows.astype("<f2").tobytes()


# a pair of a profile and a sibling's size is asked about in every measuring round: the accuracy
# benchmark's 7,800 files hold ~10,000 such pairs (at 4,096 the cache thrashed: 2 s more a scan)
@functools.lru_cache(maxsize=1 << 16)
def nearest_enlargement(profile: bytes, oriented: tuple[int, int], sibling: tuple[int, int]) -> bool:
    """True when a file (its :func:`repeat_profile`; ``oriented``: its width and height as shown)
    repeats the columns and rows a nearest-neighbour enlargement from ``sibling`` (width and
    height as shown, smaller on both sides) repeats (:data:`NN_RATIO`)."""
    parsed = _parse_profile(profile)
    if parsed is None:
        return False
    (h, w, top, left), axes = parsed
    # the sibling's sides along the stored axes (a file stored turned shows its width as height)
    sw, sh = sibling if (w, h) == oriented else sibling[::-1]
    if not (0 < sw < w and 0 < sh < h):
        return False
    # The columns first, and only when enough of them are low enough to be the repeated ones
    # (a bound from the sorted differences, a few microseconds): an original's are not, and the
    # full test (~0.5 ms an axis) ran for every pair of a file and a smaller size.
    tests = ((axes[0], w, sw, left), (axes[1], h, sh, top))
    return all(_may_repeat(ordered, 1 - n_in / n_out) for (_, ordered), n_out, n_in, _ in tests) and all(
        _repeat_ratio(diffs, n_out, n_in, start) < NN_RATIO for (diffs, _), n_out, n_in, start in tests
    )


@functools.lru_cache(maxsize=1024)
def _parse_profile(
    profile: bytes,
) -> tuple[tuple[int, int, int, int], tuple[tuple[np.ndarray, list[float]], ...]] | None:
    """((stored height, width, crop top, left), ((column differences, sorted), (rows, sorted)));
    None for a malformed profile."""
    try:
        h, w, top, left, sy, sx = _PROFILE_HEAD.unpack_from(profile)
        diffs = np.frombuffer(profile, dtype="<f2", offset=_PROFILE_HEAD.size).astype(np.float64)
    except (struct.error, ValueError):
        return None
    nc, nr = max(sx - 1, 0), max(sy - 1, 0)
    if len(diffs) != nc + nr:
        return None
    cols, rows = diffs[:nc], diffs[nc:]
    return (h, w, top, left), ((cols, sorted(cols.tolist())), (rows, sorted(rows.tolist())))


def _may_repeat(ordered: Sequence[float], share: float) -> bool:
    """Whether sorted boundary differences leave room for a ``share`` of them to be repeats whose
    median is under :data:`NN_RATIO` of the others': the others' median is at most the
    (1 + share) / 2 quantile of all, and half the repeats lie under that ratio of it."""
    n = len(ordered)
    if n < 8 or share <= 0:
        return False
    quantile = ordered[min(n - 1, int((1 + share) / 2 * n))]
    if quantile < FLAT_BOUNDARY:  # a flat drawing: room for exact repeats only (_exact_repeats)
        return bisect.bisect_right(ordered, 0.0) >= int(share * n)
    return bisect.bisect_left(ordered, NN_RATIO * quantile) >= int(share * n / 2)


def _repeat_ratio(diffs: np.ndarray, n_out: int, n_in: int, start: int) -> float:
    """Median difference across the boundaries (from ``start`` on) that a nearest-neighbour
    enlargement from ``n_in`` to ``n_out`` samples repeats, over that of the others: the least
    of the usual sampling conventions (pixel centres or corners; an exact tie either way)."""
    x = np.arange(start, start + len(diffs) + 1, dtype=np.float64)
    best = 1.0
    for offset in (0.5, 0.0):
        v = (x + offset) * (n_in / n_out)
        near = np.rint(v)
        ties = np.abs(v - near) < 1e-6
        # an exact tie rounds either way (libraries differ); without one, a single mask
        down = np.floor(v)
        for src in (np.where(ties, near, down), np.where(ties, near - 1, down)) if ties.any() else (down,):
            repeated = src[1:] == src[:-1]
            k = int(repeated.sum())
            if 4 <= k <= len(diffs) - 4:
                others = np.sort(diffs[~repeated])
                # a flat picture (a drawing): its repeats say nothing (FLAT_BOUNDARY) unless exact
                if others[len(others) // 4] >= max(FLAT_BOUNDARY, 1e-9):
                    best = min(best, _middle(diffs[repeated]) / _middle(others))
                elif _exact_repeats(diffs[repeated], others):
                    best = 0.0
    return best


# A flat drawing's nearest-neighbour enlargement, stored losslessly, repeats its columns and rows
# exactly: nothing at all across every repeated boundary (float16 means of 0), while the other
# boundaries hold the drawing's edges. Its flat columns alone say nothing (FLAT_BOUNDARY), so the
# edges must be enough that, spread as over the others, EXACT_EDGES_EXPECTED of them would have
# fallen on the repeated boundaries (none did: by chance about e**-8). A 2x enlargement of a
# 640 x 400 screenshot (PNG) was kept over its original as "most pixels (1280x800)".
EXACT_EDGES_EXPECTED = 8.0


def _exact_repeats(repeated: np.ndarray, others: np.ndarray) -> bool:
    """Whether the repeated boundaries hold nothing at all while, at the others' density, they
    would hold :data:`EXACT_EDGES_EXPECTED` of the drawing's edges."""
    if np.any(repeated > 0):
        return False
    edges = int(np.count_nonzero(others >= FLAT_BOUNDARY))
    return edges * len(repeated) / max(len(others), 1) >= EXACT_EDGES_EXPECTED


def _middle(values: np.ndarray) -> float:
    """The median of a short array (np.median's own overhead was most of the repeat test)."""
    s = np.sort(values)
    m = len(s)
    return float(s[m // 2]) if m % 2 else float(s[m // 2 - 1] + s[m // 2]) / 2


def detail(spec: Sequence[float]) -> float:
    """Power in the band 1/4 .. 1/2 of Nyquist: what a blur takes away first."""
    return power_above(spec, 0.25) - power_above(spec, 0.5) if spec else 0.0


def _leave_one_out_medians(stack: np.ndarray) -> np.ndarray:
    """``out[i]`` = the per-position median of every row of ``stack`` but row ``i`` (exactly what
    ``np.median(np.delete(stack, i, axis=0), axis=0)`` gives), from one sort instead of n: in a
    cluster of ~40 copies, n separate medians were most of the keep policy's main-process time."""
    n = len(stack)
    order = np.argsort(stack, axis=0, kind="stable")
    s = np.take_along_axis(stack, order, axis=0)  # sorted values per position
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(n).reshape((n,) + (1,) * (stack.ndim - 1)), axis=0)

    def kth(k: int) -> np.ndarray:  # k-th smallest of the others: skip the row's own rank
        return np.where(k < rank, s[k], s[min(k + 1, n - 1)])

    m = n - 1
    return kth(m // 2) if m % 2 else (kth(m // 2 - 1) + kth(m // 2)) / 2


def _median(stack: np.ndarray) -> np.ndarray:
    """The per-position median over the first axis (``np.median`` imports ``numpy.ma``, which a
    scan does not otherwise load)."""
    s = np.sort(stack, axis=0)
    m = len(s)
    return s[m // 2] if m % 2 else (s[m // 2 - 1] + s[m // 2]) / 2


def edit_scores(thumbs: Sequence[np.ndarray]) -> list[float]:
    """For each 16x16 thumbnail, how far it is from what the others agree on, in grey levels:
    the largest 2x2-cell difference from the others' per-pixel median (an overlay), or a
    global change of contrast scaled to the same units (EDIT_LEVELS per CONTRAST_EDIT)."""
    stack = np.stack([t.astype(np.float64) for t in thumbs])
    spread = stack.reshape(len(thumbs), -1).std(axis=1)
    n = len(thumbs)

    def against(medians: np.ndarray, agreed: np.ndarray) -> np.ndarray:
        # Every member at once (one numpy pass per cluster, not one per member).
        cells = np.abs(stack - medians).reshape(n, 8, 2, 8, 2).mean(axis=(2, 4)).reshape(n, -1).max(axis=1)
        ratio = np.maximum(spread, 1e-3) / np.maximum(agreed, 1e-3)
        contrast = np.abs(np.log(ratio)) / np.log(1 + CONTRAST_EDIT) * EDIT_LEVELS
        return np.maximum(cells, contrast)

    others = against(_leave_one_out_medians(stack), _leave_one_out_medians(spread))
    # Also against the median of all members, its own thumbnail included: with four others of
    # which two are edits in one direction (brighter, more contrast), the others' median is
    # halfway to them and the original passed for edited, so a brightened copy won on quality.
    everyone = against(_median(stack), np.full(n, _median(spread)))
    return [float(x) for x in np.minimum(others, everyone)]


@dataclass(frozen=True)
class Assessment:
    """What one member of a cluster carries compared with its siblings (False/0: unknown)."""

    damaged: bool = False
    grey: bool = False
    enlarged: bool = False
    framed: bool = False
    cropped: bool = False  # a crop of a sibling: part of its picture (cropped())
    edited: bool = False
    blurred: bool = False
    processed: bool = False  # a filtered copy of the picture its same-size siblings agree on
    quality: int = 0  # effective quality 0-100: JPEG quality, capped by the lattice it sits on
    lossless: bool = False  # quality 100 as stored exactly, not a q100 JPEG (which rounds): above it
    reencoded_from: int | None = None  # the coarser quality its pixels went through
    recoloured: bool = False  # the edit is a change of colours (then ``edited`` too)
    bits: int = 8  # bits per sample as stored (16 for a 16-bit scan, 1 for a black-and-white copy)
    transparent: bool = False  # its alpha channel (or colour key) is used: see Traits.transparent
    subsampled: int = 1  # pixels per chroma sample: see chroma_subsampling()


# Formats whose lossy codecs keep continuous tones (no palette): their quality is not read from
# the file. Such a file ranks as a JPEG of UNKNOWN_QUALITY, the low end of what encoders use by
# default (libwebp 75, Pillow's WebP 80): above the q30 and q50 copies it was removed for (a q95
# WebP and a q90 AVIF lost to their q30 JPEGs at 0), below a q75 camera original, which a lossy
# WebP copy of it can only have degraded (ranked "as good as the best JPEG sibling" instead, the
# accuracy benchmark's source or a lossless copy was kept in 1 of 150 clusters instead of 142).
CONTINUOUS_LOSSY = ("WEBP", "AVIF", "HEIF")
UNKNOWN_QUALITY = 60


def unknown_quality(r: ImageRecord) -> bool:
    """True for a lossy WebP/AVIF/HEIF: a continuous-tone file whose quality the file does not say;
    and for a CMYK JPEG (a print conversion): its tables are of its ink channels, which say
    nothing of the picture's quality, and the conversion hides the lattice of the file it was
    made from (a q95 CMYK copy of a q92 camera file was kept as "highest JPEG quality")."""
    t = r.traits
    if t is None:
        return False
    return (t.format in CONTINUOUS_LOSSY and not t.lossless) or (t.format in ("JPEG", "MPO") and t.mode == "CMYK")


def bits_per_sample(mode: str) -> int:
    """Bits per sample of a Pillow mode as stored: 1 for "1", 16 for "I;16*" and for the 16-bit
    colour files Pillow reads as 8-bit ("RGB;16", see hashing), 32 for "I"/"F", else 8 (also
    for an unknown mode, "": an older record)."""
    if mode == "1":
        return 1
    if mode.startswith("I;16") or mode.endswith(";16"):
        return 16
    return 32 if mode in ("I", "F") else 8


def chroma_subsampling(r: ImageRecord, through: int | None) -> int:
    """Pixels per chroma sample, as far as the file tells: a colour JPEG's own (its header); 4
    (4:2:0, what lossy encoders use by default) for a lossy WebP, AVIF, HEIF or CMYK JPEG and
    for a file whose pixels went through a JPEG (``through``: a PNG of a JPEG's decode holds the
    chroma that JPEG kept) and for a grey picture; 1 for the rest (lossless files)."""
    t = r.traits
    if t is None or t.colourfulness < GREY_MAX:
        # A grey picture gains nothing here: ranked as the fewest, it never passes a colour
        # sibling by this rule (as "full"; a grayscale copy of a nearly grey photo, which the colour
        # rule leaves alone, was kept over its 4:2:0 original: accuracy benchmark, seed 1).
        return 4
    if t.subsampling is not None:
        # A copy whose pixels went through a coarser JPEG holds that JPEG's chroma, whatever its
        # own header says (a 4:4:4 q95 re-encode of a 4:2:0 camera file won "more colour samples").
        return t.subsampling if through is None else max(t.subsampling, 4)
    return 4 if unknown_quality(r) or through is not None else 1


def effective_quality(r: ImageRecord) -> tuple[int, int | None]:
    """(quality 0-100, coarser quality its pixels went through or None); 0 = unknown lossy (a
    palette file, a GIF), :data:`UNKNOWN_QUALITY` for a lossy WebP/AVIF/HEIF."""
    t = r.traits
    own = 100 if t and t.lossless else (t.jpeg_quality if t and t.jpeg_quality else 0)
    if unknown_quality(r):
        own = UNKNOWN_QUALITY
    fit = r.quality.lowest_fit if r.quality else None
    if fit is not None and (own == 0 or fit < own):
        return fit, fit
    return own, None


@functools.lru_cache(maxsize=1024)
def _edited(thumbs: tuple[bytes, ...]) -> tuple[bool, ...]:
    """Which members' thumbnails are edits or overlays (remembered: the measuring rounds ask
    again for the same cluster, whose thumbnails come from the hash and do not change)."""
    with_thumb = [i for i, t in enumerate(thumbs) if len(t) == _THUMB_BYTES]
    edited = [False] * len(thumbs)
    if len(with_thumb) >= 3:  # "what the others agree on" needs at least two others
        arrays = [np.frombuffer(thumbs[i], dtype=np.uint8).reshape(16, 16) for i in with_thumb]
        for i, s in zip(with_thumb, edit_scores(arrays)):
            edited[i] = s > EDIT_LEVELS
    return tuple(edited)


_THUMB_BYTES = 256


def _recoloured(members: Sequence[ImageRecord], frames: Sequence[bool]) -> list[bool]:
    """Which members' colours were changed (:data:`COLOUR_EDIT`); a grey member is the grey
    rule's, and a nearly grey picture's colourfulness is too small a number to compare."""
    values = [r.traits.colourfulness if r.traits is not None and not f else 0.0 for r, f in zip(members, frames)]
    at = [i for i, v in enumerate(values) if v >= GREY_MAX]
    out = [False] * len(members)
    if len(at) < 3:  # "what the others agree on" needs at least two others
        return out
    own = np.array([values[i] for i in at])
    agreed = _leave_one_out_medians(own)
    ratio = own / np.maximum(agreed, 1e-9)
    for i, a, x in zip(at, agreed, ratio):
        out[i] = bool(a >= COLOUR_MIN and not 1 / COLOUR_EDIT < x < COLOUR_EDIT)
    return out


def sibling_scales(own: int, sizes: Iterable[int]) -> tuple[float, ...]:
    """The linear scales of a file of ``own`` pixels at which its smaller siblings (``sizes``,
    pixel counts) hold it: the factors the enlargement test tries."""
    return tuple(sorted({min(1.0, (p / own) ** 0.5) for p in sizes if p < own})) if own else ()


def framed(members: Sequence[ImageRecord], edited: Sequence[bool]) -> list[bool]:
    """Which members show a sibling's picture inside an added frame (a border, letterbox bars, a
    caption band, a window): member i is framed by sibling j when i is edited (its thumbnail
    differs from what the others agree on, as any added frame makes it), its content box covers
    clearly less of it than j's covers of j (:data:`FRAME_SHARE`), that box shows j's picture
    far better than i's whole image does (:data:`FRAME_EVIDENCE`, on the finer hashes), and j
    holds at least :data:`SAME_PICTURE` of i's picture pixels.

    Why each condition (measured on the accuracy benchmark, 150 clusters with 6 framed copies
    each): the share alone also flags an original whose plain background (a wall, a studio)
    peels as a band while a brightened or cropped copy's does not; the box-against-whole test
    alone flags an original against an edge crop that cut its plain band away; an added frame
    always changes the thumbnail, an original never did (two seeds: no original or exact copy
    flagged; 1,668 of the 1,675 clustered frames found)."""
    n = len(members)
    if n < _FRAME_MIN_MEMBERS:
        return [False] * n  # too few others to say which one differs: more pixels decide, as before
    shares = np.array([r.traits.content if r.traits else 1.0 for r in members], dtype=np.float64)
    top = shares.max(initial=0.0)
    candidates = [i for i in range(n) if edited[i] and shares[i] < FRAME_SHARE * top and members[i].regions]
    if not candidates:
        return [False] * n  # the common case: no frame to look at
    # The plain and content-box finer hashes as words: each candidate against every member in a
    # few numpy operations (a cluster of thousands of copies must not cost a Python loop per pair).
    fine = [split(r.regions)[1][:2] if r.regions else (0, 0) for r in members]
    bits = max(64, max(h.bit_length() for pair in fine for h in pair))
    whole_words, box_words = index.to_words([f[0] for f in fine], bits), index.to_words([f[1] for f in fine], bits)
    pictures = np.array([r.pixels for r in members], dtype=np.float64) * shares
    usable = np.array([bool(r.regions) for r in members])

    def apart(words: np.ndarray, one: np.ndarray) -> np.ndarray:
        return np.bitwise_count(words ^ one).sum(axis=1, dtype=np.int64)

    out = [False] * n
    for i in candidates:
        whole = apart(whole_words, whole_words[i])
        box = np.minimum(apart(whole_words, box_words[i]), apart(box_words, box_words[i]))
        by = usable & (shares[i] < FRAME_SHARE * shares) & (pictures >= SAME_PICTURE * pictures[i])
        by &= whole - box >= FRAME_EVIDENCE
        by[i] = False
        out[i] = bool(by.any())
    return out


# Bits (of the finer 4x hashes) by which a copy's whole picture (or content box) must match a
# sub-region of a sibling (regions.SUB_REGIONS: the centre 90% and 80%, the four 92% corners)
# better than it matches that sibling's whole picture or content box, and better than the
# sibling's matches a sub-region of it, to be a crop of that sibling (cropped()). Measured: 29
# dogs-1000 photos and their 80% centre crops enlarged back to the photo's size, crops 54-120
# bits, originals -80 and below; on the accuracy benchmark (seed 0, against any sibling) the 10%
# and 20% crops 60 and 90 and more (10th percentile), 5% crops a median of 34, while originals
# reached 30 at the 90th percentile, all of it against turned, framed or edited siblings, which
# therefore count as no whole picture (with them counted, 10 of 150 originals lost).
CROP_EVIDENCE = 32
_CROP_BLOCK = 128  # members compared with every other at a time: (128, n, 2, 6) words a block
_SUBS = len(SUB_REGIONS)


def cropped(members: Sequence[ImageRecord], edited: Sequence[bool], frames: Sequence[bool]) -> list[bool]:
    """Which members are a crop of a sibling: their picture matches a part of the sibling's
    (:data:`CROP_EVIDENCE`) and not the other way round, so they hold only part of it. A zoomed
    copy (a centre crop enlarged back to the original's size, re-saved at a higher JPEG quality)
    was kept over the uncropped camera file: nothing of its size or quality tells it apart.
    The rule ranks members of equal resolution only, so only a member that shares its pixel
    count with a different one is asked; byte or hash twins share one row, so a cluster of
    exact copies costs nothing."""
    n = len(members)
    usable = [i for i, r in enumerate(members) if r.regions and len(r.regions) > 2 * _SUBS + 2]
    if len(usable) < 2:
        return [False] * n
    distinct: dict[Sequence[int], int] = {}  # twins' regions are equal (and hash fast: packed)
    row = np.array([distinct.setdefault(members[i].regions, len(distinct)) for i in usable])
    if len(distinct) < 2:
        return [False] * n
    first = np.zeros(len(distinct), dtype=np.int64)
    first[row[::-1]] = np.arange(len(usable))[::-1]
    words = fine_words([members[usable[k]].regions for k in first])
    # A sibling that holds a copy's picture with more around it counts only when it is no edit
    # or frame itself: a copy turned by a few degrees onto a larger canvas holds the original in
    # its centre, and the original is no crop of it.
    whole_picture = np.ones(len(first), dtype=bool)
    sizes: dict[int, set[int]] = {}
    for k, i in enumerate(usable):
        whole_picture[row[k]] &= not (edited[i] or frames[i])
        sizes.setdefault(members[i].pixels, set()).add(int(row[k]))
    asked = sorted({r for rows in sizes.values() if len(rows) > 1 for r in rows})
    if not asked or not whole_picture.any():
        return [False] * n
    whole, parts = words[:, :2], words[:, 2:]  # (rows, 2, words), (rows, sub-regions, words)
    containers = np.flatnonzero(whole_picture)

    def apart(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.bitwise_count(x ^ y).sum(axis=-1, dtype=np.int64)

    found = np.zeros(len(first), dtype=bool)
    for lo in range(0, len(asked), _CROP_BLOCK):
        own = np.array(asked[lo : lo + _CROP_BLOCK])
        # [a, b]: a's whole against b's sub-regions, b's whole against a's, whole against whole
        into = apart(whole[own][:, None, :, None], parts[containers][None, :, None, :]).min(axis=(2, 3))
        back = apart(parts[own][:, None, :, None], whole[containers][None, :, None, :]).min(axis=(2, 3))
        same = apart(whole[own][:, None, :, None], whole[containers][None, :, None, :]).min(axis=(2, 3))
        found[own] = (np.minimum(same - into, back - into) >= CROP_EVIDENCE).any(axis=1)
    out = [False] * n
    for k, i in enumerate(usable):
        out[i] = bool(found[row[k]])
    return out


Layout = tuple[tuple[bool, ...], list[bool], list[bool], bool, list[bool]]
"""What :func:`assess` finds from the hash pass's traits alone (see :func:`layout`)."""


def layout(members: Sequence[ImageRecord]) -> Layout:
    """The verdicts that depend on the hash pass alone (traits, regions), not on any measurement:
    edited, framed and recoloured per member, whether the cluster has real colour, and cropped
    per member. The measuring rounds ask again about clusters whose members differ only by what
    was measured."""
    edited = _edited(tuple(r.traits.thumb if r.traits else b"" for r in members))
    frames = framed(members, edited)
    recoloured = _recoloured(members, frames)
    # A frame's colour is not the picture's: a grey photo in a coloured border (or on a coloured
    # desktop) must not make its plain copies "grey" next to it.
    # A tint (sepia) is no colour either: a tinted q80 copy won over the lossless grey original.
    colourful = any(real_colour(r.traits) for r, f in zip(members, frames) if not f)
    return edited, frames, recoloured, colourful, cropped(members, edited, frames)


def assess(
    members: Sequence[ImageRecord], known: Layout | None = None, memo: PairMemo | None = None
) -> list[Assessment]:
    """Compare every member with its siblings (same order as ``members``); ``known``: their
    :func:`layout`, when the caller has it; ``memo``: answers of earlier calls to reuse."""
    edited, frames, recoloured, colourful, crops = known if known is not None else layout(members)
    memo = memo if memo is not None else PairMemo()
    out = []
    pixels = [r.pixels for r in members]
    sizes = sorted(set(pixels))
    # Each pixel count's scales once, and the blur verdicts in one pass per tier: the
    # measuring rounds assess every cluster again, and per-member recomputation was quadratic.
    energy = {
        r.path: noise_energy(r.width, r.height, r.traits.jpeg_quality if r.traits else None)
        for r in members
        if r.quality and r.quality.spectrum
    }
    per_size = {own: sibling_scales(own, sizes) for own in sizes}
    blurred = _blurred(members, pixels, frames)
    filtered = processed(members, memo)
    sources = _sibling_sources(members, frames, blurred)
    shapes = sorted({(r.width, r.height) for r, f in zip(members, frames) if not f})  # a frame's pixels are no source
    thin = _thin_framed(members)
    for i, r in enumerate(members):
        spec = r.quality.spectrum if r.quality else ()
        smaller = per_size[pixels[i]]
        q, fit = effective_quality(r)
        out.append(
            Assessment(
                damaged=r.traits is not None and not r.traits.intact,
                # Not a tint either (sepia beside a colour photo, QA pass 15): a generated graphic's
                # few flat colours are each a function of its grey level, a tint by that measure,
                # and 4 of 57 graphic originals lost "colour" to their JPEG copies' noisy chroma.
                grey=colourful and r.traits is not None and r.traits.colourfulness < GREY_MAX,
                enlarged=bool(spec)
                and (
                    any(is_enlargement(spec, f, energy[r.path]) for f in smaller)
                    or any(enlarged_against(spec, theirs, (p / pixels[i]) ** 0.5) for p, theirs in sources(pixels[i]))
                    or _nearest_enlargement(r, shapes, memo)
                ),
                framed=frames[i] or thin[i],
                cropped=crops[i],
                edited=edited[i] or recoloured[i],
                recoloured=recoloured[i],
                blurred=blurred[i],
                processed=filtered[i],
                quality=q,
                lossless=q == 100 and fit is None and r.traits is not None and r.traits.lossless,
                reencoded_from=fit,
                # a 16-bit copy of a JPEG's decode (every sample v * 257) holds 8 bits of picture
                bits=min(bits_per_sample(r.traits.mode) if r.traits is not None else 8, 8 if fit is not None else 32),
                transparent=r.traits is not None and r.traits.transparent,
                subsampled=chroma_subsampling(r, fit),
            )
        )
    return _enlarged_with_the_cleanest(members, pixels, sizes, out)


def _thin_framed(members: Sequence[ImageRecord]) -> list[bool]:
    """Which members have thin plain bars (:func:`thin_bars`: a border, or a bar on some sides)
    that a sibling of their size less the bars has not, where at least as many members hold that sibling's size as hold
    theirs. An original whose own background shows as a plain edge of a few pixels is no
    bordered copy of its crop: the crop's size is held by one file, the original's by its
    re-encodes too (the graphics benchmark lost 2 originals of 148 to a q70 or a watermarked
    copy so); a bordered copy's size is its own alone."""
    count = Counter((r.width, r.height) for r in members)
    out = []
    for r in members:
        top, bottom, left, right = unpack_bars(r.quality.border if r.quality else 0)
        across, down = left + right, top + bottom  # as stored: turned by its EXIF orientation, as shown
        if r.traits is not None and r.traits.orientation in (5, 6, 7, 8):
            across, down = down, across
        out.append(
            across + down > 0
            and any(
                _less_bars(sw, r.width, across) and _less_bars(sh, r.height, down) and n >= count[r.width, r.height]
                for (sw, sh), n in count.items()
            )
        )
    return out


def _less_bars(theirs: int, own: int, bars: int) -> bool:
    """Whether a sibling's side is this one less its bars (a pixel of slack), or the same where
    it has none. Never its own length: with the slack, a 1 px bar on one side matched the file's
    own size, and an original whose top row is plain (1 of 150 sources) was framed by itself."""
    return abs(theirs - (own - bars)) <= 1 and theirs < own if bars else theirs == own


def _nearest_enlargement(r: ImageRecord, shapes: Sequence[tuple[int, int]], memo: PairMemo) -> bool:
    """Whether ``r`` is a nearest-neighbour enlargement, by one factor on both sides, of a sibling
    of one of ``shapes`` (a crop or a squashed copy, of another aspect, is not tried)."""
    repeats = r.quality.repeats if r.quality else b""
    return bool(repeats) and any(
        memo.nearest_enlargement(repeats, (r.width, r.height), (w, h))
        for w, h in shapes
        if w < r.width and h < r.height and abs(r.width * h - r.height * w) <= r.width + r.height
    )


# Siblings (the sharpest by middle band) a member is compared with for blur: enough that noisy
# or sharpened copies cannot crowd out the original, and bounded for clusters of thousands.
_BLUR_REFERENCES = 16


def _blurred(members: Sequence[ImageRecord], pixels: Sequence[int], frames: Sequence[bool]) -> list[bool]:
    """Which measured members are blurred copies of a same-size sibling (:data:`BLUR_RATIO`,
    :data:`BLUR_TOP`); a framed sibling's crop may show its frame, so it is no reference."""
    out = [False] * len(members)
    bands: dict[int, list[tuple[int, float, float]]] = {}  # pixel count -> (member, middle, top)
    for i, r in enumerate(members):
        spec = _spectrum(r)
        if spec:
            bands.setdefault(pixels[i], []).append((i, detail(spec), power_above(spec, 0.5)))
    for own, tier in bands.items():
        # same size within 5% (the tiers of a few pixels' difference compare with each other)
        same = [t for p, ts in bands.items() if own and abs(p / own - 1) < 0.05 for t in ts]
        refs = sorted((t for t in same if not frames[t[0]]), key=lambda t: -t[1])[:_BLUR_REFERENCES]
        if not refs:
            continue
        mid = np.array([t[1] for t in refs])
        top = np.array([t[2] for t in refs])
        for i, m, t in tier:
            out[i] = bool(np.any((m < BLUR_RATIO * mid) & (t < BLUR_TOP * top)))
    return out


def _sibling_sources(
    members: Sequence[ImageRecord], frames: Sequence[bool], blurred: Sequence[bool]
) -> Callable[[int], list[tuple[int, tuple[float, ...]]]]:
    """For a member's pixel count, the (pixel count, spectrum) pairs :func:`enlarged_against`
    compares it with: per size within :data:`SIBLING_SCALES`, the measured, unframed member of
    that size whose top band is the median of theirs (one q30 copy's block edges or one blurred
    copy does not decide), a member blurred beside a sibling of its size left out (compared with a
    blurred copy, a 1.5x enlargement of the camera file held more detail and was kept, QA pass
    34). Sizes are sorted once: a member looks only at its range of them."""
    by_size: dict[int, list[tuple[float, ...]]] = {}
    for r, f, soft in zip(members, frames, blurred):
        if r.quality and r.quality.spectrum and not f and not soft:
            by_size.setdefault(r.pixels, []).append(r.quality.spectrum)
    sizes = sorted(by_size)
    chosen = []
    for p in sizes:
        specs = sorted(by_size[p], key=lambda sp: power_above(sp, 0.95))
        chosen.append((p, specs[(len(specs) - 1) // 2]))
    low, high = (s * s for s in SIBLING_SCALES)

    def within(pixels: int) -> list[tuple[int, tuple[float, ...]]]:
        return chosen[bisect.bisect_left(sizes, low * pixels) : bisect.bisect_right(sizes, high * pixels)]

    return within


def _enlarged_with_the_cleanest(
    members: Sequence[ImageRecord], pixels: Sequence[int], sizes: Sequence[int], verdicts: list[Assessment]
) -> list[Assessment]:
    """A lossy copy is an enlargement when a lossless sibling of its size, whose pixels never
    went through JPEG, is one and holds nothing but rounding noise above the smaller sibling's
    resolution: a lossy encode adds noise there, not detail (a q30 copy's block edges passed
    for detail where the smooth original, a drawing or a render, had none, and the q30 copy
    was kept). Every measured, unedited, unblurred lossless member of the tier must be both.

    Not from a lossy copy: measured on the accuracy benchmark, passing on the verdict of the
    tier's best JPEG kept a smaller copy over the source in 1-3 clusters per seed (a soft
    photo's q92 re-encode is an enlargement by the noise test while its q75 source is not, and
    an EXIF-rotated re-encode's effective quality can stay above its source's)."""
    if not any(v.lossless and _spectrum(r) for r, v in zip(members, verdicts)):
        return verdicts  # the common case: no measured lossless original, nothing to pass on
    out = list(verdicts)
    for own in sizes:
        tier = [i for i, p in enumerate(pixels) if own and abs(p / own - 1) < 0.05]
        lossless = [
            i
            for i in tier
            if verdicts[i].lossless and _spectrum(members[i]) and not (verdicts[i].edited or verdicts[i].blurred)
        ]
        scales = sibling_scales(own, sizes)
        if lossless and all(verdicts[i].enlarged and _bare(members[i], scales) for i in lossless):
            for i in tier:
                if not verdicts[i].lossless and not out[i].enlarged:
                    out[i] = replace(out[i], enlarged=True)
    return out


def _spectrum(r: ImageRecord) -> tuple[float, ...]:
    return r.quality.spectrum if r.quality else ()


def _bare(r: ImageRecord, scales: Iterable[float]) -> bool:
    return any(holds_only_noise(_spectrum(r), f, window_energy(r.width, r.height)) for f in scales)


Assess = Callable[[Sequence[ImageRecord]], list[Assessment]]


class Assessor:
    """:func:`assess`, remembered for the length of one clustering: the measuring rounds and the
    keeper choice ask about the same clusters again (at 20,000 files a warm run assessed every
    cluster twice, 0.8 s). The same records (objects) in any order get the same answers; a
    measured record is a new object, so it is assessed afresh."""

    def __init__(self) -> None:
        self._memo: dict[frozenset[int], dict[int, Assessment]] = {}
        self._held: list[Sequence[ImageRecord]] = []  # keeps the ids in the keys from being reused
        # The traits-only verdicts by the members' traits (objects a measured record shares with
        # the record it replaces): a round's measurement does not change them, and the rounds
        # had found them again 1,221 times for 168 clusters (accuracy benchmark, seed 0).
        self._layouts: dict[tuple[int, ...], Layout] = {}
        self._pairs = PairMemo()

    def __call__(self, members: Sequence[ImageRecord]) -> list[Assessment]:
        key = frozenset(map(id, members))
        known = self._memo.get(key)
        if known is None or len(key) != len(members):
            traits = tuple(id(r.traits) for r in members)
            found = self._layouts.get(traits)
            if found is None:
                found = self._layouts[traits] = layout(members)
            known = {id(r): a for r, a in zip(members, assess(members, found, self._pairs))}
            self._memo[key] = known
            self._held.append(members)
        return [known[id(r)] for r in members]
