"""Writes synthetic CT series (a simple chest-like phantom) with pydicom, for benchmarks and tests.

No patient data: all identifiers are made up. Must not import Qt.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)


def phantom_slice(rows: int, columns: int, level: float = 0.0) -> np.ndarray:
    """Stored values (HU + 1024, uint16) of an ellipse body with two lungs and a spine."""
    y, x = np.ogrid[-1 : 1 : rows * 1j, -1 : 1 : columns * 1j]
    hu = np.full((rows, columns), -1000.0)
    hu[(x / 0.9) ** 2 + (y / 0.7) ** 2 < 1] = 40.0
    for side in (-0.4, 0.4):
        hu[((x - side) / 0.3) ** 2 + (y / (0.45 - 0.1 * abs(level))) ** 2 < 1] = -850.0
    hu[(x / 0.08) ** 2 + ((y - 0.5) / 0.08) ** 2 < 1] = 700.0
    hu += (np.arange(columns)[None, :] % 7) * 3  # texture so slices are not constant
    return np.clip(hu + 1024, 0, 4095).astype(np.uint16)


@dataclass
class SeriesSpec:
    """What to write; every field has a sensible default for a small axial CT."""

    count: int = 20
    rows: int = 64
    columns: int = 64
    pixel_spacing: tuple[float, float] = (0.7, 0.7)
    slice_spacing: float = 2.5
    first_z: float = -100.0
    orientation: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    tilt_degrees: float = 0.0
    RescaleSlope: float = 1.0
    RescaleIntercept: float = -1024.0
    Modality: str = "CT"
    ConvolutionKernel: str = "LUNG"
    SeriesDescription: str = "synthetic chest"
    SeriesNumber: int = 2
    AcquisitionNumber: int = 1
    ImageType: tuple[str, ...] = ("ORIGINAL", "PRIMARY", "AXIAL")
    StudyInstanceUID: str = field(default_factory=generate_uid)
    SeriesInstanceUID: str = field(default_factory=generate_uid)
    FrameOfReferenceUID: str = field(default_factory=generate_uid)
    PatientName: str = "SYNTHETIC^PHANTOM"
    PatientID: str = "SYN0001"


def _position(spec: SeriesSpec, index: int) -> list[float]:
    row, col = np.array(spec.orientation[:3]), np.array(spec.orientation[3:])
    normal = np.cross(row, col)
    z = spec.first_z + index * spec.slice_spacing
    if spec.tilt_degrees:  # table moves along z; the image plane is tilted about x
        return [-120.0, -120.0, z]
    corner = -60.0 * row - 60.0 * col
    return [float(v) for v in corner + z * normal]


def slice_dataset(spec: SeriesSpec, index: int, pixels: np.ndarray | None = None) -> Dataset:
    """One CT image of the series (slice `index`), explicit VR little endian, uncompressed."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = spec.StudyInstanceUID, spec.SeriesInstanceUID
    ds.FrameOfReferenceUID = spec.FrameOfReferenceUID
    ds.PatientName, ds.PatientID = spec.PatientName, spec.PatientID
    ds.Modality, ds.ImageType = spec.Modality, list(spec.ImageType)
    ds.SeriesDescription, ds.SeriesNumber = spec.SeriesDescription, spec.SeriesNumber
    ds.ConvolutionKernel, ds.AcquisitionNumber = spec.ConvolutionKernel, spec.AcquisitionNumber
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.InstanceNumber = "20240101", "120000", "1", index + 1
    ds.StudyDescription, ds.AccessionNumber = "synthetic chest CT", ""
    orientation = list(spec.orientation)
    if spec.tilt_degrees:
        t = np.radians(spec.tilt_degrees)
        orientation = [1.0, 0.0, 0.0, 0.0, float(np.cos(t)), float(np.sin(t))]
        ds.GantryDetectorTilt = spec.tilt_degrees
    ds.ImagePositionPatient = _position(spec, index)
    ds.ImageOrientationPatient = orientation
    ds.PixelSpacing = list(spec.pixel_spacing)
    ds.SliceThickness = spec.slice_spacing
    ds.RescaleSlope, ds.RescaleIntercept = spec.RescaleSlope, spec.RescaleIntercept
    if pixels is None:
        pixels = phantom_slice(spec.rows, spec.columns, (index / max(spec.count - 1, 1)) * 2 - 1)
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1 if pixels.dtype == np.int16 else 0
    ds.PixelData = pixels.tobytes()
    return ds


def write_series(
    folder: Path,
    spec: SeriesSpec | None = None,
    shuffle_names: bool = False,
    skip: tuple[int, ...] = (),
    seed: int = 0,
) -> list[Path]:
    """Write the series as one file per slice into `folder`; returns paths in slice order."""
    spec = spec or SeriesSpec()
    folder.mkdir(parents=True, exist_ok=True)
    order = [i for i in range(spec.count) if i not in skip]
    names = [f"{i:04d}.dcm" for i in range(len(order))]
    if shuffle_names:
        random.Random(seed).shuffle(names)
    paths = []
    for index, name in zip(order, names, strict=True):
        path = folder / f"s{spec.SeriesNumber}_{spec.AcquisitionNumber}_{name}"
        slice_dataset(spec, index).save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
