"""The HTML gallery: a page to review clusters in, decide, and export the plan ``imgdup apply`` reads.

The page is a template, a stylesheet and a script shipped as package data (``gallery.*``); Python
only fills in data. The scan's plan document is embedded as JSON in a non-executed
``application/json`` block (``<``, ``>`` and ``&`` escaped, so a file name cannot close it), and
the script sets every name with ``textContent``: a file named ``<script>...</script>.jpg`` is
shown, never run. The content security policy allows only this page's own script and style (by
SHA-256 hash), images from the page's own folder or data URIs, and nothing else: no request
leaves the page.

Thumbnails (small JPEGs, never the originals) are written into a folder beside the page,
``<page name>_files/``, and linked relatively, so the page works opened from disk, served over
HTTP, or copied elsewhere together with that folder.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from typing import Any, NamedTuple
from urllib.parse import quote

from ..errors import OutputError, check_workers
from ..fsafe import inside, write_output
from ..hashing import load_thumbnail
from ..kernels import LocalCopies
from ..models import ImageRecord, ScanResult
from ..names import to_json_text
from ..parallel import DEFAULT_TIMEOUT, default_jobs, map_files
from ..plan import to_document
from . import MARKS
from .text import display_path, human_bytes, plural, root_labels

log = logging.getLogger(__name__)

GENERATOR = "<meta name='generator' content='imgdup'>"  # the mark that lets a later run replace this page
THUMB = 256  # px, the longer side: the kept file is shown at up to 256 px, the others at 160
THUMB_QUALITY = 75  # JPEG quality: ~5-10 KiB a thumbnail
REFERENCE_SHOWN = 100  # clusters inside the reference shown on the page (the rest: JSON and CSV reports)
REFERENCE_MEMBERS = 12  # members shown of each


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def _json_for_html(value: Any) -> str:
    """JSON that cannot end its <script> block early nor be read as markup."""
    text = to_json_text(value, indent=None).rstrip("\n")  # names that are not UTF-8 stay exact
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


# Whole numbers a browser's JSON.parse would round (JavaScript numbers hold 53 bits; an mtime in
# nanoseconds needs 61): the page holds them as strings and its export writes them back as numbers.
_EXACT = ("mtime_ns", "inode", "device")


def _exact_ints(value: Any) -> Any:
    """``value`` with every ``_EXACT`` whole number, wherever it lies (``clusters``,
    ``reference_clusters``, any list added later), as a string."""
    if isinstance(value, dict):
        return {k: str(v) if k in _EXACT and isinstance(v, int) and not isinstance(v, bool) else _exact_ints(v)
                for k, v in value.items()}  # fmt: skip
    if isinstance(value, list):
        return [_exact_ints(v) for v in value]
    return value


def _is_jpeg(head: bytes) -> bool:
    return head.startswith(b"\xff\xd8\xff")


def thumbnail_folder(page: str) -> str:
    """The folder beside ``page`` that holds its thumbnails."""
    stem = os.path.splitext(os.path.basename(page))[0]
    return os.path.join(os.path.dirname(os.path.abspath(page)), f"{stem}_files")


def _page_sharing_folder(page: str) -> str | None:
    """Another imgdup page beside ``page`` whose thumbnails go in the same folder: it is named by
    the stem, so ``review.html`` and ``review.htm`` (or ``review.HTML``) share ``review_files/``."""
    where, name = os.path.split(os.path.abspath(page))
    try:
        names = sorted(os.listdir(where))
    except OSError:  # no such folder: the report's own check says so
        return None
    for other in names:
        path = os.path.join(where, other)
        stem, suffix = os.path.splitext(other)
        if (other == name or stem != os.path.splitext(name)[0] or suffix.lower() not in (".html", ".htm")
                or os.path.islink(path) or not os.path.isfile(path)):  # fmt: skip
            continue
        if os.path.exists(page) and os.path.samefile(page, path):  # one file, two spellings (case-insensitive)
            continue
        try:
            with open(path, "rb") as fh:
                if MARKS["html"](fh.read(4096)):  # a page of the user's keeps no thumbnails of ours
                    return path
        except OSError:
            continue
    return None


def check_thumbnail_folder(page: str | os.PathLike[str], roots: tuple[str, ...]) -> None:
    """Raise :class:`OutputError` if the page's thumbnails would lie inside a scanned root: they
    are images, and the next scan would take them for the dataset's (as a montage folder); and
    if something other than a folder (a file) holds its name, which failed only after the scan.
    A symbolic link at its name is resolved as the folder it leads to: one into a scanned folder
    had the thumbnails written among the dataset's pictures. And if another imgdup page beside it
    keeps its thumbnails there (``review.html`` beside ``review.htm``): this page removed every
    thumbnail that one showed (QA pass 35). And if the folder is there but not writable."""
    folder = thumbnail_folder(os.fspath(page))
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise OutputError(
            f"the HTML report {os.fspath(page)} keeps its thumbnails in {folder}, which is not a folder; "
            "move it away or name the report otherwise"
        )
    if os.path.isdir(folder) and not os.access(folder, os.W_OK | os.X_OK):
        # (one an earlier `sudo imgdup` made): it failed after the whole scan, with no report at all
        raise OutputError(
            f"the HTML report {os.fspath(page)} keeps its thumbnails in {folder}, which is not writable (made by "
            "another user?); make it writable, remove it, or name the report otherwise"
        )
    other = _page_sharing_folder(os.fspath(page))
    if other is not None:
        raise OutputError(
            f"the HTML report {os.fspath(page)} would keep its thumbnails in {folder}, as the report {other} "
            "beside it does: writing it would remove that page's thumbnails; name it otherwise, or remove "
            f"{os.path.basename(other)} first"
        )
    real = os.path.realpath(folder)
    for root in roots:
        if inside(real, os.path.realpath(root)):
            raise OutputError(
                f"the HTML report {os.fspath(page)} would put its thumbnails ({os.path.basename(folder)}/) inside "
                f"the scanned folder {root}: they would be scanned as images next time; write it outside"
            )


def write_thumbnails(
    result: ScanResult,
    page: str | os.PathLike[str],
    *,
    jobs: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, str]:
    """Write one small JPEG per distinct cluster member (by content digest) beside ``page``, and
    for the members the page shows of the clusters inside the reference; returns digest -> URL
    relative to the page. An unreadable file gets no thumbnail unless a byte-identical member's does.

    The files are decoded again, in ``jobs`` worker processes (None: every core), each under the
    scan's guards (``timeout`` seconds a file, the memory bound: :func:`imgdup.parallel.map_files`):
    a 20,000-file report's 8,937 thumbnails took ~43 s in one process, which the worker pool
    divides among the cores; a file that hangs or crashes its decoder costs its own preview.
    ``progress(stage, done, total)``: as a scan's, stage ``"thumbnails"``."""
    check_workers(jobs, timeout)
    jobs = jobs or default_jobs()
    check_thumbnail_folder(page, result.roots)
    folder = thumbnail_folder(os.fspath(page))
    os.makedirs(folder, exist_ok=True)
    base = quote(os.fsencode(os.path.basename(folder)))  # the name's bytes: it may not be UTF-8
    out: dict[str, str] = {}
    todo: dict[str, _Thumbnail] = {}
    others: dict[str, list[_Thumbnail]] = {}  # target -> the other members with its digest, tried in turn
    shown = [m for c in result.reference_clusters[:REFERENCE_SHOWN] for m in c.members[:REFERENCE_MEMBERS]]
    for m in [m for c in result.clusters for m in c.members] + shown:
        digest = m.record.digest
        if digest in out:
            continue
        if digest in todo:
            others[todo[digest].target].append(_Thumbnail.of(m.record, todo[digest].target))
            continue
        name = f"{digest[:32]}.jpg"  # content-addressed: a re-run reuses what is there
        target = os.path.join(folder, name)
        if os.path.exists(target):
            out[digest] = f"{base}/{name}"
        else:
            todo[digest] = _Thumbnail.of(m.record, target)
            others[target] = []
    tasks = list(todo.values())
    started = time.perf_counter()
    retried: list[_Thumbnail] = []

    def next_copy(task: _Thumbnail, res: object) -> list[_Thumbnail]:
        """A byte-identical copy's file where this one gave no thumbnail (gone or changed since
        the scan): the picture is still shown, as it was when thumbnails were made one by one."""
        rest = others[task.target]
        if res is True or isinstance(res, OutputError) or not rest:
            return []
        retried.append(rest.pop(0))
        return retried[-1:]

    if progress and tasks:
        progress("thumbnails", 0, len(tasks))
    # no more workers than files it may try: with ``more`` map_files starts every one it is given
    tries = len(tasks) + sum(map(len, others.values()))
    with tempfile.TemporaryDirectory(prefix="imgdup-") as staging:
        # An object-store file (the Dask engine's s3:// input) is copied here first, as a scan's
        # workers copy it: decoded from its URL as a path, no page of one had any preview.
        copies = LocalCopies(staging)

        def staged(task: _Thumbnail) -> _Thumbnail:
            path, mtime_ns = copies.of(task.path, task.size, task.mtime_ns)
            return task._replace(path=path, mtime_ns=mtime_ns)

        made = map_files(
            [staged(t) for t in tasks], THUMB, _write_thumbnail, jobs=min(jobs, tries), timeout=timeout,
            on_progress=(lambda n: progress("thumbnails", n, len(tasks) + len(retried))) if progress else None,
            more=(lambda task, res: [staged(t) for t in next_copy(task, res)]) if any(others.values()) else None,
            here_if_daemonic=True,
        )  # fmt: skip
    digests = {task.target: digest for digest, task in todo.items()}
    reused = len(out)
    for task, res in zip(tasks + retried, made):
        if isinstance(res, OutputError):  # the folder refused it (full, read-only): the page cannot be made
            raise res
        if res is True:  # else gone or changed since the scan, or undecodable: shown without preview
            out[digests[task.target]] = f"{base}/{os.path.basename(task.target)}"
    done = len(out) - reused  # it counted the files tried: "made 36 thumbnails" of a page with none
    log.info(
        "made %d %s for the page in %.2f s (%d reused from an earlier page; %d shown without one: unreadable,"
        " or changed since the scan)", done, "thumbnail" if done == 1 else "thumbnails",
        time.perf_counter() - started, reused, len(todo) - done,
    )  # fmt: skip
    _drop_stale_thumbnails(folder, {url.rsplit("/", 1)[1] for url in out.values()})
    return out


class _Thumbnail(NamedTuple):
    """One thumbnail to make: a member's file as scanned, and where its JPEG goes."""

    path: str
    target: str
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, record: ImageRecord, target: str) -> _Thumbnail:
        return cls(record.path, target, record.entry.size, record.entry.mtime_ns)


def _write_thumbnail(task: _Thumbnail, size: int) -> bool | OutputError:
    """Make one thumbnail, in a worker (:func:`write_thumbnails`); an :class:`OutputError` is
    handed back to be raised there, a file that cannot be decoded fails as in a scan."""
    # only the file as scanned: the thumbnail is named by the scanned content's digest, and a
    # later report reuses it for that digest
    thumb = load_thumbnail(task.path, size, scanned=(task.size, task.mtime_ns))
    buf = io.BytesIO()
    thumb.save(buf, "JPEG", quality=THUMB_QUALITY, optimize=True, comment=_THUMB_MARK)
    try:
        write_output(task.target, buf.getvalue(), _is_jpeg)
    except OutputError as exc:
        return exc
    return True


_THUMB_MARK = b"imgdup thumbnail"  # a JPEG comment: which files of the folder a later run may remove
_THUMB_NAME = re.compile(r"[0-9a-f]{32}\.jpg")


def _drop_stale_thumbnails(folder: str, current: set[str]) -> None:
    """Remove the thumbnails no cluster of this page uses: content-addressed, they were never
    removed, so the folder kept every earlier run's pictures (a page rewritten for another
    folder, or after a removal). Only regular files named as thumbnails that carry imgdup's
    mark; anything else in the folder is left alone."""
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name in current or not _THUMB_NAME.fullmatch(name) or os.path.islink(path) or not os.path.isfile(path):
            continue
        try:
            with open(path, "rb") as fh:
                if _THUMB_MARK not in fh.read(4096):
                    continue
            os.unlink(path)
        except OSError as exc:  # another user's, in a shared folder: the page is made all the same
            log.warning("cannot remove the old thumbnail %s: %s; left there", path, exc.strerror or exc)


def render_page(document: dict[str, Any], *, thumbs: dict[str, str], labels: dict[str, str]) -> str:
    """The gallery page for a plan document (pure: the same input gives the same bytes)."""
    e = html.escape
    style, script = _asset("gallery.css"), _asset("gallery.js")
    csp = (
        f"default-src 'none'; img-src 'self' data:; style-src {_csp_hash(style)}; "
        f"script-src {_csp_hash(script)}; base-uri 'none'; form-action 'none'"
    )
    s = document.get("summary", {})
    summary = (
        f"{plural(s.get('files', 0), 'file')} scanned; {plural(s.get('clusters', 0), 'cluster')}, "
        f"{plural(s.get('to_remove', 0), 'file')} to remove "
        f"({human_bytes(int(s.get('bytes_to_remove', 0)))}), {s.get('to_review', 0)} to review."
    )
    failures = ""
    if document.get("failures"):
        items = "".join(
            f"<li>{e(display_path(f['path']))}: {e(display_path(f['reason']))}</li>" for f in document["failures"]
        )
        failures = f"<section id='failures'><h2>Files that could not be read</h2><ul>{items}</ul></section>"
    reference = _reference_section(document.get("reference_clusters") or [], thumbs, labels)
    if reference:
        n = len(document["reference_clusters"])
        summary += f" {n} {'cluster' if n == 1 else 'clusters'} only inside the reference (never acted on, below)."
    if document.get("linked_label_conflicts"):  # one file under two class folders: in no cluster
        items = "".join(
            f"<li>{e(', '.join(display_path(v) for v in x['labels']))}: "
            f"{e(' = '.join(display_path(n) for n in x['names']))}</li>"
            for x in document["linked_label_conflicts"]
        )
        failures += (
            "<section id='linked-conflicts'><h2>Label conflicts: one file under several labels (hard links)</h2>"
            f"<ul>{items}</ul></section>"
        )
    data = _json_for_html({"plan": _exact_ints(document), "thumbs": thumbs, "root_labels": labels})
    page = _asset("gallery.html")
    # One pass, so a value can never be taken for another placeholder.
    parts = {
        "generator": GENERATOR,
        "csp": e(csp, quote=False),
        "style": style,
        "summary": e(summary),
        "failures": failures,
        "reference": reference,
    }
    parts.update(data=data, script=script)
    out = []
    rest = page
    while "{" in rest:
        head, _, tail = rest.partition("{")
        key, sep, after = tail.partition("}")
        if sep and key in parts:
            out += [head, parts[key]]
            rest = after
        else:
            out.append(head + "{")
            rest = tail
    out.append(rest)
    return "".join(out)


_NO_PREVIEW = "<span class='info'>(no preview)</span>"


def _reference_section(clusters: list[dict[str, Any]], thumbs: dict[str, str], labels: dict[str, str]) -> str:
    """The clusters inside the reference, read-only: the reference is never acted on, so the page
    shows them (which files of the training set are copies of each other) with nothing to decide."""
    if not clusters:
        return ""
    e = html.escape
    cards = []
    for c in clusters[:REFERENCE_SHOWN]:
        tiles = []
        for m in c["members"][:REFERENCE_MEMBERS]:
            name = display_path(f"{labels.get(m['root'], m['root'])}/{m['relpath']}")
            src = thumbs.get(m["sha256"])
            img = f"<img loading='lazy' alt='{e(name)}' src='{e(src)}'>" if src else _NO_PREVIEW
            note = "would be kept" if m["path"] == c["keep"] else f"distance {int(m['distance'])}"
            size = f"{int(m['width'])}\u00d7{int(m['height'])} · {human_bytes(int(m['bytes']))}"
            title = e(display_path(m["path"]))
            tiles.append(
                f"<div class='rfile'><div class='thumb'>{img}</div><div class='name' title='{title}'>{e(name)}</div>"
                f"<div class='info'>{size} · {note}</div></div>"
            )
        more = len(c["members"]) - REFERENCE_MEMBERS
        if more > 0:
            tiles.append(f"<div class='info'>and {more} more (JSON and CSV reports)</div>")
        cards.append(
            f"<div class='refcluster'><h3>Reference cluster {int(c['id'])} <span class='meta'>"
            f"{len(c['members'])} files · distance up to {int(c['diameter'])}</span></h3>"
            f"<div class='others'>{''.join(tiles)}</div></div>"
        )
    rest = len(clusters) - REFERENCE_SHOWN
    tail = f"<p class='info'>and {rest} more clusters: see the JSON or CSV report.</p>" if rest > 0 else ""
    n = len(clusters)
    return (
        f"<section id='reference'><h2>Duplicates inside the reference: {n} {'cluster' if n == 1 else 'clusters'}, "
        "never acted on</h2><p class='info'>Reference files are never removed; these are shown so the reference itself "
        f"can be cleaned by a separate scan of it.</p>{''.join(cards)}{tail}</section>"
    )


def to_html(result: ScanResult, *, thumbs: dict[str, str] | None = None) -> str:
    """The report as one HTML gallery page; ``thumbs`` maps digests to image URLs (see
    :func:`write_thumbnails`; without it the page shows no previews)."""
    return render_page(to_document(result), thumbs=thumbs or {}, labels=root_labels(result.roots))
