"""Slice relevance and heatmap volumes from decoder cross-attention and patch relevance.

- Token relevance over the 32 sampled slices = cross-attention averaged over layers (heads
  are averaged inside the graph); a sentence's relevance = the mean over its tokens.
- Back to ORIGINAL slices through the sampling map: an original slice sampled several times
  (short series) gets the sum of its copies; slices the rule skipped get the value linearly
  interpolated between the nearest sampled slices (held constant beyond the first/last one).
  Relevance vectors are scaled so their maximum is 1.
- Patch relevance (32, 14, 14) -> one map per original slice (the mean of its copies, or the
  nearest sampled slice's map for a skipped slice), each scaled to max 1, upsampled bilinearly
  to the slice's (Y, X); heatmap = slice relevance x patch map, in 0..1, float32 (Z, Y, X).
Numpy only: must not import onnxruntime, app/, ui/, DICOM libraries or torch.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from inference.cpu import usable_cores
from inference.resize import linear_weights, matmul_single_thread


def _scaled(values: np.ndarray) -> np.ndarray:
    values = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0)
    peak = float(values.max()) if values.size else 0.0
    return values / peak if peak > 0 else np.zeros_like(values)


def sampled_relevance(cross_attention: np.ndarray, start: int = 0, end: int | None = None) -> np.ndarray:
    """(S,) relevance of the sampled slices for tokens [start, end) from (L, T, S) attention."""
    span = cross_attention[:, start:end, :]
    if span.shape[1] == 0:
        return np.zeros(cross_attention.shape[-1], dtype=np.float32)
    return span.mean(axis=(0, 1)).astype(np.float32)


def to_original_slices(sampled: np.ndarray, original_indices: np.ndarray, count: int) -> np.ndarray:
    """(count,) relevance per original slice, max 1 (see module docstring for the rule)."""
    totals = np.zeros(count, dtype=np.float64)
    np.add.at(totals, original_indices, sampled)
    present = np.unique(original_indices)
    full = np.interp(np.arange(count), present, totals[present])
    return _scaled(full)


def nearest_sampled(original_indices: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(unique sampled original indices U, for each original slice the position in U nearest)."""
    present = np.unique(original_indices)
    position = np.searchsorted(present, np.arange(count))
    below = np.clip(position - 1, 0, len(present) - 1)
    above = np.clip(position, 0, len(present) - 1)
    z = np.arange(count)
    choose_above = np.abs(present[above] - z) < np.abs(present[below] - z)
    return present, np.where(choose_above, above, below)


def patch_maps(patch_relevance: np.ndarray, original_indices: np.ndarray) -> np.ndarray:
    """(U, G, G) patch maps, one per unique sampled original slice, each scaled to max 1."""
    present = np.unique(original_indices)
    maps = np.zeros((len(present), *patch_relevance.shape[1:]), dtype=np.float64)
    counts = np.zeros(len(present))
    slot = np.searchsorted(present, original_indices)
    np.add.at(maps, slot, patch_relevance)
    np.add.at(counts, slot, 1)
    maps /= counts[:, None, None]
    return np.stack([_scaled(m) for m in maps])


def upsample_maps(maps: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(N, G, G) -> (N, Y, X) float32, bilinear with pixel centres aligned."""
    wy = linear_weights(maps.shape[1], shape[0], antialias=False)
    wx_t = np.ascontiguousarray(linear_weights(maps.shape[2], shape[1], antialias=False).T)
    out = np.empty((len(maps), *shape), dtype=np.float32)
    for index, small in enumerate(maps.astype(np.float32)):
        matmul_single_thread(wy, small @ wx_t, out[index])
    return out


class Explanation:
    """Everything needed to explain one report, with heatmap volumes computed on demand."""

    def __init__(self, cross_attention: np.ndarray | None, patch_relevance: np.ndarray,
                 original_indices: np.ndarray, volume_shape: tuple[int, int, int]) -> None:
        slices = len(original_indices)
        self.cross_attention = (cross_attention if cross_attention is not None
                                else np.zeros((1, 0, slices), dtype=np.float32))  # (L, T, S)
        self.original_indices = np.asarray(original_indices, dtype=np.int64)
        self.volume_shape = volume_shape
        self._present, self._nearest = nearest_sampled(self.original_indices, volume_shape[0])
        self._maps = patch_maps(np.asarray(patch_relevance, dtype=np.float32), self.original_indices)
        self._upsampled: np.ndarray | None = None

    def slice_relevance(self, start: int = 0, end: int | None = None) -> np.ndarray:
        """(Z,) relevance per original slice for tokens [start, end) (all tokens by default)."""
        sampled = sampled_relevance(self.cross_attention, start, end)
        return to_original_slices(sampled, self.original_indices, self.volume_shape[0])

    def _maps_full_size(self) -> np.ndarray:
        if self._upsampled is None:
            upsampled = upsample_maps(self._maps, self.volume_shape[1:])
            # In 0..1 like the maps themselves (bilinear weights may sum to 1 + 1 ulp), so a
            # map times a relevance in 0..1 needs no clipping per heatmap.
            self._upsampled = np.clip(upsampled, 0.0, 1.0, out=upsampled)
        return self._upsampled

    def slice_heatmap(self, z: int, relevance: np.ndarray) -> np.ndarray:
        """(Y, X) heatmap of original slice z, 0..1, for a relevance vector from slice_relevance."""
        return (self._maps_full_size()[self._nearest[z]] * relevance[z]).astype(np.float32)

    def heatmap_volume(self, start: int = 0, end: int | None = None) -> np.ndarray:
        """(Z, Y, X) float32 heatmap in 0..1 for tokens [start, end)."""
        relevance = self.slice_relevance(start, end)
        full = self._maps_full_size()
        volume = np.empty(self.volume_shape, dtype=np.float32)
        for z in range(self.volume_shape[0]):
            np.multiply(full[self._nearest[z]], relevance[z], out=volume[z])
        return volume

    def heatmap_uint8(self, start: int = 0, end: int | None = None) -> np.ndarray:
        """The same heatmap as `relevance_to_uint8(heatmap_volume(start, end))`, made slice by
        slice: a quarter of the memory, and no float32 volume on the way (420 MB for a 400-slice
        512 x 512 series). Large volumes are split over a few threads (numpy releases the GIL):
        a 400-slice 512 x 512 series 91-103 -> 56-58 ms on 2 cores, 64 slices 16 -> 10 ms
        (side by side, 3 runs). Without the clip (needless here) and with the add and the cast
        in one pass, the demo draft's 10 volumes (report and sentences) took 97-103 -> 74-83 ms
        and 6 volumes of 400 slices 252-353 -> 182-276 ms (side by side, 3 runs each)."""
        relevance = np.clip(self.slice_relevance(start, end), 0.0, 1.0)
        full = self._maps_full_size()
        volume = np.empty(self.volume_shape, dtype=np.uint8)

        def fill(slices: range) -> None:
            plane = np.empty(self.volume_shape[1:], dtype=np.float32)
            for z in slices:  # relevance_to_uint8's arithmetic, in place
                # Both factors lie in 0..1, so their float32 product does too: the clip of
                # relevance_to_uint8 would change nothing, and costs as much as the rest.
                np.multiply(full[self._nearest[z]], relevance[z], out=plane)
                plane *= 255.0
                np.add(plane, 0.5, out=volume[z], casting="unsafe")  # truncating, as astype

        count = self.volume_shape[0]
        parts = min(_heat_threads(), max(1, volume.size // _VOXELS_PER_THREAD))
        if parts <= 1:
            fill(range(count))
        else:
            bounds = np.linspace(0, count, parts + 1).astype(int)
            # A pool per volume (starting threads costs microseconds): no threads left behind.
            with ThreadPoolExecutor(parts, thread_name_prefix="heatmap") as pool:
                list(pool.map(fill, [range(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]))
        return volume


_VOXELS_PER_THREAD = 8 * 512 * 512


def _heat_threads() -> int:
    return max(1, min(usable_cores(), 8))


def relevance_to_uint8(heat: np.ndarray) -> np.ndarray:
    """Relevance 0..1 (float) -> 0..255 uint8, the form the viewer blends fastest."""
    return (np.clip(heat, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
