"""Exceptions for misuse and for conditions that stop a whole run (per-file problems are data)."""

import numbers
import os
from typing import Any


class ImgdupError(Exception):
    """Root of every error imgdup raises on purpose."""


class UsageError(ImgdupError, ValueError):
    """An option or argument is invalid (bad threshold, unknown keep rule, missing root)."""


def check_bool(name: str, value: object, *, none: bool = False) -> None:
    """Refuse an option that takes True or False given anything else (``None`` too, unless
    ``none``): read by truth, ``regions="no"`` turned regions on and ``permanent="no"`` deleted
    the files for good (options read from a config file)."""
    if not isinstance(value, bool) and not (none and value is None):
        allowed = "True, False or None" if none else "True or False"
        raise UsageError(f"{name} must be {allowed}, got {value!r}")


StrOrBytesPath = str | bytes | os.PathLike[str] | os.PathLike[bytes]
"""A path argument of the API: bytes are decoded as :func:`os.fsdecode` does."""


def plain_number(value: Any) -> Any:
    """numpy's scalars as Python's own: a threshold from ``np.arange`` or a DataFrame cell is an
    ``np.int64``, which was refused as "not a whole number" (and is no JSON number); a numpy
    bool is a bool. Anything else is returned as it is, for the option's own check to refuse."""
    kind = type(value)
    if kind.__module__ == "numpy" and kind.__name__ in ("bool_", "bool"):  # numpy is not imported here
        return bool(value)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, float)):  # np.float32
        return float(value)
    return value


def path_arg(name: str, value: object) -> str:
    """A path argument as a string; bytes are decoded as :func:`os.fsdecode` does, as for the
    roots of a scan (``quarantine=b"/q"`` raised TypeError mid-removal), and anything else is a
    UsageError naming the argument (``undo(3)``: "expected str, bytes or os.PathLike object")."""
    if isinstance(value, (str, bytes, os.PathLike)):
        return os.fsdecode(value)
    raise UsageError(f"{name} must be a path (str, bytes or os.PathLike), got {type(value).__name__}")


def check_cache_name(cache: str) -> None:
    """Refuse an empty cache path: SQLite reads "" as a private temporary database, so nothing
    was cached and nothing said (QA pass 33)."""
    if not cache:
        raise UsageError("cache='' names no file: give the path of a SQLite file, or cache=None for no cache")


def check_workers(jobs: object, timeout: object) -> None:
    """Refuse a report writer's ``jobs`` (None: every core) and ``timeout`` as a scan refuses them:
    a timeout of 0 or below timed every thumbnail out at once and wrote the page without
    previews, NaN timed nothing out, and jobs="2" raised a TypeError from inside the pool."""
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise UsageError(f"jobs must be a whole number of worker processes, at least 1, got {jobs!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise UsageError(f"timeout must be a positive number of seconds, got {timeout!r}")


def check_result(func: str, value: object) -> None:
    """Refuse anything but a :class:`~imgdup.models.ScanResult` where a function acts on or
    reports one: a loaded plan, its document or a folder name raised an AttributeError from
    deep inside (``'PlanCluster' object has no attribute 'removable'``)."""
    from .models import ScanResult  # here: models is imported by everything, errors by models' users

    if isinstance(value, ScanResult):
        return
    kind = type(value).__name__
    if func == "remove" and (kind in ("Plan", "dict") or isinstance(value, (str, bytes, os.PathLike))):
        raise UsageError(
            f"remove takes the ScanResult of imgdup.find_duplicates, got {kind}; to act on a saved or edited "
            "plan (a Plan, its document or its file), use imgdup.apply(plan)"
        )
    raise UsageError(f"{func} takes the ScanResult of imgdup.find_duplicates, got {kind}")


class RemovalError(ImgdupError):
    """A removal or undo could not start (no safe quarantine, unwritable manifest, ...)."""


class ManifestError(ImgdupError):
    """A manifest is missing, unreadable or not an imgdup manifest."""


class PlanError(ImgdupError):
    """A saved plan (report or exported review) is unreadable, invalid or not for this machine."""


class OutputError(ImgdupError):
    """An output file (report, montage) cannot be written where asked, or would replace a file
    imgdup did not write. ``errno``: the system's error number, when one was the cause (a full
    disk is said with a hint of where to go)."""

    def __init__(self, message: str, *, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class RemovalInterrupted(KeyboardInterrupt):
    """Ctrl-C during a removal; ``done`` is what had been done (a RemovalResult) when it came."""

    def __init__(self, done: object) -> None:
        super().__init__("interrupted during removal")
        self.done = done
