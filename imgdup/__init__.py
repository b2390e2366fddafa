"""imgdup: find and remove duplicate and near-duplicate images in image datasets.

Public API::

    result = imgdup.find_duplicates(["photos"], threshold=4)      # scan; changes nothing
    for cluster in result.clusters: ...                            # keeper, members, actions
    done = imgdup.remove(result)                                   # quarantine the duplicates
    imgdup.undo(done.manifest)                                     # and put them back
    done = imgdup.apply(imgdup.load_plan("plan.json"))             # act on a saved, reviewed plan
"""

__version__ = "0.1.0"  # the single source: pyproject.toml reads it (importlib.metadata costs ~50 ms)

from .actions import remove, undo
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
from .report import format_text, write_montages, write_report

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
    "remove",
    "to_dataframe",
    "to_document",
    "undo",
    "write_montages",
    "write_report",
]
