"""The records' constructors (imgdup.models._direct_init): the same objects as dataclasses makes."""

from __future__ import annotations

import dataclasses

import pytest

from imgdup import models
from imgdup.models import Action, Cluster, FileEntry, ImageRecord, Member, Quality, Traits

FAST = (FileEntry, Quality, Traits, ImageRecord, Member, Cluster)


@pytest.mark.parametrize("cls", FAST)
def test_the_bound_constructor_takes_every_field_as_dataclasses_declares_it(cls: type) -> None:
    """Every field in order, by position or keyword, each default where none is given, and the
    instance frozen: what the generated ``__init__`` did (a default dropped, a field skipped or
    fields swapped would fail here)."""
    fields = dataclasses.fields(cls)
    values = {f.name: f"value-{k}" for k, f in enumerate(fields)}
    by_position = cls(*values.values())
    by_keyword = cls(**values)
    for f in fields:
        assert getattr(by_position, f.name) == values[f.name] == getattr(by_keyword, f.name)
    required = {f.name: values[f.name] for f in fields if f.default is dataclasses.MISSING}
    bare = cls(**required)
    for f in fields:
        assert getattr(bare, f.name) == (values[f.name] if f.name in required else f.default)
    with pytest.raises(dataclasses.FrozenInstanceError):
        by_keyword.__setattr__(fields[0].name, "other")
    with pytest.raises(TypeError):
        cls(*values.values(), "one too many")
    assert by_position == by_keyword and hash(by_position) == hash(by_keyword)


def test_a_record_built_so_reads_like_one_built_by_dataclasses() -> None:
    entry = FileEntry("/d/a.jpg", "/d", "a.jpg", 10, 20, 30, 40)
    record = ImageRecord(entry, 8, 6, 0xABC, "digest", regions=(1, 2))
    member = Member(record, 3, Action.REMOVE, label="cat")
    assert record.path == "/d/a.jpg" and record.pixels == 48 and record.traits is None
    assert dataclasses.replace(member, distance=4).distance == 4 and member.label == "cat"
    assert vars(record) == {**{f.name: getattr(record, f.name) for f in dataclasses.fields(record)}, "path": "/d/a.jpg"}


def test_classes_it_cannot_serve_are_refused() -> None:
    @dataclasses.dataclass(frozen=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclasses.dataclass(frozen=True)
    class Factory:
        a: list[int] = dataclasses.field(default_factory=list)

    for cls in (Checked, Factory):
        with pytest.raises(TypeError):
            models._direct_init(cls)
