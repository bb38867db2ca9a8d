"""From a HU volume to the model input (1, 32, 3, 224, 224), keeping the slice index map.

Order (reference section 1): z resampling (nearest) and the 32-slice rule pick 32 original
slices; each is resized in-plane to 224 x 224 (antialiased bilinear, on HU); three HU windows
are clipped and mapped to 0..255 with truncation toward zero (as numpy's astype(uint8) does
on a float image, so values are the integers 0..255); then (x * scale - mean) / std.
A window may instead show the neighbouring sampled slices (`"slices": "neighbours-max"`: the
brighter of the slices before and after, at each pixel), a channel the phantom model can be
trained with (models.medmpt.config.INPUT_CHANNELS); the reference has three windows of the
slice itself. Or a thin slab around the slice (`"slices": "slab-max"`: at each pixel the
brightest of the slice and the two original slices nearest to a third of the way towards the
sampled slices below and above, a maximum intensity projection in which a vessel is a tube and a
nodule stays round, as radiologists read thin-slab MIPs for nodules).
Numpy only: must not import onnxruntime, app/, ui/, DICOM libraries or torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from inference.errors import InputError
from inference.resize import resize_stack
from inference.slices import sample_slice_indices, z_resample_map

DEFAULT_PREPROCESSING: dict[str, Any] = {
    "z_spacing_mm": 5.0, "z_interpolation": "nearest", "num_slices": 32, "slice_rule": "medmpt-32",
    "slice_order": "inferior_to_superior", "image_size": 224, "inplane_interpolation": "bilinear",
    "windows": [{"name": "lung", "width": 1500, "level": -400},
                {"name": "wide", "width": 2000, "level": -500},
                {"name": "mediastinum", "width": 400, "level": 60}],
    "normalisation": {"scale": 1.0 / 255.0, "mean": 0.5, "std": 0.5},
}


SLICE_SOURCES = ("self", "neighbours-max", "slab-max")  # what a window channel shows (its "slices" key)


@dataclass(frozen=True)
class CTInput:
    """A CT volume for the runtime: HU values (Z, Y, X), slice 0 the most inferior.

    `hu` may be any real dtype (int16 or float32 avoid copies); spacings are in mm. When the
    array runs from superior to inferior set `superior_first`: the model still sees its slices
    inferior -> superior, and every index the runtime returns refers to the array as given.
    """

    hu: np.ndarray
    z_spacing_mm: float
    pixel_spacing_mm: tuple[float, float] = (1.0, 1.0)  # (row spacing Y, column spacing X)
    superior_first: bool = False
    z_offsets_mm: np.ndarray | None = None
    """For slices not evenly spaced (a gap): each slice's distance (mm) from slice 0 of the array,
    increasing; z resampling then uses these positions (inference.slices.z_resample_map)."""
    third_planes: np.ndarray | None = None
    """(Z, 2, Y, X) HU or None: for a series that holds only the slices the model samples (the
    training phantoms), each slice's two planes a third of the way to the slices below and above
    (either order: a "slab-max" window shows their maximum, in place of the nearest slices')."""


@dataclass(frozen=True)
class PreprocessedInput:
    """The model input and where each of its 32 slices came from."""

    pixel_values: np.ndarray  # float32 (1, 32, 3, S, S)
    original_indices: np.ndarray  # int64 (32,): original slice index of each sampled slice
    resampled_indices: np.ndarray  # int64 (32,): index in the z-resampled stack
    volume_shape: tuple[int, int, int]  # the original (Z, Y, X)


def validate_ct(ct: CTInput) -> None:
    """Raise InputError with a clear message if `ct` cannot be used."""
    hu = ct.hu
    if not isinstance(hu, np.ndarray) or hu.ndim != 3:
        raise InputError(f"CT volume must be a 3-D array (Z, Y, X), got shape {getattr(hu, 'shape', None)}")
    if min(hu.shape) < 1 or hu.shape[1] < 2 or hu.shape[2] < 2:
        raise InputError(f"CT volume is too small: shape {hu.shape}")
    if not (np.issubdtype(hu.dtype, np.integer) or np.issubdtype(hu.dtype, np.floating)):
        raise InputError(f"CT volume must hold real numbers (HU), got dtype {hu.dtype}")
    spacings = (ct.z_spacing_mm, *ct.pixel_spacing_mm)
    if not all(np.isfinite(s) and s > 0 for s in spacings):
        raise InputError(f"CT spacings must be positive numbers of mm, got {spacings}")
    if ct.z_offsets_mm is not None:
        offsets = np.asarray(ct.z_offsets_mm, dtype=np.float64)
        if offsets.shape != (hu.shape[0],) or not np.all(np.isfinite(offsets)) or not np.all(np.diff(offsets) > 0):
            raise InputError(f"slice offsets must be {hu.shape[0]} increasing distances in mm, one per slice")


def select_slices(count: int, z_spacing_mm: float, spec: Mapping[str, Any],
                  offsets_mm: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(original indices, resampled indices) of the model's slices out of `count` originals
    (`offsets_mm`: the slices' true positions when they are not evenly spaced)."""
    if spec.get("z_interpolation", "nearest") != "nearest":
        raise InputError(f"unsupported z interpolation {spec.get('z_interpolation')!r} (only 'nearest')")
    z_map = z_resample_map(count, float(z_spacing_mm), float(spec["z_spacing_mm"]), offsets_mm)
    sampled = sample_slice_indices(len(z_map), int(spec["num_slices"]))
    return z_map[sampled], sampled


def window_normalise(images: np.ndarray, spec: Mapping[str, Any],
                     slab: np.ndarray | None = None) -> np.ndarray:
    """(N, Y, X) HU -> (N, C, Y, X) float32 normalised, one channel per window. A "slab-max"
    window shows the larger of `images` and `slab` ((N, Y, X) HU, the slab planes' maximum).

    Each channel is computed in place in the output (no per-window arrays, no stacking): the
    same values, 3x faster (32 slices of 224 x 224: 21.7 -> 6.6 ms)."""
    norm = spec["normalisation"]
    scale, mean, std = float(norm["scale"]), float(norm["mean"]), float(norm["std"])
    images = np.asarray(images, dtype=np.float32)
    out = np.empty((images.shape[0], len(spec["windows"]), *images.shape[1:]), dtype=np.float32)
    for channel, window in enumerate(spec["windows"]):
        low = float(window["level"]) - float(window["width"]) / 2.0
        high = float(window["level"]) + float(window["width"]) / 2.0
        grey = out[:, channel]
        source = images
        if window.get("slices") == "slab-max":
            if slab is None or np.shape(slab) != images.shape:
                raise InputError(f"window {window.get('name')!r} shows a slab: its planes are needed")
            source = np.maximum(images, np.asarray(slab, dtype=np.float32))
        np.clip(source, low, high, out=grey)
        grey -= low
        grey *= np.float32(255.0 / (high - low))
        np.floor(grey, out=grey)  # truncation to the uint8 grey level (non-negative here)
        grey *= np.float32(scale / std)
        grey -= np.float32(mean / std)
    neighbour_channels(out, spec)
    return out


def neighbour_max(stack: np.ndarray) -> np.ndarray:
    """(N, ...) -> (N, ...): at each position the larger of the entries before and after along
    the first axis (the one neighbour at either end; the entry itself when N is 1)."""
    if len(stack) == 1:
        return stack.copy()
    out = np.empty_like(stack)
    np.maximum(stack[:-2], stack[2:], out=out[1:-1])
    out[0], out[-1] = stack[1], stack[-2]
    return out


def neighbour_channels(channels: np.ndarray, spec: Mapping[str, Any]) -> np.ndarray:
    """In place on (N, C, ...) window channels of N consecutive sampled slices: each channel
    whose window says `"slices": "neighbours-max"` becomes the neighbour maximum of itself
    (windowing is monotonic, so the maximum of the windowed slices is the windowed maximum)."""
    for channel, window in enumerate(spec["windows"]):
        source = window.get("slices", "self")
        if source == "neighbours-max":
            channels[:, channel] = neighbour_max(channels[:, channel])
        elif source not in SLICE_SOURCES:
            raise InputError(f"unsupported slices {source!r} in window {window.get('name')!r} "
                             f"(one of {', '.join(SLICE_SOURCES)})")
    return channels


def shows_slab(spec: Mapping[str, Any]) -> bool:
    """Whether a window of `spec` shows the slab around each slice ("slab-max")."""
    return any(w.get("slices") == "slab-max" for w in spec["windows"])


def third_plane_indices(positions_mm: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """(N, 2): for each chosen slice (indices into the increasing `positions_mm` of the original
    slices), the original slices nearest to a third of the way towards the chosen slice below and
    above it (at either end, the same distance as on its one side; a slice repeated by the
    32-slice rule is its own neighbour there). Ties go to the slice nearer the chosen one."""
    positions = np.asarray(positions_mm, dtype=np.float64)
    at = positions[chosen]
    if len(at) == 1:
        return np.stack([chosen, chosen], axis=1).astype(np.int64)
    below = np.diff(at, prepend=2 * at[0] - at[1])
    above = np.diff(at, append=2 * at[-1] - at[-2])
    out = np.empty((len(at), 2), dtype=np.int64)
    for j, target in enumerate((at - below / 3.0, at + above / 3.0)):
        after = np.clip(np.searchsorted(positions, target), 1, len(positions) - 1)
        before_gap, after_gap = target - positions[after - 1], positions[after] - target
        # below (j 0) a tie goes to the later slice, above to the earlier: nearer the chosen one
        take_before = before_gap < after_gap if j == 0 else before_gap <= after_gap
        out[:, j] = np.where(take_before, after - 1, after)
    return out


def slab_planes(ct: CTInput, original: np.ndarray, rule_original: np.ndarray,
                offsets: np.ndarray | None) -> np.ndarray:
    """(N, 2, Y, X) HU of the chosen slices' third planes (below, above): from `ct.third_planes`
    when the CT brings them, else the nearest original slices (`rule_original`: the chosen
    slices counted inferior -> superior, `offsets` their positions in that order)."""
    if ct.third_planes is not None:
        planes = np.asarray(ct.third_planes)
        if planes.shape != (ct.hu.shape[0], 2, *ct.hu.shape[1:]):
            raise InputError(f"third planes must be (Z, 2, Y, X) = {(ct.hu.shape[0], 2, *ct.hu.shape[1:])}, "
                             f"got {planes.shape}")
        return planes[original]
    count = ct.hu.shape[0]
    positions = offsets if offsets is not None else np.arange(count) * float(ct.z_spacing_mm)
    index = third_plane_indices(positions, rule_original)
    if ct.superior_first:
        index = count - 1 - index
    return np.asarray(ct.hu[index.ravel()], dtype=np.float32).reshape(len(original), 2, *ct.hu.shape[1:])


def preprocess(ct: CTInput, spec: Mapping[str, Any] | None = None) -> PreprocessedInput:
    """Build the (1, 32, 3, S, S) model input from `ct` following the package's `spec`."""
    spec = spec or DEFAULT_PREPROCESSING
    validate_ct(ct)
    if spec.get("slice_order", "inferior_to_superior") != "inferior_to_superior":
        raise InputError(f"unsupported slice order {spec.get('slice_order')!r}")
    offsets = None
    if ct.z_offsets_mm is not None:  # inferior -> superior, as the rule runs
        given = np.asarray(ct.z_offsets_mm, dtype=np.float64)
        offsets = given[-1] - given[::-1] if ct.superior_first else given
    original, resampled = select_slices(ct.hu.shape[0], ct.z_spacing_mm, spec, offsets)
    rule_original = original
    if ct.superior_first:  # the rule runs inferior -> superior: count from the array's end
        original = ct.hu.shape[0] - 1 - original
    size = int(spec["image_size"])
    slices = np.asarray(ct.hu[original], dtype=np.float32)
    resized = resize_stack(slices, (size, size), antialias=True)
    np.nan_to_num(resized, copy=False, nan=-1024.0)
    slab = None
    if shows_slab(spec):
        planes = slab_planes(ct, original, rule_original, offsets)
        flat = resize_stack(planes.reshape(-1, *planes.shape[2:]), (size, size), antialias=True)
        np.nan_to_num(flat, copy=False, nan=-1024.0)
        slab = flat.reshape(len(original), 2, size, size).max(axis=1)
    pixels = window_normalise(resized, spec, slab)[None]
    return PreprocessedInput(
        pixel_values=np.ascontiguousarray(pixels),
        original_indices=original,
        resampled_indices=resampled,
        volume_shape=tuple(int(s) for s in ct.hu.shape),
    )
