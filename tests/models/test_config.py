"""The report model's structure: published parameter count, configs, checkpoint naming."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from models.medmpt.config import MANIFEST_FIELDS, get_config  # noqa: E402
from models.medmpt.model import build_model  # noqa: E402


def test_paper_report_model_has_the_published_parameter_count():
    # Reference section 8: ViT + fusion + projection + decoder (tied LM head once) = 174.9 M.
    model = build_model("paper", seed=0)
    assert model.report_parameter_count() == 174_907_016
    decoder = model.text_decoder.bert
    assert decoder.cls.predictions.decoder.weight is decoder.bert.embeddings.word_embeddings.weight


def test_tiny_config_keeps_the_paper_structure_smaller():
    paper, tiny = get_config("paper"), get_config("tiny")
    assert tiny.vision_width < paper.vision_width and tiny.text_layers < paper.text_layers
    assert tiny.num_slices == paper.num_slices == 32 and tiny.grid == paper.grid == 14
    assert tiny.text_width % tiny.text_heads == 0
    assert tuple(tiny.architecture()) == MANIFEST_FIELDS


def test_unknown_config_name_is_refused_with_the_known_names():
    with pytest.raises(ValueError, match="paper, tiny"):
        get_config("huge")


def test_parameter_names_follow_the_official_checkpoint():
    names = set(build_model("tiny", seed=0).state_dict())
    for expected in (
        "vision_encoder_q.cls_token", "vision_encoder_q.pos_embed",
        "vision_encoder_q.patch_embed.proj.weight", "vision_encoder_q.blocks.3.attn.qkv.bias",
        "vision_encoder_q.blocks.0.mlp.fc2.weight", "vision_encoder_q.norm.weight",
        "vision_fusion_q.pos_embed.weight", "vision_fusion_q.layer_norm.bias",
        "vision_fusion_q.encoder.layers.1.self_attn.in_proj_weight",
        "vision_fusion_q.encoder.layers.0.self_attn.out_proj.weight",
        "vision_fusion_q.encoder.layers.0.linear1.weight", "vision_to_text.weight",
        "text_decoder.bert.bert.encoder.layer.1.crossattention.self.key.weight",
        "text_decoder.bert.bert.encoder.layer.0.attention.output.LayerNorm.weight",
        "text_decoder.bert.cls.predictions.transform.dense.weight",
        "text_decoder.bert.cls.predictions.bias",
    ):
        assert expected in names, expected
