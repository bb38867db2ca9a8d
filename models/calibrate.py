"""Fit each diagnosis head's temperature on studies the model never trained on, and record it.

`collect` runs only the vision graph (ReportRuntime.diagnose, uncalibrated) over the studies and
pairs each head's probabilities with the ground truth; `fit` finds each head's temperature
(inference.calibration); `write_calibration` puts the temperatures and their figures into the
package's manifest (the runtime applies them) and a "Calibration" section into its model card.
The held-out evaluation (`medmpt eval --generate N --seed 0`) must use other studies: phantom
seed 0 is reserved for it. Must not import ui.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from inference.calibration import calibration_figures, fit_temperature
from inference.package import DiagnosisHead
from inference.runtime import ReportRuntime
from models.export.package import replace_manifest
from models.train.bundle import set_model_card_section
from models.train.evaluate import HEAD_TYPES, EvalStudy, generated_studies

Collected = dict[str, tuple[np.ndarray, np.ndarray]]  # head -> ((N, C) probabilities, (N,) labels)


def head_label(head: DiagnosisHead, study: EvalStudy) -> int | None:
    """The true class index of `head` for `study` (None for a head the phantoms do not label)."""
    if head.name == "covid_severity":
        return min(study.severity, len(head.classes) - 1)
    kind = HEAD_TYPES.get(head.name)
    if kind is None or len(head.classes) != 2:
        return None
    return int(any(f["type"] == kind for f in study.findings))


def collect(runtime: ReportRuntime, studies: Iterable[EvalStudy],
            log: Callable[[str], None] = print) -> Collected:
    """Uncalibrated head probabilities and true labels over `studies`."""
    heads = runtime.package.diagnosis_heads
    rows: dict[str, tuple[list[list[float]], list[int]]] = {h.name: ([], []) for h in heads}
    for count, study in enumerate(studies, start=1):
        diagnosis = runtime.diagnose(study.ct, calibrated=False)
        for head in heads:
            label = head_label(head, study)
            if label is None or head.name not in diagnosis:
                continue
            rows[head.name][0].append([diagnosis[head.name][c] for c in head.classes])
            rows[head.name][1].append(label)
        if count % 50 == 0:
            log(f"read {count} studies")
    return {name: (np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.int64))
            for name, (p, y) in rows.items() if y}


def fit(collected: Collected) -> dict[str, dict[str, Any]]:
    """Each head's fitted temperature with its figures on the fitting studies."""
    return {name: calibration_figures(p, y, fit_temperature(p, y)) for name, (p, y) in collected.items()}


def check(collected: Collected, heads: Iterable[DiagnosisHead]) -> dict[str, dict[str, Any]]:
    """The figures of the temperatures a package already has, on other studies."""
    temperatures = {h.name: h.temperature for h in heads}
    return {name: calibration_figures(p, y, temperatures.get(name, 1.0)) for name, (p, y) in collected.items()}


def write_calibration(package: Path, fitted: dict[str, dict[str, Any]], data: str,
                      details: dict[str, Any] | None = None) -> None:
    """Temperatures and their figures into manifest.json (atomically), and the card's section.
    `data` says in words which studies (shown beside the probabilities); `details` (e.g. the
    phantom seed) is recorded with it."""
    seed = f" (phantom seed {details['seed']})" if details and "seed" in details else ""
    # The card first (it re-pins its own hash), then the manifest in one atomic replace: a failure
    # at either step leaves a package that still verifies.
    set_model_card_section(package, "Calibration", calibration_markdown(fitted, data + seed))
    path = Path(package) / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    for head in manifest["diagnosis"]:
        figures = fitted.get(head["name"])
        if figures is None:
            continue
        head["temperature"] = figures["temperature"]
        head["calibration"] = {"method": "temperature scaling (NLL)", "data": data, **(details or {}),
                               **{k: v for k, v in figures.items() if k != "temperature"}}
    replace_manifest(path.parent, manifest)

def calibrate_on_phantoms(package: Path, count: int, seed: int, cache: Path | None = None, device: str = "cpu",
                          log: Callable[[str], None] = print) -> dict[str, dict[str, Any]]:
    """Fit the package's temperatures on `count` held-out phantoms of `seed` and write them (the
    step after training; `medmpt calibrate` does the same with more choices)."""
    runtime = ReportRuntime.load(package, device=device)
    fitted = fit(collect(runtime, generated_studies(count, seed, cache=cache), log))
    write_calibration(Path(package), fitted, f"{count} held-out phantoms", {"seed": seed})
    return fitted


def format_table(figures: dict[str, dict[str, Any]]) -> str:
    lines = ["| head | temperature | NLL before -> after | ECE before -> after | AUC / accuracy | studies |",
             "|---|---|---|---|---|---|"]
    for name, f in figures.items():
        if "accuracy" in f:
            separation = f"accuracy {f['accuracy']:.3f}"
        else:  # a two-class head: no AUC when the studies hold only one of its classes
            separation = f"AUC {f['auc']:.3f}" if f.get("auc") is not None else "AUC n/a (one class only)"
        lines.append(f"| {name} | {f['temperature']:.2f} | {f['nll_before']:.3f} -> {f['nll_after']:.3f} | "
                     f"{f['ece_before']:.3f} -> {f['ece_after']:.3f} | {separation} | {f['studies']} |")
    return "\n".join(lines)


def calibration_markdown(fitted: dict[str, dict[str, Any]], data: str) -> str:
    return (
        "The diagnosis heads' probabilities are temperature-scaled (Guo et al. 2017): each head's "
        "logits are divided by the temperature below, fitted by minimising the negative log-likelihood "
        f"on {data}, never used in training nor in the held-out evaluation. Scaling keeps each head's "
        "ranking (AUC, accuracy) and changes only how confident it is; ECE is the expected calibration "
        "error (10 bins).\n\n" + format_table(fitted)
    )
