"""The report store: reports, append-only versions, AI drafts and the audit trail in one SQLite file.

No set-up: the database lives in app.paths.user_data_dir() (MEDMPT_DATA_DIR) unless a path is
given, is created and migrated on open, and every write is one transaction that also writes its
audit row. Holds no patient names or IDs. Must not import Qt or DICOM libraries.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app import paths
from app.reports.errors import (
    ConflictError,
    ReportNotFoundError,
    SignedReportError,
    StoreError,
    ValidationError,
    translate,
)
from app.reports.records import (
    LOCKED_STATES,
    AIDraftRecord,
    AuditAction,
    AuditEntry,
    Report,
    ReportState,
    ReportVersion,
    utc_now,
)
from app.reports.schema import connect, migrate

log = logging.getLogger(__name__)
DB_NAME = "reports.sqlite3"


def default_store_path() -> Path:
    return paths.user_data_dir() / DB_NAME


def _clean_sections(sections: dict[str, str]) -> dict[str, str]:
    if not isinstance(sections, dict) or not all(
            isinstance(k, str) and k and isinstance(v, str) for k, v in sections.items()):
        raise ValidationError("report sections must be a mapping of section name to text")
    return dict(sections)


class ReportStore:
    """One open report database; thread-safe (one connection behind a lock)."""

    def __init__(self, path: Path | str | None = None, busy_timeout_ms: int = 2000,
                 read_only: bool = False) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self.read_only = read_only
        self._lock = threading.RLock()
        self._conn = connect(self.path, busy_timeout_ms, read_only)
        if not read_only:
            try:
                migrate(self._conn)
            except sqlite3.Error as exc:
                self._conn.close()
                raise translate(exc, self.path, "prepare the report store") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> ReportStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def _write(self, action: str) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: all or nothing; sqlite errors become StoreErrors."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise translate(exc, self.path, action) from exc
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as exc:
                if self._conn.in_transaction:
                    try:
                        self._conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                if isinstance(exc, sqlite3.Error):
                    raise translate(exc, self.path, action) from exc
                raise

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                cursor = self._conn.execute(sql, args)
                cursor.row_factory = sqlite3.Row
                return cursor.fetchall()
            except sqlite3.Error as exc:
                raise translate(exc, self.path, "read the report store") from exc

    @staticmethod
    def _audit(conn: sqlite3.Connection, action: AuditAction, who: str, report_id: int | None,
               version: int | None, details: dict[str, Any] | None = None) -> None:
        conn.execute("INSERT INTO audit (at, who, action, report_id, version, details) VALUES (?, ?, ?, ?, ?, ?)",
                      (utc_now(), who, str(action), report_id, version, json.dumps(details or {}, sort_keys=True)))

    # ------------------------------------------------------------------ reading
    def get_report(self, report_id: int) -> Report:
        rows = self._read("SELECT * FROM reports WHERE report_id = ?", (int(report_id),))
        if not rows:
            raise ReportNotFoundError(f"no report with id {report_id} in the report store at {self.path}")
        return self._report(rows[0])

    def find_report(self, StudyInstanceUID: str, SeriesInstanceUID: str | None = None) -> Report | None:
        """The most recently created report for the study (and series, when given), or None."""
        sql, args = "SELECT * FROM reports WHERE StudyInstanceUID = ?", [StudyInstanceUID]
        if SeriesInstanceUID:
            sql += " AND SeriesInstanceUID = ?"
            args.append(SeriesInstanceUID)
        rows = self._read(sql + " ORDER BY report_id DESC LIMIT 1", tuple(args))
        return self._report(rows[0]) if rows else None

    def report_ids(self) -> list[int]:
        return [int(r["report_id"]) for r in self._read("SELECT report_id FROM reports ORDER BY report_id")]

    def version(self, report_id: int, version: int | None = None) -> ReportVersion:
        """One version of a report (the latest when `version` is None)."""
        if version is None:
            version = self.get_report(report_id).latest_version
        rows = self._read("SELECT * FROM versions WHERE report_id = ? AND version = ?", (int(report_id), int(version)))
        if not rows:
            raise ReportNotFoundError(f"report {report_id} has no version {version}")
        return self._version(rows[0])

    def versions(self, report_id: int) -> list[ReportVersion]:
        rows = self._read("SELECT * FROM versions WHERE report_id = ? ORDER BY version", (int(report_id),))
        return [self._version(r) for r in rows]

    def latest_signed(self, report_id: int) -> ReportVersion | None:
        """The newest signed (or signed amendment) version, or None when never signed."""
        rows = self._read("SELECT * FROM versions WHERE report_id = ? AND state IN (?, ?) "
                          "ORDER BY version DESC LIMIT 1", (int(report_id), *sorted(LOCKED_STATES)))
        return self._version(rows[0]) if rows else None

    def audit(self, report_id: int | None = None) -> list[AuditEntry]:
        where, args = ("WHERE report_id = ?", (int(report_id),)) if report_id is not None else ("", ())
        rows = self._read(f"SELECT * FROM audit {where} ORDER BY audit_id", args)
        return [AuditEntry(r["at"], r["who"], AuditAction(r["action"]), r["report_id"], r["version"],
                           json.loads(r["details"])) for r in rows]

    def setting(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM settings WHERE key = ?", (key,))
        return str(rows[0]["value"]) if rows else None

    def integrity_check(self) -> str:
        return "; ".join(str(r[0]) for r in self._read("PRAGMA integrity_check"))

    def _report(self, row: sqlite3.Row) -> Report:
        drafts = self._read("SELECT record FROM ai_drafts WHERE report_id = ?", (row["report_id"],))
        draft = AIDraftRecord.from_dict(json.loads(drafts[0]["record"])) if drafts else None
        return Report(int(row["report_id"]), row["StudyInstanceUID"], row["SeriesInstanceUID"],
                      ReportState(row["state"]), int(row["latest_version"]), row["created_at"], draft)

    @staticmethod
    def _version(row: sqlite3.Row) -> ReportVersion:
        return ReportVersion(
            int(row["report_id"]), int(row["version"]), ReportState(row["state"]), json.loads(row["sections"]),
            row["created_at"], row["author"], row["base_version"], row["signed_by"], row["signed_at"],
            row["amendment_reason"], row["amends_version"])

    # ------------------------------------------------------------------ writing
    def create_report(self, StudyInstanceUID: str, SeriesInstanceUID: str, author: str,
                      draft: AIDraftRecord | None = None, sections: dict[str, str] | None = None) -> Report:
        """A new report whose version 1 is the AI draft's text (audited 'drafted') or `sections`."""
        if not StudyInstanceUID or not SeriesInstanceUID:
            raise ValidationError("a report needs the StudyInstanceUID and SeriesInstanceUID it belongs to")
        if draft is not None and (draft.StudyInstanceUID, draft.SeriesInstanceUID) != (StudyInstanceUID, SeriesInstanceUID):
            raise ValidationError("the AI draft belongs to another study or series than this report")
        with self._write("create the report") as conn:
            report_id = self._insert_report(conn, StudyInstanceUID, SeriesInstanceUID, author, draft, sections)
        log.info("report %d created (AI draft: %s)", report_id, draft is not None)
        return self.get_report(report_id)

    def replace_with_draft(self, report_id: int, base_version: int, draft: AIDraftRecord, author: str) -> Report:
        """Set an unsigned report aside for a new report of the same series started from a new AI
        draft, in one transaction. The old report keeps every version and is audited 'replaced by
        a new draft' (naming the new report); find_report returns the new one. A signed report is
        refused (amend it instead), as is a stale `base_version` or a draft of another series."""
        old = self.get_report(report_id)
        if (draft.StudyInstanceUID, draft.SeriesInstanceUID) != (old.StudyInstanceUID, old.SeriesInstanceUID):
            raise ValidationError("the AI draft belongs to another study or series than this report")
        with self._write("replace the report with a new draft") as conn:
            _, latest = self._check_base(conn, report_id, base_version)
            new_id = self._insert_report(conn, old.StudyInstanceUID, old.SeriesInstanceUID, author, draft, None)
            self._audit(conn, AuditAction.REPLACED, author, report_id, latest,
                        {"by_report": new_id, "request_id": draft.request_id, "model_hash": draft.model_hash})
        log.info("report %d replaced by report %d from a new AI draft", report_id, new_id)
        return self.get_report(new_id)

    def _insert_report(self, conn: sqlite3.Connection, StudyInstanceUID: str, SeriesInstanceUID: str, author: str,
                       draft: AIDraftRecord | None, sections: dict[str, str] | None) -> int:
        """Insert a report whose version 1 is the draft's text or `sections` (inside a transaction)."""
        text = _clean_sections(draft.sections if draft is not None else (sections or {"FINDINGS": "", "IMPRESSION": ""}))
        now = utc_now()
        cursor = conn.execute(
            "INSERT INTO reports (StudyInstanceUID, SeriesInstanceUID, state, latest_version, created_at) "
            "VALUES (?, ?, ?, 1, ?)", (StudyInstanceUID, SeriesInstanceUID, str(ReportState.DRAFT), now))
        report_id = int(cursor.lastrowid)
        conn.execute("INSERT INTO versions (report_id, version, state, sections, created_at, author) "
                     "VALUES (?, 1, ?, ?, ?, ?)", (report_id, str(ReportState.DRAFT), json.dumps(text), now, author))
        if draft is not None:
            conn.execute(
                "INSERT INTO ai_drafts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (report_id, draft.model_name, draft.model_version, draft.model_hash, draft.model_label,
                 draft.request_id, draft.StudyInstanceUID, draft.SeriesInstanceUID, draft.created,
                 json.dumps(draft.to_dict())))
            self._audit(conn, AuditAction.DRAFTED, author, report_id, 1,
                        {"model": draft.model_name, "model_version": draft.model_version,
                         "model_hash": draft.model_hash, "request_id": draft.request_id})
        return report_id

    def _check_base(self, conn: sqlite3.Connection, report_id: int, base_version: int,
                    locked_ok: bool = False) -> tuple[ReportState, int]:
        """The report's state and latest version; raises when it is signed (unless `locked_ok`)
        or when `base_version` is not the latest (another window saved meanwhile)."""
        row = conn.execute("SELECT state, latest_version FROM reports WHERE report_id = ?", (report_id,)).fetchone()
        if row is None:
            raise ReportNotFoundError(f"no report with id {report_id} in the report store at {self.path}")
        state, latest = ReportState(row[0]), int(row[1])
        if state in LOCKED_STATES and not locked_ok:
            raise SignedReportError(
                f"report {report_id} is signed (version {latest}) and locked; start an amendment "
                "(with a reason) to change it")
        if int(base_version) != latest:
            raise ConflictError(report_id, int(base_version), latest)
        return state, latest

    def _append(self, conn: sqlite3.Connection, report_id: int, state: ReportState, sections: dict[str, str],
                author: str, base: int, **extra: Any) -> int:
        version = base + 1
        columns = ["report_id", "version", "state", "sections", "created_at", "author", "base_version", *extra]
        values = [report_id, version, str(state), json.dumps(sections), utc_now(), author, base, *extra.values()]
        conn.execute(f"INSERT INTO versions ({', '.join(columns)}) VALUES ({', '.join('?' * len(values))})", values)
        conn.execute("UPDATE reports SET state = ?, latest_version = ? WHERE report_id = ?",
                     (str(state), version, report_id))
        return version

    def save_version(self, report_id: int, sections: dict[str, str], base_version: int, author: str,
                     action: AuditAction = AuditAction.EDITED, details: dict[str, Any] | None = None) -> ReportVersion:
        """Append edited text as a new version of `base_version` (which must be the latest)."""
        text = _clean_sections(sections)
        with self._write("save the report") as conn:
            _, latest = self._check_base(conn, report_id, base_version)
            version = self._append(conn, report_id, ReportState.EDITED, text, author, latest)
            self._audit(conn, action, author, report_id, version, {"base_version": latest, **(details or {})})
        return self.version(report_id, version)

    def sign(self, report_id: int, base_version: int, reader_name: str, author: str | None = None,
             open_checks: Sequence[str] = ()) -> ReportVersion:
        """Sign the latest version: appends a locked copy (state signed, or amended for an amendment).
        `open_checks`: the draft checks (app.draft_checks) the reader signed over, kept in the audit."""
        reader = (reader_name or "").strip()
        if not reader:
            raise ValidationError("signing needs the reader's name")
        with self._write("sign the report") as conn:
            _, latest = self._check_base(conn, report_id, base_version)
            row = conn.execute("SELECT sections, amends_version FROM versions WHERE report_id = ? AND version = ?",
                               (report_id, latest)).fetchone()
            amends = self._open_amendment(conn, report_id)
            new_state = ReportState.AMENDED if amends is not None else ReportState.SIGNED
            now = utc_now()
            version = self._append(conn, report_id, new_state, json.loads(row[0]), author or reader, latest,
                                   signed_by=reader, signed_at=now, amends_version=amends)
            details: dict[str, Any] = {"signed_version": version}
            if open_checks:
                details["open_checks"] = list(open_checks)
            if amends is not None:
                details["amends_version"] = amends
            self._audit(conn, AuditAction.SIGNED, author or reader, report_id, version, details)
        log.info("report %d signed as version %d", report_id, version)
        return self.version(report_id, version)

    @staticmethod
    def _open_amendment(conn: sqlite3.Connection, report_id: int) -> int | None:
        """The signed version being amended, when an amendment was begun after the last signature."""
        row = conn.execute(
            "SELECT amends_version FROM versions WHERE report_id = ? AND amendment_reason != '' AND version > "
            "COALESCE((SELECT MAX(version) FROM versions WHERE report_id = ? AND state IN ('signed', 'amended')), 0) "
            "ORDER BY version DESC LIMIT 1", (report_id, report_id)).fetchone()
        return int(row[0]) if row is not None else None

    def begin_amendment(self, report_id: int, base_version: int, reason: str, author: str) -> ReportVersion:
        """Open a signed report for an amendment: a new editable version carrying the reason."""
        why = (reason or "").strip()
        if not why:
            raise ValidationError("an amendment needs a reason")
        with self._write("amend the report") as conn:
            state, latest = self._check_base(conn, report_id, base_version, locked_ok=True)
            if state not in LOCKED_STATES:
                raise ValidationError(f"report {report_id} is not signed; edit it directly instead of amending")
            row = conn.execute("SELECT sections FROM versions WHERE report_id = ? AND version = ?",
                               (report_id, latest)).fetchone()
            version = self._append(conn, report_id, ReportState.EDITED, json.loads(row[0]), author, latest,
                                   amendment_reason=why, amends_version=latest)
            self._audit(conn, AuditAction.AMENDED, author, report_id, version, {"amends_version": latest})
        return self.version(report_id, version)

    def record(self, action: AuditAction, who: str, report_id: int | None = None, version: int | None = None,
               details: dict[str, Any] | None = None) -> None:
        """An audit row for an action that changes no text (opened, accepted sentence, exported)."""
        if not who:
            raise ValidationError("the audit trail needs to know who acted")
        with self._write(f"record '{action}' in the audit trail") as conn:
            self._audit(conn, action, who, report_id, version, details)


def open_store(path: Path | str | None = None, **kwargs: Any) -> ReportStore:
    """The report store at `path` (default: user data dir); raises StoreError with a human message."""
    try:
        return ReportStore(path, **kwargs)
    except StoreError:
        raise
    except sqlite3.Error as exc:
        raise translate(exc, path or default_store_path(), "open the report store") from exc
