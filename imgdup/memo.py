"""What a re-run over unchanged files may skip, and the keys that say when it may.

A warm run reads every hash from the cache, but searching and deciding again cost more than
the read (a warm run of the 20,000-file set spent 0.9-1.0 s of 2.4-2.7 s assessing and deciding
again, in-process timings, benchmarks/RESULTS.md). Their outcomes depend on nothing but the records and the settings, so
the hash cache remembers them under a digest of exactly those: the search's groups under
:func:`search_key`, the clusters and actions under :func:`decision_key`. Any changed file,
setting, threshold, keep rule or reference folder makes another key, and the work is done
again. Pure: keys and JSON values, no storage.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .models import Action, Cluster, Clustered, ImageRecord, Member, Remembered
from .regions import LINK_KINDS

_ACTIONS = {a.value: a for a in Action}

# The modules whose code decides what a search links and which file a cluster keeps.
_DECIDING = ("cluster.py", "hashing.py", "index.py", "memo.py", "pipeline.py", "policy.py", "quality.py", "regions.py")


@functools.cache
def code() -> str:
    """imgdup's version and a digest of the code that searches and decides, part of every memo's
    key: a fix that changed decisions without a version or a constant raised was served the
    decisions the code before it remembered (every commit is one version; QA pass 34). Read once
    per process, by the first memo key (~0.4 MB, 1 ms), not at import (``--undo`` needs none);
    where the sources cannot be read (a frozen build), the version."""
    digest = hashlib.sha256()
    try:
        for name in _DECIDING:
            digest.update((Path(__file__).parent / name).read_bytes())
    except OSError:
        return __version__
    return f"{__version__}+{digest.hexdigest()[:16]}"


# Part of every decision key: it was raised by hand when the keep policy's answers changed (a
# remembered decision would be stale); :func:`code` now changes with any change of that code, so
# it needs raising no more, and stays as it is (its history below). 2: the enlargement noise test;
# 3: lossy copies inherit a bare lossless sibling's enlargement verdict; 4: framed copies lose;
# 5: the frame rule's share sieve 0.9 -> 0.97 and its 4-member minimum (decisions of 4 differ);
# 6: the keep reason speaks of the largest copy when it lost (the reasons are remembered too);
# 7: a copy whose colours were changed (a filter) is an edit; 8: two framed images link only when
# their content boxes agree (regions.FRAMED_SHARE), so remembered clusters may hold a wrong link;
# 9: animations are pixel twins only with the same later frames, and "lossless (vs q0)" reads
# "vs a lossy copy of unknown quality"; 10: pixel twins share their edit and frame verdicts; 11: a keep
# reason names a rule once; 12: filtered copies (quality.processed) rank below plain re-encodes;
# 13: a framed image links only through its content box, and with --rotations a turned version
# only when its colour layout and grey grid agree (remembered clusters may hold a wrong link);
# 14: at one quality, transparency kept and more colour samples (chroma subsampling) rank first;
# a nearest-neighbour enlargement of a sibling is an enlargement; a thin border (1-4 px) frames a
# copy; a lossless file may be called filtered; twins of one size say path order decided.
# 15: a thin border frames a copy only where its sibling's size is held by as many members as its own.
# 16: a member beyond the threshold of the kept file carries the member it joined through (via), and
# every member how its link was made (linked_by). 17: with --rotations a turned version whose whole
# image agrees closely is not asked its content box (regions.TURNED_SAME_SHARE): remembered
# clusters may miss a link. 18: of two copies that went through one coarser JPEG quality, the one
# stored losslessly wins (it was path order). 19: a flat drawing's lossless nearest-neighbour enlargement is
# one (its exact repeats; quality._exact_repeats). 20: a lossless file above a q100 JPEG; a copy that went
# through a coarser JPEG has that JPEG's chroma and 8 bits whatever its header says (QA pass 34).
# 21: a thin bar on one side frames a copy (QA pass 34).
DECISIONS = 21


def search_key(unique: Sequence[Sequence[ImageRecord]], settings_key: str, threshold: int) -> str:
    """What a search's outcome depends on, as a digest: the settings, the threshold and every
    image's hashes (plain, rotation variants, regions), in order, which the content digests of
    the records behind each hash value stand for (hashes are computed from a file's bytes under
    ``settings_key``; 20x cheaper than writing the hashes out). Paths, sizes and quality do not
    enter: the groups are positions in this list."""
    # 4: the link rule of QA pass 12; 5: a turned version's content box (QA pass 30; see DECISIONS)
    head = f"search/5/{code()}\n{settings_key}\n{threshold}\n"
    return hashlib.sha256((head + "\n".join(",".join(r.digest for r in rs) for rs in unique)).encode()).hexdigest()


def search_groups(value: Any, size: int) -> list[list[int]] | None:
    """A remembered search's groups if ``value`` is a well-formed one over ``size`` positions."""
    if not isinstance(value, list):
        return None
    for g in value:
        if not isinstance(g, list) or not all(type(i) is int and 0 <= i < size for i in g):
            return None
    return value


def decision_key(
    records: Sequence[ImageRecord],
    settings_key: str,
    *,
    threshold: int,
    keep: Sequence[str],
    protected: Callable[[ImageRecord], bool] | None,
    lines: dict[int, tuple[ImageRecord, str]] | None = None,
) -> str:
    """What the clusters, keepers, actions and reasons depend on: imgdup's code (:func:`code`: its keep
    policy), the settings, the threshold, the keep rules, and for every record in order its
    path, size, modification time (the oldest/newest rules read it; a touch changes no byte),
    content digest, measured quality, and whether it is a reference file.

    Everything else a record holds (hashes, regions, traits, frames, size in pixels) is computed
    from the file's bytes under ``settings_key``, so the digest stands for it; quality is not
    (a measurement depends on the siblings it was measured with), so it enters as measured. Its
    block signature is the file's alone, there exactly when the measurement is complete: the
    digest and ``complete`` stand for it (a warm run need not read it).

    ``lines``: each record's part, by ``id``, filled and reused (a scan with reference files
    asks for the key of all its records and of the reference ones: 20,000 records' parts once).
    """
    h = hashlib.sha256(f"decide/{DECISIONS}/{code()}\n{settings_key}\n{threshold}\n{','.join(keep)}\n".encode())
    known = {} if lines is None else lines
    parts = []
    for r in records:
        hit = known.get(id(r))
        if hit is None or hit[0] is not r:
            q = r.quality
            line = (
                f"{r.entry.path}\0{r.entry.size}|{r.entry.mtime_ns}|{r.digest}|{bool(protected and protected(r))}|"
                f"{q and (q.upscaled, q.pixels_sha256, q.lowest_fit, q.complete, len(q.spectrum))}\n"
            )
            if q and q.spectrum:  # as bytes: the floats' exact values, 10x cheaper than their repr
                line += struct.pack(f"<{len(q.spectrum)}d", *q.spectrum).hex()
            hit = known[id(r)] = (r, line)  # the record held with its line: its id is not reused
        parts.append(hit[1])
    h.update("".join(parts).encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def encode(scanned: Clustered) -> list[Any]:
    """``scanned`` as JSON values: records are positions in ``scanned.records``."""
    at = {r.path: i for i, r in enumerate(scanned.records)}
    clusters = [
        [c.id, at[c.keep.path], c.keep_reason, c.diameter,
         [[at[m.record.path], m.distance, m.action.value, None if m.via is None else at[m.via], m.via_distance,
           m.linked_by] for m in c.members]]
        for c in scanned.clusters
    ]  # fmt: skip
    return [clusters, [at[r.path] for r in scanned.low_information]]


def _kind(value: Any) -> str | None:
    """A remembered member's ``linked_by``: one of :data:`imgdup.regions.LINK_KINDS`, or None."""
    if value is None or value in LINK_KINDS:
        return value  # type: ignore[no-any-return]
    raise ValueError(value)


def decode(value: Any, records: Sequence[ImageRecord]) -> Clustered | None:
    """The :class:`Clustered` that :func:`encode` made, over these very records (the ones its
    key was computed from), or None if ``value`` is not a well-formed one."""
    n = len(records)

    def pos(i: Any) -> ImageRecord:
        if type(i) is not int or not 0 <= i < n:
            raise ValueError(i)
        return records[i]

    try:
        clusters_v, low_v = value
        clusters = tuple(
            Cluster(
                id=cid,
                keep=pos(keep),
                keep_reason=reason,
                members=tuple(
                    Member(
                        pos(i),
                        d,
                        _ACTIONS[a],
                        via=None if v is None else pos(v).path,
                        via_distance=vd,
                        linked_by=_kind(how),
                    )
                    for i, d, a, v, vd, how in members
                ),
                diameter=diameter,
            )
            for cid, keep, reason, diameter, members in clusters_v
        )
        low = tuple(pos(i) for i in low_v)
    except (ValueError, TypeError, KeyError):
        return None
    ok = all(
        type(c.id) is int and isinstance(c.keep_reason, str) and type(c.diameter) is int
        # the keeper one of its members, each member once, as encode wrote them
        and any(m.record is c.keep for m in c.members) and len({id(m.record) for m in c.members}) == len(c.members)
        and all(type(m.distance) is int and (m.via_distance is None or type(m.via_distance) is int)
                for m in c.members)
        for c in clusters
    )  # fmt: skip
    return Clustered(clusters, low, tuple(records)) if ok else None


def keepers(value: Any, records: Sequence[ImageRecord]) -> dict[frozenset[str], Remembered] | None:
    """Of the :class:`Clustered` that :func:`decode` would give, each cluster's member paths
    mapped to what was decided for it (:class:`Remembered`: keeper path, reason, diameter, and
    the members as decided); None where :func:`decode` gives None. This is what a reference's
    remembered decisions are read for (:func:`imgdup.pipeline._reference_keepers`). No
    :class:`Member` is built here: a 20,000-file reference's 20,000 members cost 0.2-0.3 s as
    objects, and only the clusters that no new file joined need theirs."""
    n = len(records)
    actions = _ACTIONS
    try:
        clusters_v, low_v = value
        out = {}
        for cid, keep, reason, diameter, members in clusters_v:
            if not (type(cid) is int and type(keep) is int and 0 <= keep < n and isinstance(reason, str)):
                return None
            if type(diameter) is not int:
                return None
            paths = []
            decided = []
            for i, d, a, *via in members:
                if type(i) is not int or not 0 <= i < n or type(d) is not int or a not in actions:
                    return None
                v, vd, how = via  # (a member of another length: ValueError, refused as decode refuses it)
                if not (v is None or (type(v) is int and 0 <= v < n)) or not (vd is None or type(vd) is int):
                    return None
                r = records[i]
                paths.append(r.path)
                decided.append((r, d, actions[a], None if v is None else records[v].path, vd, _kind(how)))
            # the keeper one of its members, each member once (a hand-edited row: the keeper of
            # another cluster ended the scan with a KeyError, a member twice was shown twice)
            if records[keep].path not in paths or len(set(paths)) != len(paths):
                return None
            out[frozenset(paths)] = Remembered(records[keep].path, reason, diameter, tuple(decided))
        if not all(type(i) is int and 0 <= i < n for i in low_v):
            return None
    except (ValueError, TypeError):
        return None
    return out
