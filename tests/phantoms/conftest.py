"""Shared phantom cases for the phantom tests (small grids so the suite stays fast)."""

from __future__ import annotations

import pytest

from models.phantoms import CasePlan, PhantomCase, make_case

# Planned cases covering every finding type; rendered once per test session.
PLANS = {
    "normal": CasePlan(ctr=0.44),
    "nodules": CasePlan(nodules=[("RML", "solid", 14.0), ("LLL", "part-solid", 20.0),
                                 ("RUL", "calcified", 6.0)], ctr=0.42),
    "covid": CasePlan(covid_fraction=0.38, consolidation=True, ctr=0.45),
    "effusion-cardiomegaly": CasePlan(effusions={"right": 0.18, "left": 0.05}, ctr=0.58),
    "emphysema": CasePlan(laa_percent=14.0, nodules=[("LUL", "ground-glass", 9.0)], ctr=0.41),
}


@pytest.fixture(scope="session")
def planned_cases() -> dict[str, PhantomCase]:
    return {name: make_case(100 + i, size=160, num_slices=48, plan=plan)
            for i, (name, plan) in enumerate(PLANS.items())}


@pytest.fixture(scope="session")
def small_case() -> PhantomCase:
    """A seeded case from the normal case mix at 96 x 96 x 16 (for DICOM writing)."""
    return make_case(7, size=96, num_slices=16)
