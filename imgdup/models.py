"""Immutable records passed between pipeline stages (standard library only)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import MISSING, dataclass, field, fields
from enum import Enum
from typing import Any, NamedTuple, TypeVar, cast

_T = TypeVar("_T")

ALGORITHMS = ("phash", "dhash", "ahash", "whash")
DECODE_MODES = ("draft", "full")


def _direct_init(cls: type[_T]) -> type[_T]:
    """Give a frozen dataclass the ``__init__`` that dataclasses generates for it, with
    ``object.__setattr__`` bound once instead of looked up twice a field.

    Why: the generated one spends ~3.6 us on 12 fields against ~2.1 us; a 20,000-member
    incremental scan builds ~100,000 records, traits and members. Instances are the same (frozen,
    same layout and size: writing into ``__dict__`` instead was faster still but made each
    instance ~3x larger and its attributes slower to read). Only for classes without
    ``__post_init__``, default factories or ``init=False`` fields."""
    params, stores = [], []
    namespace: dict[str, Any] = {"_set": object.__setattr__}
    for f in fields(cast(Any, cls)):
        if f.default_factory is not MISSING or not f.init:
            raise TypeError(f"{cls.__name__}.{f.name}: no default factories or init=False fields here")
        if f.default is MISSING:
            params.append(f.name)
        else:
            namespace[f"_d_{f.name}"] = f.default
            params.append(f"{f.name}=_d_{f.name}")
        stores.append(f"    _set(self, {f.name!r}, {f.name})\n")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has a __post_init__: keep its generated __init__")
    source = f"def __init__(self, {', '.join(params)}):\n{''.join(stores)}"
    exec(source, namespace)  # our own field names, as dataclasses itself does
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


@dataclass(frozen=True)
class HashSettings:
    """Every setting that changes a hash value; a cache entry is valid only for equal settings.

    ``decode="draft"`` lets libjpeg scale JPEGs down while decoding (DCT scaling), which is
    ~3x cheaper but yields slightly different hashes than a full decode, so the two modes
    must never meet in one index or cache entry.
    """

    algorithm: str = "phash"
    hash_size: int = 8
    decode: str = "draft"
    # Also hash the 7 rotated/flipped versions of every image (see ImageRecord.variants).
    rotations: bool = False
    # Also hash the content box and a few sub-regions of every image (see ImageRecord.regions).
    regions: bool = False

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"unknown hash {self.algorithm!r}; choose one of {', '.join(ALGORITHMS)}")
        if self.decode not in DECODE_MODES:
            raise ValueError(f"unknown decode mode {self.decode!r}; choose one of {', '.join(DECODE_MODES)}")
        if not 4 <= self.hash_size <= 32 or self.hash_size & (self.hash_size - 1):
            raise ValueError(f"hash_size must be a power of two from 4 to 32 (4, 8, 16, 32), got {self.hash_size}")

    @property
    def bits(self) -> int:
        """Number of bits in one hash: the largest meaningful threshold."""
        return self.hash_size * self.hash_size

    @property
    def hex_width(self) -> int:
        return (self.bits + 3) // 4

    @functools.cached_property
    def _hex_format(self) -> str:
        return f"0{self.hex_width}x"  # worked out once: a report asks once a member

    def to_hex(self, value: int) -> str:
        """Zero-padded hex, the same spelling as ``str(imagehash.ImageHash)``."""
        return format(value, self._hex_format)


@_direct_init
@dataclass(frozen=True)
class FileEntry:
    """A regular file found under a root; hard links to it are folded into ``aliases``."""

    path: str
    root: str
    relpath: str
    size: int
    mtime_ns: int
    inode: int
    device: int
    aliases: tuple[str, ...] = ()
    # The inode's change time: a rewrite in place with size and mtime set back still moves it
    # (the cache's key holds it). 0 = unknown (an object store's file, a gone file of a plan).
    ctime_ns: int = 0
    # Names of the inode on the file system (st_nlink): more than the scan's own names means a
    # name outside the scan keeps the data when this file is removed (no space freed).
    links: int = 1
    # For a local copy of an object-store file (imgdup.kernels), the object's path: per-file
    # options are keyed by it (the keep policy's colour decode was looked up by the copy's name).
    staged_from: str = ""

    @property
    def key(self) -> str:
        """The name per-file options are given under: the path, or the object a copy stands for."""
        return self.staged_from or self.path

    @property
    def frees_space(self) -> bool:
        """Whether removing every name the scan found frees the file's bytes."""
        return self.links <= 1 + len(self.aliases)


@_direct_init
@dataclass(frozen=True)
class Quality:
    """What the ``quality`` keep rule compares, measured on the full-resolution grey image.

    ``upscaled`` is True when the picture survives a round trip through a smaller size almost
    unchanged (it carries fewer details than pixels: an enlargement). ``pixels_sha256`` is a
    digest of the decoded pixels: two files with equal pixels hold the same picture, and the
    smaller file is the better copy (a lossless PNG of a JPEG is not better than the JPEG).
    """

    upscaled: bool
    pixels_sha256: str
    # Added by the sibling-relative keep policy (imgdup.quality); empty/None in older records.
    # ``spectrum``: mean power per pixel above each of quality.CUTOFFS (fractions of Nyquist),
    # on a native-resolution centre crop. ``lowest_fit``: the standard JPEG quality whose
    # luminance quantisation lattice the pixels sit on best (they went through it), or None.
    spectrum: tuple[float, ...] = ()
    lowest_fit: int | None = None
    # False when only the spectrum was measured: it showed an enlargement of a sibling (which
    # never wins over its source), so the JPEG lattice test and the pixel digest were skipped
    # (``pixels_sha256`` is then "").
    complete: bool = True
    # ``blocks``: luminance DCT coefficients of blocks spread over the image as stored, and the
    # file's quantisation steps (quality.block_signature): whether two same-size copies are plain
    # re-encodes of one picture (b"": not measured, or not read from the cache: a warm run whose
    # decisions are remembered leaves them there). The file's alone, so not compared.
    blocks: bytes = field(default=b"", compare=False, repr=False)
    # ``repeats``: the centre crop's column and row differences (quality.repeat_profile): whether
    # the file is a nearest-neighbour enlargement of a smaller sibling (b"": not measured).
    repeats: bytes = field(default=b"", repr=False)
    # ``border``: the widths of thin plain bars along the picture's sides as stored, packed
    # (quality.thin_bars, quality.pack_bars), 0: none.
    border: int = 0


@_direct_init
@dataclass(frozen=True)
class Traits:
    """What the keep policy needs that the hash's own (reduced) decode already shows, for free.

    ``intact``: the file passed a full check (Pillow's ``verify()``: chunk checksums of a PNG).
    ``colourfulness``: mean chroma distance from grey (0-~180; a grey picture stored as RGB ~0).
    ``jpeg_quality``: the IJG quality the luminance quantisation table corresponds to, None
    when the file is no JPEG; ``lossless``: a format that stores pixels exactly (PNG, BMP, ...).
    ``thumb``: a 16x16 grey thumbnail (256 bytes, row-major) to compare siblings with.
    ``content``: the share of the image's area inside its content box (what is left after
    peeling plain bands: an added border, letterbox bars, a caption band, a window frame; see
    :func:`imgdup.regions.content_box`); 1.0 when nothing was peeled or it was not looked for
    (without regions). A copy with an added frame holds no more of the picture than one without.
    ``format`` and ``mode``: Pillow's format and mode of the file as stored ("" when not known):
    a WebP of unknown quality is no palette quantisation, a 16-bit scan holds more than its 8-bit
    export, a 1-bit copy less. ``chroma_spread``: how far the colours stray from what the grey
    level alone predicts (:func:`imgdup.quality.chroma_spread`; near 0 for a grey picture with a
    uniform tint, such as sepia), None when not measured (a grey file, an older record).
    ``transparent``: the file's alpha channel (or colour key) makes some pixel less than opaque: a
    copy flattened onto a background shows the same pixels and has lost it. ``subsampling``: a
    colour JPEG's pixels per chroma sample (1 for 4:4:4, 2 for 4:2:2, 4 for 4:2:0), None for
    another file.
    ``icc``: the file embeds a colour profile (ICC), which says what its pixel values mean: a copy
    with the same values and no profile shows other colours in a colour-managed viewer.
    ``orientation``: the EXIF orientation (1-8) the stored pixels are shown with, 1 when they are
    shown as stored: a copy stripped of the tag holds the same pixels and shows them turned.
    """

    intact: bool = True
    colourfulness: float = 0.0
    jpeg_quality: int | None = None
    lossless: bool = False
    thumb: bytes = b""
    content: float = 1.0
    format: str = ""
    mode: str = ""
    chroma_spread: float | None = None
    transparent: bool = False
    subsampling: int | None = None
    icc: bool = False
    orientation: int = 1


@_direct_init
@dataclass(frozen=True)
class ImageRecord:
    """A successfully hashed image; ``digest`` is the SHA-256 of the very bytes that were decoded.

    The optional fields default to "unknown" so records from an older cache stay valid:
    ``variants`` holds the hashes of the 7 rotated/flipped versions (only with
    ``HashSettings.rotations``), ``low_information`` marks nearly flat images (solid colours,
    blank scans) whose perceptual hash means nothing, and ``quality`` is measured only for
    cluster members, when the keep policy asks for it.

    ``frames`` is the number of frames (pages) of an animated or multi-page file and
    ``frame_hashes`` the hashes of frames 2, 3, ... (``hash`` is the first frame's), read up to
    a cap: a file with more frames than hashes was not compared in full and is never removed
    as a duplicate (see :func:`imgdup.frames.frames_match`). ``largest_frame`` is the pixel count
    of its largest frame after the first (0 for a still image): every frame is held to the pixel
    limit, a cached record's too (:func:`imgdup.hashing.over_the_limit`).
    """

    entry: FileEntry
    width: int
    height: int
    hash: int
    digest: str
    variants: tuple[int, ...] = ()
    low_information: bool = False
    quality: Quality | None = None
    frames: int = 1
    frame_hashes: tuple[int, ...] = ()
    # With HashSettings.regions: (content-box hash, *sub-region hashes), see imgdup.regions.
    regions: Sequence[int] = ()
    traits: Traits | None = None
    largest_frame: int = 0

    @functools.cached_property
    def path(self) -> str:
        """The entry's path (remembered: read hundreds of thousands of times by a large scan)."""
        return self.entry.path

    @property
    def pixels(self) -> int:
        return self.width * self.height


UNLISTED_FOLDER = "cannot list folder"  # the reason of a folder's failure (discover), how it is told apart


@dataclass(frozen=True)
class HashFailure:
    """A file that could not be hashed, and why; failures are data, not exceptions."""

    path: str
    reason: str
    # Transient failures (file changed mid-scan, out of memory, timeout, over the pixel limit, a
    # format this installation lacks) are not cached.
    transient: bool = False

    @property
    def folder(self) -> bool:
        """A folder the scan could not list (its files never counted), not a file that failed."""
        return self.reason.startswith(UNLISTED_FOLDER)


@dataclass(frozen=True)
class Skipped:
    """A path that was seen but not scanned (symlink, special file, a file gone since its folder
    was listed); one that could not be looked at (a folder it cannot list) is a HashFailure."""

    path: str
    reason: str


@dataclass(frozen=True)
class Match:
    """Two distinct hash values (indices into the unique-hash list) within the threshold."""

    a: int
    b: int
    distance: int


class Action(str, Enum):
    KEEP = "keep"
    REMOVE = "remove"
    REVIEW = "review"


@_direct_init
@dataclass(frozen=True)
class Member:
    """One file of a cluster with its distance to the kept file and what will happen to it."""

    record: ImageRecord
    distance: int
    action: Action
    # Dataset annotations (imgdup.sets): a member of a reference folder is never removed;
    # ``split`` names the folder given on the command line that holds the file (train, test).
    reference: bool = False
    label: str | None = None
    split: str = ""
    # A member beyond the threshold of the kept file is in the cluster through a chain of links:
    # the member it joined through (its path) and that link's distance (imgdup.policy.joined_through).
    via: str | None = None
    via_distance: int | None = None
    # How the link shown was made (to the kept file, or the via link): whole image, content box,
    # part of the picture, a corner left out, turned or mirrored (imgdup.regions.LINK_KINDS).
    linked_by: str | None = None


@_direct_init
@dataclass(frozen=True)
class Cluster:
    """A connected group of near-identical images with the keeper chosen by the keep policy.

    ``diameter`` is the largest distance between any two members: larger than the threshold
    when union-find chained members together (A~B, B~C, A far from C).
    """

    id: int
    keep: ImageRecord
    keep_reason: str
    members: tuple[Member, ...]
    diameter: int
    # The distinct labels of the members when they disagree (a "label conflict"), else ().
    label_conflict: tuple[str, ...] = ()
    # The scanned and reference folders its members' names lie in (hard links and a reference
    # folder's symbolic links included) when they are two or more: a leak between them; else ().
    spans: tuple[str, ...] = ()

    @property
    def removable(self) -> tuple[Member, ...]:
        return tuple(m for m in self.members if m.action is Action.REMOVE)


class Remembered(NamedTuple):
    """What a remembered decision over a set of reference files said (imgdup.memo.keepers): the
    kept file's path, the reason and the diameter; and, for a cluster made of exactly those
    files, each member as it was decided (record, distance, action, via, via distance, link
    kind), so that an unchanged reference cluster is not decided again."""

    keep: str
    reason: str
    diameter: int
    members: tuple[tuple[ImageRecord, int, Action, str | None, int | None, str | None], ...] | None = None


@dataclass(frozen=True)
class Clustered:
    """The search-and-decide half of a scan: clusters, low-information images, all records."""

    clusters: tuple[Cluster, ...]
    low_information: tuple[ImageRecord, ...]
    records: tuple[ImageRecord, ...]


@dataclass(frozen=True)
class Summary:
    files: int
    images: int
    from_cache: int
    failures: int
    clusters: int
    duplicates: int
    to_remove: int
    to_review: int
    bytes_to_remove: int
    seconds: float
    label_conflicts: int = 0
    # Clusters spanning two or more of the given folders (train/test leaks), and clusters made
    # only of reference files (reported, never acted on).
    leaks: int = 0
    reference_clusters: int = 0


@dataclass(frozen=True)
class ScanSettings:
    hash: HashSettings
    threshold: int
    keep: tuple[str, ...]
    index: str
    labels: str | None = None  # "folder", a labels file's path, or None
    label_conflicts: str = "review"  # what happens to members of a conflicting cluster
    between: bool = False  # only clusters spanning two or more folders


@dataclass(frozen=True)
class SetSummary:
    """One folder given to the scan (a dataset root or a reference root) and its duplicates.

    ``duplicates_within``: files beyond the first of each picture inside this folder;
    ``leaks``: (other folder, files of this folder that share a cluster with it).
    """

    root: str
    name: str
    reference: bool
    files: int
    duplicates_within: int
    leaks: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class LeakPair:
    """Clusters holding files of both folders ``a`` and ``b`` (a < b), and those files.

    ``hard_links`` counts single files with names in both folders (a ``cp -al`` split): one
    file, so no cluster, but the same picture in both; their names are in ``files_a`` and
    ``files_b`` too. ``symlinks`` likewise counts single files that a reference folder's
    symbolic link places in the other folder (a split made of links)."""

    a: str
    b: str
    clusters: int
    files_a: tuple[str, ...]
    files_b: tuple[str, ...]
    hard_links: int = 0
    symlinks: int = 0


@dataclass(frozen=True)
class LinkedConflict:
    """One file whose names (hard links) lie in folders of different labels, and is in no
    cluster: ``train/cat/a.jpg`` = ``train/dog/a.jpg``, read by ImageFolder as a cat and a dog.
    (A file in a cluster makes its cluster's conflict.)"""

    names: tuple[str, ...]
    labels: tuple[str, ...]


RECORD_COLUMNS = (
    "cluster", "group", "action", "distance", "via", "via_distance", "linked_by", "path", "root", "relpath", "split",
    "label", "reference", "label_conflict", "hash", "width", "height", "bytes",
)  # fmt: skip
"""The keys of every row :meth:`ScanResult.to_records` gives, in order."""


@dataclass(frozen=True)
class ScanResult:
    """Everything one scan found: the input of reports and of removal."""

    settings: ScanSettings
    roots: tuple[str, ...]
    clusters: tuple[Cluster, ...]
    failures: tuple[HashFailure, ...]
    skipped: tuple[Skipped, ...]
    summary: Summary
    records: tuple[ImageRecord, ...] = field(default=(), repr=False)
    # Nearly flat images kept out of the near-duplicate search (they cluster only with
    # byte-identical copies).
    low_information: tuple[ImageRecord, ...] = ()
    # Reference folders (matched, never touched), clusters made only of reference files, and
    # the per-folder summary of duplicates and leaks (imgdup.sets).
    reference: tuple[str, ...] = ()
    reference_clusters: tuple[Cluster, ...] = ()
    sets: tuple[SetSummary, ...] = ()
    leak_pairs: tuple[LeakPair, ...] = ()
    linked_label_conflicts: tuple[LinkedConflict, ...] = ()

    @property
    def unlisted_folders(self) -> int:
        """How many of ``failures`` are folders that could not be listed (:attr:`HashFailure.folder`):
        the messages count them apart, as none of their files was counted."""
        return sum(f.folder for f in self.failures)

    def to_records(self) -> list[dict[str, object]]:  # columns: RECORD_COLUMNS
        """One flat row per cluster member (reference-only clusters too), ready for
        ``pandas.DataFrame(result.to_records())`` or ``csv.DictWriter``."""
        to_hex = self.settings.hash.to_hex
        rows: list[dict[str, object]] = []
        for group, clusters in (("duplicates", self.clusters), ("reference", self.reference_clusters)):
            for c in clusters:
                for m in c.members:
                    r = m.record
                    rows.append(
                        {
                            "cluster": c.id,
                            "group": group,
                            "action": m.action.value,
                            "distance": m.distance,
                            "via": m.via,
                            "via_distance": m.via_distance,
                            "linked_by": m.linked_by,
                            "path": r.path,
                            "root": r.entry.root,
                            "relpath": r.entry.relpath,
                            "split": m.split,
                            "label": m.label,
                            "reference": m.reference,
                            "label_conflict": bool(c.label_conflict),
                            "hash": to_hex(r.hash),
                            "width": r.width,
                            "height": r.height,
                            "bytes": r.entry.size,
                        }
                    )
        return rows


@dataclass(frozen=True)
class Removed:
    """One file name moved to the quarantine (``quarantine`` is None when deleted).

    ``frees_space`` is False when another hard link outside the scanned roots still holds the
    data: the name is gone from the dataset, but the disk space is not freed. ``bytes`` is what
    this name frees: 0 for a second name of a file whose first name here counts its bytes.
    """

    cluster: int
    path: str
    quarantine: str | None
    bytes: int
    frees_space: bool = True
    # Another name (hard link) of a file removed with it: counted as a name, not as a file, so
    # that "moved 1 file" matches the report's "would remove 1 file" (it said "2 files").
    other_name: bool = False


@dataclass(frozen=True)
class SkippedCluster:
    """A cluster left untouched by a removal, and why (a file changed since the scan, ...); or,
    with ``moved``, stopped part-way: that many of its files were moved (or deleted) before it
    stopped (a full disk, a kept file that changed meanwhile), and are in ``removed``."""

    cluster: int
    reason: str
    moved: int = 0


@dataclass(frozen=True)
class RemovalResult:
    """What a removal did: the manifest to undo it with, the files moved, the clusters skipped,
    and ``dangling``: the symbolic links under the scanned folders (never followed by a scan)
    that pointed at a file this removal took away, and so point at nothing now (until an undo
    puts the file back)."""

    manifest: str | None
    removed: tuple[Removed, ...]
    skipped: tuple[SkippedCluster, ...]
    permanent: bool
    dangling: tuple[str, ...] = ()

    @property
    def bytes_freed(self) -> int:
        return sum(r.bytes for r in self.removed if r.frees_space)


@dataclass(frozen=True)
class UndoResult:
    """What an undo did; ``problems`` are (path, reason) pairs left as they were."""

    restored: tuple[str, ...]
    already_in_place: tuple[str, ...]
    problems: tuple[tuple[str, str], ...]
