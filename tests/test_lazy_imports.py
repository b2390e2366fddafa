"""A scan loads only what it uses: the fixed cost of every run (and most of a warm one) is imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import imgdup
from imgdup.hashing import settings_key
from imgdup.models import HashSettings

from .synth import photo

SCAN = """
import json, sys
import imgdup.cli
imgdup.cli.main(["-d", sys.argv[1], "--no-cache", "--format", "json", "--no-progress", "-j", "1"])
"""


def test_a_scan_does_not_import_removal_report_or_imagehash(tmp_path: Path) -> None:
    photo(1).save(tmp_path / "a.png")
    photo(1).save(tmp_path / "b.png")
    photo(1).resize((300, 225)).save(tmp_path / "c.jpg", quality=90)  # a near copy: the region search runs
    watched = "('imgdup', 'imagehash', 'PIL', 'numpy.ma')"
    probe = SCAN + f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({watched}))))"
    out = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "imgdup.pipeline" in loaded and "imgdup.hashing" in loaded  # it did scan
    report = json.loads("\n".join(out.stdout.strip().splitlines()[:-1]))
    assert len(report["clusters"][0]["members"]) == 3  # and linked all three
    unused = {"imagehash", "PIL.ImageDraw", "imgdup.actions", "imgdup.apply_plan", "imgdup.dataframe", "numpy.ma"}
    assert not loaded & (unused | {"imgdup.report.html", "imgdup.report.montage"})


def test_lazy_public_names_resolve_to_the_implementations() -> None:
    from imgdup import actions, pipeline
    from imgdup.report import montage

    assert imgdup.find_duplicates is pipeline.find_duplicates
    assert imgdup.remove is actions.remove and imgdup.write_montages is montage.write_montages
    assert all(hasattr(imgdup, name) for name in imgdup.__all__)


def test_cache_key_names_imagehash_only_for_the_algorithms_it_computes() -> None:
    import imagehash

    assert "imagehash" not in settings_key(HashSettings(algorithm="phash"))
    for algorithm in ("dhash", "ahash", "whash"):
        assert f"imagehash-{imagehash.__version__}" in settings_key(HashSettings(algorithm=algorithm))
