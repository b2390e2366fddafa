"""Score an imgdup JSON report against the ground truth written by ``generate``.

Figures (each split into ``expected`` and ``hard``; a pair or file is *hard* when it involves a
variant made by a hard transform: flip, 90-degree rotation, 20% crop):

* pairwise precision / recall / F1: predicted pairs are all unordered pairs of files in one
  imgdup cluster; true pairs are all pairs of files made from one source (original + variants);
* recall per transform: a variant is found when it shares a cluster with its source original;
* wrong pairs: distractor-distractor, distractor-variant, cross-source (two sources merged);
* removal plan (members whose action is ``remove``): pictures that would be lost, files removed
  in favour of a different picture, and how often the kept file is the best copy (the original
  or its byte-identical copy, rather than an upscale or a re-encode).

Usage (from the repository root)::

    python -m benchmarks.accuracy.evaluate --report report.json --truth /tmp/acc/dataset.truth.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

SPLITS = ("expected", "hard", "all")
BEST_COPY = frozenset({"original", "exact_copy"})  # byte-identical to the source photo


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def _split(total: int, expected_only: int) -> dict[str, int]:
    """Pair counts by split from the total and the count of pairs that involve no hard file."""
    return {"expected": expected_only, "hard": total - expected_only, "all": total}


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _f1(p: float | None, r: float | None) -> float | None:
    if p is None or r is None:
        return None
    return 2 * p * r / (p + r) if p + r else 0.0


def _key(member: Mapping[str, Any], dataset: PurePosixPath | None) -> str:
    """Join key with the truth: the member's relpath, or its path relative to the dataset folder."""
    rel = str(member.get("relpath", "")).replace("\\", "/")
    if dataset is not None and member.get("path"):
        path = PurePosixPath(str(member["path"]).replace("\\", "/"))
        if path.is_relative_to(dataset):
            return str(path.relative_to(dataset))
    return rel


def _identity(record: Mapping[str, Any], rel: str) -> tuple[str, object]:
    """What makes two files the same picture: the source group, or the distractor file itself."""
    return ("group", record["group"]) if record["group"] is not None else ("distractor", rel)


def evaluate(report: Mapping[str, Any], truth: Mapping[str, Any]) -> dict[str, Any]:
    """Compare one imgdup report with the truth; returns plain JSON-serialisable figures."""
    files: dict[str, Mapping[str, Any]] = {f["relpath"]: f for f in truth["files"]}
    dataset = PurePosixPath(str(truth["dataset"]).replace("\\", "/")) if truth.get("dataset") else None
    groups: dict[object, list[str]] = {}
    originals: dict[object, str] = {}
    for rel, rec in files.items():
        if rec["group"] is not None:
            groups.setdefault(rec["group"], []).append(rel)
            if rec["transform"] == "original":
                originals[rec["group"]] = rel

    clusters: list[list[tuple[str, Mapping[str, Any]]]] = []
    unknown: list[str] = []
    cluster_of: dict[str, int] = {}
    for cluster in report.get("clusters", []):
        members = []
        for m in cluster["members"]:
            rel = _key(m, dataset)
            if rel not in files:
                unknown.append(rel)
                continue
            cluster_of[rel] = len(clusters)
            members.append((rel, m))
        clusters.append(members)

    pairs = _pair_figures(clusters, files, groups)
    failed = Counter[str]()
    for failure in report.get("failures", []):
        rel = _key({"path": failure.get("path", ""), "relpath": failure.get("relpath", "")}, dataset)
        if rel in files:
            failed[files[rel]["transform"]] += 1
    order = list(truth.get("transforms", {}))
    per_transform, variants = _transform_recall(files, originals, cluster_of, order)
    for name, figures in per_transform.items():
        figures["failed"] = failed[name]
    removal = _removal_figures(clusters, files, groups) if _has_actions(report) else None
    mixed = sum(1 for c in clusters if len({_identity(files[r], r) for r, _ in c}) > 1)
    return {
        "counts": {
            "truth_files": len(files),
            "sources": len(groups),
            "distractors": sum(1 for f in files.values() if f["group"] is None),
            "clusters": len(clusters),
            "clustered_files": len(cluster_of),
            "mixed_clusters": mixed,
            "failures": len(report.get("failures", [])),
            "failed_by_transform": dict(failed.most_common()),
            "unknown_files": len(unknown),
        },
        "pairs": pairs,
        "variant_recall": variants,
        "per_transform": per_transform,
        "removal": removal,
    }


def _pair_figures(
    clusters: Sequence[Sequence[tuple[str, Mapping[str, Any]]]],
    files: Mapping[str, Mapping[str, Any]],
    groups: Mapping[object, Sequence[str]],
) -> dict[str, Any]:
    """Pairwise counts by closed formulas per cluster (a loose threshold can make huge clusters)."""
    predicted = Counter[str]()
    correct = Counter[str]()
    wrong = {k: Counter[str]() for k in ("distractor_distractor", "distractor_variant", "cross_source")}
    for members in clusters:
        recs = [files[rel] for rel, _ in members]
        n, n_exp = len(recs), sum(1 for r in recs if not r["hard"])
        predicted.update(_split(_pairs(n), _pairs(n_exp)))
        by_group = Counter(r["group"] for r in recs if r["group"] is not None)
        by_group_exp = Counter(r["group"] for r in recs if r["group"] is not None and not r["hard"])
        same = sum(_pairs(k) for k in by_group.values())
        same_exp = sum(_pairs(k) for k in by_group_exp.values())
        correct.update(_split(same, same_exp))
        d = n - sum(by_group.values())  # distractors are never hard
        m, m_exp = n - d, n_exp - d
        wrong["distractor_distractor"].update(_split(_pairs(d), _pairs(d)))
        wrong["distractor_variant"].update(_split(d * m, d * m_exp))
        wrong["cross_source"].update(_split(_pairs(m) - same, _pairs(m_exp) - same_exp))

    true = Counter[str]()
    for rels in groups.values():
        true.update(_split(_pairs(len(rels)), _pairs(sum(1 for r in rels if not files[r]["hard"]))))

    out: dict[str, Any] = {}
    for s in SPLITS:
        p, r = _ratio(correct[s], predicted[s]), _ratio(correct[s], true[s])
        out[s] = {
            "precision": p,
            "recall": r,
            "f1": _f1(p, r),
            "predicted_pairs": predicted[s],
            "true_pairs": true[s],
            "correct_pairs": correct[s],
            "wrong_pairs": predicted[s] - correct[s],
            "wrong": {k: v[s] for k, v in wrong.items()},
        }
    return out


def _transform_recall(
    files: Mapping[str, Mapping[str, Any]],
    originals: Mapping[object, str],
    cluster_of: Mapping[str, int],
    order: Sequence[str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per transform: how many variants share a cluster with their source original."""
    found, total, hard = Counter[str](), Counter[str](), {}
    for rel, rec in files.items():
        if rec["group"] is None or rec["transform"] == "original":
            continue
        name = rec["transform"]
        hard[name] = bool(rec["hard"])
        total[name] += 1
        orig = originals.get(rec["group"])
        if orig is not None and rel in cluster_of and cluster_of.get(orig) == cluster_of[rel]:
            found[name] += 1
    per = {
        name: {
            "hard": hard[name],
            "found": found[name],
            "total": total[name],
            "recall": _ratio(found[name], total[name]),
        }
        for name in sorted(total, key=lambda n: (order.index(n) if n in order else len(order), n))
    }
    agg: dict[str, Any] = {}
    for s in SPLITS:
        names = [n for n in per if s == "all" or per[n]["hard"] == (s == "hard")]
        f, t = sum(found[n] for n in names), sum(total[n] for n in names)
        agg[s] = {"found": f, "total": t, "recall": _ratio(f, t)}
    return per, agg


def _has_actions(report: Mapping[str, Any]) -> bool:
    return any("action" in m for c in report.get("clusters", []) for m in c["members"])


def _removal_figures(
    clusters: Sequence[Sequence[tuple[str, Mapping[str, Any]]]],
    files: Mapping[str, Mapping[str, Any]],
    groups: Mapping[object, Sequence[str]],
) -> dict[str, Any]:
    """What the removal plan would cost: lost pictures, wrong removals, quality of the keeper."""
    removed: set[str] = set()
    removed_by = Counter[str]()
    wrongly = Counter[str]()
    review = 0
    keeper_transforms = Counter[str]()
    best = eligible = keeper_hard = 0
    for members in clusters:
        keepers = [rel for rel, m in members if m.get("action") == "keep"]
        keeper = keepers[0] if keepers else None
        keep_id = _identity(files[keeper], keeper) if keeper else None
        for rel, m in members:
            rec = files[rel]
            if m.get("action") == "review":
                review += 1
            if m.get("action") != "remove":
                continue
            removed.add(rel)
            split = "hard" if rec["hard"] else "expected"
            removed_by[split] += 1
            if _identity(rec, rel) != keep_id:
                wrongly[split] += 1
        if keeper is None:
            continue
        krec = files[keeper]
        keeper_transforms[krec["transform"]] += 1
        keeper_hard += bool(krec["hard"])
        in_cluster = {files[rel]["transform"] for rel, _ in members if files[rel]["group"] == krec["group"]}
        if krec["group"] is not None and in_cluster & BEST_COPY:
            eligible += 1
            best += krec["transform"] in BEST_COPY

    keep_policy = _keeper_classes(clusters, files)
    lost_groups = sum(1 for rels in groups.values() if all(r in removed for r in rels))
    lost_groups_soft = sum(1 for rels in groups.values() if all(r in removed for r in rels if not files[r]["hard"]))
    lost_distractors = sum(1 for rel in removed if files[rel]["group"] is None)
    return {
        "removed_files": {**removed_by, "all": sum(removed_by.values())},
        "review_files": review,
        "wrongly_removed": {
            "expected": wrongly["expected"],
            "hard": wrongly["hard"],
            "all": sum(wrongly.values()),
        },
        "lost_pictures": lost_groups + lost_distractors,
        "lost_groups": lost_groups,
        "lost_groups_ignoring_hard": lost_groups_soft,
        "lost_distractors": lost_distractors,
        "best_copy_kept": {"best": best, "eligible": eligible, "pct": _pct(best, eligible)},
        "keeper_is_hard_variant": keeper_hard,
        "keeper_transforms": dict(keeper_transforms.most_common()),
        "keep_policy": keep_policy,
    }


# --- keep-policy block (issue 9): which class of copy the kept file is --------------------
GOOD_CLASSES = frozenset({"source", "lossless"})


def _keeper_classes(
    clusters: Sequence[Sequence[tuple[str, Mapping[str, Any]]]], files: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """Per cluster, the quality class of the kept file, and the keep-policy error counts."""

    def cls(rel: str) -> str:
        return files[rel].get("quality_class") or ("source" if files[rel]["transform"] == "original" else "unknown")

    def pixels(m: Mapping[str, Any]) -> int:
        return int(m.get("width") or 0) * int(m.get("height") or 0)

    per_cluster = []
    classes = Counter[str]()
    good = eligible = grey = enlarged = lower = 0
    for i, members in enumerate(clusters):
        keepers = [(rel, m) for rel, m in members if m.get("action") == "keep"]
        if not keepers or files[keepers[0][0]]["group"] is None:
            continue
        krel, km = keepers[0]
        kc = cls(krel)
        same = [(rel, m) for rel, m in members if files[rel]["group"] == files[krel]["group"] and rel != krel]
        classes[kc] += 1
        per_cluster.append({"cluster": i, "keeper": krel, "transform": files[krel]["transform"], "class": kc})
        if any(cls(rel) in GOOD_CLASSES for rel, _ in same) or kc in GOOD_CLASSES:
            eligible += 1
            good += kc in GOOD_CLASSES
        grey += kc == "grayscale" and any(cls(rel) != "grayscale" for rel, _ in same)
        enlarged += kc == "enlargement" and any(cls(rel) != "enlargement" for rel, _ in same)
        lower += kc == "lower resolution" and any(
            pixels(m) > pixels(km) and cls(rel) not in ("enlargement", "lower resolution") for rel, m in same
        )
    return {
        "source_or_lossless_kept": {"kept": good, "eligible": eligible, "pct": _pct(good, eligible)},
        "grayscale_kept_over_colour": grey,
        "enlargement_kept_over_source": enlarged,
        "lower_resolution_kept_over_larger": lower,
        "keeper_classes": dict(classes.most_common()),
        "per_cluster": per_cluster,
    }


# --- end of keep-policy block -------------------------------------------------------------


def _pct(num: int, den: int) -> float | None:
    return 100.0 * num / den if den else None


def _fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def format_text(result: Mapping[str, Any]) -> str:
    """A human-readable summary of ``evaluate``'s figures."""
    c = result["counts"]
    lines = [
        f"truth: {c['truth_files']} files, {c['sources']} sources, {c['distractors']} distractors",
        (
            f"report: {c['clusters']} clusters ({c['mixed_clusters']} mixed), {c['clustered_files']} files "
            f"clustered, {c['failures']} failures, {c['unknown_files']} files not in the truth"
        ),
        "",
        (
            f"{'pairs':<10}{'precision':>10}{'recall':>8}{'F1':>7}{'predicted':>11}{'true':>8}{'wrong':>7}"
            f"{'dist-dist':>11}{'dist-var':>10}{'cross-src':>11}"
        ),
    ]
    for s in SPLITS:
        p = result["pairs"][s]
        w = p["wrong"]
        lines.append(
            f"{s:<10}{_fmt(p['precision']):>10}{_fmt(p['recall']):>8}{_fmt(p['f1']):>7}{p['predicted_pairs']:>11}"
            f"{p['true_pairs']:>8}{p['wrong_pairs']:>7}{w['distractor_distractor']:>11}"
            f"{w['distractor_variant']:>10}{w['cross_source']:>11}"
        )
    lines += ["", "variant recall (found in the same cluster as its source original)"]
    for s in SPLITS:
        v = result["variant_recall"][s]
        lines.append(f"  {s:<22}{v['found']:>6}/{v['total']:<6}{_fmt(v['recall']):>7}")
    for hard in (False, True):
        lines.append(f" {'hard' if hard else 'expected'} transforms:")
        for name, t in result["per_transform"].items():
            if t["hard"] == hard:
                note = f"  ({t['failed']} could not be read)" if t.get("failed") else ""
                lines.append(f"  {name:<22}{t['found']:>6}/{t['total']:<6}{_fmt(t['recall']):>7}{note}")
    r = result["removal"]
    if r is None:
        lines += ["", "removal plan: the report has no actions"]
        return "\n".join(lines)
    b, rm, wr = r["best_copy_kept"], r["removed_files"], r["wrongly_removed"]
    lines += ["", "removal plan"]
    lines.append(
        f"  removed files: {rm.get('expected', 0)} expected, {rm.get('hard', 0)} hard"
        f" ({r['review_files']} left for review)"
    )
    lines.append(f"  removed in favour of a different picture: {wr['expected']} expected, {wr['hard']} hard")
    lines.append(
        f"  unique pictures lost: {r['lost_pictures']} ({r['lost_groups']} sources, "
        f"{r['lost_distractors']} distractors); sources left only as a hard variant or not at all: "
        f"{r['lost_groups_ignoring_hard']}"
    )
    lines.append(
        f"  best copy kept: {b['best']}/{b['eligible']} = {_fmt(b['pct'], 1)}% of clusters holding their "
        f"original; keeper is a hard variant in {r['keeper_is_hard_variant']}"
    )
    lines.append("  keeper transforms: " + ", ".join(f"{k} {v}" for k, v in r["keeper_transforms"].items()))
    k = r["keep_policy"]
    g = k["source_or_lossless_kept"]
    lines.append(
        f"  keeper is the source or a lossless copy: {g['kept']}/{g['eligible']} = {_fmt(g['pct'], 1)}%; kept over a"
        f" better copy: grayscale {k['grayscale_kept_over_colour']}, enlargement {k['enlargement_kept_over_source']},"
        f" lower resolution {k['lower_resolution_kept_over_larger']}"
    )
    lines.append("  keeper classes: " + ", ".join(f"{c} {n}" for c, n in k["keeper_classes"].items()))
    return "\n".join(lines)


def load_json(path: Path) -> Any:
    """Read one JSON document."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def main(argv: Iterable[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", required=True, type=Path, help="imgdup JSON report (imgdup.report/1)")
    parser.add_argument("--truth", required=True, type=Path, help="truth JSON written by generate")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the figures as JSON")
    args = parser.parse_args(None if argv is None else list(argv))
    try:
        report, truth = load_json(args.report), load_json(args.truth)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = evaluate(report, truth)
    print(format_text(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
