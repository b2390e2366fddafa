"""The published wheel: name, entry point, licence, typing marker and every data file of the package.

CI builds the wheel with the lowest setuptools that pyproject.toml allows and passes it in
``IMGDUP_WHEEL``; without it the test builds one with this environment's setuptools when that
is new enough, and otherwise skips (under ``CI=true`` it fails instead, so CI cannot lose it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _wheel(tmp_path: Path) -> Path:
    given = os.environ.get("IMGDUP_WHEEL")
    if given:
        return Path(given)
    if os.environ.get("CI") == "true":
        pytest.fail("IMGDUP_WHEEL is not set: .ci/run must build the wheel with the pinned setuptools")
    try:
        import setuptools
    except ImportError:
        pytest.skip("setuptools is not installed here; set IMGDUP_WHEEL to a built wheel")
    if tuple(int(p) for p in setuptools.__version__.split(".")[:2]) < (77, 0):
        pytest.skip(f"setuptools {setuptools.__version__} < 77 cannot build this project; set IMGDUP_WHEEL")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        str(tmp_path),
        str(REPO),
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    return next(tmp_path.glob("*.whl"))


def test_wheel_contents(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(zf.read(info).decode())
        entry_points = zf.read(info.replace("METADATA", "entry_points.txt")).decode()
    assert meta["Name"] == "imgdup-ml"
    assert meta["License-Expression"] == "MIT"
    assert "Typing :: Typed" in meta.get_all("Classifier")
    assert "imgdup = imgdup.__main__:run" in entry_points
    assert any(n.endswith("/licenses/LICENSE") for n in names)
    # Only the package itself: never a top-level module that could shadow another project's.
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"imgdup"}
    # Every file of the package in the source tree (modules, py.typed, web assets) is shipped.
    source = {
        p.relative_to(REPO).as_posix()
        for p in (REPO / "imgdup").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert "imgdup/py.typed" in source
    assert source <= names, sorted(source - names)
