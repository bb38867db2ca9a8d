"""Key images for printed reports: a CT slice in a lung window, optionally with a heatmap blended in.

numpy only: must not import Qt, vtk or DICOM libraries. The UI may pass its own rendered images
instead; these helpers serve the CLI and any caller without a viewer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from app.viewing import apply_window

LUNG_WINDOW = (-600.0, 1500.0)  # (center, width) in HU


def window_rgb(hu: np.ndarray, window: tuple[float, float] = LUNG_WINDOW) -> np.ndarray:
    """(H, W) HU -> (H, W, 3) uint8 grey image in the given (center, width) window."""
    center, width = window
    return np.repeat(apply_window(np.asarray(hu), width, center)[:, :, None], 3, axis=2)


def _resize_nearest(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    rows = (np.arange(shape[0]) * image.shape[0] / shape[0]).astype(int)
    cols = (np.arange(shape[1]) * image.shape[1] / shape[1]).astype(int)
    return image[rows][:, cols]


def blend_heatmap(rgb: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Overlay a 0..1 heatmap (any size; resized) on an RGB image in a red-to-yellow 'hot' scale."""
    heat = np.clip(_resize_nearest(np.asarray(heatmap, dtype=np.float32), rgb.shape[:2]), 0.0, 1.0)
    colour = np.stack([np.clip(heat * 2, 0, 1), np.clip(heat * 2 - 1, 0, 1), np.zeros_like(heat)], axis=2) * 255
    weight = (alpha * heat)[:, :, None]
    return (rgb.astype(np.float32) * (1 - weight) + colour * weight + 0.5).astype(np.uint8)


def evidence_key_images(volume: Any, draft: Any, result: Any = None, max_images: int = 4) -> list[tuple[str, np.ndarray]]:
    """(caption, RGB) for the most relevant slice of each AI sentence, heatmaps when `result` is given.

    `volume` is an app.volume.Volume, `draft` an AIDraftRecord, `result` a ReportResult (optional).
    """
    images: list[tuple[str, np.ndarray]] = []
    seen: set[int] = set()
    depth = volume.shape[0]
    for number, sentence in enumerate(draft.sentences):
        if not sentence.evidence or len(images) >= max_images:
            continue
        z = sentence.evidence[0].index
        if z in seen or not 0 <= z < depth:
            continue
        seen.add(z)
        rgb = window_rgb(volume.voxels[z])
        if result is not None and number < len(result.sentences):
            rgb = blend_heatmap(rgb, result.slice_heatmap(z, number))
        text = sentence.text if len(sentence.text) <= 80 else sentence.text[:77] + "..."
        images.append((f"Slice {z + 1} of {depth}: {text}", rgb))
    return images
