"""Opening a study for the workstation: index sources in a task and describe the series for display.

Qt-free. The UI shows `StudyIndex.series_rows()`; the model's series choice is preselected.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.dicom import IndexResult, SeriesChoice, choose_series, index_task, load_volume_task
from app.dicom.thumbnail import series_thumbnail
from app.tasks import CancelToken, Progress
from app.volume import Volume

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SeriesRow:
    """One line of the series list."""

    series_uid: str
    title: str
    details: str
    chosen: bool
    problems: tuple[str, ...]


@dataclass
class StudyIndex:
    """What was found in the opened sources and which series the model would use."""

    index: IndexResult
    choice: SeriesChoice
    thumbnails: dict[str, np.ndarray] = field(default_factory=dict)
    """Series key -> (96, 96) uint8 preview of the middle image (absent when not previewable)."""

    @property
    def choice_reason(self) -> str:
        return self.choice.reason

    def series_rows(self) -> list[SeriesRow]:
        chosen_key = self.choice.series.key if self.choice.series is not None else None
        rows = []
        for series in self.index.series:
            size = f"{series.Rows}x{series.Columns}" if series.Rows else "?"
            spacing = f", {series.slice_spacing:.2f} mm" if series.slice_spacing else ""
            # two lines (what it is; its size), so a narrow series list shows it whole
            title = (
                f"{series.Modality or '?'} {series.SeriesDescription or '(no description)'}"
                f"\n{series.instance_count} images, {size}{spacing}"
            )
            if series.problems:
                count = len(series.problems)
                title += f"  \u26a0 {count} problem{'s' if count > 1 else ''}"
            details = "\n".join(
                [f"Orientation: {series.orientation}", f"Kernel: {series.ConvolutionKernel or '-'}"]
                + [f"\u26a0 {p}" for p in series.problems]
            )
            rows.append(
                SeriesRow(series.key, title, details, series.key == chosen_key, tuple(series.problems))
            )
        return rows

    def summary(self) -> str:
        n_series = len(self.index.series)
        lines = [f"{len(self.index.studies)} study(ies), {n_series} series, {self.index.file_count} files"]
        if self.index.problems:
            lines.append(f"{len(self.index.problems)} file(s) could not be used")
        lines.append(self.choice.reason)
        return "\n".join(lines)


def open_sources_task(
    paths: Sequence[Path], cancel: CancelToken | None = None
) -> Generator[Progress, None, StudyIndex]:
    """Index folders, files, zips or DICOMDIRs (headers only) and choose the series for the model."""
    yield Progress(0.0, "Reading DICOM headers\u2026")
    index = yield from index_task([Path(p) for p in paths], cancel)
    choice = choose_series(index)
    log.info(
        "opened %d series in %d files (%d unusable files)",
        len(index.series), index.file_count, len(index.problems),
    )
    thumbnails = {}
    for series in index.series:
        if cancel is not None:
            cancel.raise_if_cancelled()
        thumb = series_thumbnail(series)
        if thumb is not None:
            thumbnails[series.key] = thumb
    yield Progress(1.0, "Study indexed")
    return StudyIndex(index, choice, thumbnails)


def load_series_task(
    study: StudyIndex, series_key: str | None = None, cancel: CancelToken | None = None
) -> Generator[Progress, None, Volume]:
    """Load the chosen series (or `series_key`) of an opened study as a Volume."""
    series = study.choice.series if series_key is None else study.index.find_series(series_key)
    if series is None:
        raise ValueError(study.choice.reason if series_key is None else "that series is no longer in the study")
    return (yield from load_volume_task(series, cancel))
