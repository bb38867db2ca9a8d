"""The persistent index cache: reopening skips header parsing, yet a changed file is always re-read."""

from __future__ import annotations

import logging
import os
import stat
import sys
import time

import pytest
from pydicom import dcmread

import app.dicom.index as index_module
from app import phi
from app.dicom import index_cache, index_sources, load_volume
from app.dicom.index_cache import IndexCache, KeyMaker, default_cache_path
from app.dicom.model import FileRef
from app.dicom.synthetic import SeriesSpec, write_series


@pytest.fixture
def cache_path(tmp_path, monkeypatch):
    """A fresh data dir per test; files count as settled at once (timestamps are unique here)."""
    monkeypatch.setenv("MEDMPT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(index_cache, "SETTLE_SECONDS", 0.0)
    return default_cache_path()


@pytest.fixture
def series(tmp_path):
    spec = SeriesSpec(count=12, PatientName="QXZFAMILY^WVYGIVEN")
    paths = write_series(tmp_path / "study", spec)
    (tmp_path / "study" / "notes.txt").write_text("not an image")
    return spec, paths


def _count_header_reads(monkeypatch) -> list[FileRef]:
    reads: list[FileRef] = []
    real = index_module.read_header

    def counting(ref, identifiers=None):
        reads.append(ref)
        return real(ref, identifiers)

    monkeypatch.setattr(index_module, "read_header", counting)
    return reads


def _summary(index):
    return (
        [(s.key, s.SeriesDescription, s.problems) for s in index.series],
        [
            (x.SOPInstanceUID, x.ImagePositionPatient, x.pixel_offset)
            for x in index.series[0].slices
        ],
        [(p.file, p.cause) for p in index.problems],
    )


def test_reopening_reads_no_headers_and_gives_the_same_index(cache_path, series, monkeypatch):
    folder = series[1][0].parent
    first = index_sources(folder)
    reads = _count_header_reads(monkeypatch)
    again = index_sources(folder)
    assert reads == []  # every file (the non-DICOM one too) came from the cache
    assert _summary(again) == _summary(first)
    assert _summary(again) == _summary(index_sources(folder, use_cache=False))
    assert load_volume(again.series[0]).voxels.shape == (12, 64, 64)


def test_a_changed_file_is_read_again_and_its_new_values_are_used(cache_path, series, monkeypatch):
    _, paths = series
    index_sources(paths[0].parent)
    ds = dcmread(paths[5])
    sop = ds.SOPInstanceUID
    old_intercept = str(ds["RescaleIntercept"].value)
    new_intercept = old_intercept.replace("1024", "1000")
    assert new_intercept != old_intercept and len(new_intercept) == len(old_intercept)
    ds.RescaleIntercept = new_intercept  # same length: same file size
    before = os.stat(paths[5])
    time.sleep(0.05)  # a later change time than the cached one
    ds.save_as(paths[5], enforce_file_format=True)
    os.utime(paths[5], ns=(before.st_atime_ns, before.st_mtime_ns))  # even the same mtime
    assert os.stat(paths[5]).st_size == before.st_size
    reads = _count_header_reads(monkeypatch)
    index = index_sources(paths[0].parent)
    assert [str(r) for r in reads] == [str(paths[5])]
    intercepts = {s.SOPInstanceUID: s.RescaleIntercept for s in index.series[0].slices}
    assert intercepts[sop] == float(new_intercept)
    assert sorted(set(intercepts.values())) == [float(old_intercept), float(new_intercept)]


def test_a_replaced_file_never_gets_the_old_files_header(cache_path, tmp_path, monkeypatch):
    folder = tmp_path / "one"
    write_series(folder, SeriesSpec(count=3, SeriesDescription="first"))
    assert {s.SeriesDescription for s in index_sources(folder).series} == {"first"}
    for path in folder.iterdir():
        path.unlink()
    write_series(folder, SeriesSpec(count=3, SeriesDescription="other"))  # same names and sizes
    assert {s.SeriesDescription for s in index_sources(folder).series} == {"other"}


def test_a_corrupt_cache_is_ignored_and_rebuilt(cache_path, series, monkeypatch, caplog):
    folder = series[1][0].parent
    expected = _summary(index_sources(folder))
    cache_path.write_bytes(b"this is not a database" * 100)
    with caplog.at_level(logging.WARNING, logger="app.dicom.index_cache"):
        assert _summary(index_sources(folder)) == expected
    assert "damaged" in caplog.text
    reads = _count_header_reads(monkeypatch)
    assert _summary(index_sources(folder)) == expected
    assert reads == []  # rebuilt by the previous open


def test_a_tampered_entry_is_read_again_not_trusted(cache_path, series, monkeypatch):
    import sqlite3

    folder = series[1][0].parent
    expected = _summary(index_sources(folder))
    with sqlite3.connect(cache_path) as db:
        db.execute('UPDATE headers SET payload = \'{"slices": [[1, 2]], "meta": {}, "ids": []}\'')
    db.close()
    reads = _count_header_reads(monkeypatch)
    assert _summary(index_sources(folder)) == expected
    assert len(reads) == 13


def test_files_changed_moments_ago_are_not_cached(tmp_path, monkeypatch, series):
    monkeypatch.setenv("MEDMPT_DATA_DIR", str(tmp_path / "data"))
    _, paths = series  # just written: within SETTLE_SECONDS
    index_sources(paths[0].parent)
    maker = KeyMaker()
    keys = {FileRef(str(p)): maker.key(FileRef(str(p))) for p in paths}
    assert IndexCache().lookup(keys) == {}


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_cache_file_is_private_to_the_user(cache_path, series):
    index_sources(series[1][0].parent)
    assert stat.S_IMODE(os.stat(cache_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(cache_path.parent).st_mode) == 0o700


def test_cached_reopen_still_registers_identifiers_and_logs_none(cache_path, series, caplog):
    folder = series[1][0].parent
    index_sources(folder)
    phi.clear_identifiers()
    with caplog.at_level(logging.DEBUG, logger="app.dicom"):
        index_sources(folder)
    assert "from the cache" in caplog.text
    assert "QXZFAMILY" not in caplog.text and "WVYGIVEN" not in caplog.text
    assert "QXZFAMILY" not in phi.redact("name QXZFAMILY^WVYGIVEN")  # registered from the cache


def test_without_the_cache_nothing_is_stored(cache_path, series):
    index_sources(series[1][0].parent, use_cache=False)
    assert not cache_path.exists()


def test_the_cache_keeps_at_most_max_entries(cache_path, series, monkeypatch):
    import sqlite3

    monkeypatch.setattr(index_cache, "MAX_ENTRIES", 5)
    index_sources(series[1][0].parent)
    with sqlite3.connect(cache_path) as db:
        (count,) = db.execute("SELECT count(*) FROM headers").fetchone()
    db.close()
    assert count == 5
