"""The scan result as a versioned JSON document: the report, and the input of actions.

The document is stable: keys are only ever added within one schema version. Paths are
absolute; ``relpath`` is the path inside the member's root. It holds no timings, so the same
input gives the same bytes.
"""

from __future__ import annotations

import platform
from typing import Any

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
    return doc


def _cluster(c: Cluster, to_hex: Any) -> dict[str, Any]:
    return {
        "id": c.id,
        "hash": to_hex(c.keep.hash),
        "keep": c.keep.path,
        "keep_reason": c.keep_reason,
        "diameter": c.diameter,
        "label_conflict": list(c.label_conflict),
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
            {"a": p.a, "b": p.b, "clusters": p.clusters, "files_a": list(p.files_a), "files_b": list(p.files_b)}
            for p in result.leak_pairs
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
