"""Stage-zero augmentation: synthetic nodules pasted into the lungs of cached training slices.

A few thousand training studies hold only a few thousand nodule slices, and the slice encoder
learns them by heart: after stage zero a linear probe finds the nodule slices of training
studies (AUC 0.88) but not those of held-out studies (0.68, even 0.72 for 16-30 mm nodules).
Pasting nodules at random places of random slices breaks the link between a nodule and the
anatomy around it. A pasted nodule is made like the phantom's own (models/phantoms):
- the same subtypes, mix and sizes (4-30 mm, calcified 4-10 mm), the same HU (part-solid with
  a solid core), lobulated outline, clipped to the lung;
- the slice's own noise kept on it (the lung window's residual, rescaled for the other
  windows), a soft edge like the phantom's partial volume and smoothing;
- blended in each window's grey levels, so it looks as preprocess() would show it.
The slice's labels (nodule, its side) and patch mask are updated to match. Must not import
app or ui.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from inference.preprocess import window_normalise
from models.phantoms.lesion_paint import NODULE_HU
from models.phantoms.truth import NODULE_SUBTYPES, nodule_size
from models.train.data import SPEC, pixels_to_grey
from models.train.targets import box_cells

SUBTYPE_SHARE = (0.5, 0.15, 0.2, 0.15)  # as models.phantoms.truth.sample_plan draws them
MM_PER_PIXEL = (1.35, 2.05)  # a 307-460 mm field of view at 224 pixels
LUNG_HU = -500.0  # below this, inside the body: lung ...
GAS_HU = -950.0  # ... but not gas (airways, stomach, bowel): solid regions darker than this
MIN_LUNG_PIXELS = 400


@dataclass(frozen=True)
class Pasted:
    """Where a nodule was pasted: centre (row, column), its side and box (x0, y0, x1, y1)."""

    row: int
    column: int
    side: str
    box: tuple[int, int, int, int]
    subtype: str
    size_mm: float


def _window(index: int) -> tuple[float, float]:
    window = SPEC["windows"][index]
    low = float(window["level"]) - float(window["width"]) / 2.0
    return low, float(window["width"])


def grey_of(hu: float, channel: int) -> float:
    """The grey level (0..255) preprocess() gives `hu` in cached window `channel`."""
    image = np.full((1, 1, 1), hu, dtype=np.float32)
    pixels = window_normalise(image, SPEC, slab=image)  # the slab window: the slab is as bright
    return float(pixels_to_grey(pixels)[0, channel, 0, 0])


def lung_mask(lung_grey: np.ndarray) -> np.ndarray:
    """Lung pixels of one slice's lung-window grey levels: low attenuation not connected to the
    image border (outside air and the table's surroundings touch it), in regions at least a
    tenth of the largest, away from gas (the trachea, bronchi, stomach and bowel gas are left
    out; lung noise below the gas level is too speckled to count as gas)."""
    dark = (lung_grey <= grey_of(GAS_HU, 0)).astype(np.float32)
    gas = (ndimage.uniform_filter(dark, 5) > 0.8).astype(np.float32)  # solid dark regions only
    low = (lung_grey < grey_of(LUNG_HU, 0)) & ~(ndimage.uniform_filter(gas, 5) > 0.01)  # and 2 px around
    labels, count = ndimage.label(low)
    if count == 0:
        return low
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    area = np.bincount(labels.ravel(), minlength=count + 1)
    area[0] = 0
    area[border] = 0
    keep = (area >= max(0.1 * area.max(), MIN_LUNG_PIXELS / 4)) & (area > 0)
    return keep[labels]


def paste_nodule(grey: np.ndarray, rng: np.random.Generator) -> Pasted | None:
    """Paste one nodule into `grey` ((5, H, W) uint8 cached window channels, changed in place).
    None, and `grey` untouched, when the slice shows too little lung."""
    lung = lung_mask(grey[0])
    if int(lung.sum()) < MIN_LUNG_PIXELS:
        return None
    subtype = str(rng.choice(NODULE_SUBTYPES, p=SUBTYPE_SHARE))
    size_mm = nodule_size(rng, subtype)
    radius = 0.5 * size_mm / float(rng.uniform(*MM_PER_PIXEL))
    spot = _inner_point(lung, max(0.6 * radius, 1.5), rng)
    if spot is None:
        return None
    row, column = spot
    # the cut through a sphere at a random height within it: smaller on slices off its centre
    radius *= float(np.sqrt(1.0 - rng.uniform(0.0, 0.6) ** 2))
    amp = 0.12 if subtype in ("solid", "part-solid") else 0.04
    lobes, phase = float(rng.integers(3, 7)), float(rng.uniform(0, 2 * np.pi))
    reach = int(np.ceil(radius * (1 + amp) + 3))
    r0, r1 = max(row - reach, 0), min(row + reach + 1, grey.shape[1])
    c0, c1 = max(column - reach, 0), min(column + reach + 1, grey.shape[2])
    dy, dx = np.mgrid[r0:r1, c0:c1].astype(np.float32)
    dy -= row
    dx -= column
    d = np.hypot(dx, dy)
    outline = radius * (1 + amp * np.cos(lobes * np.arctan2(dy, dx) + phase))
    inside = lung[r0:r1, c0:c1]
    whole, core, core_frac = NODULE_HU[subtype]
    alpha = ndimage.gaussian_filter(np.clip(outline - d + 0.5, 0, 1), 0.7) * inside
    beta = None
    if core is not None:
        beta = ndimage.gaussian_filter(np.clip(core_frac * outline - d + 0.5, 0, 1), 0.7) * inside
    crop = grey[:, r0:r1, c0:c1].astype(np.float32)
    lung_width = _window(0)[1]
    residual = crop[0] - float(np.median(crop[0][inside]))  # the centre is lung: never empty
    for channel in range(grey.shape[0]):
        _, width = _window(channel)
        noise = residual * (lung_width / width)
        target = grey_of(whole, channel) + noise
        out = crop[channel] + alpha * (target - crop[channel])
        if beta is not None:
            out += beta * (grey_of(core, channel) + noise - out)
        grey[channel, r0:r1, c0:c1] = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    ys, xs = np.nonzero(alpha > 0.5)
    if len(ys) == 0:
        ys, xs = np.array([row - r0]), np.array([column - c0])
    box = (int(xs.min() + c0), int(ys.min() + r0), int(xs.max() + c0), int(ys.max() + r0))
    # patient left is image right (LPS x grows with the column)
    side = "left" if column > float(np.nonzero(lung)[1].mean()) else "right"
    return Pasted(row, column, side, box, subtype, round(size_mm, 1))


def _inner_point(lung: np.ndarray, depth: float, rng: np.random.Generator,
                 tries: int = 30) -> tuple[int, int] | None:
    """A random lung pixel with only lung within `depth` pixels (a square test, cheap)."""
    rows, columns = np.nonzero(lung)
    k = int(np.ceil(depth))
    for pick in rng.integers(len(rows), size=tries):
        row, column = int(rows[pick]), int(columns[pick])
        inside_image = k <= row < lung.shape[0] - k and k <= column < lung.shape[1] - k
        if inside_image and lung[row - k : row + k + 1, column - k : column + k + 1].all():
            return row, column
    return None


def box_patches(box: tuple[int, int, int, int], size: int, grid: int) -> np.ndarray:
    """(G, G) mask of the patches a box touches, as the training targets mark them."""
    mask = np.zeros((grid, grid), dtype=np.float32)
    mask[box_cells(box, size, grid)] = 1.0
    return mask
