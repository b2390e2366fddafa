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


def _not_enlarged(r: ImageRecord) -> int:
    return 1 if r.quality is not None and r.quality.upscaled else 0


KEEP_RULES: dict[str, KeepRule] = {
    # Unknown quality (not measured) counts as "not enlarged": the next rules decide.
    "quality": KeepRule(_not_enlarged, lambda r: "not an enlargement (the others look upscaled)"),
    "pixels": KeepRule(lambda r: -r.pixels, lambda r: f"most pixels ({r.width}x{r.height})"),
    "size": KeepRule(lambda r: -r.entry.size, lambda r: f"largest file ({r.entry.size} bytes)"),
    "oldest": KeepRule(lambda r: r.entry.mtime_ns, lambda r: "oldest modification time"),
    "newest": KeepRule(lambda r: -r.entry.mtime_ns, lambda r: "newest modification time"),
    "shortest-path": KeepRule(lambda r: len(r.path), lambda r: "shortest path"),
    "path": KeepRule(lambda r: r.path, lambda r: "first in path order"),
}

# Measured on the accuracy benchmark (phash/64, T=8; benchmarks/ACCURACY.md): the original is
# kept in 0% of clusters with pixels,size,path (the 150% upscale has the most pixels, then a
# larger re-encode wins on size) and with quality,pixels,size,path (a q90/q92 re-encode of a q75
# original is larger), in 15% with quality,pixels,path. "size" is not a measure of quality.
DEFAULT_KEEP = ("quality", "pixels", "path")


def parse_keep(spec: str | Sequence[str]) -> tuple[str, ...]:
    """Validate a keep policy (``"oldest,size"`` or a sequence); path order always breaks ties."""
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    unknown = [n for n in names if n not in KEEP_RULES]
    if unknown or not names:
        raise UsageError(f"unknown keep rule {', '.join(unknown) or '(empty)'}; choose from {', '.join(KEEP_RULES)}")
    if "path" not in names:
        names.append("path")
    return tuple(dict.fromkeys(names))


def _smallest_of_twins(records: Sequence[ImageRecord]) -> list[ImageRecord]:
    """Drop every file whose decoded pixels equal a smaller file's (then earlier path's): a
    lossless re-encode holds the same picture in more bytes, so it is never the better copy."""
    best: dict[str, ImageRecord] = {}
    out = []
    for r in records:
        if r.quality is None:
            out.append(r)
            continue
        seen = best.get(r.quality.pixels_sha256)
        if seen is None or (r.entry.size, r.path) < (seen.entry.size, seen.path):
            best[r.quality.pixels_sha256] = r
    return out + list(best.values())


def choose_keeper(records: Sequence[ImageRecord], keep: Sequence[str]) -> tuple[ImageRecord, str]:
    """The record the policy keeps, and the rule that decided it against the runner-up."""
    rules = [KEEP_RULES[name] for name in keep]
    candidates = _smallest_of_twins(records) if "quality" in keep else list(records)
    ranked = sorted(candidates, key=lambda r: tuple(rule.key(r) for rule in rules))
    best = ranked[0]
    if len(ranked) == 1:
        if len(records) == 1 or len({r.digest for r in records}) == 1:
            return best, "only member" if len(records) == 1 else "first in path order"
        return best, "smallest of the files with identical pixels"
    runner_up = ranked[1]
    for rule in rules:
        if rule.key(best) != rule.key(runner_up):
            return best, rule.describe(best)
    return best, "first in path order"


def distance(a: ImageRecord, b: ImageRecord) -> int:
    """Bits between two images' hashes; with rotation variants, the least over a's 8 versions."""
    return min((h ^ b.hash).bit_count() for h in (a.hash, *a.variants))


def diameter(records: Sequence[ImageRecord]) -> int:
    """Largest distance between any two members (over distinct hash values)."""
    reps = list({(r.hash, r.variants): r for r in records}.values())
    return max((distance(a, b) for a, b in combinations(reps, 2)), default=0)


def reference_first(records: Sequence[ImageRecord], protected: Callable[[ImageRecord], bool]) -> list[ImageRecord]:
    """The keeper candidates: the reference members when the cluster holds any (a reference
    file never loses its place as the kept file), else every member. Runs before the rules."""
    ref = [r for r in records if protected(r)]
    return ref or list(records)


def decide(
    cluster_id: int,
    records: Sequence[ImageRecord],
    *,
    threshold: int,
    keep: Sequence[str],
    protected: Callable[[ImageRecord], bool] | None = None,
) -> Cluster:
    """Build a cluster: the keeper, and ``remove`` or ``review`` for every other member.

    ``protected`` marks reference files: the keeper is chosen among them, every one of them is
    kept, and another member is removed when it is within the threshold of the nearest of them.
    """
    is_ref = protected or (lambda _r: False)
    candidates = reference_first(records, is_ref)
    keeper, reason = choose_keeper(candidates, keep)
    if len(candidates) < len(records):
        reason = f"reference file; {reason}" if len(candidates) > 1 else "the reference file"
    kept = [r for r in candidates if is_ref(r)] or [keeper]
    members = [Member(keeper, 0, Action.KEEP)]
    others = []
    for r in records:
        if r is keeper:
            continue
        if is_ref(r):
            others.append(Member(r, distance(keeper, r), Action.KEEP))
            continue
        d = min(distance(k, r) for k in kept)
        others.append(Member(r, d, Action.REMOVE if d <= threshold else Action.REVIEW))
    others.sort(key=lambda m: (m.distance, m.record.path))
    return Cluster(
        id=cluster_id,
        keep=keeper,
        keep_reason=reason,
        members=tuple(members + others),
        diameter=diameter(records),
    )
