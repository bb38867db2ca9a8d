"""Every action leaves exactly its audit rows (who, when in UTC, what, report/version), no identifiers."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pytest

from app.export import export_report
from app.reports import AuditAction, ReportSession, ReportStore

from .conftest import ACCESSION, PATIENT_ID, PATIENT_NAME, Study

A = AuditAction


def _actions(store: ReportStore, report_id: int) -> list[tuple[AuditAction, int | None]]:
    return [(e.action, e.version) for e in store.audit(report_id)]


def test_each_action_leaves_exactly_its_audit_rows(store: ReportStore, study: Study, tmp_path: Path) -> None:
    uids = (study.volume.StudyInstanceUID, study.volume.SeriesInstanceUID)
    session = ReportSession.open(store, *uids, "reader1", draft=study.draft)
    rid = session.report_id
    expected = [(A.DRAFTED, 1), (A.OPENED, 1)]
    assert _actions(store, rid) == expected
    session.accept_sentence(0)
    expected.append((A.ACCEPTED_SENTENCE, 1))
    assert _actions(store, rid) == expected
    v2 = session.save_draft({"FINDINGS": "Edited.", "IMPRESSION": "x"}, 1)
    expected.append((A.EDITED, v2))
    assert _actions(store, rid) == expected
    v3 = session.delete_sentence(1, {"FINDINGS": "", "IMPRESSION": "x"}, v2)
    expected.append((A.DELETED_SENTENCE, v3))
    assert _actions(store, rid) == expected
    signed = session.sign("Dr Reader")
    expected.append((A.SIGNED, signed.version))
    assert _actions(store, rid) == expected
    export_report(store, rid, "txt", tmp_path, user="reader1")
    expected.append((A.EXPORTED, signed.version))
    assert _actions(store, rid) == expected
    session.amend("Correction")
    expected.append((A.AMENDED, signed.version + 1))
    ReportSession.open(store, *uids, "reader2")
    expected.append((A.OPENED, signed.version + 1))
    assert _actions(store, rid) == expected
    entries = store.audit(rid)
    assert {e.who for e in entries} == {"reader1", "reader2"}
    assert entries[3].details["base_version"] == 1 and entries[4].details["sentence"] == 1
    assert entries[6].details == {"format": "txt", "deidentified": False}
    for entry in entries:
        when = dt.datetime.fromisoformat(entry.at)
        assert when.utcoffset() == dt.timedelta(0)
        assert abs((dt.datetime.now(dt.UTC) - when).total_seconds()) < 600


def test_no_patient_identifiers_in_audit_or_logs(store: ReportStore, study: Study, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    session = ReportSession.open(store, study.volume.StudyInstanceUID, study.volume.SeriesInstanceUID,
                                 "reader1", draft=study.draft)
    session.save_draft({"FINDINGS": "Edited.", "IMPRESSION": "x"}, session.version)
    session.sign("Dr Reader")
    for fmt in ("sr", "pdf", "txt", "json"):
        export_report(store, session.report_id, fmt, tmp_path, user="reader1")
    audit_text = json.dumps([e.details for e in store.audit()]) + " ".join(e.who for e in store.audit())
    logged = " ".join(r.getMessage() for r in caplog.records)
    raw_db = b"".join(p.read_bytes() for p in store.path.parent.iterdir())
    for identifier in (PATIENT_NAME, "TESTPATIENT", PATIENT_ID, ACCESSION):
        assert identifier not in audit_text
        assert identifier not in logged
        assert identifier.encode() not in raw_db  # the store holds no patient identifiers at all
