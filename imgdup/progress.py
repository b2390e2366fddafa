"""Progress bars for the CLI: the only module that imports tqdm."""

from __future__ import annotations

import shutil
import sys
from typing import Any

from tqdm import tqdm

# stage -> (label, unit); a total of 0 means "not known yet" (discovery counts as it goes).
_STAGES = {
    "discover": ("finding files", " files"),
    "hash": ("hashing", " files"),
    "measure": ("measuring quality", " files"),
    "search": ("searching", " hashes"),
    "decide": ("deciding", " clusters"),
    "thumbnails": ("report thumbnails", " files"),
    "montages": ("montages", " sheets"),
}


def _size() -> tuple[int, int]:
    """Columns and rows for the bars: a terminal that reports no size (a bare pty says 0x0, and
    tqdm then draws nothing) gets 100x24."""
    size = shutil.get_terminal_size((100, 24))
    return min(size.columns, 120), max(size.lines, 5)


class TqdmProgress:
    """A ``progress(stage, done, total)`` callback drawing one tqdm bar per stage on stderr."""

    def __init__(self) -> None:
        self._bars: dict[str, Any] = {}
        # tqdm's monitor thread would make worker start-up fall back from fork to forkserver.
        tqdm.monitor_interval = 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        bar = self._bars.get(stage)
        if bar is None:
            for other in self._bars.values():
                other.close()
            desc, unit = _STAGES.get(stage, (stage, ""))
            cols, rows = _size()
            bar = self._bars[stage] = tqdm(
                total=total or None, desc=desc, unit=unit, file=sys.stderr, ncols=cols, nrows=rows
            )
        if total and bar.total != total:  # a stage whose total grows (quality tiers)
            bar.total = total
            bar.refresh()
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
