"""Shared fixtures: a planted, deterministic image tree with known duplicate groups.

The pictures are generated with Pillow and numpy from fixed seeds. The session fixture
``planted_set`` builds the bytes once and checks its own premises (distances, EXIF
orientation, sizes, undecodable files), so a failing test elsewhere means imgdup is wrong,
not the fixture. ``PlantedSet.materialise`` writes the tree into a folder; tests that change
files get their own copy.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import itertools
import os
import random
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageOps

import imgdup
from imgdup.hashing import hash_image, load_for_hashing, normalise
from imgdup.models import HashSettings, ScanResult

# The threshold every planted-set test uses (inclusive, bits): the library default.
THRESHOLD = 4
SETTINGS = HashSettings()  # what find_duplicates uses by default: phash, 64 bits, draft decode
BASE_MTIME_NS = 1_600_000_000 * 10**9
JPEG_MAGIC = b"\xff\xd8\xff"

# Relative paths of the planted tree.
A_ORIG = "a/orig.jpg"
A_COPY = "a/orig_copy.jpg"
A_HALF = "a/half.jpg"
A_Q50 = "a/q50.jpg"
A_PNG = "a/reencoded.png"
A_ROT = "a/rotated_exif.jpg"
B_COPY = "sub/deeper/B0_COPY.JPG"  # exact copy; sorts before the original, so it is kept
B_ORIG = "sub/deeper/B1_ORIG.JPG"
B_LINK = "sub/deeper/B1_ORIG_hardlink.JPG"  # hard link to B_ORIG; '.' < '_' so B_ORIG is the entry
B_SMALL = "sub/deeper/B2_SMALL.JPG"
B_NOEXT = "sub/deeper/B3_noext"  # a JPEG without an extension: found by its magic bytes
CHAIN_X = "chain/x.jpg"
CHAIN_Y = "chain/y.jpg"
CHAIN_Z = "chain/z.jpg"
DISTRACTORS = ("distractors/d0.jpg", "distractors/d1.jpg", "distractors/d2.jpg", "distractors/d3.jpg")
BAD_CORRUPT = "bad/corrupt.jpg"
BAD_EMPTY = "bad/empty.jpg"
BAD_TEXT = "bad/notes.jpg"
SYMLINK = "links/orig_symlink.jpg"


DOGS1000 = Path(
    os.environ.get("IMGDUP_DOGS1000", Path(__file__).resolve().parents[2] / "shared" / "datasets" / "dogs-1000")
)


def unavailable(message: str) -> NoReturn:
    """Skip a test whose prerequisite is missing; under ``CI=true`` fail instead (CI must never
    pass by skipping)."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def need(module: str, extras: str) -> Any:
    """Import an optional module, or :func:`unavailable` naming the extras that install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        unavailable(f"{module} is not installed (pip install -e '.[{extras}]')")


@pytest.fixture(scope="session")
def dogs() -> Path:
    """The 1,000-photo sample beside the repository (``IMGDUP_DOGS1000`` overrides the path)."""
    if not DOGS1000.is_dir():
        unavailable(f"dogs-1000 dataset not found at {DOGS1000} (set IMGDUP_DOGS1000)")
    return DOGS1000


# Modules whose tests leave threads running for the rest of the session (a Dask LocalCluster's IO
# loop, fsspec's event loop): they run last. With a thread alive, imgdup starts its workers from a
# fork server (imgdup.parallel._context), where a test's monkeypatches do not reach, and a test
# whose patch must act in a worker passed without testing what it says (QA pass 26).
_LEAVE_THREADS = ("test_dask_engine.py", "test_dask_s3.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name in _LEAVE_THREADS)  # stable: each module's order kept


@pytest.fixture
def forked_workers() -> None:
    """For a test whose monkeypatches must reach imgdup's worker processes: those are forked
    from this process (and see its patches) only while it runs one thread; else the test fails
    here instead of passing without its patch."""
    others = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if others:
        pytest.fail(f"threads running ({', '.join(others)}): imgdup's workers would not be forked, nor patched")


def scan(root: Path, **options: object) -> ScanResult:
    """find_duplicates at the planted set's threshold, in one worker."""
    options.setdefault("threshold", THRESHOLD)
    options.setdefault("jobs", 1)
    return imgdup.find_duplicates([root], **options)  # type: ignore[arg-type]


def rel(root: Path, path: str) -> str:
    return os.path.relpath(path, os.path.realpath(root))


def picture(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A smooth random picture (sinusoid field + blurred ellipses + a little noise)."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    field = np.full((h, w, 3), 128.0)
    for _ in range(4):
        fx, fy = rng.uniform(0.5, 4, 2)
        phase = rng.uniform(0, 2 * np.pi, 3)
        amp = rng.uniform(30, 70, 3)
        field += amp * np.sin(2 * np.pi * (fx * x + fy * y)[..., None] + phase)
    img = Image.fromarray(np.clip(field, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(5):
        x0, y0 = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        draw.ellipse((x0, y0, x0 + int(rng.integers(30, 120)), y0 + int(rng.integers(30, 120))), fill=colour)
    img = img.filter(ImageFilter.GaussianBlur(2))
    noisy = np.asarray(img, dtype=np.float64) + rng.normal(0, 6, (h, w, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


def encode(img: Image.Image, fmt: str = "JPEG", **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def fixture_hash(data: bytes) -> int:
    """The fixture's own hash of encoded bytes, to check its premises.

    JPEGs go through imgdup's loader (the draft decode the pipeline uses, so chain distances
    are exactly what a scan sees); other formats through plain Pillow, so that the fixture
    does not depend on imgdup opening them.
    """
    if data.startswith(JPEG_MAGIC):
        img, _w, _h = load_for_hashing(io.BytesIO(data), SETTINGS)
    else:
        with Image.open(io.BytesIO(data)) as opened:
            img = normalise(ImageOps.exif_transpose(opened))
    return hash_image(img, SETTINGS)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class PlantedSet:
    """The planted tree (bytes and links) and what a scan at ``THRESHOLD`` must find in it."""

    files: dict[str, bytes]  # relpath -> content, in creation order
    hardlinks: dict[str, str]  # new name -> existing name
    symlinks: dict[str, str]  # link -> target (relative to the link's folder)
    clusters: dict[str, frozenset[str]]  # group -> member relpaths (primary names only)
    keepers: dict[str, str]  # group -> keeper under the default policy
    review: frozenset[str]  # members left for review under the default policy
    distractors: frozenset[str]
    failures: frozenset[str]
    hashes: dict[str, int]  # relpath -> fixture_hash, for every decodable file

    @property
    def expected_removed(self) -> frozenset[str]:
        """Every name (hard links included) that removal must move under the default policy."""
        names = set()
        for group, members in self.clusters.items():
            names |= members - {self.keepers[group]} - self.review
        names |= {link for link, target in self.hardlinks.items() if target in names}
        return frozenset(names)

    def materialise(self, dest: Path, *, reverse: bool = False, only: Iterable[str] | None = None) -> Path:
        """Write the tree under ``dest`` (created) and return it.

        ``reverse`` creates the files in the opposite order (for order-independence tests);
        ``only`` keeps the relpaths starting with one of the given prefixes. Every file gets a
        fixed, distinct mtime, so two copies give equal reports modulo the root.
        """
        prefixes = tuple(only) if only is not None else ("",)
        dest.mkdir(parents=True, exist_ok=True)
        names = [n for n in self.files if n.startswith(prefixes)]
        for name in reversed(names) if reverse else names:
            path = dest / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(self.files[name])
        for link, target in self.hardlinks.items():
            if link.startswith(prefixes) and target in names:
                os.link(dest / target, dest / link)
        for link, target in self.symlinks.items():
            if link.startswith(prefixes):
                (dest / link).parent.mkdir(parents=True, exist_ok=True)
                os.symlink(target, dest / link)
        for i, name in enumerate(sorted(names)):
            os.utime(dest / name, ns=(BASE_MTIME_NS + i * 10**9, BASE_MTIME_NS + i * 10**9))
        return dest


def _chain(seed: int) -> tuple[bytes, bytes, bytes]:
    """X, Y, Z: graded blends of one picture towards another with d(X,Y), d(Y,Z) <= t < d(X,Z).

    X is stored larger (most pixels), so the default policy keeps X and Z is beyond t of it. X
    carries sensor-like noise at its own size, as a larger original does: a plain resize of Y's
    picture would be an enlargement of it, which the policy does not keep.
    """
    for s in range(seed, seed + 20, 2):
        p, q = picture(s), picture(s + 1)
        larger = np.asarray(p.resize((400, 300), Image.Resampling.LANCZOS), dtype=np.float64)
        larger += np.random.default_rng(s).normal(0, 6, larger.shape)
        x = encode(Image.fromarray(np.clip(larger, 0, 255).astype(np.uint8), "RGB"), quality=92)
        hx = fixture_hash(x)
        steps = [(a, encode(Image.blend(p, q, a), quality=92)) for a in np.arange(0.02, 0.5, 0.02)]
        hashed = [(data, fixture_hash(data)) for _a, data in steps]
        for (y, hy), (z, hz) in itertools.combinations(hashed, 2):
            if hamming(hx, hy) <= THRESHOLD and hamming(hy, hz) <= THRESHOLD and hamming(hx, hz) >= THRESHOLD + 2:
                return x, y, z
    raise AssertionError("no chained X, Y, Z found")  # pragma: no cover - fixture premise


def build_planted_set() -> PlantedSet:
    files: dict[str, bytes] = {}

    # Group A: one picture in six guises.
    a = picture(1)
    files[A_ORIG] = encode(a, quality=92)
    files[A_COPY] = files[A_ORIG]
    files[A_HALF] = encode(a.resize((160, 120), Image.Resampling.LANCZOS), quality=92)
    files[A_Q50] = encode(a, quality=50)
    with Image.open(io.BytesIO(files[A_ORIG])) as decoded:  # the JPEG's own pixels, losslessly
        files[A_PNG] = encode(decoded.convert("RGB"), "PNG")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view": exif_transpose undoes the CCW turn stored below
    files[A_ROT] = encode(a.transpose(Image.Transpose.ROTATE_90), quality=92, exif=exif.tobytes())

    # Group B: a JPEG with an upper-case extension in a nested folder, plus copies.
    b = picture(2, (288, 224))
    b_orig = encode(b, quality=92)
    files[B_COPY] = b_orig
    files[B_ORIG] = b_orig
    files[B_SMALL] = encode(b.resize((144, 112), Image.Resampling.LANCZOS), quality=92)
    files[B_NOEXT] = encode(b, quality=80)

    files[CHAIN_X], files[CHAIN_Y], files[CHAIN_Z] = _chain(100)

    for i, name in enumerate(DISTRACTORS):
        files[name] = encode(picture(10 + i), quality=90)
    files["distractors/d4.png"] = encode(picture(20, (256, 256)), "PNG")

    # Undecodable files: a JPEG whose header is intact up to the scan but whose body is garbage,
    # an empty file, and a text file, all named .jpg.
    good = encode(picture(30), quality=90)
    sos = good.index(b"\xff\xda")
    files[BAD_CORRUPT] = good[: sos + 14] + random.Random(7).randbytes(6000)
    files[BAD_EMPTY] = b""
    files[BAD_TEXT] = b"shopping list: eggs, milk\n" * 20

    planted = PlantedSet(
        files=files,
        hardlinks={B_LINK: B_ORIG},
        symlinks={SYMLINK: "../a/orig.jpg"},
        clusters={
            "A": frozenset({A_ORIG, A_COPY, A_HALF, A_Q50, A_PNG, A_ROT}),
            "B": frozenset({B_COPY, B_ORIG, B_SMALL, B_NOEXT}),
            "chain": frozenset({CHAIN_X, CHAIN_Y, CHAIN_Z}),
        },
        keepers={"A": A_ORIG, "B": B_COPY, "chain": CHAIN_X},
        review=frozenset({CHAIN_Z}),
        distractors=frozenset((*DISTRACTORS, "distractors/d4.png")),
        failures=frozenset({BAD_CORRUPT, BAD_EMPTY, BAD_TEXT}),
        hashes={n: fixture_hash(d) for n, d in files.items() if not n.startswith("bad/")},
    )
    _check_premises(planted, a)
    return planted


def _check_premises(planted: PlantedSet, a: Image.Image) -> None:
    """The fixture's own claims; if one fails, the fixture is wrong, not imgdup."""
    files, h = planted.files, planted.hashes

    # The EXIF copy stores turned pixels but shows upright.
    with Image.open(io.BytesIO(files[A_ROT])) as rot:
        assert rot.size == (240, 320)
        assert rot.getexif().get(0x0112) == 6
        upright = ImageOps.exif_transpose(rot)
    assert upright.size == a.size
    assert np.abs(np.asarray(upright, dtype=np.float64) - np.asarray(a, dtype=np.float64)).mean() < 10

    # Every member is within t of its group's keeper (so it is removed, not reviewed) ...
    for group, members in planted.clusters.items():
        keeper = planted.keepers[group]
        for m in members - planted.review:
            assert hamming(h[m], h[keeper]) <= THRESHOLD, (group, m)
    # ... except the chain's far end, which is joined only through Y.
    assert hamming(h[CHAIN_X], h[CHAIN_Y]) <= THRESHOLD
    assert hamming(h[CHAIN_Y], h[CHAIN_Z]) <= THRESHOLD
    assert hamming(h[CHAIN_X], h[CHAIN_Z]) > THRESHOLD

    # Pictures of different groups, and distractors, are far apart (more than 2t).
    label = {n: g for g, ms in planted.clusters.items() for n in ms}
    label.update({d: d for d in planted.distractors})
    for m, n in itertools.combinations(sorted(label), 2):
        if label[m] != label[n]:
            assert hamming(h[m], h[n]) > 2 * THRESHOLD, (m, n, hamming(h[m], h[n]))

    # The default keepers win for the stated reasons.
    # A: the PNG holds the same pixels as orig.jpg in a bigger file, so the smaller JPEG wins
    # ("quality" rule), then path order picks orig.jpg over its byte copy orig_copy.jpg.
    full_a = [A_ORIG, A_COPY, A_Q50, A_ROT]
    assert all(len(files[A_PNG]) > len(files[n]) for n in full_a), "PNG must be the largest full-size A file"
    assert A_ORIG < A_COPY
    assert len(files[B_NOEXT]) < len(files[B_ORIG]) and B_COPY < B_ORIG
    assert sorted([B_ORIG, B_LINK])[0] == B_ORIG
    with Image.open(io.BytesIO(files[CHAIN_X])) as x, Image.open(io.BytesIO(files[CHAIN_Y])) as y:
        assert x.width * x.height > y.width * y.height
    # Shortest path in A is unique (for keep="shortest-path").
    lengths = sorted(len(n) for n in planted.clusters["A"])
    assert lengths[0] < lengths[1] and len(A_Q50) == lengths[0]

    # The broken files really are undecodable.
    for name in (BAD_CORRUPT, BAD_TEXT):
        with pytest.raises(Exception):  # noqa: B017 - any decoder error will do
            Image.open(io.BytesIO(files[name])).load()


@pytest.fixture(scope="session")
def planted_set() -> PlantedSet:
    return build_planted_set()


@pytest.fixture
def planted_root(planted_set: PlantedSet, tmp_path: Path) -> Path:
    """A fresh, writable copy of the planted tree (for tests that change files)."""
    return planted_set.materialise(tmp_path / "data")


@pytest.fixture(scope="session")
def shared_planted_root(planted_set: PlantedSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One read-only copy of the planted tree for tests that only scan it."""
    return planted_set.materialise(tmp_path_factory.mktemp("planted") / "data")


def tree_snapshot(root: Path) -> dict[str, tuple[str, int, str]]:
    """relpath -> (kind, size, sha256 or link target) of everything under ``root``."""
    out: dict[str, tuple[str, int, str]] = {}
    for folder, dirs, names in os.walk(root):
        for name in dirs + names:
            path = Path(folder) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = ("symlink", 0, os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir", 0, "")
            else:
                data = path.read_bytes()
                out[rel] = ("file", len(data), sha256(data))
    return out


@pytest.fixture
def snapshot() -> Callable[[Path], dict[str, tuple[str, int, str]]]:
    return tree_snapshot
