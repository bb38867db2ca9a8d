"""Renders the normal anatomy of one axial slice in HU, with tissue and lobe labels. Numpy only.

Everything is evaluated on one (rows, columns) plane at a time in float32. Findings inside the
lungs are added afterwards by lesions.py. Must not import torch, pydicom, app, ui or inference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.phantoms.anatomy import (
    Patient,
    cavity_axes,
    cavity_rho,
    diaphragm_z,
    fissure_distance,
    heart_q,
    lung_labels,
)
from models.phantoms.fields import FAR, SmoothField
from models.phantoms.tree import TubeSet

# tissue labels
AIR, FAT, SOFT, BONE, LUNG, HEART, VESSEL, AIRWAY, FLUID, ABDOMEN, TABLE, MEDIASTINUM = range(12)
TISSUE_NAMES = ("air", "fat", "soft tissue", "bone", "lung", "heart", "vessel", "airway",
                "pleural fluid", "abdomen", "table", "mediastinum")


@dataclass
class Crop:
    """A rectangular window of the slice grid and its coordinates (x: (1, w), y: (h, 1))."""

    rs: slice
    cs: slice
    x: np.ndarray
    y: np.ndarray


@dataclass
class SliceLayers:
    hu: np.ndarray  # (H, W) float32
    tissue: np.ndarray  # uint8
    lobe: np.ndarray  # uint8, 0..5
    fluid: np.ndarray  # bool


class AnatomyRenderer:
    """Per-case constants for slice rendering (grids, fields, tubes)."""

    def __init__(self, p: Patient, tubes: TubeSet, xs: np.ndarray, ys: np.ndarray,
                 rng: np.random.Generator) -> None:
        self.p, self.tubes, self.xs, self.ys = p, tubes, xs, ys
        self.x, self.y = xs[None, :], ys[:, None]
        self.step = float(xs[1] - xs[0]) if len(xs) > 1 else 1.0
        lo = (p.cx - p.body_a - 20, p.cy - p.body_b - 20, p.z_low - 200)
        hi = (p.cx + p.body_a + 20, p.cy + p.body_b + 40, p.z_top + 200)
        self.tissue_field = SmoothField.random(rng, lo, hi, 30.0)
        self.tissue_w = self.tissue_field.plane_weights(xs, ys)
        self.ribs = _rib_table(p, rng)
        self.table_y = p.cy + p.body_b + 24 + float(rng.uniform(2, 12))
        self.airway_walls = tubes.airways.scaled(1.15, 0.6)
        self.last_cavity: Crop | None = None  # crops used by the latest render()
        self.last_heart: Crop | None = None

    def crop(self, x0: float, x1: float, y0: float, y1: float) -> Crop:
        """Index window of the grid covering [x0, x1] x [y0, y1] mm (possibly empty)."""
        c0 = int(np.clip(np.floor((x0 - self.xs[0]) / self.step), 0, len(self.xs)))
        c1 = int(np.clip(np.ceil((x1 - self.xs[0]) / self.step) + 1, c0, len(self.xs)))
        r0 = int(np.clip(np.floor((y0 - self.ys[0]) / self.step), 0, len(self.ys)))
        r1 = int(np.clip(np.ceil((y1 - self.ys[0]) / self.step) + 1, r0, len(self.ys)))
        rs, cs = slice(r0, r1), slice(c0, c1)
        return Crop(rs, cs, self.x[:, cs], self.y[rs, :])

    def cavity_crop(self, z: float) -> Crop:
        a, b = cavity_axes(self.p, z)
        m = 12.0
        return self.crop(self.p.cx - a - m, self.p.cx + a + m, self.p.cav_cy - b - m,
                         self.p.cav_cy + b + m)

    def render(self, z: float) -> SliceLayers:
        p = self.p
        shape = (len(self.ys), len(self.xs))
        hu = np.full(shape, -1000.0, np.float32)
        tissue = np.zeros(shape, np.uint8)
        noise = self.tissue_field.slice(z, self.tissue_w).astype(np.float32)
        self._table(hu, tissue)
        body = self._body(hu, tissue, z, noise)
        c = self.cavity_crop(z)
        self.last_cavity = c
        hv, tv, nv = hu[c.rs, c.cs], tissue[c.rs, c.cs], noise[c.rs, c.cs]
        rho = cavity_rho(p, c.x, c.y, z)
        self._ribs(hv, tv, c, rho, z)
        dia = diaphragm_z(p, c.x, c.y)
        cavity = rho < 1
        _paint(hv, tv, cavity & (z >= dia), -90 + 8 * nv, MEDIASTINUM)
        self._abdomen(hv, tv, c, cavity & (z < dia), z, dia, nv)
        self._spine(hu, tissue, z)
        hq5 = self._heart(hu, tissue, z, c, dia)
        tube_sdf = self._mediastinal_tubes(hu, tissue, z, body, c)
        lobe_c, fluid_c = lung_labels(p, c.x, c.y, np.float32(z), tube_sdf, (rho, dia, hq5))
        self._lungs(hv, tv, c, lobe_c, z, nv)
        _paint(hv, tv, fluid_c, 12 + 4 * nv, FLUID)
        lobe = np.zeros(shape, np.uint8)
        fluid = np.zeros(shape, bool)
        lobe[c.rs, c.cs] = lobe_c
        fluid[c.rs, c.cs] = fluid_c
        return SliceLayers(hu, tissue, lobe, fluid)

    def _table(self, hu: np.ndarray, tissue: np.ndarray) -> None:
        p = self.p
        c = self.crop(p.cx - 230, p.cx + 230, self.table_y, self.table_y + 95)
        top = self.table_y + 0.0015 * (c.x - p.cx) ** 2
        slab = (c.y >= top) & (c.y < top + 14) & (np.abs(c.x - p.cx) < 230)
        shell = slab & ((c.y < top + 2.5) | (c.y >= top + 11.5))
        hv, tv = hu[c.rs, c.cs], tissue[c.rs, c.cs]
        _paint(hv, tv, slab, np.float32(-850), TABLE)
        _paint(hv, tv, shell, np.float32(180), TABLE)

    def _body(self, hu, tissue, z: float, noise: np.ndarray) -> np.ndarray:
        """Subcutaneous fat and muscle inside a superellipse body (flatter at the back)."""
        p = self.p
        t = (z - p.z_low) / p.height
        a = p.body_a * (1 + 0.08 * np.exp(-(((t - 0.95) / 0.15) ** 2)))
        dx = np.abs(self.x - p.cx)
        split = int(np.clip(np.searchsorted(self.ys, p.cy), 0, len(self.ys)))
        body = np.zeros(hu.shape, bool)
        inner = np.zeros(hu.shape, bool)
        for rows, b, n in ((slice(0, split), p.body_b, 2.2), (slice(split, None), p.body_b + 14, 2.9)):
            dy = np.abs(self.y[rows] - p.cy)
            body[rows] = (dx / a) ** n + (dy / b) ** n < 1
            inner[rows] = (dx / (a - p.fat)) ** n + (dy / (b - p.fat)) ** n < 1
        _paint(hu, tissue, body, -100 + 8 * noise, FAT)
        _paint(hu, tissue, inner, 45 + 5 * noise, SOFT)
        return body

    def _ribs(self, hu, tissue, c: Crop, rho: np.ndarray, z: float) -> None:
        p = self.p
        a, b = cavity_axes(p, z)
        rows, cols = np.nonzero((rho > 1) & (rho < 1 + 8.5 / min(a, b)))
        if not len(rows):
            return
        dx, dy = c.x[0, cols] - p.cx, c.y[rows, 0] - p.cav_cy
        rr = rho[rows, cols]
        d_out = np.sqrt(dx**2 + dy**2) * (1 - 1 / rr)
        psi = np.arctan2(np.abs(dx), dy)  # 0 posterior, pi anterior
        dist = np.full(len(rows), 1e3, np.float32)
        for z0, drop, end in self.ribs:
            if not (z0 - drop - 10 < z < z0 + 12):
                continue
            zk = z0 + 5 * np.sin(np.minimum(psi, 1.2) * 2.5) - drop * (psi / np.pi) ** 1.2
            np.minimum(dist, np.where(psi < end, np.abs(z - zk), 1e3), out=dist)
        edge = np.minimum(d_out - 0.8, 7.8 - d_out)
        sternum = (np.abs(dx) < 13) & (psi > 0.9 * np.pi) & (z > p.z_low + 0.3 * p.height)
        dist = np.where(sternum, 2.0, dist)
        bone = (dist < 4.0) & (edge > 0) & ((np.abs(dx) > p.spine_r + 12) | (dy < 0))  # ribs start at the spine
        cortex = (dist > 2.6) | (edge < 1.4)
        value = np.where(cortex, 850.0, 260.0)
        value = np.where((psi > 0.82 * np.pi) & ~sternum, 120.0, value).astype(np.float32)  # cartilage
        hu[rows[bone], cols[bone]] = value[bone]
        tissue[rows[bone], cols[bone]] = BONE

    def _abdomen(self, hu, tissue, c: Crop, region, z: float, dia, noise) -> None:
        p = self.p
        if not region.any():
            return
        liver = region & (c.x < p.cx + 0.15 * p.cav_a)
        stomach = region & ~liver & (c.y < p.cav_cy + 0.1 * p.cav_b)
        spleen = region & ~liver & ~stomach
        _paint(hu, tissue, liver, 58 + 4 * noise, ABDOMEN)
        _paint(hu, tissue, spleen, 48 + 4 * noise, ABDOMEN)
        _paint(hu, tissue, stomach, 22 + 4 * noise, ABDOMEN)
        gas = stomach & (z > dia - 25) & (c.y < p.cav_cy - 0.35 * p.cav_b)
        _paint(hu, tissue, gas, np.float32(-990), ABDOMEN)

    def _spine(self, hu, tissue, z: float) -> None:
        p = self.p
        c = self.crop(p.cx - 34, p.cx + 34, p.spine_y - p.spine_r - 1, p.spine_y + p.spine_r + 50)
        hv, tv = hu[c.rs, c.cs], tissue[c.rs, c.cs]
        inside = tv != AIR
        phase = ((z - p.z_low) / 27.0) % 1.0
        dx, dy = c.x - p.cx, c.y - p.spine_y
        rr = np.sqrt(dx**2 + dy**2)
        if phase > 0.84:
            _paint(hv, tv, rr < p.spine_r, np.float32(85), SOFT)
        else:
            _paint(hv, tv, rr < p.spine_r, np.where(rr > p.spine_r - 2, 800.0, 230.0).astype(np.float32), BONE)
        canal_y = p.spine_r + 9
        rc = np.sqrt(dx**2 + (dy - canal_y) ** 2)
        if phase < 0.8 or phase > 0.95:
            ax = np.abs(dx)
            arch = (rc < 12.5) | ((ax < 3.5 - 0.04 * (dy - canal_y)) & (dy > canal_y) & (dy < canal_y + 36))
            transverse = (ax > 6) & (ax < 28) & (np.abs(dy - canal_y + 3 - 0.45 * (ax - 8)) < 3.5)
            arch |= transverse & (phase < 0.4)
            _paint(hv, tv, arch & inside, np.where(rc < 11, 750.0, 600.0).astype(np.float32), BONE)
        _paint(hv, tv, rc < 8, np.float32(15), SOFT)

    def _heart(self, hu, tissue, z: float, cav: Crop, dia: np.ndarray) -> np.ndarray:
        """Heart, epicardial fat and pericardium; returns heart_q + 5 mm on the cavity crop."""
        p = self.p
        hq5 = np.full((cav.y.shape[0], cav.x.shape[1]), 2.0, np.float32)
        self.last_heart = None
        if abs(z - p.heart_c[2]) > p.heart_axes[2] + 6:
            return hq5
        r = max(p.heart_axes[:2]) + 6
        h = self.crop(p.heart_c[0] - r, p.heart_c[0] + r, p.heart_c[1] - r, p.heart_c[1] + r)
        rs = slice(max(h.rs.start, cav.rs.start), max(min(h.rs.stop, cav.rs.stop), max(h.rs.start, cav.rs.start)))
        cs = slice(max(h.cs.start, cav.cs.start), max(min(h.cs.stop, cav.cs.stop), max(h.cs.start, cav.cs.start)))
        c = Crop(rs, cs, self.x[:, cs], self.y[rs, :])
        self.last_heart = c
        hv, tv = hu[c.rs, c.cs], tissue[c.rs, c.cs]
        q5 = heart_q(p, c.x, c.y, z, 5.0)
        q = heart_q(p, c.x, c.y, z)
        local = (slice(rs.start - cav.rs.start, rs.stop - cav.rs.start),
                 slice(cs.start - cav.cs.start, cs.stop - cav.cs.start))
        above = z > dia[local] - 8
        _paint(hv, tv, (q5 < 1) & above, np.float32(-95), MEDIASTINUM)
        _paint(hv, tv, (q5 < 1) & (q5 > 0.97) & above, np.float32(25), MEDIASTINUM)
        _paint(hv, tv, q < 1, np.float32(40), HEART)
        hq5[local] = q5
        return hq5

    def _mediastinal_tubes(self, hu, tissue, z: float, body: np.ndarray, c: Crop) -> np.ndarray:
        """Great vessels and oesophagus; returns their signed distance on the crop `c`."""
        t = self.tubes
        out = np.full((c.y.shape[0], c.x.shape[1]), FAR, np.float32)
        for tubes, value, label in ((t.great_vessels, 42.0, VESSEL), (t.oesophagus, 35.0, SOFT)):
            win = tubes.sdf_window(z, self.xs, self.ys, margin=5.0)
            _paint_tube(hu, tissue, win, body, value, label, self.step)
            if win is not None:
                _min_into(out, c, win)
        return out

    def lung_tubes(self, layers: SliceLayers, z: float) -> None:
        """Paint lung vessels (in the lungs) and airways (walls, then air lumens)."""
        hu, tissue = layers.hu, layers.tissue
        v = self.tubes.lung_vessels.sdf_window(z, self.xs, self.ys)
        _paint_tube(hu, tissue, v, layers.lobe > 0, 40.0, VESSEL, self.step)
        wall = self.airway_walls.sdf_window(z, self.xs, self.ys)
        if wall is None:
            return
        soft = (tissue != BONE) & (tissue != AIR) & (tissue != HEART)
        _paint_tube(hu, tissue, wall, soft, 30.0, SOFT, self.step)
        lumen = self.tubes.airways.sdf_window(z, self.xs, self.ys)
        _paint_tube(hu, tissue, lumen, soft, -990.0, AIRWAY, self.step)

    def _lungs(self, hu, tissue, c: Crop, lobe: np.ndarray, z: float, noise: np.ndarray) -> None:
        p = self.p
        lung = lobe > 0
        if not lung.any():
            return
        post = np.clip((c.y - (p.cav_cy - p.cav_b)) / (2 * p.cav_b), 0, 1)
        base = p.lung_hu + 70 * post**2 + 8 * noise
        fd = fissure_distance(p, c.x, c.y, np.float32(z))
        fissure = min(0.8, 0.6 / self.step)  # thin lines fade on coarse grids (partial volume)
        base = base + (-150 - base) * fissure * np.exp(-((fd / (0.5 + 0.3 * self.step)) ** 2))
        _paint(hu, tissue, lung, base.astype(np.float32), LUNG)


def _rib_table(p: Patient, rng: np.random.Generator) -> list[tuple[float, float, float]]:
    spacing = p.height / 10.0
    out = []
    for k in range(12):
        end = np.pi * (0.93 if k < 7 else (0.8 if k < 10 else 0.5))
        out.append((p.z_top + 12 - k * spacing + float(rng.uniform(-2, 2)),
                    0.45 * p.height * float(rng.uniform(0.9, 1.1)), end))
    return out


def _min_into(out: np.ndarray, c: Crop, win) -> None:
    """out (on crop c) = min(out, window values) where they overlap."""
    sdf, rs, cs = win
    r0, r1 = max(rs.start, c.rs.start), min(rs.stop, c.rs.stop)
    c0, c1 = max(cs.start, c.cs.start), min(cs.stop, c.cs.stop)
    if r0 >= r1 or c0 >= c1:
        return
    view = out[r0 - c.rs.start: r1 - c.rs.start, c0 - c.cs.start: c1 - c.cs.start]
    np.minimum(view, sdf[r0 - rs.start: r1 - rs.start, c0 - cs.start: c1 - cs.start], out=view)


def _paint(hu: np.ndarray, tissue: np.ndarray, mask, value, label: int) -> None:
    np.copyto(hu, value, where=mask, casting="unsafe")
    np.copyto(tissue, np.uint8(label), where=mask)


def _paint_tube(hu, tissue, win, within, value: float, label: int, step: float) -> None:
    """Blend `value` into pixels covered by tubes (sdf < 0), with a one-pixel partial volume;
    `win` is Tubes.sdf_window's answer."""
    if win is None:
        return
    sdf, rs, cs = win
    rows, cols = np.nonzero(sdf < 0.5 * step)
    alpha = np.clip(0.5 - sdf[rows, cols] / step, 0, 1)
    rows += rs.start
    cols += cs.start
    if not isinstance(within, bool):
        alpha *= within[rows, cols]
    hu[rows, cols] += alpha * (value - hu[rows, cols])
    full = alpha > 0.5
    tissue[rows[full], cols[full]] = label

