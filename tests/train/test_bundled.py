"""The bundled phantom model, run end to end by the real runtime on held-out phantoms.

Floors come from the figures measured on 300 held-out studies (MODEL_CARD.md: finding F1 0.74,
severity accuracy 0.99, effusion AUC 0.98, ROUGE-L 0.63, in-plane pointing 0.86 vs chance 0.19; on
these 20: 0.74, 1.0, 1.0, 0.59, 0.67 vs 0.21), set below them so only a broken model, export or
pipeline fails; every figure must beat its chance level.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

from models.train.config import PACKAGE_NAME  # noqa: E402

PACKAGE = Path(__file__).resolve().parents[2] / "models" / "packages" / PACKAGE_NAME
DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo"
FLOORS = {"finding_f1": 0.35, "severity_accuracy": 0.75, "effusion_auc": 0.8, "rouge_l": 0.45}


@pytest.fixture(scope="module")
def runtime():
    from inference.runtime import ReportRuntime

    if not (PACKAGE / "manifest.json").is_file():
        pytest.skip(f"no bundled package at {PACKAGE}")
    return ReportRuntime.load(PACKAGE, device="cpu")


def test_bundled_package_is_labelled_synthetic():
    manifest = json.loads((PACKAGE / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["clinical_use"] is False
    assert manifest["label"] == "synthetic, not for clinical use"
    assert "not for clinical use" in manifest["intended_use"]
    assert manifest["name"] == PACKAGE_NAME
    size = sum(p.stat().st_size for p in PACKAGE.iterdir())
    assert size <= 30 * 1024 * 1024


@pytest.mark.slow
def test_bundled_model_beats_chance_on_held_out_phantoms(runtime):
    from models.train.evaluate import evaluate, generated_studies

    figures = evaluate(runtime, generated_studies(20, seed=7))
    assert figures["studies"] == 20
    for name, floor in FLOORS.items():
        assert figures[name] >= floor, (name, figures[name])
    assert figures["slice_pointing"] > figures["slice_pointing_chance"]
    assert figures["inplane_pointing"] > figures["inplane_pointing_chance"] + 0.1


@pytest.mark.slow
def test_demo_study_reads_through_dicom_and_names_its_findings(runtime):
    from models.train.evaluate import evaluate, folder_studies

    figures = evaluate(runtime, folder_studies(DEMO))
    assert figures["studies"] == 1
    assert figures["finding_recall"] > 0.0
