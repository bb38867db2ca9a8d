"""The store keeps every version, restores a study's latest text, and never overwrites silently."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from app.reports import (
    ConflictError,
    ReportSession,
    ReportState,
    ReportStore,
    ValidationError,
    default_store_path,
    draft_record_from_result,
)

from .conftest import FINDINGS, IMPRESSION, MODEL, SENTENCES, Study


def test_reopening_a_study_restores_its_latest_text(tmp_path: Path, study: Study) -> None:
    path = tmp_path / "reports.sqlite3"
    uids = (study.volume.StudyInstanceUID, study.volume.SeriesInstanceUID)
    with ReportStore(path) as store:
        session = ReportSession.open(store, *uids, "reader1", draft=study.draft)
        assert session.sections == {"FINDINGS": FINDINGS, "IMPRESSION": IMPRESSION}
        v2 = session.save_draft({"FINDINGS": "Edited once.", "IMPRESSION": IMPRESSION}, session.version)
        session.save_draft({"FINDINGS": "Edited twice.", "IMPRESSION": "Changed."}, v2)
    with ReportStore(path) as store:
        reopened = ReportSession.open(store, *uids, "reader1")
        assert reopened.report_id == session.report_id
        assert reopened.sections == {"FINDINGS": "Edited twice.", "IMPRESSION": "Changed."}
        assert reopened.state is ReportState.EDITED
        assert [v.sections["FINDINGS"] for v in store.versions(reopened.report_id)] == [
            FINDINGS, "Edited once.", "Edited twice."]


def test_ai_draft_is_kept_with_model_provenance_and_evidence_uids(session: ReportSession, study: Study) -> None:
    session.save_draft({"FINDINGS": "Replaced entirely.", "IMPRESSION": ""}, session.version)
    draft = session.ai_draft
    assert (draft.model_name, draft.model_version, draft.model_hash, draft.model_label) == (
        MODEL.name, MODEL.version, MODEL.model_hash, MODEL.label)
    assert draft.sections["FINDINGS"] == FINDINGS  # the AI text survives the edits
    assert (draft.StudyInstanceUID, draft.SeriesInstanceUID) == (
        study.volume.StudyInstanceUID, study.volume.SeriesInstanceUID)
    assert draft.request_id == "req-42"
    for sentence, (text, _, peak) in zip(draft.sentences, SENTENCES, strict=True):
        assert sentence.text == text
        assert sentence.evidence[0].index == peak  # the most relevant slice comes first
        assert sentence.evidence[0].SOPInstanceUID == study.volume.SOPInstanceUIDs[peak]
    assert {s.SOPInstanceUID for s in draft.sources} == set(study.volume.SOPInstanceUIDs)
    assert all(Path(s.path).is_file() for s in draft.sources)
    assert draft.provenance_line == f"AI draft by {MODEL.display_name} {MODEL.version} — {MODEL.label}"


def test_two_windows_saving_the_same_version_conflict(store: ReportStore, study: Study) -> None:
    uids = (study.volume.StudyInstanceUID, study.volume.SeriesInstanceUID)
    first = ReportSession.open(store, *uids, "reader1", draft=study.draft)
    second = ReportSession.open(store, *uids, "reader1")
    assert second.report_id == first.report_id and second.version == first.version
    first.save_draft({"FINDINGS": "From window one.", "IMPRESSION": ""}, first.version)
    with pytest.raises(ConflictError, match="changed elsewhere") as caught:
        second.save_draft({"FINDINGS": "From window two.", "IMPRESSION": ""}, second.version)
    assert (caught.value.base_version, caught.value.latest_version) == (1, 2)
    assert store.version(first.report_id).sections["FINDINGS"] == "From window one."
    second.reload()
    second.save_draft({"FINDINGS": "From window two, after reloading.", "IMPRESSION": ""}, second.version)
    assert store.version(first.report_id).sections["FINDINGS"] == "From window two, after reloading."
    assert len(store.versions(first.report_id)) == 3


def test_saving_unchanged_text_writes_no_version(session: ReportSession) -> None:
    before = len(session.store.versions(session.report_id))
    assert session.save_draft(session.sections, session.version) == session.version
    assert len(session.store.versions(session.report_id)) == before


def test_store_is_wal_with_full_sync_in_the_user_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDMPT_DATA_DIR", str(tmp_path / "userdata"))
    assert default_store_path() == tmp_path / "userdata" / "reports.sqlite3"
    with ReportStore() as store:
        assert store.path == default_store_path() and store.path.is_file()
    conn = sqlite3.connect(default_store_path())
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent in the file
    conn.close()


@pytest.mark.parametrize("sections", [{"FINDINGS": 3}, "plain text", {"": "x"}])
def test_malformed_sections_are_refused_clearly(session: ReportSession, sections: object) -> None:
    with pytest.raises(ValidationError, match="sections"):
        session.save_draft(sections, session.version)  # type: ignore[arg-type]


def test_a_draft_for_another_series_is_refused(store: ReportStore, study: Study) -> None:
    with pytest.raises(ValidationError, match="another study or series"):
        store.create_report(study.volume.StudyInstanceUID, "1.2.3.4.5", "reader1", draft=study.draft)


def test_draft_record_from_a_report_draft_keeps_its_request_id_and_nearby_evidence(study: Study) -> None:
    from app.drafting import ReportDraft

    bound = ReportDraft("req-7", study.volume.StudyInstanceUID, study.volume.SeriesInstanceUID, MODEL.model_hash,
                        study.result, "2026-01-01T00:00:00+00:00")
    record = draft_record_from_result(bound, study.volume, min_relevance=0.4)
    assert record.request_id == "req-7"
    for sentence, (_, _, peak) in zip(record.sentences, SENTENCES, strict=True):
        indices = [e.index for e in sentence.evidence]
        assert indices[0] == peak and sorted(indices) == [peak - 1, peak, peak + 1]
        assert all(e.SOPInstanceUID == study.volume.SOPInstanceUIDs[e.index] for e in sentence.evidence)


def test_replacing_with_a_new_draft_keeps_the_old_report_and_reopens_the_new_one(
        store: ReportStore, session: ReportSession, study: Study) -> None:
    from dataclasses import replace

    from app.reports import AuditAction, SignedReportError

    uids = (study.volume.StudyInstanceUID, study.volume.SeriesInstanceUID)
    edited = session.save_draft({"FINDINGS": "The reader's own words.", "IMPRESSION": ""}, session.version)
    newer = replace(study.draft, request_id="req-43", sections={"FINDINGS": "A newer draft.", "IMPRESSION": "New."})
    with pytest.raises(ConflictError):  # another window saved meanwhile: nothing replaced
        store.replace_with_draft(session.report_id, edited - 1, newer, "reader1")
    assert store.find_report(*uids).report_id == session.report_id
    new = store.replace_with_draft(session.report_id, edited, newer, "reader1")
    assert new.report_id != session.report_id and new.ai_draft.request_id == "req-43"
    reopened = ReportSession.open(store, *uids, "reader1")
    assert reopened.report_id == new.report_id
    assert reopened.sections == {"FINDINGS": "A newer draft.", "IMPRESSION": "New."}
    old = store.version(session.report_id)  # the old text is kept, not overwritten
    assert old.sections["FINDINGS"] == "The reader's own words."
    replaced = [e for e in store.audit(session.report_id) if e.action == AuditAction.REPLACED]
    assert [(e.who, e.version, e.details["by_report"], e.details["request_id"]) for e in replaced] == [
        ("reader1", edited, new.report_id, "req-43")]
    # a signed report is never replaced; another series' draft is refused
    reopened.sign("Dr. Signer")
    with pytest.raises(SignedReportError):
        store.replace_with_draft(new.report_id, reopened.version, newer, "reader1")
    with pytest.raises(ValidationError, match="another study or series"):
        store.replace_with_draft(session.report_id, edited, replace(newer, SeriesInstanceUID="1.2.3"), "reader1")


def test_the_diagnosis_checks_and_series_problems_shown_with_the_draft_are_kept_with_it(tmp_path: Path, study: Study) -> None:
    import dataclasses

    from app.drafting import ReportDraft

    diagnosis = {"nodule": {"absent": 0.31, "present": 0.69}, "effusion": {"absent": 0.02, "present": 0.98}}
    result = dataclasses.replace(study.result, diagnosis=diagnosis)
    draft = ReportDraft("req-7", study.volume.StudyInstanceUID, study.volume.SeriesInstanceUID,
                        result.model.model_hash, result)
    assert draft.checks, "the fixture's text names no effusion: the effusion head's 98 % must raise a check"
    gap = "gap of 10.00 mm between slices 5 and 6 of 10 (usual spacing 5.00 mm; about 1 slice(s) missing)"
    volume = dataclasses.replace(study.volume, problems=(gap,))  # what loading found wrong with the series
    record = draft_record_from_result(draft, volume, series=study.series)
    path = tmp_path / "reports.sqlite3"
    uids = (study.volume.StudyInstanceUID, study.volume.SeriesInstanceUID)
    with ReportStore(path) as store:
        ReportSession.open(store, *uids, "reader1", draft=record)
    with ReportStore(path) as store:
        kept = ReportSession.open(store, *uids, "reader1").ai_draft
    assert kept.diagnosis == diagnosis
    assert kept.checks == tuple(draft.checks) and kept.request_id == "req-7"
    assert kept.series_problems == (gap,)
