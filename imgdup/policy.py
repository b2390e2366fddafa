"""Which file of a cluster is kept, and what happens to the others (pure logic).

Only members within the threshold of the kept file are removed: union-find chains (A~B, B~C
with A far from C), so a member far from the keeper may be a different picture and is left
for a person to ``review``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from . import quality
from .errors import UsageError
from .frames import frames_match
from .index import oriented_distance
from .models import Action, Cluster, ImageRecord, Member, Remembered
from .quality import Assessment
from .regions import LINK_KINDS, LinkHashes, LinkTable, distinct_slots, link_distance, link_item


@dataclass(frozen=True)
class KeepRule:
    """One criterion: a sort key (smaller wins) and how to explain a win."""

    key: Callable[[ImageRecord], object]
    describe: Callable[[ImageRecord], str]


KEEP_RULES: dict[str, KeepRule] = {
    # Ranked relative to the other members of the cluster (see _QualityRank); unknown
    # measurements count as "nothing wrong": the next rules decide.
    "quality": KeepRule(lambda r: 0, lambda r: "best copy"),
    "pixels": KeepRule(lambda r: -r.pixels, lambda r: f"most pixels ({r.width}x{r.height})"),
    "size": KeepRule(lambda r: -r.entry.size, lambda r: f"largest file ({r.entry.size} bytes)"),
    "oldest": KeepRule(lambda r: r.entry.mtime_ns, lambda r: "oldest modification time"),
    "newest": KeepRule(lambda r: -r.entry.mtime_ns, lambda r: "newest modification time"),
    "shortest-path": KeepRule(lambda r: len(r.path), lambda r: "shortest path"),
    "path": KeepRule(lambda r: r.path, lambda r: "first in path order"),
}

# Measured on the accuracy benchmark (phash/64, T=8; benchmarks/ACCURACY.md): the original is
# kept in 0% of clusters with pixels,size,path (the 150% upscale has the most pixels, then a
# larger re-encode wins on size) and with quality,pixels,size,path (a q90/q92 re-encode of a q75
# original is larger), in 15% with quality,pixels,path. "size" is not a measure of quality.
DEFAULT_KEEP = ("quality", "pixels", "path")


def parse_keep(spec: str | Sequence[str]) -> tuple[str, ...]:
    """Validate a keep policy (``"oldest,size"`` or a sequence); path order always breaks ties."""
    given: list[object]
    try:
        given = list(spec.split(",") if isinstance(spec, str) else spec)
    except TypeError:
        given = [spec]  # keep=None: not a rule name, refused below as one
    if not all(isinstance(n, str) for n in given):  # keep=None, ["pixels", 3]: it raised AttributeError
        raise UsageError(
            f"keep must be rule names, a comma-separated string or a list of them, got {spec!r}; "
            f"choose from {', '.join(KEEP_RULES)}"
        )
    names = [str(s).strip() for s in given]
    unknown = [n or "(empty)" for n in names if n not in KEEP_RULES]  # "oldest," is a typo too
    if unknown or not names:
        raise UsageError(f"unknown keep rule {', '.join(unknown) or '(empty)'}; choose from {', '.join(KEEP_RULES)}")
    if "path" not in names:
        names.append("path")
    return tuple(dict.fromkeys(names))


TwinKey = tuple[str, int, tuple[int, ...], int, bool]


def _twin_key(r: ImageRecord) -> TwinKey | None:
    """Files with equal keys hold identical pixels (every frame): measured pixel digests, of the
    8-bit picture a viewer sees, as many bits per sample (a 16-bit scan's 8-bit export has
    its digest: it was removed as the larger of two "identical" files) and transparency alike
    (a copy flattened onto white shows a transparent original's very pixels, and was kept so)."""
    if r.quality is None or not r.quality.pixels_sha256:  # not measured (or only its spectrum)
        return None
    bits = quality.bits_per_sample(r.traits.mode) if r.traits is not None else 8
    return r.quality.pixels_sha256, r.frames, r.frame_hashes, bits, r.traits is not None and r.traits.transparent


def _twins_agree(records: Sequence[ImageRecord], assessed: dict[str, Assessment]) -> dict[str, Assessment]:
    """Give files with identical pixels the same verdicts on their picture (edit, frame): those
    come from thumbnails of the hash's reduced decode, which differs between a JPEG and a PNG of
    the same pixels. One twin passing for "edited" and the other not made the smaller one,
    ranked alone (:func:`_smallest_of_twins`), lose to a colour-filtered copy."""
    groups: dict[TwinKey, list[str]] = {}
    for r in records:
        key = _twin_key(r)
        if key is not None:
            groups.setdefault(key, []).append(r.path)
    out = dict(assessed)
    for paths in groups.values():
        if len(paths) > 1:
            same = {
                "edited": all(assessed[p].edited for p in paths),
                "recoloured": all(assessed[p].recoloured for p in paths),
                "framed": all(assessed[p].framed for p in paths),
            }
            for p in paths:
                out[p] = replace(assessed[p], **same)
    return out


def _has_profile(r: ImageRecord) -> bool:
    return r.traits is not None and r.traits.icc


def _turned(r: ImageRecord) -> bool:
    return r.traits is not None and r.traits.orientation != 1


# numpy's version of each EXIF orientation's turn (ImageOps.exif_transpose), on a 16x16 thumbnail
_TURNS: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1, :],
    5: lambda a: a.T,
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].T,
    8: lambda a: np.rot90(a, 1),
}


_TURNED_THUMB = 2.0  # mean grey levels


def _untagged_copy(best: ImageRecord, other: ImageRecord) -> bool:
    """Whether ``other`` looks like ``best`` stripped of its EXIF orientation: untagged, of
    ``best``'s size as stored, format and JPEG quality, and its thumbnail is ``best``'s own turned
    back (within :data:`_TURNED_THUMB`). Only for words: such a copy is a twin when both were
    measured (same pixel digest), but beside a third copy it may not be (its sideways thumbnail
    passes for an edit), and it was explained as "no overlay or edit" (QA pass 36)."""
    a, b = best.traits, other.traits
    if a is None or b is None or a.orientation not in _TURNS or b.orientation != 1:
        return False
    stored = (best.height, best.width) if a.orientation >= 5 else (best.width, best.height)
    if (other.width, other.height) != stored or (a.format, a.jpeg_quality) != (b.format, b.jpeg_quality):
        return False
    if len(a.thumb) != 256 or len(b.thumb) != 256:
        return False
    turned = _TURNS[a.orientation](np.frombuffer(b.thumb, dtype=np.uint8).reshape(16, 16)).astype(np.int16)
    # Not equal: the reduced decode's box thumbnail of the turned picture differs a little from
    # the stored one's turned (mean 0.7 grey levels, dogs-1000 #126); a q70 copy differs ~0.2.
    return float(np.abs(turned - np.frombuffer(a.thumb, dtype=np.uint8).reshape(16, 16)).mean()) <= _TURNED_THUMB


def _twin_rank(r: ImageRecord) -> tuple[bool, bool, int, str]:
    """Among files with identical pixels (transparency alike: :func:`_twin_key`): one that embeds
    a colour profile first (a copy stripped of it, smaller by the profile, was kept, and shows
    other colours where the profile is not sRGB), then one whose EXIF orientation turns them (a
    copy stripped of the tag shows the picture sideways: with --rotations it was kept as the
    smaller), then the smallest, then path order."""
    return not _has_profile(r), not _turned(r), r.entry.size, r.path


def _smallest_of_twins(records: Sequence[ImageRecord]) -> list[ImageRecord]:
    """Drop every file whose decoded pixels equal a smaller file's (then earlier path's): a
    lossless re-encode holds the same picture in more bytes, so it is never the better copy;
    but a file that embeds a colour profile is kept over a twin without one (:func:`_twin_rank`).
    The digest of a multi-frame file covers its frames (up to 64), and the key holds their hashes too."""
    best: dict[TwinKey, ImageRecord] = {}
    out = []
    for r in records:
        key = _twin_key(r)
        if key is None:
            out.append(r)
            continue
        seen = best.get(key)
        if seen is None or _twin_rank(r) < _twin_rank(seen):
            best[key] = r
    return out + list(best.values())


def _quality_key(a: Assessment, r: ImageRecord) -> tuple[object, ...]:
    """The order of the ``quality`` rule: intact, colour, more than 1 bit per pixel (a dithered
    copy's noise is no detail), most frames (a still of an animation's first frame, or page 1
    of a scan, holds part of it), not an enlargement of a sibling, no added frame (its pixels
    are not picture), most pixels, then at equal resolution the whole picture (not a crop of a
    sibling, zoomed back to its size), the least processed (no edit or
    overlay, not blurred, not filtered (noise, sharpening: :func:`imgdup.quality.processed`),
    highest effective JPEG quality, stored losslessly (above a q100 JPEG), most bits per sample,
    transparency kept, most colour samples (chroma subsampling), not re-encoded from a coarser one,
    and of two that were, the one stored losslessly: it holds that coarser picture exactly, where a
    lossy re-save added a loss of its own)."""
    return (
        a.damaged, a.grey, a.bits == 1, -r.frames, a.enlarged, a.framed, -r.pixels, a.cropped, a.edited, a.blurred,
        a.processed,
        -a.quality, not a.lossless,
        -a.bits, not a.transparent, a.subsampled, a.reencoded_from is not None, _resaved_lossily(a, r),
    )  # fmt: skip


def _resaved_lossily(a: Assessment, r: ImageRecord) -> bool:
    """Whether a copy that went through a coarser JPEG quality was then stored lossily again."""
    return a.reencoded_from is not None and not (r.traits is not None and r.traits.lossless)


def _quality_reason(
    best: tuple[Assessment, ImageRecord],
    other: tuple[Assessment, ImageRecord],
    others: Sequence[Assessment] = (),
    set_aside: Sequence[Assessment] = (),
) -> str:
    """Why ``best`` beat ``other`` under the ``quality`` rule, in words (``others``: every other
    candidate's assessment, for a reason that speaks of them all; ``set_aside``: those of its
    size called filtered, which may claim a higher quality than the runner-up)."""
    (a, r), (b, s) = best, other
    if a.damaged != b.damaged:
        return "intact (another copy fails Pillow's full check)"
    if a.grey != b.grey:
        return "colour (another copy is grayscale)"
    if (a.bits == 1) != (b.bits == 1):
        return "grey levels (another copy is black and white, 1 bit per pixel)"
    if r.frames != s.frames:
        return f"more frames ({r.frames} vs {s.frames}: the other copy holds only some of them)"
    if a.enlarged != b.enlarged:
        if all(o.enlarged for o in others):
            return "the others are enlargements of it"
        if s.pixels > r.pixels:
            return f"a larger copy ({s.width}x{s.height}) is an enlargement of it"
        return "another copy of its size is an enlargement of a smaller one"
    if a.framed != b.framed:
        return "no added border, bars or caption (another copy has them)"
    if r.pixels != s.pixels:
        return f"most pixels ({r.width}x{r.height}), not an enlargement"
    if a.cropped != b.cropped:
        return "the whole picture (another copy of its size shows only part of it: a crop)"
    if a.edited != b.edited:
        if b.recoloured:
            return "true colours (another copy's colours were changed: a filter)"
        return "no overlay or edit (another copy differs where the others agree)"
    if a.blurred != b.blurred:
        return "sharper (another copy has less detail)"
    if a.processed != b.processed:
        return "not filtered (another copy is no plain re-encode of the picture the others share: noise or sharpening)"
    finer = max((o.quality for o in set_aside if o.processed), default=0)
    if not a.processed and finer > a.quality:
        lossless = any(o.lossless for o in set_aside if o.processed and o.quality == finer)
        copy = "a lossless copy" if lossless else f"a q{finer} copy"
        return (
            f"not filtered ({copy} of its size is no plain re-encode of the picture the others share:"
            " noise or sharpening)"
        )
    if a.quality != b.quality:
        theirs = _quality_words(b, s)
        if a.lossless:  # q0: a format whose quality is not known (GIF, a palette file)
            return f"lossless (vs {theirs})" if b.quality else "lossless (vs a lossy copy of unknown quality)"
        if a.reencoded_from is None and quality.unknown_quality(r):
            return f"{_quality_words(a, r)} (vs {theirs})"
        return f"highest JPEG quality (q{a.quality} vs {theirs})" if b.quality else f"JPEG quality q{a.quality}"
    if a.lossless != b.lossless:  # a q100 JPEG rounds what it stores
        return f"lossless (vs {_quality_words(b, s)})"
    if a.bits != b.bits:
        return f"more bits per sample ({a.bits} vs {b.bits})"
    if a.transparent != b.transparent:
        return "transparency (another copy was flattened onto a background)"
    if a.subsampled != b.subsampled:
        fewer, more = _pixels(a.subsampled), _pixels(b.subsampled)
        return f"more colour samples (1 per {fewer} vs 1 per {more}: chroma subsampling)"
    if a.reencoded_from is None:
        return f"not a re-encode (another copy went through q{b.reencoded_from})"
    again = s.traits.jpeg_quality if s.traits is not None else None
    how = f"at q{again}" if again else "lossily"
    return f"lossless copy of a q{a.reencoded_from} picture (another copy of it was saved again {how})"


def _pixels(n: int) -> str:
    return "pixel" if n == 1 else f"{n} pixels"


def _quality_words(a: Assessment, r: ImageRecord) -> str:
    """A copy's effective quality in words: "q75", what a WebP of unknown quality ranks as, or for
    a JPEG whose pixels sit on a coarser lattice both qualities (its header's alone read as if
    the lattice's were its own: "q92 vs q90" of a q98 file, QA pass 36)."""
    claimed = r.traits.jpeg_quality if r.traits is not None else None
    if a.reencoded_from is not None and claimed and claimed != a.quality:
        return f"a q{claimed} file whose pixels went through q{a.reencoded_from}"
    if a.reencoded_from is None and quality.unknown_quality(r) and r.traits is not None:
        kind = f"CMYK {r.traits.format}" if r.traits.mode == "CMYK" else r.traits.format
        return f"{kind} of unknown quality, ranked as q{a.quality}"
    return f"q{a.quality}"


def choose_keeper(
    records: Sequence[ImageRecord], keep: Sequence[str], assess: quality.Assess = quality.assess
) -> tuple[ImageRecord, str]:
    """The record the policy keeps, and the rule that decided it against the runner-up.
    ``assess``: :func:`imgdup.quality.assess` or a remembering :class:`~imgdup.quality.Assessor`."""
    if len(records) == 1:  # a lone reference file among other members: nothing to compare
        return records[0], "only member"
    rules = [KEEP_RULES[name] for name in keep]
    if "quality" in keep:
        assessed = _twins_agree(records, {r.path: a for r, a in zip(records, assess(records))})
        rules = [
            KeepRule(lambda r: _quality_key(assessed[r.path], r), KEEP_RULES["quality"].describe)
            if name == "quality"
            else KEEP_RULES[name]
            for name in keep
        ]
    candidates = _smallest_of_twins(records) if "quality" in keep else list(records)
    ranked = sorted(candidates, key=lambda r: tuple(rule.key(r) for rule in rules))
    best = ranked[0]
    if len(ranked) == 1:
        if len({r.digest for r in records}) == 1:
            return best, "first in path order"
        if _has_profile(best) and not all(_has_profile(r) for r in records):
            return best, "colour profile (the others hold its pixels without the profile that says what they mean)"
        if _turned(best) and not all(_turned(r) for r in records):
            return best, "EXIF orientation (the others hold its pixels without the tag that says how to turn them)"
        if sum(r.entry.size == best.entry.size for r in records) > 1:
            # a size shared by another twin: path order decided (it read "smallest")
            if all(r.entry.size == best.entry.size for r in records):
                return best, "first in path order of files with identical pixels, all of one size"
            return best, "first in path order of the smallest files with identical pixels"
        return best, "smallest of the files with identical pixels"
    reason = _why(best, ranked[1], keep, rules, candidates, assessed if "quality" in keep else {})
    if keep[0] == "quality":
        # The file a user looks for first is the largest one that is not framed (a frame shows):
        # when it lost, say why too (a thumbnail kept over its enlargements was explained only
        # against a copy in a white frame; an original only against its re-encodes).
        plain = [r for r in candidates if not assessed[r.path].framed] or candidates
        largest = min(plain, key=lambda r: (-r.pixels, r.path))
        if largest is not best and largest is not ranked[1] and largest.pixels >= best.pixels:
            more = _why(best, largest, keep, rules, candidates, assessed)
            # the same rule again (a copy of the keeper's size, lower quality): nothing new to say
            reason = reason if more.split(" (")[0] == reason.split(" (")[0] else f"{reason}; {more}"
    return best, reason


def _why(
    best: ImageRecord,
    other: ImageRecord,
    keep: Sequence[str],
    rules: Sequence[KeepRule],
    candidates: Sequence[ImageRecord],
    assessed: Mapping[str, Assessment],
) -> str:
    """The first rule that ranks ``best`` before ``other``, in words."""
    for name, rule in zip(keep, rules):
        if rule.key(best) != rule.key(other):
            if name == "quality":
                if _untagged_copy(best, other):
                    return "EXIF orientation (another copy holds its picture without the tag that says how to turn it)"
                others = [assessed[r.path] for r in candidates if r is not best]
                same_size = [assessed[r.path] for r in candidates if r is not best and r.pixels == best.pixels]
                return _quality_reason((assessed[best.path], best), (assessed[other.path], other), others, same_size)
            return rule.describe(best)
    return "first in path order"


def distance(a: ImageRecord, b: ImageRecord, *, bits: int = 64) -> int:
    """Bits between two images' hashes: with rotation variants, :func:`~imgdup.index.oriented_distance`;
    with regions, :func:`imgdup.regions.link_distance` (every link confirmed by finer hashes)."""
    if a.regions and b.regions:
        return link_distance(link_item(a), link_item(b), bits=bits)
    return oriented_distance(a.hash, a.variants, b.hash, b.variants)


def _hashes(records: Sequence[ImageRecord], bits: int) -> LinkHashes:
    return LinkHashes([link_item(r) for r in records], bits=bits)


def _rep_key(r: ImageRecord) -> tuple[int, tuple[int, ...], Sequence[int]]:
    """A member's hash values: members with equal ones are 0 apart (one of them stands for all)."""
    return r.hash, r.variants, r.regions


def _reps(records: Sequence[ImageRecord]) -> list[int]:
    """The first member of each distinct hash value (:func:`_rep_key`)."""
    return list({_rep_key(r): i for i, r in reversed(list(enumerate(records)))}.values())


def diameter(records: Sequence[ImageRecord], *, bits: int = 64) -> int:
    """Largest distance between any two members (over distinct hash values); ``bits`` per hash."""
    return _pairs_in_blocks(records, bits, None)[0]


def _pairs_in_blocks(
    records: Sequence[ImageRecord], bits: int, threshold: int | None
) -> tuple[int, tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """:func:`diameter`, and with a ``threshold`` the pairs of distinct hash values within it
    (reps, pairs of positions in reps, their distances: what :func:`joined_through` reads), every
    pair computed once, a block of rows at a time (bounded memory: a huge cluster)."""
    at = _reps(records)
    reps = [records[i] for i in at]
    hashes, n, widest = _hashes(reps, bits), len(reps), 0
    near_a, near_b, near_d = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    rows = max(1, _BATCH_PAIRS // max(n, 1))
    for lo in range(0, n - 1, rows):
        ia, ib = np.nonzero(np.arange(n)[None, :] > np.arange(lo, min(lo + rows, n))[:, None])
        d = hashes.distances(ia + lo, ib)
        widest = max(widest, int(d.max(initial=0)))
        if threshold is not None:
            keep = d <= threshold
            near_a.append(ia[keep] + lo)
            near_b.append(ib[keep])
            near_d.append(d[keep])
    pairs = (np.array(at, dtype=np.int64), np.concatenate(near_a), np.concatenate(near_b))
    return widest, pairs, np.concatenate(near_d)


def decide(
    cluster_id: int,
    records: Sequence[ImageRecord],
    *,
    threshold: int,
    keep: Sequence[str],
    bits: int = 64,
    protected: Callable[[ImageRecord], bool] | None = None,
) -> Cluster:
    """Build a cluster: the keeper, and ``remove`` or ``review`` for every other member.

    ``protected`` marks reference files: the keeper is chosen among them, every one of them is
    kept, and another member is removed when it is within the threshold of the nearest of them.
    """
    return decide_all([records], threshold=threshold, keep=keep, bits=bits, protected=protected, first_id=cluster_id)[0]


_BATCH_PAIRS = 1 << 20  # distance pairs computed in one go: bounded memory, few numpy calls


def decide_all(
    groups: Sequence[Sequence[ImageRecord]],
    *,
    threshold: int,
    keep: Sequence[str],
    bits: int = 64,
    protected: Callable[[ImageRecord], bool] | None = None,
    first_id: int = 0,
    assess: quality.Assess = quality.assess,
    chosen: Mapping[frozenset[str], Remembered] | None = None,
    table: LinkTable | None = None,
) -> list[Cluster]:
    """:func:`decide` for many clusters (ids from ``first_id``), with every distance they need
    (each member to the kept files, every pair for the diameter) computed in one vectorised
    pass per batch: one call per cluster cost more in numpy overhead than the distances themselves.

    ``chosen`` maps a set of candidate paths to what was decided for exactly those files before
    (a cached reference set's own clusters, :class:`~imgdup.models.Remembered`): the rules are
    not run again for them, and of the diameter's pairs only those with another member are
    measured; a cluster of exactly those reference files takes its remembered members as they
    are (a new batch against a 20,000-file reference: 0.4 s of deciding the reference's own
    clusters again). ``table``: the scan's
    :class:`~imgdup.regions.LinkTable`, whose rows the search converted already."""
    out: list[Cluster] = []
    batch: list[Sequence[ImageRecord]] = []
    budget = 0
    for records in [*groups, None]:
        if batch and (records is None or budget + 2 * len(records) ** 2 > _BATCH_PAIRS):
            out += _decide_batch(
                batch, threshold, keep, bits, protected, first_id + len(out), assess, chosen or {}, table
            )
            batch, budget = [], 0
        if records is not None:
            batch.append(records)
            budget += 2 * len(records) ** 2  # an upper bound of its pairs (kept x members, diameter)
    return out


def joined_through(
    records: Sequence[ImageRecord],
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
    pair_d: np.ndarray,
    kept: Sequence[ImageRecord],
    threshold: int,
) -> dict[int, tuple[int, int]]:
    """For each member (position in ``records``) beyond the threshold of every kept file: the
    member it joined the cluster through and that link's distance, on the fewest links from a
    kept file (then the nearest). ``pairs``: the distinct hash values' first members (``reps``)
    and the pairs of them (positions in reps) whose distances are ``pair_d``: the diameter's.

    A member at "distance 64" from the kept file is in its cluster through a chain of links
    within the threshold; the report names the chain's last link (issue 9: no link the report
    does not show)."""
    reps, ia, ib = pairs
    key = {_rep_key(records[i]): k for k, i in enumerate(reps.tolist())}
    rep_of = [key[_rep_key(r)] for r in records]
    near = pair_d <= threshold
    adjacent: dict[int, list[tuple[int, int]]] = {}
    for a, b, d in zip(ia[near].tolist(), ib[near].tolist(), pair_d[near].tolist()):
        adjacent.setdefault(a, []).append((d, b))
        adjacent.setdefault(b, []).append((d, a))
    kept_paths = {r.path for r in kept}
    layer = sorted({rep_of[i] for i, r in enumerate(records) if r.path in kept_paths})
    parent: dict[int, tuple[int, int]] = {k: (-1, 0) for k in layer}
    while layer:
        found: dict[int, tuple[int, int]] = {}
        for a in layer:
            for d, b in adjacent.get(a, ()):
                if b not in parent and (b not in found or (d, a) < (found[b][1], found[b][0])):
                    found[b] = (a, d)
        parent.update(found)
        layer = sorted(found)
    out = {}
    for i, k in enumerate(rep_of):
        via, d = parent.get(k, (-1, 0))
        if via >= 0:
            out[i] = (int(reps[via]), d)
    return out


_Pending = tuple[ImageRecord, int, Action, str | None, int | None, int | None]
"""A member to be made once its link's kind is known: record, distance, action, via, its
distance, and the position of its pair among the pairs asked for their kinds (None: no link)."""


def _pairs_with(other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pairs ``(i, j)``, ``i < j``, of positions of which at least one is ``other``: the
    diameter's pairs of a cluster whose reference members' own widest pair is known (a new copy
    in a cluster of 21 reference files: its 21 pairs, not the 231 of every pair, made and dropped)."""
    fresh, known = np.flatnonzero(other), np.flatnonzero(~other)
    fi, fj = np.triu_indices(len(fresh), k=1)
    a, b = np.repeat(known, len(fresh)), np.tile(fresh, len(known))
    return np.concatenate([np.minimum(a, b), fresh[fi]]), np.concatenate([np.maximum(a, b), fresh[fj]])


def _distances_once(
    hashes: LinkHashes | LinkTable, row: np.ndarray, ia: np.ndarray, ib: np.ndarray, given: np.ndarray
) -> np.ndarray:
    """The distance of each pair (``ia``, ``ib``): ``given`` where it is not -1 (remembered), else
    computed once per pair of members in either order (distances are symmetric, a property test
    pins it): the keeper against every member, every kept file against the others and the
    diameter's pairs share most of theirs (a new copy in a cluster of 21 reference files: 64
    pairs, 21 of them distinct and not remembered)."""
    need = np.flatnonzero(given < 0)
    side = int(max(ia.max(initial=0), ib.max(initial=0))) + 1
    pairs, slot = distinct_slots(np.minimum(ia[need], ib[need]) * side + np.maximum(ia[need], ib[need]))
    lo, hi = np.divmod(np.array(pairs, dtype=np.int64), side)
    out = given.astype(np.int64)
    out[need] = hashes.distances(row[lo], row[hi])[slot]
    return out


def _decide_batch(
    groups: Sequence[Sequence[ImageRecord]],
    threshold: int,
    keep: Sequence[str],
    bits: int,
    protected: Callable[[ImageRecord], bool] | None,
    first_id: int,
    assess: quality.Assess,
    chosen: Mapping[frozenset[str], Remembered],
    table: LinkTable | None,
) -> list[Cluster]:
    remembered = {c: _remembered(records, chosen, protected) for c, records in enumerate(groups)}
    ids = [first_id + c for c, known in remembered.items() if known is None]
    groups = [records for records, known in zip(groups, remembered.values()) if known is None]
    if not groups:
        return _in_place([], remembered, first_id)
    plans = []
    remembered_d: dict[str, int] = {}  # reference file -> its remembered distance to its cluster's keeper
    for records in groups:
        refs = [i for i, r in enumerate(records) if protected and protected(r)]
        # A reference file never loses its place as the kept file: when the cluster holds any,
        # the keeper is chosen among them (the rules run on those only).
        candidates = [records[i] for i in refs] or list(records)
        known = chosen.get(frozenset(r.path for r in candidates)) if chosen else None
        if known is not None:
            keeper, reason = next(r for r in candidates if r.path == known[0]), known[1]
        else:
            keeper, reason = choose_keeper(candidates, keep, assess)
        # the candidates' own diameter, when known: only pairs with another member are left
        inner = known[2] if known is not None else None
        # and, for a cluster of exactly those reference files and new ones, each reference
        # file's distance to the same keeper
        if known is not None and known.members is not None:
            remembered_d.update((r.path, d) for r, d, *_rest in known.members)
        if len(candidates) < len(records):
            reason = f"reference file; {reason}" if len(candidates) > 1 else "the reference file"
        at = next(i for i, r in enumerate(records) if r is keeper)
        # The kept files in path order: the nearest of them wins, the first in path order on a tie.
        kept = sorted(refs, key=lambda i: records[i].path) or [at]
        plans.append((keeper, reason, at, kept, set(refs), inner))
    # Pairs, per cluster: the keeper x every member; every kept file x every member that is not
    # (the nearest of them decides its action); the diameter's pairs.
    pa: list[np.ndarray] = []
    pb: list[np.ndarray] = []
    huge: list[bool] = []
    given: list[np.ndarray] = []  # per pair: its distance when remembered, else -1
    offset = 0
    sizes: list[tuple[int, int]] = []  # per cluster: members not kept, diameter pairs
    rep_pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # per cluster: reps, the diameter pairs of them
    for records, (_keeper, _reason, at, kept, ref_set, inner) in zip(groups, plans):
        n = len(records)
        free = np.array([i for i in range(n) if i not in ref_set], dtype=np.int64)
        reps = np.array(_reps(records), dtype=np.int64)
        # A huge cluster's diameter goes block by block (diameter()); the rest come in one batch.
        big = len(reps) ** 2 > 2 * _BATCH_PAIRS
        if inner is not None and not big:  # pairs of two reference members: their widest is known
            is_free = np.zeros(n, dtype=bool)
            is_free[free] = True
            ia, ib = _pairs_with(is_free[reps])
        else:
            ia, ib = np.triu_indices(0 if big else len(reps), k=1)
        huge.append(big)
        sizes.append((len(free), len(ia)))
        rep_pairs.append((reps, ia, ib))
        pa += [np.full(n, at) + offset, np.repeat(kept, len(free)) + offset, reps[ia] + offset]
        pb += [np.arange(n) + offset, np.tile(free, len(kept)) + offset, reps[ib] + offset]
        given.append(
            np.array([remembered_d.get(r.path, -1) if i in ref_set else -1 for i, r in enumerate(records)])
            if remembered_d and ref_set
            else np.full(n, -1)
        )
        given.append(np.full(len(kept) * len(free) + len(ia), -1))
        offset += n
    everyone = [r for records in groups for r in records]
    ia, ib = np.concatenate(pa), np.concatenate(pb)
    hashes = table if table is not None else _hashes(everyone, bits)
    row = table.rows_of(everyone) if table is not None else np.arange(len(everyone))
    dist = _distances_once(hashes, row, ia, ib, np.concatenate(given))
    # How each member's link shown was made (linked_by): one pair a member, asked after the loop
    # (kinds cost more than distances; the diameter's pairs, most of the batch, need none).
    ask_a: list[int] = []
    ask_b: list[int] = []
    built: list[tuple[int, ImageRecord, str, list[Member], list[_Pending], int]] = []
    at_pair = 0
    base = 0
    for c, (records, (keeper, reason, _at, kept, ref_set, inner)) in enumerate(zip(groups, plans)):
        n, (n_free, n_diameter) = len(records), sizes[c]
        to_keeper = dist[at_pair : at_pair + n]
        to_kept = dist[at_pair + n : at_pair + n + len(kept) * n_free].reshape(len(kept), n_free)
        at_pair += n + len(kept) * n_free
        pair_d = dist[at_pair : at_pair + n_diameter]
        nearest_kept = to_kept.min(axis=0) if len(kept) and n_free else np.zeros(0, dtype=np.int64)
        far = bool((nearest_kept > threshold).any())
        pairs = rep_pairs[c]
        if huge[c]:
            widest, pairs, pair_d = _pairs_in_blocks(records, bits, threshold if far else None)
        else:
            widest = int(pair_d.max(initial=0))
        widest = max(widest, inner or 0)
        at_pair += n_diameter
        through = joined_through(records, pairs, pair_d, [records[k] for k in kept], threshold) if far else {}
        members = [Member(keeper, 0, Action.KEEP)]  # then the kept reference files, as they are
        pending: list[_Pending] = []
        column = 0
        for i, r in enumerate(records):
            if r is keeper:
                column += i not in ref_set
                continue
            if i in ref_set:
                members.append(Member(r, int(to_keeper[i]), Action.KEEP))
                continue
            k = int(np.argmin(to_kept[:, column]))
            d, nearest = int(to_kept[k, column]), records[kept[k]]
            column += 1
            # A multi-frame file is removed only when all its frames match the kept file's (imgdup.frames).
            removable = d <= threshold and frames_match(nearest, r, threshold)
            via, via_d = through.get(i, (None, None)) if d > threshold else (None, None)
            ask = len(ask_a) if d <= threshold or via is not None else None
            if ask is not None:  # the link shown: to the nearest kept file, or the one it joined through
                ask_a.append(base + (kept[k] if via is None else via))
                ask_b.append(base + i)
            action = Action.REMOVE if removable else Action.REVIEW
            pending.append((r, d, action, None if via is None else records[via].path, via_d, ask))
        built.append((c, keeper, reason, members, pending, widest))
        base += n
    kinds = hashes.distances_and_kinds(row[np.array(ask_a, dtype=np.int64)], row[np.array(ask_b, dtype=np.int64)])[1]
    out = []
    for c, keeper, reason, members, pending, widest in built:
        for r, d, action, via_path, via_d, ask in pending:
            linked = None if ask is None else LINK_KINDS[int(kinds[ask])]
            members.append(Member(r, d, action, via=via_path, via_distance=via_d, linked_by=linked))
        members[1:] = sorted(members[1:], key=lambda m: (m.distance, m.record.path))
        out.append(Cluster(id=ids[c], keep=keeper, keep_reason=reason, members=tuple(members), diameter=widest))
    return _in_place(out, remembered, first_id)


def _in_place(decided: list[Cluster], remembered: Mapping[int, Cluster | None], first_id: int) -> list[Cluster]:
    """The clusters decided now and the remembered ones (None where one was decided now), each
    in its place, the remembered ones with their ids."""
    fresh = iter(decided)
    return [next(fresh) if known is None else replace(known, id=first_id + c) for c, known in remembered.items()]


def _remembered(
    records: Sequence[ImageRecord],
    chosen: Mapping[frozenset[str], Remembered],
    protected: Callable[[ImageRecord], bool] | None,
) -> Cluster | None:
    """The cluster of ``records`` as a remembered decision over exactly these reference files
    gave it (its id to be set), or None: a cluster that holds another file is decided now."""
    if not chosen or protected is None or not all(protected(r) for r in records):
        return None
    known = chosen.get(frozenset(r.path for r in records))
    if known is None or known.members is None:
        return None
    by_path = {r.path: r for r in records}  # this scan's records (the memo's key says they are equal)
    members = tuple(
        Member(by_path[r.path], d, action, via=via, via_distance=via_d, linked_by=how)
        for r, d, action, via, via_d, how in known.members
    )
    return Cluster(id=0, keep=by_path[known.keep], keep_reason=known.reason, members=members, diameter=known.diameter)
