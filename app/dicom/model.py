"""Plain dataclasses describing what an index found: files, slices, series, studies, patients.

Must not import Qt; holds no pydicom objects so results can cross threads and be pickled.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

MAX_FILE_BYTES = 2 * 1024**3
"""Files larger than this are refused instead of read into memory."""


def short_hash(text: str) -> str:
    """An opaque 8-character tag for a UID, safe to log."""
    return hashlib.sha256(text.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class FileRef:
    """Where an instance's bytes live: a file, or a member of a zip archive."""

    path: str
    member: str | None = None

    def __str__(self) -> str:
        return f"{self.path}!{self.member}" if self.member else self.path

    def size(self) -> int:
        if self.member is None:
            return Path(self.path).stat().st_size
        with zipfile.ZipFile(self.path) as archive:
            return archive.getinfo(self.member).file_size

    def read(self, limit: int | None = None) -> bytes:
        """The first `limit` bytes (all when None); refuses files over MAX_FILE_BYTES."""
        if self.member is None:
            with open(self.path, "rb") as handle:
                if limit is None:
                    size = Path(self.path).stat().st_size
                    if size > MAX_FILE_BYTES:
                        raise OSError(f"file too large ({size} bytes)")
                    return handle.read()
                return handle.read(limit)
        with zipfile.ZipFile(self.path) as archive:
            info = archive.getinfo(self.member)
            if info.file_size > MAX_FILE_BYTES:
                raise OSError(f"zip member too large ({info.file_size} bytes)")
            with archive.open(info) as handle:
                return handle.read() if limit is None else handle.read(limit)

    def read_buffer(self) -> bytearray | bytes:
        """The whole file in a writable buffer (one read, no copy); a zip member as bytes."""
        if self.member is not None:
            return self.read()
        with open(self.path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_FILE_BYTES:
                raise OSError(f"file too large ({size} bytes)")
            buffer = bytearray(size)
            got = handle.readinto(buffer)
            if got < size:
                del buffer[got:]
            return buffer

    def open_buffer(self) -> io.BytesIO:
        return io.BytesIO(self.read())


NOT_DICOM = "not a DICOM file"  # the cause of a FileProblem for a file that is no DICOM at all


@dataclass(frozen=True)
class FileProblem:
    """A file (or one image of it) that cannot be used, and why."""

    file: str
    cause: str

    @property
    def not_dicom(self) -> bool:
        """The file is no DICOM at all (a README, an annotation, a thumbnail), not a damaged one."""
        return self.cause == NOT_DICOM


@dataclass
class SliceInfo:
    """One image: a single-frame instance or one frame of a multi-frame instance (headers only)."""

    ref: FileRef
    SOPInstanceUID: str
    SeriesInstanceUID: str
    StudyInstanceUID: str
    frame: int | None = None
    """0-based frame number in a multi-frame instance; None for single-frame instances."""
    number_of_frames: int = 1
    Modality: str = ""
    SOPClassUID: str = ""
    TransferSyntaxUID: str = ""
    FrameOfReferenceUID: str = ""
    InstanceNumber: int | None = None
    AcquisitionNumber: int | None = None
    TemporalPositionIndex: int | None = None
    ImageType: tuple[str, ...] = ()
    ImagePositionPatient: tuple[float, float, float] | None = None
    ImageOrientationPatient: tuple[float, ...] | None = None
    PixelSpacing: tuple[float, float] | None = None
    SliceThickness: float | None = None
    GantryDetectorTilt: float | None = None
    Rows: int = 0
    Columns: int = 0
    BitsAllocated: int = 0
    BitsStored: int = 0
    PixelRepresentation: int = 0
    SamplesPerPixel: int = 1
    PlanarConfiguration: int = 0
    PhotometricInterpretation: str = ""
    RescaleSlope: float = 1.0
    RescaleIntercept: float = 0.0
    rescale_missing: bool = False
    """True when the image gave no usable RescaleSlope/RescaleIntercept (1 and 0 are then assumed)."""
    pixel_offset: int | None = None
    """Byte offset of the PixelData element in the file (None when unknown or deflated)."""
    file_size: int = 0


@dataclass
class SeriesInfo:
    """One series (or one acquisition split from a mixed series) and what was found about it."""

    SeriesInstanceUID: str
    StudyInstanceUID: str
    Modality: str = ""
    SeriesDescription: str = ""
    SeriesNumber: int | None = None
    ConvolutionKernel: str = ""
    FrameOfReferenceUID: str = ""
    slices: list[SliceInfo] = field(default_factory=list)
    """Usable images, sorted along the slice normal (ascending)."""
    excluded: list[tuple[SliceInfo, str]] = field(default_factory=list)
    """Images left out (localizers, other sizes, duplicates, missing attributes) with the reason."""
    problems: list[str] = field(default_factory=list)
    part: str = ""
    """Set when a mixed series was split, e.g. 'AcquisitionNumber=2'; empty otherwise."""
    Rows: int = 0
    Columns: int = 0
    PixelSpacing: tuple[float, float] | None = None
    slice_spacing: float | None = None
    SliceThickness: float | None = None
    orientation: str = "unknown"
    """axial, coronal, sagittal, oblique, or unknown."""
    TransferSyntaxUIDs: tuple[str, ...] = ()
    loadable: bool = True

    @property
    def key(self) -> str:
        """Unique within an index: the SeriesInstanceUID plus the split part, if any."""
        return f"{self.SeriesInstanceUID}#{self.part}" if self.part else self.SeriesInstanceUID

    @property
    def instance_count(self) -> int:
        return len({s.SOPInstanceUID for s in self.slices})

    @property
    def log_id(self) -> str:
        return short_hash(self.key)


@dataclass
class StudyInfo:
    StudyInstanceUID: str
    StudyDate: str = ""
    StudyDescription: str = ""
    series: list[SeriesInfo] = field(default_factory=list)


@dataclass
class PatientInfo:
    """Identifiers are kept for display only; they are registered for log redaction when read."""

    PatientID: str = ""
    PatientName: str = ""
    studies: list[StudyInfo] = field(default_factory=list)


@dataclass
class IndexResult:
    patients: list[PatientInfo] = field(default_factory=list)
    problems: list[FileProblem] = field(default_factory=list)
    """Files that could not be used at all (not DICOM, truncated, no pixel data, ...)."""
    file_count: int = 0

    @property
    def studies(self) -> list[StudyInfo]:
        return [study for patient in self.patients for study in patient.studies]

    @property
    def series(self) -> list[SeriesInfo]:
        return [series for study in self.studies for series in study.series]

    def find_series(self, uid: str) -> SeriesInfo | None:
        """The series with this key, or the largest part whose SeriesInstanceUID is `uid`."""
        matches = [s for s in self.series if uid in (s.key, s.SeriesInstanceUID)]
        return max(matches, key=lambda s: len(s.slices)) if matches else None


class SeriesChoice(NamedTuple):
    """The series picked for the model (None when nothing fits) and a reason a person can read.

    A named tuple, so `series, reason = choose_series(index)` works too.
    """

    series: SeriesInfo | None
    reason: str
