"""A self-contained HTML report: every cluster as a table, with thumbnails linked by file URI.

Every piece of text that comes from the file system goes through ``html.escape`` and every
link through ``urllib.parse.quote``: a file named ``<script>...</script>.jpg`` is shown, never run.
"""

from __future__ import annotations

import html
from pathlib import PurePosixPath
from urllib.parse import quote

from ..models import Member, ScanResult
from .text import human_bytes, sets_lines


def _tags(m: Member) -> str:
    """Split, label and reference role of a member, when the scan has them."""
    tags = [t for t in (m.split, f"label {m.label}" if m.label is not None else "", m.reference and "reference") if t]
    return f" ({', '.join(tags)})" if tags else ""


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin-bottom:2em}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:middle}
img{max-width:160px;max-height:120px}
.keep{color:#146c2e}.remove{color:#b3261e}.review{color:#b26a00}
"""


# No script may run even if escaping were ever missed: only local images and the inline style.
_CSP = "default-src 'none'; img-src file:; style-src 'unsafe-inline'"


def _uri(path: str) -> str:
    return "file://" + quote(PurePosixPath(path).as_posix())


def to_html(result: ScanResult) -> str:
    """The report as one HTML page (no scripts, no external resources)."""
    e = html.escape
    to_hex = result.settings.hash.to_hex
    s = result.summary
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<meta http-equiv='Content-Security-Policy' content=\"{_CSP}\">",
        f"<title>imgdup report</title><style>{_STYLE}</style></head><body>",
        "<h1>imgdup report</h1>",
        f"<p>{s.files} files, {s.images} images, {s.failures} failed; {s.clusters} clusters, "
        f"{s.to_remove} to remove ({e(human_bytes(s.bytes_to_remove))}), {s.to_review} to review. "
        f"Hash {e(result.settings.hash.algorithm)} ({result.settings.hash.bits} bits), "
        f"threshold {result.settings.threshold}.</p>",
    ]
    out += [f"<p>{e(line)}</p>" for line in sets_lines(result)]
    for c in (*result.clusters, *result.reference_clusters):
        out.append(f"<h2>Cluster {c.id}</h2><p>hash {e(to_hex(c.keep.hash))}, diameter {c.diameter}, "
                   f"kept: {e(c.keep_reason)}</p>")  # fmt: skip
        if c.label_conflict:
            out.append(f"<p class='review'>label conflict: {e(', '.join(c.label_conflict))}</p>")
        if c in result.reference_clusters:
            out.append("<p>only reference files: never acted on</p>")
        out.append("<table><tr><th></th><th>action</th><th>distance</th><th>file</th><th>size</th></tr>")
        for m in c.members:
            r = m.record
            act = m.action.value
            out.append(
                f"<tr><td><img src='{e(_uri(r.path))}' alt=''></td><td class='{act}'>{act}</td>"
                f"<td>{m.distance}</td><td>{e(r.path)}{e(_tags(m))}</td>"
                f"<td>{r.width}x{r.height}, {e(human_bytes(r.entry.size))}</td></tr>"
            )
        out.append("</table>")
    if result.failures:
        out.append("<h2>Files that could not be read</h2><ul>")
        out.extend(f"<li>{e(f.path)}: {e(f.reason)}</li>" for f in result.failures)
        out.append("</ul>")
    out.append("</body></html>\n")
    return "\n".join(out)
