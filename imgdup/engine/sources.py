"""Inputs of a cluster scan: local folders, object-store prefixes (fsspec) and file lists.

* a local folder is discovered exactly as the local engine does (:func:`imgdup.discover.discover`),
  and a local image file is taken as it is, as a listed file (:mod:`imgdup.filelist`);
* ``s3://bucket/prefix`` (or any fsspec URL whose package is installed: ``gs://`` with gcsfs)
  is listed recursively; objects with an image extension are candidates (no content sniffing:
  reading the first bytes of every object would cost a request each);
* a ``.parquet`` or ``.csv`` file is a file list: its ``path`` column (CSV: the column named
  ``path``, else the first) names local files or URLs.

Remote files are report-only: nothing is ever removed from an object store.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from collections.abc import Iterable

from ..discover import IMAGE_EXTENSIONS, discover, looks_like_image, normalise_roots
from ..errors import ImgdupError, UsageError
from ..filelist import entries_for_files, file_roots, merge_listed, real_file_paths, under_roots
from ..kernels import is_remote
from ..models import FileEntry, HashFailure, Skipped

LIST_SUFFIXES = (".parquet", ".csv")


def is_file_list(root: str) -> bool:
    return root.lower().endswith(LIST_SUFFIXES) and (is_remote(root) or os.path.isfile(root))


def check_local_roots(roots: Iterable[str | os.PathLike[str]]) -> None:
    """Refuse a local root the scan cannot take, as the local engine does (:class:`UsageError`).
    Cheap: the CLI calls it before it starts a cluster (a missing folder was refused only after
    ``-j`` workers had started, seconds later: QA pass 35)."""
    for raw in roots:
        root = os.fspath(raw)
        if not root or is_remote(root) or is_file_list(root) or os.path.isdir(root):
            continue  # an empty name: normalise_roots says why
        if not os.path.isfile(root):
            raise UsageError(f"not a directory or a file: {root}")
        if not looks_like_image(root):
            raise UsageError(
                f"{root} is neither a folder nor an image file; a list of image paths is a .csv or .parquet"
                " file with a path column"
            )


def collect(
    roots: Iterable[str | os.PathLike[str]],
) -> tuple[list[FileEntry], list[Skipped], list[HashFailure], tuple[str, ...], tuple[str, ...]]:
    """Entries (sorted by path, one per file), skipped paths, paths that could not be looked at
    (a folder that cannot be listed: failures, as in the local engine), the normalised roots, and
    the folders the summary counts (and finds leaks between): the roots, but with an image file
    given as a root, the named folder inside its folder is one of its own, as in the local engine."""
    local: list[str] = []
    entries: list[FileEntry] = []
    skipped: list[Skipped] = []
    failed: list[HashFailure] = []
    named: list[str] = []
    for raw in roots:
        root = os.fspath(raw)
        if is_file_list(root):
            listed = read_file_list(root)
            remote = [p for p in listed if is_remote(p)]
            found, skip = _remote_entries(remote)
            found_local, skip_local, failed_local = _local_entries([p for p in listed if not is_remote(p)])
            entries += found + found_local
            skipped += skip + skip_local
            failed += failed_local
            # The folders of its files are the roots, as for a local --files list: the list file
            # itself was one, and a removal ended in "Not a directory: list.csv".
            named += sorted({e.root for e in (*found, *found_local)}) or [root]
        elif is_remote(root):
            entries += list_remote(root)
            named.append(root.rstrip("/"))
        else:
            local.append(root)
    roots_out: tuple[str, ...] = ()
    set_roots: tuple[str, ...] = ()
    if local:
        check_local_roots(local)
        # The local engine's roots: real, and a folder inside another dropped (its files are the
        # outer folder's); kept, it made every cluster across the two a "leak" (QA pass 35).
        folders = normalise_roots([r for r in local if not os.path.isfile(r)])
        found, skip, fail = discover(folders) if folders else ([], [], [])
        # An image file given as a root is a listed file, under the named folder holding it, else
        # the folder of its own (pipeline.find_duplicates): it was refused as "not a directory".
        listed = real_file_paths([r for r in local if os.path.isfile(r)])
        set_roots = folders
        if listed:
            extras = file_roots(listed, list(folders))
            more, more_skip, more_fail = entries_for_files(listed, [*folders, *extras], scanned=folders)
            set_roots = (*folders, *extras)
            folders = normalise_roots(set_roots)
            found = under_roots(merge_listed(found, more), folders)
            skip += more_skip
            fail += more_fail
        entries += found
        skipped += skip
        failed += fail
        roots_out = folders
    if not entries and not named and not local:
        raise UsageError("no folder to scan")
    seen: set[str] = set()
    unique = []
    for e in sorted(entries, key=lambda e: e.path):
        if e.path not in seen:
            seen.add(e.path)
            unique.append(e)
    roots_found = tuple(sorted({*roots_out, *named}))
    sets_of = tuple(sorted({*set_roots, *named}))
    return unique, sorted(skipped, key=lambda s: s.path), sorted(failed, key=lambda f: f.path), roots_found, sets_of


def read_file_list(source: str) -> list[str]:
    """The paths a Parquet or CSV file list names."""
    import fsspec  # the dask extra brings it

    if source.lower().endswith(".parquet"):
        import pyarrow.parquet as pq  # the dask extra brings it

        with fsspec.open(source, "rb") as fh:
            table = pq.read_table(fh)
        column = "path" if "path" in table.column_names else table.column_names[0]
        return [str(p) for p in table.column(column).to_pylist() if p]
    with fsspec.open(source, "rt", newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return []
    header = rows[0]
    if "path" in header:
        col = header.index("path")
        rows = rows[1:]
    else:
        col = 0
    return [r[col] for r in rows if len(r) > col and r[col]]


def _local_entries(paths: list[str]) -> tuple[list[FileEntry], list[Skipped], list[HashFailure]]:
    """Listed local files, exactly as the local engine takes a file list (:mod:`imgdup.filelist`):
    regular image files only (links and special files skipped), one per inode, under the deepest
    folder holding them (one per top-level tree)."""
    if not paths:
        return [], [], []
    real = real_file_paths(paths)
    return entries_for_files(real, file_roots(real, []))


def _mtime_ns(info: dict[str, object]) -> int:
    for name in ("LastModified", "mtime", "updated", "created"):
        value = info.get(name)
        if isinstance(value, dt.datetime):
            return int(value.timestamp() * 1e9)
        if isinstance(value, (int, float)):
            return int(value * 1e9)
        if isinstance(value, str):
            try:
                return int(dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1e9)
            except ValueError:
                continue
    return 0


def _protocol(fs: object) -> str:
    proto = getattr(fs, "protocol", "file")
    return proto[0] if isinstance(proto, (tuple, list)) else str(proto)


def list_remote(url: str) -> list[FileEntry]:
    """Image objects under an fsspec URL, sorted; inode and device are 0 (there are none)."""
    import fsspec  # the dask extra brings it

    try:
        fs, base = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise UsageError(f"cannot open {url}: {exc}") from None
    proto = _protocol(fs)
    base = base.rstrip("/")
    root = f"{proto}://{base}"
    try:
        found = fs.find(base, detail=True)
    except Exception as exc:  # noqa: BLE001 - any store error (botocore's NoCredentialsError is none of ours)
        raise ImgdupError(f"cannot list {url}: {type(exc).__name__}: {exc}") from None
    out = []
    for path, info in sorted(found.items()):
        if info.get("type", "file") != "file" or os.path.splitext(path)[1].lower() not in IMAGE_EXTENSIONS:
            continue
        rel = path[len(base) :].lstrip("/")
        out.append(FileEntry(f"{proto}://{path}", root, rel, int(info.get("size") or 0), _mtime_ns(info), 0, 0))
    return out


def _remote_entries(urls: list[str]) -> tuple[list[FileEntry], list[Skipped]]:
    """Listed remote objects, with size and time from the store (the object's folder is its root);
    an object that is not there is skipped, as a listed local file that is gone is."""
    if not urls:
        return [], []
    import fsspec  # the dask extra brings it

    out, skipped = [], []
    for url in urls:
        try:
            fs, path = fsspec.core.url_to_fs(url)
            info = fs.info(path)
        except FileNotFoundError:
            skipped.append(Skipped(url, "listed but not found"))
            continue
        except Exception as exc:  # noqa: BLE001 - any store error (no credentials, no such bucket)
            raise ImgdupError(f"cannot read {url}: {type(exc).__name__}: {exc}") from None
        root = url.rsplit("/", 1)[0]
        out.append(FileEntry(url, root, url.rsplit("/", 1)[1], int(info.get("size") or 0), _mtime_ns(info), 0, 0))
    return out, skipped
