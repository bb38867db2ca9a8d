"""Synthetic series written with pydicom: ordering, geometry problems, splits, exclusions, codecs."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

from app.dicom import LoadError, choose_series, index_sources, load_volume, load_volume_task
from app.dicom.loader import CHUNK_FILES
from app.dicom.synthetic import SeriesSpec, slice_dataset, write_series
from app.tasks import Cancelled, CancelToken, run_sync


def _hu_of(path: Path) -> np.ndarray:
    ds = pydicom.dcmread(path)
    return ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def _only_series(folder: Path):
    index = index_sources(folder)
    assert len(index.series) == 1, [s.problems for s in index.series]
    return index.series[0]


def test_shuffled_file_names_load_in_position_order(tmp_path):
    spec = SeriesSpec(count=12, slice_spacing=2.0)
    paths = write_series(tmp_path, spec, shuffle_names=True, seed=3)
    volume = load_volume(_only_series(tmp_path))
    z = volume.slice_positions[:, 2]
    assert np.all(np.diff(z) > 0), "slices must go inferior -> superior"
    assert volume.spacing[0] == pytest.approx(2.0)
    for k in (0, 5, 11):  # paths are in slice order; file names are not
        np.testing.assert_array_equal(volume.voxels[k], _hu_of(paths[k]))
    assert volume.voxels.dtype == np.int16


def test_order_comes_from_position_not_instance_number(tmp_path):
    spec = SeriesSpec(count=6)
    for index in range(spec.count):
        ds = slice_dataset(spec, index)
        ds.InstanceNumber = 100 - index  # reversed on purpose
        ds.save_as(tmp_path / f"{index}.dcm", enforce_file_format=True)
    volume = load_volume(_only_series(tmp_path))
    assert list(volume.slice_positions[:, 2]) == sorted(volume.slice_positions[:, 2])


def test_feet_first_order_is_still_ascending_along_normal(tmp_path):
    write_series(tmp_path, SeriesSpec(count=8, slice_spacing=-3.0, first_z=50.0))
    volume = load_volume(_only_series(tmp_path))
    assert volume.spacing[0] == pytest.approx(3.0)
    assert np.all(np.diff(volume.slice_positions[:, 2]) > 0)
    first = volume.index_to_lps((0, 0, 0))
    np.testing.assert_allclose(first, volume.slice_positions[0], atol=1e-6)


def test_gap_is_reported(tmp_path):
    write_series(tmp_path, SeriesSpec(count=20, slice_spacing=2.5), skip=(8, 9, 10))
    series = _only_series(tmp_path)
    assert any("gap of 10.00 mm" in p and "3 slice(s) missing" in p for p in series.problems), (
        series.problems
    )
    # numbered from 1 along the series, as the viewer shows them ("Axial 8/17"), with the count
    assert any("between slices 8 and 9 of 17" in p for p in series.problems), series.problems
    spacing_problems = [p for p in series.problems if "gap" in p or "spacing" in p]
    assert len(spacing_problems) == 1, "one gap, one message (not also a 'non-uniform spacing' one)"
    # the loaded volume places every slice where it was acquired, also after the gap
    volume = load_volume(series)
    assert volume.gaps == [(7, pytest.approx(10.0))]
    for z, item in enumerate(series.slices):
        np.testing.assert_allclose(volume.index_to_lps((z, 0, 0)), item.ImagePositionPatient, atol=1e-6)
    assert series.slice_spacing == pytest.approx(2.5)


def test_gantry_tilt_is_reported_and_spacing_is_along_the_normal(tmp_path):
    write_series(tmp_path, SeriesSpec(count=10, slice_spacing=2.0, tilt_degrees=15.0))
    series = _only_series(tmp_path)
    assert any("gantry tilt of 15.00 degrees" in p for p in series.problems), series.problems
    assert series.slice_spacing == pytest.approx(2.0 * np.cos(np.radians(15.0)), rel=1e-6)
    assert series.orientation == "axial"


def test_a_tilted_series_is_resampled_so_a_straight_structure_sits_where_it_is(tmp_path):
    """A rod along the table (patient z) through a 20-degree tilted stack sits at the same pixel
    of every tilted image. Stacked as it comes, the viewer would put it 1.7 mm further off on each
    slice (32.5 mm at the last); loaded, every slice shows it where it is in the patient."""
    tilt, step, rows = 20.0, 5.0, 128
    spec = SeriesSpec(count=20, slice_spacing=step, tilt_degrees=tilt, rows=rows, columns=rows,
                      pixel_spacing=(1.0, 1.0))
    rod_x, rod_y = -120.0 + 64.0, -120.0 + 30.0 * np.cos(np.radians(tilt))  # pixel (row 30, column 64)
    yy, xx = np.mgrid[0:rows, 0:rows]
    image = np.where((yy - 30) ** 2 + (xx - 64) ** 2 <= 9, 2024, 24).astype(np.int16)  # 1000, -1000 HU
    for k in range(spec.count):
        slice_dataset(spec, k, image).save_as(tmp_path / f"{k:03d}.dcm", enforce_file_format=True)
    series = _only_series(tmp_path)
    assert any("gantry tilt of 20.00 degrees" in p and "shifted in its plane (up to 32.5 mm)" in p
               for p in series.problems), series.problems

    volume = load_volume(series)
    assert volume.slice_offsets_mm is None  # an even stack along the normal
    for k in (0, 7, 19):
        rod_row, rod_column = np.argwhere(volume.voxels[k] > 0).mean(axis=0)
        x, y, _ = volume.index_to_lps((k, rod_row, rod_column))
        assert (x, y) == (pytest.approx(rod_x, abs=0.5), pytest.approx(rod_y, abs=0.5)), k
        assert rod_row == pytest.approx(30 + k * step * np.sin(np.radians(tilt)), abs=0.5)
    assert volume.voxels.dtype == np.int16 and volume.voxels.min() == -1000  # what came in is air


def test_a_tilted_series_with_an_undecodable_slice_says_each_problem_once(tmp_path):
    paths = write_series(tmp_path, SeriesSpec(count=10, slice_spacing=2.0, tilt_degrees=15.0))
    series = _only_series(tmp_path)
    paths[4].write_bytes(paths[4].read_bytes()[:-3000])  # pixel data cut short after indexing
    volume = load_volume(series)
    assert volume.shape[0] == 9
    assert sum("gantry tilt" in p for p in volume.problems) == 1, volume.problems
    assert any("could not be decoded" in p for p in volume.problems)


def test_two_acquisitions_at_the_same_positions_are_split(tmp_path):
    study = SeriesSpec().StudyInstanceUID
    common = {"count": 10, "StudyInstanceUID": study, "SeriesInstanceUID": "1.2.3.4.5"}
    write_series(tmp_path, SeriesSpec(AcquisitionNumber=1, **common))
    write_series(tmp_path, SeriesSpec(AcquisitionNumber=2, RescaleIntercept=-1000.0, **common))
    index = index_sources(tmp_path)
    parts = index.series
    assert sorted(p.part for p in parts) == ["AcquisitionNumber=1", "AcquisitionNumber=2"]
    assert all("split by AcquisitionNumber" in " ".join(p.problems) for p in parts)
    volumes = {p.part: load_volume(p) for p in parts}
    difference = (
        volumes["AcquisitionNumber=2"].voxels.astype(int) - volumes["AcquisitionNumber=1"].voxels
    )
    assert np.all(difference == 24)
    assert index.find_series("1.2.3.4.5") is not None


def test_duplicates_without_distinguishing_attribute_keep_one_per_position(tmp_path):
    spec = SeriesSpec(count=8)
    write_series(tmp_path / "a", spec)
    write_series(
        tmp_path / "b", SeriesSpec(**{**spec.__dict__, "count": 3})
    )  # same UIDs, new SOP UIDs
    series = _only_series(tmp_path)
    assert len(series.slices) == 8
    assert sum("duplicate position" in reason for _, reason in series.excluded) == 3
    assert any("share a position" in p for p in series.problems)


def test_same_file_twice_is_counted_once(tmp_path):
    paths = write_series(tmp_path, SeriesSpec(count=5))
    (tmp_path / "copy.dcm").write_bytes(paths[2].read_bytes())
    series = _only_series(tmp_path)
    assert len(series.slices) == 5
    assert any("appears twice" in reason for _, reason in series.excluded)


def test_mixed_sizes_keep_the_majority_and_say_why(tmp_path):
    spec = SeriesSpec(count=10)
    write_series(tmp_path, spec)
    odd = slice_dataset(SeriesSpec(**{**spec.__dict__, "rows": 32, "columns": 32}), 11)
    odd.save_as(tmp_path / "odd.dcm", enforce_file_format=True)
    series = _only_series(tmp_path)
    assert (series.Rows, series.Columns, len(series.slices)) == (64, 64, 10)
    assert [reason for _, reason in series.excluded] == [
        "image size 32x32 differs from the series' 64x64"
    ]
    assert load_volume(series).shape == (10, 64, 64)


def test_localizer_is_excluded(tmp_path):
    spec = SeriesSpec(count=10)
    write_series(tmp_path, spec)
    scout = slice_dataset(spec, 0)
    scout.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    scout.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    scout.save_as(tmp_path / "scout.dcm", enforce_file_format=True)
    series = _only_series(tmp_path)
    assert len(series.slices) == 10
    assert [r for _, r in series.excluded] == ["localizer/scout image"]
    assert "1 localizer image(s) excluded" in series.problems


def test_missing_position_is_excluded_with_reason(tmp_path):
    spec = SeriesSpec(count=6)
    write_series(tmp_path, spec)
    broken = slice_dataset(spec, 9)
    del broken.ImagePositionPatient
    broken.save_as(tmp_path / "broken.dcm", enforce_file_format=True)
    series = _only_series(tmp_path)
    assert [r for _, r in series.excluded] == ["missing or invalid ImagePositionPatient"]
    assert load_volume(series).shape[0] == 6


def test_non_ct_series_is_flagged_and_not_chosen(tmp_path):
    write_series(tmp_path, SeriesSpec(count=20, Modality="MR"))
    index = index_sources(tmp_path)
    assert any("not CT" in p for p in index.series[0].problems)
    choice = choose_series(index)
    assert choice.series is None and "Modality MR" in choice.reason


def test_choice_prefers_lung_kernel_then_more_slices_and_can_be_overridden(tmp_path):
    study = SeriesSpec().StudyInstanceUID
    soft = SeriesSpec(
        count=30, ConvolutionKernel="STANDARD", SeriesNumber=3, StudyInstanceUID=study
    )
    lung = SeriesSpec(count=20, ConvolutionKernel="LUNG", SeriesNumber=4, StudyInstanceUID=study)
    few = SeriesSpec(count=8, ConvolutionKernel="LUNG", SeriesNumber=5, StudyInstanceUID=study)
    for spec in (soft, lung, few):
        write_series(tmp_path / str(spec.SeriesNumber), spec)
    index = index_sources(tmp_path)
    choice = choose_series(index)
    assert choice.series.SeriesInstanceUID == lung.SeriesInstanceUID
    assert "lung kernel" in choice.reason
    forced, reason = choose_series(index, override_uid=few.SeriesInstanceUID)
    assert forced.SeriesInstanceUID == few.SeriesInstanceUID
    assert "chosen by the user" in reason and "only 8 slice(s)" in reason


def test_fractional_rescale_gives_float32_hu(tmp_path):
    paths = write_series(tmp_path, SeriesSpec(count=4, RescaleSlope=0.5, RescaleIntercept=-1024.25))
    volume = load_volume(_only_series(tmp_path))
    assert volume.voxels.dtype == np.float32
    np.testing.assert_allclose(volume.voxels[2], _hu_of(paths[2]), rtol=0, atol=1e-3)


def test_values_beyond_int16_switch_to_float32(tmp_path):
    spec = SeriesSpec(count=3, RescaleIntercept=1000.0)
    for index in range(spec.count):
        pixels = np.full((64, 64), 40000, dtype=np.uint16)
        slice_dataset(spec, index, pixels).save_as(
            tmp_path / f"{index}.dcm", enforce_file_format=True
        )
    volume = load_volume(_only_series(tmp_path))
    assert volume.voxels.dtype == np.float32
    assert float(volume.voxels.max()) == 41000.0


@pytest.mark.parametrize(
    "syntax", [RLELossless, JPEGLSLossless, JPEG2000Lossless, DeflatedExplicitVRLittleEndian]
)
def test_compressed_copy_loads_identically(tmp_path, syntax):
    spec = SeriesSpec(count=5)
    write_series(tmp_path / "plain", spec)
    (tmp_path / "packed").mkdir()
    for index in range(spec.count):
        ds = slice_dataset(
            SeriesSpec(**{**spec.__dict__, "SeriesInstanceUID": "1.2.826.0.1.99"}), index
        )
        if syntax == DeflatedExplicitVRLittleEndian:
            ds.file_meta.TransferSyntaxUID = syntax
        else:
            ds.compress(syntax)
        ds.save_as(tmp_path / "packed" / f"{index}.dcm", enforce_file_format=True)
    index = index_sources(tmp_path)
    plain = load_volume(index.find_series(spec.SeriesInstanceUID))
    packed_series = index.find_series("1.2.826.0.1.99")
    assert packed_series.TransferSyntaxUIDs == (syntax,)
    packed = load_volume(packed_series)
    np.testing.assert_array_equal(packed.voxels, plain.voxels)
    assert packed.problems == ()


def test_undecodable_slice_is_dropped_and_reported(tmp_path):
    paths = write_series(tmp_path, SeriesSpec(count=6))
    series = _only_series(tmp_path)
    data = paths[3].read_bytes()
    paths[3].write_bytes(data[: len(data) - 3000])  # pixel data cut short after indexing
    volume = load_volume(series)
    assert volume.shape[0] == 5
    assert any(str(paths[3]) in p and "could not be decoded" in p for p in volume.problems)
    assert any("gap" in p for p in volume.problems)


def test_truncated_file_is_a_file_problem_at_index_time(tmp_path):
    paths = write_series(tmp_path, SeriesSpec(count=6))
    paths[0].write_bytes(paths[0].read_bytes()[:-100])
    index = index_sources(tmp_path)
    assert len(index.series[0].slices) == 5
    assert [(p.file, p.cause) for p in index.problems] == [
        (str(paths[0]), "pixel data is shorter than 64x64x1 images need (truncated file?)")
    ]


def test_series_without_usable_images_raises_load_error(tmp_path):
    spec = SeriesSpec(count=2)
    for index in range(2):
        ds = slice_dataset(spec, index)
        del ds.ImageOrientationPatient
        ds.save_as(tmp_path / f"{index}.dcm", enforce_file_format=True)
    with pytest.raises(LoadError, match="no usable images"):
        load_volume(_only_series(tmp_path))


def test_cancel_stops_loading_and_leaves_no_threads(tmp_path):
    write_series(tmp_path, SeriesSpec(count=40))
    series = _only_series(tmp_path)
    token = CancelToken()
    task = load_volume_task(series, token)
    first = next(task)
    assert 0 < first.fraction <= 1
    token.cancel()
    with pytest.raises(Cancelled):
        run_sync(task)


def test_identifiers_are_never_logged(tmp_path, caplog):
    write_series(
        tmp_path, SeriesSpec(count=3, PatientName="SECRET^PERSON", PatientID="ID-777-SECRET")
    )
    with caplog.at_level(logging.DEBUG, logger="app"):
        load_volume(_only_series(tmp_path))
    assert caplog.records, "the loader should log a summary"
    text = caplog.text
    assert "SECRET" not in text and "ID-777" not in text
    from app.phi import redact

    assert "SECRET" not in redact("patient SECRET^PERSON id ID-777-SECRET")


def test_degenerate_orientation_and_spacing_are_excluded(tmp_path):
    spec = SeriesSpec(count=6)
    write_series(tmp_path, spec)
    flat = slice_dataset(spec, 8)
    flat.ImageOrientationPatient = [1, 0, 0, 1, 0, 0]
    flat.save_as(tmp_path / "flat.dcm", enforce_file_format=True)
    zero = slice_dataset(spec, 9)
    zero.PixelSpacing = [0, 0]
    zero.save_as(tmp_path / "zero.dcm", enforce_file_format=True)
    series = _only_series(tmp_path)
    assert sorted(r for _, r in series.excluded) == [
        "invalid ImageOrientationPatient (rows are not orthogonal unit vectors)",
        "invalid PixelSpacing (not positive)",
    ]
    assert load_volume(series).shape[0] == 6


def test_coronal_geometry_round_trips_through_simpleitk(tmp_path):
    import SimpleITK as sitk

    from app.dicom import to_sitk

    write_series(tmp_path, SeriesSpec(count=7, slice_spacing=1.5, orientation=(1, 0, 0, 0, 0, -1)))
    series = _only_series(tmp_path)
    assert series.orientation == "coronal"
    volume = load_volume(series)
    image = to_sitk(volume)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path)))
    reference = reader.Execute()
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(reference), volume.voxels)
    for zyx in [(0, 0, 0), (6, 63, 0), (3, 10, 20)]:
        expected = reference.TransformIndexToPhysicalPoint(tuple(int(v) for v in zyx[::-1]))
        np.testing.assert_allclose(
            image.TransformIndexToPhysicalPoint(tuple(int(v) for v in zyx[::-1])),
            expected,
            atol=1e-4,
        )
        np.testing.assert_allclose(volume.index_to_lps(zyx), expected, atol=1e-4)
    np.testing.assert_allclose(volume.index_to_lps((4, 0, 0)), volume.slice_positions[4], atol=1e-6)
    assert volume.slice_index_of(volume.slice_positions[5]) == 5


def test_large_deflated_file_is_read_whole(tmp_path):
    rng = np.random.default_rng(0)
    spec = SeriesSpec(count=2, rows=256, columns=256)
    for index in range(spec.count):
        noise = rng.integers(
            0, 4000, (256, 256), dtype=np.uint16
        )  # incompressible: > 64 KB deflated
        ds = slice_dataset(spec, index, noise)
        ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
        ds.save_as(tmp_path / f"{index}.dcm", enforce_file_format=True)
    assert (tmp_path / "0.dcm").stat().st_size > 100_000
    volume = load_volume(_only_series(tmp_path))
    np.testing.assert_array_equal(volume.voxels[0], _hu_of(tmp_path / "0.dcm"))


def test_load_reports_progress_as_files_are_decoded(tmp_path):
    # Files are decoded in chunks of at most CHUNK_FILES: progress rises chunk by chunk.
    write_series(tmp_path, SeriesSpec(count=20))
    seen = []
    volume = run_sync(load_volume_task(_only_series(tmp_path)), seen.append)
    assert volume.shape[0] == 20
    sizes = [min(CHUNK_FILES, 20 - start) for start in range(0, 20, CHUNK_FILES)]
    assert [round(p.fraction * 20) for p in seen] == list(itertools.accumulate(sizes))
    assert seen[-1].message == "loading images: 20 of 20 files"


def test_ct_without_rescale_is_flagged_because_its_hounsfield_units_are_a_guess(tmp_path):
    """CT stores values offset by Rescale Intercept (type 1 in the CT Image module). Without it,
    stored values are taken as HU as they are: a typical 0..4095 image reads 1024 HU too bright,
    so windows and the AI draft go wrong, and the reader must be told."""
    spec = SeriesSpec(count=5)
    paths = write_series(tmp_path, spec)
    for path in paths[:2]:
        ds = pydicom.dcmread(path)
        del ds.RescaleIntercept
        ds.save_as(path, enforce_file_format=True)
    series = _only_series(tmp_path)
    flagged = [p for p in series.problems if "Rescale Slope/Intercept" in p]
    assert len(flagged) == 1 and flagged[0].startswith("2 of 5 image(s)") and "-1000 HU" in flagged[0]
    assert any("Rescale" in p for p in load_volume(series).problems), "the loaded volume carries it on"
    clean = tmp_path / "clean"
    write_series(clean, SeriesSpec(count=5))
    assert not any("Rescale" in p for p in _only_series(clean).problems)


def test_mr_without_rescale_is_not_flagged_for_rescale(tmp_path):
    paths = write_series(tmp_path, SeriesSpec(count=3, Modality="MR"))
    for path in paths:
        ds = pydicom.dcmread(path)
        del ds.RescaleIntercept, ds.RescaleSlope
        ds.save_as(path, enforce_file_format=True)
    assert not any("Rescale" in p for p in _only_series(tmp_path).problems)


def test_uneven_spacing_that_is_no_gap_is_still_reported(tmp_path):
    paths = write_series(tmp_path, SeriesSpec(count=8, slice_spacing=5.0))
    ds = pydicom.dcmread(paths[4])  # slice 5 sits 1 mm off: steps of 6 and 4 mm, no slice missing
    ds.ImagePositionPatient = [*ds.ImagePositionPatient[:2], float(ds.ImagePositionPatient[2]) + 1.0]
    ds.save_as(paths[4], enforce_file_format=True)
    problems = _only_series(tmp_path).problems
    assert any(p.startswith("non-uniform slice spacing (4.00 to 6.00 mm)") for p in problems), problems
    assert not any(p.startswith("gap of") for p in problems)
