"""`medmpt calibrate` fits the heads' temperatures on held-out phantoms into a package that still
verifies, never on the evaluation's seed, and --check reports them on other studies."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from inference.package import load_package
from models import cli_calibrate


def _parse(args: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli_calibrate.add_arguments(parser)
    return parser.parse_args(args)


def test_refuses_the_evaluation_seed_and_bad_input(tmp_path: Path, capsys) -> None:
    assert cli_calibrate.run(_parse(["--generate", "50", "--seed", "0"])) == 2
    assert "seed 0 holds the evaluation" in capsys.readouterr().err
    assert cli_calibrate.run(_parse([])) == 2
    assert "DATA or --generate" in capsys.readouterr().err
    assert cli_calibrate.run(_parse(["--generate", "5"])) == 2
    assert "at least 20" in capsys.readouterr().err
    assert cli_calibrate.run(_parse(["--generate", "20", "--model", str(tmp_path)])) == 2
    assert "cannot load the model package" in capsys.readouterr().err


@pytest.fixture(scope="module")
def calibrated(random_package: Path, tmp_path_factory) -> tuple[Path, str]:
    package = tmp_path_factory.mktemp("calibrate") / "pkg"
    shutil.copytree(random_package, package)
    cache = package.parent / "phantoms"
    code = cli_calibrate.run(_parse(["--generate", "20", "--seed", "1", "--cache", str(cache), "--model", str(package)]))
    assert code == 0
    return package, str(cache)


def test_temperatures_land_in_a_package_that_still_verifies(calibrated, capsys) -> None:
    package, _ = calibrated
    loaded = load_package(package)  # every file, the re-pinned model card included, matches
    heads = {h.name: h for h in loaded.diagnosis_heads}
    assert set(heads) == {"covid_severity", "nodule", "effusion"}
    for head in heads.values():
        assert head.temperature >= 1.0
        record = head.calibration
        assert record["studies"] == 20 and record["data"] == "20 held-out phantoms" and record["seed"] == 1
        assert record["nll_after"] <= record["nll_before"] + 1e-9
    card = (package / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "## Calibration" in card and "| nodule |" in card
    manifest = json.loads((package / "manifest.json").read_text())
    assert all("temperature" in h for h in manifest["diagnosis"])


def test_check_reports_the_package_s_temperatures_on_the_evaluation_seed(calibrated, capsys) -> None:
    package, cache = calibrated
    before = (package / "manifest.json").read_bytes()
    capsys.readouterr()
    assert cli_calibrate.run(_parse(["--check", "--generate", "20", "--seed", "0", "--cache", cache,
                                     "--model", str(package)])) == 0
    out = capsys.readouterr().out
    temperatures = {h.name: h.temperature for h in load_package(package).diagnosis_heads}
    assert f"| nodule | {temperatures['nodule']:.2f} |" in out
    assert "20 held-out phantoms of seed 0" in out
    assert (package / "manifest.json").read_bytes() == before  # --check writes nothing



@pytest.mark.parametrize("failing", ["card", "manifest"])
def test_a_package_that_cannot_be_written_still_verifies_with_a_clear_message(
        calibrated, random_package: Path, tmp_path: Path, monkeypatch, capsys, failing: str) -> None:
    import types

    import models.calibrate
    import models.export.package

    _, cache = calibrated  # the seed-1 phantoms are rendered already
    package = tmp_path / "pkg"
    shutil.copytree(random_package, package)
    before = (package / "manifest.json").read_bytes()

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    if failing == "card":  # the first write
        monkeypatch.setattr(models.calibrate, "set_model_card_section", refuse)
    else:  # the last one: the manifest's atomic replace
        monkeypatch.setattr(models.export.package, "os", types.SimpleNamespace(replace=refuse))
    code = cli_calibrate.run(_parse(["--generate", "20", "--seed", "1", "--cache", cache, "--model", str(package)]))
    assert code == 2 and "cannot write the calibration" in capsys.readouterr().err
    if failing == "card":
        assert (package / "manifest.json").read_bytes() == before
    assert all(h.temperature == 1.0 for h in load_package(package).diagnosis_heads)  # verifies, uncalibrated


def test_a_two_class_head_seen_with_one_class_only_has_no_auc_not_a_zero_accuracy() -> None:
    import numpy as np

    from inference.calibration import calibration_figures
    from models.calibrate import format_table

    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])
    row = format_table({"effusion": calibration_figures(p, [0, 0, 0], 1.0)}).splitlines()[-1]
    assert "AUC n/a (one class only)" in row and "accuracy" not in row
