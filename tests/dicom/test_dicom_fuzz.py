"""Fuzz: 520 mutated files beside a good series; no crash, no hang, good series loads, reasons given."""

from __future__ import annotations

import io
import random
import time

import numpy as np
import pydicom
import pytest
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

from app.dicom import LoadError, index_sources, load_volume
from app.dicom.headers import HeaderError, read_header
from app.dicom.model import FileRef
from app.dicom.synthetic import SeriesSpec, phantom_slice, slice_dataset, write_series

MUTANTS = 520
PER_FILE_LIMIT_S = 5.0  # a hang guard, not a performance target
SYNTAXES = [
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    JPEGLSLossless,
    JPEG2000Lossless,
    DeflatedExplicitVRLittleEndian,
]
REQUIRED = [
    "Rows",
    "Columns",
    "BitsAllocated",
    "PixelData",
    "SOPInstanceUID",
    "SeriesInstanceUID",
    "StudyInstanceUID",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
]
LENGTH_TARGETS = [
    (0x0028, 0x0010),
    (0x0028, 0x0011),
    (0x0028, 0x0030),
    (0x0020, 0x0032),
    (0x0020, 0x000E),
    (0x0010, 0x0010),
    (0x7FE0, 0x0010),
    (0x0008, 0x0008),
]
LONG_LENGTH_VRS = {b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN", b"UC", b"UR", b"OD", b"OL", b"OV"}


def _donor(rng: random.Random, number: int, syntax: str, delete: str | None) -> bytes:
    spec = SeriesSpec(
        count=1,
        rows=64,
        columns=64,
        SeriesNumber=100 + number,
        SeriesInstanceUID=pydicom.uid.generate_uid(),
        PatientName=f"FUZZ^{number}",
    )
    ds = slice_dataset(spec, 0, phantom_slice(64, 64, rng.uniform(-1, 1)))
    if syntax in (RLELossless, JPEGLSLossless, JPEG2000Lossless):
        ds.compress(syntax)
    else:
        ds.file_meta.TransferSyntaxUID = syntax
    if delete:
        if delete != "PixelData" and ds["PixelData"].VR not in ("OB", "OW"):
            ds["PixelData"].VR = "OW"  # writable without BitsAllocated
        delattr(ds, delete)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _pixel_offset(data: bytes) -> int:
    return max(data.find(b"\xe0\x7f\x10\x00"), 200)


def _bad_length(rng: random.Random, data: bytearray, syntax: str) -> None:
    group, element = rng.choice(LENGTH_TARGETS)
    at = data.find(group.to_bytes(2, "little") + element.to_bytes(2, "little"), 132)
    if at < 0:
        return _flip(rng, data, 132, len(data))
    value = rng.choice([0xFFFFFFF0, 0x7FFFFFFF, 0xFFFF, 1, 3, rng.randrange(1 << 32)])
    if syntax == ImplicitVRLittleEndian:
        data[at + 4 : at + 8] = value.to_bytes(4, "little")
    elif bytes(data[at + 4 : at + 6]) in LONG_LENGTH_VRS:
        data[at + 8 : at + 12] = value.to_bytes(4, "little")
    else:
        data[at + 6 : at + 8] = (value & 0xFFFF).to_bytes(2, "little")


def _flip(rng: random.Random, data: bytearray, start: int, stop: int) -> None:
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(start, max(stop, start + 1))
        if at < len(data):
            data[at] ^= 1 << rng.randrange(8)


def _mutant(rng: random.Random, number: int) -> tuple[bytes, str]:
    syntax = SYNTAXES[number % len(SYNTAXES)]
    kind = ("truncate", "flip-header", "flip-pixels", "delete-tag", "bad-length")[number % 5]
    delete = rng.choice(REQUIRED) if kind == "delete-tag" else None
    data = bytearray(_donor(rng, number, syntax, delete))
    pixels_at = _pixel_offset(bytes(data))
    if kind == "truncate":
        data = data[: rng.randrange(0, len(data))]
    elif kind == "flip-header":
        _flip(rng, data, 128, pixels_at)
    elif kind == "flip-pixels":
        _flip(rng, data, pixels_at, len(data))
    elif kind == "bad-length":
        _bad_length(rng, data, syntax)
    return bytes(data), f"{kind}:{syntax.name}:{delete or ''}"


@pytest.fixture(scope="module")
def fuzz_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    spec = SeriesSpec(count=20, SeriesNumber=1)
    good = write_series(folder / "good", spec, shuffle_names=True)
    rng = random.Random(20240611)
    mutants = {}
    for number in range(MUTANTS):
        data, kind = _mutant(rng, number)
        path = folder / ("good" if number % 3 == 0 else "bad") / f"m{number:04d}.dcm"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        mutants[str(path)] = kind
    return folder, spec, good, mutants


@pytest.mark.slow
def test_fuzzed_files_never_crash_or_hang_and_always_have_a_reason(fuzz_folder):
    folder, spec, good, mutants = fuzz_folder
    identifiers: set[str] = set()
    for path in mutants:  # each file alone, timed: a corrupted length must not loop or allocate
        start = time.monotonic()
        try:
            read_header(FileRef(path), identifiers)
        except HeaderError as exc:
            assert str(exc)
        assert time.monotonic() - start < PER_FILE_LIMIT_S, mutants[path]

    index = index_sources(folder)
    explained = {p.file: p.cause for p in index.problems}
    loaded: set[str] = set()
    good_volume = None
    for series in index.series:
        explained.update({str(s.ref): reason for s, reason in series.excluded})
        files = {str(s.ref) for s in series.slices}
        start = time.monotonic()
        try:
            volume = load_volume(series)
        except LoadError as exc:
            explained.update(dict.fromkeys(files, str(exc)))
            continue
        finally:
            assert time.monotonic() - start < PER_FILE_LIMIT_S * max(len(files), 1)
        dropped = {f for f in files if any(f in p for p in volume.problems)}
        explained.update(dict.fromkeys(dropped, "dropped"))
        loaded |= files - dropped
        if series.SeriesInstanceUID == spec.SeriesInstanceUID:
            good_volume = volume

    assert good_volume is not None, "the good series must still load"
    assert good_volume.shape == (20, 64, 64)
    clean = load_volume(index_sources(good).series[0])
    np.testing.assert_array_equal(good_volume.voxels, clean.voxels)
    unexplained = [mutants[p] for p in mutants if p not in explained and p not in loaded]
    assert unexplained == [], f"{len(unexplained)} mutated file(s) neither loaded nor explained"
    assert all(cause for cause in explained.values())
    assert len(explained) > MUTANTS // 3, "most mutations should be detected"
