"""imgdup: find and remove duplicate and near-duplicate images in image datasets.

Public API::

    result = imgdup.find_duplicates(["photos"], threshold=4)      # scan; changes nothing
    for cluster in result.clusters: ...                            # keeper, members, actions
    done = imgdup.remove(result)                                   # quarantine the duplicates
    imgdup.undo(done.manifest)                                     # and put them back
"""

__version__ = "0.1.0"  # the single source: pyproject.toml reads it (importlib.metadata costs ~50 ms)

from .actions import remove, undo
from .errors import ImgdupError, ManifestError, RemovalError, UsageError
from .frames import to_dataframe
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
from .plan import to_document
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
    "find_duplicates",
    "format_text",
    "remove",
    "to_dataframe",
    "to_document",
    "undo",
    "write_montages",
    "write_report",
]
