"""Groups indexed images into patients / studies / series and checks each series for problems.

Excludes localizers, odd-sized and odd-oriented images, images without geometry, repeated
images; splits series that mix acquisitions or phases at the same positions. Must not import Qt.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable

import numpy as np

from app.dicom.geometry import (
    analyse_spacing,
    duplicate_positions,
    orientation_label,
    slice_normal,
    sort_along_normal,
)
from app.dicom.model import IndexResult, PatientInfo, SeriesInfo, SliceInfo, StudyInfo

log = logging.getLogger("app.dicom.series")
SPLIT_KEYS: tuple[str, ...] = ("AcquisitionNumber", "TemporalPositionIndex", "ImageType")
"""Attributes tried, in order, to separate acquisitions or phases mixed in one series."""


def _exclude(series: SeriesInfo, keep: Callable[[SliceInfo], str | None]) -> None:
    """Move slices for which `keep` returns a reason into series.excluded."""
    kept = []
    for item in series.slices:
        reason = keep(item)
        if reason:
            series.excluded.append((item, reason))
        else:
            kept.append(item)
    series.slices = kept


def _keep_majority(
    series: SeriesInfo,
    key: Callable[[SliceInfo], Hashable],
    what: str,
    describe: Callable[[Hashable], str],
) -> None:
    counts = Counter(key(s) for s in series.slices)
    if len(counts) < 2:
        return
    main = counts.most_common(1)[0][0]
    _exclude(
        series,
        lambda s: (
            None
            if key(s) == main
            else f"{what} {describe(key(s))} differs from the series' {describe(main)}"
        ),
    )
    series.problems.append(
        f"mixed {what}s: kept {counts[main]} image(s) of {describe(main)}, excluded {sum(counts.values()) - counts[main]}"
    )


def _missing_geometry(item: SliceInfo) -> str | None:
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
        if getattr(item, keyword) is None:
            return f"missing or invalid {keyword}"
    if min(item.PixelSpacing) <= 0:  # type: ignore[arg-type]
        return "invalid PixelSpacing (not positive)"
    return _orientation_problem(item.ImageOrientationPatient)  # type: ignore[arg-type]


@functools.lru_cache(maxsize=256)
def _orientation_problem(iop: tuple[float, ...]) -> str | None:
    """Checked once per distinct orientation: a series' slices nearly always share it."""
    if abs(np.linalg.norm(slice_normal(iop)) - 1) > 1e-3 or not _unit_rows(iop):
        return "invalid ImageOrientationPatient (rows are not orthogonal unit vectors)"
    return None


def _unit_rows(iop_values: tuple[float, ...]) -> bool:
    iop = np.asarray(iop_values, dtype=float)
    row, col = iop[:3], iop[3:]
    return bool(
        abs(np.linalg.norm(row) - 1) < 1e-2
        and abs(np.linalg.norm(col) - 1) < 1e-2
        and abs(row @ col) < 1e-2
    )


def _check_greyscale(series: SeriesInfo) -> None:
    first = series.slices[0]
    if first.SamplesPerPixel != 1 or first.PhotometricInterpretation not in (
        "MONOCHROME1",
        "MONOCHROME2",
    ):
        series.loadable = False
        series.problems.append(
            f"not a greyscale image ({first.PhotometricInterpretation or 'unknown'}, "
            f"{first.SamplesPerPixel} samples per pixel): cannot be loaded as a CT volume"
        )


def _clean(series: SeriesInfo) -> None:
    _check_greyscale(series)
    seen: set[tuple[str, int | None]] = set()

    def first_copy(item: SliceInfo) -> str | None:
        key = (item.SOPInstanceUID, item.frame)
        if key in seen:
            return "the same image (SOPInstanceUID) appears twice; kept one copy"
        seen.add(key)
        return None

    _exclude(series, first_copy)
    before = len(series.slices)
    _exclude(
        series,
        lambda s: (
            "localizer/scout image" if "LOCALIZER" in (t.upper() for t in s.ImageType) else None
        ),
    )
    if before != len(series.slices):
        series.problems.append(f"{before - len(series.slices)} localizer image(s) excluded")
    before = len(series.slices)
    _exclude(series, _missing_geometry)
    if before != len(series.slices):
        series.problems.append(
            f"{before - len(series.slices)} image(s) without position/orientation/spacing excluded"
        )
    _keep_majority(series, lambda s: (s.Rows, s.Columns), "image size", lambda k: f"{k[0]}x{k[1]}")
    _keep_majority(
        series,
        lambda s: tuple(round(v, 3) for v in s.ImageOrientationPatient),  # type: ignore[union-attr]
        "orientation",
        lambda k: orientation_label(k),
    )


def _split_duplicates(series: SeriesInfo) -> list[SeriesInfo]:
    """Parts of a series whose images share positions; one part per acquisition/phase."""
    if not duplicate_positions(series.slices):
        return [series]
    for keyword in SPLIT_KEYS:
        groups: dict[Hashable, list[SliceInfo]] = defaultdict(list)
        for item in series.slices:
            groups[getattr(item, keyword)].append(item)
        if len(groups) > 1 and not any(duplicate_positions(g) for g in groups.values()):
            parts = []
            for value, members in sorted(groups.items(), key=lambda kv: (-len(kv[1]), str(kv[0]))):
                label = "\\".join(value) if isinstance(value, tuple) else value
                part = SeriesInfo(
                    **{
                        **series.__dict__,
                        "slices": members,
                        "excluded": list(series.excluded),
                        "problems": list(series.problems),
                        "part": f"{keyword}={label}",
                    }
                )
                part.problems.append(
                    f"series mixes {len(groups)} acquisitions/phases at the same positions; split by "
                    f"{keyword}; this part is {keyword}={label} ({len(members)} images)"
                )
                parts.append(part)
            return parts
    by_position: dict[tuple[float, ...], SliceInfo] = {}
    ordered = sorted(series.slices, key=lambda s: (s.InstanceNumber is None, s.InstanceNumber or 0))
    for item in ordered:
        by_position.setdefault(tuple(round(v, 2) for v in item.ImagePositionPatient), item)  # type: ignore[union-attr]
    kept = {id(s) for s in by_position.values()}
    _exclude(
        series,
        lambda s: (
            None
            if id(s) in kept
            else "duplicate position: another image of the series is at the same place"
        ),
    )
    series.problems.append(
        "several images share a position and no attribute tells them apart; kept the first "
        "(lowest InstanceNumber) at each position"
    )
    return [series]


def _summarise(series: SeriesInfo) -> None:
    series.slices = sort_along_normal(series.slices)
    if not series.slices:
        series.loadable = False
        series.problems.append("no usable images")
        return
    first = series.slices[0]
    series.Rows, series.Columns = first.Rows, first.Columns
    series.PixelSpacing = first.PixelSpacing
    series.SliceThickness = first.SliceThickness
    series.orientation = orientation_label(first.ImageOrientationPatient)
    series.TransferSyntaxUIDs = tuple(sorted({s.TransferSyntaxUID for s in series.slices}))
    spacing = analyse_spacing(series.slices, series.SliceThickness)
    series.slice_spacing = spacing.spacing
    series.problems.extend(spacing.problems)
    if series.Modality != "CT":
        series.problems.append(
            f"Modality is {series.Modality or 'missing'}, not CT: values are not Hounsfield units"
        )
    else:
        unscaled = sum(s.rescale_missing for s in series.slices)
        if unscaled:
            series.problems.append(
                f"{unscaled} of {len(series.slices)} image(s) have no usable Rescale Slope/Intercept (required "
                "for CT): stored values are taken as Hounsfield units as they are, so windows and the AI draft "
                "may be wrong; check that air reads about -1000 HU"
            )


def _new_series(item: SliceInfo, meta: dict[str, str]) -> SeriesInfo:
    number = meta.get("SeriesNumber", "")
    return SeriesInfo(
        SeriesInstanceUID=item.SeriesInstanceUID,
        StudyInstanceUID=item.StudyInstanceUID,
        Modality=item.Modality,
        SeriesDescription=meta.get("SeriesDescription", ""),
        SeriesNumber=int(number) if number.strip().lstrip("-").isdigit() else None,
        ConvolutionKernel=meta.get("ConvolutionKernel", ""),
        FrameOfReferenceUID=item.FrameOfReferenceUID,
    )


def _analyse(series: SeriesInfo) -> list[SeriesInfo]:
    """Clean, split and summarise one series; never raises (a failure marks it unusable)."""
    try:
        _clean(series)
        parts = _split_duplicates(series)
        for part in parts:
            _summarise(part)
        return parts
    except Exception as exc:  # noqa: BLE001 - one odd series must not stop the index
        series.loadable = False
        series.problems.append(f"could not analyse the series ({type(exc).__name__}: {exc})")
        return [series]


def build_index(records: list[tuple[list[SliceInfo], dict[str, str]]], result: IndexResult) -> None:
    """Fill result.patients from (slices, series-level text) records, one record per file."""
    series_by_uid: dict[tuple[str, str], SeriesInfo] = {}
    studies: dict[str, StudyInfo] = {}
    patients: dict[tuple[str, str], PatientInfo] = {}
    for slices, meta in records:
        item = slices[0]
        key = (item.StudyInstanceUID, item.SeriesInstanceUID)
        if key not in series_by_uid:
            series_by_uid[key] = _new_series(item, meta)
            if item.StudyInstanceUID not in studies:
                studies[item.StudyInstanceUID] = StudyInfo(
                    item.StudyInstanceUID,
                    meta.get("StudyDate", ""),
                    meta.get("StudyDescription", ""),
                )
                person = (meta.get("PatientID", ""), meta.get("PatientName", ""))
                patient = patients.setdefault(person, PatientInfo(*person))
                patient.studies.append(studies[item.StudyInstanceUID])
        series_by_uid[key].slices.extend(slices)
    for (study_uid, _), series in series_by_uid.items():
        studies[study_uid].series.extend(_analyse(series))
    for study in studies.values():
        study.series.sort(key=lambda s: (s.SeriesNumber is None, s.SeriesNumber or 0, s.key))
        for series in study.series:
            log.debug(
                "series %s: %s, %d image(s), %d excluded, %d problem(s)",
                series.log_id,
                series.Modality or "?",
                len(series.slices),
                len(series.excluded),
                len(series.problems),
            )
    result.patients = list(patients.values())
