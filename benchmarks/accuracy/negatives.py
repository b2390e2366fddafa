"""Different photos in one shared backdrop: how many files a plan would remove, every one wrongly.

Every file of a set shows a different dogs-1000 photo (byte-identical inputs dropped first), on a
backdrop all files of the set share, so a removal is always one photo removed in favour of
another. Two backdrops that the content box cannot peel (their rows and columns are not plain
bands), so the framed-image guard never applies:

- ``gradient``: an 800 x 800 radial gradient (a studio sweep: light centre, darker corners), the
  photo centred on it at 20%, 25% or 30% of the side;
- ``viewer``: a 1280 x 800 photo-viewer window (a dark title bar with text, a toolbar of coloured
  buttons, an album list of 22 text lines down the left side, a status bar), the photo centred in
  the viewing area at 15%, 25%, 35% or 50% of the window's width;
- ``sweep`` (not in the default ``--sets``): an 800 x 800 studio sweep (light at the top, darker
  towards the floor), the photo as an oval cut-out (a product shot) at 50%, 65% or 80% of the side.

Each set (``--photos`` files, JPEG q90) is scanned in-process, no cache, at the defaults (phash,
64 bits, T=8, regions on), with ``--no-regions`` and with ``--hash-size 16`` (its own default
threshold); the script prints clusters, files to remove and files for review.

Usage (from the repository root)::

    python -m benchmarks.accuracy.negatives --seed 0 --photos 40 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .generate import SOURCE_ENV, unique_photos

SHARES = {"gradient": (0.20, 0.25, 0.30), "viewer": (0.15, 0.25, 0.35, 0.50), "sweep": (0.50, 0.65, 0.80)}
SETTINGS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "--no-regions": {"regions": False},
    "--hash-size 16": {"hash_size": 16},
}


def gradient(side: int = 800) -> Image.Image:
    """A grey radial gradient: 235 at the centre, 85 at the corners."""
    yy, xx = np.mgrid[0:side, 0:side]
    r = np.hypot(xx - side / 2, yy - side / 2) / (side / 2 * 2**0.5)
    grey = np.clip(235 - 150 * r, 0, 255).astype(np.uint8)
    return Image.fromarray(np.repeat(grey[..., None], 3, axis=2), "RGB")


def sweep(side: int = 800) -> Image.Image:
    """A grey studio sweep: 230 at the top, falling to 170 at the floor and a little to the sides."""
    yy, xx = np.mgrid[0:side, 0:side] / side
    grey = np.clip(230 - 60 * yy**2 - 20 * (xx - 0.5) ** 2, 0, 255).astype(np.uint8)
    return Image.fromarray(np.repeat(grey[..., None], 3, axis=2), "RGB")


VIEWER_SIZE, VIEWER_AREA = (1280, 800), (260, 84, 1280, 772)  # the window; where the photo is shown


def viewer() -> Image.Image:
    """A photo viewer's window: title bar, toolbar, an album list down the left, status bar."""
    w, h = VIEWER_SIZE
    out = Image.new("RGB", (w, h), (236, 236, 236))
    draw = ImageDraw.Draw(out)
    draw.rectangle((0, 0, w, 36), fill=(52, 58, 70))
    draw.text((14, 8), "PhotoViewer Pro - Library - untitled.jpg", fill=(255, 255, 255),
              font=ImageFont.load_default(size=18))  # fmt: skip
    draw.rectangle((0, 36, w, 84), fill=(250, 250, 250))
    for k in range(14):
        draw.rounded_rectangle((12 + 44 * k, 46, 44 + 44 * k, 76), 5, fill=(90 + 9 * k, 130, 200 - 7 * k))
    draw.rectangle((0, 84, VIEWER_AREA[0], h - 28), fill=(245, 246, 248))
    small = ImageFont.load_default(size=14)
    for k in range(22):
        draw.text((18, 96 + 30 * k), f"Album {k:02d}  - holidays {2000 + k}", fill=(40, 40, 40), font=small)
    draw.rectangle((0, h - 28, w, h), fill=(52, 58, 70))
    draw.text((10, h - 24), "1 of 248 selected    zoom 100%    sRGB", fill=(255, 255, 255), font=small)
    return out


def place(photo: Image.Image, kind: str, share: float) -> Image.Image:
    """``photo`` on the set's backdrop at ``share`` of its side (gradient, sweep) or width (viewer)."""
    mask = None
    if kind in ("gradient", "sweep"):
        canvas = gradient() if kind == "gradient" else sweep()
        scale = min(canvas.width * share / photo.width, canvas.height * share / photo.height)
        area = (0, 0, canvas.width, canvas.height)
    else:
        canvas = viewer()
        area = VIEWER_AREA
        scale = min(canvas.width * share / photo.width, (area[3] - area[1]) / photo.height)
    size = (max(1, round(photo.width * scale)), max(1, round(photo.height * scale)))
    small = photo.resize(size, Image.Resampling.LANCZOS)
    if kind == "sweep":  # an oval cut-out, as product shots on a sweep often are
        mask = Image.new("L", small.size, 0)
        ImageDraw.Draw(mask).ellipse((0, 0, small.width - 1, small.height - 1), fill=255)
    left = area[0] + (area[2] - area[0] - small.width) // 2
    top = area[1] + (area[3] - area[1] - small.height) // 2
    canvas.paste(small, (left, top), mask)
    return canvas


def build(photos: list[Path], folder: Path, kind: str, share: float) -> None:
    folder.mkdir(parents=True)
    for i, photo in enumerate(photos):
        with Image.open(photo) as im:
            place(im.convert("RGB"), kind, share).save(folder / f"{i:03d}.jpg", quality=90)


def score(folder: Path, jobs: int) -> dict[str, dict[str, int]]:
    """Clusters, files to remove and files for review, per setting."""
    import imgdup

    out = {}
    for name, options in SETTINGS.items():
        summary = imgdup.find_duplicates(folder, jobs=jobs, **options).summary
        out[name] = {"clusters": summary.clusters, "remove": summary.to_remove, "review": summary.to_review}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="which photos (default 0)")
    parser.add_argument("--photos", type=int, default=40, help="files per set, each a different photo (default 40)")
    parser.add_argument(
        "--sets", default="gradient,viewer", help="comma-separated: gradient, viewer, sweep (default: gradient,viewer)"
    )
    parser.add_argument("--source", type=Path, help=f"folder of photos (default: ${SOURCE_ENV} or dogs-1000)")
    parser.add_argument("--workdir", type=Path, help="build the sets here and keep them (absent or empty); "
                        "default: a temporary folder, removed at the end")  # fmt: skip
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--smoke", action="store_true", help="4 photos, one share per set (CI: the script runs)")
    args = parser.parse_args(argv)
    kinds = args.sets.split(",")
    if set(kinds) - set(SHARES):
        parser.error(f"--sets: choose from {', '.join(SHARES)}")
    sets = [(kind, share) for kind in kinds for share in SHARES[kind][: 1 if args.smoke else None]]
    n = 4 if args.smoke else args.photos
    from benchmarks._common import photos_and_workdir

    args.source = photos_and_workdir(parser, args.source, args.workdir)
    photos, _dropped = unique_photos(args.source)
    if len(photos) < n * len(sets):
        sys.exit(f"{args.source} holds {len(photos)} distinct photos, fewer than {n} x {len(sets)} sets")
    chosen = random.Random(args.seed).sample(photos, n * len(sets))  # no photo in two sets
    started = time.perf_counter()
    rows: dict[str, dict[str, dict[str, int]]] = {}
    with tempfile.TemporaryDirectory(prefix="imgdup-negatives-") as tmp:
        workdir = args.workdir or Path(tmp)
        for k, (kind, share) in enumerate(sets):
            label = f"{kind} {share:.0%}"
            folder = workdir / f"{kind}-{round(share * 100)}"
            build(chosen[k * n : (k + 1) * n], folder, kind, share)
            rows[label] = score(folder, args.jobs)
            print(f"{label}: done", file=sys.stderr, flush=True)
    command = "python -m benchmarks.accuracy.negatives " + " ".join(
        [f"--seed {args.seed}", f"--photos {n}", f"--sets {args.sets}", f"--jobs {args.jobs}"]
    )
    lines = [
        f"Command: `{command}`. {n} different photos per set, in-process, no cache.",
        "Per setting: clusters / files to remove / files for review (every cluster is a wrong one).",
        "",
        "| set (photo's share of the side or width) | " + " | ".join(SETTINGS) + " |",
        "|---|" + "---:|" * len(SETTINGS),
    ]
    for label, figs in rows.items():
        cells = [f"{f['clusters']} / {f['remove']} / {f['review']}" for f in figs.values()]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    total = {name: sum(figs[name]["remove"] for figs in rows.values()) for name in SETTINGS}
    lines.append(f"| removed, all sets ({n * len(sets)} photos) | " + " | ".join(str(t) for t in total.values()) + " |")
    print("\n".join(lines))
    print(f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({"command": command, "sets": rows}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
