"""A small preview of a series for the study browser: its middle image, windowed and shrunk.

Must not import Qt. Reads one file; a series that cannot be previewed gives None, never an error.
"""

from __future__ import annotations

import logging

import numpy as np

from app.dicom.loader import read_pixels
from app.dicom.model import SeriesInfo
from app.viewing import apply_window

log = logging.getLogger(__name__)


def series_thumbnail(series: SeriesInfo, size: int = 96, width: float = 1500.0,
                     level: float = -600.0) -> np.ndarray | None:
    """(size, size) uint8 grey preview (lung window by default), or None."""
    if not series.slices:
        return None
    item = series.slices[len(series.slices) // 2]
    try:
        frames = read_pixels(item)
        frame = frames[item.frame or 0]
        if frame.ndim != 2:
            return None
        hu = frame.astype(np.float32) * float(item.RescaleSlope) + float(item.RescaleIntercept)
    except Exception as exc:  # noqa: BLE001 - a preview is optional
        log.info("no thumbnail for series %s: %s", series.log_id, type(exc).__name__)
        return None
    rows = np.linspace(0, hu.shape[0] - 1, size).astype(int)
    cols = np.linspace(0, hu.shape[1] - 1, size).astype(int)
    return np.ascontiguousarray(apply_window(hu[np.ix_(rows, cols)], width, level))
