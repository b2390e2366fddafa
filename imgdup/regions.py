"""Content boxes and sub-regions: find copies with borders, bars, frames and crops (pure logic).

A copy with a uniform border, a letterbox, a caption bar or a window frame around it holds the
picture in a *content box*; a cropped or slightly rotated copy holds a *sub-region* of the
original. So every image carries, beside its plain hash:

- the hash of its content box (:func:`content_box`: uniform or near-uniform bands of any colour,
  with JPEG noise, peeled from every side, also bands holding a line of text such as a caption);
  equal to the plain hash when nothing was peeled;
- the hashes of a few fixed sub-regions (:data:`SUB_REGIONS`: centre 90/80%, the four 92%
  corners);
- finer hashes of the whole image and of the same boxes (twice the frequencies on each side,
  4x the bits), to confirm a link;
- both sizes of hash of its four halves and an 8 x 8 grid of mean grey levels: a copy with a
  watermark, logo or caption in one corner matches its original on the three quarters that
  avoid it (:func:`occluded_distance`).

:func:`region_distance` is the matching rule: the plain and content-box hashes are *canonical*
and are compared with each other; a sub-region hash is compared only with the other image's
canonical hashes (never with its sub-regions, which would double the chances of a chance match),
and every comparison, plain against plain included, counts only when the finer hashes of the
same two boxes agree too (more hashes per image mean more chances of a chance match; the finer
hash rules them out), and so do their colour layouts where both boxes have one and the finer
hashes agree only loosely (:data:`COLOUR_APART`, :data:`COLOUR_FINE_SHARE`: perceptual hashes
see grey levels only, and flags, icons or graphics that differ only in colour have the same
ones, while a colour filter keeps a copy's grey levels in every detail). Identical plain
hashes need no other confirmation than the colours', unless both images are framed
(:data:`FRAMED_SHARE`): then their content boxes must agree, whatever else does; a framed image
is linked through its content box only (:func:`frames_veto`). With ``--rotations``, a turned
version is held to the colour check, the framed-picture rule, its grey grid and the finer
hashes of its whole image and content box (:func:`rotated_distance`, :data:`TURNED_FINE`).
A corner match (:func:`occluded_distance`) counts as one more comparison.
The distance of a link is the smallest of those comparisons, and it is the number reported as
member distance and diameter and used by the removal rule.

This module never opens files: it works on grey-level arrays handed over by ``hashing``.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import index
from .cluster import UnionFind
from .models import ImageRecord, Match

Box = tuple[float, float, float, float]
"""(left, top, right, bottom) as fractions of the width and height."""
LinkItem = tuple[int, Sequence[int], Sequence[int], bool, bytes]
"""(plain hash, regions, rotation variants, framed, thumbnail): see :func:`link_item`."""

# Sub-regions whose hashes are compared with other images' canonical hashes. Centre crops of
# 10-20% (and small rotations cropped to their inner rectangle, which are centre crops of
# 88-94% plus a few degrees) land within a few percent of one of the centre boxes; an edge crop
# of 5-10% off two adjacent sides within 3-5% of one of the corners.
# Measured on the layout benchmark (seed 0): without the corners, 5% edge crops drop from 100% to
# 58% found; a centre 70% box added nothing the 90% and 80% ones did not find (30% crops chain
# through 20% ones) and cost a ninth of the region hashing.
SUB_REGIONS: tuple[Box, ...] = (
    (0.05, 0.05, 0.95, 0.95),
    (0.10, 0.10, 0.90, 0.90),
    (0.00, 0.00, 0.92, 0.92),
    (0.08, 0.00, 1.00, 0.92),
    (0.00, 0.08, 0.92, 1.00),
    (0.08, 0.08, 1.00, 1.00),
)

# A line (row or column) is *uniform* when this share of its pixels lies within _TOLERANCE grey
# levels of the band's colour, and *text* (a caption's letters on a plain band) when at least
# _TEXT_SHARE does. JPEG noise at quality 30 on a flat band stays within ~10 levels.
_TOLERANCE = 24
_UNIFORM_SHARE = 0.97
_TEXT_SHARE = 0.3
# Busy lines (below _TEXT_SHARE) that a uniform line follows within this many lines are text.
_TEXT_RUN = 6
# Lines of text (between _TEXT_SHARE and _UNIFORM_SHARE) belong to the band only while a uniform
# line follows within this share of the lines (or _TEXT_RUN, if more): a caption's line of text is
# a few percent of an image's height (the accuracy benchmark's: about 7%), while the rows through a
# picture pasted on a plain canvas are as long a run as the picture is tall. Without the bound
# they read as text (the canvas beside the picture is most of each row), the peel ran through the
# picture to the canvas's blank corner, and different pictures on one canvas got one hash.
_TEXT_SPAN = 0.12
# A content box as flat as this (grey-level standard deviation) holds no picture: the image's
# own box is used instead (a blank box's hash is the same in every image; see _TEXT_SPAN).
_FLAT_STD = 4.0
# Never peel more than this share of a side in total: what is left must still be a picture.
_MIN_KEEP = 0.3
_ROUNDS = 6  # frames nest (desktop, window border, title bar, page): peel layer by layer


def _peel(lines: np.ndarray, limit: int) -> int:
    """How many leading lines of ``lines`` (n_lines x length) form a plain band, possibly with text.

    The band's colour is the median of its first line; the band ends after its last uniform
    line, so a caption's text is peeled with the plain rows around it, while a photo whose edge
    is merely busy is not peeled at all.
    """
    if limit <= 0 or len(lines) == 0:
        return 0
    first = lines[0]
    ref = int(np.sort(first)[len(first) // 2])  # the median (np.median costs ~10x more here)
    # Shares as counts / lengths: the same floats as .mean(), without its per-call overhead
    # (most of the cost of a call: 4 calls a photo, ~10 an image with borders).
    if np.count_nonzero(np.abs(first - ref) <= _TOLERANCE) / len(first) < _UNIFORM_SHARE:
        return 0  # the common case, a photo's busy edge: decided on one line
    close = np.count_nonzero(np.abs(lines[:limit] - ref) <= _TOLERANCE, axis=1) / lines.shape[1]
    # The band ends before its first busy line, unless a uniform line follows within _TEXT_RUN
    # lines: on the reduced image a caption's line of text is a few rows of mostly ink between
    # plain rows, which ended the band in the middle of its text (a 40 px meme band: 3 of 10 rows).
    plain = np.flatnonzero(close >= _UNIFORM_SHARE)
    busy = np.flatnonzero(close < _UNIFORM_SHARE)
    after = plain[np.minimum(np.searchsorted(plain, busy), len(plain) - 1)]  # next plain line (or the last)
    run = np.where(close[busy] < _TEXT_SHARE, _TEXT_RUN, max(_TEXT_RUN, round(_TEXT_SPAN * len(lines))))
    ends = busy[(after < busy) | (after - busy > run)]
    return int(plain[plain < ends[0]][-1] if len(ends) else plain[-1]) + 1


def content_box(grey: np.ndarray, min_keep: float = _MIN_KEEP) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) in pixels of what remains after peeling plain bands off every side.

    ``grey`` is a 2-D uint8 array. Returns the whole image when nothing is peeled. ``min_keep``:
    the least share of each side left (:data:`_MIN_KEEP`; a framed picture's own box is peeled
    further, see ``hashing``'s framed-box hashes).
    """
    grey = grey.astype(np.int16)  # differences below need signs
    h, w = grey.shape
    left, top, right, bottom = _peeled(grey, min_keep)
    if (left, top, right, bottom) != (0, 0, w, h) and float(grey[top:bottom, left:right].std()) < _FLAT_STD:
        return 0, 0, w, h
    return left, top, right, bottom


def peeled_to_canvas(grey: np.ndarray, min_keep: float = _MIN_KEEP) -> bool:
    """Whether peeling ``grey`` (2-D uint8) ends in a flat box of the canvas's own colour (the
    median of its outer lines): the marks it peeled through were all there was, sparse lines on
    a blank page (a line chart), and no picture sits in the frame. A flat shape of another colour
    (a filled square on a plain background) is a picture: not such an end."""
    g = grey.astype(np.int16)
    h, w = g.shape
    left, top, right, bottom = _peeled(g, min_keep)
    box = g[top:bottom, left:right]
    if (left, top, right, bottom) == (0, 0, w, h) or float(box.std()) >= _FLAT_STD:
        return False
    border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
    return abs(float(box.mean()) - float(np.sort(border)[len(border) // 2])) <= _TOLERANCE


def _peeled(grey: np.ndarray, min_keep: float) -> tuple[int, int, int, int]:
    """:func:`content_box`'s peel alone (``grey`` as int16), before its flat-box check."""
    h, w = grey.shape
    left, top, right, bottom = 0, 0, w, h
    min_w, min_h = max(1, int(w * min_keep)), max(1, int(h * min_keep))
    for _ in range(_ROUNDS):
        before = (left, top, right, bottom)
        area = grey[top:bottom, left:right]
        top += _peel(area, bottom - top - min_h)
        area = grey[top:bottom, left:right]
        bottom -= _peel(area[::-1], bottom - top - min_h)
        area = grey[top:bottom, left:right]
        left += _peel(area.T, right - left - min_w)
        area = grey[top:bottom, left:right]
        right -= _peel(area.T[::-1], right - left - min_w)
        if (left, top, right, bottom) == before:
            break
    return left, top, right, bottom


def small_marks_on_canvas(grey: np.ndarray) -> bool:
    """Whether ``grey`` (2-D uint8) is a plain canvas whose marks, everything that stands out of
    its colour, fit in a box under :data:`FRAMED_SHARE` of it: a small picture or a few words on
    a blank page. Its hashes are the canvas's, whatever the marks (different photos at 5-11% of
    one canvas's width were 0 bits apart), so such an image is compared as exact copies only.
    Asked only when :func:`content_box` found no box: when it does, the box is compared instead."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]]).astype(np.int16)
    ref = int(np.sort(border)[len(border) // 2])
    if np.count_nonzero(np.abs(border - ref) <= _TOLERANCE) < _UNIFORM_SHARE * len(border):
        return False  # a photo's edge: decided on the border alone
    marks = np.abs(grey.astype(np.int16) - ref) > _TOLERANCE
    rows, cols = np.flatnonzero(marks.any(axis=1)), np.flatnonzero(marks.any(axis=0))
    if not len(rows):
        return False  # blank: is_low_information's to decide (a faint picture may be below the tolerance)
    area = (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1)
    return bool(area < FRAMED_SHARE * grey.size)


def content_share(box: tuple[int, int, int, int], size: tuple[int, int]) -> float:
    """The share of an image of ``size`` (width, height) that its content ``box`` covers, to 4
    places: 1.0 when nothing was peeled."""
    left, top, right, bottom = box
    width, height = size
    return round((right - left) * (bottom - top) / (width * height), 4) if width and height else 1.0


def sub_boxes(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """:data:`SUB_REGIONS` in pixels of a ``width`` x ``height`` image."""
    return [
        (round(x0 * width), round(y0 * height), round(x1 * width), round(y1 * height)) for x0, y0, x1, y1 in SUB_REGIONS
    ]


# A link counts only when the finer hashes (4x the bits) of the same two boxes also agree: within
# this share of their bits. Measured on the layout benchmark (seed 0, T=8): every wrong link the
# coarse hashes made had finer hashes >= 66 of 256 bits apart (two screenshots in the same window);
# 0.25 (64 bits) kept all of them out and lost no expected copy; 0.2 lost 15% of the 5% edge crops
# and a third of the 5-degree rotations; 0.3 let 80 wrong (hard) pairs in.
FINE_SHARE = 0.25

_N = 1 + len(SUB_REGIONS)  # content box + sub-regions


def split(regions: Sequence[int]) -> tuple[Sequence[int], Sequence[int]]:
    """``regions`` -> (coarse, fine): the content-box and sub-region hashes at the scan's size,
    and the plain, content-box and sub-region hashes at twice the side."""
    return regions[:_N], regions[_N : 2 * _N + 1]


def colour_layout(regions: Sequence[int]) -> Sequence[int]:
    """``regions`` -> the colour layouts of the whole image, the content box and the sub-regions
    (:func:`imgdup.hashing.colour_layouts`; all 0 for a grey image, or records without them)."""
    start = 2 * _N + 1
    if len(regions) < start + _N + 1:
        return (0,) * (_N + 1)
    return regions[start : start + _N + 1]


def whole_colour(regions: Sequence[int]) -> int:
    """``colour_layout(regions)[0]``, the whole image's colour layout, read alone (the search's
    node of every record asks for it)."""
    start = 2 * _N + 1
    if len(regions) < start + _N + 1:
        return 0
    if type(regions) is PackedRegions:
        at = _starts(regions.coarse, regions.fine)[start]
        return int.from_bytes(regions.blob[at : at + 32], "big")
    return regions[start]


# A copy with a watermark, a logo or a caption in one corner differs from its original in one
# quadrant only: the two halves that avoid that corner (one of top/bottom, one of left/right,
# together three quarters of the image) are the same picture in both. Regions carry both sizes
# of hash of the four halves (:data:`HALVES`) and an 8 x 8 grid of mean grey levels; two images
# are linked by :func:`occluded_distance` when a horizontal and a vertical half agree closely
# (finer hashes within :data:`OCCLUDED_FINE_SHARE`, which is half of :data:`FINE_SHARE`: the
# same box in both images, no crop or shift to allow for) and, in the quadrant they leave out,
# 1 to :data:`OCCLUDED_CELLS` of its 16 grid cells differ by more than :data:`OCCLUDED_LEVELS`
# grey levels (after the mean offset of the other 48) and none of the other 48 does: a mark of a
# few percent of the image, never a different object filling a quadrant, and never a copy that
# differs all over (a blend, a filter: the other comparisons decide those; this one would only
# lower their distance). Measured on 150 dogs-1000 photos with the
# benchmark's watermark (30% x 10% of the image, q92 and q60): the clean halves' finer hashes came
# 0-4 bits of 256 apart, while no half of any of the 11,175 pairs of different photos came
# within 8 coarse and 64 finer bits. The mark changes 3 cells of the grid, and up to 5 where its
# dark outline crosses into the next row of cells (2 of the 600 watermarked copies of the
# accuracy benchmark's two seeds; with 3 they were lost); over a light area it may change none
# (3 of 200 copies: the other comparisons found them). A different photo pasted into one
# corner of the same picture (60 pairs per size): linked by this rule at 20, 25, 30 and 35% of
# the side in 60, 58, 8 and 0 pairs (with 3 cells 35, 30, 0, 0; with 6 cells 60, 60, 20, 5); the
# rule before it already linked 51, 39 and 22 of 60 such pairs at 20, 25 and 30% of the side.
HALVES: tuple[Box, ...] = ((0.0, 0.0, 1.0, 0.5), (0.0, 0.5, 1.0, 1.0), (0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 1.0, 1.0))
"""Top, bottom, left and right halves."""
OCCLUDED_FINE_SHARE = 0.125
OCCLUDED_CELLS = 5
OCCLUDED_LEVELS = 8
# A half this flat (grey-level standard deviation of what its hashes see: the frequencies they
# are made of) holds no picture to compare: its hashes are stored as 0 and never match (blank
# halves are alike in every image, and one value shared by many images would make every pair
# of them a candidate).
HALF_FLAT_STD = 4.0
_TAIL = 2 * len(HALVES) + 1  # coarse and finer hashes of the halves, the grey grid


def half_boxes(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """:data:`HALVES` in pixels of a ``width`` x ``height`` image."""
    return [(round(x0 * width), round(y0 * height), round(x1 * width), round(y1 * height)) for x0, y0, x1, y1 in HALVES]


def occlusion_tail(
    coarse: Sequence[int], fine: Sequence[int], deviation: Sequence[float] | np.ndarray, grid: np.ndarray
) -> tuple[int, ...]:
    """What the regions carry for :func:`occluded_distance`: the halves' hashes ``coarse`` (0
    where the half is flat: its ``deviation``, the grey-level standard deviation of what its
    hash sees, under :data:`HALF_FLAT_STD`), then their finer hashes ``fine``, then the 8 x 8
    ``grid`` of mean grey levels, as 64 bytes in one int."""
    flat = [float(d) < HALF_FLAT_STD for d in deviation]
    cells = np.clip(np.rint(grid), 0, 255).astype(np.uint8)
    return (
        *(0 if f else v for f, v in zip(flat, coarse)),
        *(0 if f else v for f, v in zip(flat, fine)),
        int.from_bytes(cells.tobytes(), "big"),
    )


def occlusion_parts(regions: Sequence[int]) -> tuple[Sequence[int], Sequence[int], int] | None:
    """``regions`` -> (the halves' hashes, their finer hashes, the grey grid); None for records
    made before they were (an older cache) or without regions."""
    start = 3 * _N + 2
    if len(regions) < start + _TAIL:
        return None
    return regions[start : start + 4], regions[start + 4 : start + 8], regions[start + 8]


# With --rotations the regions end with finer hashes (4x the bits) of the whole image's 7 turned
# versions and then of its content box's (hashing: derived from the same frequencies, no new
# decode or product), and a turned version is held to them as a plain comparison is held to the
# finer hashes of its two boxes: both must agree within FINE_SHARE, unless the two hashes are
# identical (a flat graphic's finer bits are mostly the signs of near-zero frequencies: a flag's
# quarter-turned copy came 112-132 of 256 bits apart). The coarse hash, the 8 x 8 grey grid and
# the 4 x 4 colour layout see a plain canvas or a frame that fills most of the image more than
# the picture in it: different dogs-1000 photos at 45% of one white page's side were linked
# through a turned version 2-8 bits apart with grids and layouts agreeing (QA pass 27: 30 photos,
# 4 removed; cut as ellipses, 10), and so were portrait photos in one 16:9 black frame and
# photos in a striped frame. The finer hashes of the content box (the picture itself, turned)
# tell them apart; a copy's agree (a quarter-turned and a mirrored page: 0-10 of 256 bits apart
# whole, 0-40 in the box).
TURNED_FINE = 14
_TURNED_START = 3 * _N + 2 + _TAIL


_REGION_VALUES = _TURNED_START + TURNED_FINE  # the longest layout (with --rotations)


def _value_bytes(p: int, coarse: int, fine: int) -> int:
    """Bytes of position ``p`` of the layout, given a coarse and a finer hash's bytes."""
    if p < _N or 3 * _N + 2 <= p < 3 * _N + 6:
        return coarse  # content box and sub-regions; the halves
    if 2 * _N + 1 <= p < 3 * _N + 2:
        return 32  # colour layouts: 32 signed bytes
    if p == _TURNED_START - 1:
        return 64  # the 8 x 8 grey grid
    return fine


def _hash_bytes(bits: int) -> tuple[int, int]:
    """Bytes of a coarse hash and of a finer one (4x the bits), whole 64-bit words as to_words."""
    return 8 * max(1, (bits + 63) // 64), 8 * max(1, (4 * bits + 63) // 64)


@functools.lru_cache(maxsize=16)
def _starts(coarse: int, fine: int) -> tuple[int, ...]:
    """Where each position of the longest layout starts in a packed buffer, then its end."""
    out = [0]
    for p in range(_REGION_VALUES):
        out.append(out[-1] + _value_bytes(p, coarse, fine))
    return tuple(out)


@functools.lru_cache(maxsize=16)
def _runs(coarse: int, fine: int) -> tuple[tuple[int, int, int, int], ...]:
    """The longest layout as runs of positions of one width: (first, end, bytes each, offset)."""
    starts = _starts(coarse, fine)
    out: list[list[int]] = []
    for p in range(_REGION_VALUES):
        width = starts[p + 1] - starts[p]
        if out and out[-1][2] == width:
            out[-1][1] = p + 1
        else:
            out.append([p, p + 1, width, starts[p]])
    return tuple((a, b, w, at) for a, b, w, at in out)


class PackedRegions(Sequence[int]):
    """A record's regions as one buffer of big-endian values, each at its position's fixed width
    (what :func:`pack_regions` makes; reads like the tuple it stands for).

    A cached reference of 20,000 files turned 640,000 stored values into Python ints and back
    into arrays on every incremental run (1.3 s of the reading thread); packed, the cache hands
    the buffer over as it is and :class:`LinkHashes` reads all of them in one ``frombuffer``."""

    __slots__ = ("_hash", "blob", "coarse", "fine", "length")

    def __init__(self, blob: bytes, length: int, coarse: int, fine: int) -> None:
        # (a stored header of 0-byte hashes would make a layout of no values: none is written)
        if length > _REGION_VALUES or coarse < 8 or fine < 8 or len(blob) != _starts(coarse, fine)[length]:
            raise ValueError("packed regions of another length than their layout's")
        self.blob, self.length, self.coarse, self.fine = blob, length, coarse, fine
        self._hash = hash((length, blob))  # kept: a search looks each record's item up several times

    def __len__(self) -> int:
        return self.length

    def _values(self, start: int, stop: int) -> tuple[int, ...]:
        """Positions ``start`` to ``stop``: the 64-bit ones a run in one call (the search reads
        the coarse hashes of every record), the others one by one."""
        out: list[int] = []
        blob = self.blob
        for first, end, width, offset in _runs(self.coarse, self.fine):
            a, b = max(first, start), min(end, stop)
            if a < b:
                at = offset + (a - first) * width
                if width == 8:
                    out += struct.unpack_from(f">{b - a}Q", blob, at)
                else:
                    out += [int.from_bytes(blob[x : x + width], "big") for x in range(at, at + (b - a) * width, width)]
        return tuple(out)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            start, stop, step = key.indices(self.length)
            return self._values(start, stop) if step == 1 else self._values(0, self.length)[key]
        p = key.__index__()
        if not -self.length <= p < self.length:
            raise IndexError("regions index out of range")
        p %= self.length
        return self._values(p, p + 1)[0]

    def __iter__(self) -> Any:
        return iter(self._values(0, self.length))

    def __eq__(self, other: object) -> bool:
        # Equal to packed regions alone, as a list is never equal to a tuple: its hash is then
        # the buffer's, which Python keeps, where a tuple's would decode every value each time.
        if not isinstance(other, PackedRegions):
            return NotImplemented
        return (self.length, self.coarse, self.fine, self.blob) == (other.length, other.coarse, other.fine, other.blob)

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"PackedRegions({tuple(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return PackedRegions, (self.blob, self.length, self.coarse, self.fine)


def fine_words(regions: Sequence[Sequence[int]]) -> np.ndarray:
    """The finer hashes of the whole image, the content box and the sub-regions of many records,
    as an (n, 2 + sub-regions, words) uint64 array; each record must hold them (``len(r) >
    2 * _N``). Packed regions of one width are read from their buffers in one ``frombuffer``:
    turning them into ints first cost the keep policy's crop test more than its comparisons."""
    packed = [r for r in regions if isinstance(r, PackedRegions)]
    if len(packed) == len(regions) and len({(r.coarse, r.fine) for r in packed}) == 1:
        coarse, fine = packed[0].coarse, packed[0].fine
        start, end = _N * coarse, _N * coarse + (_N + 1) * fine  # positions 0.._N-1 are coarse
        raw = b"".join(r.blob[start:end] for r in packed)
        return np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(len(regions), _N + 1, fine // 8)
    values = [split(r)[1] for r in regions]
    bits = max(64, max((h.bit_length() for v in values for h in v), default=64))
    return np.stack([index.to_words([v[k] for v in values], bits) for k in range(_N + 1)], axis=1)


def pack_regions(values: Sequence[int], bits: int) -> Sequence[int]:
    """``values`` (a record's regions, for hashes of ``bits`` bits) as :class:`PackedRegions`;
    as they are when they fit no layout (empty, too long, or a value wider than its position)."""
    if not values or len(values) > _REGION_VALUES:
        return values
    try:
        return _packed(values, bits)
    except OverflowError:
        return values


def _packed(values: Sequence[int], bits: int, *, cut: bool = False) -> PackedRegions:
    """``values`` packed at their positions' widths (OverflowError for one too wide), or with
    ``cut`` each cut to its width's low bits, as to_words reads a value too wide."""
    coarse, fine = _hash_bytes(bits)
    widths = [_value_bytes(p, coarse, fine) for p in range(len(values))]
    if cut:
        values = [v & ((1 << (8 * w)) - 1) for v, w in zip(values, widths)]
    return PackedRegions(b"".join(v.to_bytes(w, "big") for v, w in zip(values, widths)), len(values), coarse, fine)


_COARSE_64 = struct.Struct(f">{_N}Q")
_HALVES_64 = struct.Struct(">2Q")


def coarse_hashes(regions: Sequence[int]) -> Sequence[int]:
    """``split(regions)[0]``, the content-box and sub-region hashes, read alone: the search
    reads them for every record, so 64-bit ones come out of a packed buffer in one call."""
    if type(regions) is PackedRegions and regions.coarse == 8 and regions.length >= _N:
        return _COARSE_64.unpack_from(regions.blob)
    return regions[:_N]


def top_bottom_hashes(regions: Sequence[int]) -> Sequence[int] | None:
    """``occlusion_parts(regions)[0][:2]``, the top and bottom halves' hashes, read alone (the
    search's candidates of :func:`occluded_distance`); None without halves."""
    if len(regions) < 3 * _N + 2 + _TAIL:
        return None
    if type(regions) is PackedRegions and regions.coarse == 8:
        return _HALVES_64.unpack_from(regions.blob, _starts(8, regions.fine)[3 * _N + 2])
    return regions[3 * _N + 2 : 3 * _N + 4]


# The content box is asked only when the whole images' finer hashes are not this close (a share
# of their bits): the peel is not turned with the picture (it takes the top before the bottom and
# the left before the right, up to 70% of a side, and a dark or plain edge is near its uniformity
# limit in a re-encode), so a photo and its turned copy can peel different edges and their boxes
# hold different parts of it (dogs-1000, QA pass 30: 3 of 420 lone turned copies, turned 180 and
# 270 degrees and a downscaled flip, were 2 bits apart turned, 12-22 of 256 whole and 74-116 in
# the box, and were missed). Different photos on one canvas or in one frame, which the box tells
# apart, were 50-82 bits apart whole (QA pass 29).
TURNED_SAME_SHARE = 0.125


def _turned_apart(turned: Sequence[int], fine: Sequence[int], k: int, bits: int) -> bool:
    """Whether turned version ``k``'s finer hashes (``turned``: :func:`turned_fine`) disagree
    with the other image's (``fine``: :func:`split`'s, whole image and content box)."""
    whole = (turned[k] ^ fine[0]).bit_count()
    if whole <= TURNED_SAME_SHARE * 4 * bits:
        return False
    return max(whole, (turned[7 + k] ^ fine[1]).bit_count()) > FINE_SHARE * 4 * bits


def turned_fine(regions: Sequence[int]) -> Sequence[int] | None:
    """``regions`` -> the finer hashes of the whole image's 7 rotated or mirrored versions
    (``hashing.DIHEDRAL``'s order), then of its content box's (the whole image's again when
    nothing was peeled), which a scan with ``--rotations`` appends to confirm a turned link
    (:func:`rotated_distance`); None for records without them."""
    if len(regions) < _TURNED_START + TURNED_FINE:
        return None
    return regions[_TURNED_START : _TURNED_START + TURNED_FINE]


def _quadrant_masks() -> np.ndarray:
    """For each (horizontal half, vertical half) that :func:`occluded_distance` tries, the 8 x 8
    grid cells of the quadrant the two leave out, as (4, 64) booleans."""
    masks = np.zeros((4, 8, 8), dtype=bool)
    for k, (h, v) in enumerate(_COMBOS):
        rows = slice(4, 8) if h == 0 else slice(0, 4)  # top half clean: the bottom quadrant row
        cols = slice(4, 8) if v == 2 else slice(0, 4)
        masks[k, rows, cols] = True
    return masks.reshape(4, 64)


_COMBOS = ((0, 2), (0, 3), (1, 2), (1, 3))  # (top or bottom, left or right)
_QUADRANTS = _quadrant_masks()


def _grid(value: int) -> np.ndarray:
    return np.frombuffer(value.to_bytes(64, "big"), dtype=np.uint8)


def _one_corner_differs(diff: np.ndarray) -> np.ndarray:
    """(..., 64) grid differences -> (..., 4): per combination of :data:`_COMBOS`, whether the
    two images differ there and only there: once the mean offset of the other 48 cells is taken
    off, 1 to :data:`OCCLUDED_CELLS` cells of the left-out quadrant and none of the others differ
    by more than :data:`OCCLUDED_LEVELS` (integers throughout: one pair or many, the same
    answer). Copies that differ all over (a blend, a filter) are left to the other comparisons:
    this one would only lower their distance."""
    diff = diff.astype(np.int32)
    out = []
    for mask in _QUADRANTS:
        offset = diff[..., ~mask].sum(axis=-1, keepdims=True)  # 48 x the mean offset
        apart = np.abs(48 * diff - offset) > 48 * OCCLUDED_LEVELS
        inside = np.count_nonzero(apart[..., mask], axis=-1)
        out.append((inside >= 1) & (inside <= OCCLUDED_CELLS) & ~apart[..., ~mask].any(axis=-1))
    return np.stack(out, axis=-1)


def occluded_distance(a_regions: Sequence[int], b_regions: Sequence[int], *, bits: int) -> int:
    """Bits between two images that differ in one corner only (see :data:`HALVES`): the larger
    of the two clean halves' distances, the least over the four corners; ``bits`` (nothing in
    common) when no corner qualifies, when either image lacks the halves, or when both have
    colour and their whole-image colour layouts differ (:func:`colours_differ`)."""
    pa, pb = occlusion_parts(a_regions), occlusion_parts(b_regions)
    if pa is None or pb is None:
        return bits
    (ac, af, ag), (bc, bf, bg) = pa, pb
    fine_max = OCCLUDED_FINE_SHARE * 4 * bits
    ok = [bool(x and y) and (x ^ y).bit_count() <= fine_max for x, y in zip(af, bf)]
    corner = _one_corner_differs(_grid(ag).astype(np.int32) - _grid(bg))
    best = bits
    for k, (h, v) in enumerate(_COMBOS):
        if ok[h] and ok[v] and corner[k] and ac[h] and bc[h] and ac[v] and bc[v]:
            best = min(best, max((ac[h] ^ bc[h]).bit_count(), (ac[v] ^ bc[v]).bit_count()))
    if best < bits:
        (ua, ra), (ub, rb) = colour_grids(colour_layout(a_regions)[:1]), colour_grids(colour_layout(b_regions)[:1])
        if colours_differ(ua[0], ra[0], ub[0], rb[0]):
            return bits
    return best


# Two boxes are compared by colour when both have some: a root-mean-square chroma of their
# layout at least COLOUR_RMS (of ~0-180; a grayscale copy has ~0, a faded photo a few). Then
# they must agree in where their colours lie: the layouts are scaled to unit RMS (a brighter or
# more saturated copy has the same one), and the boxes differ when COLOUR_CELLS of the 16 cells
# or more are over COLOUR_APART apart (distance of their (Cb, Cr) vectors; ~1.4 = unrelated).
# A quarter of the cells: the flags of Belgium and Romania differ in one stripe of three, and
# a crop or a small rotation moves an edge row or column of cells. Measured on the links of the
# accuracy benchmark (seed 0; simulated from its files) and of the same benchmark built from
# 1,500 generated flat graphics: the graphics' wrongly merged pairs fell from ~600,000 to
# ~13,000 (recall 0.921 -> 0.917: colour borders, screenshots, letterboxes, captions); photos
# lost 3 of 7,350 copies (2 screenshots, hard; 1 in a 20% colour border).
COLOUR_RMS = 8.0
COLOUR_APART = 0.7
COLOUR_CELLS = 4
# Colours are asked only where the finer hashes agree less closely than this share of their
# bits: a colour filter (a warm or cool cast, a hue shift, sepia) keeps the grey levels, and
# the finer hashes of 80 such copies of 20 dogs-1000 photos came 0-14 bits of 256 apart (one 28),
# while the flags that differ in a stripe's colour are 32-64 apart (their grey levels differ a
# little too). Without the bound a cool cast lost 12 of 20 copies, a 56-degree hue shift 15.
COLOUR_FINE_SHARE = 1 / 16


def colour_grids(layouts: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Colour layouts -> (their grids (k, 16, 2) as int8, their RMS chroma (k,) as float32):
    kept small, a scan holds them for every image of a candidate pair (256 bytes each)."""
    return colour_grids_of(np.frombuffer(b"".join(v.to_bytes(32, "big") for v in layouts), dtype=np.int8))


def colour_grids_of(layouts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`colour_grids` of layouts given as their bytes, int8 of any shape ending in 32."""
    grids = layouts.reshape(-1, 16, 2)
    squares = np.square(grids, dtype=np.int16).reshape(len(grids), -1).sum(axis=-1, dtype=np.int32)
    return grids, np.sqrt(squares / np.float32(16)).astype(np.float32)


def colours_differ(grid_a: np.ndarray, rms_a: np.ndarray, grid_b: np.ndarray, rms_b: np.ndarray) -> np.ndarray:
    """Whether boxes with these :func:`colour_grids` both have colour and disagree on where it lies
    (elementwise over any leading shape: the same numbers for one pair as for many)."""
    unit_a = grid_a.astype(np.float32) / np.maximum(rms_a, np.float32(1.0))[..., None, None]
    unit_b = grid_b.astype(np.float32) / np.maximum(rms_b, np.float32(1.0))[..., None, None]
    d = unit_a - unit_b
    apart = np.count_nonzero((d * d).sum(axis=-1) > np.float32(COLOUR_APART**2), axis=-1)
    return (rms_a >= COLOUR_RMS) & (rms_b >= COLOUR_RMS) & (apart >= COLOUR_CELLS)


# A picture that covers less than this share of its image (content box area / image area) sits
# in a frame that is most of every hash of the image: in a white frame 1.5x as wide as the
# picture (share 0.06), or a third of the side (0.11), different pictures' plain hashes came
# 0-2 bits apart and their finer whole-image hashes agreed too. Two such images are the same
# picture only if their content boxes are. Measured on the accuracy benchmark (two seeds, 49
# kinds of copies): no pair of copies linked under the plain rule has both shares under 0.25;
# vetoing every pair of peeled images whose boxes disagree (any share) cost 1.3-1.5% recall.
FRAMED_SHARE = 0.2


def is_framed(r: ImageRecord) -> bool:
    """Whether the record's picture is a small part of a frame (:data:`FRAMED_SHARE`)."""
    return bool(r.regions) and r.traits is not None and r.traits.content < FRAMED_SHARE


def link_item(r: ImageRecord) -> LinkItem:
    """What the link rule compares of an image: plain hash, regions, rotation variants,
    whether its picture is a small part of a frame (:func:`is_framed`), and its 16 x 16 grey
    thumbnail (``b""`` when it has none; see :func:`shared_backdrop`)."""
    return r.hash, r.regions, r.variants, is_framed(r), r.traits.thumb if r.traits is not None else b""


# Different pictures on one backdrop that the content box cannot peel (a studio sweep's
# gradient, an application window with text down its side) are mostly backdrop: their hashes,
# the finer ones included, are the backdrop's (different dogs-1000 photos at 15-30% of such
# backdrops came 0-8 bits apart, finer hashes 20-68 of 256: a copy's range). Their 16 x 16
# thumbnails show it: after a linear fit of one on the other (b ~ alpha a + beta over the cells
# within BACKDROP_LEVELS of the median offset) the cells that differ form a block off every edge,
# and the ring of cells around the block is backdrop in both (a quadratic surface fits it within
# BACKDROP_SMOOTH levels RMS once up to a quarter of it, a picture's edge, is left out). Such a
# pair is two pictures on a shared backdrop when, in the block, each image departs from its
# backdrop (BACKDROP_DEPARTS levels: a copy with a mark on a plain area has the backdrop there),
# the fit's slope is 1 within BACKDROP_SCALE (one backdrop, not scaled: a 5-20% crop of a picture
# on a gradient scales the gradient, a slope of 0.79-0.96; different pictures 0.992-1.008),
# at least BACKDROP_DENSE of its cells differ, one by BACKDROP_APART levels or more, and the two
# differ by at least BACKDROP_RATIO of what they depart (RMS over the block). Measured on the
# negatives benchmark (seed 0: 435 linked pairs of different photos on a gradient or in a viewer
# window) and on every link of the accuracy benchmark (seed 0: 140,101 pairs of copies; 559 of
# them have such a block on a smooth ring, the resampling noise at a subject's edges over a plain
# background): the three bounds together part 416 of the 435 and none of the copies, whose block
# is sparse (median 16% of its cells differ, the pictures' 86%), faint (a median 12 levels at
# most, the pictures' 55) and small beside the picture (a median 0.06 of its departure, the
# pictures' 0.35). Two kinds of copy pass those bounds, and are let through: a mark (a sticker,
# a logo) of one or two cells, so the block must span BACKDROP_SPAN cells each way (a picture at
# 15% of a window's width spans 3); and a crop or shift of a picture on a backdrop that does not
# scale with it (a vertical sweep), which moves the picture's outline by under a cell, so that
# most of a large picture's cells differ: some small crop, shift or scaling of one thumbnail
# (:func:`_warps`) then correlates with the other over the block by BACKDROP_MOVED or more
# (copies on a sweep at 20-80% of its side 0.90-0.99), BACKDROP_MOVED_SMALL for a block under
# BACKDROP_SMALL cells, where few cells leave different pictures as alike (different photos at
# 15-30%: median 0.72-0.86, 5% of them 0.95 or more).
BACKDROP_LEVELS = 4
BACKDROP_SMOOTH = 4.0
BACKDROP_DEPARTS = 16
BACKDROP_DENSE = 0.5
BACKDROP_APART = 28
BACKDROP_RATIO = 0.15
BACKDROP_SCALE = 0.02
_THUMB_SIDE = 16
_LAST = _THUMB_SIDE - 1  # the last row or column of cells
_CELL_Y, _CELL_X = np.divmod(np.arange(_THUMB_SIDE * _THUMB_SIDE), _THUMB_SIDE)
_SURFACE = np.stack(
    [np.ones(_THUMB_SIDE**2), _CELL_X / _LAST, _CELL_Y / _LAST, (_CELL_X / _LAST) ** 2, (_CELL_Y / _LAST) ** 2,
     _CELL_X * _CELL_Y / _LAST**2],
    axis=1,
)  # fmt: skip
"""A quadratic surface over the thumbnail's cells: constant, x, y, x², y², xy."""
_EDGE = np.flatnonzero((_CELL_X % _LAST == 0) | (_CELL_Y % _LAST == 0))  # the thumbnail's outer cells
BACKDROP_SPAN = 3
BACKDROP_MOVED = 0.9
BACKDROP_MOVED_SMALL = 0.95
BACKDROP_SMALL = 30
_WARP_SCALES = (0.85, 0.9, 0.95, 1.0, 1 / 0.95, 1 / 0.9, 1 / 0.85)
_WARP_SHIFT = 1.0


def _warps() -> tuple[np.ndarray, np.ndarray]:
    """Bilinear resampling of the thumbnail under small crops, shifts and scalings (a crop of up
    to 15%, or the picture moved by up to a cell): (w, 256, 4) cells to read and their weights."""
    centre, last = _LAST / 2, _LAST
    cells, weights = [], []
    shifts = np.arange(-_WARP_SHIFT, _WARP_SHIFT + 0.01, 0.5)
    for scale in _WARP_SCALES:
        for dy in shifts:
            for dx in shifts:
                x = np.clip(centre + scale * (_CELL_X - centre) + dx, 0, last)
                y = np.clip(centre + scale * (_CELL_Y - centre) + dy, 0, last)
                x0, y0 = np.minimum(np.floor(x), last - 1).astype(int), np.minimum(np.floor(y), last - 1).astype(int)
                fx, fy = x - x0, y - y0
                at = y0 * _THUMB_SIDE + x0
                cells.append(np.stack([at, at + 1, at + _THUMB_SIDE, at + _THUMB_SIDE + 1], axis=1))
                weights.append(np.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], axis=1))
    return np.array(cells), np.array(weights)


_WARP_CELLS, _WARP_WEIGHTS = _warps()


def _moved(a: np.ndarray, b: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """(n, 256) grey levels and block masks -> whether ``b`` is ``a`` cropped, shifted or scaled:
    some warp of :func:`_warps` correlates them by BACKDROP_MOVED or more over the block."""
    cells = np.maximum(inside.sum(axis=1, keepdims=True), 1)
    bc = np.where(inside, b - (b * inside).sum(axis=1, keepdims=True) / cells, 0)
    best = np.full(len(a), -1.0)
    for at, w in zip(_WARP_CELLS, _WARP_WEIGHTS):
        aw = (a[:, at] * w).sum(axis=2)
        ac = np.where(inside, aw - (aw * inside).sum(axis=1, keepdims=True) / cells, 0)
        c = (ac * bc).sum(axis=1) / np.sqrt((ac * ac).sum(axis=1) * (bc * bc).sum(axis=1) + 1e-9)
        best = np.maximum(best, c)
    return best >= np.where(inside.sum(axis=1) < BACKDROP_SMALL, BACKDROP_MOVED_SMALL, BACKDROP_MOVED)


def _backdrop_fit(grey: np.ndarray, ring: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, 256) grey levels and (n, 256) ring masks -> (the quadratic surface fitted to each
    ring, whether it fits: RMS within BACKDROP_SMOOTH once the worst cells, at most a quarter of
    the ring, are left out one at a time)."""
    keep = ring.copy()
    most = np.floor(0.25 * ring.sum(axis=1))
    left_out = np.zeros(len(grey))
    active = np.ones(len(grey), dtype=bool)
    model = np.zeros_like(grey)
    fits = np.zeros(len(grey), dtype=bool)
    while active.any():
        rows = np.flatnonzero(active)
        w, g = keep[rows].astype(np.float64), grey[rows]
        normal = np.einsum("nk,ki,kj->nij", w, _SURFACE, _SURFACE)
        coef = np.einsum("nij,nj->ni", np.linalg.pinv(normal), np.einsum("nk,ki,nk->ni", w, _SURFACE, g))
        model[rows] = coef @ _SURFACE.T
        res = np.abs(g - model[rows]) * w
        good = np.sqrt((res * res).sum(axis=1) / w.sum(axis=1)) <= BACKDROP_SMOOTH
        fits[rows] = good
        more = ~good & (left_out[rows] < most[rows])
        keep[rows[more], res[more].argmax(axis=1)] = False
        left_out[rows[more]] += 1
        active[rows[~more]] = False
    return model, fits


def _cells_within(top: np.ndarray, bottom: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """(n,) bounds, inclusive -> (n, 256) masks of the thumbnail cells inside each box."""
    y, x = _CELL_Y, _CELL_X
    return (top[:, None] <= y) & (y <= bottom[:, None]) & (left[:, None] <= x) & (x <= right[:, None])


def shared_backdrop(thumb_a: np.ndarray, thumb_b: np.ndarray) -> np.ndarray:
    """Whether two images are different pictures on one backdrop (see :data:`BACKDROP_LEVELS`),
    from their thumbnails as (n, 256) uint8 rows (elementwise: the same answer for one pair as
    for many, and in either order: the fit of one on the other is not symmetric, so both must
    say so)."""
    # The edge cells are backdrop in both: b - a there is (alpha - 1) a + beta within
    # BACKDROP_LEVELS, so it spans at most this much. Most pairs of copies fail this cheap test
    # (the accuracy benchmark's, seed 0: 466 of the 81,096 asked pass it).
    edge = np.ptp(thumb_b[:, _EDGE].astype(np.int16) - thumb_a[:, _EDGE], axis=1)
    rows = np.flatnonzero(edge <= 2 * BACKDROP_LEVELS + BACKDROP_SCALE * 255)
    out = np.zeros(len(thumb_a), dtype=bool)
    if len(rows):
        a, b = thumb_a[rows], thumb_b[rows]
        both = _one_way(np.concatenate([a, b]), np.concatenate([b, a]))
        out[rows] = both[: len(rows)] & both[len(rows) :]
    return out


def _one_way(thumb_a: np.ndarray, thumb_b: np.ndarray) -> np.ndarray:
    """:func:`shared_backdrop` with ``thumb_b`` fitted on ``thumb_a``."""
    a, b = thumb_a.astype(np.float64), thumb_b.astype(np.float64)
    n = len(a)
    out = np.zeros(n, dtype=bool)
    offset = np.median(b - a, axis=1, keepdims=True)
    agree = np.abs(b - a - offset) <= BACKDROP_LEVELS
    w = agree.astype(np.float64)
    count = np.maximum(w.sum(axis=1, keepdims=True), 1.0)
    ma, mb = (w * a).sum(axis=1, keepdims=True) / count, (w * b).sum(axis=1, keepdims=True) / count
    var = (w * (a - ma) ** 2).sum(axis=1, keepdims=True)
    alpha = np.where(var > 0, (w * (a - ma) * (b - mb)).sum(axis=1, keepdims=True) / np.maximum(var, 1e-9), 1.0)
    beta = np.where(var > 0, mb - alpha * ma, offset)
    r = b - (alpha * a + beta)
    differ = np.abs(r) > BACKDROP_LEVELS
    grid = differ.reshape(n, _THUMB_SIDE, _THUMB_SIDE)
    in_row, in_col = np.asarray(grid.any(axis=2)), np.asarray(grid.any(axis=1))
    last = _LAST  # the block's bounds: first and last row and column with a cell that differs
    top, bottom = in_row.argmax(axis=1), last - in_row[:, ::-1].argmax(axis=1)
    left, right = in_col.argmax(axis=1), last - in_col[:, ::-1].argmax(axis=1)
    box = _cells_within(top, bottom, left, right)
    dense = differ.sum(axis=1) >= BACKDROP_DENSE * box.sum(axis=1)
    asked = np.flatnonzero(
        (agree.sum(axis=1) >= _THUMB_SIDE**2 // 4)
        & (np.abs(alpha[:, 0] - 1) <= BACKDROP_SCALE)
        & (np.abs(r).max(axis=1) >= BACKDROP_APART)
        & (top > 0) & (left > 0) & (bottom < last) & (right < last)
        & (bottom - top >= BACKDROP_SPAN - 1) & (right - left >= BACKDROP_SPAN - 1)
        & dense
    )  # fmt: skip
    if not len(asked):
        return out
    t, bo, le, ri = top[asked], bottom[asked], left[asked], right[asked]
    near = _cells_within(t - 1, bo + 1, le - 1, ri + 1)
    ring = near & ~box[asked]
    model_a, fits_a = _backdrop_fit(a[asked], ring)
    model_b, fits_b = _backdrop_fit(b[asked], ring)
    off_a, off_b = np.abs(a[asked] - model_a), np.abs(b[asked] - model_b)
    d, inside = differ[asked], box[asked]
    departs = (np.where(d, off_a, 0).max(axis=1) >= BACKDROP_DEPARTS) & (
        np.where(d, off_b, 0).max(axis=1) >= BACKDROP_DEPARTS
    )
    cells = inside.sum(axis=1)

    def rms(x: np.ndarray) -> np.ndarray:
        return np.sqrt(np.where(inside, x * x, 0).sum(axis=1) / cells)

    apart = rms(r[asked]) >= BACKDROP_RATIO * np.minimum(rms(off_a), rms(off_b))
    out[asked] = fits_a & fits_b & departs & apart
    kept = asked[out[asked]]  # a few pairs at most outside sets like the negatives benchmark's
    if len(kept):
        out[kept] = ~_moved(a[kept], b[kept], box[kept])
    return out


def _thumb_rows(thumbs: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Thumbnails -> (n, 256) uint8 rows (zeros where none) and whether each has one."""
    size = _THUMB_SIDE * _THUMB_SIDE
    has = np.array([len(t) == size for t in thumbs], dtype=bool)
    rows = np.zeros((len(thumbs), size), dtype=np.uint8)
    if has.any():
        rows[has] = np.frombuffer(b"".join(t for t in thumbs if len(t) == size), dtype=np.uint8).reshape(-1, size)
    return rows, has


def backdrop_veto(a_thumb: bytes, b_thumb: bytes) -> bool:
    """:func:`shared_backdrop` of two thumbnails; False when either has none."""
    rows, has = _thumb_rows((a_thumb, b_thumb))
    return bool(has.all() and shared_backdrop(rows[:1], rows[1:])[0])


def _pairs() -> tuple[tuple[int, int], ...]:
    """The comparisons the rule allows, as (box of a, box of b); 0 = plain, 1 = content box,
    2.. = sub-regions: canonical (0, 1) with canonical, sub-region with canonical."""
    out = [(i, j) for i in (0, 1) for j in (0, 1)]
    for k in range(2, _N + 1):
        out += [(k, 0), (k, 1), (0, k), (1, k)]
    return tuple(out)


PAIRS = _pairs()

LINK_KINDS = ("whole image", "content box", "part of the picture", "a corner left out", "turned or mirrored")
"""How a link between two images was made, for the reports
(:meth:`LinkHashes.distances_and_kinds`): the whole images' hashes; a content box (a border,
letterbox or caption band peeled off either image); a sub-region (a crop, a small rotation); the
halves that leave out one corner (a watermark or logo there); a turned or mirrored version
(``--rotations``)."""
_WHOLE, _BOX, _PART, _CORNER, _TURNED = range(len(LINK_KINDS))


def region_distance(
    a_plain: int,
    a_regions: Sequence[int],
    b_plain: int,
    b_regions: Sequence[int],
    *,
    bits: int,
    a_framed: bool = False,
    b_framed: bool = False,
    a_thumb: bytes = b"",
    b_thumb: bytes = b"",
) -> int:
    """Bits between two images under the region rule (see the module docstring).

    The least of every allowed comparison (:data:`PAIRS`, plain with plain included) whose finer
    hashes and colour layouts agree (:data:`FINE_SHARE`, :data:`COLOUR_APART`), and of the
    corner match (:func:`occluded_distance`); identical plain
    hashes need only the colours to agree, and a pair with no confirmed comparison is ``bits``
    apart (nothing in common). Two framed images (``a_framed``, ``b_framed``: see
    :data:`FRAMED_SHARE`) whose content boxes' finer hashes disagree are ``bits`` apart whatever
    else agrees, and so is a framed image whose content box agrees with no box of the other
    (:func:`frames_veto`); so are two different pictures on one backdrop, which their
    thumbnails (``a_thumb``, ``b_thumb``: 16 x 16 grey levels) show (:func:`shared_backdrop`).
    With no regions (``()``), the plain distance.
    ``regions`` is the layout of :func:`split` and :func:`colour_layout`.
    """
    plain = (a_plain ^ b_plain).bit_count()
    if not a_regions or not b_regions:
        return plain
    (ac, af), (bc, bf) = split(a_regions), split(b_regions)
    fine_max = FINE_SHARE * 4 * bits
    (ua, ra), (ub, rb) = colour_grids(colour_layout(a_regions)), colour_grids(colour_layout(b_regions))

    def colours_agree(i: int, j: int) -> bool:
        close = (af[i] ^ bf[j]).bit_count() <= COLOUR_FINE_SHARE * 4 * bits  # a colour filter at most
        return close or not colours_differ(ua[i], ra[i], ub[j], rb[j])

    if frames_veto(a_regions, b_regions, a_framed, b_framed, bits=bits):
        return bits  # what a frame holds matches nothing of the other image: only the frames matched
    # Only the backdrop matched, the pictures on it differ: the whole images' comparisons do
    # not count, and a sub-region's only where its finer hashes are one picture's (a crop of a
    # picture on a backdrop, whose thumbnail is not aligned with the original's: 0 of 256 bits
    # at 10-20%; different pictures, 16 or more, 50 for all but 2% of them).
    same = SAME_PICTURE_SHARE * 4 * bits
    backdrop = (af[0] ^ bf[0]).bit_count() > same and backdrop_veto(a_thumb, b_thumb)
    if plain == 0 and colours_agree(0, 0) and not backdrop:
        return plain
    a, b = (a_plain, *ac), (b_plain, *bc)
    best = bits if backdrop else occluded_distance(a_regions, b_regions, bits=bits)  # bits: none confirmed
    for i, j in PAIRS:
        if backdrop and (max(i, j) < 2 or (af[i] ^ bf[j]).bit_count() > same):
            continue
        d = (a[i] ^ b[j]).bit_count()
        if d < best and (af[i] ^ bf[j]).bit_count() <= fine_max and colours_agree(i, j):
            best = d
    return best


# How each of the 7 rotated or mirrored versions (``hashing.DIHEDRAL``, in its order: mirror,
# flip, 90, 180 and 270 degrees anticlockwise, transpose, transverse) moves the cells of a square
# grid: cell k of the turned picture is cell turns[v][k] of the picture.
def _turn_orders(side: int) -> np.ndarray:
    cells = np.arange(side * side).reshape(side, side)
    turns: tuple[Callable[[np.ndarray], np.ndarray], ...] = (
        np.fliplr,
        np.flipud,
        np.rot90,
        lambda g: np.rot90(g, 2),
        lambda g: np.rot90(g, 3),
        np.transpose,
        lambda g: np.rot90(g, 2).T,
    )
    return np.array([t(cells).ravel() for t in turns])


_TURNS = _turn_orders(4)  # the colour layouts' 4 x 4 cells
_GREY_TURNS = _turn_orders(8)  # the grey grid's 8 x 8 cells


def rotated_grid(grid: np.ndarray, variant: int) -> np.ndarray:
    """A colour layout (:func:`colour_grids`, cells on the second-last axis) as the picture turned
    by rotation ``variant`` has it."""
    return grid[..., _TURNS[variant], :]


# A turned version's link is confirmed (besides its finer hashes where the records carry them,
# see TURNED_FINE; records hashed before them had none) by the 8 x 8 grid of
# mean grey levels that the regions carry (see :data:`HALVES`), turned with it: the two grids
# must correlate at least TURNED_GRID_CORRELATION, and so must their inner 6 x 6 cells at least
# TURNED_INNER_CORRELATION (a frame both share, a 10% black border, is the outer ring of cells
# and lifts the whole grid's correlation). Measured on the accuracy benchmark's --rotations
# links that only a turned version made (seed 0, 60 and 150 sources): copies of one picture
# (flips and 90-degree turns against re-encodes, brightness and contrast changes, 5-10% crops,
# small rotations) 0.93 or more whole and 0.89 or more inside; the three links between different
# pictures, each of which merged two sources' clusters of copies (10% black borders twice,
# screenshot windows once), 0.94, 0.91 and 0.70 whole and 0.76, 0.48 and 0.79 inside.
# A grid this flat (standard deviation in grey levels) has nothing to correlate: not asked.
TURNED_GRID_CORRELATION = 0.93
TURNED_INNER_CORRELATION = 0.85
TURNED_GRID_FLAT = 4.0
_INNER = np.array([0 < r < 7 and 0 < c < 7 for r in range(8) for c in range(8)])  # the same cells in any turn


def _correlate(grid_a: np.ndarray, grid_b: np.ndarray, at_least: float) -> np.ndarray:
    """Whether grids (..., cells) correlate ``at_least``, or either is too flat to tell."""
    ca = grid_a.astype(np.float64) - grid_a.mean(axis=-1, keepdims=True)
    cb = grid_b.astype(np.float64) - grid_b.mean(axis=-1, keepdims=True)
    va, vb = (ca * ca).sum(axis=-1), (cb * cb).sum(axis=-1)
    flat = np.minimum(va, vb) < grid_a.shape[-1] * TURNED_GRID_FLAT**2
    return flat | ((ca * cb).sum(axis=-1) >= at_least * np.sqrt(va * vb))


def turned_grids_agree(grid_a: np.ndarray, grid_b: np.ndarray) -> np.ndarray:
    """Whether grey grids (..., 64), the first already turned, correlate as a turned copy's do
    (:data:`TURNED_GRID_CORRELATION`, :data:`TURNED_INNER_CORRELATION`), or are too flat to
    tell (elementwise: the same numbers for one pair as for many)."""
    whole = _correlate(grid_a, grid_b, TURNED_GRID_CORRELATION)
    return whole & _correlate(grid_a[..., _INNER], grid_b[..., _INNER], TURNED_INNER_CORRELATION)


def rotated_distance(
    a_plain: int,
    a_variants: Sequence[int],
    b_plain: int,
    b_variants: Sequence[int],
    a_regions: Sequence[int] = (),
    b_regions: Sequence[int] = (),
    *,
    bits: int = 64,
) -> int | None:
    """The least distance between one image's plain hash and the other's rotated or mirrored
    versions (``--rotations``); None when no turned version counts. With both images' ``regions``, a
    turned version counts only when its colour layout and its grey grid, turned with it, agree
    with the other's (:func:`colours_differ`, :func:`turned_grids_agree`): a flag of vertical
    stripes is its own upside-down version, so without them the turn matched flags that differ
    only in colour, and different pictures in the same border or window, which the region rule
    keeps apart. Where both carry their turned finer hashes (:func:`turned_fine`), a turned version
    with a hash other than the other's plain one counts only when its finer hashes, of the whole
    image and of the content box, agree with the other's within :data:`FINE_SHARE`, as a plain
    comparison's must (see :data:`TURNED_FINE`); the box is not asked when the whole images' agree
    within :data:`TURNED_SAME_SHARE`. ``bits``: the plain hashes' size."""
    ds = []
    both = bool(a_regions) and bool(b_regions)
    if both:
        colours = [colour_grids(colour_layout(r)[:1]) for r in (a_regions, b_regions)]
        parts = [occlusion_parts(r) for r in (a_regions, b_regions)]
        greys = [_grid(p[2]) if p is not None else None for p in parts]
        turned_fines = [turned_fine(r) for r in (a_regions, b_regions)]
        fines = [split(r)[1] for r in (a_regions, b_regions)]
    for turned, variants, plain in ((0, a_variants, b_plain), (1, b_variants, a_plain)):
        for k, v in enumerate(variants):
            if both:
                (um, rm), (ut, rt) = colours[turned], colours[1 - turned]
                if colours_differ(rotated_grid(um[0], k), rm[0], ut[0], rt[0]):
                    continue
                gm, gt = greys[turned], greys[1 - turned]
                if gm is not None and gt is not None and not turned_grids_agree(gm[_GREY_TURNS[k]], gt):
                    continue
                tf, other = turned_fines[turned], fines[1 - turned]
                # as a plain comparison: identical hashes need the colours only (see TURNED_FINE)
                if (
                    tf is not None
                    and turned_fines[1 - turned] is not None
                    and v != plain
                    and _turned_apart(tf, other, k, bits)
                ):
                    continue
            ds.append((v ^ plain).bit_count())
    return min(ds) if ds else None


# Whole images whose finer hashes are this close (a share of their bits) are one picture in one
# place: a re-encode, a brightness change (8 of 256 bits for 00000725 darkened), never two
# pictures in a shared frame that :func:`frames_veto` has to tell apart (a screenshot window:
# 62-64 bits).
SAME_PICTURE_SHARE = 1 / 16


def frames_veto(
    a_regions: Sequence[int], b_regions: Sequence[int], a_framed: bool, b_framed: bool, *, bits: int
) -> bool:
    """Whether only the frames of two images match (see :data:`FRAMED_SHARE`): both are framed and
    their content boxes' finer hashes disagree, or one is framed (``a_framed``, ``b_framed``) and
    its content box's finer hash agrees with none of the other's boxes (plain, content box,
    sub-regions). A framed picture is its content box: a screenshot of a photo at 30% of the
    width whose neighbour's peel stopped short (a white photo edge in a white window: 51% of
    it kept) met that neighbour by the window alone, plain against plain, at 8 bits with their
    finer hashes 64 of 256 apart, and one was removed. A copy of it meets the framed image's
    content box in any box of its own: the photo alone (plain), another frame (content box), a
    crop (a sub-region). Not asked of one framed image when the whole images' finer hashes agree
    within :data:`SAME_PICTURE_SHARE`: a photo with a dark plain background peels further once
    darkened (00000725: 51% of the original kept, 17% of its x0.75 brightness copy), and that
    copy's box matched nothing of the original's. In every orientation (``--rotations``):
    turned versions have no boxes."""
    if not (a_regions and b_regions) or not (a_framed or b_framed):
        return False
    af, bf = split(a_regions)[1], split(b_regions)[1]
    fine_max = FINE_SHARE * 4 * bits
    if a_framed and b_framed and (af[1] ^ bf[1]).bit_count() > fine_max:
        return True
    if (af[0] ^ bf[0]).bit_count() <= SAME_PICTURE_SHARE * 4 * bits:
        return False  # the same picture in the same place, whatever its peel
    if a_framed and all((af[1] ^ y).bit_count() > fine_max for y in bf):
        return True
    return b_framed and all((x ^ bf[1]).bit_count() > fine_max for x in af)


def link_distance(a: Sequence[Any], b: Sequence[Any], *, bits: int) -> int:
    """Distance of two images given as ``(plain, regions, variants[, framed])`` (:func:`link_item`):
    the region rule (:func:`region_distance`), and with rotation variants also
    :func:`rotated_distance` (their colour layouts, grey grids and, where the records carry them,
    turned finer hashes must agree, and :func:`frames_veto` holds in every orientation, as in
    the region rule)."""
    a_framed, b_framed = len(a) > 3 and bool(a[3]), len(b) > 3 and bool(b[3])
    a_thumb, b_thumb = a[4] if len(a) > 4 else b"", b[4] if len(b) > 4 else b""
    d = region_distance(
        a[0], a[1], b[0], b[1], bits=bits, a_framed=a_framed, b_framed=b_framed, a_thumb=a_thumb, b_thumb=b_thumb
    )
    rotated = rotated_distance(a[0], a[2], b[0], b[2], a[1], b[1], bits=bits)
    if rotated is None:
        return d
    if frames_veto(a[1], b[1], a_framed, b_framed, bits=bits):
        return bits
    return min(d, rotated)


def _packed_table(regions: Sequence[Sequence[int]], bits: int) -> np.ndarray:
    """Many records' regions as one (n, bytes) table of the longest layout: the packed ones'
    buffers as they are, the others packed now; zeros past each one's own values (records of
    one length are copied in together, not padded one by one)."""
    coarse, fine = _hash_bytes(bits)
    table = np.zeros((len(regions), _starts(coarse, fine)[-1]), dtype=np.uint8)
    by_size: dict[int, tuple[list[int], list[bytes]]] = {}
    for k, r in enumerate(regions):
        if not (isinstance(r, PackedRegions) and (r.coarse, r.fine) == (coarse, fine)):
            # a value too wide for its place (only a hand-made record holds one): its low bits
            r = _packed(tuple(r)[:_REGION_VALUES], bits, cut=True)
        rows, blobs = by_size.setdefault(len(r.blob), ([], []))
        rows.append(k)
        blobs.append(r.blob)
    for size, (rows, blobs) in by_size.items():
        if size:
            table[rows, :size] = np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(len(rows), size)
    return table


class LinkHashes:
    """Many images' ``(plain, regions, variants)`` as arrays: :func:`link_distance` for many pairs
    in a few numpy operations.

    The same numbers as :func:`link_distance` (a property test pins it), for a fraction of the
    cost: a cluster of 20 copies has 190 pairs, and a 20,000-file reference set of such clusters
    spent seconds in the one-pair-at-a-time version.
    """

    _PAIRS_A = np.array([i for i, _ in PAIRS])
    _PAIRS_B = np.array([j for _, j in PAIRS])
    _BOX_PAIR = PAIRS.index((1, 1))  # content box against content box
    _PLAIN_PAIR = PAIRS.index((0, 0))
    _SUB = np.array([max(i, j) >= 2 for i, j in PAIRS])  # a sub-region against a canonical box
    _BOX_OF_A = np.array([i == 1 for i, _ in PAIRS])  # a's content box against each box of b
    _BOX_OF_B = np.array([j == 1 for _, j in PAIRS])
    _KIND = np.array([_WHOLE if i == j == 0 else _BOX if max(i, j) == 1 else _PART for i, j in PAIRS], dtype=np.int8)

    def __init__(self, items: Sequence[Sequence[Any]], *, bits: int) -> None:
        n = len(items)
        self.bits = bits
        self.plain = index.to_words([it[0] for it in items], bits)  # (n, words)
        counts = np.array([len(it[1]) for it in items], dtype=np.int64)
        self.has_regions = counts > 0
        self.lengths = counts
        table = _packed_table([it[1] for it in items], bits)  # (n, bytes): every position, zeros where none
        at = _starts(*_hash_bytes(bits))

        def values(first: int, k: int) -> np.ndarray:  # positions first..first+k-1 as (n, k, words) uint64
            raw = np.ascontiguousarray(table[:, at[first] : at[first + k]])
            return raw.view(">u8").astype(np.uint64).reshape(n, k, -1 if n else 1)

        self.coarse = np.concatenate([self.plain[:, None, :], values(0, _N)], axis=1)
        self.fine = values(_N, _N + 1)
        grids = table[:, at[2 * _N + 1] : at[3 * _N + 2]].view(np.int8).copy()
        grids[counts < 3 * _N + 2] = 0  # colour layouts are read only when all of them were stored
        grids, rms = colour_grids_of(grids.reshape(-1, 16, 2))
        self.colour, self.colour_rms = grids.reshape(n, _N + 1, 16, 2), rms.reshape(n, _N + 1)
        self.has_halves = counts >= 3 * _N + 2 + _TAIL
        self.half_coarse = values(3 * _N + 2, 4)
        self.half_fine = values(3 * _N + 6, 4)
        self.half_used = (self.half_fine != 0).any(axis=-1)  # a flat half's hashes are stored as 0
        self.grid = np.ascontiguousarray(table[:, at[_TURNED_START - 1] : at[_TURNED_START]])
        self.framed = np.array([len(it) > 3 and bool(it[3]) for it in items], dtype=bool) & self.has_regions
        self.thumb, self.has_thumb = _thumb_rows([it[4] if len(it) > 4 else b"" for it in items])
        self.has_turned = counts >= _TURNED_START + TURNED_FINE
        self.turned_fine = values(_TURNED_START, TURNED_FINE)
        width = max((len(it[2]) for it in items), default=0)
        self.n_variants = np.array([len(it[2]) for it in items], dtype=np.int64)
        padded = [h for it in items for h in (*it[2], *(0,) * (width - len(it[2])))]
        words = max(1, (bits + 63) // 64)
        self.variants = index.to_words(padded, bits).reshape(n, width, words)

    _ROWS = ("plain", "has_regions", "lengths", "coarse", "fine", "colour", "colour_rms", "has_halves", "half_coarse",
             "half_fine", "half_used", "grid", "framed", "thumb", "has_thumb", "n_variants", "has_turned",
             "turned_fine")  # fmt: skip

    def extended(self, other: LinkHashes) -> LinkHashes:
        """These rows, then ``other``'s (rotation variants padded to the wider of the two)."""
        out = object.__new__(LinkHashes)
        out.bits = self.bits
        for name in self._ROWS:
            setattr(out, name, np.concatenate([getattr(self, name), getattr(other, name)]))
        width = max(self.variants.shape[1], other.variants.shape[1])
        pad = [np.pad(v.variants, ((0, 0), (0, width - v.variants.shape[1]), (0, 0))) for v in (self, other)]
        out.variants = np.concatenate(pad)
        return out

    def distances(self, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
        """``link_distance(self[ia[k]], self[ib[k]])`` for every k."""
        return self.distances_and_kinds(ia, ib, kinds=False)[0]

    def distances_and_kinds(
        self, ia: np.ndarray, ib: np.ndarray, *, kinds: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`distances`, and how each pair's distance was found (positions in :data:`LINK_KINDS`;
        empty without ``kinds``)."""
        ia, ib = np.asarray(ia, dtype=np.int64), np.asarray(ib, dtype=np.int64)
        out = np.empty(len(ia), dtype=np.int64)
        how = np.empty(len(ia) if kinds else 0, dtype=np.int8)
        step = 1024  # temporaries of <1 MB stay in cache: 3x faster than 65,536 pairs at a time
        for lo in range(0, len(ia), step):
            d, k = self._chunk(ia[lo : lo + step], ib[lo : lo + step], kinds)
            out[lo : lo + step] = d
            if k is not None:
                how[lo : lo + step] = k
        return out, how

    def _chunk(self, ia: np.ndarray, ib: np.ndarray, kinds: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        def bits_apart(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            count = np.bitwise_count(x ^ y)  # uint8 per word; a word-by-word sum beats .sum(axis=-1)
            out = count[..., 0].astype(np.int16)
            for w in range(1, count.shape[-1]):
                out += count[..., w]
            return out

        plain = bits_apart(self.plain[ia], self.plain[ib])
        coarse = bits_apart(self.coarse[ia][:, self._PAIRS_A], self.coarse[ib][:, self._PAIRS_B])  # (n, pairs)
        fine = bits_apart(self.fine[ia][:, self._PAIRS_A], self.fine[ib][:, self._PAIRS_B])
        fine_ok = fine <= FINE_SHARE * 4 * self.bits
        # Colours only where they can decide (a comparison the finer hashes confirm, identical
        # plain hashes) and both boxes have some: a few of the 28 comparisons of a pair.
        rms_a, rms_b = self.colour_rms[ia][:, self._PAIRS_A], self.colour_rms[ib][:, self._PAIRS_B]
        asked = fine_ok.copy()
        asked[:, self._PLAIN_PAIR] |= plain == 0
        asked &= fine > COLOUR_FINE_SHARE * 4 * self.bits  # closer: the same grey levels, a colour filter at most
        rows, cols = np.nonzero(asked & (rms_a >= COLOUR_RMS) & (rms_b >= COLOUR_RMS))
        differ = np.zeros(fine.shape, dtype=bool)
        if len(rows):
            a, b, ka, kb = ia[rows], ib[rows], self._PAIRS_A[cols], self._PAIRS_B[cols]
            differ[rows, cols] = colours_differ(
                self.colour[a, ka], self.colour_rms[a, ka], self.colour[b, kb], self.colour_rms[b, kb]
            )
        # frames_veto: both framed (FRAMED_SHARE) and their content boxes differ, or one framed
        # and its content box agrees with no box of the other
        both = self.has_regions[ia] & self.has_regions[ib]
        framed_a, framed_b = self.framed[ia] & both, self.framed[ib] & both
        boxes_differ = framed_a & framed_b & (fine[:, self._BOX_PAIR] > FINE_SHARE * 4 * self.bits)
        apart = fine[:, self._PLAIN_PAIR] > SAME_PICTURE_SHARE * 4 * self.bits
        boxes_differ |= apart & framed_a & ~fine_ok[:, self._BOX_OF_A].any(axis=1)
        boxes_differ |= apart & framed_b & ~fine_ok[:, self._BOX_OF_B].any(axis=1)
        plain_unconfirmed = (plain != 0) | differ[:, self._PLAIN_PAIR]
        ruled = self.has_regions[ia] & self.has_regions[ib] & plain_unconfirmed
        masked = np.where(fine_ok & ~differ, coarse, self.bits)
        confirmed = masked.min(axis=1)
        # The corner match only where it can lower a distance the rule decides (cap 0: never).
        corner = self._occluded(ia, ib, np.where(ruled, confirmed, 0))
        kind: np.ndarray | None = None
        if kinds:
            kind = np.where(ruled, np.where(corner < confirmed, _CORNER, self._KIND[masked.argmin(axis=1)]), _WHOLE)
        confirmed = np.minimum(confirmed, corner)
        d = np.where(ruled, np.minimum(confirmed, self.bits), plain)
        # shared_backdrop where it can change a distance: both have regions and thumbnails, and
        # the whole images' finer hashes are not one picture's (``apart``: SAME_PICTURE_SHARE)
        asked = np.flatnonzero(both & self.has_thumb[ia] & self.has_thumb[ib] & apart & (d < self.bits))
        if len(asked):
            vetoed = asked[shared_backdrop(self.thumb[ia[asked]], self.thumb[ib[asked]])]
            same = fine[vetoed][:, self._SUB] <= SAME_PICTURE_SHARE * 4 * self.bits
            # sub-regions alone, and as close as one picture's (see region_distance)
            d[vetoed] = np.where(same, masked[vetoed][:, self._SUB], self.bits).min(axis=1)
            if kind is not None:
                kind[vetoed] = _PART
        ca, cb = self.colour[ia, 0], self.colour[ib, 0]
        rms_a, rms_b = self.colour_rms[ia, 0], self.colour_rms[ib, 0]
        ga, gb = self.grid[ia], self.grid[ib]
        halves = self.has_halves[ia] & self.has_halves[ib] & self.has_regions[ia] & self.has_regions[ib]
        turned_both = self.has_turned[ia] & self.has_turned[ib]
        fine_a, fine_b = self.fine[ia, :2], self.fine[ib, :2]  # the whole images' and the content boxes'
        for k in range(self.variants.shape[1]):  # rotations: one side plain, the other turned, both ways
            # a turned version's colour layout, turned with it, must agree (see rotated_distance)
            use_a = (self.n_variants[ia] > k) & ~colours_differ(rotated_grid(ca, k), rms_a, cb, rms_b)
            use_b = (self.n_variants[ib] > k) & ~colours_differ(rotated_grid(cb, k), rms_b, ca, rms_a)
            use_a &= ~halves | turned_grids_agree(ga[:, _GREY_TURNS[k]], gb)
            use_b &= ~halves | turned_grids_agree(gb[:, _GREY_TURNS[k]], ga)
            turned_a = bits_apart(self.variants[ia, k], self.plain[ib])
            turned_b = bits_apart(self.variants[ib, k], self.plain[ia])
            # and its finer hashes, the whole image's and the content box's, as a plain
            # comparison's: identical hashes need the colours only (see TURNED_FINE)
            fine_max, same_max = FINE_SHARE * 4 * self.bits, TURNED_SAME_SHARE * 4 * self.bits
            for use, turned, tf, other in (
                (use_a, turned_a, self.turned_fine[ia], fine_b),
                (use_b, turned_b, self.turned_fine[ib], fine_a),
            ):
                if turned_both.any():  # only where both records carry them (see turned_fine)
                    whole = bits_apart(tf[:, k], other[:, 0])
                    apart = np.where(whole <= same_max, 0, np.maximum(whole, bits_apart(tf[:, 7 + k], other[:, 1])))
                    use &= ~turned_both | (turned == 0) | (apart <= fine_max)
            for use, turned in ((use_a, turned_a), (use_b, turned_b)):
                if kind is not None:
                    kind = np.where(use & (turned < d), _TURNED, kind)
                d = np.where(use, np.minimum(d, turned), d)
        return np.where(boxes_differ, self.bits, d), kind  # identical plain hashes and turns too: see FRAMED_SHARE

    def _occluded(self, ia: np.ndarray, ib: np.ndarray, cap: np.ndarray) -> np.ndarray:
        """:func:`occluded_distance` for every pair where it is under ``cap``, else ``bits`` or
        more: the grid and colour tests run only for the pairs whose clean halves agree closer
        than their cap (most pairs of a cluster are nearer by another comparison already; the
        test on every pair had made a 20,000-file incremental scan ~10% slower)."""
        coarse = np.bitwise_count(self.half_coarse[ia] ^ self.half_coarse[ib]).sum(axis=-1, dtype=np.int64)
        fine = np.bitwise_count(self.half_fine[ia] ^ self.half_fine[ib]).sum(axis=-1, dtype=np.int64)
        ok = (fine <= OCCLUDED_FINE_SHARE * 4 * self.bits) & self.half_used[ia] & self.half_used[ib]
        combos = np.stack(
            [np.where(ok[:, h] & ok[:, v], np.maximum(coarse[:, h], coarse[:, v]), self.bits) for h, v in _COMBOS],
            axis=1,
        )
        out = np.full(len(ia), self.bits, dtype=np.int64)
        rows = np.flatnonzero(self.has_halves[ia] & self.has_halves[ib] & (combos.min(axis=1) < cap))
        if not len(rows):
            return out
        a, b = ia[rows], ib[rows]
        corner = _one_corner_differs(self.grid[a].astype(np.int32) - self.grid[b])
        best = np.where(corner, combos[rows], self.bits).min(axis=1)
        differ = colours_differ(self.colour[a, 0], self.colour_rms[a, 0], self.colour[b, 0], self.colour_rms[b, 0])
        out[rows] = np.where(differ, self.bits, best)
        return out


class LinkTable:
    """The :class:`LinkHashes` rows of every link item asked for during one scan, each item
    converted once: the search and the keep decisions ask for the same records (a 20,000-file
    incremental scan converted ~20,000 of them twice, ~0.3 s each time). Equal items share a row."""

    def __init__(self, *, bits: int) -> None:
        self.bits = bits
        self._hashes: LinkHashes | None = None
        self._rows: dict[LinkItem, int] = {}
        self._of: dict[int, tuple[ImageRecord, int]] = {}  # id(record) -> (record, row): see rows_of

    @property
    def hashes(self) -> LinkHashes | None:
        """The arrays of every item converted so far (rows as :meth:`rows` gives them)."""
        return self._hashes

    def rows_of(self, records: Sequence[ImageRecord]) -> np.ndarray:
        """:meth:`rows` of the records' link items, remembered per record object: the records
        converted while a new batch is hashed are asked for again by the decisions, and an
        item's hash (over ~30 large ints, not cached by a tuple) was most of a lookup (20,000
        records: ~0.05 s a time). The record is held with its row, so its id is never reused."""
        known = self._of
        out = np.empty(len(records), dtype=np.int64)
        missing = []
        for k, r in enumerate(records):
            hit = known.get(id(r))
            if hit is not None and hit[0] is r:
                out[k] = hit[1]
            else:
                missing.append(k)
        if missing:
            rows = self.rows([link_item(records[k]) for k in missing]).tolist()
            for k, row in zip(missing, rows):
                known[id(records[k])] = (records[k], row)
                out[k] = row
        return out

    def rows(self, items: Sequence[LinkItem]) -> np.ndarray:
        """The row of each item in :attr:`hashes`, converting the ones not seen before."""
        rows = self._rows
        new = [it for it in dict.fromkeys(items) if it not in rows]
        if new:
            rows.update(zip(new, range(len(rows), len(rows) + len(new))))
            part = LinkHashes(new, bits=self.bits)
            self._hashes = part if self._hashes is None else self._hashes.extended(part)
        return np.fromiter((rows[it] for it in items), dtype=np.int64, count=len(items))

    def distances(self, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
        """:meth:`LinkHashes.distances` between rows that :meth:`rows` gave."""
        return self.distances_and_kinds(ia, ib, kinds=False)[0]

    def distances_and_kinds(
        self, ia: np.ndarray, ib: np.ndarray, *, kinds: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`LinkHashes.distances_and_kinds` between rows that :meth:`rows` gave."""
        if self._hashes is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int8)
        return self._hashes.distances_and_kinds(ia, ib, kinds=kinds)


def _cross(
    x_start: np.ndarray, x_count: np.ndarray, y_start: np.ndarray, y_count: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Every (x, y) with x in x_start[p] + range(x_count[p]) and y likewise, for every p."""
    n = x_count * y_count
    p = np.repeat(np.arange(len(n)), n)
    k = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    return x_start[p] + k // y_count[p], y_start[p] + k % y_count[p]


def _distinct(a: np.ndarray) -> np.ndarray:
    """``np.unique`` of a 1-D integer array, without its first call importing ``numpy.ma``
    (5-10 ms by ``-X importtime``, once per cold scan; too little for a whole command to show)."""
    s = np.sort(a)
    return s[np.concatenate(([True], s[1:] != s[:-1]))] if len(s) else s


def distinct_slots(value: Sequence[int] | np.ndarray) -> tuple[list[int], np.ndarray]:
    """The distinct hash values in order (what a self-join takes), and each entry's position
    among them (``value``: Python ints, or 64-bit ones as an integer array)."""
    if not len(value):
        return [], np.zeros(0, dtype=np.int64)
    if isinstance(value, np.ndarray) or (value and max(value) < 1 << 64 and min(value) >= 0):
        # 64-bit hashes: sorted as numbers, not through a dict of Python ints (the search of a
        # new batch against a 20,000-file reference: ~110,000 entries, 0.05 -> 0.01 s)
        arr = value if isinstance(value, np.ndarray) else np.fromiter(value, dtype=np.uint64, count=len(value))
        order = np.argsort(arr, kind="stable")
        ordered = arr[order]
        first = np.concatenate(([True], ordered[1:] != ordered[:-1]))
        slot = np.empty(len(arr), dtype=np.int64)
        slot[order] = np.cumsum(first) - 1
        return ordered[first].tolist(), slot
    values = sorted(set(value))
    where = {v: k for k, v in enumerate(values)}
    return values, np.array([where[v] for v in value], dtype=np.int64)


def _join(
    values: Sequence[int],
    threshold: int,
    *,
    bits: int,
    backend: str,
    join: Callable[..., list[Match]] | None,
    held: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of distinct values within ``threshold`` (two arrays of positions): another
    engine's self-join (``join``), else the index's; with ``held`` (:func:`_held`) and MIH, only
    those near a held value (:func:`imgdup.index.join_touching`: the rest are dropped anyway)."""
    if join is not None:
        ma, mb, _ = index.match_arrays(join(values, threshold, bits=bits, backend=backend))
        return ma, mb
    mih = backend == "mih" or (backend == "auto" and index.choose_backend(len(values), threshold, bits) == "mih")
    if held is not None and mih:
        ma, mb, _ = index.join_touching(values, held, threshold, bits=bits)
    else:
        ma, mb, _ = index.self_join_arrays(values, threshold, bits=bits, backend=backend)
    return ma, mb


def _held(fresh: np.ndarray, owners: np.ndarray, slot: np.ndarray, n_values: int) -> np.ndarray:
    """Which distinct values a fresh image holds (entries: their ``owners`` and value ``slot``)."""
    held = np.zeros(n_values, dtype=bool)
    held[slot[fresh[owners]]] = True
    return held


def _touching(
    held: np.ndarray, ma: np.ndarray, mb: np.ndarray, shared: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The value pairs (``ma``, ``mb``) and shared values whose owners can make a pair with a
    fresh image: one of the values is held by one (:func:`_held`). A new batch against a
    cached reference: the reference's own pairs (most of them) are not crossed, dropped after."""
    near = held[ma] | held[mb]
    return ma[near], mb[near], shared[held[shared]]


def _single_rows(
    images: Sequence[Sequence[Sequence[Any]]], table: LinkTable | None, bits: int, first_rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, LinkHashes] | None:
    """The images of one record each, their rows in ``table`` and its arrays, whose search
    entries are read from the arrays rather than value by value in Python (a new batch against
    a cached 20,000-file reference: 20,000 records' entries each run); None without a table, or
    with hashes wider than 64 bits (whose values the search takes as Python ints)."""
    if table is None or bits > 64:
        return None
    at = np.array([i for i, records in enumerate(images) if len(records) == 1], dtype=np.int64)
    # the rows of those items: as the caller found them (by record, cheaper than by item), or now
    rows = first_rows[at] if first_rows is not None else table.rows([images[i][0] for i in at.tolist()])
    hashes = table.hashes
    if hashes is None:
        return None
    whole = (hashes.lengths[rows] == 0) | (hashes.lengths[rows] >= _N)  # a hand-made record's few values: by value
    return at[whole], rows[whole], hashes


def _by_table(single: tuple[np.ndarray, np.ndarray, LinkHashes] | None, n: int) -> list[bool]:
    """For each of ``n`` images, whether :func:`_single_rows` gives its entries (the rest are
    read value by value)."""
    skip = np.zeros(n, dtype=bool)
    if single is not None:
        skip[single[0]] = True
    return skip.tolist()


def _table_entries(at: np.ndarray, rows: np.ndarray, hashes: LinkHashes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The search entries (owner, is a sub-region or variant, value) of images ``at`` of one record
    each, whose :class:`LinkHashes` rows are ``rows``: as :func:`region_links` makes them, the
    plain hash and (with regions) the content box's canonical, then the sub-regions' and the
    rotation variants'."""
    plain = hashes.plain[rows, 0]
    boxed = hashes.lengths[rows] >= _N
    coarse = hashes.coarse[rows, 1:, 0][boxed]  # (k, _N): the content box, then the sub-regions
    owned = at[boxed]
    n_var = hashes.n_variants[rows]
    has_var = np.arange(hashes.variants.shape[1]) < n_var[:, None]
    variants = hashes.variants[rows, :, 0][has_var]
    owner = np.concatenate([at, owned, np.repeat(owned, _N - 1), np.repeat(at, n_var)])
    is_sub = np.concatenate(
        [np.zeros(len(at) + len(owned), dtype=bool), np.ones(len(owner) - len(at) - len(owned), dtype=bool)]
    )
    value = np.concatenate([plain, coarse[:, 0], coarse[:, 1:].ravel(), variants])
    return owner, is_sub, value


def _half_candidates(
    images: Sequence[Sequence[Sequence[Any]]],
    threshold: int,
    *,
    bits: int,
    backend: str,
    join: Callable[..., list[Match]] | None,
    fresh: Sequence[bool] | None = None,
    single: tuple[np.ndarray, np.ndarray, LinkHashes] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of images (as two arrays of indices) whose top halves, or whose bottom halves, are
    within ``threshold``: every corner leaves one of the two clean, so these are the candidates
    of :func:`occluded_distance`. One self-join per half; flat halves (stored as 0) take no part.
    With ``fresh``, at least the pairs that hold a fresh image (see :func:`_touching`).
    ``single``: :func:`_single_rows`, whose images have their halves read from its arrays."""
    xs, ys = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    owners: tuple[list[int], list[int]] = ([], [])
    held: tuple[list[int], list[int]] = ([], [])
    skip = _by_table(single, len(images))
    for i, records in enumerate(images):  # one pass for both halves
        if skip[i]:
            continue
        seen: tuple[set[int], set[int]] = (set(), set())  # a value once per image (see region_links)
        for _plain, regions, *_rest in records:
            halves = top_bottom_hashes(regions)
            if halves is not None:
                for k in (0, 1):
                    if halves[k] and halves[k] not in seen[k]:
                        seen[k].add(halves[k])
                        owners[k].append(i)
                        held[k].append(halves[k])
    for k, (owner_list, value_list) in enumerate(zip(owners, held)):
        owner = np.array(owner_list, dtype=np.int64)
        value: list[int] | np.ndarray = value_list
        if single is not None:  # 64-bit hashes (see _single_rows)
            at, rows, hashes = single
            half = hashes.half_coarse[rows, k, 0]
            used = hashes.has_halves[rows] & (half != 0)
            owner = np.concatenate([owner, at[used]])
            value = np.concatenate([np.array(value_list, dtype=np.uint64), half[used]])
        if len(owner) < 2:
            continue
        values, slot = distinct_slots(value)
        is_new = np.zeros(len(owner), dtype=bool) if fresh is None else np.asarray(fresh, dtype=bool)[owner]
        own = owner[np.lexsort((~is_new, slot))]  # by value, the fresh images' entries first
        count = np.bincount(slot, minlength=len(values))
        start = np.cumsum(count) - count
        hot = None if fresh is None else _held(np.asarray(fresh, dtype=bool), owner, slot, len(values))
        ma, mb = _join(values, threshold, bits=bits, backend=backend, join=join, held=hot)
        shared = np.flatnonzero(count > 1)
        if hot is not None:
            ma, mb, shared = _touching(hot, ma, mb, shared)
        # every entry is canonical here (a half against the same half): see _entry_pairs
        blocks = (start, count, count, np.bincount(slot[is_new], minlength=len(values)), np.zeros_like(count))
        for px, py in (
            *_entry_pairs(blocks, shared, shared, subs=False, fresh_only=fresh is not None),
            *_entry_pairs(blocks, ma, mb, subs=False, fresh_only=fresh is not None),
        ):
            xs.append(own[px])
            ys.append(own[py])
    return np.concatenate(xs), np.concatenate(ys)


def region_links(
    images: Sequence[Sequence[Sequence[Any]]],
    threshold: int,
    *,
    bits: int,
    backend: str = "auto",
    join: Callable[..., list[Match]] | None = None,
    fresh: Sequence[bool] | None = None,
    table: LinkTable | None = None,
    spanning: bool = False,
    known: Sequence[tuple[int, int]] = (),
    first_rows: np.ndarray | None = None,
) -> list[tuple[int, int, int]]:
    """Triples ``(i, j, distance)`` of images linked under :func:`link_distance` within ``threshold``.

    ``images[i]`` lists the :func:`link_item` of the records behind image ``i`` (records with
    one plain hash, and in a wide frame one content box). Candidates come from one self-join
    over every distinct coarse value (a pair counts when at least one side is canonical for its
    owner; rotation variants count like sub-regions); each candidate pair of images is then
    confirmed by :func:`link_distance`, finer hashes included. With ``fresh``, only pairs holding at least
    one fresh image are confirmed (the links between the others are already known). ``table``:
    the scan's :class:`LinkTable`, which the keep decisions read again; ``first_rows``: each
    image's first item's row in it, when the caller has them.

    ``spanning``: only links that join groups not joined yet (by the links ``known`` already,
    pairs of images, or by a link confirmed before), in rounds (:func:`_spanning`): the groups
    are those of every link, for a fraction of the confirmations (a new copy of a photo is near
    each of its ~20 copies in a reference set; one confirmed link joins it to them).
    """
    # An image's records share its node, and the copies of one file (a placeholder saved 2,000
    # times) have equal link items: compared once, and each (value, kind) entered once per image.
    # Every entry of a value met every other, its own image's too: the pairs grew as the square
    # of the copies (1,000 entries of one value on 100,000 files: a million pairs each, +1 GB).
    images = [records if len(records) < 2 else list(dict.fromkeys(records)) for records in images]
    single = _single_rows(images, table, bits, first_rows)
    owner: list[int] = []  # one entry per (image, hash value, kind)
    sub: list[bool] = []
    value: list[int] = []
    skip = _by_table(single, len(images))
    for i, records in enumerate(images):
        if skip[i]:
            continue  # read from the table's arrays below
        seen: set[tuple[int, bool]] | None = set() if len(records) > 1 else None
        for plain, regions, variants, *_framed in records:
            coarse = coarse_hashes(regions)
            own_values = (plain, *coarse, *variants)
            canonical = 1 + min(1, len(coarse))  # the plain hash and the content box's
            kinds = [False] * canonical + [True] * (len(own_values) - canonical)
            if seen is not None:
                fresh_entries = [e for e in dict.fromkeys(zip(own_values, kinds)) if e not in seen]
                seen.update(fresh_entries)
                own_values = tuple(v for v, _k in fresh_entries)
                kinds = [k for _v, k in fresh_entries]
            owner += [i] * len(own_values)
            sub += kinds
            value += own_values
    owners = np.array(owner, dtype=np.int64)
    is_sub = np.array(sub, dtype=bool)
    entries: list[int] | np.ndarray = value
    if single is not None:
        more = _table_entries(*single)
        owners, is_sub = np.concatenate([owners, more[0]]), np.concatenate([is_sub, more[1]])
        entries = np.concatenate([np.array(value, dtype=np.uint64), more[2]])
    values, slot = distinct_slots(entries)
    new = None if fresh is None else np.asarray(fresh, dtype=bool)
    is_new = np.zeros(len(owners), dtype=bool) if new is None else new[owners]
    # entries by value, each value's canonical entries first, and in each kind the fresh images' first
    order = np.lexsort((~is_new, is_sub, slot))
    own = owners[order]
    count = np.bincount(slot, minlength=len(values))
    n_canon = np.bincount(slot[~is_sub], minlength=len(values))
    start = np.cumsum(count) - count
    held = None if new is None else _held(new, owners, slot, len(values))
    ma, mb = _join(values, threshold, bits=bits, backend=backend, join=join, held=held)
    shared = np.flatnonzero((count > 1) & (n_canon > 0))  # one value, several owners
    if held is not None:
        ma, mb, shared = _touching(held, ma, mb, shared)
    # A pair counts when at least one side is canonical for its owner: canonical entries of u
    # against all of v, sub-region entries of u against canonical ones of v; with fresh images,
    # only the pairs that hold one (see _entry_pairs).
    blocks = (start, count, n_canon, np.bincount(slot[~is_sub & is_new], minlength=len(values)),
              np.bincount(slot[is_sub & is_new], minlength=len(values)))  # fmt: skip
    xs, ys = zip(
        *_entry_pairs(blocks, shared, shared, subs=False, fresh_only=new is not None),
        *_entry_pairs(blocks, ma, mb, subs=True, fresh_only=new is not None),
    )
    x, y = own[np.concatenate(xs)], own[np.concatenate(ys)]
    hx, hy = _half_candidates(images, threshold, bits=bits, backend=backend, join=join, fresh=fresh, single=single)
    x, y = np.concatenate([x, hx]), np.concatenate([y, hy])
    apart = x != y  # (with fresh images, every pair holds one: _entry_pairs made no other)
    candidates = _distinct(np.minimum(x, y)[apart] * len(images) + np.maximum(x, y)[apart])
    if not len(candidates):
        return []
    pairs = np.stack([candidates // len(images), candidates % len(images)], axis=1)
    if spanning:
        return _spanning(pairs, len(images), known, lambda p: _confirm(images, p, bits, table), threshold)
    d = _confirm(images, pairs, bits, table)
    linked = np.flatnonzero(d <= threshold)
    return [(int(pairs[k, 0]), int(pairs[k, 1]), int(d[k])) for k in linked]


def _confirm(
    images: Sequence[Sequence[Sequence[Any]]], pairs: np.ndarray, bits: int, table: LinkTable | None
) -> np.ndarray:
    """:func:`link_distance` of each pair of images (rows of ``pairs``): the nearest of their records."""
    # Only the images of candidate pairs are compared: their records alone go into arrays.
    involved = _distinct(pairs.ravel())
    local = np.zeros(len(images), dtype=np.int64)
    local[involved] = np.arange(len(involved))
    per_image = np.array([len(images[i]) for i in involved.tolist()], dtype=np.int64)
    first = np.cumsum(per_image) - per_image  # records of involved image k: first[k] ..
    # Every record of one image against every record of the other; the pair takes the nearest.
    left, right = local[pairs[:, 0]], local[pairs[:, 1]]
    ra, rb = _cross(first[left], per_image[left], first[right], per_image[right])
    which = np.repeat(np.arange(len(pairs)), per_image[left] * per_image[right])
    flat = [record for i in involved.tolist() for record in images[i]]
    d = np.full(len(pairs), bits + 1, dtype=np.int64)
    if table is None:
        np.minimum.at(d, which, LinkHashes(flat, bits=bits).distances(ra, rb))
    else:
        at = table.rows(flat)
        np.minimum.at(d, which, table.distances(at[ra], at[rb]))
    return d


_ONE_EACH_ROUNDS = 16
"""Rounds in which each group confirms one candidate of its own before the rest are confirmed at
once: groups at least halve in number each round while those candidates hold (a cluster of 64
copies joins in 6), and a near miss only gives its group another try in the next round."""


def _entry_pairs(
    blocks: tuple[np.ndarray, ...], u: np.ndarray, v: np.ndarray, *, subs: bool, fresh_only: bool
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pairs of entries (positions in the value-sorted order) of values ``u`` and ``v``: each
    canonical entry of u against every entry of v, and with ``subs`` each sub-region entry of u
    against the canonical ones of v. ``blocks``: per value, where its entries start, how many
    there are, how many are canonical, and how many of the canonical and of the sub-region
    ones are fresh (each kind's fresh entries first).

    ``fresh_only``: only the pairs that hold a fresh entry. A value that a new copy shares with
    20 reference copies made 441 pairs, 21 of them with the new one (a batch of 1,000 against
    20,000 cached files: ~1,000,000 pairs crossed and then dropped for ~50,000)."""
    start, count, canon, canon_new, sub_new = (b[u] for b in blocks)
    v_start, v_count, v_canon, v_canon_new, v_sub_new = (b[v] for b in blocks)
    if not fresh_only:
        out = [_cross(start, canon, v_start, v_count)]
        return out + ([_cross(start + canon, count - canon, v_start, v_canon)] if subs else [])
    canon_old, sub_start = canon - canon_new, start + canon
    out = [
        _cross(start, canon_new, v_start, v_count),  # u's fresh canonical: every entry of v
        _cross(start + canon_new, canon_old, v_start, v_canon_new),  # u's other canonical: v's fresh ones
        _cross(start + canon_new, canon_old, v_start + v_canon, v_sub_new),
    ]
    if subs:
        out += [
            _cross(sub_start, sub_new, v_start, v_canon),  # u's fresh sub-regions: v's canonical
            _cross(sub_start + sub_new, count - canon - sub_new, v_start, v_canon_new),
        ]
    return out


def _spanning(
    pairs: np.ndarray,
    n: int,
    known: Sequence[tuple[int, int]],
    confirm: Callable[[np.ndarray], np.ndarray],
    threshold: int,
) -> list[tuple[int, int, int]]:
    """The confirmed links of :func:`region_links` with ``spanning``, found as Borůvka finds a
    spanning forest: each round, every group confirms the first of its candidates that leads
    to another group, and the groups of those within ``threshold`` are joined; a candidate
    whose images are in one group already is never confirmed (it joins nothing new), so the
    groups are those of every link. After :data:`_ONE_EACH_ROUNDS` rounds the candidates left
    are confirmed at once."""
    uf = UnionFind(n)
    for a, b in known:
        uf.union(a, b)
    tried = np.zeros(len(pairs), dtype=bool)
    out: list[tuple[int, int, int]] = []
    for round_ in range(_ONE_EACH_ROUNDS + 1):
        root = _roots(uf)
        ga, gb = root[pairs[:, 0]], root[pairs[:, 1]]
        open_ = np.flatnonzero((ga != gb) & ~tried)
        if not len(open_):
            break
        if round_ < _ONE_EACH_ROUNDS:  # each group's first candidate (one may serve two groups)
            group = np.concatenate([ga[open_], gb[open_]])
            order = np.argsort(group, kind="stable")
            ordered = group[order]
            first = order[np.concatenate(([True], ordered[1:] != ordered[:-1]))]
            open_ = _distinct(np.concatenate([open_, open_])[first])
        tried[open_] = True
        d = confirm(pairs[open_])
        near = d <= threshold
        for k, dist in zip(open_[near].tolist(), d[near].tolist()):
            a, b = int(pairs[k, 0]), int(pairs[k, 1])
            uf.union(a, b)
            out.append((a, b, int(dist)))
    return sorted(out)


def _roots(uf: UnionFind) -> np.ndarray:
    """Every node's root, by pointer jumping over the parent array (a Python find per node cost
    as much as a round's confirmations on 20,000 images)."""
    parent = np.array(uf.parent, dtype=np.int64)
    while True:
        up = parent[parent]
        if np.array_equal(up, parent):
            return parent
        parent = up
