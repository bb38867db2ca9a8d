"""DICOM SR export: valid under dciodvfy, and reading it back gives the same text and references."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from app.dicom import index_sources
from app.dicom.deidentify import Deidentifier
from app.dicom.sr_writer import read_sr
from app.export import ExportError, export_report
from app.reports import ReportSession, ReportStore

from .conftest import ACCESSION, MODEL, PATIENT_ID, PATIENT_NAME, Study
from .dciodvfy import dciodvfy_errors

EDITED = {"FINDINGS": "The lungs are clear.  A 6 mm nodule is seen in the right upper lobe.\nNo effusion; "
                       "the nodule measures 6 × 4 mm — Müller's sign absent.",
          "IMPRESSION": "Small pulmonary nodule."}


def _signed(session: ReportSession, reader: str = "Dr Jane Reader") -> None:
    session.save_draft(EDITED, session.version)
    session.sign(reader)


def test_signed_sr_round_trips_text_observers_and_evidence(session: ReportSession, study: Study,
                                                           tmp_path: Path) -> None:
    _signed(session)
    path = export_report(session.store, session.report_id, "sr", tmp_path / "report.dcm", user="reader1")
    assert dciodvfy_errors(path) == []
    back = read_sr(path)
    assert back["sections"] == EDITED  # exact, whitespace and line breaks included
    assert back["CompletionFlag"] == "COMPLETE" and back["VerificationFlag"] == "VERIFIED"
    assert back["person_observers"] == ["Reader^Jane^^Dr"]
    assert back["algorithm"] == {"name": MODEL.name, "version": MODEL.version, "family": "Artificial Intelligence",
                                 "parameters": f"model_sha256={MODEL.model_hash}"}
    assert f"AI draft by {MODEL.display_name} {MODEL.version} — {MODEL.label}" in back["comments"]
    assert back["referenced_series"] == [study.volume.SeriesInstanceUID]
    expected = {(s.section, s.text, tuple(e.SOPInstanceUID for e in s.evidence)) for s in study.draft.sentences}
    assert set(back["evidence"]) == expected  # every AI sentence kept in the text points at its slices
    ds = pydicom.dcmread(path)
    assert ds.StudyInstanceUID == study.volume.StudyInstanceUID
    assert (ds.PatientName, ds.PatientID) == (PATIENT_NAME, PATIENT_ID)
    assert ds.VerifyingObserverSequence[0].VerifyingObserverName == "Reader^Jane^^Dr"
    device = [i for i in ds.ContentSequence if i.ValueType == "TEXT"
              and i.ConceptNameCodeSequence[0].CodeMeaning == "Device Observer Name"]
    assert device and device[0].TextValue == MODEL.name


def test_unsigned_sr_is_partial_and_unverified(session: ReportSession, tmp_path: Path) -> None:
    path = export_report(session.store, session.report_id, "sr", tmp_path, user="reader1")
    assert dciodvfy_errors(path) == []
    back = read_sr(path)
    assert (back["CompletionFlag"], back["VerificationFlag"]) == ("PARTIAL", "UNVERIFIED")
    assert back["person_observers"] == []


def test_amended_sr_is_valid_and_carries_the_reason(session: ReportSession, tmp_path: Path) -> None:
    _signed(session)
    session.amend("Nodule size corrected")
    session.save_draft({**EDITED, "FINDINGS": "A 7 mm nodule is seen in the right upper lobe."}, session.version)
    session.sign("Dr Jane Reader")
    path = export_report(session.store, session.report_id, "sr", tmp_path, user="reader1")
    assert dciodvfy_errors(path) == []
    assert "Amendment: Nodule size corrected" in read_sr(path)["comments"]
    assert read_sr(path)["sections"]["FINDINGS"] == "A 7 mm nodule is seen in the right upper lobe."
    # The edited sentence lost its evidence link; the unchanged impression kept its own.
    assert [e[0] for e in read_sr(path)["evidence"]] == ["IMPRESSION"]


def test_amendment_sr_references_the_sr_of_the_version_it_replaces(session: ReportSession, study: Study,
                                                                   tmp_path: Path) -> None:
    def export(name: str, version: int | None = None, deidentify: bool = False) -> Path:
        return export_report(session.store, session.report_id, "sr", tmp_path / name, user="r", version=version,
                             deidentify=deidentify)

    _signed(session)
    original = session.version
    first = pydicom.dcmread(export("original.dcm"))
    assert read_sr(tmp_path / "original.dcm")["predecessors"] == []  # a first signature replaces nothing
    session.amend("Nodule size corrected")
    session.save_draft({**EDITED, "FINDINGS": "A 7 mm nodule."}, session.version)
    draft = read_sr(export("amendment-draft.dcm", version=session.version))  # unsigned amendment in progress
    first_amendment = session.sign("Łukasz Dvořák").version
    amended = export("amended.dcm")
    assert dciodvfy_errors(amended) == []
    back, ds = read_sr(amended), pydicom.dcmread(amended)
    reference = (study.volume.StudyInstanceUID, first.SeriesInstanceUID, first.SOPInstanceUID)
    assert back["predecessors"] == [reference] and draft["predecessors"] == [reference]
    predecessor = ds.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert predecessor.ReferencedSOPClassUID == first.SOPClassUID
    assert back["person_observers"] == ["Dvořák^Łukasz"] and back["sections"]["FINDINGS"] == "A 7 mm nodule."
    assert ds.SeriesInstanceUID == first.SeriesInstanceUID and ds.SOPInstanceUID != first.SOPInstanceUID
    # UIDs are stable per version: the replaced version re-exported later is the one referenced.
    assert pydicom.dcmread(export("again.dcm", version=original)).SOPInstanceUID == first.SOPInstanceUID
    assert pydicom.dcmread(export("amended-again.dcm")).SOPInstanceUID == ds.SOPInstanceUID
    # A second amendment replaces the first one, not the original.
    session.amend("Impression clarified")
    session.save_draft({**EDITED, "FINDINGS": "A 7 mm nodule.", "IMPRESSION": "Nodule, follow up."}, session.version)
    session.sign("Dr Jane Reader")
    second = export("second.dcm")
    assert dciodvfy_errors(second) == []
    assert read_sr(second)["predecessors"] == [(study.volume.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)]
    # De-identified copies keep the link: the reference is remapped like the UID it points at.
    deid_original = pydicom.dcmread(export("deid-original.dcm", version=original, deidentify=True))
    deid_amended = export("deid-amended.dcm", version=first_amendment, deidentify=True)
    assert dciodvfy_errors(deid_amended) == []
    assert read_sr(deid_amended)["predecessors"] == [
        (deid_original.StudyInstanceUID, deid_original.SeriesInstanceUID, deid_original.SOPInstanceUID)]


def test_deidentified_sr_is_valid_consistent_and_free_of_identifiers(session: ReportSession, study: Study,
                                                                     tmp_path: Path) -> None:
    _signed(session)
    first = export_report(session.store, session.report_id, "sr", tmp_path / "a.dcm", user="r", deidentify=True)
    second = export_report(session.store, session.report_id, "sr", tmp_path / "b.dcm", user="r", deidentify=True)
    assert dciodvfy_errors(first) == []
    raw = first.read_bytes()
    for identifier in (PATIENT_NAME, "TESTPATIENT", PATIENT_ID, ACCESSION, "19610215", "Jane", "General Hospital",
                       study.volume.StudyInstanceUID, study.volume.SeriesInstanceUID):
        assert identifier.encode() not in raw
    ds, again = pydicom.dcmread(first), pydicom.dcmread(second)
    assert ds.PatientIdentityRemoved == "YES"
    deid = Deidentifier(session.store.setting("deid_secret"))
    assert ds.StudyInstanceUID == deid.uid(study.volume.StudyInstanceUID) == again.StudyInstanceUID
    assert ds.SOPInstanceUID == again.SOPInstanceUID  # same report version, same remapped UIDs
    assert ds.PatientID == deid.pseudonym(PATIENT_ID) and ds.PatientBirthDate == ""
    assert ds.StudyDate == deid.shift_date("20240101", PATIENT_ID) != "20240101"
    back = read_sr(first)
    assert back["sections"] == EDITED
    assert back["referenced_series"] == [deid.uid(study.volume.SeriesInstanceUID)]
    assert {uid for *_, uids in back["evidence"] for uid in uids} == {
        deid.uid(e.SOPInstanceUID) for s in study.draft.sentences for e in s.evidence}


def test_sr_without_readable_source_files_explains_what_to_do(tmp_path: Path, study: Study) -> None:
    with ReportStore(tmp_path / "r.sqlite3") as store:
        report = store.create_report(study.volume.StudyInstanceUID, study.volume.SeriesInstanceUID, "r",
                                     sections={"FINDINGS": "Manual report."})
        with pytest.raises(ExportError, match="export from the DICOM folder"):
            export_report(store, report.report_id, "sr", tmp_path, user="r")
        files = [(str(study.series.slices[0].ref.path), "")]
        path = export_report(store, report.report_id, "sr", tmp_path, user="r", source_files=files)
        assert dciodvfy_errors(path) == []
        assert read_sr(path)["sections"] == {"FINDINGS": "Manual report."}


def test_sr_from_the_real_ct_header_is_valid(real_series_dir: Path, tmp_path: Path) -> None:
    series = max(index_sources(real_series_dir).series, key=lambda s: len(s.slices))
    with ReportStore(tmp_path / "r.sqlite3") as store:
        report = store.create_report(series.StudyInstanceUID, series.SeriesInstanceUID, "r",
                                     sections={"FINDINGS": "Real header test.", "IMPRESSION": "None."})
        files = [(str(series.slices[0].ref.path), series.slices[0].ref.member or "")]
        store.sign(report.report_id, 1, "Dr Jane Reader")
        for deidentify in (False, True):
            path = export_report(store, report.report_id, "sr", tmp_path / f"real-{deidentify}.dcm", user="r",
                                 source_files=files, deidentify=deidentify)
            assert dciodvfy_errors(path) == []
