"""Datasets made of several folders: reference sets, leaks between folders, label conflicts.

Pure logic over decided clusters (no file system): the pipeline hands in the folders given to
the scan, which of them are references, and each file's label; this module annotates every
member (split, label, reference), turns the members of a label conflict into ``review``,
sets reference-only clusters apart, keeps only clusters spanning two folders in between-sets
mode, and counts duplicates within and leaks between the folders.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import combinations

from .models import Action, Cluster, LeakPair, LinkedConflict, Member, SetSummary

CONFLICT_POLICIES = ("review", "remove")


def inside(path: str, folder: str, sep: str) -> bool:
    """True when ``path`` is ``folder`` or lies below it (plain string test on absolute paths)."""
    return path == folder or path.startswith(folder.rstrip(sep) + sep)


def set_of(path: str, roots: Sequence[str], sep: str) -> str:
    """The deepest given folder holding ``path`` (a reference folder nested in a scanned
    folder is its own set); "" when none does."""
    best = ""
    for root in roots:
        if inside(path, root, sep) and len(root) > len(best):
            best = root
    return best


def set_finder(roots: Sequence[str], sep: str) -> Callable[[str], str]:
    """:func:`set_of` over ``roots``, remembered by the path's folder (the set of a file is its
    folder's: a 20,000-file report looked it up ~60,000 times, over ~50 folders)."""
    memo: dict[str, str] = {}
    named = frozenset(roots)

    def where(path: str) -> str:
        if path in named:  # a folder given itself (a file's set is its folder's only below it)
            return set_of(path, roots, sep)
        folder = path.rpartition(sep)[0]
        found = memo.get(folder)
        if found is None:
            found = memo[folder] = set_of(path, roots, sep)
        return found

    return where


def split_name(root: str, sep: str) -> str:
    """What a folder is called in reports: its last component (``train``, ``test``)."""
    return root.rstrip(sep).rsplit(sep, 1)[-1] or root


def split_names(roots: Sequence[str], sep: str) -> dict[str, str]:
    """:func:`split_name` of each of ``roots`` (in order), numbered where two share one
    (``data#1``, ``data#2``, as the reports label them): two splits must never read as one."""
    names = [split_name(r, sep) for r in roots]
    return {r: n if names.count(n) == 1 else f"{n}#{i + 1}" for i, (r, n) in enumerate(zip(roots, names))}


@dataclass(frozen=True)
class Annotated:
    """Clusters after the dataset step: acted-on clusters, reference-only clusters, summaries."""

    clusters: tuple[Cluster, ...]
    reference_clusters: tuple[Cluster, ...]
    sets: tuple[SetSummary, ...]
    leak_pairs: tuple[LeakPair, ...]
    leaks: int
    linked_conflicts: tuple[LinkedConflict, ...] = ()


def _annotate(
    c: Cluster,
    *,
    link_names: Mapping[str, Sequence[str]],
    where: Callable[[str], str],
    names: Mapping[str, str],
    reference: frozenset[str],
    reference_files: frozenset[str],
    labels: Mapping[str, str],
    label_conflicts: str,
) -> Cluster:
    members = []
    every: set[str] = set()  # the labels of every name of every member
    for m in c.members:
        entry = m.record.entry
        path, aliases = entry.path, entry.aliases
        home = where(path)
        if aliases or path in link_names:
            # every name's label: a file a training folder's link files under dog is a dog there
            first, *others = _names(m, link_names)
            own = _labels_of(first, others, labels)
            # A file listed through a linked folder only (test/cat -> store/cats_v2) lies where it was
            # listed: its real folder is in no split (it was a split of its own, QA pass 36).
            home = home or next((h for n in others if (h := where(n))), "")
            # A scanned folder never lies inside a reference folder (refused), so a file is a
            # reference file exactly when the deepest folder holding it is a reference folder.
            is_reference = path in reference_files or any(where(n) in reference for n in (path, *aliases))
        else:  # a file of one name (most): the same answers without the tuples of names
            label = labels.get(path) if labels else None
            own = [] if label is None else [label]
            is_reference = path in reference_files or home in reference
        every.update(own)
        members.append(
            Member(
                m.record,
                m.distance,
                m.action,
                reference=is_reference,
                label=own[0] if own else None,
                split=names[home],
                via=m.via,
                via_distance=m.via_distance,
                linked_by=m.linked_by,
            )
        )
    # A file filed under two classes by hard links (train/cat/a.jpg = train/dog/a.jpg) carries
    # both: ImageFolder reads it as a cat and a dog.
    distinct = sorted(every)
    conflict = tuple(distinct) if len(distinct) > 1 else ()
    if conflict and label_conflicts == "review":
        # A conflict is never resolved by removal silently: a person decides which label is right.
        members = [replace(m, action=Action.REVIEW) if m.action is Action.REMOVE else m for m in members]
    elif distinct and label_conflicts == "review" and all(m.label is None for m in members if m.action is Action.KEEP):
        # Nor is a labelled copy removed for an unlabelled one (a labels file that does not name
        # every file): that would drop a labelled sample from the dataset.
        members = [replace(m, action=Action.REVIEW) if m.action is Action.REMOVE and m.label is not None else m
                   for m in members]  # fmt: skip
    return replace(c, members=tuple(members), label_conflict=conflict)


def _names(m: Member, link_names: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """Every name of a member's file: its path, its other names (hard links), and the reference
    folders' symbolic links to it (``link_names``)."""
    e = m.record.entry
    extra = link_names.get(e.path, ())
    return (e.path, *e.aliases, *extra) if extra or e.aliases else (e.path,)


def _spans(c: Cluster, where: Callable[[str], str], link_names: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """The folders the names of the cluster's members (:func:`_names`) lie in, when two or more."""
    seen: set[str] = set()
    for m in c.members:
        entry = m.record.entry
        if entry.aliases or entry.path in link_names:
            seen.update(where(n) for n in _names(m, link_names))
        else:
            seen.add(where(entry.path))
    seen.discard("")  # a listed file's real folder, in no split (its listed name is in one)
    return tuple(sorted(seen)) if len(seen) > 1 else ()


def _several_names(
    linked: Sequence[Sequence[str]], link_names: Mapping[str, Sequence[str]]
) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Every file with more than one name, as (all its names, its hard links' names): its path
    first, its hard links (``linked``, each file's names), then the reference folders' symbolic
    links to it (``link_names``)."""
    hard = {names[0]: tuple(names) for names in linked}
    for path in link_names:
        hard.setdefault(path, (path,))
    return [((*names, *link_names.get(path, ())), names) for path, names in hard.items()]


def _labels_of(path: str, aliases: Sequence[str], labels: Mapping[str, str]) -> list[str]:
    """The labels of a file's names, in the order of its names (first the first name, the label
    it is reported with, then its other names in path order), each once."""
    out: list[str] = []
    for n in (path, *aliases):
        lab = labels.get(n)
        if lab is not None and lab not in out:
            out.append(lab)
    return out


def _summaries(
    clusters: Sequence[Cluster],
    set_roots: Sequence[str],
    reference: Sequence[str],
    files: Mapping[str, int],
    sep: str,
    where: Callable[[str], str],
    linked: Sequence[Sequence[str]] = (),
    link_names: Mapping[str, Sequence[str]] | None = None,
) -> tuple[tuple[SetSummary, ...], tuple[LeakPair, ...]]:
    within = dict.fromkeys(set_roots, 0)
    labels = split_names(set_roots, sep)
    leaked: dict[tuple[str, str], set[str]] = {}
    pair_clusters: dict[tuple[str, str], int] = {}
    pair_links: dict[tuple[str, str], int] = {}
    pair_symlinks: dict[tuple[str, str], int] = {}
    # One file under names in several folders: the same picture in each. Its names are its hard
    # links, and the symbolic links of reference folders that point at it (ImageFolder reads it
    # there too); a pair of folders its hard links alone span counts as a hard link.
    for names, hard in _several_names(linked, link_names or {}):
        named: dict[str, list[str]] = {}
        for name in names:
            named.setdefault(where(name), []).append(name)
        by_hard = {where(name) for name in hard}
        for a, b in combinations(sorted(r for r in named if r), 2):
            count = pair_links if a in by_hard and b in by_hard else pair_symlinks
            count[(a, b)] = count.get((a, b), 0) + 1
            leaked.setdefault((a, b), set()).update(named[a])
            leaked.setdefault((b, a), set()).update(named[b])
    for c in clusters:
        # Per folder, the members with a name there, and those names: a member lies in the
        # folders of all its names (a training file first named by its test hard link).
        by_set: dict[str, dict[str, list[str]]] = {}
        for m in c.members:
            for name in _names(m, link_names or {}):
                by_set.setdefault(where(name), {}).setdefault(m.record.path, []).append(name)
        for root, held in by_set.items():
            if root in within:
                within[root] += len(held) - 1  # files, not names: a file's two names are one image
        for a, b in combinations(sorted(r for r in by_set if r), 2):
            pair_clusters[(a, b)] = pair_clusters.get((a, b), 0) + 1
            leaked.setdefault((a, b), set()).update(n for names in by_set[a].values() for n in names)
            leaked.setdefault((b, a), set()).update(n for names in by_set[b].values() for n in names)
    sets = tuple(
        SetSummary(
            root=root,
            name=labels[root],
            reference=root in reference,
            files=files.get(root, 0),
            duplicates_within=within[root],
            leaks=tuple((other, len(leaked[(root, other)])) for other in set_roots if (root, other) in leaked),
        )
        for root in set_roots
    )
    pairs = tuple(
        LeakPair(
            a,
            b,
            pair_clusters.get((a, b), 0),
            tuple(sorted(leaked[(a, b)])),
            tuple(sorted(leaked[(b, a)])),
            pair_links.get((a, b), 0),
            pair_symlinks.get((a, b), 0),
        )
        for a, b in sorted(pair_clusters.keys() | pair_links.keys() | pair_symlinks.keys())
    )
    return sets, pairs


def annotate(
    clusters: Sequence[Cluster],
    *,
    roots: Sequence[str],
    reference: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    label_conflicts: str = "review",
    between: bool = False,
    files: Mapping[str, int] | None = None,
    sep: str = "/",
    linked: Sequence[Sequence[str]] = (),
    reference_files: frozenset[str] = frozenset(),
    link_names: Mapping[str, Sequence[str]] | None = None,
) -> Annotated:
    """Annotate decided clusters for a dataset made of several folders.

    ``roots`` are every folder given to the scan (reference folders included); ``files``
    counts the images of each. Reference-only clusters are set apart; with ``between``, only
    clusters spanning two or more folders are kept (both lists). Cluster ids are renumbered
    0.. over the acted-on clusters, then on over the reference-only ones, so every id in a
    report is unique and in order. ``linked`` lists the names of each file that has several
    (hard links): one spanning two folders is a leak between them, though no cluster, and one
    whose names carry different ``labels`` (a label per file name) a label conflict of its own.
    ``reference_files``: files outside the reference folders that are reference files all the
    same (a reference folder's symbolic link points at them); ``link_names``: those links, by
    the file's path, which place the file in their folders too.
    """
    if label_conflicts not in CONFLICT_POLICIES:
        raise ValueError(f"label_conflicts must be one of {', '.join(CONFLICT_POLICIES)}")
    set_roots = sorted(set(roots) | set(reference))
    where = set_finder(set_roots, sep)  # looked up several times a path (annotation, summaries, spans)

    # A split names one folder among several; a single folder has none.
    names = (split_names(set_roots, sep) if len(set_roots) > 1 else dict.fromkeys(set_roots, "")) | {"": ""}
    done = [
        _annotate(
            c,
            where=where,
            names=names,
            reference=frozenset(reference),
            reference_files=reference_files,
            link_names=link_names or {},
            labels=labels or {},
            label_conflicts=label_conflicts,
        )
        for c in clusters
    ]
    # A per-folder summary says something only when there are several folders.
    sets, pairs = (
        _summaries(done, set_roots, reference, files or {}, sep, where, linked, link_names)
        if len(set_roots) > 1
        else ((), ())
    )
    # A member lies in the folders of all its names: train/a.jpg first named test/a.jpg (a hard
    # link) and its copy test/b.jpg span train and test (read as test alone, b was no leak); so
    # does a file that a reference folder's symbolic link names.
    done = [replace(c, spans=spans) if (spans := _spans(c, where, link_names or {})) else c for c in done]
    spanning = [c for c in done if c.spans]
    leaks = len(spanning)
    if between:
        done = spanning
    acted = [c for c in done if not all(m.reference for m in c.members)]
    ref_only = [c for c in done if all(m.reference for m in c.members)]
    acted = [replace(c, id=i) for i, c in enumerate(acted)]
    ref_only = [replace(c, id=len(acted) + i) for i, c in enumerate(ref_only)]
    # A file in no cluster whose names (hard links, a reference folder's links to it) carry
    # different labels is a conflict of its own.
    clustered = {m.record.path for c in clusters for m in c.members}
    alone = tuple(
        LinkedConflict(tuple(sorted(names)), tuple(sorted(own)))
        for names, _hard in _several_names(linked, link_names or {})
        if names[0] not in clustered
        and len(own := _labels_of(names[0], names[1:], labels or {})) > 1
        and (not between or len({where(n) for n in names}) > 1)  # only those spanning folders, as clusters
    )
    return Annotated(tuple(acted), tuple(ref_only), sets, pairs, leaks, tuple(sorted(alone, key=lambda x: x.names)))
