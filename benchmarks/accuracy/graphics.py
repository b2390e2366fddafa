"""Flat graphics to build the accuracy benchmark from: icons, flags, clip art, not photos.

Each picture is 3-8 flat rectangles and ellipses of random colours on a plain background, at
icon and clip-art sizes (64-256 px). Perceptual hashes see their grey levels only, and most of
their hash bits are the signs of near-zero coefficients: different pictures of this kind come
far closer than different photos do, and pictures that differ only in colour come out alike.
``generate.py --source`` builds the benchmark from them as it does from photos::

    python -m benchmarks.accuracy.graphics --out /tmp/gfx/src --count 1500 --seed 11
    python -m benchmarks.accuracy.generate --source /tmp/gfx/src --out /tmp/gfx/dataset \\
        --sources 150 --distractors 1350 --seed 0
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

SIZES = ((64, 64), (96, 72), (80, 80), (128, 96), (160, 120), (256, 192), (200, 200))


def picture(rng: random.Random) -> Image.Image:
    """One flat graphic: a plain background and 3-8 filled shapes, some reaching past the edges."""
    w, h = rng.choice(SIZES)
    img = Image.new("RGB", (w, h), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(3, 8)):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        box = (x0, y0, x0 + rng.randint(5, w), y0 + rng.randint(5, h))
        fill = tuple(rng.randrange(256) for _ in range(3))
        (draw.rectangle if rng.random() < 0.5 else draw.ellipse)(box, fill=fill)
    return img


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder to write PNGs to (absent or empty)")
    p.add_argument("--count", type=int, default=1500)
    p.add_argument("--seed", type=int, default=11)
    args = p.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        p.error(f"{args.out} is not empty")
    args.out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    for k in range(args.count):
        picture(rng).save(args.out / f"g{k:05d}.png")
    print(f"wrote {args.count} pictures to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
