"""Recent studies persist newest first; series thumbnails show the middle image."""

from __future__ import annotations

import numpy as np

from app import recent


def test_recent_studies_newest_first_without_duplicates(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDMPT_DATA_DIR", str(tmp_path / "data"))
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    recent.remember_study(a)
    recent.remember_study(b)
    recent.remember_study(a)
    assert [item["path"] for item in recent.recent_studies()] == [str(a.resolve()), str(b.resolve())]
    b.rmdir()  # a study that is gone is not offered
    assert [item["path"] for item in recent.recent_studies()] == [str(a.resolve())]


def test_thumbnail_of_the_real_series_is_its_middle_slice(real_series_dir):
    from app.dicom import index_sources, load_volume
    from app.dicom.thumbnail import series_thumbnail
    from app.viewing import apply_window

    series = index_sources([real_series_dir]).series[0]
    thumb = series_thumbnail(series, size=64)
    assert thumb is not None and thumb.shape == (64, 64) and thumb.dtype == np.uint8
    volume = load_volume(series)
    middle = apply_window(volume.voxels[len(series.slices) // 2], 1500, -600)
    rows = np.linspace(0, 511, 64).astype(int)
    assert np.array_equal(thumb, middle[np.ix_(rows, rows)])
