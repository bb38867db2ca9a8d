"""One editor's view of a study's report: open/restore, autosave, sentence actions, sign, amend.

The UI calls `save_draft` after each edit (debounced, at most about once a second); each call is
one small transaction. Every save names the version it edits, so a second window's newer save
raises ConflictError instead of being overwritten. Must not import Qt or DICOM libraries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from app.reports.errors import ValidationError
from app.reports.records import (
    LOCKED_STATES,
    AIDraftRecord,
    AuditAction,
    ReportState,
    ReportVersion,
)
from app.reports.store import ReportStore


@dataclass
class ReportSession:
    """The report of one study/series as one user edits it; `version` is what the editor holds."""

    store: ReportStore
    report_id: int
    user: str
    current: ReportVersion = field(repr=False)

    @classmethod
    def open(cls, store: ReportStore, StudyInstanceUID: str, SeriesInstanceUID: str, user: str,
             draft: AIDraftRecord | None = None) -> ReportSession:
        """Restore the study's latest report, or start one from `draft` (or empty); audits 'opened'.

        An existing report wins over `draft` (the draft is only used to start a new report).
        Raises a StoreError (read-only, locked, full) when the 'opened' audit row cannot be written.
        """
        if not (user or "").strip():
            raise ValidationError("opening a report needs the user's name for the audit trail")
        report = store.find_report(StudyInstanceUID, SeriesInstanceUID)
        if report is None:
            report = store.create_report(StudyInstanceUID, SeriesInstanceUID, user, draft=draft)
        store.record(AuditAction.OPENED, user, report.report_id, report.latest_version)
        return cls(store, report.report_id, user, store.version(report.report_id))

    @classmethod
    def open_report(cls, store: ReportStore, report_id: int, user: str) -> ReportSession:
        """Open a report by id (audited 'opened')."""
        report = store.get_report(report_id)
        store.record(AuditAction.OPENED, user, report.report_id, report.latest_version)
        return cls(store, report.report_id, user, store.version(report.report_id))

    @property
    def version(self) -> int:
        return self.current.version

    @property
    def sections(self) -> dict[str, str]:
        return dict(self.current.sections)

    @property
    def state(self) -> ReportState:
        return self.current.state

    @property
    def locked(self) -> bool:
        return self.current.state in LOCKED_STATES

    @property
    def ai_draft(self) -> AIDraftRecord | None:
        return self.store.get_report(self.report_id).ai_draft

    def reload(self) -> ReportVersion:
        """Take the latest saved version (after a ConflictError, for example)."""
        self.current = self.store.version(self.report_id)
        return self.current

    def save_draft(self, text_sections: dict[str, str], base_version: int) -> int:
        """Autosave: append the editor's text as a new version of `base_version`; returns the new version.

        Saving text identical to `base_version` writes nothing. Raises ConflictError when a newer
        version exists, SignedReportError when the report is signed, other StoreErrors when the
        disk is full, read-only or locked (nothing saved before is lost; keep the text).
        """
        if base_version == self.current.version and text_sections == self.current.sections \
                and not self.locked:
            return self.current.version
        self.current = self.store.save_version(self.report_id, text_sections, base_version, self.user)
        return self.current.version

    def accept_sentence(self, index: int) -> None:
        """Audit that the reader accepted AI sentence `index` as drafted (the text is unchanged)."""
        self.store.record(AuditAction.ACCEPTED_SENTENCE, self.user, self.report_id, self.current.version,
                          {"sentence": int(index)})

    def delete_sentence(self, index: int, text_sections: dict[str, str], base_version: int) -> int:
        """Save the text with AI sentence `index` removed, audited as 'deleted sentence'."""
        self.current = self.store.save_version(self.report_id, text_sections, base_version, self.user,
                                               AuditAction.DELETED_SENTENCE, {"sentence": int(index)})
        return self.current.version

    def sign(self, reader_name: str, base_version: int | None = None, open_checks: Sequence[str] = ()) -> ReportVersion:
        """Sign off (locks the report); an open amendment is signed as state 'amended'. Checks the
        reader signed over (`open_checks`) go into the audit trail."""
        base = self.current.version if base_version is None else base_version
        self.current = self.store.sign(self.report_id, base, reader_name, self.user, open_checks)
        return self.current

    def amend(self, reason: str, base_version: int | None = None) -> ReportVersion:
        """Start an amendment of the signed report (reason required); edit, then sign again."""
        base = self.current.version if base_version is None else base_version
        self.current = self.store.begin_amendment(self.report_id, base, reason, self.user)
        return self.current
