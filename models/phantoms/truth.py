"""Ground truth of a phantom study: findings, grading rules, and the seeded case mix. Numpy only.

Grades are functions of measured quantities (involved fraction, cardiothoracic ratio, LAA-950
percentage, hemithorax fraction) so the label written in findings.json always agrees with the
numbers beside it. Must not import torch, pydicom or anything from app/, ui/ or inference/.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

# Lobe codes; the lobe label volume stores index + 1 (0 = not lung).
LOBE_CODES: tuple[str, ...] = ("RUL", "RML", "RLL", "LUL", "LLL")
LOBE_NAMES: dict[str, str] = {
    "RUL": "right upper lobe", "RML": "right middle lobe", "RLL": "right lower lobe",
    "LUL": "left upper lobe", "LLL": "left lower lobe",
}
LOBE_SIDE: dict[str, str] = {code: LOBE_NAMES[code].split()[0] for code in LOBE_CODES}
NODULE_SUBTYPES: tuple[str, ...] = ("solid", "part-solid", "ground-glass", "calcified")
FINDING_TYPES: tuple[str, ...] = ("nodule", "covid", "effusion", "cardiomegaly", "emphysema")
SEVERITY_WORDS: tuple[str, ...] = ("mild", "moderate", "severe")
EFFUSION_SIZES: tuple[str, ...] = ("small", "moderate", "large")


def lobe_label(code: str) -> int:
    """The value of `code` in the lobe label volume (1..5)."""
    return LOBE_CODES.index(code) + 1


def size_bucket(size_mm: float) -> str:
    """Nodule size class of the size as written in a report (whole millimetres)."""
    size = int(round(size_mm))
    if size < 6:
        return "<6 mm"
    if size < 10:
        return "6-9 mm"
    if size < 20:
        return "10-19 mm"
    return ">=20 mm"


def covid_class(fraction: float) -> str:
    """MosMedData class of the involved fraction of lung volume (CT-0 .. CT-4)."""
    if fraction <= 0.0:
        return "CT-0"
    for k, upper in enumerate((0.25, 0.50, 0.75), start=1):
        if fraction < upper:
            return f"CT-{k}"
    return "CT-4"


def effusion_size(fraction: float) -> str:
    """Effusion size from the fluid fraction of the hemithorax (fluid / (fluid + lung))."""
    if fraction < 0.10:
        return "small"
    return "moderate" if fraction < 0.25 else "large"


def cardiomegaly_grade(ratio: float) -> str | None:
    """None for a cardiothoracic ratio <= 0.5, else mild (< 0.55), moderate (< 0.6), severe."""
    if ratio <= 0.5:
        return None
    if ratio < 0.55:
        return "mild"
    return "moderate" if ratio < 0.60 else "severe"


def emphysema_grade(laa_percent: float) -> str | None:
    """None below 2 % of lung under -950 HU, else mild (< 10 %), moderate (< 20 %), severe."""
    if laa_percent < 2.0:
        return None
    if laa_percent < 10.0:
        return "mild"
    return "moderate" if laa_percent < 20.0 else "severe"


@dataclass
class Finding:
    """One ground-truth finding as written to findings.json.

    Slice indices are 0-based in the written series, ordered inferior -> superior; boxes are
    pixel coordinates [x0, y0, x1, y1] (column, row; inclusive). Centre is LPS millimetres.
    """

    type: str
    side: str | None = None
    lobe: str | None = None
    subtype: str | None = None
    size_mm: float | None = None
    severity: str | None = None
    extent: dict[str, float] = field(default_factory=dict)
    centre_lps_mm: list[float] | None = None
    slice_range: list[int] | None = None
    box: list[int] | None = None
    slice_boxes: list[list[int]] = field(default_factory=list)

    def key(self) -> tuple[Any, ...]:
        """What a report can say about the finding: the tuple the report parser recovers."""
        bucket = size_bucket(self.size_mm) if self.type == "nodule" and self.size_mm else None
        return (self.type, self.side, self.lobe, self.subtype, bucket, self.severity)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Finding:
        return cls(**data)


@dataclass
class CasePlan:
    """What a case is meant to contain, before rendering (targets, not measurements)."""

    nodules: list[tuple[str, str, float]] = field(default_factory=list)  # (lobe, subtype, size)
    covid_fraction: float = 0.0
    consolidation: bool = False
    effusions: dict[str, float] = field(default_factory=dict)  # side -> hemithorax fraction
    ctr: float = 0.45
    laa_percent: float = 0.0


_COVID_TARGETS = {1: (0.05, 0.21), 2: (0.29, 0.46), 3: (0.54, 0.70)}
_EFFUSION_TARGETS = {"small": (0.03, 0.08), "moderate": (0.13, 0.21), "large": (0.29, 0.38)}
_CTR_TARGETS = {None: (0.38, 0.47), "mild": (0.515, 0.535), "moderate": (0.565, 0.585),
                "severe": (0.62, 0.66)}
_LAA_TARGETS = {"mild": (4.0, 8.0), "moderate": (12.5, 17.5), "severe": (23.0, 30.0)}


def nodule_size(rng: np.random.Generator, subtype: str) -> float:
    if subtype == "calcified":
        return float(rng.uniform(4.0, 10.0))
    return float(np.exp(rng.uniform(np.log(4.0), np.log(30.0))))


def sample_plan(rng: np.random.Generator) -> CasePlan:
    """A seeded case mix: about a quarter normal, the rest one or more findings."""
    plan = CasePlan()
    plan.ctr = float(rng.uniform(*_CTR_TARGETS[None]))
    if rng.random() < 0.25:
        return plan
    while True:
        if rng.random() < 0.40:
            for _ in range(1 if rng.random() < 0.75 else 2):
                subtype = str(rng.choice(NODULE_SUBTYPES, p=[0.5, 0.15, 0.2, 0.15]))
                lobe = str(rng.choice(LOBE_CODES))
                plan.nodules.append((lobe, subtype, nodule_size(rng, subtype)))
        if rng.random() < 0.30:
            k = int(rng.integers(1, 4))
            plan.covid_fraction = float(rng.uniform(*_COVID_TARGETS[k]))
            plan.consolidation = bool(k == 3 or (k == 2 and rng.random() < 0.5))
        if rng.random() < 0.25:
            sides = [str(rng.choice(["right", "left", "both"], p=[0.4, 0.3, 0.3]))]
            sides = ["right", "left"] if sides == ["both"] else sides
            size = str(rng.choice(EFFUSION_SIZES))
            for side in sides:
                plan.effusions[side] = float(rng.uniform(*_EFFUSION_TARGETS[size]))
        if rng.random() < 0.25:
            plan.ctr = float(rng.uniform(*_CTR_TARGETS[str(rng.choice(SEVERITY_WORDS))]))
        if rng.random() < 0.20 and plan.covid_fraction == 0.0:
            plan.laa_percent = float(rng.uniform(*_LAA_TARGETS[str(rng.choice(SEVERITY_WORDS))]))
        if plan.nodules or plan.covid_fraction or plan.effusions or plan.ctr > 0.5 or plan.laa_percent:
            return plan


def plan_findings(plan: CasePlan) -> list[Finding]:
    """Ground truth straight from a plan's targets (no images): the corpus uses this."""
    findings = [
        Finding("nodule", LOBE_SIDE[lobe], lobe, subtype, round(size, 1))
        for lobe, subtype, size in plan.nodules
    ]
    if plan.covid_fraction > 0:
        findings.append(covid_finding(plan.covid_fraction, plan.consolidation))
    for side, fraction in plan.effusions.items():
        findings.append(Finding("effusion", side, severity=effusion_size(fraction),
                                extent={"hemithorax_fraction": round(fraction, 4)}))
    if cardiomegaly_grade(plan.ctr):
        findings.append(cardiomegaly_finding(plan.ctr))
    if emphysema_grade(plan.laa_percent):
        findings.append(emphysema_finding(plan.laa_percent))
    return findings


def covid_finding(fraction: float, consolidation: bool) -> Finding:
    return Finding("covid", "both", severity=covid_class(fraction), subtype=(
        "consolidation" if consolidation else "ground-glass"),
        extent={"involved_fraction": round(fraction, 4)})


def cardiomegaly_finding(ratio: float) -> Finding:
    return Finding("cardiomegaly", severity=cardiomegaly_grade(ratio),
                   extent={"cardiothoracic_ratio": round(ratio, 4)})


def emphysema_finding(laa_percent: float) -> Finding:
    return Finding("emphysema", "both", severity=emphysema_grade(laa_percent),
                   extent={"laa_950_percent": round(laa_percent, 3)})
