"""Report texts from random phantom ground truth, without rendering images (tokenizer corpora).

Must not import torch, pydicom, app, ui or inference.
"""

from __future__ import annotations

import numpy as np

from models.phantoms.report import write_report
from models.phantoms.truth import plan_findings, sample_plan


def report_corpus(n: int, seed: int) -> list[str]:
    """`n` reports drawn from the same case mix and phrasing as the phantoms (seeded)."""
    if n < 0 or seed < 0:
        raise ValueError(f"report_corpus: n and seed must be >= 0, got n={n}, seed={seed}")
    rng = np.random.default_rng([int(seed), 0xC0])
    return [write_report(plan_findings(sample_plan(rng)), rng) for _ in range(n)]
