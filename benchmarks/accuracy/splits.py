"""Train/test splits benchmark: leaks between the splits, label conflicts, reference safety.

Builds an ImageFolder-style dataset from real photos (``train/<class>/...``, ``test/<class>/...``)
with planted faults, runs imgdup the way the README's "Datasets for training" recipe does
(``--reference train -d test --labels folder``, default hash and threshold), and scores:

* leak precision and recall: a test file is a leak when it is a copy (any transform) of a train
  photo; imgdup flags it when it shares a between-sets cluster with train files. Recall is
  given for the expected transforms and, separately, for hard ones (flip, 90-degree rotation,
  20% crop), which a perceptual hash is not expected to survive;
* label-conflict recall: a photo filed under two classes (in train, or a leak filed under
  another class in test) must be in a cluster flagged ``label_conflict``;
* reference files removed: in the report (members of train marked ``remove``) and in a real
  ``--remove 1`` run on a copy (train files gone or changed afterwards); both must be 0.

Usage (from the repository root)::

    python -m benchmarks.accuracy.splits --workdir /tmp/imgdup-splits [--json scores.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .generate import TRANSFORMS, Transform, _encode, _load_upright, resolve_source, unique_photos

CLASSES = ("beagle", "collie", "husky", "poodle", "pug", "terrier")
EXPECTED = tuple(t for t in TRANSFORMS if not t.hard)
HARD = tuple(t for t in TRANSFORMS if t.hard)


def _variant(photo: Path, t: Transform, seed: str) -> tuple[bytes, str]:
    """Encoded bytes of ``photo`` under transform ``t`` and the file suffix."""
    if t.render is None:
        return photo.read_bytes(), photo.suffix.lower() or ".jpg"
    rendered = t.render(_load_upright(photo), random.Random(seed))
    return _encode(rendered), {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}[rendered.fmt]


def build(
    source: Path,
    out: Path,
    *,
    seed: int = 0,
    train: int = 500,
    test: int = 150,
    within: int = 30,
    train_conflicts: int = 10,
    leaks: int = 80,
    leak_conflicts: int = 20,
    hard_leaks: int = 12,
) -> dict[str, Any]:
    """Write ``out/train`` and ``out/test``; return the truth (one record per file)."""
    photos, _dropped = unique_photos(source)
    rng = random.Random(seed)
    rng.shuffle(photos)
    if train + test > len(photos):
        raise SystemExit(f"need {train + test} unique photos, {source} has {len(photos)}")
    train_photos, test_photos = photos[:train], photos[train : train + test]
    klass = {p: rng.choice(CLASSES) for p in train_photos + test_photos}
    files: list[dict[str, Any]] = []
    counter = iter(range(10**9))

    def put(split: str, cls: str, data: bytes, suffix: str, photo: Path, transform: str, hard: bool) -> None:
        rel = f"{split}/{cls}/{next(counter):06d}{suffix}"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
        files.append({"relpath": rel, "photo": photo.name, "split": split, "label": cls,
                      "transform": transform, "hard": hard})  # fmt: skip

    for p in train_photos:
        put("train", klass[p], p.read_bytes(), p.suffix.lower(), p, "original", False)
    for p in test_photos:
        put("test", klass[p], p.read_bytes(), p.suffix.lower(), p, "original", False)
    picks = rng.sample(train_photos, within + train_conflicts + leaks + hard_leaks)
    for i, p in enumerate(picks):
        if i < within:  # a second copy inside train, same class
            split, t, cls = "train", EXPECTED[i % len(EXPECTED)], klass[p]
        elif i < within + train_conflicts:  # the same photo filed under a second class of train
            split, t = "train", EXPECTED[i % len(EXPECTED)]
            cls = rng.choice([c for c in CLASSES if c != klass[p]])
        elif i < within + train_conflicts + leaks:  # a leak into test; the first ones under another class
            k = i - within - train_conflicts
            split, t = "test", EXPECTED[k % len(EXPECTED)]
            cls = rng.choice([c for c in CLASSES if c != klass[p]]) if k < leak_conflicts else klass[p]
        else:
            split, t, cls = "test", HARD[i % len(HARD)], klass[p]
        data, suffix = _variant(p, t, f"{seed}:{i}")
        put(split, cls, data, suffix, p, t.name, t.hard)
    return {"seed": seed, "files": files}


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _members(doc: dict[str, Any], key: str = "clusters") -> list[list[dict[str, Any]]]:
    return [c["members"] for c in doc[key]]


def score(truth: dict[str, Any], between_doc: dict[str, Any], all_doc: dict[str, Any], dataset: Path) -> dict[str, Any]:
    """Leak and label-conflict figures from the two reports (between-sets, and every cluster)."""
    root = os.path.realpath(dataset)
    files = {f["relpath"]: f for f in truth["files"]}
    train_photos = {f["photo"] for f in truth["files"] if f["split"] == "train"}
    leaks = {r for r, f in files.items() if f["split"] == "test" and f["photo"] in train_photos}
    leak_exp = {r for r in leaks if not files[r]["hard"]}

    def rel(m: dict[str, Any]) -> str:
        return os.path.relpath(m["path"], root).replace(os.sep, "/")

    flagged = {rel(m) for ms in _members(between_doc) for m in ms if not m["reference"]}
    labels_of: dict[str, set[str]] = {}
    for f in truth["files"]:
        labels_of.setdefault(f["photo"], set()).add(f["label"])
    conflicts = {p for p, ls in labels_of.items() if len(ls) > 1}
    found_conflicts: set[str] = set()
    detected: set[str] = set()  # conflicting photos whose differently-labelled copies share a cluster
    flagged_clusters = wrong_flags = 0
    for key in ("clusters", "reference_clusters"):
        for c in all_doc[key]:
            by_photo: dict[str, set[str]] = {}
            for m in c["members"]:
                by_photo.setdefault(files[rel(m)]["photo"], set()).add(files[rel(m)]["label"])
            detected |= {p for p, ls in by_photo.items() if p in conflicts and len(ls) > 1}
            if not c["label_conflict"]:
                continue
            flagged_clusters += 1
            photos = {files[rel(m)]["photo"] for m in c["members"]}
            hit = {p for p in photos if p in conflicts and len({files[rel(m)]["label"] for m in c["members"]
                                                              if files[rel(m)]["photo"] == p}) > 1}  # fmt: skip
            found_conflicts |= hit
            wrong_flags += not hit
    ref_removed = sum(
        m["reference"] and m["action"] == "remove"
        for doc in (between_doc, all_doc)
        for key in ("clusters", "reference_clusters")
        for ms in _members(doc, key)
        for m in ms
    )
    tp = flagged & leaks
    return {
        "files": len(files),
        "train_files": sum(f["split"] == "train" for f in files.values()),
        "test_files": sum(f["split"] == "test" for f in files.values()),
        "planted_leaks": {"expected": len(leak_exp), "hard": len(leaks - leak_exp)},
        "flagged_leaks": len(flagged),
        "leak_precision": len(tp) / len(flagged) if flagged else None,
        "leak_recall_expected": len(tp & leak_exp) / len(leak_exp) if leak_exp else None,
        "leak_recall_hard": len(tp - leak_exp) / len(leaks - leak_exp) if leaks - leak_exp else None,
        "missed_expected_leaks": sorted(files[r]["transform"] for r in leak_exp - flagged),
        "planted_conflicts": len(conflicts),
        # Of the conflicting copies imgdup matched, the share flagged; and end to end (a copy
        # the hash does not match cannot be flagged: bounded by the leak recall).
        "label_conflict_recall_matched": len(found_conflicts & detected) / len(detected) if detected else None,
        "label_conflict_recall_end_to_end": len(found_conflicts) / len(conflicts) if conflicts else None,
        "missed_conflicts_transforms": sorted(
            f["transform"]
            for f in files.values()
            if f["photo"] in conflicts - found_conflicts and f["transform"] != "original"
        ),
        "flagged_conflict_clusters": flagged_clusters,
        "wrongly_flagged_conflict_clusters": wrong_flags,
        "reference_files_marked_remove": ref_removed,
    }


def _imgdup(args: Sequence[str]) -> tuple[dict[str, Any], float]:
    cmd = [sys.executable, "-m", "imgdup", *args, "--format", "json", "--no-progress", "--no-cache"]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout), seconds


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def removal_run(
    dataset: Path, truth: dict[str, Any], workdir: Path, jobs: int, extra: Sequence[str] = ()
) -> dict[str, Any]:
    """A real ``--reference train -d test --between --labels folder --remove 1`` on a copy."""
    copy = workdir / "removal-copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(dataset, copy)
    before = {"train": _tree(copy / "train"), "test": _tree(copy / "test")}
    doc, _ = _imgdup(["--reference", str(copy / "train"), "-d", str(copy / "test"), "--between",
                      "--labels", "folder", "--remove", "1", "-j", str(jobs),
                      "--quarantine", str(workdir / "removal-quarantine"), *extra])  # fmt: skip
    after = {"train": _tree(copy / "train"), "test": _tree(copy / "test")}
    train_touched = sum(after["train"].get(k) != v for k, v in before["train"].items())
    removed_test = {f"test/{k}" for k in before["test"] if k not in after["test"]}
    train_photos = {f["photo"] for f in truth["files"] if f["split"] == "train"}
    leaks = {f["relpath"] for f in truth["files"] if f["split"] == "test" and f["photo"] in train_photos}
    shutil.rmtree(copy)
    shutil.rmtree(workdir / "removal-quarantine", ignore_errors=True)
    return {
        "reference_files_removed_or_changed": train_touched,
        "test_files_removed": len(removed_test),
        "removed_that_are_not_leaks": len(removed_test - leaks),
        "removed_per_report": len(doc.get("removal", {}).get("removed", [])),
        "left_for_review": doc["summary"]["to_review"],
        "label_conflicts_in_summary": doc["summary"]["label_conflicts"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, required=True, help="where the dataset is built (reused if present)")
    p.add_argument("--source", help="folder of real photos (default: dogs-1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train", type=int, default=500)
    p.add_argument("--test", type=int, default=150)
    p.add_argument("-j", "--jobs", type=int, default=2)
    p.add_argument("-t", "--threshold", type=int, help="imgdup's threshold (default: imgdup's default)")
    p.add_argument("--json", type=Path, help="also write the scores here")
    p.add_argument("--smoke", action="store_true", help="a tiny set (CI: the script runs; not a figure)")
    args = p.parse_args(argv)
    sizes: dict[str, int] = {"train": args.train, "test": args.test}
    if args.smoke:
        sizes = {"train": 40, "test": 10, "within": 4, "train_conflicts": 2, "leaks": 8, "leak_conflicts": 2,
                 "hard_leaks": 2}  # fmt: skip

    dataset = args.workdir / "dataset"
    truth_path = args.workdir / "truth.json"
    if not truth_path.exists():
        shutil.rmtree(dataset, ignore_errors=True)
        truth = build(resolve_source(args.source), dataset, seed=args.seed, **sizes)
        truth_path.write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
    truth = _load(truth_path)
    common = ["--reference", str(dataset / "train"), "-d", str(dataset / "test"), "--labels", "folder"]
    common += ["-t", str(args.threshold)] if args.threshold is not None else []
    between_doc, seconds = _imgdup([*common, "--between", "-j", str(args.jobs)])
    all_doc, _ = _imgdup([*common, "-j", str(args.jobs)])
    scores = score(truth, between_doc, all_doc, dataset)
    scores["scan_seconds"] = round(seconds, 2)
    scores["removal"] = removal_run(dataset, truth, args.workdir, args.jobs, common[6:])
    scores["threshold"] = between_doc["settings"]["threshold"]
    for k, v in scores.items():
        print(f"{k:<36} {v}")
    if args.json:
        args.json.write_text(json.dumps(scores, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
