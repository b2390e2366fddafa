"""The scan result as a versioned JSON document: the report, and the input of actions.

The document is stable: keys are only ever added within one schema version. Paths are
absolute; ``relpath`` is the path inside the member's root. It holds no timings, so the same
input gives the same bytes.
"""

from __future__ import annotations

import platform
import posixpath
import re
from dataclasses import dataclass
from typing import Any

from .errors import PlanError, check_result
from .models import Cluster, ImageRecord, Member, ScanResult

SCHEMA = "imgdup.report/1"


def _member(m: Member, settings_hex: Any) -> dict[str, Any]:
    r = m.record
    doc = {
        "path": r.path,
        "root": r.entry.root,
        "relpath": r.entry.relpath,
        "hash": settings_hex(r.hash),
        "distance": m.distance,
        "via": m.via,  # beyond the threshold of the kept file: the member it joined the cluster through
        "via_distance": m.via_distance,
        "linked_by": m.linked_by,  # how the link shown (to the kept file, or via) was made
        "action": m.action.value,
        "width": r.width,
        "height": r.height,
        "bytes": r.entry.size,
        "mtime_ns": r.entry.mtime_ns,
        "sha256": r.digest,
        # Dataset annotations: the folder (split) holding the file, its class label, and
        # whether it is a reference file (never removed).
        "split": m.split,
        "label": m.label,
        "reference": m.reference,
    }
    if r.entry.aliases:
        doc["hardlinks"] = list(r.entry.aliases)
    if not r.entry.frees_space:  # a name outside the scan keeps the data: bytes_to_remove leaves it out
        doc["frees_space"] = False
    if r.frames > 1:  # an animation or a multi-page file: removed only if every frame matches
        doc["frames"] = r.frames
    return doc


def _cluster(c: Cluster, to_hex: Any) -> dict[str, Any]:
    return {
        "id": c.id,
        "hash": to_hex(c.keep.hash),
        "keep": c.keep.path,
        "keep_reason": c.keep_reason,
        "diameter": c.diameter,
        "label_conflict": list(c.label_conflict),
        "spans": list(c.spans),  # the folders its members' names lie in, when two or more (a leak)
        "members": [_member(m, to_hex) for m in c.members],
    }


def _low_info(r: ImageRecord) -> dict[str, Any]:
    return {
        "path": r.path,
        "root": r.entry.root,
        "relpath": r.entry.relpath,
        "width": r.width,
        "height": r.height,
        "bytes": r.entry.size,
        "sha256": r.digest,
    }


def to_document(result: ScanResult) -> dict[str, Any]:
    """The JSON-ready report of a scan (schema ``imgdup.report/1``)."""
    from . import __version__

    check_result("to_document", result)

    s = result.settings
    to_hex = s.hash.to_hex
    return {
        "schema": SCHEMA,
        "imgdup": __version__,
        "host": platform.node(),
        "settings": {
            "hash": s.hash.algorithm,
            "hash_size": s.hash.hash_size,
            "bits": s.hash.bits,
            "decode": s.hash.decode,
            "rotations": s.hash.rotations,
            "regions": s.hash.regions,
            "threshold": s.threshold,
            "keep": list(s.keep),
            "index": s.index,
            "labels": s.labels,
            "label_conflicts": s.label_conflicts,
            "between": s.between,
        },
        "roots": list(result.roots),
        "reference": list(result.reference),
        "clusters": [_cluster(c, to_hex) for c in result.clusters],
        # Clusters made only of reference files: reported, never acted on.
        "reference_clusters": [_cluster(c, to_hex) for c in result.reference_clusters],
        "sets": [
            {
                "root": t.root,
                "name": t.name,
                "reference": t.reference,
                "files": t.files,
                "duplicates_within": t.duplicates_within,
                "leaks": {other: n for other, n in t.leaks},
            }
            for t in result.sets
        ],
        "leaks": [
            {
                "a": p.a,
                "b": p.b,
                "clusters": p.clusters,
                "hard_links": p.hard_links,
                "symlinks": p.symlinks,
                "files_a": list(p.files_a),
                "files_b": list(p.files_b),
            }
            for p in result.leak_pairs
        ],
        # Files in no cluster whose names (hard links) lie under different labels.
        "linked_label_conflicts": [
            {"names": list(x.names), "labels": list(x.labels)} for x in result.linked_label_conflicts
        ],
        "failures": [{"path": f.path, "reason": f.reason} for f in result.failures],
        "skipped": [{"path": k.path, "reason": k.reason} for k in result.skipped],
        # Nearly flat images (solid colours, blank scans): never compared by hash, only grouped
        # with byte-identical copies (those copies are in "clusters").
        "low_information": [_low_info(r) for r in result.low_information],
        "summary": {
            "files": result.summary.files,
            "images": result.summary.images,
            "failures": result.summary.failures,
            "skipped": len(result.skipped),
            "clusters": result.summary.clusters,
            "duplicates": result.summary.duplicates,
            "to_remove": result.summary.to_remove,
            "to_review": result.summary.to_review,
            "bytes_to_remove": result.summary.bytes_to_remove,
            "low_information": len(result.low_information),
            "label_conflicts": result.summary.label_conflicts,
            "leaks": result.summary.leaks,
            "reference_clusters": result.summary.reference_clusters,
        },
    }


# ---------------------------------------------------------------------------------------------
# Reading a plan back: the saved report, or the decisions exported by the HTML gallery (the same
# shape). A plan is data from outside: everything is checked before anything acts on it.

ACTIONS = ("keep", "remove", "review")
# Why a plan's large integers (a 61-bit mtime_ns) are not what the scan wrote: read as doubles.
ROUNDED = (
    "the tool that edited the plan read its numbers as floating-point, which rounds large integers such as "
    "a 61-bit mtime_ns (jq 1.6, Debian 12's, does); edit the scan's report again with jq 1.7 or later, or "
    "with Python's json module, which keep them exact"
)
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class PlanFile:
    """One member of a plan cluster: where it is, what it was at scan time, what to do with it."""

    path: str
    root: str
    relpath: str
    action: str
    distance: int
    width: int
    height: int
    bytes: int
    mtime_ns: int
    sha256: str
    hash: str
    inode: int | None
    device: int | None
    hardlinks: tuple[str, ...]
    reference: bool = False  # a file of a reference folder, as the scan saw it: never removed


@dataclass(frozen=True)
class PlanCluster:
    id: int
    keep: str | None
    keep_reason: str
    diameter: int
    members: tuple[PlanFile, ...]


@dataclass(frozen=True)
class Plan:
    """A validated plan: every path inside its roots, at most one entry per path, and every
    cluster that removes a file keeps another one."""

    host: str
    roots: tuple[str, ...]
    settings: dict[str, Any]
    clusters: tuple[PlanCluster, ...]
    # Reference folders of the scan (inside ``roots``): nothing under them is ever removed.
    reference: tuple[str, ...] = ()


def _need(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise PlanError(f"invalid plan: {where}: {what}")


def _int(doc: dict[str, Any], key: str, where: str, *, optional: bool = False, signed: bool = False) -> Any:
    value = doc.get(key)
    if optional and value is None:
        return None
    if isinstance(value, float) and abs(value) >= 2**53:  # jq 1.6 writes a whole second's mtime_ns as 1.7e+18
        _need(False, where, f"{key} is {value!r}, a floating-point number, not a whole one: {ROUNDED}")
    whole = isinstance(value, int) and not isinstance(value, bool) and (signed or value >= 0)
    _need(whole, where, f"{key} must be a whole number")
    return value


def _str(doc: dict[str, Any], key: str, where: str) -> str:
    value = doc.get(key)
    _need(isinstance(value, str), where, f"{key} must be a string")
    return value  # type: ignore[return-value]


def _abs_path(value: object, where: str) -> str:
    if isinstance(value, str) and "://" in value and not value.startswith("/"):  # read as a damaged plan (QA pass 33)
        _need(False, where, f"{value} is an object-store URL: object-store inputs are report-only, nothing to apply")
    _need(isinstance(value, str) and value.startswith("/") and "\x00" not in value, where, "not an absolute path")
    assert isinstance(value, str)
    _need(posixpath.normpath(value) == value, where, f"path {value!r} is not normalised ('..', '//' or a trailing /)")
    return value


def _inside(path: str, root: str) -> bool:
    return path.startswith(root.rstrip("/") + "/")


def _file(doc: object, roots: tuple[str, ...], where: str) -> PlanFile:
    _need(isinstance(doc, dict), where, "a member must be an object")
    assert isinstance(doc, dict)
    path = _abs_path(doc.get("path"), where)
    where = f"{where} ({path})"
    root = _str(doc, "root", where)
    _need(root in roots, where, "its root is not one of the plan's roots")
    relpath = _str(doc, "relpath", where)
    _need(_inside(path, root) and posixpath.join(root, relpath) == path, where, "path is outside its root")
    action = doc.get("action")
    _need(action in ACTIONS, where, f"action must be one of {', '.join(ACTIONS)}")
    sha = _str(doc, "sha256", where)
    _need(bool(_SHA256.fullmatch(sha)), where, "sha256 must be 64 lower-case hex digits")
    links = doc.get("hardlinks", [])
    _need(isinstance(links, list), where, "hardlinks must be a list")
    reference = doc.get("reference", False)
    _need(isinstance(reference, bool), where, "reference must be true or false")
    _need(not (reference and action == "remove"), where, "a reference file is never removed")
    for link in links:
        _abs_path(link, where)
        _need(any(_inside(link, r) for r in roots), where, f"hard link {link!r} is outside every root")
    return PlanFile(
        path=path,
        root=root,
        relpath=relpath,
        action=str(action),
        distance=_int(doc, "distance", where),
        width=_int(doc, "width", where),
        height=_int(doc, "height", where),
        bytes=_int(doc, "bytes", where),
        mtime_ns=_int(doc, "mtime_ns", where, signed=True),  # a file dated before 1970
        sha256=sha,
        hash=str(doc.get("hash", "")),
        inode=_int(doc, "inode", where, optional=True),
        device=_int(doc, "device", where, optional=True),
        hardlinks=tuple(links),
        reference=reference,
    )


def _plan_cluster(doc: object, roots: tuple[str, ...], n: int) -> PlanCluster:
    where = f"cluster #{n}"
    _need(isinstance(doc, dict), where, "a cluster must be an object")
    assert isinstance(doc, dict)
    cid = _int(doc, "id", where)
    where = f"cluster {cid}"
    members_doc = doc.get("members")
    _need(isinstance(members_doc, list) and len(members_doc) > 0, where, "members must be a non-empty list")
    members = tuple(_file(m, roots, f"{where}, member {i}") for i, m in enumerate(members_doc))  # type: ignore[arg-type]
    keep = doc.get("keep")
    kept = [m.path for m in members if m.action == "keep"]
    if any(m.action == "remove" for m in members):
        # The last copy of a picture is never removed: a cluster that removes keeps one.
        _need(
            kept != [],
            where,
            'it marks every member "remove": mark the copy to keep "keep"'
            " (the last copy of a picture is never removed)",
        )
        _need(
            isinstance(keep, str) and keep in kept,
            where,
            f'it removes files but its keep path is not a kept member: set its "keep" to the path of the member marked'
            f' "keep" ({kept[0]!r})'
            if len(kept) == 1
            else "it removes files but its keep path is not a kept member",
        )
    elif keep is not None:
        _need(keep in kept, where, "its keep path is not a kept member")
    return PlanCluster(
        id=cid,
        keep=keep if isinstance(keep, str) else None,
        keep_reason=str(doc.get("keep_reason", "")),
        diameter=int(doc.get("diameter", 0)) if isinstance(doc.get("diameter"), int) else 0,
        members=members,
    )


def parse_plan(doc: object, *, host: str | None = None) -> Plan:
    """Validate a plan document (schema ``imgdup.report/1``) for this machine.

    Refused: another schema, a plan written on another host (its paths may name other files
    here), a path outside its roots or not normalised, a path listed twice, a cluster that
    removes files without keeping one.
    """
    _need(isinstance(doc, dict), "document", "not a JSON object")
    assert isinstance(doc, dict)
    _need(doc.get("schema") == SCHEMA, "document", f"schema must be {SCHEMA!r}, got {doc.get('schema')!r}")
    here = platform.node() if host is None else host
    _need(isinstance(doc.get("host"), str), "host", "missing (the machine the plan was written on)")
    if doc.get("host") != here:
        raise PlanError(
            f"this plan was written on {doc.get('host')!r}, not on this machine ({here!r}); "
            "its paths may name other files here, so nothing was done (the same machine under another "
            f"name, a container's: apply it as {doc.get('host')!r}, docker run --hostname NAME)"
        )
    roots_doc = doc.get("roots")
    _need(isinstance(roots_doc, list) and len(roots_doc) > 0, "roots", "must be a non-empty list")
    roots = tuple(_abs_path(r, "roots") for r in roots_doc)  # type: ignore[union-attr]
    _need(len(set(roots)) == len(roots), "roots", "a root is listed twice")
    _need(not any(_inside(a, b) for a in roots for b in roots if a != b), "roots", "a root lies inside another")
    clusters_doc = doc.get("clusters")
    _need(isinstance(clusters_doc, list), "clusters", "must be a list")
    clusters = tuple(_plan_cluster(c, roots, i) for i, c in enumerate(clusters_doc))  # type: ignore[arg-type]
    seen: set[str] = set()
    ids: set[int] = set()
    for c in clusters:
        _need(c.id not in ids, f"cluster {c.id}", "cluster id listed twice")
        ids.add(c.id)
        for m in c.members:
            for name in (m.path, *m.hardlinks):
                _need(name not in seen, f"cluster {c.id}", f"{name!r} is listed twice in the plan")
                seen.add(name)
    reference_doc = doc.get("reference", [])
    _need(isinstance(reference_doc, list), "reference", "must be a list")
    reference = tuple(_abs_path(r, "reference") for r in reference_doc)
    # A reference folder is one of the roots (``--reference train -d test``) or lies inside one.
    _need(
        all(any(r == root or _inside(r, root) for root in roots) for r in reference),
        "reference",
        "a folder outside the roots",
    )
    settings = doc.get("settings")
    return Plan(
        host=here,
        roots=roots,
        settings=settings if isinstance(settings, dict) else {},
        clusters=clusters,
        reference=reference,
    )
