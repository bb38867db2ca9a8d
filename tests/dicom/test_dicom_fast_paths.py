"""The fast header and pixel paths give exactly what the general (dcmread / pydicom decoder)
paths give, on plain, odd and corrupted files, and are really taken on plain CT files."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data.data_manager import external_data_sources
from pydicom.filereader import data_element_generator
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

from app.dicom import LoadError, headers, index_sources, load_volume, loader
from app.dicom.headers import HeaderError, read_header
from app.dicom.model import FileRef
from app.dicom.synthetic import SeriesSpec, phantom_slice, slice_dataset, write_series

from .test_dicom_fuzz import _mutant

MUTANTS = 1000


def _header(path: Path, fast: bool, monkeypatch) -> object:
    monkeypatch.setattr(headers, "FAST_HEADERS", fast)
    identifiers: set[str] = set()
    try:
        return read_header(FileRef(str(path)), identifiers), identifiers
    except HeaderError as exc:
        return "refused", str(exc)


def _fast_path_taken(path: Path) -> bool:
    try:
        return headers._fast_values(FileRef(str(path)).read(headers.HEADER_PREFIX)) is not None
    except Exception:  # noqa: BLE001 - read_header then falls back to dcmread
        return False


def _pydicom_test_files() -> list[Path]:
    """pydicom's bundled test files and those of `pydicom-data` (installed for offline use)."""
    folders = [Path(pydicom.__file__).parent / "data" / "test_files"]
    folders += [Path(s.data_path) for s in external_data_sources().values()]
    return sorted(p for folder in folders for p in folder.rglob("*") if p.is_file())


@pytest.mark.slow
def test_fast_headers_equal_dcmread_headers_on_odd_and_corrupted_files(tmp_path, monkeypatch):
    rng = random.Random(1)
    mutants = []
    for number in range(MUTANTS):
        data, _ = _mutant(rng, number)
        path = tmp_path / f"m{number}.dcm"
        path.write_bytes(data)
        mutants.append(path)
    files = _pydicom_test_files() + mutants
    different = [
        path.name
        for path in files
        if _header(path, True, monkeypatch) != _header(path, False, monkeypatch)
    ]
    assert different == []
    taken = sum(_fast_path_taken(path) for path in files)
    assert taken > len(files) // 4, "the fast path should read most plain files"


def _short_length_elements(data: bytes) -> list[int]:
    """Offsets of the VR of every explicit-VR element with a 2-byte length, meta group included."""
    buffer = io.BytesIO(data)
    buffer.seek(132)
    found = []
    for element in data_element_generator(buffer, False, True, stop_when=headers._at_pixel_data):
        if element.VR not in EXPLICIT_VR_LENGTH_32:
            found.append(element.value_tell - 4)
    return found


def test_a_corrupted_vr_anywhere_gives_what_dcmread_gives(tmp_path, monkeypatch):
    spec = SeriesSpec(count=1, rows=16, columns=16, PatientName="VR^TEST")
    plain = Path(write_series(tmp_path / "plain", spec)[0]).read_bytes()
    positions = _short_length_elements(plain)
    assert len(positions) > 20
    for number, at in enumerate(positions):
        for vr in (b"Sh", b"EL"):
            path = tmp_path / f"vr{number}{vr.decode()}.dcm"
            path.write_bytes(plain[:at] + vr + plain[at + 2 :])
            fast, general = _header(path, True, monkeypatch), _header(path, False, monkeypatch)
            assert fast == general, (number, vr)


def test_fast_headers_are_taken_and_equal_on_the_real_series(real_series_dir, monkeypatch):
    files = sorted(real_series_dir.glob("*.dcm"))
    assert all(_fast_path_taken(path) for path in files)
    for path in files[:8]:
        assert _header(path, True, monkeypatch) == _header(path, False, monkeypatch)


def test_odd_headers_go_to_dcmread():
    folder = Path(pydicom.__file__).parent / "data" / "test_files"
    odd = {
        "big endian": "MR_small_bigendian.dcm",
        "deflated": "image_dfl.dcm",
        "no file meta": "ExplVR_LitEndNoMeta.dcm",
        "no meta group length": "no_meta_group_length.dcm",
    }
    for name, file in odd.items():
        assert not _fast_path_taken(folder / file), name
    assert _fast_path_taken(folder / "CT_small.dcm")
    slices, _ = read_header(FileRef(str(folder / "MR_small_bigendian.dcm")))
    assert (slices[0].Rows, slices[0].Columns) == (64, 64)


def _series(folder: Path, syntax: str, count: int, **attributes: object) -> Path:
    folder.mkdir()
    spec = SeriesSpec(count=count, rows=32, columns=32, **attributes)
    for index in range(count):
        ds = slice_dataset(spec, index, phantom_slice(32, 32, index / count))
        if syntax == RLELossless:
            ds.compress(syntax)
        else:
            ds.file_meta.TransferSyntaxUID = syntax
        ds.save_as(folder / f"{count - index:03d}.dcm", enforce_file_format=True)
    return folder


def _volume_of(series, direct: bool, monkeypatch) -> tuple[np.ndarray, int]:
    """The series' voxels with or without the direct read, and how many direct reads ran."""
    calls = []
    read_direct = loader._read_direct

    def counted(*args: object) -> bool:
        calls.append(args)
        return read_direct(*args)

    monkeypatch.setattr(loader, "_read_direct", counted)
    if not direct:
        monkeypatch.setattr(loader, "_can_read_direct", lambda item, target: False)
    try:
        return load_volume(series).voxels, len(calls)
    finally:
        monkeypatch.undo()


def _volume(folder: Path, direct: bool, monkeypatch) -> tuple[np.ndarray, int]:
    return _volume_of(index_sources(folder, use_cache=False).series[0], direct, monkeypatch)


@pytest.mark.parametrize(
    ("syntax", "attributes", "direct_reads"),
    [
        (ImplicitVRLittleEndian, {}, 6),
        (ExplicitVRLittleEndian, {"RescaleIntercept": 0.0}, 6),
        (ExplicitVRLittleEndian, {"RescaleSlope": 2.0}, 0),  # slope: the general path
        (RLELossless, {}, 0),  # compressed: pydicom's decoder
    ],
)
def test_direct_pixel_reads_equal_decoded_pixels(
    tmp_path, monkeypatch, syntax, attributes, direct_reads
):
    folder = _series(tmp_path / "s", syntax, 6, **attributes)
    fast, taken = _volume(folder, True, monkeypatch)
    general, none = _volume(folder, False, monkeypatch)
    assert (taken, none) == (direct_reads, 0)
    np.testing.assert_array_equal(fast, general)
    assert fast.dtype == general.dtype


def test_a_file_changed_after_indexing_still_loads_its_current_pixels(tmp_path):
    folder = _series(tmp_path / "s", ExplicitVRLittleEndian, 4)
    series = index_sources(folder, use_cache=False).series[0]
    changed = series.slices[1].ref.path
    ds = pydicom.dcmread(changed)
    ds.ImageComments = "x" * 101  # the pixel data moves: the indexed offset is stale
    ds.save_as(changed, enforce_file_format=True)
    volume = load_volume(series)
    expected = ds.pixel_array.astype(np.int32) + int(ds.RescaleIntercept)
    np.testing.assert_array_equal(volume.voxels[1], expected)


def test_direct_pixel_reads_equal_decoded_pixels_on_pydicom_test_files(monkeypatch):
    folders = sorted({path.parent for path in _pydicom_test_files()})
    index = index_sources(folders, use_cache=False)
    direct_reads = 0
    for series in index.series:
        outcomes = []
        for direct in (True, False):
            try:
                voxels, taken = _volume_of(series, direct, monkeypatch)
            except LoadError as exc:
                outcomes.append(("refused", str(exc)))
                continue
            direct_reads += taken
            outcomes.append((voxels.dtype, voxels.shape, voxels.tobytes()))
        assert outcomes[0] == outcomes[1], series.SeriesDescription
    assert direct_reads > 10, "native 16-bit test files should be read directly"
