"""DICOM SR export of a report bundle (built by app.dicom.sr_writer, de-identified on request).

UIDs are derived from the installation's secret, the report id and the version, so version N's
SR always has the same SOP Instance UID (versions never change once saved), and the SR of an
amendment can name the SR of the version it replaces in its Predecessor Documents Sequence
whether or not that one was exported.

Must not import pydicom or highdicom itself (they live in app.dicom) nor Qt.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from app.export.bundle import ExportBundle, ExportError


def derived_uid(secret: str, *parts: object) -> str:
    """A stable 2.25 UID: the same report version always gets the same SR UIDs."""
    digest = hashlib.sha256("\x1f".join([secret, *map(str, parts)]).encode()).hexdigest()
    return f"2.25.{int(digest[:32], 16)}"


def sr_uids(secret: str, report_id: int, version: int) -> tuple[str, str]:
    """(SeriesInstanceUID, SOPInstanceUID) of the SR of one report version (one SR series per report)."""
    return derived_uid(secret, "sr-series", report_id), derived_uid(secret, "sr", report_id, version)


def replaced_version(bundle: ExportBundle) -> int | None:
    """The signed version the exported one replaces: the one an amendment amends; for an unsigned
    draft after a signature (an amendment in progress), the latest signed version; else None."""
    if bundle.version.amends_version is not None:
        return bundle.version.amends_version
    if not bundle.signed and bundle.chain:
        return bundle.chain[-1].version
    return None


def _document(bundle: ExportBundle, secret: str):  # noqa: ANN202 - app.dicom.sr_writer.SRDocument
    from app.dicom.sr_writer import SRDocument, SRSentence

    header, draft = bundle.header, bundle.draft
    if draft is not None and draft.sources:
        sources = tuple((s.SOPInstanceUID, s.SOPClassUID) for s in draft.sources)
    else:
        sources = ((str(header.SOPInstanceUID), str(header.SOPClassUID)),)
    sentences = tuple(SRSentence(s.text, s.section, tuple(e.SOPInstanceUID for e in s.evidence))
                      for s in (draft.sentences if draft else ()))
    last = bundle.chain[-1] if bundle.signed and bundle.chain else None
    replaced = replaced_version(bundle)
    return SRDocument(
        StudyInstanceUID=bundle.report.StudyInstanceUID, SeriesInstanceUID=bundle.report.SeriesInstanceUID,
        sections=dict(bundle.sections), sentences=sentences, sources=sources,
        model_name=draft.model_name if draft else "none", model_version=draft.model_version if draft else "",
        model_hash=draft.model_hash if draft else "",
        reader_name=last.reader if last else "", signed_at=last.signed_at if last else "",
        amendment_reason=last.reason if last and last.amends_version is not None else "",
        provenance=bundle.provenance_line,
        institution_name=str(header.get("InstitutionName", "") or ""),
        instance_number=bundle.version.version,
        predecessors=(sr_uids(secret, bundle.report.report_id, replaced),) if replaced is not None else ())


def write_sr_export(bundle: ExportBundle, path: Path, secret: str, deidentify: bool = False) -> None:
    """Write the SR of a (not de-identified) bundle to `path`; `deidentify` cleans the dataset."""
    from app.dicom.deidentify import Deidentifier, deidentify_dataset
    from app.dicom.sr_writer import SRError, build_sr

    if bundle.header is None:
        raise ExportError(
            "a DICOM SR needs one of the source CT images for the patient and study attributes, and none "
            "of the files recorded with this report can be read; export from the DICOM folder instead "
            "(medmpt export FOLDER --format sr)")
    series_uid, sop_uid = sr_uids(secret, bundle.report.report_id, bundle.version.version)
    try:
        sr = build_sr(_document(bundle, secret), bundle.header, sop_instance_uid=sop_uid,
                      series_instance_uid=series_uid)
    except SRError as exc:
        raise ExportError(str(exc)) from exc
    if deidentify:
        sr = deidentify_dataset(sr, Deidentifier(secret))
    sr.save_as(path, enforce_file_format=True)
