"""Progress bars for the CLI: the only module that imports tqdm."""

from __future__ import annotations

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
}


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
            bar = self._bars[stage] = tqdm(
                total=total or None, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, unit_scale=False
            )
        if total and bar.total != total:  # a stage whose total grows (quality tiers)
            bar.total = total
            bar.refresh()
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
