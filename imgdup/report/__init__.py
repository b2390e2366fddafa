"""Writers of a scan result: text and HTML (people), JSON and CSV (programs), PNG montages (eyes)."""

from __future__ import annotations

import os

from ..errors import UsageError
from ..models import ScanResult
from .html import to_html, write_thumbnails
from .montage import write_montages
from .tables import to_csv, to_json
from .text import format_text

__all__ = ["format_text", "to_csv", "to_html", "to_json", "write_montages", "write_report"]


def write_report(result: ScanResult, path: str | os.PathLike[str]) -> str:
    """Write the report as JSON (``.json``), CSV (``.csv``) or HTML (``.html``), chosen by suffix; atomic."""
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".json":
        text = to_json(result)
    elif suffix == ".csv":
        text = to_csv(result)
    elif suffix in (".html", ".htm"):
        text = to_html(result, thumbs=write_thumbnails(result, path))
    else:
        raise UsageError(f"report file must end in .json, .csv or .html: {path}")
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
