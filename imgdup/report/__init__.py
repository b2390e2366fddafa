"""Writers of a scan result: text and HTML (people), JSON and CSV (programs), PNG montages (eyes)."""

from __future__ import annotations

import os
from collections.abc import Callable

from ..errors import StrOrBytesPath, UsageError, check_result, check_workers, path_arg
from ..fsafe import check_output, write_output
from ..models import ScanResult
from .tables import CSV_FIRST_COLUMNS, to_csv, to_json
from .text import format_text

# The HTML and montage writers (Pillow's drawing modules, thumbnails) load on first use: a scan
# that writes neither does not pay for their imports.
_LAZY = {"to_html": "html", "write_thumbnails": "html", "GENERATOR": "html"}
_LAZY |= {"check_montages": "montage", "write_montages": "montage"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "check_montages",
    "check_report",
    "format_text",
    "report_format",
    "to_csv",
    "to_html",
    "to_json",
    "write_montages",
    "write_report",
]


# The mark of each kind of output imgdup writes: an existing file is replaced only if its first
# 4 KiB carry the mark of the same kind (see imgdup.fsafe.write_output).
MARKS: dict[str, Callable[[bytes], bool]] = {
    "json": lambda head: head.startswith(b"{") and b'"schema": "imgdup.report/' in head,
    "csv": lambda head: head.startswith(",".join(CSV_FIRST_COLUMNS).encode()),  # earlier reports too
    "html": lambda head: head.startswith(b"<!doctype html>") and _generator().encode() in head,
}


def _generator() -> str:
    from .html import GENERATOR

    return GENERATOR


def report_format(path: str | os.PathLike[str]) -> str:
    """``json``, ``csv`` or ``html``, from the file name's suffix."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    fmt = {".json": "json", ".csv": "csv", ".html": "html", ".htm": "html"}.get(suffix)
    if fmt is None:
        raise UsageError(f"report file must end in .json, .csv or .html (.htm; any case): {os.fspath(path)}")
    return fmt


def check_report(path: str | os.PathLike[str]) -> None:
    """Raise now (:class:`UsageError`, :class:`OutputError`) if :func:`write_report` could not
    write ``path``: a missing folder, a symlink or a file imgdup did not write. Call it before
    a long scan."""
    check_output(os.fspath(path), MARKS[report_format(path)])


def write_report(
    result: ScanResult,
    path: StrOrBytesPath,
    *,
    jobs: int | None = None,
    timeout: float | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> str:
    """Write the report as JSON (``.json``), CSV (``.csv``) or HTML (``.html``), chosen by suffix.

    Atomic, never through a symbolic link, and never over a file that imgdup did not write
    (an earlier report of the same format is replaced): :func:`imgdup.fsafe.write_output`.
    An HTML page's thumbnails are made in ``jobs`` worker processes (None: every core), ``timeout``
    seconds a file at most (None: the scan's default), see :func:`imgdup.report.html.write_thumbnails`;
    ``progress(stage, done, total)`` follows them as a scan's progress callback does.
    """
    check_result("write_report", result)
    path = path_arg("path", path)
    fmt = report_format(path)
    check_workers(jobs, 1.0 if timeout is None else timeout)  # whatever the format: as documented
    if fmt == "html":
        from .html import to_html, write_thumbnails

        options = {} if timeout is None else {"timeout": timeout}
        text = to_html(result, thumbs=write_thumbnails(result, path, jobs=jobs, progress=progress, **options))
    else:
        text = {"json": to_json, "csv": to_csv}[fmt](result)
    write_output(path, text.encode("utf-8"), MARKS[fmt])
    return path
