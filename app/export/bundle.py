"""What an export needs, gathered once: report version, status, AI draft, patient/study context.

Also applies de-identification to everything a text, JSON or PDF header shows. Reads patient and
study attributes from a source image's header (through app.dicom) at export time: the report
store itself holds no patient identifiers. Must not import Qt or DICOM libraries directly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from app.dicom.deidentify import Deidentifier, deidentify_context
from app.reports import AIDraftRecord, Report, ReportState, ReportStore, ReportVersion
from app.reports.records import DraftSentence, EvidenceSlice, SourceInstance

log = logging.getLogger(__name__)
ANONYMOUS_READER = "Anonymized reader"


class ExportError(Exception):
    """An export cannot be made (message says why and what to do)."""


@dataclass(frozen=True)
class SignOff:
    version: int
    reader: str
    signed_at: str
    state: str  # signed | amended
    amends_version: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class ExportBundle:
    report: Report
    version: ReportVersion
    draft: AIDraftRecord | None
    context: dict[str, str]  # patient/study attributes by DICOM keyword ('' when unknown)
    header: Any = None  # a source image header (pydicom Dataset), for the SR; None when unavailable
    chain: tuple[SignOff, ...] = ()  # every sign-off up to the exported version, oldest first
    deidentifier: Deidentifier | None = None
    sections: dict[str, str] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """FHIR DiagnosticReport status: final, amended or preliminary."""
        return {ReportState.SIGNED: "final", ReportState.AMENDED: "amended"}.get(self.version.state, "preliminary")

    @property
    def signed(self) -> bool:
        return self.status != "preliminary"

    @property
    def StudyInstanceUID(self) -> str:
        return self.uid(self.report.StudyInstanceUID)

    @property
    def SeriesInstanceUID(self) -> str:
        return self.uid(self.report.SeriesInstanceUID)

    @property
    def reader(self) -> str:
        return self.chain[-1].reader if self.signed and self.chain else ""

    @property
    def provenance_line(self) -> str:
        return self.draft.provenance_line if self.draft else "No AI draft: written by the reader"

    def uid(self, uid: str) -> str:
        return self.deidentifier.uid(uid) if self.deidentifier else uid


def _chain(store: ReportStore, report_id: int, upto: int) -> tuple[SignOff, ...]:
    versions = [v for v in store.versions(report_id) if v.version <= upto]
    reasons = {v.amends_version: v.amendment_reason for v in versions if v.amendment_reason}
    return tuple(SignOff(v.version, v.signed_by, v.signed_at, str(v.state), v.amends_version,
                         reasons.get(v.amends_version, "") if v.amends_version else "")
                 for v in versions if v.signed_by)


def _header(draft: AIDraftRecord | None, extra: Sequence[tuple[str, str]]) -> Any:
    """The first readable source header: the caller's files first, then the draft's recorded files."""
    from app.dicom.sr_writer import read_source_header

    candidates = list(extra) + [(s.path, s.member) for s in (draft.sources if draft else ()) if s.path]
    for path, member in candidates:
        if Path(path).is_file():
            try:
                return read_source_header(path, member)
            except Exception as exc:  # noqa: BLE001 - any unreadable file: try the next one
                log.debug("source header unreadable (%s)", type(exc).__name__)
    return None


def load_bundle(store: ReportStore, report_id: int, version: int | None = None, deidentify: bool = False,
                source_files: Sequence[tuple[str, str]] = ()) -> ExportBundle:
    """Gather an export of `version` (default: the latest signed version, else the latest)."""
    from app.dicom.sr_writer import study_context

    report = store.get_report(report_id)
    if version is None:
        signed = store.latest_signed(report_id)
        chosen = signed or store.version(report_id)
    else:
        chosen = store.version(report_id, version)
    header = _header(report.ai_draft, source_files)
    context = study_context(header) or {"StudyInstanceUID": report.StudyInstanceUID}
    context["SeriesInstanceUID"] = report.SeriesInstanceUID
    bundle = ExportBundle(report, chosen, report.ai_draft, context, header,
                          _chain(store, report_id, chosen.version), sections=dict(chosen.sections))
    return _deidentified(bundle, store) if deidentify else bundle


def deid_secret(store: ReportStore) -> str:
    """The installation's secret that keeps de-identified UIDs and pseudonyms consistent."""
    secret = store.setting("deid_secret")
    if not secret:
        raise ExportError("the report store has no de-identification secret; open it writable once to migrate it")
    return secret


def _deidentified(bundle: ExportBundle, store: ReportStore) -> ExportBundle:
    secret = deid_secret(store)
    patient_id = bundle.context.get("PatientID", "")
    deid = Deidentifier(secret).with_identifiers(
        bundle.context.get(k, "") for k in ("PatientName", "PatientID", "AccessionNumber", "PatientBirthDate"))
    shift = lambda text: deid.shift_date(text, patient_id) if text else ""  # noqa: E731
    chain = tuple(replace(s, reader=ANONYMOUS_READER, signed_at=shift(s.signed_at), reason=deid.redact(s.reason))
                  for s in bundle.chain)
    version = replace(bundle.version, created_at=shift(bundle.version.created_at), author=ANONYMOUS_READER,
                      signed_by=ANONYMOUS_READER if bundle.version.signed_by else "",
                      signed_at=shift(bundle.version.signed_at))
    draft = bundle.draft
    if draft is not None:
        draft = replace(draft, StudyInstanceUID=deid.uid(draft.StudyInstanceUID),
                        SeriesInstanceUID=deid.uid(draft.SeriesInstanceUID), created=shift(draft.created),
                        request_id="", FrameOfReferenceUID=deid.uid(draft.FrameOfReferenceUID),
                        sentences=tuple(DraftSentence(deid.redact(s.text), s.section, tuple(
                            EvidenceSlice(e.index, deid.uid(e.SOPInstanceUID), e.relevance) for e in s.evidence))
                            for s in draft.sentences),
                        sources=tuple(SourceInstance(deid.uid(s.SOPInstanceUID), s.SOPClassUID) for s in draft.sources))
    sections = {k: deid.redact(v) for k, v in bundle.sections.items()}
    return replace(bundle, version=version, draft=draft, chain=chain, deidentifier=deid, sections=sections,
                   context=deidentify_context(bundle.context, deid))
