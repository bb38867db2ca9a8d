"""Cheap procedural primitives for the phantoms: smooth random 3-D fields and tapered tubes.

Both are evaluated one axial slice at a time on the (rows, columns) grid, so a study never needs
a 3-D temporary. Numpy only; must not import torch, pydicom, app, ui or inference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FAR = np.float32(1e4)  # "no tube near here" signed distance


def _bspline(t: np.ndarray) -> np.ndarray:
    a = np.abs(t)
    return np.where(a < 1, (4 - 6 * a**2 + 3 * a**3) / 6, np.where(a < 2, (2 - a) ** 3 / 6, 0.0))


def _weights(coords: np.ndarray, start: float, step: float, n: int) -> np.ndarray:
    u = (np.asarray(coords, dtype=np.float64) - start) / step
    return _bspline(u[:, None] - np.arange(n)[None, :]).astype(np.float32)


@dataclass
class SmoothField:
    """Zero-mean, unit-variance random field: cubic B-spline through a random lattice."""

    lattice: np.ndarray  # (nz, ny, nx)
    start: tuple[float, float, float]  # x, y, z of lattice node (0, 0, 0)
    step: float

    @classmethod
    def random(cls, rng: np.random.Generator, lo: tuple[float, float, float],
               hi: tuple[float, float, float], step: float) -> SmoothField:
        start = tuple(v - 2 * step for v in lo)
        n = [int(np.ceil((h - s) / step)) + 3 for s, h in zip(start, hi, strict=True)]
        lattice = rng.standard_normal((n[2], n[1], n[0])).astype(np.float32) * np.float32(2.9)
        return cls(lattice, start, step)  # type: ignore[arg-type]

    def plane_weights(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(x weights transposed (nx, W), y weights (H, ny)) for slice(); slice columns of the first
        and rows of the second to evaluate a window."""
        nz, ny, nx = self.lattice.shape
        wxt = np.ascontiguousarray(_weights(xs, self.start[0], self.step, nx).T)
        return wxt, _weights(ys, self.start[1], self.step, ny)

    def slice(self, z: float, weights: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """The field on the plane z (rows = ys, columns = xs of `weights`)."""
        wz = _weights(np.array([z]), self.start[2], self.step, self.lattice.shape[0])[0]
        nodes = np.nonzero(wz)[0]
        plane = np.tensordot(wz[nodes], self.lattice[nodes], axes=1)
        wxt, wy = weights
        # einsum, not matmul: multi-threaded BLAS is slow for these thin products on busy CPUs
        return np.einsum("ik,kj->ij", np.einsum("ik,kj->ij", wy, plane), wxt)


@dataclass
class Tubes:
    """Straight tapered tube segments (centre line p0 -> p1, radius r0 -> r1), in mm."""

    p0: np.ndarray  # (N, 3)
    p1: np.ndarray
    r0: np.ndarray  # (N,)
    r1: np.ndarray

    @classmethod
    def empty(cls) -> Tubes:
        z = np.zeros((0, 3))
        return cls(z, z.copy(), np.zeros(0), np.zeros(0))

    @classmethod
    def from_list(cls, segments: list[tuple[np.ndarray, np.ndarray, float, float]]) -> Tubes:
        if not segments:
            return cls.empty()
        p0, p1, r0, r1 = zip(*segments, strict=True)
        return cls(np.array(p0, float), np.array(p1, float), np.array(r0, float), np.array(r1, float))

    def __len__(self) -> int:
        return len(self.r0)

    def scaled(self, factor: float, add: float = 0.0) -> Tubes:
        return Tubes(self.p0, self.p1, self.r0 * factor + add, self.r1 * factor + add)

    def sdf_points(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Signed distance (mm, negative inside) to the nearest tube, at broadcast points."""
        out = np.full(np.broadcast_shapes(np.shape(x), np.shape(y), np.shape(z)), FAR, np.float32)
        for i in range(len(self)):
            np.minimum(out, self._sdf(i, x, y, z), out=out)
        return out

    def _sdf(self, i: int, x, y, z) -> np.ndarray:
        p0, d = self.p0[i].tolist(), (self.p1[i] - self.p0[i]).tolist()
        wx, wy, wz = x - p0[0], y - p0[1], z - p0[2]
        t = (wx * d[0] + wy * d[1] + wz * d[2]) * (1.0 / max(d[0] ** 2 + d[1] ** 2 + d[2] ** 2, 1e-9))
        t = np.minimum(np.maximum(t, 0.0), 1.0)
        dist = np.sqrt((wx - t * d[0]) ** 2 + (wy - t * d[1]) ** 2 + (wz - t * d[2]) ** 2)
        r0, r1 = float(self.r0[i]), float(self.r1[i])
        return (dist - (r0 + t * (r1 - r0))).astype(np.float32, copy=False)

    def sdf_window(self, z: float, xs: np.ndarray, ys: np.ndarray, margin: float = 0.0):
        """Signed distance on the plane z over the union of the tubes' bounding boxes there:
        (values, row slice, column slice), or None when no tube reaches the plane."""
        if not len(self):
            return None
        r = np.maximum(self.r0, self.r1) + margin
        z0, z1 = self.p0[:, 2], self.p1[:, 2]
        boxes = [(i, self._box(i, z, r[i], xs, ys)) for i in
                 np.nonzero((np.minimum(z0, z1) - r <= z) & (np.maximum(z0, z1) + r >= z))[0]]
        boxes = [(i, b) for i, b in boxes if b is not None]
        if not boxes:
            return None
        r0 = min(b[0].start for _, b in boxes)
        r1 = max(b[0].stop for _, b in boxes)
        c0 = min(b[1].start for _, b in boxes)
        c1 = max(b[1].stop for _, b in boxes)
        out = np.full((r1 - r0, c1 - c0), FAR, np.float32)
        for i, (rs, cs) in boxes:
            view = out[rs.start - r0: rs.stop - r0, cs.start - c0: cs.stop - c0]
            np.minimum(view, self._sdf(i, xs[None, cs], ys[rs, None], z), out=view)
        return out, slice(r0, r1), slice(c0, c1)

    def sdf_slice(self, z: float, xs: np.ndarray, ys: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """Signed distance on the whole plane z (FAR away from every tube)."""
        out = np.full((len(ys), len(xs)), FAR, np.float32)
        win = self.sdf_window(z, xs, ys, margin)
        if win is not None:
            out[win[1], win[2]] = win[0]
        return out

    def _box(self, i: int, z: float, r: float, xs: np.ndarray, ys: np.ndarray):
        p0, d = self.p0[i].tolist(), (self.p1[i] - self.p0[i]).tolist()
        if abs(d[2]) < 1e-6:
            t0, t1 = 0.0, 1.0
        else:
            ta, tb = (z - r - p0[2]) / d[2], (z + r - p0[2]) / d[2]
            t0, t1 = min(max(min(ta, tb), 0.0), 1.0), min(max(max(ta, tb), 0.0), 1.0)
        xa, xb = sorted((p0[0] + t0 * d[0], p0[0] + t1 * d[0]))
        ya, yb = sorted((p0[1] + t0 * d[1], p0[1] + t1 * d[1]))
        x0, y0 = float(xs[0]), float(ys[0])
        step = float(xs[1]) - x0 if len(xs) > 1 else 1.0
        c0 = max(math.floor((xa - r - x0) / step), 0)
        c1 = min(math.ceil((xb + r - x0) / step) + 1, len(xs))
        r0 = max(math.floor((ya - r - y0) / step), 0)
        r1 = min(math.ceil((yb + r - y0) / step) + 1, len(ys))
        if c0 >= c1 or r0 >= r1:
            return None
        return slice(r0, r1), slice(c0, c1)


def smooth3(image: np.ndarray) -> np.ndarray:
    """Separable [1, 2, 1] / 4 blur of a 2-D float32 image (edges replicated)."""
    rows = image * np.float32(2.0)
    rows[1:] += image[:-1]
    rows[:-1] += image[1:]
    rows[0] += image[0]
    rows[-1] += image[-1]
    out = rows * np.float32(0.125)
    out[:, 1:] += rows[:, :-1] * np.float32(0.0625)
    out[:, :-1] += rows[:, 1:] * np.float32(0.0625)
    out[:, 0] += rows[:, 0] * np.float32(0.0625)
    out[:, -1] += rows[:, -1] * np.float32(0.0625)
    return out
