"""Display maths for the viewer, Qt-free: planes of a Volume, window/level, heatmap blending.

Everything returns numpy arrays the UI wraps in a QImage. Window/level uses a lookup table on
int16 volumes (one gather per pixel) so a 512 x 512 slice renders in about a millisecond.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from app.volume import Volume
from inference.explain import relevance_to_uint8
from resources.loader import read_text

PLANES = ("axial", "coronal", "sagittal")


@dataclass(frozen=True)
class WindowPreset:
    name: str
    key: str
    width: float
    level: float


@lru_cache(maxsize=1)
def window_presets() -> tuple[WindowPreset, ...]:
    data = json.loads(read_text("presets", "window_level.json"))
    return tuple(WindowPreset(**p) for p in data["presets"])


def preset(name: str) -> WindowPreset:
    for p in window_presets():
        if p.name.lower() == name.lower():
            return p
    raise KeyError(f"no window preset named {name!r}")


def plane_count(volume: Volume, plane: str) -> int:
    z, y, x = volume.shape
    return {"axial": z, "coronal": y, "sagittal": x}[plane]


def plane_slice(voxels: np.ndarray, plane: str, index: int) -> np.ndarray:
    """A 2-D view (rows top to bottom as displayed) of (Z, Y, X) voxels; no copy for axial.

    Coronal and sagittal put the patient's head at the top: z is flipped, since z ascends
    inferior -> superior.
    """
    if plane == "axial":
        return voxels[index]
    if plane == "coronal":
        return voxels[::-1, index, :]
    if plane == "sagittal":
        return voxels[::-1, :, index]
    raise ValueError(f"unknown plane {plane!r}")


def plane_pixel_size(volume: Volume, plane: str) -> tuple[float, float]:
    """(row height, column width) in mm of one displayed pixel of `plane`."""
    sz, sy, sx = volume.spacing
    return {"axial": (sy, sx), "coronal": (sz, sx), "sagittal": (sz, sy)}[plane]


_LUT_OFFSET = 32768
HEAT_FLOOR = 0.2
"""Relevance (0..1, 1 = the maximum) below which the heatmap leaves the anatomy untinted."""


@lru_cache(maxsize=16)
def _window_lut(width: float, level: float) -> np.ndarray:
    hu = np.arange(-_LUT_OFFSET, _LUT_OFFSET, dtype=np.float32)
    return _window_float(hu, width, level)


def _window_float(hu: np.ndarray, width: float, level: float) -> np.ndarray:
    low = level - width / 2.0
    scaled = (hu - low) * (255.0 / max(width, 1.0))
    return np.clip(scaled + 0.5, 0, 255).astype(np.uint8)


def apply_window(image: np.ndarray, width: float, level: float) -> np.ndarray:
    """HU image -> uint8 grey: level - width/2 is black, level + width/2 is white."""
    if image.dtype == np.int16:
        lut = _window_lut(float(width), float(level))
        # Flipping the sign bit turns int16 v into the uint16 index v + 32768, with no copy of HU.
        return lut[image.view(np.uint16) ^ np.uint16(0x8000)]
    return _window_float(image.astype(np.float32, copy=False), width, level)


@lru_cache(maxsize=16)
def _window_lut_argb(width: float, level: float) -> np.ndarray:
    grey = _window_lut(width, level).astype(np.uint32)
    return 0xFF000000 | (grey << 16) | (grey << 8) | grey


def apply_window_argb(image: np.ndarray, width: float, level: float) -> np.ndarray:
    """Like apply_window, as (H, W) uint32 0xFFgggggg pixels (what Qt paints fastest)."""
    if image.dtype == np.int16:
        return _window_lut_argb(float(width), float(level))[image.view(np.uint16) ^ np.uint16(0x8000)]
    grey = apply_window(image, width, level).astype(np.uint32)
    return 0xFF000000 | (grey << 16) | (grey << 8) | grey


@lru_cache(maxsize=1)
def heat_colormap() -> np.ndarray:
    """256 x 3 uint8 'hot'-like colormap (black-red-yellow-white) for attention heatmaps."""
    t = np.linspace(0.0, 1.0, 256)
    r = np.clip(t * 3.0, 0, 1)
    g = np.clip(t * 3.0 - 1.0, 0, 1)
    b = np.clip(t * 3.0 - 2.0, 0, 1)
    return (np.stack([r, g, b], axis=1) * 255 + 0.5).astype(np.uint8)


def heat_to_uint8(heat: np.ndarray) -> np.ndarray:
    """Relevance 0..1 (float) -> 0..255 uint8, the form compose_rgb blends fastest."""
    return relevance_to_uint8(heat)


def compose_argb(grey: np.ndarray, heat: np.ndarray, opacity: float = 0.4) -> np.ndarray:
    """(H, W) uint32 0xAARRGGBB pixels: the grey slice with `heat` (uint8 0..255 or float 0..1).

    Each pixel is tinted in proportion to its relevance times `opacity`, so anatomy stays
    readable where the model did not look. One gather in a 65,536-entry table indexed by
    (grey, relevance): about a millisecond for 512 x 512.
    """
    index = heat if heat.dtype == np.uint8 else heat_to_uint8(heat)
    combined = grey.astype(np.uint16) << 8
    combined |= index
    return _blend_lut(round(float(opacity), 3))[combined]


def compose_rgb(grey: np.ndarray, heat: np.ndarray | None = None, opacity: float = 0.4) -> np.ndarray:
    """(H, W, 3) uint8 RGB of compose_argb (for PNG files and checks)."""
    if heat is None or opacity <= 0:
        return np.repeat(grey[:, :, None], 3, axis=2)
    argb = compose_argb(grey, heat, opacity)
    channels = argb[..., None] >> np.array([16, 8, 0], dtype=np.uint32)
    return (channels & 0xFF).astype(np.uint8)


@lru_cache(maxsize=8)
def _blend_lut(opacity: float) -> np.ndarray:
    """65,536 ARGB pixels: entry (grey << 8 | relevance) = grey blended with the colour."""
    grey = np.arange(256, dtype=np.float32)[:, None, None]
    relevance = np.arange(256, dtype=np.float32)[None, :, None] / 255.0
    # Below HEAT_FLOOR of the maximum nothing is tinted: faint, diffuse attention is noise.
    ramp = np.clip((relevance - HEAT_FLOOR) / (1.0 - HEAT_FLOOR), 0.0, 1.0)
    alpha = ramp * min(max(opacity, 0.0), 1.0)
    colours = heat_colormap().astype(np.float32)[None, :, :]
    rgb = (grey * (1.0 - alpha) + colours * alpha + 0.5).astype(np.uint32).reshape(-1, 3)
    return (0xFF000000 | (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]).astype(np.uint32)


def distance_mm(volume: Volume, zyx_a: tuple[float, float, float], zyx_b: tuple[float, float, float]) -> float:
    """Distance in mm between two (fractional) voxel positions, in patient space."""
    a, b = volume.index_to_lps(zyx_a), volume.index_to_lps(zyx_b)
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))


def drag_window(width: float, level: float, dx: float, dy: float) -> tuple[float, float]:
    """Window/level after a mouse drag: right widens the window, down raises the level."""
    scale = max(width, 1.0) / 256.0
    return max(1.0, width + dx * scale * 2.0), level + dy * scale * 2.0
