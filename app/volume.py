"""The CT volume every layer shares: HU voxels (Z, Y, X) with LPS geometry and the DICOM UIDs.

Qt-free and DICOM-library-free: must not import pydicom, SimpleITK, PySide6 or vtk.

Geometry follows ITK's convention so it can be handed to SimpleITK unchanged:
`direction` is 3x3 whose columns are the LPS unit vectors of the x (column), y (row) and z
(slice) index axes; `spacing` and indices are given in array order (z, y, x).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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
        """LPS mm of (..., 3) voxel indices given as (z, y, x); fractional indices allowed."""
        zyx = np.asarray(zyx, dtype=np.float64)
        xyz = zyx[..., ::-1]
        return xyz @ self.affine[:3, :3].T + self.affine[:3, 3]

    def lps_to_index(self, lps: np.ndarray | tuple[float, float, float]) -> np.ndarray:
        """(..., 3) fractional voxel indices (z, y, x) of LPS points; inverse of index_to_lps."""
        lps = np.asarray(lps, dtype=np.float64)
        xyz = (lps - self.affine[:3, 3]) @ np.linalg.inv(self.affine[:3, :3]).T
        return xyz[..., ::-1]

    def slice_index_of(self, lps: np.ndarray | tuple[float, float, float]) -> int:
        """The nearest slice (z index, clipped to the volume) to an LPS point."""
        z = float(self.lps_to_index(lps)[0])
        return int(min(max(round(z), 0), self.shape[0] - 1))
