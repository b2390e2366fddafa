"""Machine-readable reports: the JSON document and a flat CSV of cluster members."""

from __future__ import annotations

import csv
import io
import json

from ..models import ScanResult
from ..names import to_csv_cell, to_json_text
from ..plan import to_document

CSV_COLUMNS = ("cluster", "action", "distance", "path", "root", "relpath", "hash", "width", "height", "bytes",
               "split", "label", "reference", "label_conflict", "group", "via", "via_distance",
               "linked_by")  # fmt: skip
# ``group``: "duplicates" or "reference" (a cluster only inside the reference folders), as in
# ScanResult.to_records(). The columns before it are those of earlier reports, which an output
# check still recognises as imgdup's (report.MARKS).
# ``via``, ``via_distance``: a member beyond the threshold of the kept file, the member it joined
# the cluster through and that link's distance (Member.via).
CSV_FIRST_COLUMNS = CSV_COLUMNS[: CSV_COLUMNS.index("group")]


def to_json(result: ScanResult) -> str:
    """The versioned report document, indented, with a final newline (names: :mod:`imgdup.names`)."""
    return to_json_text(to_document(result))


def _safe_cell(value: object) -> object:
    # A file name starting with = + - @ would run as a formula when the CSV is opened in a
    # spreadsheet; a leading apostrophe keeps it text. A name that starts with one gets another,
    # so that every leading apostrophe is a guard (names.from_csv_cell drops one): "'-rf.jpg"
    # and "-rf.jpg" read back as the names they are.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r", "'"):
        return "'" + value
    return value


def to_csv(result: ScanResult) -> str:
    """One row per cluster member, keeper first in each cluster; paths escaped by :func:`to_csv_cell`."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    to_hex = result.settings.hash.to_hex
    groups = [("duplicates", c) for c in result.clusters] + [("reference", c) for c in result.reference_clusters]
    for group, c in groups:
        # A JSON list, as the JSON report's: labels joined with "|" read the same for {a, b|c}
        # and {a|b, c} (QA pass 36).
        conflict = json.dumps(list(c.label_conflict), ensure_ascii=False) if c.label_conflict else ""
        for m in c.members:
            r = m.record
            row = (c.id, m.action.value, m.distance, to_csv_cell(r.path), to_csv_cell(r.entry.root),
                   to_csv_cell(r.entry.relpath), to_hex(r.hash), r.width, r.height, r.entry.size,
                   to_csv_cell(m.split), to_csv_cell(m.label or ""), "yes" if m.reference else "",
                   to_csv_cell(conflict), group, to_csv_cell(m.via or ""),
                   "" if m.via_distance is None else m.via_distance, m.linked_by or "")  # fmt: skip
            writer.writerow([_safe_cell(v) for v in row])
    return buf.getvalue()
