"""Scanner geometry of a phantom series: grid size, spacing and LPS position. Numpy only.

Axial slices with ImageOrientationPatient 1\\0\\0\\0\\1\\0: columns run to the patient's left
(+x), rows to posterior (+y); slice index 0 is the most inferior (+z is superior).
Must not import torch, pydicom, app, ui or inference.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

THICKNESSES_MM = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 5.0)


@dataclass(frozen=True)
class ScanGeometry:
    """The sampling grid: `origin` is the LPS centre of pixel (row 0, column 0) on slice 0."""

    rows: int
    columns: int
    num_slices: int
    pixel_spacing: float
    slice_thickness: float
    origin: tuple[float, float, float]

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.num_slices, self.rows, self.columns)

    def x_mm(self) -> np.ndarray:
        return (self.origin[0] + self.pixel_spacing * np.arange(self.columns)).astype(np.float32)

    def y_mm(self) -> np.ndarray:
        return (self.origin[1] + self.pixel_spacing * np.arange(self.rows)).astype(np.float32)

    def z_mm(self) -> np.ndarray:
        return self.origin[2] + self.slice_thickness * np.arange(self.num_slices)

    def index_of(self, lps: tuple[float, float, float]) -> tuple[float, float, float]:
        """(slice, row, column) continuous indices of an LPS point."""
        x, y, z = lps
        return ((z - self.origin[2]) / self.slice_thickness,
                (y - self.origin[1]) / self.pixel_spacing,
                (x - self.origin[0]) / self.pixel_spacing)

    def lps_of(self, k: float, j: float, i: float) -> list[float]:
        """LPS millimetres of continuous (slice, row, column) indices."""
        return [self.origin[0] + i * self.pixel_spacing, self.origin[1] + j * self.pixel_spacing,
                self.origin[2] + k * self.slice_thickness]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def choose_geometry(
    rng: np.random.Generator,
    *,
    z_range: tuple[float, float],
    body_halfwidth: float,
    size: int | None = None,
    num_slices: int | None = None,
    slice_thickness: float | None = None,
    slice_limits: tuple[int, int] = (40, 400),
) -> ScanGeometry:
    """A scanner protocol covering `z_range` (mm) of a body `body_halfwidth` mm wide.

    `size` fixes the matrix (the field of view is kept, so small matrices get coarse pixels);
    `num_slices` fixes the slice count (thickness follows from the coverage unless given).
    """
    if size is None:
        size = int(rng.choice([512, 512, 512, 384, 256]))
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, got {size}")
    fov = max(float(rng.uniform(0.6, 0.9)) * 512, 2 * body_halfwidth + 30.0)
    spacing = round(fov / size, 4)
    coverage = z_range[1] - z_range[0]
    lo, hi = slice_limits
    if num_slices is not None:
        n = int(num_slices)
        thickness = slice_thickness or round(coverage / n, 4)
    else:
        thickness = slice_thickness or float(rng.choice(THICKNESSES_MM))
        n = int(np.clip(round(coverage / thickness), lo, hi))
    if n < 1:
        raise ValueError(f"number of slices must be at least 1, got {n}")
    centre_z = 0.5 * (z_range[0] + z_range[1])
    x0 = -0.5 * (size - 1) * spacing + float(rng.uniform(-10, 10))
    y0 = -0.5 * (size - 1) * spacing + float(rng.uniform(-10, 10))
    z0 = round(centre_z - 0.5 * (n - 1) * thickness, 3)
    return ScanGeometry(size, size, n, spacing, float(thickness), (round(x0, 3), round(y0, 3), z0))
