"""The bundled demo study: one small phantom series with a nodule and an effusion, as DICOM.

Written with the phantom DICOM writer (models.phantoms.dicom_out) into resources/demo/ with
findings.json and report.txt. Must not import app, ui or torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.phantoms.case import PhantomCase, make_case
from models.phantoms.truth import sample_plan

DEMO_SEED_BASE = 20_000_000  # outside the training (< 1e9, step 1e6 per run seed) and held-out sets
RLE = "1.2.840.10008.1.2.5"


def demo_seed(start: int = DEMO_SEED_BASE, limit: int = 5000) -> int:
    """First seed from `start` whose plan has one solid nodule >= 15 mm, one moderate or large
    effusion and nothing else (so the demo shows two clearly visible findings)."""
    for seed in range(start, start + limit):
        plan = sample_plan(np.random.default_rng([seed, 0]))
        nodules_ok = len(plan.nodules) == 1 and plan.nodules[0][1] == "solid" and plan.nodules[0][2] >= 15
        effusion_ok = len(plan.effusions) == 1 and max(plan.effusions.values()) >= 0.13
        if nodules_ok and effusion_ok and plan.covid_fraction == 0 and plan.ctr <= 0.5 and not plan.laa_percent:
            return seed
    raise LookupError(f"no demo-like phantom among seeds {start}..{start + limit - 1}")


def make_demo(out: Path, seed: int | None = None, size: int = 256, num_slices: int = 72) -> PhantomCase:
    """Render the demo phantom and write it (DICOM RLE lossless, findings.json, report.txt)."""
    from models.phantoms.dicom_out import write_study

    case = make_case(demo_seed() if seed is None else seed, size=size, num_slices=num_slices)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("IM*.dcm"):
        old.unlink()
    write_study(case, out, number=1, transfer_syntax=RLE, signed=True)
    return case
