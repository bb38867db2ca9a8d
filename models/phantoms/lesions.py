"""Lung findings of the phantoms: nodules, COVID-like opacities, emphysema, effusion sizing.

Extents are calibrated on a coarse 4 mm grid before rendering (quantile thresholds of smooth
random fields; bisection of the effusion depth), then measured again on the rendered masks by
case.py. Numpy only; must not import torch, pydicom, app, ui or inference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.phantoms.anatomy import (
    Patient,
    cavity_rho,
    effusion_layer,
    lung_labels,
    lung_labels_points,
)
from models.phantoms.fields import SmoothField
from models.phantoms.truth import CasePlan, lobe_label

GRID_MM = 4.0


@dataclass
class Nodule:
    lobe: str
    subtype: str
    size_mm: float
    centre: np.ndarray  # LPS mm
    lobulation: tuple[float, float, float]  # amplitude, lobes, phase


@dataclass
class LesionSet:
    """Everything needed to paint the findings of one case into its slices."""

    nodules: list[Nodule] = field(default_factory=list)
    covid_field: SmoothField | None = None
    covid_threshold: float = np.inf
    consolidation_threshold: float = np.inf
    emph_field: SmoothField | None = None
    emph_threshold: float = np.inf


def _coarse_points(p: Patient) -> dict[str, np.ndarray]:
    """Lung points (no effusion) on a 4 mm grid, slice by slice."""
    xs = np.arange(p.cx - p.cav_a, p.cx + p.cav_a, GRID_MM, dtype=np.float32)
    ys = np.arange(p.cav_cy - p.cav_b, p.cav_cy + p.cav_b, GRID_MM, dtype=np.float32)
    saved, p.effusion_depth = p.effusion_depth, {}
    out: dict[str, list] = {"x": [], "y": [], "z": [], "lobe": []}
    for z in np.arange(p.z_low - 10, p.z_top, GRID_MM, dtype=np.float32):
        sdf = p.mediastinum.sdf_slice(float(z), xs, ys, margin=5.0)
        lobe, _ = lung_labels(p, xs[None, :], ys[:, None], z, sdf)
        r, c = np.nonzero(lobe)
        out["x"].append(xs[c]), out["y"].append(ys[r])
        out["z"].append(np.full(len(r), z, np.float32)), out["lobe"].append(lobe[r, c])
    p.effusion_depth = saved
    return {k: np.concatenate(v) for k, v in out.items()}


def _effusion_depth(p: Patient, pts: dict[str, np.ndarray], side: str, target: float) -> float:
    on_side = (pts["x"] < p.cx) if side == "right" else (pts["x"] >= p.cx)
    x, y, z = pts["x"][on_side], pts["y"][on_side], pts["z"][on_side]
    lo, hi = 0.0, 1.6 * p.cav_b
    for _ in range(18):
        mid = 0.5 * (lo + hi)
        p.effusion_depth[side] = mid
        frac = effusion_layer(p, side, x, y, z).mean() if len(x) else 0.0
        lo, hi = (mid, hi) if frac < target else (lo, mid)
    return 0.5 * (lo + hi)


def covid_score(p: Patient, x, y, z, field_values) -> np.ndarray:
    """Peripheral, posterior and basal predominance plus patchiness."""
    t = (z - p.z_low) / p.height
    post = (y - p.cav_cy) / p.cav_b
    return 1.6 * cavity_rho(p, x, y, z) + 0.4 * post - 0.5 * t + 0.8 * field_values


def emph_score(p: Patient, z, field_values) -> np.ndarray:
    """Upper-lobe predominant holes."""
    return field_values + 1.5 * (z - p.z_low) / p.height


def _field_at(f: SmoothField, pts: dict[str, np.ndarray]) -> np.ndarray:
    out = np.empty(len(pts["x"]), np.float32)
    xs = np.unique(pts["x"])
    ys = np.unique(pts["y"])
    weights = f.plane_weights(xs, ys)
    for z in np.unique(pts["z"]):
        sel = np.nonzero(pts["z"] == z)[0]
        plane = f.slice(float(z), weights)
        out[sel] = plane[np.searchsorted(ys, pts["y"][sel]), np.searchsorted(xs, pts["x"][sel])]
    return out


def calibrate(p: Patient, plan: CasePlan, rng: np.random.Generator, thickness: float = 1.0) -> LesionSet:
    """Effusion depths (set on p), COVID and emphysema thresholds for the planned extents."""
    pts = _coarse_points(p)
    for side, target in plan.effusions.items():
        p.effusion_depth[side] = _effusion_depth(p, pts, side, target)
    lung = np.ones(len(pts["x"]), bool)
    for side in p.effusion_depth:
        lung &= ~effusion_layer(p, side, pts["x"], pts["y"], pts["z"])
    lo = (p.cx - p.cav_a - 10, p.cav_cy - p.cav_b - 10, p.z_low - 20)
    hi = (p.cx + p.cav_a + 10, p.cav_cy + p.cav_b + 10, p.z_top + 20)
    out = LesionSet()
    if plan.covid_fraction > 0:
        out.covid_field = SmoothField.random(rng, lo, hi, 22.0)
        s = covid_score(p, pts["x"], pts["y"], pts["z"], _field_at(out.covid_field, pts))[lung]
        out.covid_threshold = float(np.quantile(s, 1 - plan.covid_fraction))
        if plan.consolidation:
            out.consolidation_threshold = float(np.quantile(s, 1 - 0.4 * plan.covid_fraction))
    if plan.laa_percent > 0:
        out.emph_field = SmoothField.random(rng, lo, hi, 5.0)
        s = emph_score(p, pts["z"], _field_at(out.emph_field, pts))[lung]
        # Blur, noise, vessels and thick-slice averaging lift part of each hole above -950 HU.
        holes = plan.laa_percent / 100 * (1.45 + 0.1 * thickness) + 0.02
        out.emph_threshold = float(np.quantile(s, 1 - min(holes, 0.9)))
    return out


def place_nodules(p: Patient, plan: CasePlan, rng: np.random.Generator,
                  z_slices: np.ndarray) -> list[Nodule]:
    """Nodules entirely inside their lobe, centred near a slice centre so they are sampled."""
    nodules = []
    sphere = _sphere_points()
    for lobe, subtype, size in plan.nodules:
        label = lobe_label(lobe)
        for attempt in range(240):
            size_now = size * (0.85 ** (attempt // 60))
            amp = 0.12 if subtype in ("solid", "part-solid") else 0.04
            reach = 0.5 * size_now * (1 + amp) + 1.5
            centre = _random_lobe_point(p, rng, label)
            if centre is None:
                break
            k = int(np.argmin(np.abs(z_slices - centre[2])))
            centre[2] = z_slices[k] + rng.uniform(-0.15, 0.15) * (z_slices[1] - z_slices[0] if len(z_slices) > 1 else 0)
            probe = np.vstack([centre, centre + reach * sphere])
            if np.all(lung_labels_points(p, probe) == label):
                lob = (amp, float(rng.integers(3, 7)), float(rng.uniform(0, 2 * np.pi)))
                nodules.append(Nodule(lobe, subtype, round(size_now, 1), centre, lob))
                break
    return nodules


def _sphere_points() -> np.ndarray:
    g = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)
                  if (i, j, k) != (0, 0, 0)], float)
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def _random_lobe_point(p: Patient, rng: np.random.Generator, label: int) -> np.ndarray | None:
    lo = np.array([p.cx - p.cav_a, p.cav_cy - p.cav_b, p.z_low])
    hi = np.array([p.cx + p.cav_a, p.cav_cy + p.cav_b, p.z_top])
    for _ in range(10):
        pts = lo + rng.random((400, 3)) * (hi - lo)
        hit = np.nonzero(lung_labels_points(p, pts) == label)[0]
        if len(hit):
            return pts[hit[0]].copy()
    return None
