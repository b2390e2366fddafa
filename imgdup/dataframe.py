"""A pandas view of a scan, for people who live in notebooks (pandas is an optional extra)."""

from __future__ import annotations

from typing import Any

from .errors import ImgdupError
from .models import RECORD_COLUMNS, ScanResult


def to_dataframe(result: ScanResult) -> Any:
    """``pandas.DataFrame`` of :meth:`ScanResult.to_records` (one row per cluster member).

    pandas is imported here, never by the rest of imgdup: install it with
    ``pip install 'imgdup-ml[pandas]'``.
    """
    try:
        import pandas
    except ImportError:
        raise ImgdupError("to_dataframe needs pandas: pip install 'imgdup-ml[pandas]'") from None
    # The columns are named even when there is no row: df[df.action == "remove"] on a scan
    # without duplicates must give an empty frame, not a KeyError.
    return pandas.DataFrame(result.to_records(), columns=list(RECORD_COLUMNS))
