"""The Python API as a notebook or a training script calls it: a wrong argument is a UsageError
that names it, whatever its type (a table's column with an empty cell, bytes, a loaded plan)."""

from __future__ import annotations

import json
import multiprocessing
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import imgdup

from .conftest import need
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


_LABELS = 'labels must be "folder", the path of a labels file (CSV), a mapping {path: label} or None,'


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("keep", None, "keep must be rule names, a comma-separated string or a list of them, got None"),
        ("keep", ["pixels", 3], "keep must be rule names, a comma-separated string or a list of them, got"),
        ("labels", 3, f"{_LABELS} got 3"),
        ("labels", ["cat", "dog"], f"{_LABELS} got ['cat'"),
        ("cache", 3, "cache must be the path of a SQLite file or None, got 3"),
        ("cache", "", "cache='' names no file: give the path of a SQLite file, or cache=None for no cache"),
        ("cache", b"", "cache='' names no file"),
        ("progress", True, "progress must be a function progress(stage, done, total) or None, got True"),
        ("label_conflicts", None, "label_conflicts must be one of review, remove, got None"),
    ],
)
def test_an_option_of_the_wrong_type_is_a_usage_error_naming_it(
    pair: Path, option: str, value: object, message: str
) -> None:
    with pytest.raises(imgdup.UsageError) as err:
        imgdup.find_duplicates(pair, jobs=1, **{option: value})  # type: ignore[arg-type]
    assert str(err.value).startswith(message)


def test_labels_given_as_a_table_column_say_how_to_give_them(pair: Path) -> None:
    """A pandas Series of labels was refused with its whole repr as "got" (rows and a dtype line,
    across lines; QA pass 33): the message names what it is and the mapping to give instead."""
    pandas = need("pandas", "test,pandas")
    column = pandas.Series(["cat", "dog"], index=[str(pair / "a.png"), str(pair / "b.png")])
    for given in (column, column.to_frame("label")):
        with pytest.raises(imgdup.UsageError) as err:
            imgdup.find_duplicates(pair, labels=given, jobs=1)
        said = str(err.value)
        assert "\n" not in said and f"got a pandas {type(given).__name__}" in said
        assert "labels=dict(zip(df['path'], df['label']))" in said
    result = imgdup.find_duplicates(pair, labels=column.to_dict(), jobs=1)  # what it says to give
    assert result.clusters[0].label_conflict == ("cat", "dog")


def test_a_labels_file_and_a_cache_given_as_bytes_are_read_as_paths(pair: Path, tmp_path: Path) -> None:
    (pair / "labels.csv").write_text("path,label\na.png,cat\nb.png,dog\n")
    cache = tmp_path / "cache.db"
    result = imgdup.find_duplicates(pair, labels=bytes(pair / "labels.csv"), cache=bytes(cache), jobs=1)
    assert result.settings.labels == str(pair / "labels.csv")  # bytes in the settings broke the JSON report
    assert result.clusters[0].label_conflict == ("cat", "dog")
    assert imgdup.to_document(result)["settings"]["labels"] == str(pair / "labels.csv")
    again = imgdup.find_duplicates(pair, cache=cache, jobs=1)
    assert again.summary.from_cache == 2


def test_remove_given_a_plan_points_at_apply(pair: Path, tmp_path: Path) -> None:
    result = imgdup.find_duplicates(pair, jobs=1)
    imgdup.write_report(result, tmp_path / "plan.json")
    for plan in (imgdup.load_plan(tmp_path / "plan.json"), imgdup.to_document(result), str(tmp_path / "plan.json")):
        with pytest.raises(imgdup.UsageError, match=r"^remove takes the ScanResult .* use imgdup\.apply\(plan\)$"):
            imgdup.remove(plan, quarantine=tmp_path / "q")  # type: ignore[arg-type]
    assert sorted(p.name for p in pair.iterdir()) == ["a.png", "b.png"]


@pytest.mark.parametrize("func", ["to_document", "to_dataframe", "format_text", "write_report", "write_montages"])
def test_a_report_of_something_else_than_a_scan_result_is_a_usage_error(pair: Path, tmp_path: Path, func: str) -> None:
    result = imgdup.find_duplicates(pair, jobs=1)
    imgdup.write_report(result, tmp_path / "plan.json")
    plan = imgdup.load_plan(tmp_path / "plan.json")  # a reviewed plan, loaded back: not a scan
    out = tmp_path / ("out.csv" if func == "write_report" else "sheets")
    args = (plan, out) if func.startswith("write_") else (plan,)
    with pytest.raises(imgdup.UsageError, match=f"^{func} takes the ScanResult of imgdup.find_duplicates, got Plan$"):
        getattr(imgdup, func)(*args)
    assert not out.exists()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: imgdup.undo(3), "manifest must be a path (str, bytes or os.PathLike), got int"),
        (lambda: imgdup.load_plan(None), "the plan file must be a path (str, bytes or os.PathLike), got NoneType"),
        (lambda: imgdup.apply(None), "plan must be a Plan, a plan document (dict) or the path of a plan file, got"),
        (lambda: imgdup.apply({}, quarantine=5), "quarantine must be a path (str, bytes or os.PathLike), got int"),
        (lambda: imgdup.apply({}, cache=5), "cache must be a path (str, bytes or os.PathLike), got int"),
        (lambda: imgdup.apply({}, cache=""), "cache='' names no file"),
    ],
)
def test_a_path_argument_of_the_wrong_type_is_a_usage_error_naming_it(call: object, message: str) -> None:
    with pytest.raises(imgdup.UsageError) as err:
        call()  # type: ignore[operator]
    assert str(err.value).startswith(message)  # each was a bare TypeError (apply's after hashing every file)


def test_undo_given_the_removal_result_points_at_its_manifest(pair: Path, tmp_path: Path) -> None:
    done = imgdup.remove(imgdup.find_duplicates(pair, jobs=1), quarantine=tmp_path / "q")
    with pytest.raises(imgdup.UsageError, match=r"imgdup\.undo\(done\.manifest\), not the RemovalResult"):
        imgdup.undo(done)  # type: ignore[arg-type]
    assert imgdup.undo(bytes(Path(done.manifest or ""))).restored == (str(pair / "b.png"),)


def test_paths_given_as_bytes_work_for_removal_reports_and_plans(pair: Path, tmp_path: Path) -> None:
    result = imgdup.find_duplicates(pair, jobs=1)
    assert imgdup.write_report(result, bytes(tmp_path / "r.json")) == str(tmp_path / "r.json")
    assert imgdup.write_montages(result, bytes(tmp_path / "sheets")) == [str(tmp_path / "sheets" / "cluster-0000.png")]
    assert imgdup.load_plan(bytes(tmp_path / "r.json")).roots == (str(pair),)
    done = imgdup.remove(result, quarantine=bytes(tmp_path / "q"))  # it raised TypeError (str.startswith)
    assert [r.path for r in done.removed] == [str(pair / "b.png")]
    assert (done.manifest or "").startswith(str(tmp_path / "q"))


def test_numpy_numbers_are_taken_as_python_s_own(pair: Path) -> None:
    for threshold in np.arange(0, 6, 4):  # a sweep: np.int64 was "not a whole number of bits"
        result = imgdup.find_duplicates(
            pair, threshold=threshold, hash_size=np.int64(8), jobs=np.int64(1), timeout=np.float32(30),
            rotations=np.bool_(False), regions=np.bool_(True),
        )  # fmt: skip
        assert result.settings.threshold == threshold and type(result.settings.threshold) is int
        assert json.loads(json.dumps(imgdup.to_document(result)))["settings"]["threshold"] == threshold
        assert result.summary.clusters == 1
    with pytest.raises(imgdup.UsageError, match=r"got np\.float64\(4\.5\)$"):
        imgdup.find_duplicates(pair, threshold=np.float64(4.5), jobs=1)


def test_a_generator_of_reference_folders_is_read_once(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "test").mkdir()
    photo(1).save(tmp_path / "train" / "a.png")
    shutil.copyfile(tmp_path / "train" / "a.png", tmp_path / "test" / "a.png")
    result = imgdup.find_duplicates(tmp_path / "test", reference=(p for p in [tmp_path / "train"]), jobs=1)
    assert result.reference == (str(tmp_path / "train"),)  # it was (): the reference was left out, silently
    assert [(m.record.path, m.action.value) for m in result.clusters[0].members] == [
        (str(tmp_path / "train" / "a.png"), "keep"),
        (str(tmp_path / "test" / "a.png"), "remove"),
    ]


def test_progress_reports_the_documented_stages_in_order(tmp_path: Path) -> None:
    photo(1).save(tmp_path / "a.png")
    photo(1).resize((240, 180)).save(tmp_path / "b.jpg", quality=80)  # not identical: the keep rules measure
    seen: list[str] = []
    imgdup.find_duplicates(tmp_path, jobs=1, progress=lambda stage, done, total: seen.append(stage))
    assert list(dict.fromkeys(seen)) == ["discover", "hash", "search", "measure", "decide"]  # "measure" was not named


def _scan_in_a_pool_worker(root: str) -> str:
    try:
        imgdup.find_duplicates(root, jobs=1)
    except Exception as exc:  # noqa: BLE001 - the type and words are what the test reads
        return f"{type(exc).__name__}: {exc}"
    return "scanned"


def test_a_scan_in_a_daemonic_process_says_why_it_cannot_run(pair: Path) -> None:
    with multiprocessing.Pool(1) as pool:  # a Pool's workers are daemonic
        said = pool.apply(_scan_in_a_pool_worker, (str(pair),))
    assert said.startswith("UsageError: imgdup decodes images in worker processes, and this process may not start any")
    assert "ProcessPoolExecutor" in said  # it was "AssertionError: daemonic processes are not allowed to have children"


def test_a_result_whose_keeper_was_marked_remove_in_python_says_so(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    photo(1).save(root / "a.png")
    photo(1).save(root / "b.jpg", quality=70)
    result = imgdup.find_duplicates(root, jobs=1)
    (cluster,) = result.clusters
    swap = {imgdup.Action.KEEP: imgdup.Action.REMOVE, imgdup.Action.REMOVE: imgdup.Action.KEEP}
    edited = replace(cluster, members=tuple(replace(m, action=swap[m.action]) for m in cluster.members))
    done = imgdup.remove(replace(result, clusters=(edited,)), quarantine=tmp_path / "q")
    assert not done.removed  # safe either way; the reason said "another name of the same file"
    keeper = cluster.keep.path
    assert done.skipped[0].reason == f"{keeper} is marked remove but is the cluster's kept file (Cluster.keep names it)"


def test_messages_name_the_python_arguments_too(pair: Path, tmp_path: Path) -> None:
    with pytest.raises(imgdup.UsageError, match='labels="folder" in Python'):
        imgdup.find_duplicates(pair, labels="folders", jobs=1)  # a typo: it said only "cannot read the labels file"
    with pytest.raises(imgdup.UsageError, match="roots= and reference= in Python"):
        imgdup.find_duplicates(files=[pair / "a.png", pair / "b.png"], between=True, jobs=1)


def test_a_list_file_given_as_files_is_refused_with_how_to_read_it(pair: Path, tmp_path: Path) -> None:
    listing = tmp_path / "paths.txt"  # what --files LIST reads: in Python it was one non-image, and nothing was scanned
    listing.write_text(f"{pair / 'a.png'}\n{pair / 'b.png'}\n")
    with pytest.raises(imgdup.UsageError, match=r"files takes the image paths themselves, not a file that lists them"):
        imgdup.find_duplicates(files=listing, jobs=1)
    result = imgdup.find_duplicates(files=listing.read_text().splitlines(), jobs=1)  # the way the message gives
    assert result.summary.clusters == 1


def test_a_folder_given_as_files_is_refused_with_where_it_goes(pair: Path) -> None:
    with pytest.raises(imgdup.UsageError, match=r"is a folder: folders go to roots \(the first argument\)"):
        imgdup.find_duplicates(files=pair, jobs=1)  # it scanned nothing: "not a regular file" in result.skipped


def test_image_files_given_as_reference_are_refused_naming_reference(pair: Path, tmp_path: Path) -> None:
    """``reference=[p for p, _ in train.samples]``, as ``files`` takes them: it said only "not a
    directory: .../a.png", naming no option (QA pass 36). A missing folder names it too."""
    test = tmp_path / "test"
    test.mkdir()
    with pytest.raises(imgdup.UsageError) as err:
        imgdup.find_duplicates(test, reference=[pair / "a.png", pair / "b.png"], between=True, jobs=1)
    assert str(err.value) == (
        f"reference takes folders (--reference DIR), and {pair / 'a.png'} is a file: give the folder that holds"
        " the reference images (an ImageFolder's root: reference=train.root)"
    )
    with pytest.raises(imgdup.UsageError) as err:
        imgdup.find_duplicates(test, reference=tmp_path / "gone", jobs=1)
    assert str(err.value) == f"reference (--reference DIR) is not a folder: {tmp_path / 'gone'}"


@pytest.mark.parametrize("size", [12, 64])
def test_a_hash_size_that_is_no_power_of_two_in_range_is_named_with_its_value(pair: Path, size: int) -> None:
    """As every other option's message does (``threshold ..., got 65``): it said only "hash_size
    must be a power of two between 4 and 32", without the value given (QA pass 34)."""
    with pytest.raises(imgdup.UsageError, match=rf"hash_size must be a power of two from 4 to 32 .*got {size}$"):
        imgdup.find_duplicates(pair, hash_size=size, jobs=1)
