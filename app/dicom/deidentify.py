"""De-identification for research exports (PS3.15 Basic Application Confidentiality Profile).

Names and IDs are replaced by a pseudonym or removed, dates shifted by a per-patient offset (the
Retain Longitudinal Temporal Information Modified Dates option), UIDs remapped consistently
(same secret + same UID -> same new UID), private tags removed, and known identifiers redacted
from free text. `Deidentifier` works on plain strings (for text, JSON and PDF headers);
`deidentify_dataset` applies it to a pydicom Dataset. Must not import Qt.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

ANONYMIZED = "Anonymized^Person"  # a valid PN (family^given)
METHOD = "PS3.15 Basic Profile, dates shifted, UIDs remapped"  # LO: <= 64 chars
# Basic profile action X (remove) for attributes a CT header or our SR can carry.
REMOVE = frozenset({
    "OtherPatientIDs", "OtherPatientIDsSequence", "OtherPatientNames", "PatientBirthTime", "PatientAddress",
    "PatientTelephoneNumbers", "PatientMotherBirthName", "MilitaryRank", "EthnicGroup", "Occupation",
    "AdditionalPatientHistory", "PatientComments", "MedicalRecordLocator", "InstitutionAddress",
    "InstitutionName", "InstitutionalDepartmentName", "StationName", "DeviceSerialNumber", "OperatorsName",
    "PerformingPhysicianName", "NameOfPhysiciansReadingStudy", "PhysiciansOfRecord", "RequestingPhysician",
    "IssuerOfPatientID", "PatientAge", "PatientSize", "PatientWeight", "ReferencedPatientSequence",
    "RequestAttributesSequence", "PerformedProcedureStepID", "PerformedProcedureStepDescription",
    "StudyDescription", "SeriesDescription", "StudyComments", "ImageComments", "PatientInsurancePlanCodeSequence",
    "CountryOfResidence", "RegionOfResidence", "PatientState", "ProtocolName"})
# Action Z (keep the attribute, empty value): type 2 attributes.
EMPTY = frozenset({"AccessionNumber", "StudyID", "ReferringPhysicianName", "PatientBirthDate", "PatientSex",
                   "ContentCreatorName"})
# Action D (dummy value): type 1 attributes that must keep a value.
DUMMY = {"VerifyingOrganization": "Anonymized"}
# UIDs that name standards, not instances: never remapped.
KEEP_UIDS = frozenset({"SOPClassUID", "ReferencedSOPClassUID", "MediaStorageSOPClassUID", "TransferSyntaxUID",
                       "ImplementationClassUID", "CodingSchemeUID", "MappingResourceUID", "ContextGroupExtensionCreatorUID",
                       "ReferencedSOPClassUIDInFile", "TemplateExtensionOrganizationUID"})


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class Deidentifier:
    """Consistent pseudonyms, UID remaps and date shifts derived from one secret."""

    secret: str
    identifiers: tuple[str, ...] = field(default=())  # strings to redact from free text

    def with_identifiers(self, values: Iterable[object]) -> Deidentifier:
        found = set(self.identifiers)
        for value in values:
            text = str(value or "").strip()
            if len(text) >= 2:
                found.add(text)
                found.update(p for p in re.split(r"[\^ ,]+", text) if len(p) >= 3)
        return Deidentifier(self.secret, tuple(sorted(found, key=len, reverse=True)))

    def uid(self, uid: str) -> str:
        uid = str(uid or "").strip()
        if not uid or uid.startswith("1.2.840.10008."):
            return uid
        return f"2.25.{int(_digest(self.secret, 'uid', uid)[:32], 16)}"

    def pseudonym(self, patient_id: str) -> str:
        return "ANON-" + _digest(self.secret, "patient", str(patient_id or "")).upper()[:10]

    def pseudonym_name(self, patient_id: str) -> str:
        """The pseudonym as a PN (family^given), e.g. ANON^1A2B3C4D5E."""
        return self.pseudonym(patient_id).replace("-", "^", 1)

    def offset_days(self, patient_id: str) -> int:
        """Days to add to every date of this patient: between -3650 and -1."""
        return -(int(_digest(self.secret, "date", str(patient_id or ""))[:8], 16) % 3650 + 1)

    def shift_date(self, value: str, patient_id: str) -> str:
        """DICOM DA (YYYYMMDD) or ISO (YYYY-MM-DD...) shifted; '' when it cannot be read."""
        text = str(value or "").strip()
        iso = "-" in text[:10]
        try:
            day = dt.date.fromisoformat(text[:10]) if iso else dt.datetime.strptime(text[:8], "%Y%m%d").date()
        except ValueError:
            return ""
        shifted = day + dt.timedelta(days=self.offset_days(patient_id))
        return shifted.isoformat() + text[10:] if iso else shifted.strftime("%Y%m%d") + text[8:]

    def redact(self, text: str) -> str:
        for value in self.identifiers:
            text = re.sub(re.escape(value), "[redacted]", text, flags=re.IGNORECASE)
        return text


def deidentify_dataset(ds: Dataset, deid: Deidentifier) -> Dataset:
    """A de-identified copy of `ds` (file meta included); the input is left unchanged."""
    out = copy.deepcopy(ds)
    patient_id = str(ds.get("PatientID", "") or "")
    deid = deid.with_identifiers([ds.get(k, "") for k in ("PatientName", "PatientID", "OtherPatientIDs",
                                                           "AccessionNumber", "PatientBirthDate")])
    _clean(out, deid, patient_id)
    out.PatientName = deid.pseudonym_name(patient_id)
    out.PatientID = deid.pseudonym(patient_id)
    out.PatientIdentityRemoved = "YES"
    out.DeidentificationMethod = METHOD
    out.DeidentificationMethodCodeSequence = Sequence([
        _code("113100", "Basic Application Confidentiality Profile"),
        _code("113107", "Retain Longitudinal Temporal Information Modified Dates Option")])
    meta = getattr(out, "file_meta", None)
    if meta is not None and "MediaStorageSOPInstanceUID" in meta:
        meta.MediaStorageSOPInstanceUID = deid.uid(meta.MediaStorageSOPInstanceUID)
    return out


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
    return item


def _clean(ds: Dataset, deid: Deidentifier, patient_id: str) -> None:
    ds.remove_private_tags()
    for element in list(ds):
        keyword = element.keyword
        if keyword in REMOVE:
            del ds[element.tag]
        elif keyword in EMPTY:
            element.value = None
        elif keyword in DUMMY:
            element.value = DUMMY[keyword]
        elif element.VR == "SQ":
            for item in element.value:
                _clean(item, deid, patient_id)
        elif element.value in (None, ""):
            continue
        elif element.VR == "PN":
            element.value = ANONYMIZED
        elif element.VR == "DA":
            element.value = deid.shift_date(str(element.value), patient_id) or None
        elif element.VR == "DT":
            element.value = deid.shift_date(str(element.value), patient_id) or None
        elif element.VR == "UI" and keyword not in KEEP_UIDS:
            element.value = [deid.uid(v) for v in element.value] if element.VM > 1 else deid.uid(element.value)
        elif element.VR in ("UT", "LT", "ST", "LO", "SH") and keyword not in ("CodeValue", "CodeMeaning"):
            element.value = deid.redact(str(element.value)) if element.VM <= 1 else element.value


def deidentify_context(context: dict[str, str], deid: Deidentifier) -> dict[str, str]:
    """The patient/study context of a text, JSON or PDF header, de-identified like a dataset."""
    patient_id = context.get("PatientID", "")
    out = {k: v for k, v in context.items() if k not in REMOVE}
    for keyword in EMPTY & out.keys():
        out[keyword] = ""
    out["PatientName"], out["PatientID"] = deid.pseudonym_name(patient_id), deid.pseudonym(patient_id)
    for keyword in ("StudyDate",):
        if out.get(keyword):
            out[keyword] = deid.shift_date(out[keyword], patient_id)
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID"):
        if out.get(keyword):
            out[keyword] = deid.uid(out[keyword])
    out["PatientIdentityRemoved"] = "YES"
    out["DeidentificationMethod"] = METHOD
    return out
