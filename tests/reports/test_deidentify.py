"""PS3.15 basic-profile de-identification of a CT header: identifiers gone, links kept consistently."""

from __future__ import annotations

import pydicom
import pytest

from app.dicom.deidentify import Deidentifier, deidentify_context, deidentify_dataset

from .conftest import ACCESSION, PATIENT_ID, PATIENT_NAME, Study


@pytest.fixture
def header(study: Study) -> pydicom.Dataset:
    return pydicom.dcmread(study.series.slices[0].ref.path, stop_before_pixels=True)


def test_identifiers_removed_dates_shifted_uids_remapped(header: pydicom.Dataset) -> None:
    deid = Deidentifier("secret-1")
    out = deidentify_dataset(header, deid)
    assert str(out.PatientName) == deid.pseudonym_name(PATIENT_ID) and out.PatientID == deid.pseudonym(PATIENT_ID)
    for keyword in ("AccessionNumber", "PatientBirthDate", "ReferringPhysicianName"):  # type 2: kept empty
        assert keyword in out and not out[keyword].value
    assert "InstitutionName" not in out
    assert not any(element.tag.is_private for element in out)
    assert out.PatientIdentityRemoved == "YES"
    assert [c.CodeValue for c in out.DeidentificationMethodCodeSequence] == ["113100", "113107"]
    assert out.StudyDate != header.StudyDate and out.StudyDate == deid.shift_date(header.StudyDate, PATIENT_ID)
    assert out.SOPClassUID == header.SOPClassUID  # standard UIDs stay
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID"):
        assert out[keyword].value == deid.uid(header[keyword].value) != header[keyword].value
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert header.PatientID == PATIENT_ID  # the input is left unchanged
    text = str(out)
    for identifier in (PATIENT_NAME, PATIENT_ID, ACCESSION, "19610215", "General Hospital", "REFERRER"):
        assert identifier not in text


def test_remapping_is_consistent_per_secret_and_differs_between_secrets() -> None:
    one, same, other = Deidentifier("a"), Deidentifier("a"), Deidentifier("b")
    uid = "1.2.826.0.1.3680043.8.498.12345"
    assert one.uid(uid) == same.uid(uid) != other.uid(uid)
    assert one.uid(uid).startswith("2.25.") and len(one.uid(uid)) <= 64
    assert one.uid("1.2.840.10008.5.1.4.1.1.2") == "1.2.840.10008.5.1.4.1.1.2"
    # Intervals between a patient's dates survive the shift; the shift lies within ten years back.
    assert one.shift_date("20240110", "P1") > one.shift_date("20240101", "P1")
    assert one.offset_days("P1") == one.offset_days("P1") and -3650 <= one.offset_days("P1") <= -1
    assert one.shift_date("2024-01-01T10:00:00+00:00", "P1")[10:] == "T10:00:00+00:00"
    assert one.shift_date("not a date", "P1") == ""


def test_free_text_and_plain_contexts_lose_known_identifiers() -> None:
    deid = Deidentifier("s").with_identifiers([PATIENT_NAME, PATIENT_ID])
    assert deid.redact(f"Compared with prior of Alice Testpatient ({PATIENT_ID}).") == (
        "Compared with prior of [redacted] [redacted] ([redacted]).")
    context = {"PatientName": PATIENT_NAME, "PatientID": PATIENT_ID, "PatientBirthDate": "19610215",
               "AccessionNumber": ACCESSION, "StudyDate": "20240101", "StudyInstanceUID": "1.2.3.4",
               "InstitutionName": "General Hospital"}
    out = deidentify_context(context, deid)
    assert out["PatientID"] == deid.pseudonym(PATIENT_ID) and out["PatientBirthDate"] == ""
    assert out["AccessionNumber"] == "" and "InstitutionName" not in out
    assert out["StudyInstanceUID"] == deid.uid("1.2.3.4") and out["StudyDate"] == deid.shift_date("20240101", PATIENT_ID)
