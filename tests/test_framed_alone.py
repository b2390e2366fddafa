"""A picture that is a small part of its image (a screenshot, a small photo on a wide canvas) is
linked through its picture, also when only one of the two images is framed (QA pass 12)."""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageOps

import imgdup

from .test_regions import edits, names


def test_a_framed_picture_is_not_linked_through_its_frame_alone(dogs: Path, tmp_path: Path) -> None:
    """Two different dogs-1000 photos at 30% of the width of the same viewer window: in one the
    content box holds the photo (9% of the image), in the other the peel stopped short at the
    photo's white edge in the white window (51%), so the rule for two framed images did not
    apply, and their plain hashes (the window) met at 8 bits with their finer hashes 64 of 256
    apart: one removed in favour of the other. The framed image's content box matches nothing
    of the other image."""
    for name in ("00000420", "00000427"):
        with Image.open(dogs / f"{name}.jpg") as img:
            edits.screenshot(img.convert("RGB"), random.Random(4), 0.3).save(tmp_path / f"{name}.jpg", quality=90)
    shares = sorted(r.traits.content for r in imgdup.find_duplicates([tmp_path], jobs=1).records if r.traits)
    assert shares[0] < 0.2 < shares[1]  # one framed, one not: what the test is about
    assert names(imgdup.find_duplicates([tmp_path], jobs=1)) == []


def test_a_framed_copy_still_joins_its_picture_and_its_frame(dogs: Path, tmp_path: Path) -> None:
    """What a framed image is linked through: a photo in a white frame 3/4 of its size on every
    side (16% of the image) joins the photo alone (its content box against the photo's plain
    hash) and a half-size copy of itself (box against box)."""
    with Image.open(dogs / "00000428.jpg") as img:
        photo = img.convert("RGB")
    canvas = ImageOps.expand(photo, border=(photo.width * 3 // 4, photo.height * 3 // 4), fill="white")
    canvas.save(tmp_path / "canvas.jpg", quality=90)
    small = canvas.resize((canvas.width // 2, canvas.height // 2), Image.Resampling.LANCZOS)
    small.save(tmp_path / "canvas-small.jpg", quality=70)
    photo.save(tmp_path / "photo.jpg", quality=85)
    found = imgdup.find_duplicates([tmp_path], jobs=1)
    framed = {Path(r.path).stem for r in found.records if r.traits is not None and r.traits.content < 0.2}
    assert framed == {"canvas", "canvas-small"}  # what the test is about
    assert names(found) == [{"canvas", "canvas-small", "photo"}]


def test_a_photo_whose_background_peels_further_once_darkened_is_still_found(dogs: Path, tmp_path: Path) -> None:
    """00000725 has a dark plain background: 51% of the photo is its content box, 17% of a copy
    darkened to x0.75 (framed, by the share). That box matches no box of the original, yet the
    whole images' finer hashes are 8 of 256 bits apart: one picture in one place, which the
    framed-picture rule must not split (the accuracy benchmark lost this copy to it)."""
    from PIL import ImageEnhance

    with Image.open(dogs / "00000725.jpg") as img:
        photo = img.convert("RGB")
    photo.save(tmp_path / "original.jpg", quality=95)
    ImageEnhance.Brightness(photo).enhance(0.75).save(tmp_path / "darker.jpg", quality=92)
    found = imgdup.find_duplicates([tmp_path], jobs=1)
    shares = {Path(r.path).stem: r.traits.content for r in found.records if r.traits is not None}
    assert shares["darker"] < 0.2 < shares["original"]  # what the test is about
    assert names(found) == [{"original", "darker"}]


def _small_on_canvas(dogs: Path, name: str, share: float, size: tuple[int, int] = (1000, 800)) -> Image.Image:
    """A dogs-1000 photo at ``share`` of the width, centred on a white canvas of ``size``."""
    with Image.open(dogs / f"{name}.jpg") as img:
        photo = img.convert("RGB")
    width = int(size[0] * share)
    photo = photo.resize((width, max(1, width * photo.height // photo.width)), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", size, "white")
    canvas.paste(photo, ((size[0] - photo.width) // 2, (size[1] - photo.height) // 2))
    return canvas


def test_different_small_pictures_centred_on_one_canvas_are_never_linked(dogs: Path, tmp_path: Path) -> None:
    """Photos at 5-11% of the width of a white canvas read as lines of text (shorter than
    regions._TEXT_SPAN), so the peel ran through them, found a blank box and fell back to the
    whole image: every such image had nearly the plain hash of the blank canvas, and different
    photos were linked at distance 0 (6 files in one cluster, 4 of them to be removed). Their
    hashes cannot tell them apart, so they are compared as exact copies only (low information);
    a byte-identical copy is still found."""
    names_ = ["00000420", "00000427", "00000428", "00000725", "00000300", "00000301"]
    for name, share in zip(names_, (0.05, 0.08, 0.10, 0.10, 0.11, 0.11)):
        _small_on_canvas(dogs, name, share).save(tmp_path / f"{name}.jpg", quality=92)
    (tmp_path / "copy.jpg").write_bytes((tmp_path / "00000428.jpg").read_bytes())
    found = imgdup.find_duplicates([tmp_path], jobs=1)
    assert names(found) == [{"00000428", "copy"}]
    assert {Path(r.path).stem for r in found.low_information} >= {"00000420", "00000427", "00000725"}


def test_a_photo_with_plain_margins_is_not_low_information(dogs: Path, tmp_path: Path) -> None:
    """The rule above is for pictures the peel cannot find; a photo at 40% of the canvas (its
    content box found) and a star-field-like spread of marks over the whole canvas stay searched."""
    _small_on_canvas(dogs, "00000428", 0.4).save(tmp_path / "framed.jpg", quality=92)
    rng = random.Random(7)
    stars = Image.new("L", (800, 600), 10)
    for _ in range(300):
        x, y = rng.randrange(800), rng.randrange(600)
        stars.paste(255, (x, y, x + 3, y + 3))
    stars.save(tmp_path / "stars.png")
    found = imgdup.find_duplicates([tmp_path], jobs=1)
    assert found.low_information == ()


def _product_shot(dogs: Path, name: str, share: float, side: int = 800) -> Image.Image:
    """The centre square of a dogs-1000 photo at ``share`` of the side of a white square page (a
    product shot on white)."""
    with Image.open(dogs / f"{name}.jpg") as img:
        photo = img.convert("RGB")
    m = min(photo.size)
    left, top = (photo.width - m) // 2, (photo.height - m) // 2
    size = int(side * share)
    square = photo.crop((left, top, left + m, top + m)).resize((size, size), Image.Resampling.LANCZOS)
    page = Image.new("RGB", (side, side), "white")
    page.paste(square, ((side - size) // 2, (side - size) // 2))
    return page


def test_different_product_shots_on_one_white_page_are_not_linked(dogs: Path, tmp_path: Path) -> None:
    """QA pass 17: different photos at 13% of a white page's side are framed (the peel stops at a
    third of each side: 9% of the page), and on the reduced decode the photo was 13 of 100 px in
    a 30 px box of page. Each pair below was linked at distance 0 (a corner box of one against the
    other's plain hash, their boxes' finer hashes within the margin) and one of each removed. The
    box is now peeled to the photo and hashed on a larger decode; copies of the same shots
    (JPEG q60, half size) are still found."""
    pairs = [("00000581", "00000243"), ("00000548", "00000705"), ("00000409", "00000494"), ("00000143", "00000180")]
    for a, b in pairs:
        for name in (a, b):
            _product_shot(dogs, name, 0.13).save(tmp_path / f"{name}.jpg", quality=90)
    found = imgdup.find_duplicates([tmp_path], jobs=1)
    assert all(r.traits is not None and r.traits.content < 0.2 for r in found.records)  # all framed
    assert names(found) == []
    for name in ("00000581", "00000548"):
        shot = _product_shot(dogs, name, 0.13)
        shot.save(tmp_path / f"{name}-q60.jpg", quality=60)
        shot.resize((400, 400), Image.Resampling.LANCZOS).save(tmp_path / f"{name}-half.jpg", quality=90)
    found = imgdup.find_duplicates([tmp_path], jobs=1)
    assert sorted(names(found), key=sorted) == [
        {"00000548", "00000548-q60", "00000548-half"},
        {"00000581", "00000581-q60", "00000581-half"},
    ]


def test_a_photo_at_a_quarter_of_a_white_page_joins_the_photo(dogs: Path, tmp_path: Path) -> None:
    """QA pass 17: a whole photo at 25% of a white page's width is framed, and its content box
    (the peel stops at 30% of each side) held page around the photo, so it agreed with no box of
    the photo itself and the framed-picture rule kept the two apart (0 of 20 such pairs found).
    Its box is now the photo, hashed on a decode where it is 64 px a side."""
    for name in ("00000500", "00000507"):
        _small_on_canvas(dogs, name, 0.25, (1000, 1000)).save(tmp_path / f"{name}-shot.jpg", quality=90)
        with Image.open(dogs / f"{name}.jpg") as img:
            img.convert("RGB").save(tmp_path / f"{name}.jpg", quality=90)
    found = imgdup.find_duplicates([tmp_path], jobs=1)
    framed = {Path(r.path).stem for r in found.records if r.traits is not None and r.traits.content < 0.2}
    assert framed == {"00000500-shot", "00000507-shot"}  # what the test is about
    assert sorted(names(found), key=sorted) == [{"00000500", "00000500-shot"}, {"00000507", "00000507-shot"}]
