"""Layout edits for the accuracy benchmark: borders, letterboxes, captions, small rotations, crops,
screenshots and collages (the copies scraped datasets are full of).

Each edit is a pure function ``(upright RGB photo, rng) -> RGB image``; ``generate.py`` registers
:data:`EDITS` after its own transforms and saves each result as JPEG q92. ``hard`` marks edits
imgdup is not expected to find by default (rotations beyond 3 degrees, larger crops, screenshots,
collages); :data:`CATEGORY` groups them for the per-category table (``report.py``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

Edit = Callable[[Image.Image, random.Random], Image.Image]


def bordered(img: Image.Image, fraction: float, colour: tuple[int, int, int]) -> Image.Image:
    """A uniform border of ``fraction`` of the width (and of the height) on every side."""
    dx, dy = round(img.width * fraction), round(img.height * fraction)
    out = Image.new("RGB", (img.width + 2 * dx, img.height + 2 * dy), colour)
    out.paste(img, (dx, dy))
    return out


def letterboxed(img: Image.Image, aspect: float = 16 / 9) -> Image.Image:
    """The photo centred in a black frame of the given aspect ratio (bars on two sides)."""
    w, h = img.size
    size = (round(h * aspect), h) if w / h < aspect else (w, round(w / aspect))
    out = Image.new("RGB", size, (0, 0, 0))
    out.paste(img, ((size[0] - w) // 2, (size[1] - h) // 2))
    return out


def captioned(img: Image.Image, rng: random.Random, fraction: float = 0.15) -> Image.Image:
    """A white band of ``fraction`` of the photo's height with a line of black text, above the photo."""
    band = max(8, round(img.height * fraction))
    out = Image.new("RGB", (img.width, img.height + band), (255, 255, 255))
    out.paste(img, (0, band))
    words = ["Figure", "A", "dog", "in", "the", "park", "photo", "by", "our", "reader", "2019", "(c)"]
    text = " ".join(rng.choice(words) for _ in range(rng.randint(3, 6)))
    font = ImageFont.load_default(size=max(6, round(band * 0.45)))
    ImageDraw.Draw(out).text((round(band * 0.3), round(band * 0.25)), text, fill=(0, 0, 0), font=font)
    return out


def inner_rectangle(width: int, height: int, degrees: float) -> tuple[int, int]:
    """The largest rectangle of the same aspect ratio inside a ``width`` x ``height`` one rotated by ``degrees``."""
    a = math.radians(abs(degrees))
    scale = min(1 / (math.cos(a) + (width / height) * math.sin(a)), 1 / (math.cos(a) + (height / width) * math.sin(a)))
    return max(1, math.floor(width * scale)), max(1, math.floor(height * scale))


def rotated(img: Image.Image, rng: random.Random, degrees: float) -> Image.Image:
    """Rotated by ``degrees`` (random sign) and cropped to the inner rectangle (no empty corners)."""
    angle = degrees if rng.random() < 0.5 else -degrees
    turned = img.rotate(angle, resample=Image.Resampling.BICUBIC)
    w, h = inner_rectangle(img.width, img.height, degrees)
    left, top = (img.width - w) // 2, (img.height - h) // 2
    return turned.crop((left, top, left + w, top + h))


def edge_cropped(img: Image.Image, rng: random.Random, fraction: float) -> Image.Image:
    """``fraction`` of the width and of the height cut off two adjacent edges (a random corner kept)."""
    dx, dy = round(img.width * fraction), round(img.height * fraction)
    left = dx if rng.random() < 0.5 else 0
    top = dy if rng.random() < 0.5 else 0
    return img.crop((left, top, left + img.width - dx, top + img.height - dy))


def centre_cropped(img: Image.Image, fraction: float) -> Image.Image:
    """Centre crop removing ``fraction`` of the width and of the height."""
    dx, dy = round(img.width * fraction / 2), round(img.height * fraction / 2)
    return img.crop((dx, dy, img.width - dx, img.height - dy))


def _noise_field(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """A smooth random colour field with a few shapes: a stand-in picture that is in no dataset."""
    nrng = np.random.default_rng(rng.randrange(2**32))
    base = nrng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    img = Image.fromarray(base, "RGB").resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    w, h = size
    for _ in range(5):
        x0, y0 = rng.randrange(max(1, w * 3 // 4)), rng.randrange(max(1, h * 3 // 4))
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse((x0, y0, x0 + rng.randint(4, max(5, w // 3)), y0 + rng.randint(4, max(5, h // 3))), fill=colour)
    return img.filter(ImageFilter.GaussianBlur(2))


def screenshot(img: Image.Image, rng: random.Random, share: float = 0.6) -> Image.Image:
    """The photo at ``share`` of the screenshot's width, in a window (title bar with text, buttons,
    a toolbar and a status line) on a plain desktop."""
    pw, ph = img.size  # the photo keeps its pixels; the screen is larger
    sw, sh = round(pw / share), round(ph / share)
    desktop = (rng.randrange(20, 90), rng.randrange(60, 140), rng.randrange(120, 200))
    out = Image.new("RGB", (sw, sh), desktop)
    draw = ImageDraw.Draw(out)
    wx0, wy0 = round(sw * 0.08), round(sh * 0.05)
    wx1, wy1 = sw - round(sw * 0.06), sh - round(sh * 0.04)
    title = max(10, round(sh * 0.06))
    draw.rectangle((wx0, wy0, wx1, wy1), fill=(242, 242, 242), outline=(90, 90, 90))
    draw.rectangle((wx0, wy0, wx1, wy0 + title), fill=(214, 214, 220))
    font = ImageFont.load_default(size=max(6, round(title * 0.6)))
    draw.text(
        (wx0 + title, wy0 + title * 0.2), f"IMG_{rng.randint(1000, 9999)}.jpg - Viewer", fill=(0, 0, 0), font=font
    )
    for k, colour in enumerate(((230, 80, 70), (240, 190, 60), (90, 190, 90))):
        cx = wx1 - title * (k + 1)
        draw.ellipse((cx, wy0 + title * 0.25, cx + title * 0.5, wy0 + title * 0.75), fill=colour)
    toolbar = wy0 + title + max(4, round(title * 0.8))
    draw.line((wx0, toolbar, wx1, toolbar), fill=(180, 180, 180))
    draw.text((wx0 + title, wy1 - title), "100%   1/1", fill=(60, 60, 60), font=font)
    px = (wx0 + wx1 - pw) // 2
    py = max(toolbar + 2, (toolbar + wy1 - title - ph) // 2)
    out.paste(img, (px, py))
    return out


def collage_half(img: Image.Image, rng: random.Random) -> Image.Image:
    """The photo fills one half of a two-picture collage (the other half: a picture in no dataset)."""
    other = _noise_field(rng, img.size)
    out = Image.new("RGB", (img.width * 2, img.height), (255, 255, 255))
    left = rng.random() < 0.5
    out.paste(img, (0 if left else img.width, 0))
    out.paste(other, (img.width if left else 0, 0))
    return out


def _random_colour(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


# (name, hard, category, description, edit). Appended after generate.py's own transforms, so the
# random streams of those (and so their files) do not change.
EDITS: tuple[tuple[str, bool, str, str, Edit], ...] = (
    ("border_5_white", False, "border", "white border, 5% of the side on every side",
     lambda im, r: bordered(im, 0.05, (255, 255, 255))),
    ("border_10_black", False, "border", "black border, 10% of the side on every side",
     lambda im, r: bordered(im, 0.10, (0, 0, 0))),
    ("border_20_colour", False, "border", "border of a random colour, 20% of the side on every side",
     lambda im, r: bordered(im, 0.20, _random_colour(r))),
    ("letterbox_16x9", False, "letterbox", "centred in a black 16:9 frame", lambda im, r: letterboxed(im)),
    ("caption_bar", False, "caption", "white band with a line of text (15% of the height) above the photo",
     captioned),
    ("rotate_2", False, "rotation <= 3", "rotated 2 degrees, cropped to the inner rectangle",
     lambda im, r: rotated(im, r, 2)),
    ("rotate_3", False, "rotation <= 3", "rotated 3 degrees, cropped to the inner rectangle",
     lambda im, r: rotated(im, r, 3)),
    ("rotate_5", True, "rotation 5", "rotated 5 degrees, cropped to the inner rectangle",
     lambda im, r: rotated(im, r, 5)),
    ("edge_crop_5", False, "edge crop 5%", "5% cut off two adjacent edges", lambda im, r: edge_cropped(im, r, 0.05)),
    ("edge_crop_10", True, "edge crop 10%", "10% cut off two adjacent edges",
     lambda im, r: edge_cropped(im, r, 0.10)),
    ("crop_30", True, "centre crop 30%", "centre crop removing 30% of width and height",
     lambda im, r: centre_cropped(im, 0.30)),
    ("screenshot", True, "screenshot", "pasted at 60% of the width into a window on a desktop", screenshot),
    ("collage_half", True, "collage", "fills one half of a two-picture collage", collage_half),
)  # fmt: skip

# Categories of generate.py's own transforms that the targets name.
CATEGORY: dict[str, str] = {
    "crop_5": "centre crop 5%",
    "chain_crop5_q70": "centre crop 5%",
    "crop_10": "centre crop 10%",
    "crop_20": "centre crop 20%",
    **{name: category for name, _hard, category, _d, _e in EDITS},
}
