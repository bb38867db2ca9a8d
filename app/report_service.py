"""The workstation's report workflow over the store: open/restore, start from an AI draft,
autosave, accept, sign, amend. Qt-free; every method runs on the UI's single store thread.

Each call names the (StudyInstanceUID, SeriesInstanceUID) it is for, and the service refuses a
call for any other series than the one whose report is open: text can never be saved into the
wrong patient's report.
"""

from __future__ import annotations

import getpass
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from app.drafting import ReportDraft
from app.findings_review import ReviewItem
from app.report_document import SECTIONS, Entry, ReportDocument
from app.reports import (
    AuditAction,
    ReportSession,
    ReportStore,
    draft_record_from_result,
)
from app.volume import Volume

log = logging.getLogger(__name__)
SeriesKey = tuple[str, str]


@dataclass(frozen=True)
class ReportStatus:
    """What the editor shows about the stored report."""

    key: SeriesKey
    report_id: int
    version: int
    state: str  # ReportState value: draft, edited, signed, amended, ...
    locked: bool
    signed_by: str = ""


@dataclass(frozen=True)
class OpenedReport:
    status: ReportStatus
    document: ReportDocument
    draft_model_hash: str = ""  # the model that drafted the restored text ("" if none did)
    draft_provenance: str = ""


def key_of(volume: Volume) -> SeriesKey:
    return (volume.StudyInstanceUID, volume.SeriesInstanceUID)


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]


def restore_document(sections: dict[str, str], ai_sentences: list[tuple[str, str]],
                     accepted: set[int]) -> ReportDocument:
    """Rebuild the editor's entries from saved text: AI sentences still as drafted keep their
    marking (accepted if the audit says so), other text is the reader's; AI sentences no longer
    in the text are kept as deleted."""
    by_text: dict[tuple[str, str], list[int]] = {}
    for i, (section, text) in enumerate(ai_sentences):
        by_text.setdefault((section, text), []).append(i)
    entries: list[Entry] = []
    used: set[int] = set()
    for section in SECTIONS:
        for text in split_sentences(sections.get(section, "")):
            index = next((i for i in by_text.get((section, text), []) if i not in used), None)
            if index is None:
                entries.append(Entry(text, section))
                continue
            used.add(index)
            status = "accepted" if index in accepted else "ai"
            entries.append(Entry(text, section, "ai", status, index, text))
    for i, (section, text) in enumerate(ai_sentences):
        if i not in used:
            entries.append(Entry(text, section, "ai", "deleted", i, text))
    return ReportDocument(entries)


def document_sections(document: ReportDocument) -> dict[str, str]:
    return {section: document.section_text(section) for section in SECTIONS}


class ReportService:
    """Owns the store and the session of the report being edited."""

    def __init__(self, db_path: Path | None = None, user: str | None = None) -> None:
        self.db_path = db_path
        self.user = user or getpass.getuser() or "unknown user"
        self._store: ReportStore | None = None
        self._session: ReportSession | None = None
        self._key: SeriesKey | None = None

    @property
    def store(self) -> ReportStore:
        if self._store is None:
            self._store = ReportStore(self.db_path)
        return self._store

    def open_series(self, key: SeriesKey) -> OpenedReport | None:
        """Restore the report of a series (None when it has none yet)."""
        self._session, self._key = None, key
        report = self.store.find_report(*key)
        if report is None:
            return None
        self._session = ReportSession.open(self.store, key[0], key[1], self.user)
        draft = self._session.ai_draft
        return OpenedReport(self._status(), self._restored_document(),
                            draft.model_hash if draft else "", draft.provenance_line if draft else "")

    def start_from_draft(self, key: SeriesKey, draft: ReportDraft, volume: Volume) -> ReportStatus:
        """Create the series' report from an AI draft (audited 'drafted')."""
        self._check(key, need_session=False)
        if key_of(volume) != key or (draft.StudyInstanceUID, draft.SeriesInstanceUID) != key:
            raise ValueError("the draft, the volume and the open series do not match: not saved")
        record = draft_record_from_result(draft, volume)
        self._session = ReportSession.open(self.store, key[0], key[1], self.user, draft=record)
        return self._status()

    def replace_with_draft(self, key: SeriesKey, draft: ReportDraft, volume: Volume,
                           document: ReportDocument) -> ReportStatus:
        """Start the series' report over from a new AI draft: the editor's text (`document`) is
        saved first, then that report is set aside (kept, audited) and a new one starts from the
        draft. Refused for a signed report (amend it instead) or another series."""
        session = self._check(key)
        if key_of(volume) != key or (draft.StudyInstanceUID, draft.SeriesInstanceUID) != key:
            raise ValueError("the draft, the volume and the open series do not match: not replaced")
        session.save_draft(document_sections(document), session.version)
        report = self.store.replace_with_draft(session.report_id, session.version,
                                               draft_record_from_result(draft, volume), self.user)
        self._session = ReportSession.open_report(self.store, report.report_id, self.user)
        return self._status()

    def autosave(self, key: SeriesKey, document: ReportDocument) -> ReportStatus:
        session = self._check(key)
        session.save_draft(document_sections(document), session.version)
        return self._status()

    def accept_sentence(self, key: SeriesKey, ai_index: int) -> None:
        self._check(key).accept_sentence(ai_index)

    def record_verdict(self, key: SeriesKey, item: ReviewItem) -> None:
        """Audit a clinician's agree / disagree on an AI finding (who, when, what)."""
        session = self._check(key)
        self.store.record(AuditAction.REVIEWED_FINDING, item.reviewer, session.report_id, session.version,
                          {"kind": item.kind, "finding": item.label, "verdict": item.verdict,
                           "sentence": item.sentence, "at": item.when})

    def sign(self, key: SeriesKey, document: ReportDocument, reader_name: str,
             open_checks: Sequence[str] = ()) -> ReportStatus:
        session = self._check(key)
        session.save_draft(document_sections(document), session.version)
        session.sign(reader_name, open_checks=open_checks)
        return self._status(reader_name)

    def amend(self, key: SeriesKey, reason: str) -> ReportStatus:
        self._check(key).amend(reason)
        return self._status()

    def _check(self, key: SeriesKey, need_session: bool = True) -> ReportSession | None:
        if key != self._key:
            raise ValueError("refused: this report belongs to another series than the one open")
        if need_session and self._session is None:
            raise ValueError("no report is open for this series yet")
        return self._session

    def _status(self, signed_by: str = "") -> ReportStatus:
        session = self._session
        state = session.state
        return ReportStatus(self._key, session.report_id, session.version, str(state.value),
                            session.locked, signed_by)

    def _restored_document(self) -> ReportDocument:
        session = self._session
        draft = session.ai_draft
        ai = [(s.section, s.text) for s in draft.sentences] if draft is not None else []
        accepted = {
            int(entry.details.get("sentence", -1))
            for entry in self.store.audit(session.report_id)
            if entry.action == AuditAction.ACCEPTED_SENTENCE
        }
        return restore_document(session.sections, ai, accepted)
