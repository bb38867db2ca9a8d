"""Sources: folder (recursive), a list of files, a .zip archive, a DICOMDIR; progress and cancel."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.fileset import FileSet

from app.dicom import index_sources, index_task, load_volume
from app.dicom.synthetic import SeriesSpec, write_series
from app.tasks import Cancelled, CancelToken, run_sync


@pytest.fixture
def series_files(tmp_path):
    spec = SeriesSpec(count=10)
    return spec, write_series(tmp_path / "src" / "nested" / "deeper", spec, shuffle_names=True)


def test_folder_is_walked_recursively(tmp_path, series_files):
    spec, _ = series_files
    index = index_sources(tmp_path / "src")
    assert [s.SeriesInstanceUID for s in index.series] == [spec.SeriesInstanceUID]
    assert index.file_count == 10 and index.problems == []


def test_list_of_files_and_missing_path(tmp_path, series_files):
    _, paths = series_files
    index = index_sources([*paths[:4], tmp_path / "nope.dcm"])
    assert len(index.series[0].slices) == 4
    assert [(p.file, p.cause) for p in index.problems] == [
        (str(tmp_path / "nope.dcm"), "no such file or folder")
    ]


def test_zip_archive_loads_like_the_folder(tmp_path, series_files):
    _, paths = series_files
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in paths:
            handle.write(path, f"CT/{path.name}")
        handle.writestr("CT/readme.txt", "not dicom")
    from_zip = load_volume(index_sources(archive).series[0])
    from_folder = load_volume(index_sources(paths).series[0])
    np.testing.assert_array_equal(from_zip.voxels, from_folder.voxels)
    assert from_zip.origin == from_folder.origin
    assert [p.cause for p in index_sources(archive).problems] == ["not a DICOM file"]


def test_corrupt_zip_is_a_problem_not_a_crash(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    index = index_sources(bad)
    assert index.series == [] and index.problems[0].cause.startswith("cannot open zip archive")


def test_dicomdir_lists_the_series(tmp_path, series_files):
    _, paths = series_files
    fileset = FileSet()
    for path in paths:
        fileset.add(dcmread(path))
    fileset.write(tmp_path / "media")
    dicomdir = tmp_path / "media" / "DICOMDIR"
    index = index_sources(dicomdir)
    assert len(index.series) == 1 and len(index.series[0].slices) == 10
    assert index.problems == []
    # Opening the media folder itself finds the same images (DICOMDIR is skipped, not an error).
    assert len(index_sources(tmp_path / "media").series[0].slices) == 10


def test_progress_rises_to_one_and_cancel_stops(tmp_path, series_files):
    fractions = []
    run_sync(index_task(tmp_path / "src"), lambda p: fractions.append(p.fraction))
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        run_sync(index_task(tmp_path / "src", token))


def test_fifo_in_folder_does_not_hang(tmp_path, series_files):
    import os

    fifo = tmp_path / "src" / "pipe"
    os.mkfifo(fifo)
    index = index_sources(tmp_path / "src")
    assert len(index.series[0].slices) == 10
    assert [p.cause for p in index_sources([fifo]).problems] == ["not a regular file"]
