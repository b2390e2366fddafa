"""When a multi-frame file (animation, multi-page scan) may be removed as a duplicate (pure).

The search compares first frames only (``ImageRecord.hash``), so two animations that open on
the same frame land in one cluster however different the rest is. Removing one of them would
lose pictures. A member is removable only when its frames *match* the kept file's:

- the two files are byte-identical (same SHA-256: the same frames, however many), or
- they have the same number of frames, every frame was hashed (no more than
  ``hashing.MAX_FRAMES``), and each frame is within the threshold of the kept file's frame at
  the same position (the first frame's distance is the member's own distance).

Anything else (a still image against an animation, other frame counts, a frame beyond the
threshold, more frames than were read) leaves the member in place for ``review``. Frames are
compared as stored: with ``rotations``, a rotated copy of an animation is left for review too.
"""

from __future__ import annotations

from .models import ImageRecord


def fully_hashed(record: ImageRecord) -> bool:
    """True when every frame of the file was hashed (it has no more frames than the cap)."""
    return len(record.frame_hashes) == record.frames - 1


def frames_match(keeper: ImageRecord, other: ImageRecord, threshold: int) -> bool:
    """Whether ``other``'s frames after the first all match ``keeper``'s (see the module doc)."""
    if keeper.digest == other.digest:
        return True
    if keeper.frames != other.frames:
        return False
    if keeper.frames == 1:
        return True
    if not (fully_hashed(keeper) and fully_hashed(other)):
        return False
    return all((a ^ b).bit_count() <= threshold for a, b in zip(keeper.frame_hashes, other.frame_hashes))
