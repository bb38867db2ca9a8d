"""A report as JSON shaped like a FHIR R4 DiagnosticReport (with a contained ImagingStudy).

Not a FHIR server client: the resource is written to a file for other systems to import. The AI
provenance rides in an extension. Must not import Qt or DICOM libraries.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from app.export.bundle import ExportBundle
from app.export.text import dicom_date, render_text

LOINC_IMAGING = {"system": "http://loinc.org", "code": "18748-4", "display": "Diagnostic imaging study"}
AI_EXTENSION = "urn:medmpt:fhir:StructureDefinition/ai-draft-provenance"
DICOM_UID = "urn:dicom:uid"


def _effective(context: dict[str, str]) -> str | None:
    date = dicom_date(context.get("StudyDate", ""))
    if len(date) != 10:
        return None
    time = (context.get("StudyTime", "") or "").split(".")[0]
    offset = context.get("TimezoneOffsetFromUTC", "") or ""
    # FHIR: a dateTime with a time needs a timezone; without TimezoneOffsetFromUTC give the date only.
    if len(time) >= 6 and time[:6].isdigit() and re.fullmatch(r"[+-]\d{4}", offset):
        return f"{date}T{time[:2]}:{time[2:4]}:{time[4:6]}{offset[:3]}:{offset[3:]}"
    return date


def _imaging_study(bundle: ExportBundle) -> dict[str, Any]:
    evidence: dict[str, str] = {}
    sop_classes = {s.SOPInstanceUID: s.SOPClassUID for s in (bundle.draft.sources if bundle.draft else ())}
    for sentence in bundle.draft.sentences if bundle.draft else ():
        for item in sentence.evidence:
            evidence.setdefault(item.SOPInstanceUID, sop_classes.get(item.SOPInstanceUID, ""))
    series = {"uid": bundle.SeriesInstanceUID,
              "modality": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"},
              "instance": [{"uid": uid, "sopClass": {"system": "urn:ietf:rfc:3986", "code": f"urn:oid:{cls}"}}
                           for uid, cls in evidence.items() if cls]}
    if not series["instance"]:
        del series["instance"]
    return {"resourceType": "ImagingStudy", "id": "study", "status": "available",
            "subject": _subject(bundle),
            "identifier": [{"system": DICOM_UID, "value": f"urn:oid:{bundle.StudyInstanceUID}"}],
            "series": [series]}


def _subject(bundle: ExportBundle) -> dict[str, Any]:
    """A reference to the patient: Patient/<PatientID> when the ID is a valid FHIR id, plus the identifier."""
    patient_id = bundle.context.get("PatientID", "")
    subject: dict[str, Any] = {}
    if re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", patient_id):
        subject["reference"] = f"Patient/{patient_id}"
    subject["identifier"] = {"value": patient_id or "unknown"}
    if bundle.context.get("PatientName"):
        subject["display"] = bundle.context["PatientName"]
    return subject


def _ai_extension(bundle: ExportBundle) -> list[dict[str, Any]]:
    draft = bundle.draft
    if draft is None:
        return []
    values = [("modelName", draft.model_name), ("modelVersion", draft.model_version),
              ("modelSha256", draft.model_hash), ("label", draft.model_label),
              ("provenance", draft.provenance_line), ("requestId", draft.request_id)]
    return [{"url": AI_EXTENSION, "extension": [
        {"url": key, "valueString": value} for key, value in values if value] + [
        {"url": "clinicalUse", "valueBoolean": bool(draft.clinical_use)}]}]


def render_fhir(bundle: ExportBundle) -> dict[str, Any]:
    """The DiagnosticReport resource as a JSON-ready dict."""
    text = render_text(bundle)
    issued = bundle.version.signed_at or bundle.version.created_at
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": f"report-{bundle.report.report_id}-v{bundle.version.version}",
        "meta": {"versionId": str(bundle.version.version)},
        "contained": [_imaging_study(bundle)],
        "extension": _ai_extension(bundle),
        "identifier": [{"system": "urn:medmpt:report", "value": f"{bundle.report.report_id}"}],
        "status": bundle.status,
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074",
                                  "code": "RAD", "display": "Radiology"}]}],
        "code": {"coding": [LOINC_IMAGING], "text": "CT chest report"},
        "subject": _subject(bundle),
        "issued": issued,
        "imagingStudy": [{"reference": "#study"}],
        "conclusion": bundle.sections.get("IMPRESSION", "").strip(),
        "presentedForm": [{"contentType": "text/plain; charset=utf-8", "language": "en",
                           "title": f"Report {bundle.report.report_id} version {bundle.version.version}",
                           "data": base64.b64encode(text.encode()).decode("ascii")}],
    }
    effective = _effective(bundle.context)
    if effective:
        resource["effectiveDateTime"] = effective
    if bundle.reader:
        resource["performer"] = [{"display": bundle.reader}]
        resource["resultsInterpreter"] = [{"display": bundle.reader}]
    if not resource["extension"]:
        del resource["extension"]
    return resource
