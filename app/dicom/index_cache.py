"""Persistent cache of indexed headers, so reopening a study skips header parsing.

One SQLite file in the user data dir (``<data dir>/cache/dicom-index.sqlite3``, created 0600 in a
0700 folder: it holds header values such as patient names). An entry is used only when the file's
key still matches: resolved path (+ zip member), size, mtime_ns, ctime_ns and inode; a changed or
replaced file is read again. Files changed in the last SETTLE_SECONDS are not stored (timestamp
granularity). A damaged cache is discarded, never trusted. Logs neither paths nor header values.
Must not import Qt or pydicom.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, NamedTuple

from app.dicom.model import FileRef, SliceInfo
from app.paths import user_data_dir

log = logging.getLogger("app.dicom.index_cache")
SETTLE_SECONDS = 2.0
MAX_ENTRIES = 100_000
"""About 100 MB at most; the oldest entries go first."""
_CHUNK = 500
_FIELDS = tuple(f.name for f in dataclasses.fields(SliceInfo) if f.name != "ref")
_SCHEMA = "headers-v1:" + hashlib.sha256(",".join(_FIELDS).encode()).hexdigest()[:16]
"""Changes whenever SliceInfo changes, so an old cache is cleared instead of misread."""


def default_cache_path() -> Path:
    return user_data_dir() / "cache" / "dicom-index.sqlite3"


class FileKey(NamedTuple):
    """Identifies one version of one file: a cached entry is used only for an equal key."""

    path: str
    member: str
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int


class Entry(NamedTuple):
    """What reading one file's header gave: its images and series text, or why it is unusable."""

    slices: list[SliceInfo]
    meta: dict[str, str]
    identifiers: list[str]
    error: str | None = None


class KeyMaker:
    """Builds FileKeys, resolving each folder only once (one stat per file otherwise)."""

    def __init__(self) -> None:
        self._dirs: dict[str, str] = {}
        self._archives: dict[str, os.stat_result | None] = {}

    def _resolved(self, path: str) -> str:
        folder, name = os.path.split(path)
        real = self._dirs.get(folder)
        if real is None:
            real = self._dirs[folder] = os.path.realpath(folder or ".")
        return os.path.join(real, name)

    def key(self, ref: FileRef) -> FileKey | None:
        """None when the file cannot be stat'ed (it is then read, and reported, uncached)."""
        try:
            if ref.member is None:
                st = os.stat(ref.path)
            else:
                if ref.path not in self._archives:
                    self._archives[ref.path] = os.stat(ref.path)
                st = self._archives[ref.path]  # type: ignore[assignment]
        except OSError:
            return None
        return FileKey(
            self._resolved(ref.path),
            ref.member or "",
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
            st.st_ino,
        )


def settled(key: FileKey, now_ns: int | None = None) -> bool:
    """True when the file has not changed for SETTLE_SECONDS (safe to cache by timestamps)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    return now_ns - max(key.mtime_ns, key.ctime_ns) >= SETTLE_SECONDS * 1e9


def _encode(entry: Entry) -> str:
    if entry.error is not None:
        return json.dumps({"error": entry.error})
    slices = [[getattr(item, name) for name in _FIELDS] for item in entry.slices]
    return json.dumps({"slices": slices, "meta": entry.meta, "ids": entry.identifiers})


def _decode(payload: str, ref: FileRef) -> Entry:
    data: dict[str, Any] = json.loads(payload)
    if "error" in data:
        return Entry([], {}, [], str(data["error"]))
    slices = []
    for values in data["slices"]:
        pairs = zip(_FIELDS, values, strict=True)  # ValueError for a wrong number of fields
        fields = {n: tuple(v) if isinstance(v, list) else v for n, v in pairs}
        slices.append(SliceInfo(ref=ref, **fields))
    meta = {str(k): str(v) for k, v in data["meta"].items()}
    return Entry(slices, meta, [str(i) for i in data["ids"]])


class IndexCache:
    """Lookups and stores for one indexing run; every failure degrades to 'not cached'."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_cache_path()
        self._db: sqlite3.Connection | None = None
        self._failed = False

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o600)
        db = sqlite3.connect(self.path, timeout=1.0, check_same_thread=False)
        try:
            db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)")
            row = db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
            if row is None or row[0] != _SCHEMA:
                with db:
                    db.execute("DROP TABLE IF EXISTS headers")
                    db.execute(
                        "CREATE TABLE headers (path TEXT, member TEXT, size INTEGER, "
                        "mtime_ns INTEGER, ctime_ns INTEGER, inode INTEGER, payload TEXT, "
                        "stored REAL, PRIMARY KEY (path, member)) WITHOUT ROWID"
                    )
                    db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (_SCHEMA,))
        except BaseException:
            db.close()
            raise
        return db

    def _open(self) -> sqlite3.Connection | None:
        if self._db is not None or self._failed:
            return self._db
        try:
            self._db = self._connect()
        except sqlite3.OperationalError as exc:  # locked or read-only: use it another time
            log.warning("index cache unavailable (%s); headers are read uncached", exc)
            self._failed = True
        except sqlite3.DatabaseError:
            log.warning("index cache is damaged; discarding it")
            try:
                self.path.unlink()
                self._db = self._connect()
            except (OSError, sqlite3.Error):
                self._failed = True
        except (OSError, sqlite3.Error) as exc:
            log.warning(
                "index cache unavailable (%s); headers are read uncached", type(exc).__name__
            )
            self._failed = True
        return self._db

    def lookup(self, keys: dict[FileRef, FileKey]) -> dict[FileRef, Entry]:
        """Entries whose stored key equals the file's current key; the rest are misses."""
        db = self._open()
        if db is None or not keys:
            return {}
        by_place = {(k.path, k.member): (ref, k) for ref, k in keys.items()}
        found: dict[FileRef, Entry] = {}
        places = list(by_place)
        try:
            for start in range(0, len(places), _CHUNK):
                chunk = places[start : start + _CHUNK]
                paths = sorted({p for p, _ in chunk})
                marks = ",".join("?" * len(paths))
                rows = db.execute(
                    "SELECT path, member, size, mtime_ns, ctime_ns, inode, payload FROM headers "
                    f"WHERE path IN ({marks})",
                    paths,
                ).fetchall()
                for path, member, *stamp, payload in rows:
                    hit = by_place.get((path, member))
                    if hit is None or FileKey(path, member, *stamp) != hit[1]:
                        continue
                    with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
                        found[hit[0]] = _decode(payload, hit[0])
        except sqlite3.Error as exc:
            log.warning("index cache lookup failed (%s); reading headers", type(exc).__name__)
            return found
        return found

    def store(self, entries: list[tuple[FileKey, Entry]]) -> None:
        """Remember settled files' entries; silently skips when the cache cannot be written."""
        now = time.time_ns()
        rows = []
        for key, entry in entries:
            if settled(key, now):
                with contextlib.suppress(TypeError, ValueError):  # not JSON-able: not cached
                    rows.append((*key, _encode(entry), now / 1e9))
        db = self._open()
        if db is None or not rows:
            return
        try:
            with db:
                db.executemany("INSERT OR REPLACE INTO headers VALUES (?,?,?,?,?,?,?,?)", rows)
                (count,) = db.execute("SELECT count(*) FROM headers").fetchone()
                if count > MAX_ENTRIES:
                    db.execute(
                        "DELETE FROM headers WHERE path IN (SELECT path FROM headers "
                        "ORDER BY stored LIMIT ?)",
                        (count - MAX_ENTRIES,),
                    )
        except sqlite3.Error as exc:
            log.warning("index cache not updated (%s)", type(exc).__name__)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
