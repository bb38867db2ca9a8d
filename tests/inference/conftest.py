"""Fixtures for the inference tests: a random-weight model package built once per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inference.preprocess import CTInput


@pytest.fixture(scope="session")
def cpu_runtime(random_package: Path):
    from inference.runtime import ReportRuntime

    return ReportRuntime.load(random_package, device="cpu")


@pytest.fixture(scope="session")
def small_ct() -> CTInput:
    """A 40-slice 96 x 80 phantom: air outside, soft tissue body, two lungs, a nodule."""
    z, y, x = np.mgrid[0:40, 0:96, 0:80]
    hu = np.full((40, 96, 80), -1000, dtype=np.int16)
    body = ((y - 48) / 44.0) ** 2 + ((x - 40) / 36.0) ** 2 < 1
    hu[body] = 40
    lungs = (((y - 48) / 30.0) ** 2 + ((np.abs(x - 40) - 16) / 12.0) ** 2) < 1
    hu[lungs] = -850
    hu[(z > 20) & (z < 26) & ((y - 40) ** 2 + (x - 56) ** 2 < 16)] = 30
    return CTInput(hu, z_spacing_mm=5.0, pixel_spacing_mm=(0.8, 0.8))
