"""Kill real removals and undos at random moments, and check that no picture is lost.

Each trial copies a set of photos, each with two byte-identical copies (dogs-1000 photos, or
--dataset), starts the real command in its own process and SIGKILLs it at a random moment of
its run, then does what a user would do next, and checks the folder:

- ``permanent``: ``imgdup -d D -t 0 --remove 1 --permanent``, killed; run again. Every picture is
  still there, once (the second run removes every copy, a copy a kill set aside included), and
  no private ``.imgdup-unlink-*`` folder is left.
- ``move``: ``imgdup -d D -t 0 --remove 1``, killed; ``imgdup --undo`` of each manifest. The
  folder is as it was, byte for byte.
- ``undo``: a whole removal, then its undo, killed; the undo again. The folder is as it was.

The unit tests (tests/test_fsafe.py) kill at chosen points, one at a time; this finds what falls
between them (it found a duplicate that a kill set aside and the next run left in place). It is
not a timed benchmark and not part of the test suite (random moments cannot make a test that
fails the same way each time); run it after changing the removal code. Exit status 1 when any
trial failed.

    python benchmarks/soak_kills.py                     # 20 trials of each mode, 200 photos
    python benchmarks/soak_kills.py --modes permanent --trials 50
    python benchmarks/soak_kills.py --smoke             # one trial of each, killed after it ends (CI)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import dogs1000

MODES = ("permanent", "move", "undo")


def contents(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too) by relative path: its SHA-256."""
    out = {}
    for root, _dirs, names in os.walk(folder):
        for name in names:
            path = Path(root) / name
            out[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "imgdup", *args, "--no-progress", "-q"]


def killed(cmd: list[str], seconds: float) -> int:
    """Run ``cmd`` and SIGKILL it after ``seconds`` (if still running); its exit status."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
    return proc.wait()


def run(cmd: list[str]) -> None:
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, timeout=600)


def trial(mode: str, src: Path, work: Path, rng: random.Random, span: float) -> tuple[bool, int, str]:
    """One trial: (passed, exit status of the killed command, what was wrong)."""
    data, quarantine = work / "data", work / "q"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(src, data)
    before = contents(data)
    remove = ["-d", str(data), "-t", "0", "--remove", "1", "--no-cache", "--quarantine", str(quarantine)]
    at = rng.uniform(0.7 * span, 1.4 * span)
    if mode == "permanent":
        status = killed(command(*remove, "--permanent"), at)
        run(command(*remove, "--permanent"))
        after = contents(data)
        lost = set(before.values()) - set(after.values())
        if lost or len(after) != len(set(after.values())):
            return False, status, f"{len(lost)} pictures lost, {len(after)} files for {len(set(after.values()))}"
        return True, status, ""
    if mode == "move":
        status = killed(command(*remove), at)
    else:
        run(command(*remove))
        (manifest,) = quarantine.glob("*/manifest.json")
        status = killed(command("--undo", str(manifest)), at * 0.3)
    for manifest in sorted(quarantine.glob("*/manifest.json")):
        run(command("--undo", str(manifest)))
    after = contents(data)
    if after != before:
        return False, status, f"differs: {sorted(set(before) ^ set(after))[:5]}"
    return True, status, ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", type=Path, help="photos to copy (default: dogs-1000)")
    p.add_argument("--photos", type=int, default=200)
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="one trial of each mode, 5 photos, killed only after it ends")
    args = p.parse_args(argv)
    photos = args.dataset or dogs1000()
    names = sorted(n for n in os.listdir(photos) if n.lower().endswith((".jpg", ".jpeg", ".png")))
    names = names[: 5 if args.smoke else args.photos]
    rng = random.Random(args.seed)
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in names:
            for prefix in ("", "b_", "c_"):
                shutil.copyfile(photos / name, src / f"{prefix}{name}")
        # how long a whole removal takes here: the kills fall around its end, where the files move
        start = time.perf_counter()
        run(command("-d", str(src), "-t", "0", "--no-cache"))
        span = 600.0 if args.smoke else time.perf_counter() - start
        when = "no kill lands (smoke)" if args.smoke else f"a scan takes {span:.2f} s here, kills at 0.7-1.4 times that"
        print(f"{len(names)} photos x 3 copies; {when}", flush=True)
        for mode in args.modes.split(","):
            cut = 0
            for _ in range(1 if args.smoke else args.trials):
                ok, status, why = trial(mode, src, Path(tmp) / "work", rng, span)
                cut += status == -signal.SIGKILL
                if not ok:
                    failed += 1
                    print(f"  {mode}: FAILED ({why})", flush=True)
            print(f"  {mode}: {1 if args.smoke else args.trials} trials, {cut} killed before the end", flush=True)
    print("no picture lost" if not failed else f"{failed} trials FAILED")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
