"""`medmpt eval --card` writes the figures, the command that gives them and the reading of them
into the package's model card, and the package still verifies."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from inference.package import load_package
from models import cli_eval


def test_the_card_gets_the_table_the_command_and_the_notes(random_package: Path, tmp_path: Path, monkeypatch,
                                                            capsys) -> None:
    package = tmp_path / "pkg"
    shutil.copytree(random_package, package)
    notes = tmp_path / "notes.md"
    notes.write_text("Nodules are mostly missed.\n", encoding="utf-8")
    argv = ["--generate", "2", "--seed", "3", "--model", str(package), "--cache", str(tmp_path / "cache"),
            "--card", "--card-notes", str(notes)]
    monkeypatch.setattr(sys, "argv", ["medmpt", "eval", *argv])
    parser = argparse.ArgumentParser()
    cli_eval.add_arguments(parser)
    assert cli_eval.run(parser.parse_args(argv)) == 0
    card = (package / "MODEL_CARD.md").read_text(encoding="utf-8")
    section = card.split("## Evaluation\n", 1)[1]
    assert section.startswith(f"Command: `medmpt eval --generate 2 --seed 3 --model {package}`")
    assert "| finding precision / recall / F1 |" in section and "2 held-out phantoms of seed 3" in section
    assert section.rstrip().endswith("Nodules are mostly missed.")
    load_package(package)  # the new card is pinned in the manifest
    # run again: the section is replaced, not repeated
    assert cli_eval.run(parser.parse_args(argv)) == 0
    assert (package / "MODEL_CARD.md").read_text(encoding="utf-8").count("## Evaluation") == 1


def test_card_notes_need_the_card_flag(tmp_path: Path, capsys) -> None:
    parser = argparse.ArgumentParser()
    cli_eval.add_arguments(parser)
    notes = tmp_path / "n.md"
    notes.write_text("x")
    assert cli_eval.run(parser.parse_args(["--generate", "2", "--card-notes", str(notes)])) == 2
    assert "--card-notes needs --card" in capsys.readouterr().err


def test_compare_gives_the_paired_f1_difference_and_refuses_other_studies(random_package: Path, tmp_path: Path,
                                                                          capsys) -> None:
    """`--json` keeps each study's finding counts; `--compare` with an evaluation of the same
    studies prints the paired F1 difference, with other studies it says so and exits 2."""
    import json

    parser = argparse.ArgumentParser()
    cli_eval.add_arguments(parser)
    common = ["--model", str(random_package), "--cache", str(tmp_path / "cache")]
    first, other = tmp_path / "first.json", tmp_path / "other.json"
    assert cli_eval.run(parser.parse_args(["--generate", "3", "--seed", "3", *common, "--json", str(first)])) == 0
    figures = json.loads(first.read_text(encoding="utf-8"))
    from models.train.evaluate import held_out_seed

    assert sorted(figures["study_findings"]) == [f"phantom-{held_out_seed(3, i)}" for i in range(3)]
    assert all(len(counts) == 3 for counts in figures["study_findings"].values())  # TP, FP, FN
    assert "F1 95 % interval" in capsys.readouterr().out
    assert cli_eval.run(parser.parse_args(["--generate", "3", "--seed", "3", *common, "--compare", str(first)])) == 0
    out = capsys.readouterr().out
    assert "finding F1 against first.json: +0.0 points (paired bootstrap over the 3 studies" in out
    assert "exact finding F1 against first.json: +0.0 points" in out
    older = tmp_path / "older.json"  # from before the exact counts were kept: the F1 line alone
    older.write_text(json.dumps({k: v for k, v in figures.items() if k != "study_exact_findings"}), encoding="utf-8")
    assert cli_eval.run(parser.parse_args(["--generate", "3", "--seed", "3", *common, "--compare", str(older)])) == 0
    out = capsys.readouterr().out
    assert "finding F1 against older.json" in out and "exact finding F1 against" not in out
    assert cli_eval.run(parser.parse_args(["--generate", "2", "--seed", "4", *common, "--json", str(other)])) == 0
    capsys.readouterr()
    assert cli_eval.run(parser.parse_args(["--generate", "3", "--seed", "3", *common, "--compare", str(other)])) == 2
    assert "other.json scored other studies" in capsys.readouterr().err
    broken = tmp_path / "broken.json"
    broken.write_text('{"study_findings": {', encoding="utf-8")
    assert cli_eval.run(parser.parse_args(["--generate", "3", "--seed", "3", *common, "--compare", str(broken)])) == 2
    assert "broken.json is not valid JSON" in capsys.readouterr().err
