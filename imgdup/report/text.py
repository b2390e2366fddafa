"""The human-readable report printed to stdout."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..errors import check_result
from ..models import Action, Cluster, FileEntry, ScanResult
from ..sets import split_names


def display_path(path: str) -> str:
    """A path safe to print: control characters (a newline in a name, an escape sequence that
    would repaint the terminal) are shown escaped instead of acting; a byte that is not valid
    UTF-8 (held as a lone surrogate, see :mod:`imgdup.names`) is shown as ``\\xNN``; a backslash
    as ``\\\\`` (else ``a<TAB>b.jpg`` and ``a\\tb.jpg`` would read the same)."""
    if path.isprintable() and "\\" not in path:
        return path
    return "".join(
        "\\\\" if ch == "\\"
        else ch if ch.isprintable()
        else f"\\x{ord(ch) - 0xDC00:02x}" if 0xDC80 <= ord(ch) <= 0xDCFF
        else ch.encode("unicode_escape").decode("ascii")
        for ch in path
    )  # fmt: skip


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 file``, ``2 files``: the count and the word in the right number."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def root_labels(roots: tuple[str, ...] | list[str]) -> dict[str, str]:
    """A short name for each root: its folder name, numbered when two roots share one
    (``/a/data`` and ``/b/data`` read ``data#1`` and ``data#2``): the members' ``split``."""
    return split_names(roots, "/")


def rooted_path(path: str, labels: dict[str, str]) -> str:
    """``<root name>/<path inside the root>`` for a path under one of the labelled roots (else the path)."""
    for root, label in labels.items():
        if path.startswith(root.rstrip("/") + "/"):
            return _joined(label, path[len(root.rstrip("/")) + 1 :])
    return path


def rooted(entry: FileEntry, labels: dict[str, str]) -> str:
    return _joined(labels[entry.root], entry.relpath) if entry.root in labels else entry.path


def _joined(label: str, rel: str) -> str:
    # the file system's root is labelled "/" (a --files list spread over the tree): "/tmp/a.jpg", not "//tmp/a.jpg"
    return f"{label.rstrip('/')}/{rel}"


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def _cluster_lines(c: Cluster, to_hex: Callable[[int], str], labels: dict[str, str]) -> list[str]:
    lines = [f"cluster {c.id}: {len(c.members)} files, hash {to_hex(c.keep.hash)}, diameter {c.diameter}"]
    joined = sum(m.via is not None for m in c.members)
    if joined:  # a wide diameter is then no sign of a wrong link: say how those members are in it
        lines[0] += f" ({joined} {'member' if joined == 1 else 'members'} joined through others)"
    if c.label_conflict:
        lines.append(f"  LABEL CONFLICT: {_labels(c.label_conflict)}")
    for m in c.members:
        r = m.record
        detail = f"{r.width}x{r.height} px, {human_bytes(r.entry.size)}"
        tags = [display_path(m.split)] if m.split else []  # a root's folder name: any bytes
        if m.label is not None:
            tags.append(f"label {display_path(m.label)}")
        if tags:
            detail += "; " + " ".join(tags)
        if m.reference:
            detail += "; reference"
        note = f"  ({c.keep_reason})" if m is c.members[0] else f"  distance {m.distance}"
        if m.via is not None:  # beyond the threshold of the kept file: in the cluster through another member
            note += f", joined through {display_path(rooted_path(m.via, labels))} at {m.via_distance}"
        if m.linked_by is not None and m.linked_by != "whole image":  # the usual link goes unsaid
            note += f" ({m.linked_by})"
        lines.append(f"  {m.action.value:<6} {display_path(rooted(r.entry, labels))}  [{detail}]{note}")
        for alias in r.entry.aliases:
            lines.append(f"         hard link: {display_path(rooted_path(alias, labels))} (same file)")
        if m.action is Action.REMOVE and not r.entry.frees_space:
            lines.append("         frees no space: a hard link outside the scanned folders keeps it")
    lines.append("")
    return lines


def sets_lines(result: ScanResult) -> list[str]:
    """Per folder: files, duplicates within, files leaking to each other folder; then per pair."""
    # numbered as the roots line numbers them when two folders share a name (data#1, data#2)
    names = {root: display_path(name) for root, name in root_labels([t.root for t in result.sets]).items()}
    lines = []
    for t in result.sets:
        leaks = ", ".join(f"{n} to {names.get(o, o)}" for o, n in t.leaks) or "none"
        role = " (reference)" if t.reference else ""
        lines.append(
            f"{names[t.root]}{role}: {plural(t.files, 'image')}, {plural(t.duplicates_within, 'duplicate')} within, "
            f"leaks: {leaks}  [{display_path(t.root)}]"
        )
    for p in result.leak_pairs:
        links = f", {plural(p.hard_links, 'hard-linked file')} (one file in both)" if p.hard_links else ""
        if p.symlinks:
            links += f", {plural(p.symlinks, 'file')} linked into both (a symbolic link)"
        lines.append(
            f"leaks {names.get(p.a, p.a)} <-> {names.get(p.b, p.b)}: {plural(p.clusters, 'cluster')}{links}, "
            f"{plural(len(p.files_a), 'file')} in {names.get(p.a, p.a)}, {len(p.files_b)} in {names.get(p.b, p.b)}"
        )
    return lines


SKIPPED_SHOWN = 20
"""Skipped paths (symbolic links, special files, missing listed files) the text report names."""


def _labels(labels: Sequence[str]) -> str:
    """Labels joined by commas, each quoted when it holds a comma or a quote itself: "dog, dog,
    large" read as three labels where a labels file had two (QA pass 18)."""
    return ", ".join(
        '"' + display_path(v).replace('"', '""') + '"' if "," in v or '"' in v else display_path(v) for v in labels
    )


def format_text(result: ScanResult, *, removed: bool = False, skipped: int = 0) -> str:
    """Every cluster with its keeper, each member's distance and action, then a summary.
    ``removed``: the summary says what was removed (a ``--remove 1`` run), else what would be;
    ``skipped``: clusters that run left alone (then it says what was planned)."""
    check_result("format_text", result)
    to_hex = result.settings.hash.to_hex
    labels = root_labels(result.roots)
    lines: list[str] = []
    if (
        result.clusters
        or result.reference_clusters
        or result.low_information
        or result.failures
        or result.skipped
        or result.linked_label_conflicts
    ):
        # Paths below read "<root name>/<path inside the root>": train/x.jpg and test/x.jpg differ.
        lines.append("roots: " + ", ".join(f"{display_path(labels[r])} = {display_path(r)}" for r in result.roots))
        lines.append("")
    for c in result.clusters:
        lines += _cluster_lines(c, to_hex, labels)
    if result.reference_clusters:
        lines.append("duplicates inside the reference folders (never acted on):")
        lines.append("")
        for c in result.reference_clusters:
            lines += _cluster_lines(c, to_hex, labels)
    for r in result.low_information:
        where = display_path(rooted(r.entry, labels))
        why = "blank, solid colour, or small marks on a plain canvas; exact copies only"
        lines.append(f"low information ({why}): {where}")
    if result.low_information:
        lines.append("")
    for f in result.failures:
        lines.append(f"failed  {display_path(rooted_path(f.path, labels))}: {f.reason}")
    if result.failures:
        lines.append("")
    # Named, so a listed file that is missing is not mistaken for a link; capped, since a tree of
    # symbolic links would bury the clusters (the JSON report keeps every one).
    for k in result.skipped[:SKIPPED_SHOWN]:
        lines.append(f"skipped {display_path(rooted_path(k.path, labels))}: {k.reason}")
    if len(result.skipped) > SKIPPED_SHOWN:  # (it said "the JSON report" where none was asked for)
        more = len(result.skipped) - SKIPPED_SHOWN
        lines.append(f"... and {more} more skipped (a JSON report lists every one: --report FILE.json)")
    if result.skipped:
        lines.append("")
    s = result.summary
    unlisted = result.unlisted_folders  # counted apart: no file of theirs was counted
    if not s.files and unlisted:  # not "no images found": an unreadable folder is not an empty one
        where = ", ".join(display_path(r) for r in result.roots)
        lines.append(f"nothing to compare in {where}: {plural(unlisted, 'folder')} could not be listed (see above)")
    elif not s.files:
        lines.append(f"no images found in {', '.join(display_path(r) for r in result.roots)}")
    elif not s.images:
        lines.append("no image could be read (see the failures above)")
    for x in result.linked_label_conflicts:  # one file under two class folders (hard links), in no cluster
        shown = " = ".join(display_path(rooted_path(n, labels)) for n in x.names)
        lines.append(f"LABEL CONFLICT: {_labels(x.labels)}: one file under {len(x.names)} names: {shown}")
    if result.linked_label_conflicts:
        lines.append("")
    if result.sets:
        lines += [*sets_lines(result), ""]
    if s.label_conflicts or s.leaks or s.reference_clusters or result.settings.labels:
        # What the scan was asked: folders to compare, labels, a reference (one folder with a
        # labels file read "0 clusters span two or more folders, ..., 0 clusters only inside the
        # reference", of neither).
        said = [f"{plural(s.leaks, 'cluster spans', 'clusters span')} two or more folders"] if result.sets else []
        if s.label_conflicts or result.settings.labels:
            said.append(plural(s.label_conflicts, "label conflict"))
        if result.settings.between:
            # --between drops the clusters inside one folder, so none is counted here; the
            # per-folder lines above still count their duplicates within (it read "0 clusters
            # only inside the reference" beside "train (reference): ... 1 duplicate within").
            said.append("duplicates within one folder left out by --between")
        elif result.reference or s.reference_clusters:
            said.append(f"{plural(s.reference_clusters, 'cluster')} only inside the reference")
        lines.append(", ".join(said))
    lines.append(
        f"{plural(s.files, 'file')} scanned ({s.from_cache} from the cache), {plural(s.images, 'image')} hashed, "
        f"{s.failures - unlisted} failed, "
        + (f"{plural(unlisted, 'folder')} could not be listed, " if unlisted else "")
        + f"{len(result.skipped)} skipped "
        + (
            f"({SKIPPED_SHOWN} listed above)"
            if len(result.skipped) > SKIPPED_SHOWN
            else "(listed above)"
            if result.skipped
            else "(symlinks, special files)"
        )
    )
    verb = ("planned to remove" if skipped else "removed") if removed else "would remove"
    left = "; " + plural(skipped, "cluster") + " skipped, see below" if removed and skipped else ""
    hs = result.settings.hash
    rot = "rotations, " if hs.rotations else ""
    lines.append(
        f"{plural(s.clusters, 'cluster')}, {plural(s.duplicates, 'duplicate')}: {verb} {plural(s.to_remove, 'file')} "
        f"({human_bytes(s.bytes_to_remove)}{left}), {s.to_review} left for review "
        f"[{hs.algorithm}, {hs.bits} bits, threshold {result.settings.threshold}, {rot}{s.seconds:.2f} s]"
    )
    return "\n".join(lines) + "\n"
