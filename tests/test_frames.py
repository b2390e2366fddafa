"""Multi-frame files (animated GIF/WebP/PNG, multi-page TIFF) are judged by all their frames."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from PIL import Image

import imgdup
from imgdup import hashing
from imgdup.hashing import hash_entry
from imgdup.models import Action, FileEntry, HashFailure, HashSettings, ImageRecord

from .synth import photo


def actions(result: imgdup.ScanResult) -> dict[str, str]:
    return {Path(m.record.path).name: m.action.value for c in result.clusters for m in c.members}


def scan(root: Path, **kw: object) -> imgdup.ScanResult:
    """Keep the first file in path order: the tests choose which file is the keeper."""
    return imgdup.find_duplicates([root], threshold=8, jobs=1, keep="path", **kw)  # type: ignore[arg-type]


def save_frames(path: Path, seeds: list[int], fmt: str, size: tuple[int, int] = (160, 120), **kw: object) -> None:
    first, *rest = [photo(s, size) for s in seeds]
    first.save(path, fmt, save_all=True, append_images=rest, **kw)


@pytest.mark.parametrize(("fmt", "ext"), [("GIF", "gif"), ("TIFF", "tiff"), ("WEBP", "webp"), ("PNG", "png")])
def test_same_first_frame_different_later_frames_is_never_removed(tmp_path: Path, fmt: str, ext: str) -> None:
    save_frames(tmp_path / f"a.{ext}", [1, 2, 3], fmt)
    save_frames(tmp_path / f"b.{ext}", [1, 2, 4], fmt)  # the third frame is another picture
    result = scan(tmp_path)
    assert actions(result) == {f"a.{ext}": "keep", f"b.{ext}": "review"}
    (record,) = [r for r in result.records if r.path.endswith(f"b.{ext}")]
    assert record.frames == 3 and len(record.frame_hashes) == 2


def test_files_that_differ_in_a_later_frame_are_not_called_identical(tmp_path: Path) -> None:
    """The keep policy's "identical pixels" compared first frames only: two GIFs differing in
    their third frame read "smallest of the files with identical pixels" (QA pass)."""
    save_frames(tmp_path / "a.gif", [1, 2, 3], "GIF")
    save_frames(tmp_path / "b.gif", [1, 2, 4], "GIF")
    (c,) = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1).clusters  # the default keep policy
    assert "identical pixels" not in c.keep_reason, c.keep_reason


def test_files_whose_frames_all_match_are_removed(tmp_path: Path) -> None:
    save_frames(tmp_path / "a.gif", [1, 2, 3], "GIF", duration=100)
    save_frames(tmp_path / "b.gif", [1, 2, 3], "GIF", duration=40, loop=0)  # other bytes, same frames
    assert (tmp_path / "a.gif").read_bytes() != (tmp_path / "b.gif").read_bytes()
    assert actions(scan(tmp_path)) == {"a.gif": "keep", "b.gif": "remove"}


def test_another_frame_count_or_a_still_first_frame_is_left_for_review(tmp_path: Path) -> None:
    save_frames(tmp_path / "a.gif", [1, 2], "GIF")
    save_frames(tmp_path / "b.gif", [1, 2, 3], "GIF")  # one more frame
    with Image.open(tmp_path / "a.gif") as gif:
        gif.convert("RGB").save(tmp_path / "c.png")  # the animation's first frame as a still
    assert actions(scan(tmp_path)) == {"a.gif": "keep", "b.gif": "review", "c.png": "review"}


def test_more_frames_than_the_cap_are_removed_only_as_byte_identical_copies(tmp_path: Path) -> None:
    cap = hashing.MAX_FRAMES
    seeds = list(range(cap + 1))
    save_frames(tmp_path / "a.gif", seeds, "GIF", size=(48, 36), duration=100)
    shutil.copyfile(tmp_path / "a.gif", tmp_path / "a-copy.gif")
    save_frames(tmp_path / "b.gif", seeds, "GIF", size=(48, 36), duration=40)  # same frames, other bytes
    result = scan(tmp_path)
    assert actions(result) == {"a-copy.gif": "keep", "a.gif": "remove", "b.gif": "review"}
    assert {len(r.frame_hashes) for r in result.records} == {cap - 1}
    assert {r.frames for r in result.records} == {cap + 1}


def test_frames_round_trip_through_the_cache(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    save_frames(root / "a.gif", [1, 2, 3], "GIF")
    save_frames(root / "b.gif", [1, 2, 4], "GIF")
    cache = tmp_path / "c.sqlite3"
    cold = scan(root, cache=cache)
    warm = scan(root, cache=cache)
    assert warm.summary.from_cache == 2
    assert [(r.frames, r.frame_hashes) for r in warm.records] == [(r.frames, r.frame_hashes) for r in cold.records]
    assert imgdup.to_document(warm) == imgdup.to_document(cold)


def test_a_later_page_over_the_pixel_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "pages.tiff"
    photo(1, (64, 48)).save(path, "TIFF", save_all=True, append_images=[photo(2, (640, 480))])
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 64 * 48 * 2)  # the first page passes, the second not
    st = path.stat()
    res = hash_entry(FileEntry(str(path), str(tmp_path), path.name, st.st_size, st.st_mtime_ns, st.st_ino, 0),
                     HashSettings())  # fmt: skip
    assert isinstance(res, HashFailure) and "decompression bomb" in res.reason


def test_a_later_page_over_the_pixel_limit_is_refused_with_its_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A later page over the limit was refused with no count ("raise the limit with --max-pixels
    N": the count was read out of Pillow's words only), and as a "decompression bomb" where a first
    page of its size is a "possible" one (QA pass 35). It reads as a first page does, with the count."""
    path = tmp_path / "pages.tiff"
    photo(1, (64, 48)).save(path, "TIFF", save_all=True, append_images=[photo(2, (80, 60))])
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4000)  # 3,072 pixels, then 4,800: the second page only
    st = path.stat()
    res = hash_entry(FileEntry(str(path), str(tmp_path), path.name, st.st_size, st.st_mtime_ns, st.st_ino, 0),
                     HashSettings())  # fmt: skip
    assert isinstance(res, HashFailure) and res.reason.startswith("refused: possible decompression bomb (")
    assert "4,800 pixels, over the limit of 4,000" in res.reason and "--max-pixels 4800 or more" in res.reason


def record(digest: str, frames: int, hashes: tuple[int, ...]) -> ImageRecord:
    return ImageRecord(FileEntry("/x", "/", "x", 1, 1, 1, 1), 10, 10, 0, digest, frames=frames, frame_hashes=hashes)


def test_frames_match_rule() -> None:
    from imgdup.frames import frames_match

    a = record("a", 3, (0b1111, 0))
    assert frames_match(a, record("b", 3, (0b0111, 0)), 1)
    assert not frames_match(a, record("b", 3, (0b0011, 0)), 1)  # a frame 2 bits away
    assert not frames_match(a, record("b", 2, (0b1111,)), 8)  # frame count
    assert not frames_match(a, record("b", 4, (0b1111, 0)), 8)  # not every frame was read
    assert frames_match(record("same", 500, ()), record("same", 500, ()), 0)  # byte-identical
    assert frames_match(record("a", 1, ()), record("b", 1, ()), 0)
    assert Action.REVIEW.value == "review"


def test_gif_bytes_decode_the_same_in_memory_and_on_disk(tmp_path: Path) -> None:
    """The frame hashes do not depend on how the bytes reach the decoder (premise of the cache)."""
    save_frames(tmp_path / "a.gif", [5, 6], "GIF")
    data = (tmp_path / "a.gif").read_bytes()
    from imgdup.hashing import other_frame_hashes

    assert other_frame_hashes(io.BytesIO(data), HashSettings(), 2) == other_frame_hashes(
        str(tmp_path / "a.gif"), HashSettings(), 2
    )


def save_after_blank(path: Path, blank: int, seeds: list[int], fmt: str, **kw: object) -> None:
    """A blank cover page (or a first frame of black before a fade-in), then the pictures."""
    pages = [photo(s, (160, 120)) for s in seeds]
    Image.new("RGB", (160, 120), (blank,) * 3).save(path, fmt, save_all=True, append_images=pages, **kw)


def test_a_blank_first_frame_does_not_make_the_file_low_information(tmp_path: Path) -> None:
    # Searched by the first frame that has information: a copy is found, and two different
    # scans behind the same blank cover are not grouped by their covers.
    save_after_blank(tmp_path / "a-scan.tiff", 255, [30, 31, 32], "TIFF", compression="tiff_lzw")
    save_after_blank(tmp_path / "b-scan-copy.tiff", 255, [30, 31, 32], "TIFF")
    save_after_blank(tmp_path / "c-other-scan.tiff", 255, [33, 34, 35], "TIFF")
    save_after_blank(tmp_path / "d-fade.gif", 0, [36, 37], "GIF", duration=100)
    save_after_blank(tmp_path / "e-fade.webp", 0, [36, 37], "WEBP", duration=100, lossless=True)
    save_after_blank(tmp_path / "f-other-fade.webp", 0, [38, 39], "WEBP", duration=100, lossless=True)
    Image.new("RGB", (160, 120), (255, 255, 255)).save(tmp_path / "g-blank-page.tiff")
    result = scan(tmp_path)
    assert {Path(r.path).name for r in result.low_information} == {"g-blank-page.tiff"}
    assert actions(result) == {
        "a-scan.tiff": "keep",
        "b-scan-copy.tiff": "remove",
        "d-fade.gif": "keep",
        "e-fade.webp": "remove",
    }


@pytest.mark.parametrize(("fmt", "ext"), [("PNG", "png"), ("GIF", "gif"), ("WEBP", "webp")])
def test_a_fade_in_from_black_keeps_the_colour_of_its_first_picture(tmp_path: Path, fmt: str, ext: str) -> None:
    """A file searched by its first frame with information is judged by that frame's colour and
    thumbnail too: an APNG opening on black was "grayscale", so a still of its first picture won
    "colour (another copy is grayscale)" and the animation and its copy were left for review
    (QA pass 13)."""
    save_after_blank(tmp_path / f"a-fade.{ext}", 0, [40, 41, 42], fmt, duration=100)
    save_after_blank(tmp_path / "b-fade-copy.webp", 0, [40, 41, 42], "WEBP", duration=100, lossless=True)
    photo(40, (160, 120)).save(tmp_path / "c-still.png")  # the first picture, alone
    result = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1)  # the default keep policy
    (fade,) = [r for r in result.records if r.path.endswith(f"a-fade.{ext}")]
    (still,) = [r for r in result.records if r.path.endswith("c-still.png")]
    assert fade.traits.colourfulness > still.traits.colourfulness / 2, (fade.traits, still.traits)
    assert fade.traits.thumb == still.traits.thumb or _thumb_gap(fade.traits.thumb, still.traits.thumb) < 8
    (cluster,) = result.clusters
    acts = actions(result)
    assert acts["c-still.png"] == "review", (acts, cluster.keep_reason)
    assert {acts[f"a-fade.{ext}"], acts["b-fade-copy.webp"]} == {"keep", "remove"}, (acts, cluster.keep_reason)


def _thumb_gap(a: bytes, b: bytes) -> float:
    """Mean absolute difference of two 16 x 16 grey thumbnails, in grey levels."""
    return sum(abs(x - y) for x, y in zip(a, b)) / max(len(a), 1)


@pytest.mark.parametrize(("fmt", "ext"), [("AVIF", "avif"), ("HEIF", "heic")])
def test_an_avif_animation_or_a_heif_collection_is_not_removed_as_a_copy_of_its_first_picture(
    tmp_path: Path, fmt: str, ext: str
) -> None:
    """AVIF sequences and HEIF files with several images were read by their first picture alone:
    a 4-picture file was removed as a duplicate of a still of its first one (QA pass 13)."""
    if fmt not in hashing.optional_formats():
        pytest.skip(f"{fmt} is not readable here")
    save_frames(tmp_path / f"a-anim.{ext}", [50, 51, 52, 53], fmt, duration=100, quality=90)
    save_frames(tmp_path / f"b-other.{ext}", [50, 54, 55, 56], fmt, duration=100, quality=90)  # other later frames
    photo(50, (160, 120)).save(tmp_path / "c-still.png")  # the first picture alone, lossless
    result = imgdup.find_duplicates([tmp_path], threshold=8, jobs=1)  # the default keep policy
    (anim,) = [r for r in result.records if r.path.endswith(f"a-anim.{ext}")]
    assert anim.frames == 4 and len(anim.frame_hashes) == 3
    acts = actions(result)
    assert "remove" not in acts.values(), acts
    assert acts["c-still.png"] == "review", acts


def _stereo(path: Path, seeds: tuple[int, int], preview: bool = False) -> None:
    """A two-picture MPO (Pillow marks the second one "Undefined", as a stereo camera's second
    view may be); ``preview``: its MP index calls the second one a large thumbnail instead."""
    first, second = photo(seeds[0], (200, 150)), photo(seeds[1], (200, 150))
    first.save(path, "MPO", save_all=True, append_images=[second], quality=90)
    if preview:
        with Image.open(path) as im:
            entry = im.mpinfo[0xB002][1]  # type: ignore[attr-defined]
        import struct

        data = path.read_bytes()
        undefined = struct.pack("<LLLHH", 0, entry["Size"], entry["DataOffset"], 0, 0)
        assert data.count(undefined) == 1
        path.write_bytes(data.replace(undefined, struct.pack("<LLLHH", 0x010001, *undefined[4:12:4], 0, 0)))


def test_a_stereo_mpo_is_not_removed_as_a_copy_of_its_first_view(tmp_path: Path) -> None:
    """An MPO's second view was not counted: a stereo pair was removed as "smallest of the files
    with identical pixels" beside a JPEG of its left view, and the right view was lost (QA pass 13)."""
    _stereo(tmp_path / "a-stereo.mpo", (70, 71))
    photo(70, (200, 150)).save(tmp_path / "b-left.jpg", quality=90)
    result = imgdup.find_duplicates([tmp_path], jobs=1)
    (stereo,) = [r for r in result.records if r.path.endswith("a-stereo.mpo")]
    assert stereo.frames == 2 and len(stereo.frame_hashes) == 1
    assert actions(result).get("a-stereo.mpo") != "remove", actions(result)


def test_an_mpo_preview_is_not_a_frame(tmp_path: Path) -> None:
    """A camera JPEG's large-thumbnail preview (an MPO to Pillow) is the same picture again, not a
    frame: such a file is still one picture, compared and removed like any JPEG."""
    _stereo(tmp_path / "a-camera.jpg", (72, 72), preview=True)
    with Image.open(tmp_path / "a-camera.jpg") as im:
        assert im.format == "MPO" and im.n_frames == 2
        assert im.mpinfo[0xB002][1]["Attribute"]["MPType"].startswith("Large Thumbnail")  # type: ignore[attr-defined]
    (record,) = imgdup.find_duplicates([tmp_path], jobs=1).records
    assert record.frames == 1 and record.frame_hashes == ()


def test_an_animation_declaring_more_frames_than_it_holds_says_so(tmp_path: Path) -> None:
    """An APNG whose header declares 1,000 frames but holds 3 failed with Pillow's bare "Truncated
    File Read", which reads as a cut file (QA pass 13): the reason names the frame that is missing
    and the count the header declares. The file still fails as a whole (never a keeper, never
    removed)."""
    import struct
    import zlib

    buf = io.BytesIO()
    save_frames(buf, [80, 81, 82], "PNG", duration=100)  # type: ignore[arg-type]
    data = bytearray(buf.getvalue())
    at = data.index(b"acTL")
    data[at + 4 : at + 8] = struct.pack(">I", 1000)
    data[at + 12 : at + 16] = struct.pack(">I", zlib.crc32(bytes(data[at : at + 12])) & 0xFFFFFFFF)
    (tmp_path / "a-anim.png").write_bytes(bytes(data))
    result = imgdup.find_duplicates([tmp_path], jobs=1)
    (failure,) = result.failures
    assert failure.path.endswith("a-anim.png")
    assert "frame 4 of the 1000 frames its header declares cannot be read" in failure.reason, failure.reason


def _icon(path: Path, big: int, small: list[int]) -> None:
    """An ICO whose 256 px entry is photo ``big`` and whose 16, 32, 48 px entries are the
    photos ``small`` (hand-made small icons: other pictures, not reductions of the big one)."""
    sizes = [16, 32, 48][: len(small)]
    others = [photo(seed, (side, side)) for seed, side in zip(small, sizes)]
    photo(big, (256, 256)).save(path, "ICO", sizes=[(s, s) for s in [*sizes, 256]], append_images=others)


def test_an_icon_is_not_removed_as_a_copy_of_its_largest_size(tmp_path: Path) -> None:
    """An ICO was read by its largest entry alone: two icons whose smaller sizes are other
    pictures were removed as "smallest of the files with identical pixels" beside a PNG of their
    256 px picture, and those pictures were lost (QA pass 36). Each size is a frame now."""
    _icon(tmp_path / "a-app.ico", 80, [81, 82, 83])
    _icon(tmp_path / "b-app-v2.ico", 80, [84, 85])
    photo(80, (256, 256)).save(tmp_path / "c-app-256.png")
    result = imgdup.find_duplicates([tmp_path], jobs=1)  # the default keep policy
    frames = {Path(r.path).name: (r.frames, len(r.frame_hashes)) for r in result.records}
    assert frames == {"a-app.ico": (4, 3), "b-app-v2.ico": (3, 2), "c-app-256.png": (1, 0)}
    acts = actions(result)
    assert "remove" not in acts.values(), acts


def test_icons_whose_sizes_all_match_are_removed_and_a_differing_size_is_not(tmp_path: Path) -> None:
    """Two icons of the same pictures are copies (the frame rule), one whose 16 px picture is
    another is left for review: every size is compared, not only the largest."""
    _icon(tmp_path / "a.ico", 86, [87, 88])
    (tmp_path / "b.ico").write_bytes((tmp_path / "a.ico").read_bytes() + b"\0")  # other bytes, same pictures
    _icon(tmp_path / "c.ico", 86, [89, 88])
    assert actions(scan(tmp_path)) == {"a.ico": "keep", "b.ico": "remove", "c.ico": "review"}
