"""The human-readable report printed to stdout."""

from __future__ import annotations

import posixpath

from ..models import FileEntry, ScanResult


def display_path(path: str) -> str:
    """A path safe to print: control characters (a newline in a name, an escape sequence that
    would repaint the terminal) are shown escaped instead of acting; a byte that is not valid
    UTF-8 (held as a lone surrogate, see :mod:`imgdup.names`) is shown as ``\\xNN``."""
    if path.isprintable():
        return path
    return "".join(
        ch if ch.isprintable()
        else f"\\x{ord(ch) - 0xDC00:02x}" if 0xDC80 <= ord(ch) <= 0xDCFF
        else ch.encode("unicode_escape").decode("ascii")
        for ch in path
    )  # fmt: skip


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 file``, ``2 files``: the count and the word in the right number."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def root_labels(roots: tuple[str, ...] | list[str]) -> dict[str, str]:
    """A short name for each root: its folder name, numbered when two roots share one
    (``/a/data`` and ``/b/data`` read ``data#1`` and ``data#2``)."""
    names = [posixpath.basename(r.rstrip("/")) or "/" for r in roots]
    return {r: n if names.count(n) == 1 else f"{n}#{i + 1}" for i, (r, n) in enumerate(zip(roots, names))}


def rooted_path(path: str, labels: dict[str, str]) -> str:
    """``<root name>/<path inside the root>`` for a path under one of the labelled roots (else the path)."""
    for root, label in labels.items():
        if path.startswith(root.rstrip("/") + "/"):
            return f"{label}/{path[len(root.rstrip('/')) + 1 :]}"
    return path


def rooted(entry: FileEntry, labels: dict[str, str]) -> str:
    return f"{labels[entry.root]}/{entry.relpath}" if entry.root in labels else entry.path


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def format_text(result: ScanResult, *, removed: bool = False) -> str:
    """Every cluster with its keeper, each member's distance and action, then a summary."""
    to_hex = result.settings.hash.to_hex
    labels = root_labels(result.roots)
    lines: list[str] = []
    if result.clusters or result.low_information:
        # Paths below read "<root name>/<path inside the root>": train/x.jpg and test/x.jpg differ.
        lines.append("roots: " + ", ".join(f"{labels[r]} = {display_path(r)}" for r in result.roots))
        lines.append("")
    for c in result.clusters:
        lines.append(f"cluster {c.id}: {len(c.members)} files, hash {to_hex(c.keep.hash)}, diameter {c.diameter}")
        for m in c.members:
            r = m.record
            detail = f"{r.width}x{r.height} px, {human_bytes(r.entry.size)}"
            note = f"  ({c.keep_reason})" if m.action.value == "keep" else f"  distance {m.distance}"
            lines.append(f"  {m.action.value:<6} {display_path(rooted(r.entry, labels))}  [{detail}]{note}")
            for alias in r.entry.aliases:
                lines.append(f"         hard link: {display_path(rooted_path(alias, labels))} (same file)")
        lines.append("")
    for r in result.low_information:
        lines.append(f"low information (solid colour or blank; not compared): {display_path(rooted(r.entry, labels))}")
    if result.low_information:
        lines.append("")
    for f in result.failures:
        lines.append(f"failed  {display_path(f.path)}: {f.reason}")
    if result.failures:
        lines.append("")
    s = result.summary
    if not s.files:
        lines.append(f"no images found in {', '.join(display_path(r) for r in result.roots)}")
    elif not s.images:
        lines.append("no image could be read (see the failures above)")
    lines.append(
        f"{plural(s.files, 'file')} scanned ({s.from_cache} from the cache), {plural(s.images, 'image')} hashed, "
        f"{s.failures} failed, {len(result.skipped)} skipped (symlinks, special files)"
    )
    verb = "removed" if removed else "would remove"
    hs = result.settings.hash
    rot = "rotations, " if hs.rotations else ""
    lines.append(
        f"{plural(s.clusters, 'cluster')}, {plural(s.duplicates, 'duplicate')}: {verb} {plural(s.to_remove, 'file')} "
        f"({human_bytes(s.bytes_to_remove)}), {s.to_review} left for review "
        f"[{hs.algorithm}, {hs.bits} bits, threshold {result.settings.threshold}, {rot}{s.seconds:.2f} s]"
    )
    return "\n".join(lines) + "\n"
