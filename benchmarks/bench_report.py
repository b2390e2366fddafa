"""Time to the first screen of the HTML gallery at 1,000 and 10,000 clusters, in headless Chromium.

A synthetic plan (3 members a cluster, ~10% spanning two roots, a few label conflicts) is rendered
by the real page writer (``render_page``) with thumbnails in a folder beside it, then opened from
disk in Debian's headless Chromium (selenium) again and again. Per size it reports the medians of:
the page's own mark after its script built the first page ("first screen"), the first contentful
paint, and the load event; plus the page's size.

    python benchmarks/bench_report.py                  # 1,000 and 10,000 clusters, 5 loads each
    python benchmarks/bench_report.py --sizes 50000 --repeats 3
    python benchmarks/bench_report.py --smoke          # one small load, for CI (skipped without Chromium)
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

from imgdup.report.html import render_page

THUMBS = 60  # distinct thumbnail files: the first page needs at most 20 clusters x 3


def synthetic_plan(n: int) -> dict[str, Any]:
    roots = ["/data/train", "/data/test"]
    clusters = []
    for i in range(n):
        members = []
        for j in range(3):
            root = roots[1] if (i % 10 == 0 and j == 2) else roots[0]
            rel = f"class{i % 120:03d}/img{i:06d}_{j}.jpg"
            members.append(
                {
                    "path": f"{root}/{rel}", "root": root, "relpath": rel,
                    "action": "keep" if j == 0 else ("remove" if j == 1 else "review"),
                    "distance": 3 * j, "width": 640 - 100 * j, "height": 480 - 75 * j,
                    "bytes": 50_000 + (i * 37 + j * 11) % 40_000, "mtime_ns": 1_700_000_000_000_000_000 + i,
                    "sha256": f"{i:056x}{j:08x}", "hash": f"{i:016x}", "inode": 1000 + 3 * i + j, "device": 2049,
                    "label": f"class{i % 120:03d}" if not (i % 25 == 0 and j == 2) else "other",
                }
            )  # fmt: skip
        clusters.append(
            {"id": i, "hash": f"{i:016x}", "keep": members[0]["path"], "keep_reason": "largest (640x480)",
             "diameter": 6, "members": members}
        )  # fmt: skip
    return {"schema": "imgdup.report/1", "imgdup": "bench", "host": "bench", "settings": {"hash": "phash",
            "threshold": 8}, "roots": roots, "clusters": clusters, "failures": [],
            "summary": {"files": 3 * n, "clusters": n}}  # fmt: skip


def write_page(folder: Path, n: int) -> Path:
    from PIL import Image

    thumbs_dir = folder / "page_files"
    thumbs_dir.mkdir(parents=True, exist_ok=True)
    for k in range(THUMBS):
        buf = io.BytesIO()
        Image.new("RGB", (256, 192), ((k * 41) % 256, (k * 97) % 256, (k * 13) % 256)).save(buf, "JPEG", quality=75)
        (thumbs_dir / f"t{k}.jpg").write_bytes(buf.getvalue())
    doc = synthetic_plan(n)
    thumbs = {m["sha256"]: f"page_files/t{(3 * c['id'] + j) % THUMBS}.jpg" for c in doc["clusters"]
              for j, m in enumerate(c["members"])}  # fmt: skip
    page = folder / "page.html"
    page.write_text(render_page(doc, thumbs=thumbs, labels={"/data/train": "train", "/data/test": "test"}), "utf-8")
    return page


def browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (binary and driver):
        return None
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=1400,1000")
    return webdriver.Chrome(service=Service(driver), options=options)


TIMES = """
const nav = performance.getEntriesByType('navigation')[0];
const mark = performance.getEntriesByName('imgdup-first-screen')[0];
const fcp = performance.getEntriesByName('first-contentful-paint')[0];
return [mark ? mark.startTime : null, fcp ? fcp.startTime : null, nav.loadEventEnd];
"""


def measure(drv: Any, page: Path, repeats: int) -> dict[str, float]:
    rows = []
    for _ in range(repeats):
        drv.get("about:blank")
        drv.get(page.as_uri())
        drv.find_element("css selector", ".cluster")
        rows.append(drv.execute_script(TIMES))
    # Headless Chromium does not always report a paint entry; a missing figure reads nan.
    med = [statistics.median([r[i] for r in rows if r[i] is not None] or [float("nan")]) / 1000 for i in range(3)]
    return {"first_screen_s": med[0], "first_paint_s": med[1], "load_s": med[2]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000], help="cluster counts")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--smoke", action="store_true", help="one load of 100 clusters (a check that it runs)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args()
    sizes, repeats = ([100], 1) if args.smoke else (args.sizes, args.repeats)
    drv = browser()
    if drv is None:
        print("headless Chromium not installed (apt-get install chromium chromium-driver): skipped")
        return
    results = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for n in sizes:
                page = write_page(Path(tmp) / str(n), n)
                figures = measure(drv, page, repeats)
                results.append({"clusters": n, "page_mib": page.stat().st_size / 2**20, **figures})
                print(
                    f"{n:>7,} clusters  page {results[-1]['page_mib']:6.1f} MiB  first screen "
                    f"{figures['first_screen_s']:.2f} s  first paint {figures['first_paint_s']:.2f} s  "
                    f"load {figures['load_s']:.2f} s  (median of {repeats})"
                )
    finally:
        drv.quit()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
