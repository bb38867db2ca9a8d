"""The deterministic 32-slice rule of MedMPT and the z-resampling index map. Numpy only.

Must not import onnxruntime, app/, ui/, DICOM libraries or torch.
"""

from __future__ import annotations

import numpy as np

NUM_SLICES = 32


def sample_slice_indices(count: int, num: int = NUM_SLICES) -> np.ndarray:
    """Indices (non-decreasing, length `num`) of the slices the model sees out of `count`.

    The rule (reference section 1):
    - count > num: every k-th slice from index 0, k = count // num; when that gives n > num
      indices, r = n - num of them are removed at an even spacing s = n // r walking back from
      the end: positions n-1, n-1-s, ..., n-1-(r-1)s of the strided list.
    - count < num: each slice repeated num // count times; the r = num - count*(num // count)
      remaining copies go, one each, to the first r slices i with i % (count // r) == 0.
    - count == num: every slice once.
    """
    if count < 1:
        raise ValueError(f"need at least one slice, got {count}")
    if count >= num:
        indices = list(range(0, count, count // num))
        n = len(indices)
        if n > num:
            r = n - num
            spacing = n // r
            for j in range(r):  # walking back; earlier positions are unaffected by deletions
                del indices[n - 1 - j * spacing]
        return np.asarray(indices, dtype=np.int64)
    repeats = np.full(count, num // count, dtype=np.int64)
    r = num - count * (num // count)
    if r:
        step = count // r
        extra = [i for i in range(count) if i % step == 0][:r]
        repeats[extra] += 1
    return np.repeat(np.arange(count, dtype=np.int64), repeats)


def z_resample_map(count: int, spacing_mm: float, target_mm: float,
                   offsets_mm: np.ndarray | None = None) -> np.ndarray:
    """Original slice index for each slice of the z-resampled stack (nearest neighbour).

    The resampled stack has max(1, round(count * spacing / target)) slices (SimpleITK's size
    rule); resampled slice j lies j * target mm from the first slice and takes the original slice
    floor(j * target / spacing + 0.5), clipped to the last one.

    `offsets_mm` ((count,), increasing: each slice's distance from the first) is for slices not
    evenly spaced (a gap): the stack then spans the slices' true extent plus one spacing, and
    resampled slice j takes the slice acquired nearest to j * target mm (the later one on a tie,
    as the rule above), so a gap is bridged by its neighbours instead of being closed up.
    """
    if count < 1:
        raise ValueError(f"need at least one slice, got {count}")
    if not (np.isfinite(spacing_mm) and spacing_mm > 0 and target_mm > 0):
        raise ValueError(f"slice spacing must be a positive number of mm, got {spacing_mm}")
    if offsets_mm is None or count < 2:
        new_count = max(1, int(np.floor(count * spacing_mm / target_mm + 0.5)))
        positions = np.arange(new_count, dtype=np.float64) * (target_mm / spacing_mm)
        return np.minimum(np.floor(positions + 0.5).astype(np.int64), count - 1)
    offsets = np.asarray(offsets_mm, dtype=np.float64) - float(offsets_mm[0])
    if offsets.shape != (count,) or not np.all(np.diff(offsets) > 0):
        raise ValueError(f"slice offsets must be {count} increasing distances in mm")
    new_count = max(1, int(np.floor((offsets[-1] + spacing_mm) / target_mm + 0.5)))
    positions = np.arange(new_count, dtype=np.float64) * target_mm
    after = np.clip(np.searchsorted(offsets, positions), 1, count - 1)  # first slice at or after
    nearer_before = positions - offsets[after - 1] < offsets[after] - positions
    return np.where(nearer_before, after - 1, after).astype(np.int64)
