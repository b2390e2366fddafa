"""Which file of a cluster is kept, and what happens to the others (pure logic).

Only members within the threshold of the kept file are removed: union-find chains (A~B, B~C
with A far from C), so a member far from the keeper may be a different picture and is left
for a person to ``review``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations

from .errors import UsageError
from .models import Action, Cluster, ImageRecord, Member


@dataclass(frozen=True)
class KeepRule:
    """One criterion: a sort key (smaller wins) and how to explain a win."""

    key: Callable[[ImageRecord], object]
    describe: Callable[[ImageRecord], str]


KEEP_RULES: dict[str, KeepRule] = {
    "pixels": KeepRule(lambda r: -r.pixels, lambda r: f"most pixels ({r.width}x{r.height})"),
    "size": KeepRule(lambda r: -r.entry.size, lambda r: f"largest file ({r.entry.size} bytes)"),
    "oldest": KeepRule(lambda r: r.entry.mtime_ns, lambda r: "oldest modification time"),
    "newest": KeepRule(lambda r: -r.entry.mtime_ns, lambda r: "newest modification time"),
    "shortest-path": KeepRule(lambda r: len(r.path), lambda r: "shortest path"),
    "path": KeepRule(lambda r: r.path, lambda r: "first in path order"),
}

DEFAULT_KEEP = ("pixels", "size", "path")


def parse_keep(spec: str | Sequence[str]) -> tuple[str, ...]:
    """Validate a keep policy (``"oldest,size"`` or a sequence); path order always breaks ties."""
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    unknown = [n for n in names if n not in KEEP_RULES]
    if unknown or not names:
        raise UsageError(f"unknown keep rule {', '.join(unknown) or '(empty)'}; choose from {', '.join(KEEP_RULES)}")
    if "path" not in names:
        names.append("path")
    return tuple(dict.fromkeys(names))


def choose_keeper(records: Sequence[ImageRecord], keep: Sequence[str]) -> tuple[ImageRecord, str]:
    """The record the policy keeps, and the rule that decided it against the runner-up."""
    rules = [KEEP_RULES[name] for name in keep]
    ranked = sorted(records, key=lambda r: tuple(rule.key(r) for rule in rules))
    best = ranked[0]
    if len(ranked) == 1:
        return best, "only member"
    runner_up = ranked[1]
    for rule in rules:
        if rule.key(best) != rule.key(runner_up):
            return best, rule.describe(best)
    return best, "first in path order"


def diameter(hashes: Sequence[int]) -> int:
    """Largest Hamming distance between any two of the (unique) hashes."""
    return max(((a ^ b).bit_count() for a, b in combinations(set(hashes), 2)), default=0)


def decide(cluster_id: int, records: Sequence[ImageRecord], *, threshold: int, keep: Sequence[str]) -> Cluster:
    """Build a cluster: the keeper, and ``remove`` or ``review`` for every other member."""
    keeper, reason = choose_keeper(records, keep)
    members = [Member(keeper, 0, Action.KEEP)]
    others = []
    for r in records:
        if r is keeper:
            continue
        d = (r.hash ^ keeper.hash).bit_count()
        others.append(Member(r, d, Action.REMOVE if d <= threshold else Action.REVIEW))
    others.sort(key=lambda m: (m.distance, m.record.path))
    return Cluster(
        id=cluster_id,
        keep=keeper,
        keep_reason=reason,
        members=tuple(members + others),
        diameter=diameter([r.hash for r in records]),
    )
