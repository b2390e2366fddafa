"""Progress bars for the CLI: the only module that imports tqdm."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm

_LABELS = {"hash": "hashing", "search": "searching"}


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
            bar = self._bars[stage] = tqdm(
                total=total, desc=_LABELS.get(stage, stage), unit=" files" if stage == "hash" else "", file=sys.stderr
            )
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
