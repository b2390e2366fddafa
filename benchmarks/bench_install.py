"""Install cost: time and size of a fresh ``pip install`` of this project, per package.

    python benchmarks/bench_install.py                 # core install
    python benchmarks/bench_install.py --extra test    # with an extra

Each run makes a new virtual environment, installs the project (not editable) with pip's cache
disabled, and reports the wall time, the size of site-packages and the largest distributions in
it. The time depends on the package index (here a local mirror: no download time to speak of);
the sizes do not.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def measure(extra: str | None) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        target = f"{REPO}[{extra}]" if extra else str(REPO)
        started = time.perf_counter()
        proc = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--no-cache-dir", target], capture_output=True, text=True
        )
        seconds = time.perf_counter() - started
        if proc.returncode:
            raise SystemExit(f"pip install failed:\n{proc.stderr[-2000:]}")
        built_from_sdist = sorted(
            line.split()[3].rstrip(":")
            for line in proc.stdout.splitlines()
            if line.strip().startswith("Created wheel for") and "imgdup" not in line
        )
        site = next((venv / "lib").glob("python*/site-packages"))
        sizes: dict[str, int] = {}
        for dist in metadata.distributions(path=[str(site)]):
            files = dist.files or []
            total = 0
            for f in files:
                p = Path(dist.locate_file(f))
                if p.is_file():
                    total += p.stat().st_size
            sizes[dist.metadata["Name"]] = total
        return {
            "extra": extra,
            "seconds": round(seconds, 1),
            "site_packages_mb": round(_tree_bytes(site) / 2**20, 1),
            "venv_mb": round(_tree_bytes(venv) / 2**20, 1),
            "largest_mb": {k: round(v / 2**20, 1) for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])[:8]},
            "built_from_sdist": built_from_sdist,
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--extra", help="install this extra too (e.g. test, dask)")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    res = measure(args.extra)
    print(f"install {'core' if not args.extra else '[' + args.extra + ']'}: {res['seconds']} s, "
          f"site-packages {res['site_packages_mb']} MiB (venv {res['venv_mb']} MiB)")  # fmt: skip
    for name, mb in res["largest_mb"].items():  # type: ignore[attr-defined]
        print(f"  {name:<20} {mb:>7} MiB")
    print(f"built from source distributions: {', '.join(res['built_from_sdist']) or 'none'}")  # type: ignore[arg-type]
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
