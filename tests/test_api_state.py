"""The API leaves the caller's process as it found it, from threads too: a notebook or a training
script goes on with its own warning filters (and the rest) after imgdup returns."""

from __future__ import annotations

import shutil
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

import imgdup
from imgdup import hashing

from .synth import photo


def test_decoders_that_overlap_in_threads_restore_the_caller_s_warning_filters() -> None:
    before = list(warnings.filters)
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with hashing._decoding():
            first_in.set()
            second_in.wait(10)
        first_out.set()

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait(10)
    with hashing._decoding():  # in while the first is in, out after it: catch_warnings restored its entry's filters
        second_in.set()
        first_out.wait(10)
        # still guarded though the first is out (the first's exit had dropped this one's guard)
        assert ("error", Image.DecompressionBombWarning) in [(f[0], f[2]) for f in warnings.filters]
    thread.join()
    assert warnings.filters == before  # it was left ignoring every UserWarning


def test_reports_written_from_a_thread_pool_leave_the_warning_filters_as_they_were(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    for i in range(3):
        photo(i).save(root / f"{i}.png")
        shutil.copyfile(root / f"{i}.png", root / f"{i}b.png")
    result = imgdup.find_duplicates(root, jobs=1)
    before = list(warnings.filters)

    def sheets(i: int) -> list[str]:
        return imgdup.write_montages(result, tmp_path / f"sheets{i}")

    with ThreadPoolExecutor(4) as pool:
        assert all(len(s) == 3 for s in pool.map(sheets, range(8)))
    assert warnings.filters == before
