"""The Python API as a notebook or a training script calls it: a wrong argument is a UsageError
that names it, whatever its type (a table's column with an empty cell, bytes, a loaded plan)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import imgdup

from .synth import photo


@pytest.fixture
def pair(tmp_path: Path) -> Path:
    """A folder with one picture and its copy."""
    root = tmp_path / "data"
    root.mkdir()
    photo(1).save(root / "a.png")
    shutil.copyfile(root / "a.png", root / "b.png")
    return root


def test_an_empty_cell_in_a_list_of_files_is_named_by_its_position(pair: Path) -> None:
    files = [str(pair / "a.png")] * 5000 + [None]  # a path column read from a CSV with a blank row
    with pytest.raises(imgdup.UsageError) as err:
        imgdup.find_duplicates(files=files, jobs=1)  # type: ignore[arg-type]
    assert str(err.value) == "files[5000] is not a path: None"  # it was the repr of the whole list


@pytest.mark.parametrize("argument", ["roots", "reference", "files"])
def test_a_value_that_is_no_path_names_its_argument(pair: Path, argument: str) -> None:
    given = {"roots": pair, argument: 3} if argument != "roots" else {"roots": 3}
    with pytest.raises(imgdup.UsageError, match=f"^{argument} must be a path or an iterable of paths, got 3$"):
        imgdup.find_duplicates(**given, jobs=1)  # type: ignore[arg-type]


def test_a_table_given_as_the_list_of_files_is_refused_with_its_column_named(pair: Path) -> None:
    class Frame:  # what pandas' DataFrame is to iter(): its column names (read as a file "path")
        columns = ("path",)

        def __iter__(self):  # type: ignore[no-untyped-def]
            return iter(self.columns)

    with pytest.raises(imgdup.UsageError, match=r"files is a table; give its column of paths \(files=df\['path'\]\)"):
        imgdup.find_duplicates(files=Frame(), jobs=1)  # type: ignore[arg-type]
