"""Writes a report as a DICOM Enhanced SR with highdicom, and reads one back.

Content tree (Diagnostic Imaging Report, LOINC 18748-4): language, observer context (signing
radiologist as person observer; the AI model as device observer), the model's Algorithm
Identification (TID 4019: name, version, family, hash as parameter), then Findings and Impression
containers of TEXT items; the items that are AI sentences carry INFERRED FROM IMAGE references to
their evidence slices. The source series is referenced in the Current Requested Procedure
Evidence Sequence; an amendment references the SR of the version it replaces in the Predecessor
Documents Sequence. Takes plain data (SRDocument); must not import Qt, app.reports or app.export.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
from highdicom.sr import CodedConcept
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import EnhancedSRStorage, generate_uid

REPORT_TITLE = CodedConcept("18748-4", "LN", "Diagnostic Imaging Report")
SECTION_CODES = {"FINDINGS": (codes.DCM.Findings, codes.DCM.Finding),
                 "IMPRESSION": (codes.DCM.Impressions, codes.DCM.Impression)}
PATIENT_STUDY_KEYWORDS = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
    "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName", "StudyDescription")


class SRError(ValueError):
    """The SR cannot be written (message says why)."""


@dataclass(frozen=True)
class SRSentence:
    text: str
    section: str
    evidence_uids: tuple[str, ...]


@dataclass(frozen=True)
class SRDocument:
    """Everything the SR says, as plain data (no pydicom objects)."""

    StudyInstanceUID: str
    SeriesInstanceUID: str  # the source CT series
    sections: dict[str, str]
    sentences: tuple[SRSentence, ...]
    sources: tuple[tuple[str, str], ...]  # (SOPInstanceUID, SOPClassUID) of the source images
    model_name: str
    model_version: str
    model_hash: str
    manufacturer: str = "MedMPT workstation"
    reader_name: str = ""  # empty: not signed (partial, unverified)
    signed_at: str = ""  # ISO 8601
    amendment_reason: str = ""
    provenance: str = ""  # "AI draft by <model> — <label>", recorded as a comment
    institution_name: str = ""
    series_number: int = 9901
    instance_number: int = 1
    # (SeriesInstanceUID, SOPInstanceUID) of the Enhanced SRs (same study) this document replaces
    predecessors: tuple[tuple[str, str], ...] = ()


def dicom_person_name(name: str) -> str:
    """A reader's name as a DICOM PN: 'Dr Jane Reader' -> 'Reader^Jane^^Dr'; 'A^B' is kept."""
    name = " ".join(name.split())
    if "^" in name or not name:
        return name
    words = name.split(" ")
    prefix = [w for w in words[:-1] if w.lower().rstrip(".") in ("dr", "prof", "mr", "mrs", "ms")]
    rest = words[len(prefix):]
    family, given = rest[-1], " ".join(rest[:-1])
    result = f"{family}^{given}^^{' '.join(prefix)}".rstrip("^")
    return result if "^" in result else result + "^"  # a single component needs its caret


def read_source_header(path: str | Path, member: str = "") -> Dataset:
    """Patient/study/series header of one source image (no pixels); OSError/InvalidDicomError on failure."""
    if member:
        import zipfile

        with zipfile.ZipFile(path) as archive, archive.open(member) as handle:
            return dcmread(handle, stop_before_pixels=True)
    return dcmread(path, stop_before_pixels=True)


def study_context(header: Dataset | None) -> dict[str, str]:
    """Patient and study attributes of a header as strings (for PDF/text/JSON headers)."""
    if header is None:
        return {}
    return {k: str(header.get(k, "") or "") for k in (*PATIENT_STUDY_KEYWORDS, "TimezoneOffsetFromUTC")}


def _evidence(doc: SRDocument, header: Dataset) -> list[Dataset]:
    """One minimal dataset per source image, with the patient/study module of the header."""
    datasets = []
    for uid, sop_class in doc.sources:
        ds = Dataset()
        for keyword in PATIENT_STUDY_KEYWORDS:  # type 2 in the SR: present, maybe empty
            setattr(ds, keyword, header[keyword].value if keyword in header else None)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = doc.StudyInstanceUID, doc.SeriesInstanceUID
        ds.SOPInstanceUID, ds.SOPClassUID = uid, sop_class
        ds.Modality = header.get("Modality", "CT")
        datasets.append(ds)
    if not datasets:
        raise SRError("the report lists no source images, so the SR cannot reference its series")
    return datasets


def _segments(text: str, sentences: Sequence[SRSentence]) -> list[tuple[str, tuple[str, ...]]]:
    """Cut `text` into pieces: each AI sentence found verbatim (in order) and the text between.

    Joining the pieces gives `text` back exactly; whitespace is kept at a piece's start.
    """
    pieces: list[tuple[str, tuple[str, ...]]] = []
    position = 0
    for sentence in sentences:
        found = text.find(sentence.text.strip(), position) if sentence.text.strip() else -1
        if found < 0:
            continue
        if text[position:found]:
            pieces.append((text[position:found], ()))
        end = found + len(sentence.text.strip())
        pieces.append((text[found:end], sentence.evidence_uids))
        position = end
    if text[position:]:
        pieces.append((text[position:], ()))
    merged: list[tuple[str, tuple[str, ...]]] = []
    carry = ""
    for piece, uids in pieces:  # move trailing whitespace to the next piece; drop blank pieces
        body = carry + piece.rstrip()
        carry = piece[len(piece.rstrip()):]
        if body.strip():
            merged.append((body, uids))
        else:
            carry = body + carry
    return merged


def _section(name: str, text: str, doc: SRDocument, sop_classes: dict[str, str]) -> hd.sr.ContainerContentItem:
    container_code, item_code = SECTION_CODES.get(name, (CodedConcept("121070", "DCM", "Findings"), codes.DCM.Finding))
    container = hd.sr.ContainerContentItem(container_code, relationship_type="CONTAINS")
    items = []
    for piece, uids in _segments(text, [s for s in doc.sentences if s.section == name]):
        item = hd.sr.TextContentItem(item_code, piece, relationship_type="CONTAINS")
        refs = [hd.sr.ImageContentItem(codes.DCM.IllustrationOfFinding, sop_classes[uid], uid,
                                       relationship_type="INFERRED FROM") for uid in dict.fromkeys(uids) if uid in sop_classes]
        if refs:
            item.ContentSequence = hd.sr.ContentSequence(refs)
        items.append(item)
    if items:
        container.ContentSequence = hd.sr.ContentSequence(items)
    return container


def device_uid(model_hash: str, model_name: str) -> str:
    """A stable UID for the model as a device observer (2.25 form derived from its hash)."""
    digest = hashlib.sha256(f"{model_name}:{model_hash}".encode()).hexdigest()
    return f"2.25.{int(digest[:32], 16)}"


def _context(doc: SRDocument) -> list:
    device = hd.sr.ObserverContext(codes.DCM.Device, hd.sr.DeviceObserverIdentifyingAttributes(
        uid=device_uid(doc.model_hash, doc.model_name), name=doc.model_name,
        manufacturer_name=doc.manufacturer, model_name=f"{doc.model_name} {doc.model_version}".strip()))
    person = None
    if doc.reader_name:
        person = hd.sr.ObserverContext(codes.DCM.Person, hd.sr.PersonObserverIdentifyingAttributes(
            name=dicom_person_name(doc.reader_name)))
    items = list(hd.sr.LanguageOfContentItemAndDescendants(CodedConcept("en-US", "RFC5646", "English (United States)")))
    items += list(hd.sr.ObservationContext(observer_person_context=person, observer_device_context=device))
    items += list(hd.sr.AlgorithmIdentification(
        doc.model_name, doc.model_version or "unknown", parameters=[f"model_sha256={doc.model_hash}"],
        family=codes.DCM.ArtificialIntelligence))
    return items


def _predecessors(doc: SRDocument) -> list[Dataset] | None:
    """The SRs this document replaces, as the minimal datasets highdicom's previous_versions takes."""
    datasets = []
    for series_uid, sop_uid in doc.predecessors:
        ds = Dataset()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = doc.StudyInstanceUID, series_uid
        ds.SOPClassUID, ds.SOPInstanceUID = EnhancedSRStorage, sop_uid
        datasets.append(ds)
    return datasets or None


def build_sr(doc: SRDocument, header: Dataset, sop_instance_uid: str | None = None,
             series_instance_uid: str | None = None) -> Dataset:
    """The Enhanced SR dataset; `header` (one source image's header) supplies patient and study."""
    sop_classes = dict(doc.sources)
    root = hd.sr.ContainerContentItem(REPORT_TITLE, template_id="2000")
    items = _context(doc)
    if doc.provenance:
        items.append(hd.sr.TextContentItem(codes.DCM.Comment, doc.provenance, relationship_type="CONTAINS"))
    if doc.amendment_reason:
        items.append(hd.sr.TextContentItem(codes.DCM.Comment, f"Amendment: {doc.amendment_reason}",
                                           relationship_type="CONTAINS"))
    for name, text in doc.sections.items():
        if text.strip():
            items.append(_section(name, text, doc, sop_classes))
    root.ContentSequence = hd.sr.ContentSequence(items)
    signed = bool(doc.reader_name)
    kwargs = dict(
        evidence=_evidence(doc, header), content=root,
        series_instance_uid=series_instance_uid or generate_uid(), series_number=doc.series_number,
        sop_instance_uid=sop_instance_uid or generate_uid(), instance_number=doc.instance_number,
        manufacturer=doc.manufacturer, is_complete=signed, is_final=signed, is_verified=signed,
        institution_name=doc.institution_name or None,
        verifying_observer_name=dicom_person_name(doc.reader_name) or None,
        verifying_organization=(doc.institution_name or "Unspecified") if signed else None,
        previous_versions=_predecessors(doc),
        specific_character_set="ISO_IR 192")  # UTF-8: report text is free text (µ, ×, —, accents)
    try:
        with warnings.catch_warnings():
            # A source PatientName such as "Lung_Dx-A0001" has one component: the source's choice.
            warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name")
            sr = hd.sr.EnhancedSR(**kwargs)
    except (ValueError, TypeError, AttributeError) as exc:
        raise SRError(f"cannot build the DICOM SR: {exc}") from exc
    if signed and doc.signed_at:
        stamp = doc.signed_at.replace("-", "").replace(":", "").replace("T", "")[:14]
        sr.VerifyingObserverSequence[0].VerificationDateTime = stamp + "+0000"  # signed_at is UTC
    return sr


def write_sr(doc: SRDocument, header: Dataset, path: str | Path, **kwargs: str) -> Dataset:
    """Build and save the SR to `path`; returns the dataset."""
    sr = build_sr(doc, header, **kwargs)
    sr.save_as(path, enforce_file_format=True)
    return sr


def read_sr(path: str | Path) -> dict:
    """What an SR says: sections (text), per-piece evidence UIDs, observers, algorithm, references
    (source series; predecessors as (StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID))."""
    ds = dcmread(path)
    out: dict = {"sections": {}, "evidence": [], "person_observers": [], "algorithm": {}, "comments": [],
                 "referenced_series": [], "predecessors": [], "CompletionFlag": ds.get("CompletionFlag", ""),
                 "VerificationFlag": ds.get("VerificationFlag", "")}
    names = {v[0].value: k for k, v in SECTION_CODES.items()}
    for item in ds.ContentSequence:
        meaning = item.ConceptNameCodeSequence[0].CodeValue
        if item.ValueType == "CONTAINER" and meaning in names:
            pieces = [(child.TextValue, tuple(ref.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
                                              for ref in child.get("ContentSequence", [])))
                      for child in item.get("ContentSequence", [])]
            out["sections"][names[meaning]] = "".join(p for p, _ in pieces)
            out["evidence"] += [(names[meaning], p.strip(), uids) for p, uids in pieces if uids]
        elif item.ValueType == "PNAME":
            out["person_observers"].append(str(item.PersonName))
        elif item.ValueType == "TEXT" and meaning in ("111001", "111003", "111002"):
            out["algorithm"][{"111001": "name", "111003": "version", "111002": "parameters"}[meaning]] = item.TextValue
        elif item.ValueType == "CODE" and meaning == "111000":
            out["algorithm"]["family"] = item.ConceptCodeSequence[0].CodeMeaning
        elif item.ValueType == "TEXT" and meaning == "121106":
            out["comments"].append(item.TextValue)
    for study in ds.get("CurrentRequestedProcedureEvidenceSequence", []):
        out["referenced_series"] += [s.SeriesInstanceUID for s in study.ReferencedSeriesSequence]
    for study in ds.get("PredecessorDocumentsSequence", []):
        out["predecessors"] += [(study.StudyInstanceUID, series.SeriesInstanceUID, sop.ReferencedSOPInstanceUID)
                                for series in study.ReferencedSeriesSequence for sop in series.ReferencedSOPSequence]
    return out
