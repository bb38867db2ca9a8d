"""Text, FHIR-like JSON and PDF exports: what a reader, an EHR and a printer get, de-identified on request."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pypdf
import pytest

from app.dicom.deidentify import Deidentifier
from app.export import ExportError, export_report
from app.reports import ReportSession

from .conftest import ACCESSION, MODEL, PATIENT_ID, PATIENT_NAME, Study

EDITED = {"FINDINGS": "The lungs are clear. A 6 mm nodule is seen in the right upper lobe (series 2).",
          "IMPRESSION": "Small pulmonary nodule; follow-up CT in 12 months."}
PROVENANCE = f"AI draft by {MODEL.display_name} {MODEL.version} — {MODEL.label}"
IDENTIFIERS = (PATIENT_NAME, "TESTPATIENT", PATIENT_ID, ACCESSION, "19610215")


def _signed(session: ReportSession) -> None:
    session.save_draft(EDITED, session.version)
    session.sign("Dr Jane Reader")


def test_text_export_has_report_provenance_and_signoff(session: ReportSession, tmp_path: Path) -> None:
    _signed(session)
    text = export_report(session.store, session.report_id, "txt", tmp_path, user="r").read_text(encoding="utf-8")
    assert EDITED["FINDINGS"] in text and EDITED["IMPRESSION"] in text
    assert PROVENANCE in text
    assert "Signed by Dr Jane Reader" in text and "FINAL" in text
    assert "TESTPATIENT^ALICE" in text and PATIENT_ID in text  # a clinical export names the patient


def test_unsigned_export_is_marked_preliminary(session: ReportSession, tmp_path: Path) -> None:
    text = export_report(session.store, session.report_id, "txt", tmp_path, user="r").read_text(encoding="utf-8")
    assert "PRELIMINARY" in text and "Not signed" in text and "Signed by" not in text
    fhir = json.loads(export_report(session.store, session.report_id, "json", tmp_path, user="r").read_text())
    assert fhir["status"] == "preliminary" and "performer" not in fhir


def test_fhir_json_is_a_diagnostic_report_with_study_and_ai_provenance(session: ReportSession, study: Study,
                                                                        tmp_path: Path) -> None:
    _signed(session)
    fhir = json.loads(export_report(session.store, session.report_id, "json", tmp_path, user="r").read_text())
    assert fhir["resourceType"] == "DiagnosticReport" and fhir["status"] == "final"
    assert fhir["code"]["coding"][0] == {"system": "http://loinc.org", "code": "18748-4",
                                         "display": "Diagnostic imaging study"}
    assert fhir["subject"]["reference"] == f"Patient/{PATIENT_ID}"
    assert fhir["subject"]["identifier"] == {"value": PATIENT_ID}
    assert fhir["effectiveDateTime"] == "2024-01-01"  # no TimezoneOffsetFromUTC: the date only
    assert fhir["issued"] == session.store.latest_signed(session.report_id).signed_at
    assert fhir["performer"] == [{"display": "Dr Jane Reader"}]
    assert fhir["conclusion"] == EDITED["IMPRESSION"]
    presented = base64.b64decode(fhir["presentedForm"][0]["data"]).decode()
    assert EDITED["FINDINGS"] in presented
    imaging = fhir["contained"][0]
    assert fhir["imagingStudy"] == [{"reference": f"#{imaging['id']}"}]
    assert imaging["identifier"][0]["value"] == f"urn:oid:{study.volume.StudyInstanceUID}"
    assert imaging["series"][0]["uid"] == study.volume.SeriesInstanceUID
    evidence = {e.SOPInstanceUID for s in study.draft.sentences for e in s.evidence}
    assert {i["uid"] for i in imaging["series"][0]["instance"]} == evidence
    ai = {e["url"]: e.get("valueString", e.get("valueBoolean")) for e in fhir["extension"][0]["extension"]}
    assert ai["modelName"] == MODEL.name and ai["modelSha256"] == MODEL.model_hash
    assert ai["provenance"] == PROVENANCE and ai["clinicalUse"] is False


def test_amended_json_says_amended(session: ReportSession, tmp_path: Path) -> None:
    _signed(session)
    session.amend("Follow-up interval corrected")
    session.save_draft({**EDITED, "IMPRESSION": "Small nodule; follow-up in 6 months."}, session.version)
    session.sign("Dr Jane Reader")
    fhir = json.loads(export_report(session.store, session.report_id, "json", tmp_path, user="r").read_text())
    assert fhir["status"] == "amended" and fhir["conclusion"] == "Small nodule; follow-up in 6 months."
    text = base64.b64decode(fhir["presentedForm"][0]["data"]).decode()
    assert "reason: Follow-up interval corrected" in text


@pytest.mark.parametrize("fmt", ["txt", "json", "pdf"])
def test_deidentified_exports_hold_no_identifiers(session: ReportSession, study: Study, tmp_path: Path,
                                                  fmt: str) -> None:
    _signed(session)
    path = export_report(session.store, session.report_id, fmt, tmp_path, user="r", deidentify=True)
    content = _pdf_text(path) if fmt == "pdf" else path.read_text(encoding="utf-8")
    if fmt == "json":
        content += base64.b64decode(json.loads(content)["presentedForm"][0]["data"]).decode()
    for identifier in (*IDENTIFIERS, "Jane", study.volume.StudyInstanceUID, study.volume.SeriesInstanceUID):
        assert identifier not in content
    deid = Deidentifier(session.store.setting("deid_secret"))
    assert deid.pseudonym(PATIENT_ID) in content and deid.uid(study.volume.StudyInstanceUID) in content
    assert EDITED["FINDINGS"] in content.replace("\n", " ") and PROVENANCE in content


def _pdf_text(path: Path) -> str:
    """Text of a PDF as Ghostscript reads it (an independent parser); skips when gs is absent."""
    gs = shutil.which("gs")
    if gs is None:
        pytest.skip("Ghostscript (gs) is not installed; cannot read the PDF back")
    done = subprocess.run([gs, "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=txtwrite", "-sOutputFile=-",
                           str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "Error" not in done.stderr, done.stderr
    return " ".join(" ".join(line.split()) for line in done.stdout.splitlines())


def test_pdf_has_text_provenance_signoff_and_key_images(session: ReportSession, tmp_path: Path) -> None:
    _signed(session)
    rng = np.random.default_rng(3)
    images = [(f"Slice {z}: nodule heatmap", rng.integers(0, 256, (48 + z, 64, 3), dtype=np.uint8)) for z in (4, 5)]
    path = export_report(session.store, session.report_id, "pdf", tmp_path, user="r", images=images)
    text = _pdf_text(path)
    for expected in (EDITED["FINDINGS"], EDITED["IMPRESSION"], PROVENANCE, "Signed by Dr Jane Reader",
                     "Slice 4: nodule heatmap", "Slice 5: nodule heatmap", PATIENT_ID):
        assert expected in text
    reader = pypdf.PdfReader(path, strict=True)  # a well-formed file (cross-reference table included)
    assert reader.metadata.title == f"Report {session.report_id} version {session.version} (final)"
    pictures = {tuple(np.asarray(found.image).shape): np.asarray(found.image) for found in reader.pages[0].images}
    assert len(pictures) == 2
    for _, rgb in images:  # embedded losslessly: pixel for pixel what the viewer showed
        assert np.array_equal(pictures[rgb.shape], rgb)


def test_long_report_flows_onto_more_pages(session: ReportSession, tmp_path: Path) -> None:
    long_text = " ".join(f"Finding number {i} is described here in some detail." for i in range(300))
    session.save_draft({"FINDINGS": long_text, "IMPRESSION": "End of report."}, session.version)
    path = export_report(session.store, session.report_id, "pdf", tmp_path, user="r")
    pages = len(pypdf.PdfReader(path).pages)
    assert pages >= 3
    text = _pdf_text(path)
    assert "Finding number 299 is described" in text and "End of report." in text
    for page in range(1, pages + 1):  # a missing printed page shows in the footer
        assert f"Report {session.report_id} version {session.version} (preliminary) page {page} of {pages}" in text


@pytest.mark.parametrize("images", [[("float image", np.zeros((8, 8, 3)))], [("grey", np.zeros((8, 8), np.uint8))],
                                    ["not a pair"]])
def test_malformed_key_images_are_refused_clearly(session: ReportSession, tmp_path: Path, images: list) -> None:
    with pytest.raises(ExportError, match="key image 1"):
        export_report(session.store, session.report_id, "pdf", tmp_path / "x.pdf", user="r", images=images)
    assert not (tmp_path / "x.pdf").exists()
    assert [e.action for e in session.store.audit(session.report_id)][-1] != "exported"


def test_unknown_format_is_refused(session: ReportSession, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="unknown export format 'docx'"):
        export_report(session.store, session.report_id, "docx", tmp_path, user="r")


def test_effective_time_is_given_only_with_its_timezone() -> None:
    from app.export.fhir import _effective

    with_zone = {"StudyDate": "20240101", "StudyTime": "101502.123", "TimezoneOffsetFromUTC": "-0500"}
    assert _effective(with_zone) == "2024-01-01T10:15:02-05:00"
    assert _effective({"StudyDate": "20240101", "StudyTime": "101502"}) == "2024-01-01"
    assert _effective({"StudyDate": ""}) is None
