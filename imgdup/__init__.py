"""imgdup: find and remove duplicate and near-duplicate images in image datasets.

Public API::

    result = imgdup.find_duplicates(["photos"], threshold=4)      # scan; changes nothing
    for cluster in result.clusters: ...                            # keeper, members, actions
    done = imgdup.remove(result)                                   # quarantine the duplicates
    imgdup.undo(done.manifest)                                     # and put them back
    done = imgdup.apply(imgdup.load_plan("plan.json"))             # act on a saved, reviewed plan
"""

__version__ = "0.1.0"  # the single source: pyproject.toml reads it (importlib.metadata costs ~50 ms)

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .actions import put_back_interrupted, remove, undo
    from .apply_plan import apply, load_plan
    from .dataframe import to_dataframe
    from .errors import ImgdupError, ManifestError, OutputError, PlanError, RemovalError, UsageError
    from .models import (
        Action,
        Cluster,
        HashFailure,
        HashSettings,
        ImageRecord,
        LeakPair,
        Member,
        RemovalResult,
        Removed,
        ScanResult,
        SetSummary,
        SkippedCluster,
        Summary,
        UndoResult,
    )
    from .pipeline import find_duplicates
    from .plan import Plan, to_document
    from .report import format_text, write_report
    from .report.montage import write_montages

# A library prints nothing: without this, Python's last-resort handler writes its warnings to
# stderr when the caller configured no logging (remove() printed "cluster N skipped: ...").
logging.getLogger(__name__).addHandler(logging.NullHandler())

# Every name loads on first use (PEP 562): ``import imgdup`` and a command-line run pay only for
# the modules they use (a scan does not import the removal, report or pandas code). The records
# too: the ``imgdup`` command imports this package before its Ctrl-C handler (imgdup.__main__.run)
# is reached, and a Ctrl-C while they loaded printed Python's traceback (QA pass 35).
_LAZY = {
    **dict.fromkeys(
        ("ImgdupError", "ManifestError", "OutputError", "PlanError", "RemovalError", "UsageError"), "errors"
    ),
    **dict.fromkeys(
        ("Action", "Cluster", "HashFailure", "HashSettings", "ImageRecord", "LeakPair", "Member"), "models"
    ),
    **dict.fromkeys(("RemovalResult", "Removed", "ScanResult", "SetSummary", "SkippedCluster", "Summary"), "models"),
    "UndoResult": "models",
    "Plan": "plan",
    "to_document": "plan",
    "put_back_interrupted": "actions",
    "remove": "actions",
    "undo": "actions",
    "apply": "apply_plan",
    "load_plan": "apply_plan",
    "to_dataframe": "dataframe",
    "find_duplicates": "pipeline",
    "format_text": "report",
    "write_report": "report",
    "write_montages": "report.montage",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "Action",
    "Cluster",
    "HashFailure",
    "HashSettings",
    "ImageRecord",
    "ImgdupError",
    "LeakPair",
    "ManifestError",
    "Member",
    "OutputError",
    "Plan",
    "PlanError",
    "RemovalError",
    "RemovalResult",
    "Removed",
    "ScanResult",
    "SetSummary",
    "SkippedCluster",
    "Summary",
    "UndoResult",
    "UsageError",
    "__version__",
    "apply",
    "find_duplicates",
    "format_text",
    "load_plan",
    "put_back_interrupted",
    "remove",
    "to_dataframe",
    "to_document",
    "undo",
    "write_montages",
    "write_report",
]
