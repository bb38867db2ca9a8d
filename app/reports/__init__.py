"""Reports that are never lost: an embedded store with versions, autosave, sign-off and audit.

Must not import Qt or DICOM libraries.

Public API
----------
``ReportStore(path=None, busy_timeout_ms=2000, read_only=False)``
    SQLite (WAL, synchronous=FULL) at ``app.paths.user_data_dir()/reports.sqlite3`` by default;
    created and migrated on open. Reading: ``get_report``, ``find_report(study, series)``,
    ``version(report_id, version=None)``, ``versions``, ``latest_signed``, ``audit(report_id)``.
    Writing (one transaction each, with its audit row): ``create_report``, ``save_version``,
    ``sign``, ``begin_amendment``, ``record`` (audit-only actions).
``ReportSession.open(store, StudyInstanceUID, SeriesInstanceUID, user, draft=None)``
    Restores the latest text (or starts from the AI draft); ``save_draft(sections, base_version)``,
    ``accept_sentence``, ``delete_sentence``, ``sign(reader_name)``, ``amend(reason)``.
``draft_record_from_result(result_or_draft, volume, request_id="", series=None) -> AIDraftRecord``
``bench_autosave``: ``medmpt bench autosave`` (autosave/reopen latency, FULL vs NORMAL sync).
Errors: ``StoreError`` and its subclasses ``ConflictError``, ``SignedReportError``,
``StoreReadOnlyError``, ``StoreLockedError``, ``StoreFullError``, ``StoreCorruptError``,
``ReportNotFoundError``, ``ValidationError``; each message says what happened and that nothing
already saved was lost.
"""

from __future__ import annotations

from app.reports.errors import (
    ConflictError,
    ReportNotFoundError,
    SignedReportError,
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreLockedError,
    StoreReadOnlyError,
    ValidationError,
)
from app.reports.records import (
    AIDraftRecord,
    AuditAction,
    AuditEntry,
    DraftSentence,
    EvidenceSlice,
    Report,
    ReportState,
    ReportVersion,
    SourceInstance,
    draft_record_from_result,
    sections_text,
)
from app.reports.session import ReportSession
from app.reports.store import ReportStore, default_store_path, open_store

__all__ = [
    "AIDraftRecord", "AuditAction", "AuditEntry", "ConflictError", "DraftSentence", "EvidenceSlice",
    "Report", "ReportNotFoundError", "ReportSession", "ReportState", "ReportStore", "ReportVersion",
    "SignedReportError", "SourceInstance", "StoreCorruptError", "StoreError", "StoreFullError",
    "StoreLockedError", "StoreReadOnlyError", "ValidationError", "default_store_path",
    "draft_record_from_result", "open_store", "sections_text",
]
