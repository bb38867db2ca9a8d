"""The CT volume every layer shares: HU voxels (Z, Y, X) with LPS geometry and the DICOM UIDs.

Qt-free and DICOM-library-free: must not import pydicom, SimpleITK, PySide6 or vtk.

Geometry follows ITK's convention so it can be handed to SimpleITK unchanged:
`direction` is 3x3 whose columns are the LPS unit vectors of the x (column), y (row) and z
(slice) index axes; `spacing` and indices are given in array order (z, y, x).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

SPACING_TOLERANCE = 0.01
"""Relative difference between slice gaps that counts as non-uniform spacing."""
GAP_FACTOR = 1.5
"""Two neighbouring slices further apart than this many usual spacings have a gap between them."""


@dataclass(frozen=True, eq=False)
class Volume:
    """A CT series as one array of Hounsfield units plus where it sits in the patient (LPS, mm)."""

    voxels: np.ndarray
    """(Z, Y, X) HU: int16 when every slice's RescaleSlope/Intercept give exact integers, else float32."""
    spacing: tuple[float, float, float]
    """(z, y, x) mm; z is the true distance between slice centres along the slice normal."""
    origin: tuple[float, float, float]
    """LPS position (mm) of the centre of voxel [0, 0, 0]."""
    direction: np.ndarray
    """3x3 direction cosines in LPS; columns are the x, y and z index axes (ITK convention)."""
    StudyInstanceUID: str = ""
    SeriesInstanceUID: str = ""
    FrameOfReferenceUID: str = ""
    SOPInstanceUIDs: tuple[str, ...] = ()
    """Per slice, in array order (for multi-frame images the same UID repeats)."""
    slice_positions: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    """(Z, 3) ImagePositionPatient of each slice, in array order."""
    Modality: str = "CT"
    SeriesDescription: str = ""
    problems: tuple[str, ...] = ()
    """Human-readable problems found while loading (gaps, tilt, slices that could not be decoded)."""

    def __post_init__(self) -> None:
        if self.voxels.ndim != 3:
            raise ValueError(f"voxels must be (Z, Y, X), got shape {self.voxels.shape}")
        object.__setattr__(
            self, "direction", np.asarray(self.direction, dtype=np.float64).reshape(3, 3)
        )

    @cached_property
    def slice_offsets_mm(self) -> np.ndarray | None:
        """(Z,) where each slice was acquired, in mm along the slice normal from the first, when the
        slices are not evenly spaced (a gap, missing slices); None when `spacing` places them.

        The voxel array stacks the slices at the usual spacing (`spacing[0]`), so across a gap
        the index is not proportional to the distance; index_to_lps and lps_to_index use these
        offsets so that coordinates and measurements stay true."""
        if len(self.slice_positions) != self.shape[0] or self.shape[0] < 2:
            return None
        offsets = (np.asarray(self.slice_positions, dtype=np.float64) - self.slice_positions[0]) @ self.direction[:, 2]
        if np.all(np.abs(np.diff(offsets) - self.spacing[0]) <= SPACING_TOLERANCE * self.spacing[0]):
            return None
        return offsets

    @property
    def gaps(self) -> list[tuple[int, float]]:
        """(k, mm) for each gap between slices k and k + 1 (0-based): more than GAP_FACTOR usual
        spacings apart."""
        offsets = self.slice_offsets_mm
        if offsets is None:
            return []
        steps = np.diff(offsets)
        return [(int(k), float(steps[k])) for k in np.flatnonzero(steps > GAP_FACTOR * self.spacing[0])]

    def uniform_z_sources(self) -> np.ndarray:
        """For an evenly spaced stack of planes at `spacing[0]` from the first slice to the last,
        where they were acquired: the slice each plane shows (the nearest), or -1 for a plane more
        than half a spacing from every slice (inside a gap). arange(Z) when the slices are evenly
        spaced. For views that need even spacing (the 3-D view) and so show a gap as a gap."""
        offsets = self.slice_offsets_mm
        if offsets is None:
            return np.arange(self.shape[0])
        step = self.spacing[0]
        grid = offsets[0] + step * np.arange(int(round((offsets[-1] - offsets[0]) / step)) + 1)
        # between two slices the fractional index grows with the distance: rounding it is the nearer
        nearest = np.clip(np.rint(self._z_index(grid)), 0, len(offsets) - 1).astype(int)
        far = np.abs(offsets[nearest] - grid) > (0.5 + SPACING_TOLERANCE) * step
        return np.where(far, -1, nearest)

    def _z_mm(self, z: np.ndarray) -> np.ndarray:
        """mm along the normal from slice 0 of fractional z indices, through slice_offsets_mm."""
        return _piecewise_linear(z, np.arange(len(self.slice_offsets_mm)), self.slice_offsets_mm, self.spacing[0])

    def _z_index(self, mm: np.ndarray) -> np.ndarray:
        """Fractional z index of a distance (mm) along the normal from slice 0; inverse of _z_mm."""
        return _piecewise_linear(mm, self.slice_offsets_mm, np.arange(len(self.slice_offsets_mm)), 1.0 / self.spacing[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.voxels.shape)  # type: ignore[return-value]

    @property
    def affine(self) -> np.ndarray:
        """4x4 matrix mapping homogeneous (x, y, z, 1) indices to LPS mm."""
        out = np.eye(4)
        out[:3, :3] = self.direction * np.array(self.spacing[::-1])
        out[:3, 3] = self.origin
        return out

    def index_to_lps(self, zyx: np.ndarray | tuple[float, float, float]) -> np.ndarray:
        """LPS mm of (..., 3) voxel indices given as (z, y, x); fractional indices allowed. Across a
        gap, z follows where the slices were acquired (slice_offsets_mm)."""
        zyx = np.asarray(zyx, dtype=np.float64)
        xyz = zyx[..., ::-1].copy()
        if self.slice_offsets_mm is not None:
            xyz[..., 2] = self._z_mm(xyz[..., 2]) / self.spacing[0]
        return xyz @ self.affine[:3, :3].T + self.affine[:3, 3]

    def lps_to_index(self, lps: np.ndarray | tuple[float, float, float]) -> np.ndarray:
        """(..., 3) fractional voxel indices (z, y, x) of LPS points; inverse of index_to_lps."""
        lps = np.asarray(lps, dtype=np.float64)
        xyz = (lps - self.affine[:3, 3]) @ np.linalg.inv(self.affine[:3, :3]).T
        if self.slice_offsets_mm is not None:
            xyz[..., 2] = self._z_index(xyz[..., 2] * self.spacing[0])
        return xyz[..., ::-1]

    def slice_index_of(self, lps: np.ndarray | tuple[float, float, float]) -> int:
        """The nearest slice (z index, clipped to the volume) to an LPS point."""
        z = float(self.lps_to_index(lps)[0])
        return int(min(max(round(z), 0), self.shape[0] - 1))


def _piecewise_linear(x: np.ndarray, xp: np.ndarray, fp: np.ndarray, slope: float) -> np.ndarray:
    """np.interp through the points (xp, fp), continued beyond both ends with `slope`."""
    inside = np.interp(x, xp, fp)
    return np.where(x < xp[0], fp[0] + (x - xp[0]) * slope,
                    np.where(x > xp[-1], fp[-1] + (x - xp[-1]) * slope, inside))
