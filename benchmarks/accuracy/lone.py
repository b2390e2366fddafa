"""Recall of lone copies: each photo beside ONE edited copy of it, per edit, at the defaults.

The per-category table of ``layout.py`` (and README's) is measured on the sets ``generate.py``
builds, where every source photo has ~49 copies in one folder: a copy whose own link to the
original is missed is still clustered with it through a chain of the others (a 5-degree rotation
through the 3-degree one). A photo with one copy has no such chain. Here each edit gets a folder
of its own: ``--photos`` dogs-1000 photos (byte-identical inputs dropped first), each as its
untouched file and as one copy made by the edit (JPEG q92 unless the edit says otherwise). The
edits are ``edits.py``'s :data:`~benchmarks.accuracy.edits.EDITS`, ``generate.py``'s centre
crops and corner watermarks, and a cut of 5% or 10% off one edge only (a random one of the four).
imgdup runs in-process at the defaults (no cache). A copy is *found* when it is in one cluster
with its original; a *mixed* cluster holds two or more different photos (a wrong pair).

Usage (from the repository root)::

    python -m benchmarks.accuracy.lone --seed 0 --seed 1 --photos 60 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from .edits import EDITS
from .generate import SOURCE_ENV, TRANSFORMS, unique_photos

Made = tuple[Image.Image, dict[str, object]]  # pixels and JPEG save options
Make = Callable[[Image.Image, random.Random], Made]


def one_edge_cropped(img: Image.Image, rng: random.Random, fraction: float) -> Image.Image:
    """``fraction`` of the side cut off one edge (left, top, right or bottom, at random)."""
    dx, dy = round(img.width * fraction), round(img.height * fraction)
    edge = rng.randrange(4)
    box = [(dx, 0, img.width, img.height), (0, dy, img.width, img.height),
           (0, 0, img.width - dx, img.height), (0, 0, img.width, img.height - dy)][edge]  # fmt: skip
    return img.crop(box)


def _from_generate(name: str) -> Make:
    transform = next(t for t in TRANSFORMS if t.name == name)
    assert transform.render is not None

    def make(img: Image.Image, rng: random.Random) -> Made:
        assert transform.render is not None
        rendered = transform.render(img, rng)
        return rendered.image, dict(rendered.options)

    return make


def _q92(edit: Callable[[Image.Image, random.Random], Image.Image]) -> Make:
    return lambda img, rng: (edit(img, rng), {"quality": 92})


# (name, description, edit) in README's order.
KINDS: tuple[tuple[str, str, Make], ...] = (
    *((name, desc, _q92(edit)) for name, _hard, _cat, desc, edit in EDITS if name.startswith(("border", "letter"))),
    *((name, desc, _q92(edit)) for name, _hard, _cat, desc, edit in EDITS if name.startswith(("caption", "rotate"))),
    *((name, desc, _q92(edit)) for name, _hard, _cat, desc, edit in EDITS if name.startswith("edge_crop")),
    ("one_edge_5", "5% cut off one edge (a random one)", _q92(lambda im, r: one_edge_cropped(im, r, 0.05))),
    ("one_edge_10", "10% cut off one edge (a random one)", _q92(lambda im, r: one_edge_cropped(im, r, 0.10))),
    ("crop_10", "centre crop removing 10% of width and height", _from_generate("crop_10")),
    ("crop_20", "centre crop removing 20% of width and height", _from_generate("crop_20")),
    *((name, desc, _q92(edit)) for name, _hard, _cat, desc, edit in EDITS if name == "crop_30"),
    *((name, desc, _q92(edit)) for name, _hard, _cat, desc, edit in EDITS if name == "screenshot"),
    ("watermark", "a light box with text (30% x 10%) in one corner, q92", _from_generate("watermark")),
    ("chain_watermark_q60", "the same, q60", _from_generate("chain_watermark_q60")),
    *((name, desc, _q92(edit)) for name, _hard, _cat, desc, edit in EDITS if name == "collage_half"),
)


def build(photos: list[Path], folder: Path, name: str, make: Make, seed: int) -> None:
    """``folder``: each photo as it is (``NNN-a``) and one copy made by ``make`` (``NNN-b.jpg``)."""
    folder.mkdir(parents=True)
    rng = random.Random(f"{seed}:{name}")
    for i, photo in enumerate(photos):
        shutil.copyfile(photo, folder / f"{i:03d}-a{photo.suffix.lower()}")
        with Image.open(photo) as im:
            pixels, options = make(im.convert("RGB"), rng)
        pixels.convert("RGB").save(folder / f"{i:03d}-b.jpg", "JPEG", **options)


def score(folder: Path, n: int, jobs: int) -> dict[str, int]:
    """Copies found with their original, mixed clusters, and files the plan would remove in
    favour of a different photo, at the defaults."""
    import imgdup

    result = imgdup.find_duplicates(folder, jobs=jobs)
    found = mixed = wrong = 0
    for cluster in result.clusters:
        photo = {Path(m.record.path).name.split("-")[0] for m in cluster.members}
        keeper = Path(cluster.keep.path).name.split("-")[0]
        if len(photo) > 1:
            mixed += 1
        names = [Path(m.record.path).name for m in cluster.members if m.action == "remove"]
        wrong += sum(1 for name in names if name.split("-")[0] != keeper)
        found += sum(1 for p in photo if {f"{p}-a", f"{p}-b"} <= {Path(m.record.path).stem for m in cluster.members})
    return {"photos": n, "found": found, "mixed": mixed, "removed_for_another": wrong}


def run(source: Path, seed: int, n: int, workdir: Path, jobs: int, kinds: Sequence[str] | None) -> dict[str, Any]:
    """Build and score every edit's folder for one seed."""
    photos, _dropped = unique_photos(source)
    if len(photos) < n:
        sys.exit(f"{source} holds {len(photos)} distinct photos, fewer than --photos {n}")
    chosen = random.Random(seed).sample(photos, n)
    out: dict[str, Any] = {}
    for name, _desc, make in KINDS:
        if kinds and name not in kinds:
            continue
        folder = workdir / f"seed{seed}" / name
        build(chosen, folder, name, make, seed)
        out[name] = score(folder, n, jobs)
        print(f"seed {seed} {name}: {out[name]['found']}/{n}", file=sys.stderr, flush=True)
    return out


def markdown(runs: dict[int, dict[str, Any]], command: str) -> str:
    """One row per edit, one column per seed: copies found (of N) and mixed clusters."""
    seeds = list(runs)
    descriptions = {name: desc for name, desc, _ in KINDS}
    names = [name for name, _, _ in KINDS if all(name in runs[s] for s in seeds)]
    lines = [
        f"Command: `{command}`. Defaults (phash, 64 bits, T=8, regions on), no cache.",
        "Per edit: lone copies clustered with their original (of N photos, each with one copy);",
        "mixed: clusters holding two or more different photos; removed: files the plan removes in favour of",
        "a different photo.",
        "",
        "| edit | " + " | ".join(f"seed {s} found | seed {s} mixed / removed" for s in seeds) + " |",
        "|---|" + "---:|---:|" * len(seeds),
    ]
    for name in names:
        cells = []
        for s in seeds:
            fig = runs[s][name]
            cells += [f"{fig['found']}/{fig['photos']} ({100 * fig['found'] / fig['photos']:.0f}%)",
                      f"{fig['mixed']} / {fig['removed_for_another']}"]  # fmt: skip
        lines.append(f"| {name}: {descriptions[name]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, action="append", help="photos and edits (repeatable; default 0)")
    parser.add_argument("--photos", type=int, default=60, help="photos per edit, each with one copy (default 60)")
    parser.add_argument("--source", type=Path, help=f"folder of photos (default: ${SOURCE_ENV} or dogs-1000)")
    parser.add_argument("--workdir", type=Path, help="build the folders here and keep them (absent or empty); "
                        "default: a temporary folder, removed at the end")  # fmt: skip
    parser.add_argument("--edits", help="only these edits (comma-separated names)")
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--smoke", action="store_true", help="3 photos, 3 edits (CI: it runs; no figure)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.photos, args.edits = 3, args.edits or "border_20_colour,rotate_5,one_edge_10"
    kinds = args.edits.split(",") if args.edits else None
    unknown = set(kinds or ()) - {name for name, _, _ in KINDS}
    if unknown:
        parser.error(f"unknown edit(s): {', '.join(sorted(unknown))}")
    from benchmarks._common import photos_and_workdir

    args.source = photos_and_workdir(parser, args.source, args.workdir)
    seeds = args.seed or [0]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="imgdup-lone-") as tmp:
        workdir = args.workdir or Path(tmp)
        runs = {s: run(args.source, s, args.photos, workdir, args.jobs, kinds) for s in seeds}
    command = "python -m benchmarks.accuracy.lone " + " ".join(
        [f"--seed {s}" for s in seeds] + [f"--photos {args.photos}", f"--jobs {args.jobs}"]
        + ([f"--edits {args.edits}"] if args.edits else [])
    )  # fmt: skip
    print(markdown(runs, command), end="")
    print(f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({"command": command, "seeds": runs}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
