"""Slice geometry from headers: normals, sorting along the normal, spacing, gaps, tilt, orientation.

Pure numpy on SliceInfo records; must not import pydicom or Qt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from app.dicom.model import SliceInfo
from app.volume import GAP_FACTOR, SPACING_TOLERANCE

NAMED_ORIENTATION_COS = np.cos(np.radians(15.0))
"""A plane is called axial/coronal/sagittal when its normal is within 15 degrees of that axis."""
DUPLICATE_MM = 0.01
TILT_DEGREES = 0.05


def slice_normal(iop: tuple[float, ...]) -> np.ndarray:
    """Unit normal (LPS) of a plane: the cross product of the ImageOrientationPatient rows."""
    row, col = np.asarray(iop[:3], dtype=float), np.asarray(iop[3:], dtype=float)
    normal = np.cross(row, col)
    length = np.linalg.norm(normal)
    return normal / length if length > 1e-6 else normal


def orientation_label(iop: tuple[float, ...] | None) -> str:
    if iop is None:
        return "unknown"
    normal = np.abs(slice_normal(iop))
    if not normal.any():
        return "unknown"
    axis = int(np.argmax(normal))
    if normal[axis] < NAMED_ORIENTATION_COS:
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]


def projections(slices: list[SliceInfo], normal: np.ndarray) -> np.ndarray:
    positions = np.array([s.ImagePositionPatient for s in slices], dtype=float).reshape(-1, 3)
    return positions @ normal


def sort_along_normal(slices: list[SliceInfo]) -> list[SliceInfo]:
    """Ascending along the normal of the first slice (inferior -> superior for axial)."""
    if not slices:
        return []
    normal = slice_normal(slices[0].ImageOrientationPatient)  # type: ignore[arg-type]
    order = np.argsort(projections(slices, normal), kind="stable")
    return [slices[i] for i in order]


def duplicate_positions(slices: list[SliceInfo]) -> bool:
    if len(slices) < 2:
        return False
    normal = slice_normal(slices[0].ImageOrientationPatient)  # type: ignore[arg-type]
    proj = np.sort(projections(slices, normal))
    return bool(np.any(np.diff(proj) < DUPLICATE_MM))


@dataclass
class Spacing:
    """What the positions of sorted slices say about the stack."""

    spacing: float | None
    problems: list[str] = field(default_factory=list)
    tilt_degrees: float = 0.0


def _tilt(positions: np.ndarray, normal: np.ndarray) -> float:
    stack = positions[-1] - positions[0]
    length = np.linalg.norm(stack)
    if length < 1e-6:
        return 0.0
    cos = abs(float(stack @ normal)) / length
    return float(np.degrees(np.arccos(min(cos, 1.0))))


def analyse_spacing(slices: list[SliceInfo], thickness: float | None) -> Spacing:
    """Slice spacing (mm along the normal) of sorted slices, with gaps, irregularity and tilt."""
    if len(slices) < 2:
        return Spacing(
            thickness if thickness else None,
            ["a single image: slice spacing taken from SliceThickness"],
        )
    normal = slice_normal(slices[0].ImageOrientationPatient)  # type: ignore[arg-type]
    positions = np.array([s.ImagePositionPatient for s in slices], dtype=float)
    gaps = np.diff(positions @ normal)
    median = float(np.median(gaps))
    result = Spacing(median)
    if np.all(np.abs(gaps - median) <= SPACING_TOLERANCE * median):
        result.spacing = float((positions[-1] - positions[0]) @ normal / (len(slices) - 1))
    else:
        missing_slices = gaps > GAP_FACTOR * median
        for k in np.flatnonzero(missing_slices)[:5]:
            missing = round(gaps[k] / median) - 1
            result.problems.append(
                f"gap of {gaps[k]:.2f} mm between slices {k + 1} and {k + 2} of {len(slices)} "
                f"(usual spacing {median:.2f} mm; about {missing} slice(s) missing; the views stack "
                "the slices at the usual spacing, coordinates and measurements use the true positions)"
            )
        others = np.abs(gaps - median) > SPACING_TOLERANCE * median
        if np.any(others & ~missing_slices) or missing_slices.sum() > 5:  # not all explained above
            result.problems.append(
                f"non-uniform slice spacing ({gaps.min():.2f} to {gaps.max():.2f} mm); "
                f"the views stack the slices at the median {median:.2f} mm (coordinates and "
                "measurements use the true positions)"
            )
    result.tilt_degrees = _tilt(positions, normal)
    if result.tilt_degrees > TILT_DEGREES:
        shift = float(np.linalg.norm(shear_mm(positions, normal), axis=1).max())
        result.problems.append(
            f"gantry tilt of {result.tilt_degrees:.2f} degrees: the slices are sheared along the "
            f"stack; on loading each is shifted in its plane (up to {shift:.1f} mm) onto a grid "
            "perpendicular to the slices, so views, coordinates and the model see true geometry"
        )
    return result


def shear_mm(positions: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """(K, 3) how far each slice's origin lies off the line through the first along the normal:
    zero for a straight stack, growing slice by slice under a gantry tilt."""
    offsets = np.asarray(positions, dtype=float) - positions[0]
    return offsets - np.outer(offsets @ normal, normal)


def shear_pixels(positions: np.ndarray, iop: tuple[float, ...], pixel_spacing: tuple[float, float]) -> np.ndarray:
    """(K, 2) the shear of each slice (shear_mm) in its own (row, column) pixels: shifting slice
    k's image by it puts it on a grid perpendicular to the slices through the first one."""
    row_direction, column_direction = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
    shear = shear_mm(positions, slice_normal(iop))
    # rows advance along the column direction (PixelSpacing[0]), columns along the row direction
    return np.column_stack([shear @ column_direction / pixel_spacing[0], shear @ row_direction / pixel_spacing[1]])
