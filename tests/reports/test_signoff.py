"""Sign-off locks a report for good; an amendment is a new, reasoned, separately signed version."""

from __future__ import annotations

import sqlite3

import pytest

from app.reports import (
    AuditAction,
    ReportSession,
    ReportState,
    SignedReportError,
    ValidationError,
)

EDITED = {"FINDINGS": "Reader's findings.", "IMPRESSION": "Reader's impression."}


@pytest.mark.parametrize("reader", ["", "   "])
def test_signing_needs_a_reader_name(session: ReportSession, reader: str) -> None:
    with pytest.raises(ValidationError, match="reader"):
        session.sign(reader)
    assert session.store.latest_signed(session.report_id) is None
    assert session.store.get_report(session.report_id).state is ReportState.DRAFT


def test_signed_report_is_locked_against_saves(session: ReportSession) -> None:
    session.save_draft(EDITED, session.version)
    signed = session.sign("Dr Jane Reader")
    assert signed.state is ReportState.SIGNED and signed.signed_by == "Dr Jane Reader" and signed.signed_at
    assert signed.sections == EDITED
    with pytest.raises(SignedReportError, match="signed"):
        session.save_draft({"FINDINGS": "Sneaky change.", "IMPRESSION": ""}, session.version)
    with pytest.raises(SignedReportError):
        session.delete_sentence(0, {"FINDINGS": "", "IMPRESSION": ""}, session.version)
    with pytest.raises(SignedReportError, match="signed"):
        session.sign("Dr Other")
    assert session.store.version(session.report_id).sections == EDITED


def test_signed_version_text_cannot_be_changed_even_directly(session: ReportSession) -> None:
    signed = session.sign("Dr Jane Reader")
    conn = session.store._conn  # the store's own connection: the database itself refuses
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE versions SET sections = '{}' WHERE report_id = ? AND version = ?",
                     (session.report_id, signed.version))
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM versions WHERE report_id = ?", (session.report_id,))
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit")
    # An editor still holding an older version is told the report is signed, and writes nothing.
    with pytest.raises(SignedReportError, match="amendment"):
        session.store.save_version(session.report_id, {"FINDINGS": "x"}, signed.version - 1, "intruder")
    assert session.store.version(session.report_id, signed.version).sections == signed.sections


def test_amendment_needs_a_reason_and_its_own_signoff(session: ReportSession) -> None:
    original = session.sign("Dr Jane Reader")
    with pytest.raises(ValidationError, match="reason"):
        session.amend("  ")
    opened = session.amend("Laterality corrected")
    assert opened.amendment_reason == "Laterality corrected" and opened.amends_version == original.version
    assert not session.locked
    session.save_draft({"FINDINGS": "Nodule in the LEFT upper lobe.", "IMPRESSION": "Nodule."}, session.version)
    amended = session.sign("Dr Jane Reader")
    assert amended.state is ReportState.AMENDED and amended.amends_version == original.version
    assert session.store.get_report(session.report_id).state is ReportState.AMENDED
    with pytest.raises(SignedReportError):
        session.save_draft({"FINDINGS": "again"}, session.version)
    # The originally signed text is untouched and still retrievable.
    assert session.store.version(session.report_id, original.version).sections == original.sections
    assert session.store.latest_signed(session.report_id).version == amended.version


def test_amending_an_unsigned_report_is_refused(session: ReportSession) -> None:
    with pytest.raises(ValidationError, match="not signed"):
        session.amend("no reason to amend")


def test_audit_shows_the_signed_then_amended_chain(session: ReportSession) -> None:
    first = session.sign("Dr Jane Reader")
    session.amend("Addendum after comparison")
    session.save_draft({"FINDINGS": "With comparison.", "IMPRESSION": "Stable."}, session.version)
    second = session.sign("Dr Jane Reader")
    session.amend("Second correction")
    third = session.sign("Dr Jane Reader")
    chain = [(e.action, e.version, e.details) for e in session.store.audit(session.report_id)
             if e.action in (AuditAction.SIGNED, AuditAction.AMENDED)]
    assert chain == [
        (AuditAction.SIGNED, first.version, {"signed_version": first.version}),
        (AuditAction.AMENDED, first.version + 1, {"amends_version": first.version}),
        (AuditAction.SIGNED, second.version, {"signed_version": second.version, "amends_version": first.version}),
        (AuditAction.AMENDED, second.version + 1, {"amends_version": second.version}),
        (AuditAction.SIGNED, third.version, {"signed_version": third.version, "amends_version": second.version}),
    ]
