"""The report database's schema as ordered migrations, and how a connection is opened.

SQLite in WAL mode with synchronous=FULL: in WAL mode NORMAL already survives an application
crash (SIGKILL) without corruption, but may lose the last commits on a power cut or OS crash;
FULL syncs the WAL on every commit so a save that returned is on disk. Autosaves are small
(one row each, about once a second at most), so the extra fsync costs little, and a signed
clinical report must never be lost. Must not import Qt or DICOM libraries.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable
from pathlib import Path

from app.reports.errors import StoreError, StoreReadOnlyError, translate

_V1 = (
    """CREATE TABLE reports (
        report_id INTEGER PRIMARY KEY AUTOINCREMENT,
        StudyInstanceUID TEXT NOT NULL,
        SeriesInstanceUID TEXT NOT NULL,
        state TEXT NOT NULL,
        latest_version INTEGER NOT NULL,
        created_at TEXT NOT NULL)""",
    "CREATE INDEX reports_by_series ON reports (StudyInstanceUID, SeriesInstanceUID)",
    """CREATE TABLE versions (
        report_id INTEGER NOT NULL REFERENCES reports (report_id),
        version INTEGER NOT NULL,
        state TEXT NOT NULL,
        sections TEXT NOT NULL,
        created_at TEXT NOT NULL,
        author TEXT NOT NULL,
        base_version INTEGER,
        signed_by TEXT NOT NULL DEFAULT '',
        signed_at TEXT NOT NULL DEFAULT '',
        amendment_reason TEXT NOT NULL DEFAULT '',
        amends_version INTEGER,
        PRIMARY KEY (report_id, version))""",
    """CREATE TABLE ai_drafts (
        report_id INTEGER PRIMARY KEY REFERENCES reports (report_id),
        model_name TEXT NOT NULL,
        model_version TEXT NOT NULL,
        model_hash TEXT NOT NULL,
        model_label TEXT NOT NULL,
        request_id TEXT NOT NULL,
        StudyInstanceUID TEXT NOT NULL,
        SeriesInstanceUID TEXT NOT NULL,
        created_at TEXT NOT NULL,
        record TEXT NOT NULL)""",
    """CREATE TABLE audit (
        audit_id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        who TEXT NOT NULL,
        action TEXT NOT NULL,
        report_id INTEGER,
        version INTEGER,
        details TEXT NOT NULL DEFAULT '{}')""",
) + tuple(
    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
    f"BEGIN SELECT RAISE(ABORT, '{table} rows are append-only'); END"
    for table in ("versions", "ai_drafts", "audit") for verb in ("UPDATE", "DELETE"))


def _migrate_v1(conn: sqlite3.Connection) -> None:
    """Reports, their append-only versions, the AI draft each started from, the audit trail."""
    for statement in _V1:
        conn.execute(statement)


def _migrate_v2(conn: sqlite3.Connection) -> None:
    """Settings (the secret that makes de-identified UIDs consistent) and a faster audit lookup."""
    conn.execute("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT INTO settings (key, value) VALUES ('deid_secret', ?)", (secrets.token_hex(16),))
    conn.execute("CREATE INDEX audit_by_report ON audit (report_id, audit_id)")


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_migrate_v1, _migrate_v2)
"""MIGRATIONS[i] brings the schema from version i to version i + 1; append, never edit."""
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version of an open database (0 for an empty one)."""
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
    if row is None:
        return 0
    found = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(found[0] or 0)


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Apply the missing migrations up to `target`, each in its own transaction; returns the version."""
    current = schema_version(conn)
    if current > SCHEMA_VERSION:
        raise StoreError(
            f"the report database has schema version {current}, newer than this workstation "
            f"understands ({SCHEMA_VERSION}); update the workstation to open it")
    for version in range(current, target):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if version == 0:
                conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            MIGRATIONS[version](conn)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version + 1,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return max(current, target)


def connect(path: Path, busy_timeout_ms: int = 2000, read_only: bool = False) -> sqlite3.Connection:
    """Open (creating when needed) the database at `path` in WAL mode; raises StoreError subclasses."""
    action = "open the report store"
    try:
        if read_only:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                                   timeout=busy_timeout_ms / 1000, check_same_thread=False)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout_ms / 1000,
                                   check_same_thread=False)
    except OSError as exc:
        raise StoreReadOnlyError(
            f"cannot {action}: the folder {path.parent} cannot be created or written "
            f"({exc.strerror or exc}); choose another location with --db or MEDMPT_DATA_DIR") from exc
    except sqlite3.Error as exc:
        raise translate(exc, path, action) from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        if not read_only:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"readonly: cannot switch to WAL (journal_mode={mode})")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        conn.close()
        raise translate(exc, path, action) from exc
    return conn
