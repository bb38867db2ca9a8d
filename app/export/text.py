"""Plain-text rendering of a report export (also the lines the PDF prints). Must not import Qt or DICOM libraries."""

from __future__ import annotations

from app.export.bundle import ExportBundle

TITLE = "DIAGNOSTIC IMAGING REPORT (CT)"
STATUS_WORDS = {"final": "FINAL (signed)", "amended": "AMENDED (signed amendment)",
                "preliminary": "PRELIMINARY (not signed)"}


def dicom_date(value: str) -> str:
    """YYYYMMDD as YYYY-MM-DD (other text unchanged; '' stays '')."""
    value = (value or "").strip()
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) >= 8 and value[:8].isdigit() else value


def header_lines(bundle: ExportBundle) -> list[str]:
    c = bundle.context
    unknown = "not available"
    lines = [
        f"Patient: {c.get('PatientName') or unknown}    ID: {c.get('PatientID') or unknown}",
        f"Birth date: {dicom_date(c.get('PatientBirthDate', '')) or unknown}    Sex: {c.get('PatientSex') or unknown}",
        f"Study date: {dicom_date(c.get('StudyDate', '')) or unknown}    Accession: {c.get('AccessionNumber') or unknown}",
        f"StudyInstanceUID: {bundle.StudyInstanceUID}",
        f"SeriesInstanceUID: {bundle.SeriesInstanceUID}",
        f"Report {bundle.report.report_id}, version {bundle.version.version}: {STATUS_WORDS[bundle.status]}",
    ]
    if bundle.deidentifier is not None:
        lines.append(f"De-identified for research ({c.get('DeidentificationMethod', 'PS3.15 basic profile')})")
    return lines


def body_sections(bundle: ExportBundle) -> list[tuple[str, str]]:
    """(heading, text) per non-empty section, FINDINGS then IMPRESSION then any others."""
    order = ["FINDINGS", "IMPRESSION"] + [k for k in bundle.sections if k not in ("FINDINGS", "IMPRESSION")]
    return [(k, bundle.sections[k].strip()) for k in order if bundle.sections.get(k, "").strip()]


def signoff_lines(bundle: ExportBundle) -> list[str]:
    lines = [bundle.provenance_line]
    for sign in bundle.chain:
        if sign.amends_version is not None:
            lines.append(f"Amendment of version {sign.amends_version} signed by {sign.reader} at {sign.signed_at}"
                         + (f"; reason: {sign.reason}" if sign.reason else ""))
        else:
            lines.append(f"Signed by {sign.reader} at {sign.signed_at} (version {sign.version})")
    if not bundle.signed:
        lines.append("Not signed: preliminary draft, not for clinical decisions")
    return lines


def render_text(bundle: ExportBundle) -> str:
    parts = [TITLE, *header_lines(bundle), ""]
    for heading, text in body_sections(bundle):
        parts += [f"{heading}:", text, ""]
    parts += signoff_lines(bundle)
    return "\n".join(parts) + "\n"
