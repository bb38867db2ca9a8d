"""Official checkpoint conversion: exact key mapping, clear errors, package parity (tiny sizes)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from models import cli_convert
from models.convert import ConversionError, convert_state_dict
from models.medmpt.config import get_config

from .conftest import open_session
from .official_layout import Sizes, official_state_dict, write_vocab

TINY_SIZES = Sizes(width=192, depth=4, mlp=768, fusion_layers=2, fusion_ffn=768, text=192,
                   text_layers=2, text_ffn=768, vocab=300)


@pytest.mark.slow
def test_paper_checkpoint_maps_every_official_key_without_leftovers():
    state = official_state_dict(Sizes())
    conversion = convert_state_dict(state, "paper")
    model = conversion.model
    assert model.report_parameter_count() == 174_907_016
    assert set(conversion.ignored) == {"queue", "text_encoder_q", "vision_decoder", "vision_encoder_k"}
    loaded = model.state_dict()
    for key in ("vision_encoder_q.blocks.11.attn.qkv.weight", "vision_fusion_q.encoder.layers.1.linear2.bias",
                "text_decoder.bert.bert.encoder.layer.5.crossattention.self.value.weight",
                "text_decoder.bert.cls.predictions.bias"):
        assert torch.equal(loaded[key], state[f"module.{key}"]), key


def test_tied_lm_head_and_bias_come_from_the_checkpoint():
    state = official_state_dict(TINY_SIZES)
    model = convert_state_dict(state, "tiny").model
    head = model.text_decoder.bert.cls.predictions
    assert torch.equal(head.decoder.weight, state["module.text_decoder.bert.bert.embeddings.word_embeddings.weight"])
    assert torch.equal(head.decoder.bias, state["module.text_decoder.bert.cls.predictions.bias"])
    assert model.config.vocab_size == TINY_SIZES.vocab and model.config.heads == ()


def test_wrong_shape_is_reported_with_the_key_name():
    state = official_state_dict(TINY_SIZES)
    state["module.vision_encoder_q.blocks.1.attn.qkv.weight"] = torch.zeros(10, 192)
    with pytest.raises(ConversionError, match=r"module\.vision_encoder_q\.blocks\.1\.attn\.qkv\.weight.*\(10, 192\)"):
        convert_state_dict(state, "tiny")


def test_missing_key_is_reported_with_the_key_name():
    state = official_state_dict(TINY_SIZES)
    del state["module.vision_fusion_q.encoder.layers.1.norm2.bias"]
    with pytest.raises(ConversionError, match=r"1 key\(s\) missing.*vision_fusion_q\.encoder\.layers\.1\.norm2\.bias"):
        convert_state_dict(state, "tiny")


def test_checkpoint_of_another_model_is_refused():
    with pytest.raises(ConversionError, match="not a MedMPT report checkpoint"):
        convert_state_dict({"module.backbone.weight": torch.zeros(3)}, "paper")


def _args(tmp_path, checkpoint, **extra):
    vocab = tmp_path / "vocab.txt"
    write_vocab(vocab, TINY_SIZES.vocab)
    values = dict(checkpoint=checkpoint, vocab=vocab, out=tmp_path / "pkg", config="tiny", name="converted",
                  version="1.0.0", no_fp16=True, trust_pickle=False, force=False,
                  patch_relevance="rollout") | extra
    return argparse.Namespace(**values)


def test_cli_reports_an_unreadable_checkpoint_without_a_traceback(tmp_path, capsys):
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"not a checkpoint")
    assert cli_convert.run(_args(tmp_path, bad)) == 2
    assert "broken.pth is not a readable torch checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "pkg").exists()


def test_cli_will_not_overwrite_a_folder_unless_forced(tmp_path, capsys):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "notes.txt").write_text("mine")
    assert cli_convert.run(_args(tmp_path, tmp_path / "missing.pth")) == 2
    assert "is not empty" in capsys.readouterr().err
    assert (tmp_path / "pkg" / "notes.txt").read_text() == "mine"


def test_checkpoint_with_python_objects_needs_explicit_trust(tmp_path, capsys):
    checkpoint = tmp_path / "with-args.pth"
    torch.save({"model": official_state_dict(TINY_SIZES), "args": argparse.Namespace(lr=1e-4)}, checkpoint)
    assert cli_convert.run(_args(tmp_path, checkpoint)) == 2
    assert "rerun with --trust-pickle" in capsys.readouterr().err


@pytest.mark.slow
def test_converted_package_reproduces_the_converted_model(tmp_path, capsys, pixels):
    state = official_state_dict(TINY_SIZES, seed=3)
    checkpoint = tmp_path / "checkpoint.pth"
    torch.save({"model": state, "epoch": 5}, checkpoint)
    assert cli_convert.run(_args(tmp_path, checkpoint)) == 0
    printed = capsys.readouterr().out
    assert "ignored: queue, text_encoder_q, vision_decoder, vision_encoder_k" in printed
    package = tmp_path / "pkg"
    manifest = json.loads((package / "manifest.json").read_text())
    assert manifest["tokens"] == {"bos": 101, "eos": 102, "pad": 0, "unk": 100, "max_length": 120}
    assert manifest["diagnosis"] == [] and manifest["architecture"]["vocab_size"] == TINY_SIZES.vocab
    assert manifest["clinical_use"] is False and "checkpoint.pth" in manifest["provenance"]
    model = convert_state_dict(state, get_config("tiny")).model
    vision = open_session(package / "vision.onnx").run(None, {"pixel_values": pixels})
    with torch.no_grad():
        ref = model.encode(torch.from_numpy(pixels))
    np.testing.assert_allclose(vision[1], ref["scan_embedding"].numpy(), atol=1e-4)
    ids = np.array([[101, 104, 105]], dtype=np.int64)
    empty = np.zeros(vision[-2].shape[:3] + (0, vision[-2].shape[-1]), np.float32)
    logits = open_session(package / "decoder.onnx").run(
        ["logits"], {"input_ids": ids, "past_keys": empty, "past_values": empty,
                     "cross_keys": vision[-2], "cross_values": vision[-1]})[0]
    with torch.no_grad():
        torch_logits = model.text_decoder(torch.from_numpy(ids), ref["memory"]).logits.numpy()
    np.testing.assert_allclose(logits, torch_logits, atol=1e-4)


def test_an_official_checkpoint_converts_to_a_cls_attention_package(tmp_path, pixels):
    """`--patch-relevance cls-attention`: the package says so and its fused vision graph gives
    the converted model's scan embedding and CLS-attention heatmap."""
    state = official_state_dict(TINY_SIZES, seed=3)
    checkpoint = tmp_path / "checkpoint.pth"
    torch.save({"model": state}, checkpoint)
    assert cli_convert.run(_args(tmp_path, checkpoint, patch_relevance="cls-attention")) == 0
    package = tmp_path / "pkg"
    assert json.loads((package / "manifest.json").read_text())["architecture"]["patch_relevance"] == "cls-attention"
    model = convert_state_dict(state, get_config("tiny", patch_relevance="cls-attention")).model
    session = open_session(package / "vision.onnx")
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"pixel_values": pixels}), strict=True))
    with torch.no_grad():
        ref = model.encode(torch.from_numpy(pixels))
    for name in ("scan_embedding", "patch_relevance"):
        np.testing.assert_allclose(got[name], ref[name].numpy(), atol=1e-4, err_msg=name)
