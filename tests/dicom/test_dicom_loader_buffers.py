"""Loading decodes native pixels in the file's own buffer: values must match a plain decode."""

from __future__ import annotations

import numpy as np
from pydicom import dcmread

from app.dicom import index_sources, load_volume
from app.dicom.synthetic import SeriesSpec, slice_dataset


def _write(folder, spec, high_bits: int, signed: bool):
    folder.mkdir()
    stored = []
    rng = np.random.default_rng(3)
    for index in range(spec.count):
        values = rng.integers(-2048 if signed else 0, 2048 if signed else 4096, (16, 16))
        dtype = np.int16 if signed else np.uint16
        raw = values.astype(dtype).view(np.uint16) & 0x0FFF | high_bits  # garbage above bit 11
        ds = slice_dataset(spec, index, raw.view(dtype))
        ds.BitsStored, ds.HighBit = 12, 11
        ds.save_as(folder / f"{index}.dcm", enforce_file_format=True)
        stored.append(values)
    return np.stack(stored)


def test_unused_high_bits_are_ignored_for_unsigned_pixels(tmp_path):
    spec = SeriesSpec(count=4, rows=16, columns=16, RescaleIntercept=-1024.0)
    values = _write(tmp_path / "u", spec, 0xA000, signed=False)
    volume = load_volume(index_sources(tmp_path / "u").series[0])
    np.testing.assert_array_equal(volume.voxels, values - 1024)


def test_signed_12_bit_pixels_are_sign_extended(tmp_path):
    spec = SeriesSpec(count=4, rows=16, columns=16, RescaleIntercept=0.0)
    values = _write(tmp_path / "s", spec, 0x0000, signed=True)
    volume = load_volume(index_sources(tmp_path / "s").series[0])
    np.testing.assert_array_equal(volume.voxels, values)


def test_two_loads_agree_with_pydicom_and_leave_files_untouched(tmp_path):
    spec = SeriesSpec(count=3, rows=16, columns=16)
    _write(tmp_path / "f", spec, 0x5000, signed=False)
    before = {p: p.read_bytes() for p in (tmp_path / "f").iterdir()}
    series = index_sources(tmp_path / "f").series[0]
    first, second = load_volume(series).voxels, load_volume(series).voxels
    np.testing.assert_array_equal(first, second)
    reference = dcmread(series.slices[0].ref.path).pixel_array.astype(np.int32) + int(
        spec.RescaleIntercept
    )
    np.testing.assert_array_equal(first[0], reference)
    assert {p: p.read_bytes() for p in (tmp_path / "f").iterdir()} == before


def _write_16_bit(folder, spec, values, signed: bool):
    folder.mkdir()
    for index, plane in enumerate(values):
        ds = slice_dataset(spec, index, plane.astype(np.int16 if signed else np.uint16))
        ds.PixelRepresentation = int(signed)
        ds.save_as(folder / f"{index}.dcm", enforce_file_format=True)


def test_values_beyond_int16_after_rescale_load_exactly_as_float(tmp_path):
    """16-bit data whose HU leave the int16 range (a metal implant, say) keep every value."""
    spec = SeriesSpec(count=3, rows=16, columns=16, RescaleIntercept=-1024.0)
    values = np.random.default_rng(5).integers(0, 40000, (3, 16, 16))
    values[1, 3, 4] = 65535
    _write_16_bit(tmp_path / "u16", spec, values, signed=False)
    volume = load_volume(index_sources(tmp_path / "u16").series[0])
    assert volume.voxels.dtype == np.float32
    np.testing.assert_array_equal(volume.voxels, values - 1024.0)


def test_integer_slope_and_intercept_stay_exact_in_int16(tmp_path):
    spec = SeriesSpec(count=3, rows=16, columns=16, RescaleSlope=2.0, RescaleIntercept=-3000.0)
    values = np.random.default_rng(6).integers(-8000, 8000, (3, 16, 16))
    _write_16_bit(tmp_path / "s16", spec, values, signed=True)
    volume = load_volume(index_sources(tmp_path / "s16").series[0])
    assert volume.voxels.dtype == np.int16
    np.testing.assert_array_equal(volume.voxels, values * 2 - 3000)


def test_unsigned_16_bit_values_on_both_sides_of_32767_stay_exact_in_int16(tmp_path):
    """Stored values above 32767 (negative when read as int16) still give exact HU when the HU
    fit int16."""
    spec = SeriesSpec(count=2, rows=16, columns=16, RescaleIntercept=-1024.0)
    values = np.random.default_rng(7).integers(0, 30000, (2, 16, 16))
    values[1] += 3000  # stored values up to 32999, HU up to 31975
    values[1, 0, 0] = 33791  # HU 32767, the int16 maximum
    _write_16_bit(tmp_path / "u16", spec, values, signed=False)
    volume = load_volume(index_sources(tmp_path / "u16").series[0])
    assert volume.voxels.dtype == np.int16
    np.testing.assert_array_equal(volume.voxels, values - 1024)
