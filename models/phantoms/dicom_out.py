"""Writes a phantom as a valid DICOM CT Image series (pydicom) plus findings.json and report.txt.

UIDs come from pydicom.uid.generate_uid with entropy from the seed, so reruns are identical.
Tooling only (models/): must not import torch, app, ui or inference.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels.encoders import (
    JPEG2000LosslessEncoder,
    JPEGLSLosslessEncoder,
    RLELosslessEncoder,
)
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

from models.phantoms.case import PhantomCase

_ENCODERS = {RLELossless: RLELosslessEncoder, JPEGLSLossless: JPEGLSLosslessEncoder,
             JPEG2000Lossless: JPEG2000LosslessEncoder}
TRANSFER_SYNTAX_NAMES = {"explicit": ExplicitVRLittleEndian, "implicit": ImplicitVRLittleEndian,
                         "rle": RLELossless, "jpeg-ls": JPEGLSLossless, "jpeg2000": JPEG2000Lossless}


def available_transfer_syntaxes() -> list[str]:
    """Transfer syntaxes this installation can write (compressed ones need their encoders)."""
    return [uid for uid in TRANSFER_SYNTAX_NAMES.values()
            if uid not in _ENCODERS or _ENCODERS[uid].is_available]


def _uid(seed: int, *what: object) -> str:
    return str(generate_uid(entropy_srcs=["medmpt-phantom", str(seed), *map(str, what)]))


def _base_dataset(case: PhantomCase, number: int, signed: bool) -> Dataset:
    g, seed = case.geometry, case.seed
    when = dt.datetime(2021, 1, 4, 8, 0) + dt.timedelta(days=seed % 1500, minutes=seed % 600)
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    for kind in ("Study", "Series", "Acquisition", "Content"):
        setattr(ds, f"{kind}Date", when.strftime("%Y%m%d"))
        setattr(ds, f"{kind}Time", when.strftime("%H%M%S"))
    ds.AccessionNumber = f"PH{number:06d}"
    ds.Modality = "CT"
    ds.Manufacturer = "MedMPT synthetic phantom"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "CT CHEST SYNTHETIC PHANTOM"
    ds.SeriesDescription = f"Phantom chest {g.slice_thickness:g} mm"
    ds.ManufacturerModelName = "medmpt-phantom"
    ds.SoftwareVersions = "medmpt-phantom/1"
    ds.PatientName = f"PHANTOM^{number:04d}"
    ds.PatientID = f"PHANTOM{number:04d}"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.BodyPartExamined = "CHEST"
    ds.SliceThickness = f"{g.slice_thickness:g}"
    ds.SpacingBetweenSlices = f"{g.slice_thickness:g}"
    ds.KVP = "120"
    ds.ReconstructionDiameter = f"{g.columns * g.pixel_spacing:.2f}"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = _uid(seed, number, "study")
    ds.SeriesInstanceUID = _uid(seed, number, "series")
    ds.StudyID = f"{number}"
    ds.SeriesNumber = 1
    ds.AcquisitionNumber = 1
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.FrameOfReferenceUID = _uid(seed, number, "frame")
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = g.rows, g.columns
    ds.PixelSpacing = [f"{g.pixel_spacing:.4f}", f"{g.pixel_spacing:.4f}"]
    ds.BitsAllocated = 16
    ds.BitsStored = 16 if signed else 12
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.WindowCenter = ["-400", "60"]
    ds.WindowWidth = ["1500", "400"]
    ds.WindowCenterWidthExplanation = ["LUNG", "MEDIASTINUM"]
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.BurnedInAnnotation = "NO"
    return ds


def stored_values(hu: np.ndarray, signed: bool) -> np.ndarray:
    """HU -> stored pixel values (RescaleIntercept -1024, slope 1), 12-bit or 16-bit signed."""
    values = np.rint(hu) + 1024
    if signed:
        return np.clip(values, -32768, 32767).astype(np.int16)
    return np.clip(values, 0, 4095).astype(np.uint16)


def write_series(case: PhantomCase, folder: Path, *, number: int, transfer_syntax: str,
                 signed: bool = False) -> list[Path]:
    """One file per slice, IM0001.dcm = slice 0 (most inferior)."""
    if transfer_syntax not in available_transfer_syntaxes():
        raise ValueError(f"cannot write transfer syntax {transfer_syntax} (no encoder installed)")
    folder.mkdir(parents=True, exist_ok=True)
    base = _base_dataset(case, number, signed)
    g = case.geometry
    paths = []
    for k in range(g.num_slices):
        ds = Dataset()
        ds.update(base)
        ds.SOPInstanceUID = _uid(case.seed, number, "image", k)
        ds.InstanceNumber = k + 1
        pos = g.lps_of(k, 0, 0)
        ds.ImagePositionPatient = [f"{v:.3f}" for v in pos]
        ds.SliceLocation = f"{pos[2]:.3f}"
        arr = stored_values(case.hu[k], signed)
        ds.file_meta = _file_meta(ds.SOPInstanceUID, transfer_syntax)
        if transfer_syntax in _ENCODERS:
            ds.compress(transfer_syntax, arr, generate_instance_uid=False)
        else:
            ds.PixelData = arr.tobytes()
            ds["PixelData"].VR = "OW"
        path = folder / f"IM{k + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _file_meta(sop_instance_uid: str, transfer_syntax: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = transfer_syntax
    return meta


def write_study(case: PhantomCase, folder: Path, *, number: int, transfer_syntax: str,
                signed: bool = False) -> list[Path]:
    """The series plus findings.json (ground truth) and report.txt in `folder`."""
    paths = write_series(case, folder, number=number, transfer_syntax=transfer_syntax, signed=signed)
    doc = case.truth_json()
    doc["dicom"] = {"StudyInstanceUID": _uid(case.seed, number, "study"),
                    "SeriesInstanceUID": _uid(case.seed, number, "series"),
                    "TransferSyntaxUID": transfer_syntax, "PixelRepresentation": int(signed),
                    "files": f"IM0001.dcm .. IM{len(paths):04d}.dcm, IM0001 = slice 0"}
    (folder / "findings.json").write_text(json.dumps(doc, indent=1) + "\n")
    (folder / "report.txt").write_text(case.report + "\n")
    return paths
