"""Tube networks of the phantom chest: great vessels, central airways, and branching lung trees.

Lung vessel trees grow from each hilum to random terminals inside the lung (each new path starts
at the nearest existing node), so radii taper to the periphery; bronchi run beside the larger
branches.
Numpy only; must not import torch, pydicom, app, ui or inference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.phantoms.anatomy import Patient, lung_labels_points
from models.phantoms.fields import Tubes


@dataclass
class TubeSet:
    great_vessels: Tubes
    airways: Tubes  # lumen radii (central and lung airways)
    oesophagus: Tubes
    lung_vessels: Tubes


def _pt(x: float, y: float, z: float) -> np.ndarray:
    return np.array([x, y, z], dtype=float)


def _polyline(points: list[np.ndarray], r0: float, r1: float) -> list:
    radii = np.linspace(r0, r1, len(points))
    return [(points[i], points[i + 1], radii[i], radii[i + 1]) for i in range(len(points) - 1)]


def _great_vessels(p: Patient, rng: np.random.Generator) -> list:
    cx, cy, cb, ca = p.cx, p.cav_cy, p.cav_b, p.cav_a
    z_arch = p.z_low + 0.80 * p.height
    heart_top = p.heart_c[2] + 0.55 * p.heart_axes[2]
    ra, rd = float(rng.uniform(13, 17)), float(rng.uniform(10, 13))
    xd, yd = cx + p.spine_r + rd + 2, p.spine_y - 0.45 * p.spine_r
    asc = _pt(cx - 6, cy - 0.24 * cb, z_arch)
    pa_top = _pt(cx + 14, cy - 0.08 * cb, z_arch - 30)
    segs = _polyline([_pt(cx - 2, cy - 0.28 * cb, heart_top - 20), asc], ra, ra)
    segs += _polyline([asc, _pt(cx + 4, cy - 0.02 * cb, z_arch + 14), _pt(xd, yd, z_arch)], ra * 0.9, rd)
    segs += _polyline([_pt(xd, yd, z_arch), _pt(xd, yd, p.z_low - 80)], rd, rd * 0.9)
    segs += _polyline([_pt(cx + 22, cy - 0.34 * cb, heart_top - 15), pa_top], 13, 13)
    segs += _polyline([pa_top, p.hilum("left")], 11, 9)
    segs += _polyline([pa_top, _pt(cx, cy - 0.02 * cb, z_arch - 32), p.hilum("right")], 11, 9)
    segs += _polyline([_pt(cx - 0.2 * ca, cy - 0.14 * cb, p.z_top + 60),
                       _pt(cx - 0.18 * ca, cy - 0.14 * cb, heart_top - 10)], 9, 10)
    segs += _polyline([_pt(cx - 0.1 * ca, cy + 0.1 * cb, p.heart_c[2] - 0.4 * p.heart_axes[2]),
                       _pt(cx - 0.12 * ca, cy + 0.12 * cb, p.z_low - 80)], 11, 11)
    segs += _polyline([_pt(cx - 4, cy - 0.1 * cb, z_arch + 10), _pt(cx - 18, cy - 0.2 * cb, p.z_top + 60)], 6, 5)
    segs += _polyline([_pt(cx + 8, cy - 0.02 * cb, z_arch + 10), _pt(cx + 24, cy + 0.02 * cb, p.z_top + 60)], 5, 4.5)
    return segs


def _central_airways(p: Patient, rng: np.random.Generator) -> tuple[list, list]:
    cx = p.cx
    y_tr = p.spine_y - p.spine_r - 22
    carina = _pt(cx, y_tr, p.z_low + 0.70 * p.height)
    rt = float(rng.uniform(7.5, 9.5))
    airways = _polyline([_pt(cx, y_tr - 8, p.z_top + 70), _pt(cx, y_tr, p.z_top), carina], rt, rt)
    airways += _polyline([carina, p.hilum("right") + _pt(0, 4, 6)], rt * 0.75, rt * 0.6)
    airways += _polyline([carina, _pt(cx + 22, y_tr + 6, carina[2] - 10),
                          p.hilum("left") + _pt(0, 6, 6)], rt * 0.7, rt * 0.55)
    y_oe = p.spine_y - p.spine_r - 6
    oesophagus = _polyline([_pt(cx + 4, y_oe, p.z_top + 70), _pt(cx + 10, y_oe, p.z_low + 10),
                            _pt(cx + 0.4 * p.cav_a, p.cav_cy - 0.2 * p.cav_b, p.z_low - 30)], 7, 7)
    return airways, oesophagus


def _lung_points(p: Patient, rng: np.random.Generator, side: str, n: int) -> np.ndarray:
    """`n` uniformly random points inside the lung on `side`."""
    sign = -1.0 if side == "right" else 1.0
    lo = np.array([p.cx + min(0, sign) * p.cav_a, p.cav_cy - p.cav_b, p.z_low])
    hi = np.array([p.cx + max(0, sign) * p.cav_a, p.cav_cy + p.cav_b, p.z_top])
    found: list[np.ndarray] = []
    for _ in range(20):
        pts = lo + rng.random((4 * n, 3)) * (hi - lo)
        found.append(pts[lung_labels_points(p, pts) > 0])
        if sum(len(f) for f in found) >= n:
            break
    return np.concatenate(found)[:n]


def _lung_tree(p: Patient, rng: np.random.Generator, side: str, n_terminals: int) -> tuple[list, list]:
    """Vessel tree from the hilum to random terminals (nearest-node growth, 12 mm steps);
    radii follow the number of terminals downstream (Murray-like). Returns (vessels, airways)."""
    hilum = p.hilum(side) + np.array([(-12.0 if side == "right" else 12.0), 0, 0])
    targets = _lung_points(p, rng, side, n_terminals)
    targets = targets[np.argsort(np.linalg.norm(targets - hilum, axis=1))]
    arr = np.empty((len(targets) * 40 + 1, 3))
    arr[0] = hilum
    parent = [-1]
    n = 1
    for target in targets:
        j = int(np.argmin(((arr[:n] - target) ** 2).sum(1)))
        gap = target - arr[j]
        steps = max(1, int(np.ceil(np.linalg.norm(gap) / 12.0)))
        for k in range(1, steps + 1):
            jitter = rng.normal(0, 1.5, 3) if k < steps else 0.0
            arr[n] = arr[j] + gap * k / steps + jitter
            parent.append(j if k == 1 else n - 1)
            n += 1
    count = np.zeros(n)
    for i in range(n - 1, 0, -1):
        count[i] += 1 if count[i] == 0 else 0
        count[parent[i]] += count[i]
    radius = 0.55 * np.maximum(count, 1) ** 0.42
    vessels, airways = [], []
    offset = rng.normal(0, 1, 3)
    for i in range(1, n):
        a, b = arr[parent[i]], arr[i]
        vessels.append((a, b, radius[i], radius[i]))
        if radius[i] > 2.2:
            d = (b - a) / (np.linalg.norm(b - a) + 1e-9)
            perp = np.cross(d, offset)
            perp *= (radius[i] * 1.8 + 1.5) / (np.linalg.norm(perp) + 1e-9)
            airways.append((a + perp, b + perp, radius[i] * 0.55, radius[i] * 0.55))
    return vessels, airways


def build_tubes(p: Patient, rng: np.random.Generator, terminals: int = 600) -> TubeSet:
    """All tube networks; also sets p.mediastinum, which the lung masks need."""
    great = _great_vessels(p, rng)
    airways, oesophagus = _central_airways(p, rng)
    p.mediastinum = Tubes.from_list(great + oesophagus + [
        (a, b, r0 * 1.3 + 1, r1 * 1.3 + 1) for a, b, r0, r1 in airways])
    vessels: list = []
    lung_airways: list = []
    for side in ("right", "left"):
        v, a = _lung_tree(p, rng, side, terminals)
        vessels += v
        lung_airways += a
    all_airways = Tubes.from_list(airways + lung_airways)
    return TubeSet(Tubes.from_list(great), all_airways, Tubes.from_list(oesophagus),
                   Tubes.from_list(vessels))
