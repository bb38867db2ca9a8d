"""A randomised chest: body, thoracic cavity, diaphragm, heart, spine, lungs and lobes, in mm (LPS).

Every shape is an implicit function of broadcastable x, y, z arrays, so the same code labels a
whole axial slice (x: (1, W), y: (H, 1), scalar z) or a scatter of 3-D points (placement checks,
calibration). Numpy only; must not import torch, pydicom, app, ui or inference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.phantoms.fields import Tubes


@dataclass
class Patient:
    """Shape parameters of one phantom patient (millimetres, LPS)."""

    cx: float
    cy: float
    body_a: float  # body half-width
    body_b: float  # body half-depth (anterior half)
    fat: float
    muscle: float
    cav_a: float  # thoracic cavity half-width at the lung bases
    cav_b: float
    cav_cy: float
    z_low: float  # lowest point of the lungs (posterior recesses)
    height: float  # lung height, base to apex
    dome: tuple[float, float]  # right, left diaphragm dome height above z_low
    spine_r: float
    spine_y: float
    heart_c: tuple[float, float, float]
    heart_axes: tuple[float, float, float]
    heart_angle: float
    lung_hu: float
    fissures: tuple[float, float, float, float, float]  # R-oblique ant/post, minor, L ant/post
    effusion_depth: dict[str, float] = field(default_factory=dict)  # side -> D0 (mm)
    mediastinum: Tubes = field(default_factory=Tubes.empty)  # great vessels, trachea, oesophagus

    @property
    def z_top(self) -> float:
        return self.z_low + self.height

    def hilum(self, side: str) -> np.ndarray:
        sign = -1.0 if side == "right" else 1.0
        frac = 0.60 if side == "right" else 0.63
        return np.array([self.cx + sign * 0.33 * self.cav_a, self.cav_cy + 0.05 * self.cav_b,
                         self.z_low + frac * self.height])


def sample_patient(rng: np.random.Generator, heart_ratio: float) -> Patient:
    """Random body habitus and organ placement; the heart sized for the cardiothoracic ratio."""
    body_a = float(rng.uniform(140, 190))
    body_b = body_a * float(rng.uniform(0.68, 0.8))
    fat = float(rng.uniform(6, 32)) * body_a / 165
    muscle = float(rng.uniform(6, 12))
    cav_a = body_a - fat - muscle - 8
    cav_b = body_b - fat - muscle - 6
    cx, cy = float(rng.uniform(-20, 20)), float(rng.uniform(-25, 5))
    cav_cy = cy - 5
    height = float(rng.uniform(220, 290))
    z_low = float(rng.uniform(-250, -100))
    dome_r = float(rng.uniform(0.18, 0.26)) * height
    spine_r = float(rng.uniform(15, 20))
    heart_axes, angle = _heart_axes(rng, cav_a, heart_ratio)
    heart_c = (cx + 0.17 * cav_a + float(rng.uniform(0, 10)), cav_cy - 0.24 * cav_b,
               z_low + dome_r - 15 + 0.55 * heart_axes[2])
    return Patient(
        cx=cx, cy=cy, body_a=body_a, body_b=body_b, fat=fat, muscle=muscle, cav_a=cav_a,
        cav_b=cav_b, cav_cy=cav_cy, z_low=z_low, height=height, dome=(dome_r, dome_r - 15),
        spine_r=spine_r, spine_y=cav_cy + cav_b - 0.8 * spine_r, heart_c=heart_c,
        heart_axes=heart_axes, heart_angle=angle, lung_hu=float(rng.uniform(-880, -820)),
        fissures=(float(rng.uniform(0.14, 0.22)), float(rng.uniform(0.62, 0.72)),
                  float(rng.uniform(0.48, 0.56)), float(rng.uniform(0.12, 0.2)),
                  float(rng.uniform(0.62, 0.72))),
    )


def _heart_axes(rng: np.random.Generator, cav_a: float, ratio: float):
    """Semi-axes whose transverse width is `ratio` of the widest inner thorax (2 * cav_a)."""
    angle = float(np.deg2rad(rng.uniform(25, 45)))
    elong = float(rng.uniform(1.3, 1.5))  # long axis / short axis
    half_width = ratio * cav_a
    b = half_width / np.sqrt((elong * np.cos(angle)) ** 2 + np.sin(angle) ** 2)
    return (elong * b, b, float(rng.uniform(0.95, 1.15)) * b), angle


def cavity_axes(p: Patient, z) -> tuple[np.ndarray, np.ndarray]:
    """Half-width and half-depth of the thoracic cavity (inner rib margin) at height z."""
    t = (np.asarray(z, dtype=np.float32) - p.z_low) / p.height
    shrink = np.where(t > 0.55, np.clip(1 - ((t - 0.55) / 0.5) ** 2, 0.04, 1.0), 1.0)
    return p.cav_a * np.sqrt(shrink), p.cav_b * shrink**0.3


def cavity_rho(p: Patient, x, y, z) -> np.ndarray:
    """Normalised elliptical radius of the thoracic cavity (< 1 inside)."""
    a, b = cavity_axes(p, z)
    return np.sqrt(((x - p.cx) / a) ** 2 + ((y - p.cav_cy) / b) ** 2)


def diaphragm_z(p: Patient, x, y) -> np.ndarray:
    """Height of the diaphragm surface (lungs above, abdomen below)."""
    side_right = x < p.cx + 0.1 * p.cav_a
    dome = np.where(side_right, p.dome[0], p.dome[1])
    xd = np.where(side_right, p.cx - 0.45 * p.cav_a, p.cx + 0.45 * p.cav_a)
    rho2 = ((x - xd) / (0.8 * p.cav_a)) ** 2 + ((y - (p.cav_cy - 0.25 * p.cav_b)) / p.cav_b) ** 2
    return p.z_low + dome * np.clip(1 - rho2, -0.1, 1)


def heart_q(p: Patient, x, y, z, margin: float = 0.0) -> np.ndarray:
    """Normalised ellipsoid radius of the heart grown by `margin` mm (< 1 inside)."""
    c, s = np.cos(p.heart_angle), np.sin(p.heart_angle)
    dx, dy = x - p.heart_c[0], y - p.heart_c[1]
    u, v = dx * c + dy * s, -dx * s + dy * c
    a, b, h = (ax + margin for ax in p.heart_axes)
    return np.sqrt((u / a) ** 2 + (v / b) ** 2 + ((z - p.heart_c[2]) / h) ** 2)


def _lung_region(p: Patient, x, y, z, tube_sdf, pre=None) -> np.ndarray:
    rho, dia, hq5 = pre if pre is not None else (
        cavity_rho(p, x, y, z), diaphragm_z(p, x, y), heart_q(p, x, y, z, 5.0))
    t = (z - p.z_low) / p.height
    g = np.sqrt(np.clip(1 - ((t - 0.7) / 0.3) ** 2, 0, 1)) * (t < 1) + (t <= 0.7)
    g = np.minimum(g, 1.0)
    side = np.sign(x - p.cx)
    lx = p.cx + side * 0.5 * p.cav_a
    in_lobe_shape = ((x - lx) / (0.62 * p.cav_a * g + 1e-3)) ** 2 + (
        (y - p.cav_cy - 0.1 * p.cav_b) / (1.05 * p.cav_b * g + 1e-3)) ** 2 < 1
    width = 9.0 + 22.0 * np.clip((t - 0.55) / 0.25, 0, 1) * np.clip((p.spine_y - y) / p.cav_b, 0, 1)
    medial = np.abs(x - p.cx) < np.where(y < p.spine_y, width, 0.0)
    spine = (x - p.cx) ** 2 + (y - p.spine_y) ** 2 < (p.spine_r + 6) ** 2
    behind_spine = (np.abs(x - p.cx) < p.spine_r + 4) & (y > p.spine_y)
    return (in_lobe_shape & (rho < 1) & (z > dia) & ~medial & ~spine & ~behind_spine
            & (hq5 >= 1) & (tube_sdf > 4.0))


def _fissure_v(p: Patient, x, y) -> np.ndarray:
    """0 (anterior) .. 1 (posterior) coordinate of the oblique fissures, bent forward laterally."""
    lateral = np.abs(x - p.cx) / p.cav_a
    return np.clip((y - (p.cav_cy - p.cav_b)) / (2 * p.cav_b) + 0.35 * lateral - 0.15, 0, 1)


def _lobe(p: Patient, x, y, z) -> np.ndarray:
    ra, rp, minor, la, lp = p.fissures
    v = _fissure_v(p, x, y)
    right = x < p.cx
    lower = z < p.z_low + p.height * np.where(right, ra + (rp - ra) * v, la + (lp - la) * v)
    upper_r = z >= p.z_low + p.height * minor
    lobe = np.where(right, np.where(lower, 3, np.where(upper_r, 1, 2)), np.where(lower, 5, 4))
    return lobe.astype(np.uint8)


def fissure_distance(p: Patient, x, y, z) -> np.ndarray:
    """Distance (mm) to the nearest fissure surface on each side (for drawing fissure lines)."""
    ra, rp, minor, la, lp = p.fissures
    v = _fissure_v(p, x, y)
    right = x < p.cx
    slope = p.height * np.where(right, rp - ra, lp - la) / (2 * p.cav_b)
    oblique = z - p.z_low - p.height * np.where(right, ra + (rp - ra) * v, la + (lp - la) * v)
    d = np.abs(oblique) / np.sqrt(1 + slope**2)
    minor_d = np.where(right & (oblique > 0), np.abs(z - p.z_low - p.height * minor), 1e3)
    return np.minimum(d, minor_d)


def posterior_depth(p: Patient, x, y, z) -> np.ndarray:
    """Distance (mm) in front of the posterior cavity wall, for dependent fluid layers."""
    a, b = cavity_axes(p, z)
    wall = p.cav_cy + b * np.sqrt(np.clip(1 - ((x - p.cx) / a) ** 2, 0, 1))
    return wall - y


def effusion_layer(p: Patient, side: str, x, y, z) -> np.ndarray:
    """Where a dependent pleural effusion of depth D0 on `side` lies (before lung masking)."""
    d0 = p.effusion_depth.get(side, 0.0)
    top = p.z_low + p.height * min(0.35 + 0.6 * d0 / p.cav_b, 0.95)
    frac = np.clip((top - z) / (top - p.z_low + 1e-6), 0, 1)
    on_side = (x < p.cx) if side == "right" else (x >= p.cx)
    return on_side & (posterior_depth(p, x, y, z) < d0 * np.sqrt(frac))


def lung_labels(p: Patient, x, y, z, tube_sdf, pre=None) -> tuple[np.ndarray, np.ndarray]:
    """(lobe label 0..5, pleural fluid mask) at broadcast points; tube_sdf is the mediastinal
    tube signed distance there; `pre` = (cavity_rho, diaphragm_z, heart_q + 5 mm) if known."""
    region = _lung_region(p, x, y, z, tube_sdf, pre)
    fluid = np.zeros(region.shape, bool)
    for side in p.effusion_depth:
        fluid |= region & effusion_layer(p, side, x, y, z)
    lobes = np.where(region & ~fluid, _lobe(p, x, y, z), 0).astype(np.uint8)
    return lobes, fluid


def lung_labels_points(p: Patient, pts: np.ndarray) -> np.ndarray:
    """Lobe labels (0 = not lung) of an (N, 3) array of LPS points."""
    x, y, z = pts[:, 0], pts[:, 1], pts[:, 2]
    return lung_labels(p, x, y, z, p.mediastinum.sdf_points(x, y, z))[0]
