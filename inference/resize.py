"""Separable linear resizing of images with interpolation matrices (numpy only).

Must not import onnxruntime, app/, ui/, DICOM libraries or torch.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

_SINGLE_THREAD_MNK = 262_144


@lru_cache(maxsize=32)
def linear_weights(in_size: int, out_size: int, antialias: bool = True) -> np.ndarray:
    """(out_size, in_size) float32 matrix of a triangle (bilinear) filter, pixel centres aligned.

    Like PIL's and torchvision's antialiased bilinear resize: output pixel i is centred at
    (i + 0.5) * in/out - 0.5 in input pixels; when shrinking with `antialias` the triangle is
    widened by the scale so every input pixel contributes. Weights falling outside the image are
    dropped and each row is renormalised (equivalent to edge clamping for enlargement).
    """
    scale = in_size / out_size
    support = max(scale, 1.0) if antialias else 1.0
    centres = (np.arange(out_size, dtype=np.float64) + 0.5) * scale
    pixels = np.arange(in_size, dtype=np.float64) + 0.5
    weights = np.clip(1.0 - np.abs(pixels[None, :] - centres[:, None]) / support, 0.0, None)
    sums = weights.sum(axis=1, keepdims=True)
    empty = sums[:, 0] == 0
    if empty.any():  # cannot happen for sane sizes; fall back to nearest pixel
        nearest = np.clip(np.floor(centres[empty]).astype(np.int64), 0, in_size - 1)
        weights[np.flatnonzero(empty), nearest] = 1.0
        sums = weights.sum(axis=1, keepdims=True)
    return (weights / sums).astype(np.float32)


@lru_cache(maxsize=32)
def _weight_blocks(in_size: int, out_size: int, antialias: bool, block: int = 32) -> tuple[tuple[int, int, int, int, np.ndarray], ...]:
    """The weight matrix cut into row blocks, each with the input range it touches (banded)."""
    weights = linear_weights(in_size, out_size, antialias)
    blocks = []
    for start in range(0, out_size, block):
        rows = weights[start : start + block]
        used = np.flatnonzero(rows.any(axis=0))
        low, high = int(used[0]), int(used[-1]) + 1
        blocks.append((start, start + rows.shape[0], low, high, np.ascontiguousarray(rows[:, low:high])))
    return tuple(blocks)


def matmul_single_thread(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out[...] = a @ b for 2-D arrays, in row chunks small enough for one BLAS thread.

    OpenBLAS multithreads products above ~262k multiply-adds; on a busy machine (or beside ONNX
    Runtime's own threads) its threads stall each other and a 50 ms resize can take seconds.
    """
    rows = max(1, _SINGLE_THREAD_MNK // max(1, a.shape[1] * b.shape[1]))
    for start in range(0, a.shape[0], rows):
        np.matmul(a[start : start + rows], b, out=out[start : start + rows])


def resize_stack(images: np.ndarray, out_shape: tuple[int, int], antialias: bool = True) -> np.ndarray:
    """Resize a (N, Y, X) stack to (N, out_y, out_x) float32 with separable linear filtering.

    The filter matrices are banded, so each block of 32 output pixels is one small matrix
    product over just the input pixels it touches (about 6x fewer operations than dense).
    """
    n, height, width = images.shape
    data = np.asarray(images, dtype=np.float32)
    blocks_x = _weight_blocks(width, out_shape[1], antialias)
    blocks_y = _weight_blocks(height, out_shape[0], antialias)
    across = np.empty((height, out_shape[1]), dtype=np.float32)
    result = np.empty((n, out_shape[0], out_shape[1]), dtype=np.float32)
    for index in range(n):
        for start, stop, low, high, block in blocks_x:
            matmul_single_thread(data[index, :, low:high], block.T, across[:, start:stop])
        for start, stop, low, high, block in blocks_y:
            matmul_single_thread(block, across[low:high], result[index, start:stop])
    return result
