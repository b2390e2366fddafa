"""Build a labelled near-duplicate dataset from a folder of real photos.

Each chosen *source* photo is copied once as the ``original`` and once per transform
(re-encodes, resizes, crops, colour changes, flips, ...). The remaining photos are copied
unchanged as *distractors*: pictures with no duplicate at all. File names and folders are
random, so nothing but the pixels tells which files belong together. The ground truth is
written beside the dataset (never inside it), one record per file::

    {"relpath": "k3/9f2c81d04ab7.jpeg", "group": 12, "transform": "jpeg_q50", "hard": false}

``group`` is the source id (``null`` for distractors). ``hard`` marks transforms that a
perceptual hash is not expected to survive (flip, 90-degree rotation, 20% crop; and of the
layout edits in ``edits.py``: 5-degree rotation, 10% edge crop, 30% crop, screenshot, collage).

Usage (from the repository root)::

    python -m benchmarks.accuracy.generate --out /tmp/acc/dataset --sources 150 --distractors 300
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

from .edits import EDITS

TRUTH_SCHEMA = "imgdup.accuracy-truth/1"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SOURCE = REPO_ROOT.parent / "shared" / "datasets" / "dogs-1000"
SOURCE_ENV = "IMGDUP_DOGS1000"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}

# Several spellings per format, so the extension says nothing about how a file was made.
EXTENSIONS = {
    "JPEG": (".jpg", ".jpeg", ".JPG", ".JPEG"),
    "PNG": (".png", ".PNG"),
    "WEBP": (".webp", ".WEBP"),
}
EXIF_ORIENTATION = 0x0112
# Orientation tag -> transpose that turns upright pixels into the stored pixels, chosen so that
# ImageOps.exif_transpose (which applies the inverse) shows the picture upright again.
STORED_ROTATION = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


class GenerateError(Exception):
    """A user-facing problem (missing source folder, too few photos, bad output path)."""


@dataclass(frozen=True)
class Rendered:
    """One encoded variant: pixels, the format to save them in and the save options."""

    image: Image.Image
    fmt: str
    options: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Transform:
    """A named way of making a near-duplicate; ``render`` gets the upright RGB source."""

    name: str
    hard: bool
    description: str
    render: Callable[[Image.Image, random.Random], Rendered] | None  # None: byte-exact copy


def _resize(img: Image.Image, fx: float, fy: float | None = None) -> Image.Image:
    fy = fx if fy is None else fy
    size = (max(1, round(img.width * fx)), max(1, round(img.height * fy)))
    return img.resize(size, Image.Resampling.LANCZOS)


def _crop(img: Image.Image, fraction: float) -> Image.Image:
    """Centre crop removing ``fraction`` of the width and of the height (half on each side)."""
    dx, dy = round(img.width * fraction / 2), round(img.height * fraction / 2)
    return img.crop((dx, dy, img.width - dx, img.height - dy))


def _watermark(img: Image.Image, rng: random.Random) -> Image.Image:
    """A filled rectangle with a short text in a random corner (about 30% x 10% of the image)."""
    out = img.copy()
    w, h = max(8, round(img.width * 0.3)), max(6, round(img.height * 0.1))
    margin = max(1, round(min(img.size) * 0.02))
    left = margin if rng.random() < 0.5 else img.width - w - margin
    top = margin if rng.random() < 0.5 else img.height - h - margin
    draw = ImageDraw.Draw(out)
    draw.rectangle((left, top, left + w, top + h), fill=(245, 245, 245), outline=(20, 20, 20))
    font = ImageFont.load_default(size=max(6, round(h * 0.6)))
    draw.text((left + margin, top + h * 0.15), "(c) PHOTO", fill=(200, 30, 30), font=font)
    return out


def exif_rotated(img: Image.Image, orientation: int) -> Image.Image:
    """Pixels rotated by 90 degrees with an Orientation tag that makes a viewer show them upright."""
    stored = img.transpose(STORED_ROTATION[orientation])
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    stored.info["exif"] = exif.tobytes()
    upright = ImageOps.exif_transpose(stored.copy())
    if upright.size != img.size or upright.tobytes() != img.tobytes():
        raise AssertionError(f"orientation {orientation} does not undo the stored rotation")
    return stored


def _jpeg(quality: int) -> dict[str, object]:
    return {"quality": quality}


def _transforms() -> tuple[Transform, ...]:
    """The transform catalogue; the order is the order of the truth file and of reports."""

    def jpeg(q: int) -> Transform:
        return Transform(
            f"jpeg_q{q}",
            False,
            f"JPEG re-encode at quality {q}",
            lambda im, _r: Rendered(im, "JPEG", _jpeg(q)),
        )

    def scale(pct: int) -> Transform:
        kind = "upscale" if pct > 100 else "downscale"
        return Transform(
            f"{kind}_{pct}",
            False,
            f"{kind} to {pct}% (Lanczos), JPEG q92",
            lambda im, _r: Rendered(_resize(im, pct / 100), "JPEG", _jpeg(92)),
        )

    def crop(pct: int) -> Transform:
        return Transform(
            f"crop_{pct}",
            pct >= 20,
            f"centre crop removing {pct}% of width and height, JPEG q92",
            lambda im, _r: Rendered(_crop(im, pct / 100), "JPEG", _jpeg(92)),
        )

    def exif_rot(im: Image.Image, r: random.Random) -> Rendered:
        orientation = r.choice(sorted(STORED_ROTATION))
        stored = exif_rotated(im, orientation)
        return Rendered(stored, "JPEG", {"quality": 92, "exif": stored.info["exif"]})

    return (
        Transform("exact_copy", False, "byte-identical copy", None),
        *(jpeg(q) for q in (90, 70, 50, 30)),
        *(scale(p) for p in (75, 50, 25, 150)),
        Transform("png", False, "lossless PNG re-encode", lambda im, _r: Rendered(im, "PNG")),
        Transform(
            "webp",
            False,
            "WebP re-encode at quality 80",
            lambda im, _r: Rendered(im, "WEBP", {"quality": 80}),
        ),
        *(crop(p) for p in (5, 10, 20)),
        Transform(
            "brightness_up",
            False,
            "brightness x1.25, JPEG q92",
            lambda im, _r: Rendered(ImageEnhance.Brightness(im).enhance(1.25), "JPEG", _jpeg(92)),
        ),
        Transform(
            "brightness_down",
            False,
            "brightness x0.75, JPEG q92",
            lambda im, _r: Rendered(ImageEnhance.Brightness(im).enhance(0.75), "JPEG", _jpeg(92)),
        ),
        Transform(
            "contrast",
            False,
            "contrast x1.3, JPEG q92",
            lambda im, _r: Rendered(ImageEnhance.Contrast(im).enhance(1.3), "JPEG", _jpeg(92)),
        ),
        Transform(
            "blur",
            False,
            "Gaussian blur radius 1.2, JPEG q92",
            lambda im, _r: Rendered(im.filter(ImageFilter.GaussianBlur(1.2)), "JPEG", _jpeg(92)),
        ),
        Transform(
            "grayscale",
            False,
            "converted to 8-bit grayscale, JPEG q92",
            lambda im, _r: Rendered(im.convert("L"), "JPEG", _jpeg(92)),
        ),
        Transform(
            "watermark",
            False,
            "filled rectangle with text in a corner, JPEG q92",
            lambda im, r: Rendered(_watermark(im, r), "JPEG", _jpeg(92)),
        ),
        Transform(
            "exif_rotated",
            False,
            "pixels rotated 90 degrees, EXIF Orientation 6 or 8 shows them upright, JPEG q92",
            exif_rot,
        ),
        Transform(
            "flip",
            True,
            "horizontal mirror, JPEG q92",
            lambda im, _r: Rendered(ImageOps.mirror(im), "JPEG", _jpeg(92)),
        ),
        Transform(
            "rotate_90",
            True,
            "pixels rotated 90 degrees clockwise, no tag, JPEG q92",
            lambda im, _r: Rendered(im.transpose(Image.Transpose.ROTATE_270), "JPEG", _jpeg(92)),
        ),
        Transform(
            "squash_10",
            False,
            "width scaled to 90% (aspect ratio changed), JPEG q92",
            lambda im, _r: Rendered(_resize(im, 0.9, 1.0), "JPEG", _jpeg(92)),
        ),
        Transform(
            "chain_down50_q50",
            False,
            "downscale to 50% then JPEG q50",
            lambda im, _r: Rendered(_resize(im, 0.5), "JPEG", _jpeg(50)),
        ),
        Transform(
            "chain_crop5_q70",
            False,
            "centre crop 5% then JPEG q70",
            lambda im, _r: Rendered(_crop(im, 0.05), "JPEG", _jpeg(70)),
        ),
        Transform(
            "chain_down75_webp",
            False,
            "downscale to 75% then WebP q60",
            lambda im, _r: Rendered(_resize(im, 0.75), "WEBP", {"quality": 60}),
        ),
        Transform(
            "chain_watermark_q60",
            False,
            "watermark then JPEG q60",
            lambda im, r: Rendered(_watermark(im, r), "JPEG", _jpeg(60)),
        ),
        Transform(
            "chain_bright_down50",
            False,
            "brightness x1.2, downscale to 50%, JPEG q75",
            lambda im, _r: Rendered(_resize(ImageEnhance.Brightness(im).enhance(1.2), 0.5), "JPEG", _jpeg(75)),
        ),
    )


def _edit(
    name: str, hard: bool, description: str, edit: Callable[[Image.Image, random.Random], Image.Image]
) -> Transform:
    return Transform(name, hard, f"{description}, JPEG q92", lambda im, r: Rendered(edit(im, r), "JPEG", _jpeg(92)))


# --- keep-policy block (issue 9): quality classes and enlargements -------------------------
# Every file carries the class of copy it is, so the evaluator can say what kind of file the
# keep policy kept: source (the original, a byte copy), lossless (same pixels, lossless format),
# degraded (re-encoded, blurred, a lossless file of a degraded copy), lower resolution (resized
# down or cropped), enlargement, grayscale, edited (brightness, contrast, overlay, mirror).
QUALITY_CLASS = {
    "original": "source",
    "exact_copy": "source",
    "png": "lossless",
    **dict.fromkeys(("jpeg_q90", "jpeg_q70", "jpeg_q50", "jpeg_q30", "webp", "blur", "exif_rotated"), "degraded"),
    **dict.fromkeys(("png_of_q30", "rotate_90"), "degraded"),
    **dict.fromkeys(
        ("downscale_75", "downscale_50", "downscale_25", "crop_5", "crop_10", "crop_20"), "lower resolution"
    ),
    **dict.fromkeys(("squash_10", "chain_down50_q50", "chain_crop5_q70", "chain_down75_webp"), "lower resolution"),
    "chain_bright_down50": "edited",
    **dict.fromkeys(("upscale_150", "enlarge_2x_bicubic", "enlarge_2x_lanczos"), "enlargement"),
    **dict.fromkeys(
        ("enlarge_4x_bicubic", "enlarge_4x_lanczos", "enlarge_8x_bicubic", "enlarge_8x_lanczos"), "enlargement"
    ),
    "grayscale": "grayscale",
    **dict.fromkeys(
        ("brightness_up", "brightness_down", "contrast", "watermark", "chain_watermark_q60", "flip"), "edited"
    ),
}


def _keep_policy_transforms() -> tuple[Transform, ...]:
    """Enlargements by 2x, 4x and 8x (bicubic and Lanczos), and a PNG of a q30 JPEG.

    The 4x and 8x enlargements are made from the 50% and 25% downscales, so every enlargement
    ends at twice the original's size (a 8x enlargement of a 500 px photo would be 4000 px):
    each is an enlargement of a sibling in the set, and larger than the original.
    """

    def enlarge(factor: int, method: Image.Resampling, label: str) -> Transform:
        def render(im: Image.Image, _r: random.Random) -> Rendered:
            small = _resize(im, 2 / factor) if factor > 2 else im
            return Rendered(small.resize((im.width * 2, im.height * 2), method), "JPEG", _jpeg(92))

        return Transform(
            f"enlarge_{factor}x_{label}",
            False,
            f"{'' if factor == 2 else f'{200 // factor}% downscale, then '}{factor}x {label} enlargement, JPEG q92",
            render,
        )

    def png_of_q30(im: Image.Image, _r: random.Random) -> Rendered:
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=30)
        buf.seek(0)
        with Image.open(buf) as degraded:
            return Rendered(degraded.convert("RGB"), "PNG")

    return (
        *(
            enlarge(f, m, n)
            for f in (2, 4, 8)
            for m, n in ((Image.Resampling.BICUBIC, "bicubic"), (Image.Resampling.LANCZOS, "lanczos"))
        ),
        Transform("png_of_q30", False, "JPEG q30 decoded and saved as PNG (big file, degraded pixels)", png_of_q30),
    )


# --- end of keep-policy block -------------------------------------------------------------

# Layout edits (borders, letterboxes, captions, small rotations, crops, screenshots): edits.py.
# Crops hold less of the picture; the others add or move things around it.
QUALITY_CLASS.update({n: "lower resolution" if "crop" in n else "edited" for n, *_rest in EDITS})
TRANSFORMS = (*_transforms(), *_keep_policy_transforms(), *(_edit(n, h, d, e) for n, h, _c, d, e in EDITS))


def resolve_source(cli_value: str | None) -> Path:
    """``--source`` wins, then ``$IMGDUP_DOGS1000``, then ``../shared/datasets/dogs-1000``."""
    raw = cli_value or os.environ.get(SOURCE_ENV) or str(DEFAULT_SOURCE)
    path = Path(raw).expanduser()
    if not path.is_dir():
        raise GenerateError(
            f"source folder of photos not found: {path}\n"
            f"  pass --source DIR or set {SOURCE_ENV}=DIR (default: {DEFAULT_SOURCE})"
        )
    return path


def unique_photos(folder: Path) -> tuple[list[Path], int]:
    """Image files under ``folder``, sorted, keeping the first of each byte-identical set.

    Returns the kept paths and how many duplicates were dropped: a duplicate among the inputs
    would make two "unrelated" pictures identical and the ground truth wrong.
    """
    seen: set[str] = set()
    kept: list[Path] = []
    dropped = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest in seen:
            dropped += 1
            continue
        seen.add(digest)
        kept.append(path)
    return kept, dropped


class _Namer:
    """Random, unique, meaningless relative paths spread over a few nested folders."""

    def __init__(self, rng: random.Random, n_files: int) -> None:
        self._rng = rng
        self._used: set[str] = set()
        n_dirs = max(3, n_files // 40)
        self._dirs: list[str] = [""]
        for _ in range(n_dirs):
            parent = rng.choice(self._dirs) if rng.random() < 0.6 else ""
            name = self._token(rng.randint(2, 6))
            self._dirs.append(f"{parent}{name}/")

    def _token(self, length: int) -> str:
        return "".join(self._rng.choice("0123456789abcdefghijklmnopqrstuvwxyz") for _ in range(length))

    def path(self, fmt: str) -> str:
        while True:
            rel = self._rng.choice(self._dirs) + self._token(12) + self._rng.choice(EXTENSIONS[fmt])
            if rel.lower() not in self._used:  # case-insensitive file systems
                self._used.add(rel.lower())
                return rel


def _encode(rendered: Rendered) -> bytes:
    buf = io.BytesIO()
    rendered.image.save(buf, rendered.fmt, **rendered.options)
    return buf.getvalue()


def _format_of(path: Path) -> str:
    with Image.open(path) as im:
        fmt = im.format or "JPEG"
    return fmt if fmt in EXTENSIONS else "JPEG"


def _load_upright(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return ImageOps.exif_transpose(im).convert("RGB")


def generate(
    source: Path,
    out: Path,
    truth_path: Path,
    *,
    seed: int = 0,
    n_sources: int = 150,
    n_distractors: int | None = None,
    transforms: Sequence[Transform] = TRANSFORMS,
    log: Callable[[str], None] = lambda _msg: None,
) -> dict[str, object]:
    """Write the dataset into ``out`` (must be empty or absent) and the truth JSON; return the truth."""
    out = out.resolve()
    truth_path = truth_path.resolve()
    if truth_path == out or out in truth_path.parents:
        raise GenerateError(f"the truth file must lie outside the dataset: {truth_path}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GenerateError(f"output folder exists and is not empty: {out}")

    photos, dropped = unique_photos(source)
    log(f"{len(photos)} unique photos in {source} ({dropped} byte-identical duplicates ignored)")
    rng = random.Random(seed)
    rng.shuffle(photos)
    if n_sources < 0 or n_sources > len(photos):
        raise GenerateError(f"--sources {n_sources}: only {len(photos)} unique photos available")
    rest = photos[n_sources:]
    if n_distractors is None:
        n_distractors = len(rest)
    if n_distractors < 0 or n_distractors > len(rest):
        raise GenerateError(f"--distractors {n_distractors}: only {len(rest)} photos left after sources")
    sources, distractors = photos[:n_sources], rest[:n_distractors]

    namer = _Namer(random.Random(f"{seed}:names"), n_sources * (len(transforms) + 1) + n_distractors)
    files: list[dict[str, object]] = []
    out.mkdir(parents=True, exist_ok=True)

    def write(data: bytes, fmt: str, record: dict[str, object]) -> None:
        rel = namer.path(fmt)
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        files.append({"relpath": rel, **record})

    for group, path in enumerate(sources):
        original = path.read_bytes()
        fmt = _format_of(path)
        upright = _load_upright(path)
        base = {"group": group, "source": path.name}
        write(original, fmt, {**base, "transform": "original", "hard": False, "quality_class": "source"})
        trng = random.Random(f"{seed}:{group}")
        for t in transforms:
            record = {**base, "transform": t.name, "hard": t.hard, "quality_class": QUALITY_CLASS.get(t.name)}
            if t.render is None:
                write(original, fmt, record)
            else:
                rendered = t.render(upright, trng)
                write(_encode(rendered), rendered.fmt, record)
        if (group + 1) % 25 == 0:
            log(f"  {group + 1}/{n_sources} sources")
    for path in distractors:
        write(
            path.read_bytes(),
            _format_of(path),
            {"group": None, "source": path.name, "transform": "distractor", "hard": False},
        )

    truth: dict[str, object] = {
        "schema": TRUTH_SCHEMA,
        "dataset": str(out),
        "source_dir": str(source.resolve()),
        "seed": seed,
        "sources": n_sources,
        "distractors": n_distractors,
        "transforms": {
            t.name: {"hard": t.hard, "description": t.description, "quality_class": QUALITY_CLASS.get(t.name)}
            for t in transforms
        },
        "files": sorted(files, key=lambda f: str(f["relpath"])),
    }
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    truth_path.write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
    return truth


def default_truth_path(out: Path) -> Path:
    """``<out>.truth.json``: beside the dataset folder, never inside it."""
    out = out.resolve()
    return out.with_name(out.name + ".truth.json")


def _remove_previous(out: Path, truth_path: Path) -> None:
    """Delete a dataset this script made before; refuse anything else (a typo must not cost a folder)."""
    try:
        truth = json.loads(truth_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        truth = {}
    if truth.get("schema") != TRUTH_SCHEMA or Path(truth.get("dataset", "")) != out.resolve():
        raise GenerateError(f"--force: {out} is not described by {truth_path}; delete it yourself")
    shutil.rmtree(out)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", help=f"folder of real photos (default ${SOURCE_ENV} or {DEFAULT_SOURCE})")
    parser.add_argument("--out", required=True, type=Path, help="dataset folder to create (empty or absent)")
    parser.add_argument("--truth", type=Path, help="ground-truth JSON (default <out>.truth.json, beside it)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sources", type=int, default=150, help="photos that get variants (default 150)")
    parser.add_argument("--distractors", type=int, help="unrelated photos copied as-is (default: all the rest)")
    parser.add_argument("--force", action="store_true", help="replace a dataset previously generated at --out")
    args = parser.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr)

    try:
        source = resolve_source(args.source)
        truth_path = args.truth or default_truth_path(args.out)
        if args.force and args.out.exists():
            _remove_previous(args.out, truth_path)
        truth = generate(
            source,
            args.out,
            truth_path,
            seed=args.seed,
            n_sources=args.sources,
            n_distractors=args.distractors,
            log=log,
        )
    except GenerateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    n_files = len(truth["files"])  # type: ignore[arg-type]
    print(f"wrote {n_files} files to {truth['dataset']}\ntruth: {truth_path.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
