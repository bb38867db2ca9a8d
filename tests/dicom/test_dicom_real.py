"""The shared real chest CT: our loader against SimpleITK's ImageSeriesReader, and the choice."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from app.dicom import choose_series, index_sources, load_volume, to_sitk


@pytest.fixture(scope="module")
def real(real_series_dir):
    index = index_sources(real_series_dir)
    choice = choose_series(index)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(real_series_dir)))
    return index, choice, load_volume(choice.series), reader.Execute()


def test_real_series_is_indexed_and_chosen(real):
    index, choice, volume, _ = real
    series = choice.series
    assert series is not None and series.Modality == "CT"
    assert (series.instance_count, series.Rows, series.Columns) == (64, 512, 512)
    assert series.orientation == "axial" and series.slice_spacing == pytest.approx(5.0)
    assert series.problems == []
    assert "axial CT" in choice.reason
    # The folder's non-DICOM files (licence, readme, XML annotations) are reported, not fatal.
    assert index.problems and all(p.cause == "not a DICOM file" for p in index.problems)


def test_voxels_match_simpleitk_exactly(real):
    _, _, volume, image = real
    expected = sitk.GetArrayViewFromImage(image)
    assert volume.voxels.shape == expected.shape
    np.testing.assert_array_equal(volume.voxels, expected)


def test_geometry_matches_simpleitk(real):
    _, _, volume, image = real
    np.testing.assert_allclose(volume.spacing[::-1], image.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(volume.origin, image.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(volume.direction.ravel(), image.GetDirection(), atol=1e-4)
    for zyx in [(0, 0, 0), (63, 511, 511), (31, 100, 400)]:
        expected = image.TransformIndexToPhysicalPoint(tuple(int(v) for v in zyx[::-1]))
        np.testing.assert_allclose(volume.index_to_lps(zyx), expected, atol=1e-4)
        np.testing.assert_allclose(volume.lps_to_index(expected), zyx, atol=1e-6)


def test_slices_run_inferior_to_superior_with_uids(real):
    _, choice, volume, _ = real
    assert np.all(np.diff(volume.slice_positions[:, 2]) > 0)
    assert len(set(volume.SOPInstanceUIDs)) == 64
    assert volume.SeriesInstanceUID == choice.series.SeriesInstanceUID
    assert volume.StudyInstanceUID and volume.FrameOfReferenceUID


def test_to_sitk_keeps_voxels_and_geometry(real):
    _, _, volume, image = real
    converted = to_sitk(volume)
    np.testing.assert_array_equal(
        sitk.GetArrayViewFromImage(converted), sitk.GetArrayViewFromImage(image)
    )
    np.testing.assert_allclose(converted.GetOrigin(), image.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(converted.GetSpacing(), image.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(converted.GetDirection(), image.GetDirection(), atol=1e-4)
