"""SQLite hash cache: a re-run decodes only new or changed files.

An entry is valid only for the same path, inode, size, mtime_ns and ctime_ns (the inode's change
time, which a rewrite in place moves even when it sets size and mtime back) *and* the same hash settings
(algorithm, size, decode mode, library versions, imgdup's hash version). Paths are stored as
their bytes (``os.fsencode``, a BLOB), so a name that is not valid UTF-8 is cached like any
other. Hashes are stored as hex text, so values of 64 bits and more round-trip (SQLite INTEGER
is signed 64-bit). WAL mode and a busy timeout let two runs share a cache.

The cache is an optimisation, never a reason to stop: a cache that cannot be opened or written
(read-only folder, full disk, locked, written by a newer imgdup) is left as it is, with one
warning, and the run goes on without it. Only a file *proven* not to be a usable imgdup cache
(not an SQLite file, another program's database, or damage SQLite itself reports) is set
aside (renamed ``*.corrupt-*``) and replaced, and only when it is imgdup's: its header says so,
or it sits at imgdup's default path; another program's file at a path the user gave is left
alone. The schema is created inside one write transaction, so a run never sees another's
half-made cache.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sqlite3
import struct
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from .models import FileEntry, HashFailure, ImageRecord, Quality, Traits
from .regions import PackedRegions

log = logging.getLogger(__name__)

_MEMOS = 16  # remembered searches and decisions (see HashCache.get_memo): 8 datasets' worth
SCHEMA = "imgdup.cache/15"  # 2: low_information and rotation variants; 3: quality; 4: byte paths, frames;
# 5: traits and sibling measures (keep policy); 6: regions (content box and sub-region hashes);
# 7: traits, measures and regions in plain columns (faster to read); 8: the content box's share;
# 9: ctime_ns in the key; 10: the file's format, mode and chroma spread (traits); 11: block signatures;
# 12: transparency and JPEG chroma subsampling (traits), repeated columns and rows, a thin border (measures)
# 13: whether the file embeds a colour profile (traits); 14: the EXIF orientation it is shown with (traits)
# 15: the pixel count of a multi-frame file's largest later frame (held to --max-pixels when read back)
_SCHEMA_PREFIX = "imgdup.cache/"
_APP_ID = 0x696D6764  # "imgd": marks the file as ours (PRAGMA application_id)

# SQLite's primary result codes that prove the file itself is unusable (as opposed to a
# read-only folder, a full disk or a lock, which say nothing about the file).
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26

_CREATE_FILES = """
    CREATE TABLE IF NOT EXISTS files (
        settings TEXT NOT NULL, path BLOB NOT NULL,
        inode INTEGER NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
        width INTEGER, height INTEGER, hash TEXT, digest TEXT, failure TEXT,
        low_information INTEGER, variants TEXT, frames INTEGER, frame_hashes TEXT, largest_frame INTEGER,
        regions BLOB, intact INTEGER, colourfulness REAL, jpeg_quality INTEGER, lossless INTEGER, thumb BLOB,
        content REAL, format TEXT, mode TEXT, chroma_spread REAL, transparent INTEGER, subsampling INTEGER, icc INTEGER,
        orientation INTEGER,
        upscaled INTEGER, pixels_sha256 TEXT, spectrum BLOB, lowest_fit INTEGER, complete INTEGER, blocks BLOB,
        repeats BLOB, border INTEGER,
        PRIMARY KEY (settings, path)
    ) WITHOUT ROWID
"""
_COLUMNS = 38
# A WITHOUT ROWID table keeps at most ~1/4 of a page of a row in place; the rest goes to overflow
# pages of the row's own. A file's row with region hashes is ~1.3 KB: with SQLite's 4 KB pages
# every row spilled (19,646 files: 92 MB; 29 MB with 16 KB pages). A file the keep policy
# measured adds its block signatures and repeat profile, ~6.5 KB (up to ~11 KB), over a 16 KB
# page's ~4 KB: each spilled into a 16 KB overflow page, mostly empty (QA pass 36). In 64 KB
# pages every row fits: 4,725 files, 2,007 measured, took 19.7 MB instead of 41.9 (30.6 with
# 4 KB pages), and a warm read of their rows 36-39 ms of CPU instead of 47-48 (the versions
# alone 13 ms instead of 19-23); 5,000 files none measured 8.1 MB instead of 7.3 (a 64 KB page
# a table), read as fast. A cache made before keeps its pages (fixed once written).
_PAGE_SIZE = 65536
# SQLite checkpoints the WAL every 1,000 pages by default: 64 MB of 64 KB pages. About 16 MiB,
# as with 16 KB pages (a cold run of those 4,725 files: a WAL of 18 MB, 29 MB without).
_WAL_BYTES = 16 << 20
# Plain columns and packed numbers, not JSON: a warm run reads every row (20,000 rows: 0.33 s,
# 0.52 s with JSON and hex lists; benchmarks/RESULTS.md).

# The columns a cached result is read from, in the order _from_row reads them.
_READ = (
    "path, inode, size, mtime_ns, ctime_ns, width, height, hash, digest, failure, low_information, variants, frames,"
    " frame_hashes, largest_frame, regions, intact, colourfulness, jpeg_quality, lossless, thumb, content, format,"
    " mode, chroma_spread, transparent, subsampling, icc, orientation, upscaled, pixels_sha256, spectrum, lowest_fit,"
    " complete, repeats, border"
)


def _columns(db: sqlite3.Connection) -> tuple[str, ...]:
    """The files table's columns, in order."""
    return tuple(r[1] for r in db.execute("PRAGMA table_info(files)"))


@functools.cache
def _files_columns() -> tuple[str, ...]:
    """The columns this imgdup's files table has (a cache is checked against them)."""
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        db.execute(_CREATE_FILES)
        return _columns(db)


# Paths per query in get_many: under SQLite's oldest limit on bound parameters (999).
_CHUNK = 900
_VERSION = "path, inode, size, mtime_ns, ctime_ns"  # what _same_version reads
_BLOB, _TEXT = (bytes, type(None)), (str, type(None))  # a column's types as a row may hold them


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction (taken at once, so two writers take turns), committed or rolled back.
    SQLite has already rolled back after some errors (a full disk): no second error then."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise


def _to_wal(db: sqlite3.Connection, *, within: float = 30.0) -> None:
    """Switch to WAL mode, waiting for another process that is creating or switching the same
    file: SQLite answers "database is locked" at once there, without calling its busy handler
    (seen 1 run in ~10 with two runs creating one new cache at the same moment)."""
    deadline = time.monotonic() + within
    pause = 0.01
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


def default_cache_path() -> str:
    """``$XDG_CACHE_HOME/imgdup/hashes.sqlite3`` (``~/.cache`` when unset or relative: the XDG spec
    calls a relative value invalid, and ``.cache`` put the cache inside the dataset scanned)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "imgdup", "hashes.sqlite3")


class _NotACache(Exception):
    """Proof that the file is not a usable imgdup cache: it may be set aside."""


class _Unusable(Exception):
    """The cache cannot be used now; the file must be left exactly as it is."""


def _proves_damage(exc: sqlite3.Error) -> bool:
    """True when SQLite says the file is not a database or is malformed (not a mere I/O error)."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(exc)  # pragma: no cover - Python 3.10
    return "file is not a database" in text or "malformed" in text  # pragma: no cover


def _carries_our_id(path: str) -> bool:
    """Whether the file's SQLite header holds imgdup's application id (offset 68, big-endian)."""
    try:
        with open(path, "rb") as fh:
            header = fh.read(72)
    except OSError:
        return False
    if len(header) < 72 or header[:16] != b"SQLite format 3\x00":
        return False
    return struct.unpack(">I", header[68:72])[0] == _APP_ID


def _key_version(settings_key: str) -> int | None:
    """The hash version a settings key names (``.../v15/...``; see ``hashing.settings_key``)."""
    part = next((p for p in settings_key.split("/") if p[:1] == "v" and p[1:].isdigit()), None)
    return int(part[1:]) if part else None


def _schema_version(value: str | None) -> int | None:
    if value and value.startswith(_SCHEMA_PREFIX) and value[len(_SCHEMA_PREFIX) :].isdigit():
        return int(value[len(_SCHEMA_PREFIX) :])
    return None


def _refuse_a_file_above(folder: str) -> None:
    """A cache's folder (or one above it) that is a file is named: creating the folder said only
    "(File exists)" (``--cache notes.txt/c.db``)."""
    while not os.path.lexists(folder):
        parent = os.path.dirname(folder)
        if parent == folder:
            return
        folder = parent
    if not os.path.isdir(folder):
        raise _Unusable(f"{folder} {'is a file, not a folder' if os.path.isfile(folder) else 'is not a folder'}")


class HashCache:
    """Look-ups and batched writes for one set of hash settings.

    Never raises for a cache problem: ``disabled`` says why the cache is not used this run
    (warned once); ``broken`` is set when the file proved damaged mid-run (set aside at close).
    """

    def __init__(self, path: str | os.PathLike[str], settings_key: str) -> None:
        self.path = os.fspath(path)
        self._where = os.path.abspath(self.path)  # what rows_apart opens, whatever the folder then
        self.settings_key = settings_key
        self.hits = 0
        self.broken: str | None = None  # damage proven mid-run: set aside at close
        self.disabled: str | None = None  # why this run goes on without the cache
        self._db: sqlite3.Connection | None = None
        try:
            folder = os.path.dirname(os.path.abspath(self.path))
            _refuse_a_file_above(folder)
            if os.path.isdir(self.path):  # it said "unable to open database file" (QA pass 33)
                suggested = os.path.join(self.path, "hashes.sqlite3")
                raise _Unusable(f"it is a folder: give the path of a file in it, such as {suggested}")
            os.makedirs(folder, exist_ok=True)
            try:
                self._db = self._open()
            except _NotACache as exc:
                self._replace_if_ours(str(exc))
            except sqlite3.Error as exc:
                if not _proves_damage(exc):
                    raise
                self._replace_if_ours(str(exc))
        except (_Unusable, sqlite3.Error, OSError) as exc:
            self._disable(exc)

    def _replace_if_ours(self, why: str) -> None:
        """Set an unusable file aside only when it is imgdup's: its header carries imgdup's
        application id (a damaged cache), or it sits at imgdup's own default path. Anything else
        at a path the user gave (another program's database, a typo in --cache) is left alone."""
        if _carries_our_id(self.path) or os.path.abspath(self.path) == os.path.abspath(default_cache_path()):
            self._replace(why)
        else:
            raise _Unusable(f"{why}; not an imgdup cache, so it is left as it is")

    def _replace(self, why: str) -> None:
        """Set a file proven unusable aside and start a new cache in its place."""
        aside = self._move_aside()
        log.warning("hash cache %s is unusable (%s); moved it to %s and started a new one", self.path, why, aside)
        self._db = self._open()

    def _move_aside(self) -> str:
        aside = f"{self.path}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.path + suffix):
                os.replace(self.path + suffix, aside + suffix)
        return aside

    def _disable(self, exc: BaseException) -> None:
        if self.disabled is None:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            log.warning("cannot use the hash cache %s (%s); continuing without it", self.path, why)
            self.disabled = why
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    def _failed(self, exc: sqlite3.Error) -> None:
        """A problem after opening: stop using the cache; only proven damage sets it aside."""
        if _proves_damage(exc) and self.broken is None:
            log.warning("hash cache %s is damaged (%s); continuing without it", self.path, exc)
            self.broken = str(exc)
        if not self.broken:
            self._disable(exc)

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            # Read only, before WAL mode (which rewrites the header): another program's database
            # must come out of here unchanged.
            tables = db.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
            if tables and db.execute("PRAGMA application_id").fetchone()[0] != _APP_ID:
                raise _NotACache("another program's SQLite database")
            if not tables:  # a new file: its page size is set before anything is written (then it is fixed)
                db.execute(f"PRAGMA page_size={_PAGE_SIZE}")
            _to_wal(db)
            page = db.execute("PRAGMA page_size").fetchone()[0]
            db.execute(f"PRAGMA wal_autocheckpoint={min(1000, _WAL_BYTES // page)}")
            db.execute("PRAGMA synchronous=NORMAL")
            # One write transaction checks and creates: two runs creating the same new cache
            # take turns, and the second finds the first one's complete schema.
            with _transaction(db):
                self._check_schema(db)
                self._drop_older_versions(db)
        except BaseException:
            db.close()
            raise
        return db

    def _drop_older_versions(self, db: sqlite3.Connection) -> None:
        """Delete the rows of an older hash version (the version is in every settings key: no
        imgdup that hashes this way reads them again), once, when the cache first meets this
        version: each upgrade that changed the hashes had left every file's old row behind
        (~4.6 KB a file with regions, in a cache of 4 KB pages). Other settings of this version, and rows of a newer
        version, stay. The freed pages are reused by later rows (the file does not shrink)."""
        current = _key_version(self.settings_key)
        row = db.execute("SELECT value FROM meta WHERE key='hash_version'").fetchone()
        if current is None or (row is not None and row[0].isdigit() and int(row[0]) >= current):
            return
        for (key,) in db.execute("SELECT DISTINCT settings FROM files").fetchall():
            version = _key_version(key)
            if version is not None and version < current:
                db.execute("DELETE FROM files WHERE settings=?", (key,))
        db.execute("INSERT OR REPLACE INTO meta VALUES ('hash_version', ?)", (str(current),))

    @staticmethod
    def _check_schema(db: sqlite3.Connection) -> None:
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and app_id != _APP_ID:
            raise _NotACache("another program's SQLite database")
        if not tables:
            db.execute(f"PRAGMA application_id={_APP_ID}")
        db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        # Remembered searches and decisions (see get_memo); older caches gain the table.
        db.execute("CREATE TABLE IF NOT EXISTS searches (key TEXT PRIMARY KEY, groups TEXT NOT NULL, used REAL)")
        row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        found = row[0] if row else None
        if found == SCHEMA and "files" in tables and _columns(db) == _files_columns():
            return
        version = _schema_version(found)
        current = _schema_version(SCHEMA)
        if found is not None and (version is None or current is None or version > current):
            raise _Unusable(
                f"written by a newer imgdup or another program (schema {found!r}, this imgdup reads {SCHEMA!r})"
            )
        # A new file, or an older imgdup's cache (or one whose columns are not this schema's: a
        # column was once added without a new version): its entries are recomputed, in place.
        db.execute("DROP TABLE IF EXISTS files")
        db.execute(_CREATE_FILES)
        db.execute("DELETE FROM searches")  # what was decided over the old records goes with them
        db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA,))

    def get(self, entry: FileEntry) -> ImageRecord | HashFailure | None:
        """The cached result for this exact file version, or None."""
        if self.broken or self._db is None:
            return None
        try:
            row = self._db.execute(
                f"SELECT {_READ} FROM files WHERE settings=? AND path=?",
                (self.settings_key, os.fsencode(entry.path)),
            ).fetchone()
        except sqlite3.Error as exc:
            self._failed(exc)
            return None
        return self._from_row(entry, _same_version(entry, row))

    def get_many(self, entries: Sequence[FileEntry]) -> list[ImageRecord | HashFailure | None]:
        """:meth:`get` for many entries, in their order: one query per chunk of paths, not one
        query per file (a warm run's cache reads cost a third as much; see bench_e2e.py)."""
        return self.decode_rows(entries, self.rows(entries))

    def rows(self, entries: Sequence[FileEntry]) -> list[Sequence[Any] | None]:
        """The stored rows of :meth:`get_many`, not yet decoded, in the entries' order: None where
        there is none, or one of another version of the file. The SQL part alone: the decoding
        (:meth:`decode_rows`) touches no database and may run while workers hash the misses."""
        if self.broken or self._db is None:
            return [None] * len(entries)
        try:
            return _select(self._db, self.settings_key, entries, _READ)
        except sqlite3.Error as exc:
            self._failed(exc)
            return [None] * len(entries)

    def stored(self, entries: Sequence[FileEntry]) -> list[bool]:
        """Whether a row of this exact version of each file is stored: the paths and versions
        alone (19,646 files: 0.10 s against 0.22 s for whole rows), which is all the workers
        wait for; :meth:`rows_apart` reads the rows while they hash."""
        if self.broken or self._db is None:
            return [False] * len(entries)
        try:
            return [row is not None for row in _select(self._db, self.settings_key, entries, _VERSION)]
        except sqlite3.Error as exc:
            self._failed(exc)
            return [False] * len(entries)

    def rows_apart(self, entries: Sequence[FileEntry]) -> list[Sequence[Any] | None]:
        """:meth:`rows` through a connection of its own, read only, for another thread while this
        one writes the new files' rows. A problem reading is no problem of the cache's: those
        rows are misses (their files are hashed), the cache is left as it is."""
        if self.broken or self._db is None:
            return [None] * len(entries)
        try:
            # "file://" and an absolute path: a path of two leading slashes (POSIX keeps them)
            # after "file:" alone would name a host, and SQLite would open nothing
            uri = f"file://{urllib.parse.quote(os.fsencode(self._where))}?mode=ro"
            db = sqlite3.connect(uri, uri=True, timeout=30.0)
        except sqlite3.Error as exc:
            log.debug("cannot read the hash cache from a second connection: %s", exc)
            return [None] * len(entries)
        try:
            return _select(db, self.settings_key, entries, _READ)
        except sqlite3.Error as exc:
            log.debug("cannot read the hash cache from a second connection: %s", exc)
            return [None] * len(entries)
        finally:
            db.close()

    def decode_rows(
        self, entries: Sequence[FileEntry], rows: Sequence[Sequence[Any] | None]
    ) -> list[ImageRecord | HashFailure | None]:
        """The results in :meth:`rows`' rows (None: no row, or one that cannot be read back)."""
        return [self._from_row(e, row) for e, row in zip(entries, rows)]

    def _from_row(self, entry: FileEntry, row: Sequence[Any] | None) -> ImageRecord | HashFailure | None:
        """The cached result in ``row``, a row of this exact file version (:func:`_same_version`),
        and count the hit; a row that cannot be read back is a miss (the file is hashed again)."""
        if row is None:
            return None
        (_, _inode, _size, _mtime_ns, _ctime_ns, width, height, hash_, digest, failure, low, variants, frames,
         frame_hashes, largest_frame, regions, intact, colour, jpeg_quality, lossless, thumb, content, fmt, mode,
         spread, transparent, subsampling, icc, orientation, upscaled, pixels_sha256, spectrum, fit, complete,
         repeats, border) = row  # fmt: skip
        if failure is not None:
            self.hits += 1
            return HashFailure(entry.path, failure)
        try:
            # A hand-edited or foreign row must not reach the policy with wrong types (a miss instead).
            if not (type(thumb) in _BLOB and type(repeats) in _BLOB and type(pixels_sha256) in _TEXT):
                raise TypeError("a column of the wrong type")
            quality = traits = None
            if pixels_sha256 is not None:
                fit = None if fit is None else int(fit)
                # blocks: read only when a decision is made again (get_blocks), not on every warm run
                quality = Quality(
                    bool(upscaled),
                    pixels_sha256,
                    _floats(spectrum),
                    fit,
                    bool(complete),
                    repeats=repeats or b"",
                    border=int(border or 0),
                )
            if intact is not None:
                jpeg_quality = None if jpeg_quality is None else int(jpeg_quality)
                spread = None if spread is None else float(spread)
                traits = Traits(
                    bool(intact), float(colour), jpeg_quality, bool(lossless), thumb or b"", float(content),
                    format=str(fmt or ""), mode=str(mode or ""), chroma_spread=spread, transparent=bool(transparent),
                    subsampling=None if subsampling is None else int(subsampling), icc=bool(icc),
                    orientation=int(orientation or 1),
                )  # fmt: skip
            record = ImageRecord(
                entry,
                int(width),
                int(height),
                int(hash_, 16),
                digest,
                tuple(int(v, 16) for v in variants.split(",")) if variants else (),
                bool(low),
                quality,
                frames,
                tuple(int(v, 16) for v in frame_hashes.split(",")) if frame_hashes else (),
                _unpack(regions),
                traits,
                int(largest_frame or 0),
            )
        except (ValueError, TypeError, IndexError, struct.error):
            return None
        self.hits += 1
        return record

    def get_blocks(self, records: Sequence[ImageRecord]) -> dict[str, bytes]:
        """The block signatures (:attr:`Quality.blocks`) stored for exactly these file versions, by
        path. :meth:`get_many` leaves them out: a warm run whose decisions are remembered never
        reads them (~4.4 KB a measured file; a warm 20,000-file run peaked 33 MiB higher)."""
        if self.broken or self._db is None:
            return {}
        want = {os.fsencode(r.path): r.entry for r in records}
        keys = list(want)
        out: dict[str, bytes] = {}
        try:
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                for path, inode, size, mtime_ns, ctime_ns, blocks in self._db.execute(
                    "SELECT path, inode, size, mtime_ns, ctime_ns, blocks FROM files"
                    f" WHERE settings=? AND path IN ({marks}) AND blocks IS NOT NULL",
                    (self.settings_key, *chunk),
                ):
                    e = want[path]
                    same = (inode, size, mtime_ns) == (e.inode, e.size, e.mtime_ns)
                    if same and (not e.ctime_ns or ctime_ns == e.ctime_ns) and type(blocks) is bytes:
                        out[e.path] = blocks
        except sqlite3.Error as exc:
            self._failed(exc)
            return {}
        return out

    def put_many(self, pairs: Iterable[tuple[FileEntry, ImageRecord | HashFailure]]) -> None:
        """Store results in one transaction; transient failures are not stored."""
        rows: list[tuple[object, ...]] = []
        for entry, res in pairs:
            key = (self.settings_key, os.fsencode(entry.path), entry.inode, entry.size, entry.mtime_ns, entry.ctime_ns)
            if isinstance(res, HashFailure):
                if not res.transient:
                    rows.append((*key, None, None, None, None, res.reason, *[None] * (_COLUMNS - 11)))
                continue
            q, t = res.quality, res.traits
            rows.append(
                (*key, res.width, res.height, format(res.hash, "x"), res.digest, None, int(res.low_information),
                 ",".join(format(v, "x") for v in res.variants), res.frames,
                 ",".join(format(v, "x") for v in res.frame_hashes), res.largest_frame, _pack(res.regions),
                 *((None,) * 13 if t is None else (int(t.intact), t.colourfulness, t.jpeg_quality, int(t.lossless),
                                                   t.thumb, t.content, t.format, t.mode, t.chroma_spread,
                                                   int(t.transparent), t.subsampling, int(t.icc), t.orientation)),
                 *((None,) * 8 if q is None else _quality_columns(q)))
            )  # fmt: skip
        self._write(f"INSERT OR REPLACE INTO files VALUES ({','.join('?' * _COLUMNS)})", rows)

    def put_quality(self, records: Iterable[ImageRecord]) -> None:
        """Store measured :class:`Quality` on the rows of exactly these file versions."""
        rows: list[tuple[object, ...]] = [
            (*_quality_columns(r.quality), self.settings_key, os.fsencode(r.path), r.entry.inode, r.entry.size,
             r.entry.mtime_ns)
            for r in records
            if r.quality is not None
        ]  # fmt: skip
        self._write(
            "UPDATE files SET upscaled=?, pixels_sha256=?, spectrum=?, lowest_fit=?, complete=?, blocks=?, repeats=?,"
            " border=? WHERE settings=? AND path=? AND inode=? AND size=? AND mtime_ns=?",
            rows,
        )

    def get_memo(self, key: str) -> Any:
        """The JSON value remembered under ``key`` (a search's groups, a scan's decisions: see
        :mod:`imgdup.memo`), or None. A re-run over unchanged files (scan, then ``--remove 1``)
        then skips that work."""
        if self.broken or self._db is None:
            return None
        try:
            row = self._db.execute("SELECT groups FROM searches WHERE key=?", (key,)).fetchone()
        except sqlite3.Error as exc:
            self._failed(exc)
            return None
        try:
            return json.loads(row[0]) if row else None
        except ValueError:
            return None

    def put_memo(self, key: str, value: object) -> None:
        """Remember ``value`` under ``key``; only the most recent _MEMOS are kept (each is one
        dataset's search or decisions, and a changed file makes a new key)."""
        rows: list[tuple[object, ...]] = [(key, json.dumps(value, separators=(",", ":")), time.time())]
        self._write("INSERT OR REPLACE INTO searches VALUES (?, ?, ?)", rows)
        self._write(
            "DELETE FROM searches WHERE key NOT IN (SELECT key FROM searches ORDER BY used DESC LIMIT ?)",
            [(_MEMOS,)],
        )

    def _write(self, sql: str, rows: list[tuple[object, ...]]) -> None:
        """One transaction; any failure here disables the cache instead of failing the run."""
        db = self._db
        if not rows or self.broken or db is None:
            return
        try:
            with _transaction(db):
                db.executemany(sql, rows)
        except sqlite3.Error as exc:
            self._failed(exc)

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        if self.broken:
            try:
                aside = self._move_aside()
                log.warning("moved the damaged hash cache %s to %s; the next run starts a new one", self.path, aside)
            except OSError as exc:
                log.warning("cannot move the damaged hash cache %s aside: %s", self.path, exc.strerror or exc)

    def __enter__(self) -> HashCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Undecodable(bytes):
    """A text cell whose bytes are not UTF-8 (bit rot in one row): its row is a miss."""


def _lenient_text(data: bytes) -> str | bytes:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return _Undecodable(data)


def _select(
    db: sqlite3.Connection, settings_key: str, entries: Sequence[FileEntry], columns: str
) -> list[Sequence[Any] | None]:
    """:func:`_select_rows`; where a text cell is not UTF-8, sqlite3 fails the whole read ("Could
    not decode to UTF-8 column"), and one damaged row turned the cache off for good (QA pass 33):
    read again with such cells marked, and their rows are misses (their files hashed again)."""
    try:
        return _select_rows(db, settings_key, entries, columns)
    except sqlite3.OperationalError as exc:
        if "decode" not in str(exc):
            raise
    saved = db.text_factory
    db.text_factory = _lenient_text
    try:
        rows = _select_rows(db, settings_key, entries, columns)
    finally:
        db.text_factory = saved
    return [None if row is not None and any(type(c) is _Undecodable for c in row) else row for row in rows]


def _select_rows(
    db: sqlite3.Connection, settings_key: str, entries: Sequence[FileEntry], columns: str
) -> list[Sequence[Any] | None]:
    """``columns`` (starting with the path and version columns) of the entries' rows, in their
    order, None where there is none or one of another version of the file.

    Read folder by folder (a range of the primary key, in order) rather than path by path:
    19,646 rows of one scanned tree took 0.41 s as ``path IN (...)`` lookups and 0.27 s as
    ranges, before any worker starts. A range that turns out to hold mostly other files (a
    cache of a larger tree, a few listed files of it) is given up for lookups."""
    rows: dict[bytes, Sequence[Any]] = {}
    keys = [os.fsencode(e.path) for e in entries]
    lookups = []
    for prefix, wanted in _folders(keys):
        if len(wanted) < _RANGE_AT_LEAST or not prefix:
            lookups += wanted
            continue
        need = set(wanted)
        for read, row in enumerate(
            db.execute(
                f"SELECT {columns} FROM files WHERE settings=? AND path >= ? AND path < ?",
                (settings_key, prefix, prefix[:-1] + b"0"),  # "0" follows "/": the folder's subtree
            )
        ):
            if row[0] in need:
                rows[row[0]] = row
            elif read > 2 * len(need) + _RANGE_AT_LEAST:
                lookups += [k for k in wanted if k not in rows]
                break
    for start in range(0, len(lookups), _CHUNK):
        chunk = lookups[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        for row in db.execute(
            f"SELECT {columns} FROM files WHERE settings=? AND path IN ({marks})", (settings_key, *chunk)
        ):
            rows[row[0]] = row
    return [_same_version(e, rows.get(k)) for e, k in zip(entries, keys)]


_RANGE_AT_LEAST = 64  # a folder with fewer files to read is looked up path by path


def _folders(keys: Sequence[bytes]) -> list[tuple[bytes, list[bytes]]]:
    """The keys (absolute paths) grouped by the outermost of their folders: (the folder's prefix,
    ending in ``/``, the keys under it), so that one range of the primary key reads each group;
    names with no folder come first, under the prefix ``b""``."""
    groups: dict[bytes, list[bytes]] = {}
    for k in keys:
        folder = os.path.dirname(k)
        groups.setdefault(folder.rstrip(b"/") + b"/" if folder else b"", []).append(k)
    out: list[tuple[bytes, list[bytes]]] = [(b"", groups.pop(b""))] if b"" in groups else []
    for prefix in sorted(groups):  # names that share a prefix sort together, the prefix first
        if out and prefix.startswith(out[-1][0]):
            out[-1][1].extend(groups[prefix])
        else:
            out.append((prefix, list(groups[prefix])))
    return out


def _same_version(entry: FileEntry, row: Sequence[Any] | None) -> Sequence[Any] | None:
    """``row`` if it was stored for this exact version of the file (inode, size, mtime and, when
    known, ctime), else None: what :meth:`HashCache._from_row` may read."""
    if row is None or row[1] != entry.inode or row[2] != entry.size or row[3] != entry.mtime_ns:
        return None
    if entry.ctime_ns and row[4] != entry.ctime_ns:  # 0: not known (an object store's file)
        return None
    return row


def _quality_columns(q: Quality) -> tuple[object, ...]:
    return (int(q.upscaled), q.pixels_sha256, struct.pack(f"<{len(q.spectrum)}d", *q.spectrum), q.lowest_fit,
            int(q.complete), q.blocks or None, q.repeats or None, q.border)  # fmt: skip


def _floats(blob: bytes | None) -> tuple[float, ...]:
    return struct.unpack(f"<{len(blob) // 8}d", blob) if blob else ()


def _pack(values: Sequence[int]) -> bytes:
    """Hash values as one blob: :class:`~imgdup.regions.PackedRegions` as a zero byte, its length
    and its two hash widths (in 8-byte words), then its buffer, which reads back without a
    conversion; other values as runs, each a byte giving the width of its values (in 8-byte
    words, never 0), a byte giving their count, then the values, big-endian."""
    if isinstance(values, PackedRegions):
        return bytes([0, values.length, values.coarse // 8, values.fine // 8]) + values.blob
    out = bytearray()
    start = 0
    while start < len(values):
        words = max(1, (values[start].bit_length() + 63) // 64)
        end = start
        while end < len(values) and end - start < 255 and max(1, (values[end].bit_length() + 63) // 64) <= words:
            end += 1
        out += bytes([words, end - start]) + b"".join(v.to_bytes(8 * words, "big") for v in values[start:end])
        start = end
    return bytes(out)


_from_bytes = int.from_bytes


def _unpack(blob: bytes | None) -> Sequence[int]:
    if blob and blob[0] == 0:  # packed regions (a ValueError when their length is not their layout's)
        if len(blob) < 4:
            raise ValueError("packed regions cut short")
        return PackedRegions(blob[4:], blob[1], 8 * blob[2], 8 * blob[3])
    values: list[int] = []
    at = 0
    while blob and at < len(blob):
        words, count = blob[at], blob[at + 1]
        end = at + 2 + 8 * words * count
        if not words or end > len(blob):
            raise ValueError("a run of hash values cut short")
        if words == 1:
            values += struct.unpack_from(f">{count}Q", blob, at + 2)
        else:  # fixed-size chunks of the run, each one int: a third cheaper than slicing each
            values += [_from_bytes(c, "big") for (c,) in struct.iter_unpack(f"{8 * words}s", blob[at + 2 : end])]
        at = end
    return tuple(values)
