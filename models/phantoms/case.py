"""make_case(): one synthetic chest CT with masks and measured ground truth, no files written.

Numpy only; must not import torch, pydicom, app, ui or inference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.phantoms.anatomy import Patient, sample_patient
from models.phantoms.fields import smooth3
from models.phantoms.geometry import ScanGeometry, choose_geometry
from models.phantoms.lesion_paint import LesionPainter
from models.phantoms.lesions import calibrate, place_nodules
from models.phantoms.measure import Measurements
from models.phantoms.render import HEART, AnatomyRenderer
from models.phantoms.report import write_report
from models.phantoms.tree import build_tubes
from models.phantoms.truth import CasePlan, Finding, covid_class, sample_plan

HU_MIN, HU_MAX = -1024.0, 3071.0


@dataclass
class PhantomCase:
    """A rendered phantom: HU volume (Z, Y, X; slice 0 inferior), labels, findings and report."""

    seed: int
    geometry: ScanGeometry
    hu: np.ndarray  # float32
    lobes: np.ndarray  # uint8, 0 = not lung, 1..5 = RUL RML RLL LUL LLL
    tissue: np.ndarray  # uint8, render.TISSUE_NAMES
    finding_bits: np.ndarray  # uint16, bit mask_bits[i] set where finding i lies
    findings: list[Finding]
    mask_bits: list[int]
    report: str
    study: dict[str, Any] = field(default_factory=dict)  # study-level measurements and labels
    plan: CasePlan | None = None
    patient: Patient | None = None
    third_planes: np.ndarray | None = None
    """float32 (Z, 2, Y, X) or None: HU on the planes a third of the way from each slice to the
    slices below and above it (`make_case(third_planes=True)`), as a thin-slice series holds them
    between the sampled slices; inference.preprocess shows them in a "slab-max" window."""

    def finding_mask(self, i: int) -> np.ndarray:
        """Boolean (Z, Y, X) mask of findings[i]."""
        return (self.finding_bits & np.uint16(1 << self.mask_bits[i])) != 0

    def truth_json(self) -> dict[str, Any]:
        """The findings.json document."""
        return {"format": "medmpt-phantom/1", "seed": self.seed, "synthetic": True,
                "slice_order": "inferior_to_superior", "box_format": "x0,y0,x1,y1 (columns, rows; inclusive)",
                "coordinates": "LPS mm", "geometry": self.geometry.to_json(), **self.study,
                "findings": [f.to_json() for f in self.findings], "report": self.report}


def _noise_sd(rng: np.random.Generator, thickness: float, p: Patient) -> float:
    return float(np.clip(11.0 * (5.0 / thickness) ** 0.35 * rng.uniform(0.85, 1.2) * p.body_a / 165, 8, 30))


def make_case(
    seed: int,
    *,
    size: int | None = None,
    num_slices: int | None = None,
    slice_thickness: float | None = None,
    slice_limits: tuple[int, int] = (40, 400),
    plan: CasePlan | None = None,
    noise: bool = True,
    slab_mm: float | None = None,
    third_planes: bool = False,
) -> PhantomCase:
    """Render phantom `seed`. `size` and `num_slices` override the scanner protocol (the same
    seed keeps the same patient and findings), e.g. size=192, num_slices=32 for training.

    `slab_mm` renders each slice that thick (partial volume, noise) while the slices stay
    `num_slices` apart over the whole chest: 32 thin slices sampled from a thin-slice scan, as
    the runtime's nearest-slice sampling feeds a real series to the model. By default a slice is
    as thick as the slices are apart.

    `third_planes` also renders, for each slice, the planes a third of the way to the slices
    below and above (as thick, with noise of the same level drawn from a stream of its own), kept
    in `PhantomCase.third_planes`; every other output is the same as without them."""
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    plan = plan or sample_plan(np.random.default_rng([seed, 0]))
    rng_anat = np.random.default_rng([seed, 1])
    p = sample_patient(rng_anat, plan.ctr)
    tubes = build_tubes(p, rng_anat)
    rng_geo = np.random.default_rng([seed, 2])
    z_range = (p.z_low - float(rng_geo.uniform(10, 40)), p.z_top + float(rng_geo.uniform(5, 30)))
    geo = choose_geometry(rng_geo, z_range=z_range, body_halfwidth=p.body_a + 22, size=size,
                          num_slices=num_slices, slice_thickness=slice_thickness, slice_limits=slice_limits)
    rng_les = np.random.default_rng([seed, 3])
    slab = float(slab_mm) if slab_mm else float(geo.slice_thickness)
    lesions = calibrate(p, plan, rng_les, slab)
    zs = geo.z_mm()
    lesions.nodules = place_nodules(p, plan, rng_les, zs)
    renderer = AnatomyRenderer(p, tubes, geo.x_mm(), geo.y_mm(), rng_anat)
    painter = LesionPainter(p, lesions, renderer)
    slots = [f"nodule{i}" for i in range(len(lesions.nodules))] + ["covid", "emphysema", "heart"]
    slots += [f"effusion-{side}" for side in p.effusion_depth]
    vol = _Volumes(geo.shape)
    meas = Measurements(geo, p, slots)
    rng_noise = np.random.default_rng([seed, 4])
    sd = _noise_sd(rng_noise, slab, p) if noise else 0.0
    rng_planes = np.random.default_rng([seed, 6])
    thirds = np.empty((len(zs), 2, *geo.shape[1:]), np.float32) if third_planes else None
    third = float(geo.slice_thickness) / 3.0
    for k, z in enumerate(zs):
        layers, masks = _render_plane(renderer, painter, p, float(z))
        layers.hu = _slice_hu(renderer, painter, p, float(z), slab, sd, rng_noise, layers.hu)
        vol.store(k, layers.hu, layers, masks, slots)
        meas.add_slice(k, layers.hu, layers, masks)
        if thirds is not None:
            for j, dz in enumerate((-third, third)):
                thirds[k, j] = _slice_hu(renderer, painter, p, float(z + dz), slab, sd, rng_planes)
    findings, bits, study = meas.findings(lesions.nodules, plan)
    report = write_report(findings, np.random.default_rng([seed, 5]))
    study["noise_sd_hu"] = round(sd, 2)
    study["covid_severity"] = study.get("covid_severity", covid_class(0.0))
    return PhantomCase(seed, geo, vol.hu, vol.lobes, vol.tissue, vol.bits, findings,
                       [slots.index(b) for b in bits], report, study, plan, p, thirds)


def _slice_hu(renderer: AnatomyRenderer, painter: LesionPainter, p: Patient, z: float, slab: float,
              sd: float, rng: np.random.Generator, centre: np.ndarray | None = None) -> np.ndarray:
    """The HU of the slice centred at z: the slab's planes averaged (partial volume), smoothed,
    noise of `sd` added from `rng`, clipped. `centre`: the plane at z, when already rendered."""
    hu_sum = centre if centre is not None else _render_plane(renderer, painter, p, z)[0].hu
    for dz in _slab_offsets(slab):  # thick slices average a slab
        hu_sum = hu_sum + _render_plane(renderer, painter, p, z + dz)[0].hu
    hu = smooth3(hu_sum / np.float32(1 + len(_slab_offsets(slab))))
    if sd:
        hu += smooth3(rng.standard_normal(hu.shape, dtype=np.float32)) * np.float32(sd / 0.375)
    np.clip(hu, HU_MIN, HU_MAX, out=hu)
    return hu


def _slab_offsets(thickness: float) -> tuple[float, ...]:
    """Extra sample planes (mm from the slice centre) for partial volume in thick slices."""
    return (-thickness / 3, thickness / 3) if thickness >= 2.5 else ()


def _render_plane(renderer: AnatomyRenderer, painter: LesionPainter, p: Patient, z: float):
    """Anatomy and findings on the plane z; returns (layers, finding masks)."""
    layers = renderer.render(z)
    masks = painter.paint_parenchyma(layers, z)
    renderer.lung_tubes(layers, z)
    masks.update(painter.paint_nodules(layers, z))
    hc, cc = renderer.last_heart, renderer.last_cavity
    if hc is not None:
        masks["heart"] = (hc.rs, hc.cs, layers.tissue[hc.rs, hc.cs] == HEART)
    for side in p.effusion_depth:
        half = (cc.x < p.cx) if side == "right" else (cc.x >= p.cx)
        masks[f"effusion-{side}"] = (cc.rs, cc.cs, layers.fluid[cc.rs, cc.cs] & half)
    return layers, masks


class _Volumes:
    def __init__(self, shape: tuple[int, int, int]) -> None:
        self.hu = np.empty(shape, np.float32)
        self.lobes = np.empty(shape, np.uint8)
        self.tissue = np.empty(shape, np.uint8)
        self.bits = np.zeros(shape, np.uint16)

    def store(self, k: int, hu, layers, masks, slots: list[str]) -> None:
        self.hu[k] = hu
        self.lobes[k] = layers.lobe
        self.tissue[k] = layers.tissue
        for name, (rs, cs, mask) in masks.items():
            view = self.bits[k][rs, cs]
            view |= mask.astype(np.uint16) << np.uint16(slots.index(name))
