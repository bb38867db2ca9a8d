"""DICOM ingest: index folders / files / .zip / DICOMDIR, pick the CT series, load it as a Volume.

The only home of pydicom and SimpleITK in the run-time code; must not import Qt or vtk.

Public API
----------
``index_sources(paths, cancel=None) -> IndexResult``
    Reads headers only (pydicom ``dcmread`` with ``stop_before_pixels``, ``specific_tags``,
    ``defer_size``, from bytes held in memory so a corrupted length cannot allocate more than
    the file holds). ``paths`` is a path or a list of folders (walked recursively), files,
    ``.zip`` archives and DICOMDIR files. ``IndexResult.patients -> studies -> series``;
    ``IndexResult.problems`` lists ``FileProblem(file, cause)`` for every file that cannot be
    used. ``index_task(paths, cancel)`` is the same as a generator task yielding ``Progress``
    once per file and checking the ``CancelToken`` between files. Both keep a persistent
    index cache (app.dicom.index_cache: SQLite, ``<data dir>/cache/dicom-index.sqlite3``, mode
    0600 because it holds header values such as patient names) keyed by resolved path, zip
    member, size, mtime_ns, ctime_ns and inode, so reopening a study parses no header; a
    changed or replaced file is read again, a damaged cache is discarded.
    ``use_cache=False`` reads every header and leaves the cache alone (the cold path).
``SeriesInfo``
    Modality, SeriesDescription, SeriesNumber, ConvolutionKernel, ``instance_count``,
    Rows x Columns, PixelSpacing, ``slice_spacing`` and SliceThickness, ``orientation``
    (axial / coronal / sagittal / oblique), TransferSyntaxUIDs, ``problems`` (gaps,
    non-uniform spacing, gantry tilt, mixed sizes, localizers, duplicates, non-CT, missing
    attributes), ``excluded`` images with reasons, ``slices`` sorted along the slice normal.
    A series that mixes acquisitions/phases at the same positions is split into parts
    (``part`` = e.g. ``"AcquisitionNumber=2"``; ``key`` = UID + part).
``load_volume(series, cancel=None) -> Volume`` / ``load_volume_task(series, cancel)``
    (the task yields ``Progress`` per file; files are decoded on a pool of 2 threads straight
    into one preallocated array; native pixel data is decoded in the file's own buffer). HU voxels (Z, Y, X) ordered along the slice normal, int16 when exact, else float32, with
    spacing / origin / direction (see app.volume). Raises ``LoadError`` (message says why)
    when nothing can be loaded; single undecodable files are dropped and listed in
    ``Volume.problems``. Enhanced (multi-frame) CT loads like a classic series.
``choose_series(index, override_uid=None) -> SeriesChoice(series, reason)``
    (a named tuple: ``series, reason = choose_series(index)``; series is None when nothing
    fits). CT, axial, >= 16 slices; prefers clean geometry, lung then soft-tissue kernels, more and
    thinner slices. ``override_uid`` (a SeriesInstanceUID or series key) wins.
``to_sitk(volume) -> SimpleITK.Image`` with the same voxels and geometry.

Logging goes to loggers under ``app.dicom`` and never contains identifiers or UIDs (series
are named by ``SeriesInfo.log_id``, a short hash); identifying values read from headers are
registered with ``app.phi.register_identifiers``.
"""

from __future__ import annotations

from app.dicom.choose import choose_series
from app.dicom.header_pool import warm_up as warm_up_header_workers
from app.dicom.index import index_sources, index_task
from app.dicom.loader import LoadError, load_volume, load_volume_task
from app.dicom.model import (
    FileProblem,
    FileRef,
    IndexResult,
    PatientInfo,
    SeriesChoice,
    SeriesInfo,
    SliceInfo,
    StudyInfo,
)


def to_sitk(volume):  # noqa: ANN001, ANN201 - typed in app.dicom.sitk_bridge
    """A SimpleITK image with the volume's voxels and geometry (SimpleITK imported on use)."""
    from app.dicom.sitk_bridge import to_sitk as convert

    return convert(volume)


__all__ = [
    "FileProblem",
    "FileRef",
    "IndexResult",
    "LoadError",
    "PatientInfo",
    "SeriesChoice",
    "SeriesInfo",
    "SliceInfo",
    "StudyInfo",
    "choose_series",
    "index_sources",
    "index_task",
    "load_volume",
    "load_volume_task",
    "to_sitk",
    "warm_up_header_workers",
]
