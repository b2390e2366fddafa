"""File names in JSON and CSV, losslessly: names are bytes on POSIX, not always UTF-8.

Python holds a name that is not valid UTF-8 as a ``str`` in which every undecodable byte
0xNN is the lone surrogate U+DCNN (PEP 383, ``os.fsdecode``); ``os.fsencode`` gives the exact
bytes back. Such a string cannot be written as UTF-8 as it is, so every writer of JSON or CSV
goes through this module:

- JSON: the surrogate is written as the JSON escape ``\\udcNN``. The document stays valid
  UTF-8 JSON, every other name is unchanged, and ``os.fsencode(json.loads(text)[...])`` (or
  :func:`from_json_text`) gives the name's exact bytes.
- CSV: path cells are written with backslash escapes, ``\\xNN`` for an undecodable byte and
  ``\\\\`` for a backslash (:func:`to_csv_cell`, reversed by :func:`from_csv_cell`).
- Parquet (the Dask engine's tables): the same escapes, reversed by :func:`from_escaped`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
_CSV_ESCAPE = re.compile(r"\\(\\|x[0-9a-fA-F]{2})")


_EXPANDED = 4
"""Levels of a document laid out one item per line (report -> clusters -> cluster -> members);
anything deeper (a member) is written on one line. json.dumps with ``indent`` runs json's
pure-Python encoder over every value: 0.32 s for a 20,000-member report, 0.13-0.17 s this way
(the C encoder writes the one-line parts)."""


def _one_line_encoder() -> Callable[[Any], str]:
    """One value as compact JSON text, exactly as ``json.JSONEncoder(ensure_ascii=False).encode``
    writes it (a test pins it), for the ~40,000 calls a 20,000-member report makes.

    ``JSONEncoder.encode`` builds a new C encoder and a dict of the values it has seen (to
    refuse cycles) on every call: half of the time of a member's line. A report is a tree (no
    cycles), so one C encoder serves every call; where the C accelerator is missing (another
    Python), the plain encoder does."""
    plain = json.JSONEncoder(ensure_ascii=False)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return plain.encode
    encode = make(
        None, plain.default, json.encoder.encode_basestring, None, plain.key_separator, plain.item_separator,
        plain.sort_keys, plain.skipkeys, plain.allow_nan,
    )  # fmt: skip
    return lambda value: "".join(encode(value, 0))


_ENCODE = _one_line_encoder()


def _layout(value: Any, level: int, indent: int) -> str:
    if level >= _EXPANDED or not value or not isinstance(value, (dict, list)):
        return _ENCODE(value)
    pad, inner = " " * (indent * level), " " * (indent * (level + 1))
    if isinstance(value, dict):
        keys = [_ENCODE(k if isinstance(k, str) else json.dumps(k)) for k in value]
        items = [f"{inner}{k}: {_layout(v, level + 1, indent)}" for k, v in zip(keys, value.values())]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    items = [inner + _layout(v, level + 1, indent) for v in value]
    return "[\n" + ",\n".join(items) + f"\n{pad}]"


def to_json_text(doc: Any, *, indent: int | None = 2) -> str:
    """``doc`` as JSON text (readable unicode, final newline) that always encodes as UTF-8.

    With ``indent``, the outer levels are laid out one item per line and every deeper value
    (a cluster member, a file) stays on one line: as readable, and fast on large reports.
    """
    text = _ENCODE(doc) if indent is None else _layout(doc, 0, indent)
    try:  # no lone surrogate (UTF-8 takes none): nothing to escape (a 10 MB report: 1 ms, the search 45 ms)
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate can only stand inside a JSON string here: its \\u escape is the same value.
        text = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text + "\n"


def from_json_text(text: str) -> Any:
    """The document written by :func:`to_json_text`; names come back as ``os.fsdecode`` strings."""
    return json.loads(text)


def to_csv_cell(path: str) -> str:
    """A path as CSV text: ``\\`` doubled, each undecodable byte as ``\\xNN``."""
    out = path.replace("\\", "\\\\")
    return _SURROGATE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", out)


def from_csv_cell(cell: str) -> str:
    """The path (``os.fsdecode`` form) of a cell of imgdup's CSV report (:func:`to_csv_cell`,
    then a leading ``'`` added against spreadsheet formulas, which this drops)."""
    return from_escaped(cell[1:] if cell.startswith("'") else cell)


def from_escaped(cell: str) -> str:
    """The path (``os.fsdecode`` form) that :func:`to_csv_cell` escaped, as the Dask engine's
    Parquet tables hold it (with no formula guard: a leading ``'`` is part of the name)."""

    def unescape(m: re.Match[str]) -> str:
        code = m.group(1)
        if code == "\\":
            return "\\"
        byte = int(code[1:], 16)
        return chr(0xDC00 + byte) if byte >= 0x80 else chr(byte)

    return _CSV_ESCAPE.sub(unescape, cell)
