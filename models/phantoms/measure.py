"""Measures rendered phantom slices into ground truth: extents, ratios, slice ranges and boxes.

Labels are derived from these measurements (truth.py grading rules), so they always agree with
the recorded numbers. Numpy only; must not import torch, pydicom, app, ui or inference.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.phantoms.anatomy import Patient
from models.phantoms.geometry import ScanGeometry
from models.phantoms.lesions import Nodule
from models.phantoms.truth import (
    LOBE_CODES,
    CasePlan,
    Finding,
    cardiomegaly_finding,
    cardiomegaly_grade,
    covid_class,
    covid_finding,
    effusion_size,
    emphysema_finding,
    emphysema_grade,
)


class _Slot:
    def __init__(self) -> None:
        self.count = 0
        self.sums = np.zeros(3)
        self.boxes: list[list[int]] = []

    def add(self, k: int, rs: slice, cs: slice, mask: np.ndarray) -> None:
        rows, cols = np.nonzero(mask)
        if not len(rows):
            return
        r0, c0 = rs.start or 0, cs.start or 0
        self.count += len(rows)
        self.sums += (k * len(rows), rows.sum() + r0 * len(rows), cols.sum() + c0 * len(cols))
        self.boxes.append([k, int(cols.min() + c0), int(rows.min() + r0), int(cols.max() + c0),
                           int(rows.max() + r0)])

    def place(self, f: Finding, geo: ScanGeometry, centre: list[float] | None = None) -> Finding:
        if self.count:
            f.slice_range = [self.boxes[0][0], self.boxes[-1][0]]
            b = np.array(self.boxes)
            f.box = [int(b[:, 1].min()), int(b[:, 2].min()), int(b[:, 3].max()), int(b[:, 4].max())]
            f.slice_boxes = self.boxes
            mean = self.sums / self.count
            f.centre_lps_mm = centre or [round(v, 2) for v in geo.lps_of(mean[0], mean[1], mean[2])]
        return f


class Measurements:
    """Accumulates per-slice counts while a case renders."""

    def __init__(self, geo: ScanGeometry, p: Patient, slots: list[str]) -> None:
        self.geo, self.p = geo, p
        self.slots = {name: _Slot() for name in slots}
        self.mid_col = int(np.ceil((p.cx - geo.origin[0]) / geo.pixel_spacing))
        self.lung = {"right": 0, "left": 0}
        self.laa = 0
        self.lobe_voxels = np.zeros(6, np.int64)
        self.covid_lobe_voxels = np.zeros(6, np.int64)
        self.heart_width = 0.0
        self.thorax_width = 0.0

    def add_slice(self, k: int, hu: np.ndarray, layers, masks) -> None:
        lung = layers.lobe > 0
        right = int(np.count_nonzero(lung[:, : self.mid_col]))
        self.lung["right"] += right
        self.lung["left"] += int(np.count_nonzero(lung)) - right
        self.laa += int(np.count_nonzero(lung & (hu < -950)))
        self.lobe_voxels += np.bincount(layers.lobe.ravel(), minlength=6)[:6]
        if "covid" in masks:
            rs, cs, mask = masks["covid"]
            self.covid_lobe_voxels += np.bincount(layers.lobe[rs, cs][mask], minlength=6)[:6]
        for name, (rs, cs, mask) in masks.items():
            self.slots[name].add(k, rs, cs, mask)
        lung_cols = np.nonzero(lung.any(axis=0))[0]
        if len(lung_cols):
            self.thorax_width = max(self.thorax_width, float(lung_cols[-1] - lung_cols[0] + 1))
        heart = masks.get("heart")
        heart_cols = np.nonzero(heart[2].any(axis=0))[0] if heart is not None else []
        if len(heart_cols):
            self.heart_width = max(self.heart_width, float(heart_cols[-1] - heart_cols[0] + 1))

    def _ml(self, voxels: int) -> float:
        g = self.geo
        return round(voxels * g.pixel_spacing**2 * g.slice_thickness / 1000.0, 2)

    def findings(self, nodules: list[Nodule], plan: CasePlan) -> tuple[list[Finding], list[str], dict[str, Any]]:
        """(findings, their mask slot names, study-level measurements)."""
        geo, out, names = self.geo, [], []
        n_lung = self.lung["right"] + self.lung["left"]
        for i, n in enumerate(nodules):
            slot = self.slots[f"nodule{i}"]
            if slot.count:
                f = Finding("nodule", "right" if n.lobe[0] == "R" else "left", n.lobe, n.subtype,
                            n.size_mm, extent={"volume_ml": self._ml(slot.count)})
                out.append(slot.place(f, geo, [round(float(v), 2) for v in n.centre]))
                names.append(f"nodule{i}")
        covid = self.slots["covid"]
        fraction = covid.count / max(n_lung, 1)
        if covid.count:
            f = covid_finding(fraction, plan.consolidation)
            f.extent["volume_ml"] = self._ml(covid.count)
            for label, code in enumerate(LOBE_CODES, start=1):  # involved fraction of each lobe
                share = self.covid_lobe_voxels[label] / max(int(self.lobe_voxels[label]), 1)
                f.extent[f"{code}_fraction"] = round(float(share), 4)
            out.append(covid.place(f, geo))
            names.append("covid")
        for side in ("right", "left"):
            slot = self.slots.get(f"effusion-{side}")
            if slot is not None and slot.count:
                frac = slot.count / (slot.count + self.lung[side])
                f = Finding("effusion", side, severity=effusion_size(frac), extent={
                    "hemithorax_fraction": round(frac, 4), "volume_ml": self._ml(slot.count)})
                out.append(slot.place(f, geo))
                names.append(f"effusion-{side}")
        ctr = self.heart_width / max(self.thorax_width, 1.0)
        if cardiomegaly_grade(ctr):
            out.append(self.slots["heart"].place(cardiomegaly_finding(ctr), geo))
            names.append("heart")
        laa = 100.0 * self.laa / max(n_lung, 1)
        if emphysema_grade(laa):
            out.append(self.slots["emphysema"].place(emphysema_finding(laa), geo))
            names.append("emphysema")
        study = {
            "covid_severity": covid_class(fraction), "covid_involved_fraction": round(fraction, 4),
            "cardiothoracic_ratio": round(ctr, 4) if self.heart_width else None,  # None: heart not scanned
            "laa_950_percent": round(laa, 3),
            "lung_volume_ml": self._ml(n_lung),
            "diagnosis": {"covid_severity": covid_class(fraction),
                          "nodule": "present" if any(f.type == "nodule" for f in out) else "absent",
                          "effusion": "present" if any(f.type == "effusion" for f in out) else "absent"},
        }
        return out, names, study
