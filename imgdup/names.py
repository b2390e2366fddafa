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
"""

from __future__ import annotations

import json
import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
_CSV_ESCAPE = re.compile(r"\\(\\|x[0-9a-fA-F]{2})")


def to_json_text(doc: Any, *, indent: int | None = 2) -> str:
    """``doc`` as JSON text (readable unicode, final newline) that always encodes as UTF-8."""
    text = json.dumps(doc, indent=indent, ensure_ascii=False)
    # A lone surrogate can only stand inside a JSON string here: its \\u escape is the same value.
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n"


def from_json_text(text: str) -> Any:
    """The document written by :func:`to_json_text`; names come back as ``os.fsdecode`` strings."""
    return json.loads(text)


def to_csv_cell(path: str) -> str:
    """A path as CSV text: ``\\`` doubled, each undecodable byte as ``\\xNN``."""
    out = path.replace("\\", "\\\\")
    return _SURROGATE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", out)


def from_csv_cell(cell: str) -> str:
    """The path (``os.fsdecode`` form) of a cell written by :func:`to_csv_cell`."""

    def unescape(m: re.Match[str]) -> str:
        code = m.group(1)
        if code == "\\":
            return "\\"
        byte = int(code[1:], 16)
        return chr(0xDC00 + byte) if byte >= 0x80 else chr(byte)

    return _CSV_ESCAPE.sub(unescape, cell)
