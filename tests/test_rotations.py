"""--rotations matches rotated and mirrored copies, and only then."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageOps

import imgdup
from imgdup.hashing import DIHEDRAL, hash_image, settings_key, variant_hashes
from imgdup.models import HashSettings

from .synth import photo


def clustered_names(result: imgdup.ScanResult) -> list[set[str]]:
    return [{Path(m.record.path).name for m in c.members} for c in result.clusters]


def build(root: Path) -> None:
    img = photo(11)
    img.save(root / "original.jpg", quality=92)
    ImageOps.mirror(img).save(root / "flipped.jpg", quality=92)
    img.transpose(Image.Transpose.ROTATE_270).save(root / "rotated.jpg", quality=92)
    for seed in (12, 13, 14):
        photo(seed).save(root / f"other-{seed}.jpg", quality=92)
        photo(seed).transpose(Image.Transpose.ROTATE_90).save(root / f"other-{seed}-rot.jpg", quality=92)


def test_flip_and_rotation_match_only_with_rotations(tmp_path: Path) -> None:
    build(tmp_path)
    plain = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1)
    assert plain.clusters == ()
    rot = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1, rotations=True)
    groups = clustered_names(rot)
    assert {"original.jpg", "flipped.jpg", "rotated.jpg"} in groups
    for seed in (12, 13, 14):
        assert {f"other-{seed}.jpg", f"other-{seed}-rot.jpg"} in groups
    assert len(groups) == 4  # unrelated pictures stay apart
    (c,) = [c for c in rot.clusters if Path(c.keep.path).name in {"original.jpg", "flipped.jpg", "rotated.jpg"}]
    assert all(m.distance <= 8 for m in c.members)  # the distance is to the best orientation
    assert all(m.action is imgdup.Action.REMOVE for m in c.members[1:])
    assert imgdup.to_document(rot)["settings"]["rotations"] is True


def test_rotations_are_part_of_the_cache_key_and_stored_only_when_asked() -> None:
    assert settings_key(HashSettings()) != settings_key(HashSettings(rotations=True))
    assert HashSettings().rotations is False


def test_variants_only_with_rotations(tmp_path: Path) -> None:
    photo(5).save(tmp_path / "a.jpg")
    photo(5).save(tmp_path / "b.jpg")
    plain = imgdup.find_duplicates([tmp_path], jobs=1)
    assert all(r.variants == () for r in plain.records)
    rot = imgdup.find_duplicates([tmp_path], jobs=1, rotations=True)
    assert all(len(r.variants) == 7 for r in rot.records)


def test_cli_option(tmp_path: Path, capsys: object) -> None:
    from imgdup.cli import main

    build(tmp_path)
    assert main(["-d", str(tmp_path), "-t", "8", "--rotations", "--no-cache", "-j", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "4 clusters" in out and "rotations" in out


@pytest.mark.parametrize("hash_size", [4, 8, 16])
def test_variant_hashes_are_the_hashes_of_the_turned_images(hash_size: int) -> None:
    """The 7 variants hashed together are, bit for bit, each turned image hashed on its own."""
    settings = HashSettings(hash_size=hash_size, rotations=True)
    for seed, size in ((21, (125, 94)), (22, (70, 133))):
        grey = photo(seed, size).convert("L")
        want = tuple(hash_image(grey.transpose(t), settings) for t in DIHEDRAL)
        assert variant_hashes(grey, settings) == want
        assert len(set(want)) == len(DIHEDRAL)  # the test can tell the variants apart
