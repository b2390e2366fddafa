"""Damaged files of every format read, in bulk: each one is a record or a one-line failure.

The files are seeded mutations of small valid files (bytes changed, inserted, deleted, cut off),
the kind of damage a disk, a transfer or a hostile uploader leaves. A run of 7,000 of them in
separate processes (2026-12-03, README's "Safety" names the formats) found no hang and no
crash; this fixed set keeps the contract that the hash pass and the keep policy's measuring
never raise, and that nothing reaches stderr from a decoder (libtiff printed its complaints
there, naming no file).
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from PIL import Image

from imgdup.hashing import hash_entry, quality_entry
from imgdup.models import HashFailure, HashSettings, ImageRecord

from .synth import photo
from .test_hashing import entry_for

SETTINGS = HashSettings(regions=True)


def _seeds() -> dict[str, bytes]:
    """One small valid file per format and variant the scan reads."""
    src = photo(7, (160, 120))
    frames = [src.convert("P"), src.rotate(10).convert("P")]
    saves: dict[str, tuple[Image.Image, str, dict[str, object]]] = {
        "a.jpg": (src, "JPEG", {"quality": 85}),
        "p.jpg": (src, "JPEG", {"quality": 85, "progressive": True}),
        "a.png": (src, "PNG", {}),
        "pal.png": (src.convert("P"), "PNG", {}),
        "a.gif": (frames[0], "GIF", {"save_all": True, "append_images": frames[1:], "duration": 50}),
        "a.webp": (src, "WEBP", {"quality": 80}),
        "anim.webp": (src, "WEBP", {"save_all": True, "append_images": [src.rotate(5)]}),
        "a.tif": (src, "TIFF", {"compression": "tiff_deflate"}),
        "a.bmp": (src, "BMP", {}),
        "a.ico": (src, "ICO", {}),
    }
    out = {}
    for name, (img, fmt, options) in saves.items():
        buf = io.BytesIO()
        img.save(buf, fmt, **options)
        out[name] = buf.getvalue()
    return out


def _mutate(data: bytes, rng: random.Random) -> bytes:
    d = bytearray(data)
    for _ in range(rng.choice([1, 1, 2, 4, 16])):
        if len(d) < 2:
            break
        op, i = rng.random(), rng.randrange(len(d))
        if op < 0.5:
            d[i] = rng.randrange(256)
        elif op < 0.65:
            d[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
        elif op < 0.8:
            del d[i : i + rng.randrange(1, 64)]
        elif op < 0.9:
            d[i : i + 2] = b"\xff\xff"  # a JPEG marker, a huge length
        else:
            d = d[: max(8, i)]  # cut off
    return bytes(d)


@pytest.mark.parametrize("seed", range(4))
def test_damaged_files_become_records_or_one_line_failures(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], seed: int
) -> None:
    rng = random.Random(seed)
    seeds = _seeds()
    failed = 0
    for k in range(100):
        name = rng.choice(sorted(seeds))
        path = tmp_path / f"{k:03d}-{name}"
        path.write_bytes(_mutate(seeds[name], rng))
        for work in (hash_entry, quality_entry):
            res = work(entry_for(path), SETTINGS)
            assert isinstance(res, (ImageRecord, HashFailure)), (path.name, res)
            if isinstance(res, HashFailure):
                failed += 1
                assert res.path == str(path) and res.reason.strip() and "\n" not in res.reason, res
                assert "Traceback" not in res.reason, res
    out, err = capfd.readouterr()
    assert (out, err) == ("", ""), err[-500:]  # nothing from a decoder's C code either
    assert failed > 20  # the mutations do damage most files: the test reads what it means to
