"""Paints the calibrated lung findings (lesions.py) into rendered slices and returns their masks.

Numpy only; must not import torch, pydicom, app, ui or inference.
"""

from __future__ import annotations

import numpy as np

from models.phantoms.anatomy import Patient
from models.phantoms.lesions import LesionSet, Nodule, covid_score, emph_score
from models.phantoms.render import LUNG, AnatomyRenderer, SliceLayers
from models.phantoms.truth import lobe_label

# Nodule appearance: (HU of the whole nodule, HU of the solid core or None, core radius fraction)
NODULE_HU = {"solid": (38.0, None, 0.0), "part-solid": (-560.0, 30.0, 0.45),
              "ground-glass": (-620.0, None, 0.0), "calcified": (520.0, None, 0.0)}

Masks = dict[str, tuple[slice, slice, np.ndarray]]


class LesionPainter:
    def __init__(self, p: Patient, lesions: LesionSet, renderer: AnatomyRenderer) -> None:
        self.p, self.lesions, self.r = p, lesions, renderer
        self.covid_w = lesions.covid_field.plane_weights(renderer.xs, renderer.ys) if lesions.covid_field else None
        self.emph_w = lesions.emph_field.plane_weights(renderer.xs, renderer.ys) if lesions.emph_field else None

    def paint_parenchyma(self, layers: SliceLayers, z: float) -> Masks:
        """COVID-like opacities and emphysematous holes (before vessels are drawn)."""
        out: Masks = {}
        c = self.r.cavity_crop(z)
        lung = layers.lobe[c.rs, c.cs] > 0
        if not lung.any():
            return out
        hu = layers.hu[c.rs, c.cs]
        les = self.lesions
        if les.covid_field is not None and self.covid_w is not None:
            wx, wy = self.covid_w
            f = les.covid_field.slice(z, (wx[:, c.cs], wy[c.rs]))
            s = covid_score(self.p, c.x, c.y, np.float32(z), f)
            mask = lung & (s > les.covid_threshold)
            ggo = np.clip((s - les.covid_threshold) / 0.2, 0, 1) * mask
            hu += ggo * (-600.0 + 90.0 * f + 0.5 * (hu + 850.0) - hu)
            cons = np.clip((s - les.consolidation_threshold) / 0.15, 0, 1) * mask
            hu += cons * (25.0 - hu)
            out["covid"] = (c.rs, c.cs, mask)
        if les.emph_field is not None and self.emph_w is not None:
            wx, wy = self.emph_w
            f = les.emph_field.slice(z, (wx[:, c.cs], wy[c.rs]))
            mask = lung & (emph_score(self.p, np.float32(z), f) > les.emph_threshold)
            np.copyto(hu, np.float32(-988.0), where=mask)
            out["emphysema"] = (c.rs, c.cs, mask)
        return out

    def paint_nodules(self, layers: SliceLayers, z: float) -> Masks:
        out: Masks = {}
        for i, n in enumerate(self.lesions.nodules):
            painted = self._nodule(layers, z, n)
            if painted is not None:
                out[f"nodule{i}"] = painted
        return out

    def _nodule(self, layers: SliceLayers, z: float, n: Nodule):
        amp, lobes, phase = n.lobulation
        radius = 0.5 * n.size_mm
        reach = radius * (1 + amp) + 1
        dz = z - n.centre[2]
        if abs(dz) >= reach:
            return None
        cx, cy = n.centre[0], n.centre[1]
        c = self.r.crop(cx - reach, cx + reach, cy - reach, cy + reach)
        dx, dy = c.x - cx, c.y - cy
        d = np.sqrt(dx**2 + dy**2 + dz**2)
        flat = np.sqrt(dx**2 + dy**2) / np.maximum(d, 1e-3)
        rad = radius * (1 + amp * np.cos(lobes * np.arctan2(dy, dx) + phase) * flat)
        in_lobe = layers.lobe[c.rs, c.cs] == lobe_label(n.lobe)
        mask = (d < rad) & in_lobe
        if not mask.any():
            return None
        whole, core, core_frac = NODULE_HU[n.subtype]
        hu = layers.hu[c.rs, c.cs]
        alpha = np.clip((rad - d) / self.r.step + 0.5, 0, 1) * in_lobe
        hu += alpha * (whole - hu)
        if core is not None:
            beta = np.clip((core_frac * rad - d) / self.r.step + 0.5, 0, 1) * in_lobe
            hu += beta * (core - hu)
        np.copyto(layers.tissue[c.rs, c.cs], np.uint8(LUNG), where=mask)
        return c.rs, c.cs, mask
