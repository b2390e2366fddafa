"""A pandas view of a scan, for people who live in notebooks (pandas is an optional extra)."""

from __future__ import annotations

from typing import Any

from .errors import ImgdupError, check_result
from .models import RECORD_COLUMNS, ScanResult


def _exact_text(values: list[object]) -> bool:
    """True when a text value is a name that is not valid UTF-8 (it holds PEP 383's lone
    surrogates, as ``os.fsdecode`` spells an undecodable byte)."""
    for v in values:
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


def to_dataframe(result: ScanResult) -> Any:
    """``pandas.DataFrame`` of :meth:`ScanResult.to_records` (one row per cluster member).

    pandas is imported here, never by the rest of imgdup: install it (imgdup's pandas extra).
    """
    check_result("to_dataframe", result)
    try:
        import pandas
    except ImportError:
        raise ImgdupError("to_dataframe needs pandas: pip install pandas, imgdup's pandas extra") from None
    rows = result.to_records()
    columns = list(RECORD_COLUMNS)
    # pandas 3 with pyarrow (as in every Hugging Face datasets environment) stores text as Arrow
    # strings, which cannot hold a name's undecodable byte: the frame raised UnicodeEncodeError.
    # Such a column stays Python strings (object dtype), exact; the others are pandas' own.
    exact = [name for name in columns if _exact_text([r[name] for r in rows])]
    if exact:
        frame = pandas.DataFrame([{k: v for k, v in r.items() if k not in exact} for r in rows])
        for name in exact:
            frame[name] = pandas.Series([r[name] for r in rows], dtype=object)
        return frame[columns]
    # The columns are named even when there is no row: df[df.action == "remove"] on a scan
    # without duplicates must give an empty frame, not a KeyError.
    return pandas.DataFrame(rows, columns=columns)
