"""`medmpt train --slice-encoder PACKAGE`: a package's trained slice encoder, read back into torch.

What a user would notice: a report stage retrained on an existing package's slice encoder must see
the very encoder that package shipped (same heatmaps), a tampered or mismatched package must be
refused before an hour of rendering, and the new card must say where its encoder came from.
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import asdict, replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from inference.errors import PackageError  # noqa: E402
from models.medmpt.model import MedMPTReportModel  # noqa: E402
from models.testing import random_model_and_tokenizer  # noqa: E402
from models.train.bundle import provenance, training_markdown  # noqa: E402
from models.train.config import TrainSettings  # noqa: E402
from models.train.encoder_from_package import load_slice_encoder  # noqa: E402


def test_the_package_slice_encoder_is_read_back_exactly_and_nothing_else_changes(random_package):
    source, _ = random_model_and_tokenizer("tiny", seed=0)  # the package was exported from this model
    target, _ = random_model_and_tokenizer("tiny", seed=1)
    fusion_before = {k: v.clone() for k, v in target.vision_fusion_q.state_dict().items()}

    record = load_slice_encoder(target, random_package)

    theirs, ours = source.vision_encoder_q.state_dict(), target.vision_encoder_q.state_dict()
    assert set(theirs) == set(ours)
    for name in theirs:
        assert torch.equal(theirs[name], ours[name]), name
    for name, value in target.vision_fusion_q.state_dict().items():
        assert torch.equal(value, fusion_before[name]), f"{name} is not part of the slice encoder"
    assert record["package"] == "medmpt-tiny-random" and len(record["model_hash"]) == 64

    # the heatmaps the package draws come from the slice encoder alone: torch now draws the same
    pixels = np.random.default_rng(3).uniform(-1, 1, size=(1, 32, 3, 224, 224)).astype(np.float32)
    session = ort.InferenceSession(str(random_package / "vision.onnx"), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    relevance = dict(zip(names, session.run(None, {"pixel_values": pixels}), strict=True))["patch_relevance"]
    with torch.no_grad():
        mine = target.eval().encode(torch.from_numpy(pixels))["patch_relevance"].numpy()
    assert np.abs(relevance - mine).max() <= 1e-5


def test_a_package_with_another_encoder_shape_is_refused_naming_the_field(random_package):
    model, _ = random_model_and_tokenizer("tiny", seed=0)
    narrow = MedMPTReportModel(replace(model.config, vision_width=96, vision_heads=3, vision_mlp=384))
    with pytest.raises(ValueError, match="vision_width 192, this training run 96"):
        load_slice_encoder(narrow, random_package)


def test_a_tampered_package_is_refused_naming_the_file(random_package, tmp_path):
    package = tmp_path / "pkg"
    shutil.copytree(random_package, package)
    graph = package / "vision.onnx"
    data = bytearray(graph.read_bytes())
    data[-100] ^= 0xFF
    graph.write_bytes(bytes(data))
    model, _ = random_model_and_tokenizer("tiny", seed=1)
    before = model.vision_encoder_q.patch_embed.proj.weight.clone()
    with pytest.raises(PackageError, match="vision.onnx"):
        load_slice_encoder(model, package)
    assert torch.equal(model.vision_encoder_q.patch_embed.proj.weight, before)


def test_train_refuses_slice_encoder_with_stage_one_and_reports_a_bad_package_before_rendering(
        tmp_path, capsys, monkeypatch):
    from models import cli_train
    from models.train.data import StudyCache

    def no_rendering(*args, **kwargs):
        raise AssertionError("phantoms rendered before the package was checked")

    monkeypatch.setattr(StudyCache, "fill", no_rendering)

    parser = argparse.ArgumentParser()
    cli_train.add_arguments(parser)
    end_to_end = parser.parse_args(["--out", str(tmp_path / "o"), "--slice-encoder", str(tmp_path),
                                    "--epochs", "1"])
    assert cli_train.run(end_to_end) == 2
    assert "do not give --epochs" in capsys.readouterr().err
    for flag, value in (("--whole-studies", "3"), ("--pretrain-lr", "0")):
        bad = parser.parse_args(["--out", str(tmp_path / "o"), "--epochs", "0", "--pretrain-steps", "5", flag, value])
        assert cli_train.run(bad) == 2
        assert flag in capsys.readouterr().err
    # stage zero going on from a package's encoder is allowed: the package is checked first
    go_on = parser.parse_args(["--out", str(tmp_path / "o"), "--slice-encoder", str(tmp_path / "nowhere"),
                               "--pretrain-steps", "10", "--epochs", "0", "--finetune-steps", "5", "--cases", "8",
                               "--work", str(tmp_path / "work0")])
    assert cli_train.run(go_on) == 2
    assert "nowhere" in capsys.readouterr().err

    missing = parser.parse_args(["--out", str(tmp_path / "o"), "--slice-encoder", str(tmp_path / "nowhere"),
                                 "--epochs", "0", "--finetune-steps", "5", "--cases", "8",
                                 "--work", str(tmp_path / "work")])
    assert cli_train.run(missing) == 2
    err = capsys.readouterr().err
    assert "--slice-encoder" in err and "nowhere" in err


def test_the_card_says_where_the_slice_encoder_came_from():
    state = {
        "settings": asdict(TrainSettings()), "step": 0, "history": [],
        "encoder_source": {"package": "medmpt-tiny-phantom", "version": "0.1.0", "model_hash": "ab" * 32,
                           "vision_sha256": "cd" * 32,
                           "card_stage_zero": "Stage zero (models/train/slice_pretrain.py): 5000 steps; 58 min."},
        "finetune": {"steps": 4000, "batch_size": 32, "lr": 0.0005, "studies": 3000, "seconds": 1020.0,
                     "final": {"text": 0.2, "diagnosis": 0.2, "slices": 0.1}},
    }
    card = training_markdown(state, "medmpt train --slice-encoder P")
    assert "Slice encoder taken from package medmpt-tiny-phantom 0.1.0 (model hash " + "ab" * 32 in card
    assert "from its card: Stage zero (models/train/slice_pretrain.py): 5000 steps; 58 min." in card
    assert "4000 steps of batch 32" in card and "- Stage zero" not in card
    text = provenance(state, "medmpt train --slice-encoder P")
    assert text.startswith("Slice encoder taken from package medmpt-tiny-phantom 0.1.0")
    assert "Trained from random initialisation" not in text


def test_the_card_says_stage_zero_went_on_from_the_package_encoder_with_whole_studies():
    state = {
        "settings": asdict(TrainSettings()), "step": 0, "history": [],
        "encoder_source": {"package": "medmpt-tiny-phantom", "version": "0.1.0", "model_hash": "ab" * 32,
                           "vision_sha256": "cd" * 32, "card_stage_zero": "Stage zero: 5000 steps."},
        "pretrain": {"steps": 2500, "batch_size": 64, "lr": 0.0003, "focal_share": 0.25, "paste_share": 0.3,
                     "studies": 3000, "slices": 96000, "seconds": 1500.0, "whole_studies": 1, "study_weight": 1.0,
                     "study_paste": 0.5, "probe_steps": 200,
                     "final": {"loss": 1.0, "study": 0.3}},
        "finetune": {"steps": 4000, "batch_size": 32, "lr": 0.0005, "studies": 3000, "seconds": 1020.0,
                     "final": {"text": 0.2, "diagnosis": 0.2, "slices": 0.1}},
    }
    card = training_markdown(state, "medmpt train --slice-encoder P --pretrain-steps 2500 --whole-studies 1")
    assert "the start of this run's stage zero" in card and "no stage zero in this run" not in card
    assert "1 whole study" in card and "multiple-instance" in card and "50% of these studies" in card
    assert "25% of each batch's single slices drawn from slices holding a nodule" in card
    assert "first 200 steps, the encoder held still" in card
    assert "medmpt-tiny-phantom 0.1.0 as stage zero's start + 2500 slice-encoder steps" in card
    assert "frozen (no stage zero)" not in provenance(state, "c")


def test_train_will_not_put_a_package_encoder_over_one_the_work_folder_trained(tmp_path, capsys, random_package):
    from models import cli_train
    from models.train.loop import Trainer

    work = tmp_path / "work"
    trainer = Trainer(TrainSettings(cases=8, batch_size=8), work, log=lambda m: None)
    trainer.pretrain = {"steps": 10}  # as after a stage zero in this folder
    trainer.save()
    parser = argparse.ArgumentParser()
    cli_train.add_arguments(parser)
    args = parser.parse_args(["--out", str(tmp_path / "o"), "--slice-encoder", str(random_package), "--epochs", "0",
                              "--finetune-steps", "5", "--cases", "8", "--batch-size", "8", "--work", str(work)])
    assert cli_train.run(args) == 2
    assert "already holds a slice encoder" in capsys.readouterr().err
