"""imgdup: find and remove duplicate and near-duplicate images in image datasets.

Public API::

    result = imgdup.find_duplicates(["photos"], threshold=4)      # scan; changes nothing
    for cluster in result.clusters: ...                            # keeper, members, actions
    done = imgdup.remove(result)                                   # quarantine the duplicates
    imgdup.undo(done.manifest)                                     # and put them back
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("imgdup")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

from .actions import remove, undo
from .errors import ImgdupError, ManifestError, RemovalError, UsageError
from .models import (
    Action,
    Cluster,
    HashFailure,
    HashSettings,
    ImageRecord,
    Member,
    RemovalResult,
    Removed,
    ScanResult,
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
    "ManifestError",
    "Member",
    "RemovalError",
    "RemovalResult",
    "Removed",
    "ScanResult",
    "SkippedCluster",
    "Summary",
    "UndoResult",
    "UsageError",
    "__version__",
    "find_duplicates",
    "format_text",
    "remove",
    "to_document",
    "undo",
    "write_montages",
    "write_report",
]
