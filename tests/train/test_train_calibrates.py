"""`medmpt train` ends with a calibrated package: after export it fits the heads' temperatures on
held-out phantoms of the calibration seed (here through --export-only on a fresh checkpoint)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

pytest.importorskip("torch")


def test_export_then_calibrate_writes_a_calibrated_package_that_verifies(tmp_path: Path, capsys) -> None:
    from inference.package import load_package
    from models import cli_train
    from models.train.config import CALIBRATION_SEED, TrainSettings
    from models.train.loop import Trainer

    work = tmp_path / "work"
    Trainer(TrainSettings(cases=8, epochs=0), work, log=lambda m: None).save()  # an untrained checkpoint
    parser = argparse.ArgumentParser()
    cli_train.add_arguments(parser)
    out = tmp_path / "pkg"
    args = parser.parse_args(["--out", str(out), "--work", str(work), "--cases", "8", "--epochs", "0",
                              "--export-only", "--calibrate", "20"])
    assert cli_train.run(args) == 0
    printed = capsys.readouterr().out
    assert f"calibrated on 20 held-out phantoms of seed {CALIBRATION_SEED}" in printed
    heads = load_package(out).diagnosis_heads  # every file, the re-pinned card included, verifies
    assert all(h.calibration and h.calibration["seed"] == CALIBRATION_SEED and h.temperature >= 1.0 for h in heads)
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "## Training" in card and "## Calibration" in card
    assert (work / "calibration").is_dir()  # the phantoms are kept for the next export


def test_too_few_calibration_phantoms_are_refused(tmp_path: Path, capsys) -> None:
    from models import cli_train

    parser = argparse.ArgumentParser()
    cli_train.add_arguments(parser)
    assert cli_train.run(parser.parse_args(["--out", str(tmp_path), "--pretrain-steps", "5", "--calibrate", "5"])) == 2
    assert "--calibrate needs at least 20" in capsys.readouterr().err
