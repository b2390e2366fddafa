"""The architecture holds: pure stages stay pure, and only hashing opens images."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "imgdup"
PURE = ["models.py", "index.py", "cluster.py", "policy.py", "plan.py", "frames.py", "quality.py", "sets.py", "memo.py"]
FORBIDDEN_IN_PURE = {"os", "PIL", "sqlite3", "tqdm", "imagehash", "shutil", "subprocess"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("name", PURE)
def test_pure_stages_do_no_io(name: str) -> None:
    assert not imported_modules(PACKAGE / name) & FORBIDDEN_IN_PURE


def test_only_hashing_opens_images_and_only_progress_imports_tqdm() -> None:
    for path in PACKAGE.rglob("*.py"):
        source = path.read_text()
        if path.name != "hashing.py":
            assert "Image.open(" not in source, path
        if path.name != "progress.py":
            assert "tqdm" not in imported_modules(path), path


def test_library_never_prints() -> None:
    for path in PACKAGE.rglob("*.py"):
        if path.name in ("cli.py", "__main__.py"):
            continue
        calls = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call)]
        assert not [c for c in calls if isinstance(c.func, ast.Name) and c.func.id == "print"], path
