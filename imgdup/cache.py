"""SQLite hash cache: a re-run decodes only new or changed files.

An entry is valid only for the same resolved path, inode, size and mtime_ns *and* the same
hash settings (algorithm, size, decode mode, library versions, imgdup's hash version). Hashes
are stored as hex text, so values of 64 bits and more round-trip (SQLite INTEGER is signed
64-bit). WAL mode and a busy timeout let two runs share a cache; a corrupt or foreign file is
set aside with a warning and a fresh cache is built.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable

from .models import FileEntry, HashFailure, ImageRecord, Quality, Traits

log = logging.getLogger(__name__)

SCHEMA = "imgdup.cache/4"  # 2: low_information and rotation variants; 3: quality; 4: traits, sibling measures
_APP_ID = 0x696D6764  # "imgd": marks the file as ours (PRAGMA application_id)


def default_cache_path() -> str:
    """``$XDG_CACHE_HOME/imgdup/hashes.sqlite3`` (``~/.cache`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "imgdup", "hashes.sqlite3")


class HashCache:
    """Look-ups and batched writes for one set of hash settings."""

    def __init__(self, path: str | os.PathLike[str], settings_key: str) -> None:
        self.path = os.fspath(path)
        self.settings_key = settings_key
        self.hits = 0
        self.broken: str | None = None  # set when the file turns out damaged mid-run
        parent = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(parent, exist_ok=True)
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            self._set_aside(str(exc))
            self._db = self._open()

    def _set_aside(self, why: str) -> None:
        aside = f"{self.path}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        log.warning("hash cache %s is unusable (%s); moved it to %s and started a new one", self.path, why, aside)
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.path + suffix):
                os.replace(self.path + suffix, aside + suffix)

    def _damaged(self, exc: sqlite3.DatabaseError) -> None:
        """Damage found after opening: stop using the file for this run, set it aside at close."""
        if self.broken is None:
            log.warning("hash cache %s is damaged (%s); continuing without it", self.path, exc)
            self.broken = str(exc)

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            app_id = db.execute("PRAGMA application_id").fetchone()[0]
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if tables and app_id != _APP_ID:
                raise sqlite3.DatabaseError("not an imgdup cache")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            if not tables:
                db.executescript(
                    f"""
                    PRAGMA application_id={_APP_ID};
                    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                    INSERT INTO meta VALUES ('schema', '{SCHEMA}');
                    CREATE TABLE files (
                        settings TEXT NOT NULL, path TEXT NOT NULL,
                        inode INTEGER NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
                        width INTEGER, height INTEGER, hash TEXT, digest TEXT, failure TEXT,
                        low_information INTEGER, variants TEXT, upscaled INTEGER, pixels_sha256 TEXT,
                        traits TEXT, measures TEXT,
                        PRIMARY KEY (settings, path)
                    ) WITHOUT ROWID;
                    """
                )
            schema = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if schema is None or schema[0] != SCHEMA:
                raise sqlite3.DatabaseError(f"cache schema {schema and schema[0]!r}, expected {SCHEMA!r}")
        except Exception:
            db.close()
            raise
        return db

    def get(self, entry: FileEntry) -> ImageRecord | HashFailure | None:
        """The cached result for this exact file version, or None."""
        if self.broken:
            return None
        try:
            row = self._db.execute(
                "SELECT inode, size, mtime_ns, width, height, hash, digest, failure, low_information, variants,"
                " upscaled, pixels_sha256, traits, measures FROM files WHERE settings=? AND path=?",
                (self.settings_key, entry.path),
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            self._damaged(exc)
            return None
        if row is None or tuple(row[:3]) != (entry.inode, entry.size, entry.mtime_ns):
            return None
        self.hits += 1
        if row[7] is not None:
            return HashFailure(entry.path, row[7])
        return ImageRecord(
            entry=entry,
            width=row[3],
            height=row[4],
            hash=int(row[5], 16),
            digest=row[6],
            low_information=bool(row[8]),
            variants=tuple(int(v, 16) for v in row[9].split(",") if v),
            quality=None if row[11] is None else _quality(bool(row[10]), row[11], row[13]),
            traits=None if row[12] is None else _traits(row[12]),
        )

    def put_many(self, pairs: Iterable[tuple[FileEntry, ImageRecord | HashFailure]]) -> None:
        """Store results in one transaction; transient failures are not stored."""
        rows: list[tuple[object, ...]] = []
        for entry, res in pairs:
            key = (self.settings_key, entry.path, entry.inode, entry.size, entry.mtime_ns)
            if isinstance(res, HashFailure):
                if not res.transient:
                    rows.append((*key, None, None, None, None, res.reason, None, None, None, None, None, None))
                continue
            variants = ",".join(format(v, "x") for v in res.variants)
            q = res.quality
            rows.append(
                (*key, res.width, res.height, format(res.hash, "x"), res.digest, None, int(res.low_information),
                 variants, None if q is None else int(q.upscaled), None if q is None else q.pixels_sha256,
                 None if res.traits is None else _traits_json(res.traits), None if q is None else _measures_json(q))
            )  # fmt: skip
        self._write("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)

    def put_quality(self, records: Iterable[ImageRecord]) -> None:
        """Store measured :class:`Quality` on the rows of exactly these file versions."""
        rows: list[tuple[object, ...]] = [
            (int(r.quality.upscaled), r.quality.pixels_sha256, _measures_json(r.quality), self.settings_key, r.path,
             r.entry.inode, r.entry.size, r.entry.mtime_ns)
            for r in records
            if r.quality is not None
        ]  # fmt: skip
        self._write(
            "UPDATE files SET upscaled=?, pixels_sha256=?, measures=?"
            " WHERE settings=? AND path=? AND inode=? AND size=? AND mtime_ns=?",
            rows,
        )

    def _write(self, sql: str, rows: list[tuple[object, ...]]) -> None:
        """One transaction; damage found here disables the cache instead of failing the run."""
        if not rows or self.broken:
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(sql, rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            self._damaged(exc)

    def close(self) -> None:
        self._db.close()
        if self.broken:
            self._set_aside(self.broken)

    def __enter__(self) -> HashCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _traits_json(t: Traits) -> str:
    return json.dumps([int(t.intact), t.colourfulness, t.jpeg_quality, int(t.lossless), t.thumb.hex()])


def _traits(text: str) -> Traits | None:
    try:
        intact, colour, jpeg_quality, lossless, thumb = json.loads(text)
        return Traits(bool(intact), float(colour), jpeg_quality, bool(lossless), bytes.fromhex(thumb))
    except (ValueError, TypeError):
        return None  # unreadable: unknown, as for a record from before traits


def _measures_json(q: Quality) -> str:
    return json.dumps([list(q.spectrum), q.lowest_fit])


def _quality(upscaled: bool, pixels_sha256: str, measures: str | None) -> Quality:
    try:
        spectrum, lowest_fit = json.loads(measures) if measures else ((), None)
        return Quality(upscaled, pixels_sha256, tuple(float(x) for x in spectrum), lowest_fit)
    except (ValueError, TypeError):
        return Quality(upscaled, pixels_sha256)
