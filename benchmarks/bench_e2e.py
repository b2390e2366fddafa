"""End-to-end speed: imgdup cold and warm against a naive pipeline and imagededup.

Every measurement runs the real command in a fresh process (interpreter start included) and
reports the median of --repeats runs, images/s, ratios measured side by side in this run, and
the peak resident memory of the largest process.

    python benchmarks/bench_e2e.py                        # dogs-1000
    python benchmarks/bench_e2e.py --dataset ~/stanford-dogs/Images
    python benchmarks/bench_e2e.py --scale 20000          # + a 20,000-file labelled variant set
    python benchmarks/bench_e2e.py --mixed 300 --per-format   # + JPEG/PNG/WebP near-duplicate set
    python benchmarks/bench_e2e.py --smoke                # a few seconds, for CI
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import byte_compile_imgdup, dogs1000, machine, run_measured

NAIVE = r"""
import json, os, sys
import imagehash, pybktree
from PIL import Image
root, t = sys.argv[1], int(sys.argv[2])
paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)
hashes = []
for p in paths:
    try:
        hashes.append((int(str(imagehash.phash(Image.open(p))), 16), len(hashes)))
    except Exception:
        pass
tree = pybktree.BKTree(lambda a, b: (a[0] ^ b[0]).bit_count(), hashes)
parent = list(range(len(hashes)))
def find(x):
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x
for h in hashes:
    for _, other in tree.find(h, t):
        parent[find(h[1])] = find(other[1])
groups = {}
for i in range(len(hashes)):
    groups.setdefault(find(i), []).append(i)
print(json.dumps({"images": len(hashes), "clusters": sum(len(g) > 1 for g in groups.values())}))
"""

IMAGEDEDUP = r"""
import json, sys
from imagededup.methods import PHash
root, t = sys.argv[1], int(sys.argv[2])
ph = PHash(verbose=False)
enc = ph.encode_images(image_dir=root, recursive=True)
dups = ph.find_duplicates(encoding_map=enc, max_distance_threshold=t)
print(json.dumps({"images": len(enc), "with_duplicates": sum(bool(v) for v in dups.values())}))
"""


def imgdup_cmd(root: Path, *, jobs: int, cache: str | None, threshold: int, keep: str | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "imgdup", "-d", str(root), "-t", str(threshold), "-j", str(jobs)]
    cmd += ["--no-progress", "--format", "json"] + (["--keep", keep] if keep else [])
    return cmd + (["--cache", cache] if cache else ["--no-cache"])


def count_files(root: Path) -> int:
    return sum(not f.startswith(".") for _, _, files in os.walk(root) for f in files)


def build_scale_set(source: Path, target: Path, size: int, seed: int = 0) -> Path:
    """~``size`` files: each source photo plus labelled variants (resize, recompress, crop)."""
    marker = target / ".complete"
    if marker.exists():
        return target
    from PIL import Image

    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    photos = sorted(p for p in source.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    variants = [
        ("resize50", lambda im: im.resize((im.width // 2, im.height // 2)), "JPEG", {"quality": 90}),
        ("resize75", lambda im: im.resize((im.width * 3 // 4, im.height * 3 // 4)), "JPEG", {"quality": 90}),
        ("q50", lambda im: im, "JPEG", {"quality": 50}),
        ("q70", lambda im: im, "JPEG", {"quality": 70}),
        ("png", lambda im: im, "PNG", {}),
        (
            "crop5",
            lambda im: im.crop((im.width // 40, im.height // 40, im.width * 39 // 40, im.height * 39 // 40)),
            "JPEG",
            {"quality": 90},
        ),
        (
            "crop10",
            lambda im: im.crop((im.width // 20, im.height // 20, im.width * 19 // 20, im.height * 19 // 20)),
            "JPEG",
            {"quality": 90},
        ),
        ("upscale", lambda im: im.resize((im.width * 3 // 2, im.height * 3 // 2)), "JPEG", {"quality": 85}),
    ]
    truth = []
    per_photo = max(1, size // max(1, len(photos)))
    count = 0
    for i, photo in enumerate(photos):
        folder = target / f"{i % 97:02d}"
        folder.mkdir(exist_ok=True)
        shutil.copyfile(photo, folder / f"{i:06d}-0{photo.suffix.lower()}")
        truth.append({"file": f"{folder.name}/{i:06d}-0{photo.suffix.lower()}", "source": i, "variant": "original"})
        count += 1
        with Image.open(photo) as im:
            im = im.convert("RGB")
            for k in range(1, per_photo):
                if count >= size:
                    break
                name, fn, fmt, kw = variants[(k - 1 + i) % len(variants)]
                suffix = ".png" if fmt == "PNG" else ".jpg"
                rel = f"{folder.name}/{i:06d}-{k}{suffix}"
                fn(im).save(target / rel, fmt, **kw)
                truth.append({"file": rel, "source": i, "variant": name})
                count += 1
    (target.parent / f"{target.name}.truth.json").write_text(json.dumps(truth))
    marker.touch()
    return target


FLOOR = r"""
import os, sys, time
from PIL import Image
paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(sys.argv[1]) for f in fs if not f.startswith("."))
start = time.perf_counter()
for p in paths:
    with Image.open(p) as im:
        im.draft("L", (64, 64))  # imgdup's phash draft size (JPEG only: other formats decode in full)
        im.convert("L").load()
print((time.perf_counter() - start) / len(paths))
"""


def build_mixed_set(source: Path, target: Path, photos: int = 300, seed: int = 0) -> Path:
    """A realistic mixed set: per source photo the original JPEG plus near-duplicates in JPEG,
    PNG and WebP at a spread of sizes (some upscaled to ~2,400 px), in one folder per format
    (so each format's cost per image can be measured on its own)."""
    import random

    from PIL import Image

    marker = target / ".complete"
    if marker.exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    for fmt in ("jpeg", "png", "webp"):
        (target / fmt).mkdir(parents=True)
    rng = random.Random(seed)
    files = sorted(p for p in source.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))[:photos]
    for i, path in enumerate(files):
        with Image.open(path) as im:
            im = im.convert("RGB")
        w, h = im.size
        big = im.resize((w * 2400 // max(w, h), h * 2400 // max(w, h)), Image.Resampling.BICUBIC)
        small = im.resize((max(1, w // 2), max(1, h // 2)))
        crop = im.crop((w // 20, h // 20, w * 19 // 20, h * 19 // 20))
        shutil.copyfile(path, target / "jpeg" / f"{i:04d}-0.jpg")
        kind = rng.randrange(6)  # each photo gets some near-duplicates, in varying formats and sizes
        if kind == 0:
            big.save(target / "jpeg" / f"{i:04d}-big.jpg", "JPEG", quality=92)
        elif kind == 1:
            shrunk = big.resize((big.width * 2 // 3, big.height * 2 // 3))
            shrunk.save(target / "webp" / f"{i:04d}-big.webp", "WEBP", quality=80)
        elif kind == 2:
            im.save(target / "png" / f"{i:04d}-1.png", "PNG")
        elif kind == 3:
            small.save(target / "webp" / f"{i:04d}-1.webp", "WEBP", quality=75)
            crop.save(target / "jpeg" / f"{i:04d}-crop.jpg", "JPEG", quality=85)
        elif kind == 4:
            im.save(target / "jpeg" / f"{i:04d}-q50.jpg", "JPEG", quality=50)
            big.resize((big.width * 3 // 4, big.height * 3 // 4)).save(target / "png" / f"{i:04d}-big.png", "PNG")
    marker.touch()
    return target


def per_format(root: Path, args: argparse.Namespace) -> dict[str, float]:
    """Per image, ``-j1`` whole process (the empty-folder run's fixed cost taken off) against the
    decode floor of the same files, for each format folder of the mixed set."""
    ratios: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as empty:
        fixed, _, _ = median_run(imgdup_cmd(Path(empty), jobs=1, cache=None, threshold=args.threshold), args.repeats)
    for fmt in ("jpeg", "png", "webp"):
        folder = root / fmt
        n = count_files(folder)
        if not n:
            continue
        s, _, _ = median_run(imgdup_cmd(folder, jobs=1, cache=None, threshold=args.threshold), args.repeats)
        per = (s - fixed) / n
        floors = [float(run_measured([sys.executable, "-c", FLOOR, str(folder)])[2]) for _ in range(args.repeats)]
        floor = statistics.median(floors)
        print(f"  {fmt:<5} {n:5d} files: -j1 {per * 1e3:6.2f} ms/img, floor {floor * 1e3:6.2f} ms/img", flush=True)
        ratios[f"per image -j1 / decode floor, {fmt}"] = per / floor
    return ratios


def median_run(cmd: list[str], repeats: int) -> tuple[float, float, str]:
    runs = [run_measured(cmd) for _ in range(repeats)]
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs), runs[-1][2]


def bench_folder(root: Path, args: argparse.Namespace, label: str) -> dict[str, object]:
    n = count_files(root)
    rows: dict[str, dict[str, float]] = {}

    def record(name: str, seconds: float, rss: float) -> None:
        rows[name] = {"seconds": round(seconds, 3), "images_per_s": round(n / seconds, 1), "peak_rss_mib": round(rss)}
        print(f"  {name:<28} {seconds:8.2f} s  {n / seconds:8.1f} img/s  {rss:7.0f} MiB", flush=True)

    print(f"{label}: {root} ({n} files), median of {args.repeats}")
    if not args.skip_naive:
        s, rss, out = median_run([sys.executable, "-c", NAIVE, str(root), str(args.threshold)], args.repeats)
        record("naive (1 process)", s, rss)
    keepers: dict[str, int] = {}
    for jobs in args.jobs:
        s, rss, out = median_run(imgdup_cmd(root, jobs=jobs, cache=None, threshold=args.threshold), args.repeats)
        record(f"imgdup cold -j{jobs}", s, rss)
        keepers = keeper_variants(root, json.loads(out))
    # What the default keep policy (sibling-relative quality) adds: the same cold run without it.
    s, rss, _ = median_run(
        imgdup_cmd(root, jobs=max(args.jobs), cache=None, threshold=args.threshold, keep="pixels,path"), args.repeats
    )
    record(f"imgdup cold -j{max(args.jobs)} --keep pixels,path", s, rss)
    with tempfile.TemporaryDirectory() as tmp:
        cache = os.path.join(tmp, "cache.sqlite3")
        s_fill, rss, _ = run_measured(imgdup_cmd(root, jobs=max(args.jobs), cache=cache, threshold=args.threshold))
        record(f"imgdup cold+cache -j{max(args.jobs)}", s_fill, rss)
        s, rss, out = median_run(
            imgdup_cmd(root, jobs=max(args.jobs), cache=cache, threshold=args.threshold), args.repeats
        )
        record("imgdup warm (cached)", s, rss)
    summary = json.loads(out)["summary"]
    idd = args.imagededup_python
    if idd:
        s, rss, _ = median_run([idd, "-c", IMAGEDEDUP, str(root), str(args.threshold)], args.repeats)
        record("imagededup PHash (defaults)", s, rss)

    ratios = {}
    j1, jmax = rows.get("imgdup cold -j1"), rows[f"imgdup cold -j{max(args.jobs)}"]
    if "naive (1 process)" in rows and j1:
        ratios["naive / imgdup -j1"] = rows["naive (1 process)"]["seconds"] / j1["seconds"]
    # The issue-14 targets, each as a ratio from this run (smaller is better).
    if "naive (1 process)" in rows:
        naive = rows["naive (1 process)"]["seconds"]
        for jobs in args.jobs:
            ratios[f"target: imgdup cold -j{jobs} / naive"] = rows[f"imgdup cold -j{jobs}"]["seconds"] / naive
    ratios[f"target: warm / cold (-j{max(args.jobs)})"] = (
        rows["imgdup warm (cached)"]["seconds"] / rows[f"imgdup cold+cache -j{max(args.jobs)}"]["seconds"]
    )
    ratios["peak MiB per 1,000 files (cold, largest process)"] = jmax["peak_rss_mib"] * 1000 / n
    if args.per_format and all((root / f).is_dir() for f in ("jpeg", "png", "webp")):
        ratios |= per_format(root, args)
    if j1 and max(args.jobs) > 1:
        ratios[f"imgdup -j1 / -j{max(args.jobs)}"] = j1["seconds"] / jmax["seconds"]
    ratios[f"keep policy cost: default / --keep pixels,path (-j{max(args.jobs)})"] = (
        jmax["seconds"] / rows[f"imgdup cold -j{max(args.jobs)} --keep pixels,path"]["seconds"]
    )
    ratios["cold / warm"] = (
        rows[f"imgdup cold+cache -j{max(args.jobs)}"]["seconds"] / rows["imgdup warm (cached)"]["seconds"]
    )
    if "imagededup PHash (defaults)" in rows:
        ratios[f"imagededup / imgdup -j{max(args.jobs)}"] = (
            rows["imagededup PHash (defaults)"]["seconds"] / jmax["seconds"]
        )
    for name, value in ratios.items():
        peak = name.startswith("peak")
        print(f"  {'' if peak else 'ratio '}{name:<58} {value:6.2f}{'' if peak else 'x'}")
    if keepers:
        holding = keepers.pop("clusters holding the original")
        good = keepers.get("original", 0) + keepers.get("png", 0)
        print(f"  kept file by variant (default keep policy): {dict(sorted(keepers.items(), key=lambda kv: -kv[1]))}")
        print(f"  original or its lossless PNG kept in {good} of the {holding} clusters that hold the original")
        keepers["clusters holding the original"] = holding
    return {"folder": str(root), "files": n, "runs": rows, "ratios": ratios, "imgdup_summary": summary,
            "kept_variants": keepers}  # fmt: skip


def keeper_variants(root: Path, doc: dict[str, Any]) -> dict[str, int]:
    """For a labelled set (a ``.truth.json`` beside it, as build_scale_set writes), which
    variant each cluster kept, and (key "clusters holding the original") how many clusters hold
    an original at all (a cluster of crops that did not link to theirs holds none); empty for
    other folders."""
    truth = root.parent / f"{root.name}.truth.json"
    rows = json.loads(truth.read_text()) if truth.is_file() else None
    if not isinstance(rows, list):  # none, or the accuracy benchmark's (a document: its evaluate.py reads it)
        return {}
    variant = {row["file"]: row["variant"] for row in rows}

    def of(path: str) -> str:
        return variant.get(Path(path).relative_to(root).as_posix(), "unlabelled")

    kept: dict[str, int] = {"clusters holding the original": 0}
    for cluster in doc["clusters"]:
        name = of(cluster["keep"])
        kept[name] = kept.get(name, 0) + 1
        kept["clusters holding the original"] += any(of(m["path"]) == "original" for m in cluster["members"])
    return kept


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", type=Path, help="folder to benchmark (default: dogs-1000)")
    p.add_argument("--scale", type=int, default=0, help="also build and benchmark a labelled variant set of N files")
    p.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "imgdup-bench")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--jobs", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    p.add_argument("--threshold", type=int, default=4)
    p.add_argument("--skip-naive", action="store_true")
    p.add_argument("--imagededup-python", help="python that has imagededup installed (default: this one, if it has)")
    p.add_argument("--json", type=Path, help="write the figures here")
    p.add_argument("--smoke", action="store_true", help="tiny run for CI: 40 files, 1 repeat")
    p.add_argument("--mixed", type=int, default=0, help="also benchmark a mixed JPEG/PNG/WebP set of N photos")
    p.add_argument("--per-format", action="store_true", help="mixed set: per-image cost vs decode floor")
    args = p.parse_args()
    if args.imagededup_python is None:
        import importlib.util

        args.imagededup_python = sys.executable if importlib.util.find_spec("imagededup") else None

    results = {"machine": machine(), "threshold": args.threshold, "sets": []}
    print(f"imgdup byte-compiled at {byte_compile_imgdup()} (as an install is)", flush=True)
    if args.smoke:
        args.repeats = 1
        with tempfile.TemporaryDirectory() as tmp:
            small = Path(tmp) / "smoke"
            small.mkdir()
            for f in sorted((args.dataset or dogs1000()).iterdir())[:40]:
                shutil.copyfile(f, small / f.name)
            results["sets"].append(bench_folder(small, args, "smoke"))
    else:
        source = args.dataset or dogs1000()
        results["sets"].append(bench_folder(source, args, "dataset"))
        if args.mixed:
            mixed = build_mixed_set(dogs1000(), args.workdir / f"mixed-{args.mixed}", args.mixed)
            results["sets"].append(bench_folder(mixed, args, f"mixed set ({args.mixed} photos)"))
        if args.scale:
            scale = build_scale_set(dogs1000(), args.workdir / f"scale-{args.scale}", args.scale)
            results["sets"].append(bench_folder(scale, args, f"scale set ({args.scale})"))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
