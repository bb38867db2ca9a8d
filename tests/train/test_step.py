"""A training step on a tiny batch lowers the loss; the CLIs refuse bad arguments clearly."""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from models.medmpt.model import build_model  # noqa: E402
from models.train.config import TrainSettings, phantom_config  # noqa: E402
from models.train.data import input_grey  # noqa: E402
from models.train.step import compute_losses, make_batch, train_step  # noqa: E402
from models.train.targets import study_targets  # noqa: E402


def _tiny_model(vocab_size: int):
    config = replace(phantom_config(vocab_size), vision_width=32, vision_depth=1, vision_heads=2,
                     vision_mlp=64, fusion_layers=1, fusion_heads=2, fusion_ffn=64, text_width=32,
                     text_layers=1, text_heads=2, text_ffn=64)
    return build_model(config, seed=0)


@pytest.mark.slow
def test_training_steps_lower_every_loss_term(small_studies, report_tokenizer):
    torch.manual_seed(0)
    model = _tiny_model(report_tokenizer.get_vocab_size())
    grey = np.stack([input_grey(g, model.config.input_channels) for g, _, _ in small_studies])
    records = [r for _, r, _ in small_studies]
    targets = [study_targets(r, report_tokenizer, model.config.grid) for r in records]
    batch = make_batch(grey, records, targets, pad=0)
    settings = TrainSettings()
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.eval()
    with torch.no_grad():
        before = {k: float(v) for k, v in compute_losses(model, batch, settings).items()}
    for _ in range(6):
        train_step(model, optimiser, batch, settings)
    model.eval()
    with torch.no_grad():
        after = {k: float(v) for k, v in compute_losses(model, batch, settings).items()}
    assert after["loss"] < 0.9 * before["loss"]
    assert after["text"] < before["text"] and after["diagnosis"] < before["diagnosis"]


def _parse(module, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(argv)


def test_train_cli_refuses_bad_arguments(tmp_path, capsys):
    from models import cli_train

    assert cli_train.run(_parse(cli_train, ["--out", str(tmp_path), "--cases", "2"])) == 2
    assert "at least the batch size" in capsys.readouterr().err
    assert cli_train.run(_parse(cli_train, ["--out", str(tmp_path), "--seed", "5000"])) == 2
    assert "--seed" in capsys.readouterr().err
    assert cli_train.run(_parse(cli_train, ["--out", str(tmp_path), "--paste-share", "1.5"])) == 2
    assert "--paste-share" in capsys.readouterr().err
    assert cli_train.run(_parse(cli_train, ["--out", str(tmp_path), "--vision-width", "100"])) == 2
    assert "--vision-width" in capsys.readouterr().err
    assert cli_train.run(_parse(cli_train, ["--out", str(tmp_path), "--slice-label-weight", "-1"])) == 2
    assert "--slice-label-weight" in capsys.readouterr().err
    assert cli_train.run(_parse(cli_train, ["--out", str(tmp_path), "--finetune-dropout", "1"])) == 2
    assert "--finetune-dropout" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: only the two patch grids the exporter knows
        _parse(cli_train, ["--out", str(tmp_path), "--patch-size", "8"])


def test_the_patch_size_sets_the_grid_of_the_phantom_model():
    assert phantom_config(300).grid == 7
    assert phantom_config(300, patch_size=16).grid == 14  # the paper's 14 x 14 heatmaps


def test_a_wider_slice_encoder_keeps_32_wide_heads_and_runs():
    config = phantom_config(300, patch_size=16, vision_width=128)
    assert (config.vision_heads, config.vision_mlp, config.fusion_ffn) == (4, 512, 512)
    with torch.no_grad():
        out = build_model(config, seed=0).encode(torch.zeros(1, 32, 3, 224, 224))
    assert out["slice_tokens"].shape == (1, 32, 128)
    assert out["patch_relevance"].shape == (1, 32, 14, 14)
    for width in (100, 0):
        with pytest.raises(ValueError, match="multiple of 32"):
            phantom_config(300, vision_width=width)


def test_eval_cli_refuses_missing_data_and_models(tmp_path, capsys):
    from models import cli_eval

    assert cli_eval.run(_parse(cli_eval, [])) == 2
    assert "DATA or --generate" in capsys.readouterr().err
    assert cli_eval.run(_parse(cli_eval, [str(tmp_path / "absent")])) == 2
    assert "not a folder" in capsys.readouterr().err
    assert cli_eval.run(_parse(cli_eval, ["--generate", "1", "--model", str(tmp_path)])) == 2
    assert "cannot load the model package" in capsys.readouterr().err
    # both sources at once: which one was scored would be a guess, so neither is
    assert cli_eval.run(_parse(cli_eval, [str(tmp_path), "--generate", "5"])) == 2
    assert "not both" in capsys.readouterr().err
    assert cli_eval.run(_parse(cli_eval, ["--generate", "5", "--seed", "1000"])) == 2
    assert "--seed must be in 0..999" in capsys.readouterr().err
