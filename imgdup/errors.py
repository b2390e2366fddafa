"""Exceptions for misuse and for conditions that stop a whole run (per-file problems are data)."""


class ImgdupError(Exception):
    """Root of every error imgdup raises on purpose."""


class UsageError(ImgdupError, ValueError):
    """An option or argument is invalid (bad threshold, unknown keep rule, missing root)."""


class RemovalError(ImgdupError):
    """A removal or undo could not start (no safe quarantine, unwritable manifest, ...)."""


class ManifestError(ImgdupError):
    """A manifest is missing, unreadable or not an imgdup manifest."""


class PlanError(ImgdupError):
    """A saved plan (report or exported review) is unreadable, invalid or not for this machine."""


class OutputError(ImgdupError):
    """An output file (report, montage) cannot be written where asked, or would replace a file
    imgdup did not write."""


class RemovalInterrupted(KeyboardInterrupt):
    """Ctrl-C during a removal; ``done`` is what had been done (a RemovalResult) when it came."""

    def __init__(self, done: object) -> None:
        super().__init__("interrupted during removal")
        self.done = done
