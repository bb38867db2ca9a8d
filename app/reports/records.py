"""Plain data of the report store: states, AI draft records, versions, audit entries.

Holds no patient names or IDs, only UIDs, text and provenance. Must not import Qt, DICOM
libraries or inference internals (ReportResult / Volume / SeriesInfo are read duck-typed).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
SECTIONS = ("FINDINGS", "IMPRESSION")


class ReportState(StrEnum):
    DRAFT = "draft"  # the AI draft (or an empty report), not yet edited
    EDITED = "edited"  # a person changed the text
    SIGNED = "signed"  # signed off: locked
    AMENDED = "amended"  # an amendment of a signed report was signed: locked


LOCKED_STATES = frozenset({ReportState.SIGNED, ReportState.AMENDED})


class AuditAction(StrEnum):
    OPENED = "opened"
    DRAFTED = "drafted"
    EDITED = "edited"
    ACCEPTED_SENTENCE = "accepted sentence"
    DELETED_SENTENCE = "deleted sentence"
    SIGNED = "signed"
    AMENDED = "amended"
    EXPORTED = "exported"
    REVIEWED_FINDING = "reviewed finding"  # a clinician agreed or disagreed with an AI finding
    REPLACED = "replaced by a new draft"  # an unsigned report set aside for a new report from a new AI draft


def utc_now() -> str:
    """Now as UTC ISO 8601 with milliseconds, e.g. 2026-01-02T03:04:05.678+00:00."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class SourceInstance:
    """One image of the source series: its UIDs and where its file was (for re-reading headers)."""

    SOPInstanceUID: str
    SOPClassUID: str = CT_IMAGE_STORAGE
    path: str = ""
    member: str = ""  # zip member, when the file was inside an archive


@dataclass(frozen=True)
class EvidenceSlice:
    """A slice an AI sentence draws on: original slice index, its SOPInstanceUID, relevance 0..1."""

    index: int
    SOPInstanceUID: str
    relevance: float = 1.0


@dataclass(frozen=True)
class DraftSentence:
    text: str
    section: str
    evidence: tuple[EvidenceSlice, ...] = ()


@dataclass(frozen=True)
class AIDraftRecord:
    """The AI draft a report started from: text, sentence evidence, model provenance, source UIDs."""

    StudyInstanceUID: str
    SeriesInstanceUID: str
    sections: dict[str, str]
    sentences: tuple[DraftSentence, ...] = ()
    model_name: str = ""
    model_version: str = ""
    model_display_name: str = ""
    model_hash: str = ""
    model_label: str = ""
    clinical_use: bool = False
    request_id: str = ""
    created: str = field(default_factory=utc_now)
    FrameOfReferenceUID: str = ""
    sources: tuple[SourceInstance, ...] = ()
    # What the reader was shown beside the draft: the heads' (calibrated) probabilities and the
    # draft's checks (app.draft_checks). Empty in records written before they were kept.
    diagnosis: dict[str, dict[str, float]] = field(default_factory=dict)
    checks: tuple[str, ...] = ()
    # What loading found wrong with the series (gaps, unreadable images, missing rescale); empty in
    # records written before it was kept.
    series_problems: tuple[str, ...] = ()

    @property
    def provenance_line(self) -> str:
        """"AI draft by <model> <version> — <label>" for every rendering of the report."""
        model = " ".join(p for p in (self.model_display_name or self.model_name, self.model_version) if p)
        return f"AI draft by {model} — {self.model_label}" if self.model_label else f"AI draft by {model}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AIDraftRecord:
        data = dict(data)
        data["sentences"] = tuple(
            DraftSentence(s["text"], s["section"], tuple(EvidenceSlice(**e) for e in s.get("evidence", ())))
            for s in data.get("sentences", ()))
        data["sources"] = tuple(SourceInstance(**s) for s in data.get("sources", ()))
        data["checks"] = tuple(data.get("checks", ()))
        data["series_problems"] = tuple(data.get("series_problems", ()))
        return cls(**data)


@dataclass(frozen=True)
class ReportVersion:
    """One saved version (rows are append-only: a version never changes once written)."""

    report_id: int
    version: int
    state: ReportState
    sections: dict[str, str]
    created_at: str
    author: str
    base_version: int | None = None
    signed_by: str = ""
    signed_at: str = ""
    amendment_reason: str = ""
    amends_version: int | None = None

    @property
    def text(self) -> str:
        return sections_text(self.sections)


@dataclass(frozen=True)
class Report:
    report_id: int
    StudyInstanceUID: str
    SeriesInstanceUID: str
    state: ReportState
    latest_version: int
    created_at: str
    ai_draft: AIDraftRecord | None = None


@dataclass(frozen=True)
class AuditEntry:
    at: str  # UTC ISO 8601
    who: str
    action: AuditAction
    report_id: int | None
    version: int | None
    details: dict[str, Any]


def sections_text(sections: dict[str, str]) -> str:
    """The report as plain text: 'FINDINGS: ...' then 'IMPRESSION: ...' (empty sections left out)."""
    order = [s for s in SECTIONS if s in sections] + [s for s in sections if s not in SECTIONS]
    return "\n\n".join(f"{name}: {sections[name].strip()}" for name in order if sections[name].strip())


def draft_record_from_result(result: Any, volume: Any, request_id: str = "", series: Any = None,
                             max_evidence: int = 3, min_relevance: float = 0.5) -> AIDraftRecord:
    """Build the record from a ReportResult (or an app.drafting.ReportDraft, whose checks are
    kept too) and its Volume.

    Each sentence keeps its most relevant slice plus up to `max_evidence - 1` more slices whose
    relevance is at least `min_relevance`; `series` (a SeriesInfo) adds SOP classes and file paths.
    """
    checks: tuple[str, ...] = ()
    series_problems: tuple[str, ...] = tuple(getattr(volume, "problems", ()))
    if hasattr(result, "result") and hasattr(result, "request_id"):  # a ReportDraft
        request_id = request_id or result.request_id
        checks = tuple(result.checks)
        result = result.result
    uids = tuple(volume.SOPInstanceUIDs)
    sentences = tuple(DraftSentence(s.text, s.section, _evidence(s, uids, max_evidence, min_relevance))
                      for s in result.sentences)
    model = result.model
    return AIDraftRecord(
        StudyInstanceUID=volume.StudyInstanceUID, SeriesInstanceUID=volume.SeriesInstanceUID,
        sections={"FINDINGS": result.findings, "IMPRESSION": result.impression}, sentences=sentences,
        model_name=model.name, model_version=model.version, model_display_name=model.display_name,
        model_hash=model.model_hash, model_label=model.label, clinical_use=bool(model.clinical_use),
        request_id=request_id or str(result.source.get("request_id", "")),
        FrameOfReferenceUID=getattr(volume, "FrameOfReferenceUID", ""),
        sources=_sources(uids, series),
        diagnosis={head: {c: float(p) for c, p in classes.items()} for head, classes in result.diagnosis.items()},
        checks=checks, series_problems=series_problems)


def _evidence(sentence: Any, uids: tuple[str, ...], limit: int, threshold: float) -> tuple[EvidenceSlice, ...]:
    relevance = [float(v) for v in sentence.slice_relevance]
    best = int(sentence.most_relevant_slice)
    order = [best] + sorted((i for i, v in enumerate(relevance) if v >= threshold and i != best),
                            key=lambda i: -relevance[i])
    chosen = [i for i in order if 0 <= i < len(uids)][:limit]
    return tuple(EvidenceSlice(i, uids[i], relevance[i] if i < len(relevance) else 1.0) for i in chosen)


def _sources(uids: tuple[str, ...], series: Any) -> tuple[SourceInstance, ...]:
    if series is None:
        return tuple(SourceInstance(uid) for uid in dict.fromkeys(uids))
    seen: dict[str, SourceInstance] = {}
    for item in series.slices:
        if item.SOPInstanceUID not in seen:
            ref = item.ref
            seen[item.SOPInstanceUID] = SourceInstance(
                item.SOPInstanceUID, item.SOPClassUID or CT_IMAGE_STORAGE, str(ref.path), ref.member or "")
    return tuple(seen.values())
