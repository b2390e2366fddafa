"""The human-readable report printed to stdout."""

from __future__ import annotations

from collections.abc import Callable

from ..models import Cluster, ScanResult


def display_path(path: str) -> str:
    """A path safe to print: control characters (a newline in a name, an escape sequence that
    would repaint the terminal) are shown escaped instead of acting."""
    if path.isprintable():
        return path
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in path)


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def _cluster_lines(c: Cluster, to_hex: Callable[[int], str]) -> list[str]:
    lines = [f"cluster {c.id}: {len(c.members)} files, hash {to_hex(c.keep.hash)}, diameter {c.diameter}"]
    if c.label_conflict:
        lines.append(f"  LABEL CONFLICT: {', '.join(display_path(x) for x in c.label_conflict)}")
    for m in c.members:
        r = m.record
        detail = f"{r.width}x{r.height}, {human_bytes(r.entry.size)}"
        if m.split or m.label is not None:
            detail += f"; {m.split}" + (f" label {display_path(m.label)}" if m.label is not None else "")
        if m.reference:
            detail += "; reference"
        note = f"  ({c.keep_reason})" if m is c.members[0] else f"  distance {m.distance}"
        lines.append(f"  {m.action.value:<6} {display_path(r.path)}  [{detail}]{note}")
        for alias in r.entry.aliases:
            lines.append(f"         hard link: {display_path(alias)} (same file)")
    lines.append("")
    return lines


def sets_lines(result: ScanResult) -> list[str]:
    """Per folder: files, duplicates within, files leaking to each other folder; then per pair."""
    names = {t.root: t.name for t in result.sets}
    lines = []
    for t in result.sets:
        leaks = ", ".join(f"{n} to {names.get(o, o)}" for o, n in t.leaks) or "none"
        role = " (reference)" if t.reference else ""
        lines.append(
            f"{t.name}{role}: {t.files} images, {t.duplicates_within} duplicates within, "
            f"leaks: {leaks}  [{display_path(t.root)}]"
        )
    for p in result.leak_pairs:
        lines.append(
            f"leaks {names.get(p.a, p.a)} <-> {names.get(p.b, p.b)}: {p.clusters} clusters, "
            f"{len(p.files_a)} files in {names.get(p.a, p.a)}, {len(p.files_b)} in {names.get(p.b, p.b)}"
        )
    return lines


def format_text(result: ScanResult, *, removed: bool = False) -> str:
    """Every cluster with its keeper, each member's distance and action, then a summary."""
    to_hex = result.settings.hash.to_hex
    lines: list[str] = []
    for c in result.clusters:
        lines += _cluster_lines(c, to_hex)
    if result.reference_clusters:
        lines.append("duplicates inside the reference folders (never acted on):")
        lines.append("")
        for c in result.reference_clusters:
            lines += _cluster_lines(c, to_hex)
    for r in result.low_information:
        lines.append(f"low information (solid colour or blank; not compared): {display_path(r.path)}")
    if result.low_information:
        lines.append("")
    for f in result.failures:
        lines.append(f"failed  {display_path(f.path)}: {f.reason}")
    if result.failures:
        lines.append("")
    s = result.summary
    if result.sets:
        lines += [*sets_lines(result), ""]
    if s.label_conflicts or s.leaks or s.reference_clusters or result.settings.labels:
        lines.append(
            f"{s.leaks} clusters span two or more folders, {s.label_conflicts} label conflicts, "
            f"{s.reference_clusters} clusters only inside the reference"
        )
    lines.append(
        f"{s.files} files scanned ({s.from_cache} from the cache), {s.images} images hashed, {s.failures} failed, "
        f"{len(result.skipped)} skipped (symlinks, special files)"
    )
    verb = "removed" if removed else "would remove"
    hs = result.settings.hash
    rot = "rotations, " if hs.rotations else ""
    lines.append(
        f"{s.clusters} clusters, {s.duplicates} duplicates: {verb} {s.to_remove} files "
        f"({human_bytes(s.bytes_to_remove)}), {s.to_review} left for review "
        f"[{hs.algorithm}, {hs.bits} bits, threshold {result.settings.threshold}, {rot}{s.seconds:.2f} s]"
    )
    return "\n".join(lines) + "\n"
