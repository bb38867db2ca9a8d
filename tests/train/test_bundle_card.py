"""The model card's training section says what each stage that ran did (and that one did not)."""

from __future__ import annotations

from dataclasses import asdict

import pytest

pytest.importorskip("torch")

from models.train.bundle import provenance, training_markdown  # noqa: E402
from models.train.config import TrainSettings  # noqa: E402


def _state(step: int) -> dict:
    history = [{"text": 1.0, "diagnosis": 2.0, "slices": 0.5, "patches": 0.7, "seconds": 600.0, "studies": 3000}] * step
    return {
        "settings": asdict(TrainSettings()), "step": step, "history": history,
        "pretrain": {"steps": 4000, "batch_size": 64, "lr": 0.001, "focal_share": 0.25, "studies": 3000,
                     "slices": 96000, "seconds": 1300.0, "final": {"labels": 0.25, "rollout": 1.1}},
        "finetune": {"steps": 4000, "batch_size": 32, "lr": 0.0005, "studies": 3000, "seconds": 1200.0,
                     "final": {"text": 0.2, "diagnosis": 0.8, "slices": 0.9}},
    }


def test_card_of_a_run_without_stage_one_names_stage_zero_and_two():
    card = training_markdown(_state(0), "medmpt train --epochs 0 --pretrain-steps 4000")
    assert "Stage zero" in card and "4000 steps of 64 slices" in card and "22 min" in card
    assert "Stage one (end to end, models/train/loop.py): not run" in card
    assert "Stage two" in card and "4000 steps of batch 32" in card
    assert "3000 of the 3000 planned studies" in card
    assert "Slice encoder: 32-pixel patches" in card  # no architecture in this state: none invented
    wide = training_markdown({**_state(0), "config": {"vision_width": 128, "vision_depth": 4, "vision_heads": 4}},
                             "medmpt train --vision-width 128")
    assert "Slice encoder: 128 wide, 4 layers, 4 heads; 32-pixel patches (7 x 7 grid" in wide
    text = provenance(_state(0), "medmpt train")
    assert "4000 slice-encoder steps" in text and "end-to-end" not in text
    assert "slice-label loss" not in card
    state = _state(0)
    state["finetune"] = {**state["finetune"], "slice_label_weight": 1.0, "dropout": 0.1,
                         "final": {**state["finetune"]["final"], "slice_labels": 0.3}}
    labelled = training_markdown(state, "medmpt train --slice-label-weight 1")
    assert "weighted 1, the slice-label loss" in labelled and "slice_labels 0.300" in labelled
    assert "dropout 0.1 while training" in labelled and "dropout" not in card


def test_card_of_an_end_to_end_run_reports_its_steps_and_losses():
    card = training_markdown(_state(20), "medmpt train")
    assert "20 steps (160 study passes)" in card and "text 1.000" in card
    assert "20 end-to-end steps of batch 8" in provenance(_state(20), "medmpt train")


def test_a_card_section_whose_manifest_cannot_be_written_leaves_the_package_verifiable(
        random_package, tmp_path, monkeypatch):
    """The card and the manifest that pins it are two files: when the manifest's write fails,
    the old card goes back, so the package still verifies (and says what it said)."""
    import shutil

    import models.train.bundle as bundle
    from inference.package import load_package

    package = tmp_path / "pkg"
    shutil.copytree(random_package, package)
    card = (package / "MODEL_CARD.md").read_bytes()

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(bundle, "replace_manifest", refuse)
    with pytest.raises(PermissionError):
        bundle.set_model_card_section(package, "Evaluation", "new figures")
    assert (package / "MODEL_CARD.md").read_bytes() == card
    load_package(package)  # verifies every file's SHA-256
    monkeypatch.undo()
    bundle.set_model_card_section(package, "Evaluation", "new figures")
    assert "## Evaluation\nnew figures" in (package / "MODEL_CARD.md").read_text(encoding="utf-8")
    load_package(package)
