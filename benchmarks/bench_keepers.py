"""Which copy the default keep policy keeps, in the clusters a photo collection really holds.

Per dogs-1000 photo, seven versions of one picture, as a phone, a chat app and social media
leave them: the camera file (``IMG_NNNN.jpg``, q92), a chat re-send (q60), a centre square crop,
a half-size thumbnail, a caption "meme" (a white band with a line of text above the photo), a
copy in a thin white frame, and a colour-filtered copy. The camera file is the one to keep;
the script prints which version was kept, per version, over all clusters.

``--processed`` adds two versions a filter app leaves, saved at q90: a sharpened copy
(UnsharpMask radius 1, 80%) and a grainy one (Gaussian luminance noise, sigma 6). Neither
carries more of the picture than the camera file; the grainy one ranks below as "filtered",
the sharpened one only in part (see README, "Filtered copies saved at a higher JPEG quality").

    python benchmarks/bench_keepers.py                   # 100 photos (dogs-1000 #300-399)
    python benchmarks/bench_keepers.py --photos 20 --json out.json
    python benchmarks/bench_keepers.py --processed
    python benchmarks/bench_keepers.py --pages 0.15,0.2,0.25   # photo vs a copy on a page (pairs)
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

import imgdup
from benchmarks._common import dogs1000

VERSIONS = ("camera", "chat", "square", "thumb", "meme", "framed", "filter")
PROCESSED = ("sharpened", "grain")


def write_versions(photo: Path, folder: Path, index: int, processed: bool = False) -> None:
    """The seven versions of one photo in ``folder`` (named so that path order favours none),
    and with ``processed`` the sharpened and grainy ones."""
    folder.mkdir(parents=True)
    im = Image.open(photo).convert("RGB")
    w, h = im.size
    im.save(folder / f"IMG_{index:04d}.jpg", quality=92)
    im.save(folder / "chat.jpg", quality=60)
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    im.crop((left, top, left + side, top + side)).save(folder / "square.jpg", quality=85)
    im.resize((w // 2, h // 2), Image.Resampling.LANCZOS).save(folder / "thumb.jpg", quality=85)
    band = 40
    meme = Image.new("RGB", (w, h + band), (255, 255, 255))
    meme.paste(im, (0, band))
    font = ImageFont.load_default(size=18)
    ImageDraw.Draw(meme).text((10, 10), "Look at this dog!! #dogsofinstagram", fill=(0, 0, 0), font=font)
    meme.save(folder / "meme.jpg", quality=85)
    ImageOps.expand(im, border=max(8, w // 25), fill=(255, 255, 255)).save(folder / "framed.jpg", quality=90)
    ImageEnhance.Color(im).enhance(1.6).save(folder / "filter.jpg", quality=90)
    if processed:
        im.filter(ImageFilter.UnsharpMask(radius=1, percent=80, threshold=2)).save(folder / "sharpened.jpg", quality=90)
        grain = np.random.default_rng(index).normal(0.0, 6.0, (h, w, 1))
        Image.fromarray(np.clip(np.asarray(im, dtype=np.float64) + grain, 0, 255).astype(np.uint8)).save(
            folder / "grain.jpg", quality=90
        )


def write_page_pairs(photo: Path, folder: Path, index: int, shares: list[float], page: int = 800) -> None:
    """Per share, a folder with the photo (q92) and a copy of it centred on a white square page,
    scaled to cover that share of the page's area (q90): a scan or a slide of the photo."""
    im = Image.open(photo).convert("RGB")
    for share in shares:
        pair = folder / f"{share:g}" / f"{index:03d}"
        pair.mkdir(parents=True)
        im.save(pair / f"IMG_{index:04d}.jpg", quality=92)
        scale = (share * page * page / (im.width * im.height)) ** 0.5
        small = im.resize((max(8, round(im.width * scale)), max(8, round(im.height * scale))), Image.Resampling.LANCZOS)
        sheet = Image.new("RGB", (page, page), (255, 255, 255))
        sheet.paste(small, ((page - small.width) // 2, (page - small.height) // 2))
        sheet.save(pair / "page.jpg", quality=90)


def pages(photos: list[Path], shares: list[float], jobs: int) -> dict[str, dict[str, int]]:
    """Which of the two is kept, per share: pairs found as a cluster, photo kept, page kept."""
    out: dict[str, dict[str, int]] = {}
    areas = []
    for photo in photos:
        with Image.open(photo) as im:
            areas.append(im.width * im.height)
    with tempfile.TemporaryDirectory() as tmp:
        for i, photo in enumerate(photos):
            write_page_pairs(photo, Path(tmp), i, shares)
        for share in shares:
            result = imgdup.find_duplicates(Path(tmp) / f"{share:g}", jobs=jobs)
            kept = collections.Counter(version_of(c.keep.path) for c in result.clusters)
            out[f"{share:g}"] = {"pairs": len(photos), "found": len(result.clusters), "photo": kept.get("camera", 0),
                                 "page": kept.get("page", 0)}  # fmt: skip
            larger = sum(1 for a in areas if a > share * 800 * 800)
            print(f"  page at {share:4.0%} of its area: {len(result.clusters):3d} of {len(photos)} pairs found, "
                  f"photo kept in {kept.get('camera', 0):3d}, page in {kept.get('page', 0):3d} (the photo has more "
                  f"pixels than the page's copy of it in {larger})")  # fmt: skip
    return out


def version_of(path: str) -> str:
    name = Path(path).name
    return "camera" if name.startswith("IMG_") else Path(name).stem


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", type=int, default=100)
    p.add_argument("--first", type=int, default=300, help="index of the first dogs-1000 photo used")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--json", type=Path)
    p.add_argument("--processed", action="store_true", help="add a sharpened and a grainy version (q90)")
    p.add_argument("--pages", help="instead: pairs of a photo and a copy on an 800 px white page, at these shares of "
                   "its area (e.g. 0.15,0.2,0.25)")  # fmt: skip
    args = p.parse_args(argv)
    photos = sorted(p for p in dogs1000().iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    photos = photos[args.first : args.first + args.photos]
    if args.pages:
        print(f"{len(photos)} photos, each beside a copy on a white 800x800 page")
        found = pages(photos, [float(x) for x in args.pages.split(",")], args.jobs)
        if args.json:
            args.json.write_text(json.dumps({"photos": len(photos), "pages": found}))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, photo in enumerate(photos):
            write_versions(photo, Path(tmp) / f"{i:03d}", i, args.processed)
        result = imgdup.find_duplicates(tmp, jobs=args.jobs)
    kept = collections.Counter(version_of(c.keep.path) for c in result.clusters)
    reasons = collections.Counter(c.keep_reason for c in result.clusters if version_of(c.keep.path) != "camera")
    versions = VERSIONS + (PROCESSED if args.processed else ())
    print(f"{len(photos)} photos x {len(versions)} versions, {len(result.clusters)} clusters")
    for v in versions:
        print(f"  kept: {v:8s} {kept.get(v, 0):4d}")
    print(f"  camera file kept in {kept.get('camera', 0)} of {len(result.clusters)} clusters")
    for reason, n in reasons.most_common(5):
        print(f"    another kept ({n}): {reason}")
    if args.json:
        args.json.write_text(json.dumps({"photos": len(photos), "clusters": len(result.clusters), "kept": kept}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
