"""Shared helpers for the reader-study tests: a controllable clock and a small protocol."""

from __future__ import annotations

from pathlib import Path

from app.reader_study.protocol import Protocol, protocol_from_dict


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_protocol(case_paths: list[Path], readers=("R1", "R2"), seed: int = 7, design: str = "crossover",
                  truth: list[int] | None = None, idle: float = 60.0) -> Protocol:
    cases = [{"id": f"c{i}", "path": str(p)} for i, p in enumerate(case_paths, start=1)]
    if truth is not None:
        for case, t in zip(cases, truth, strict=True):
            case["truth"] = t
    return protocol_from_dict({
        "study": {"id": "pilot", "design": design, "seed": seed, "idle_threshold_s": idle,
                  "imrmc_score": "suspicion"},
        "readers": list(readers), "cases": cases,
        "questions": [{"id": "confidence", "text": "Confidence", "min": 1, "max": 5},
                      {"id": "suspicion", "text": "Suspicion", "min": 1, "max": 5}],
    })
