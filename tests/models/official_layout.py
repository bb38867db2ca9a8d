"""Official-checkpoint state dicts built from the reference's key list (section 9), not our model."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Sizes:
    width: int = 768
    depth: int = 12
    mlp: int = 3072
    fusion_layers: int = 2
    fusion_ffn: int = 3072
    text: int = 768
    text_layers: int = 6
    text_ffn: int = 3072
    vocab: int = 21128


def _ln(prefix: str, width: int) -> dict:
    return {f"{prefix}.weight": (width,), f"{prefix}.bias": (width,)}


def _lin(prefix: str, out: int, inp: int) -> dict:
    return {f"{prefix}.weight": (out, inp), f"{prefix}.bias": (out,)}


def vit_shapes(s: Sizes) -> dict:
    d = s.width
    shapes = {"cls_token": (1, 1, d), "pos_embed": (1, 197, d), "patch_embed.proj.weight": (d, 3, 16, 16),
              "patch_embed.proj.bias": (d,), **_ln("norm", d)}
    for n in range(s.depth):
        b = f"blocks.{n}"
        shapes |= {**_ln(f"{b}.norm1", d), **_lin(f"{b}.attn.qkv", 3 * d, d), **_lin(f"{b}.attn.proj", d, d),
                   **_ln(f"{b}.norm2", d), **_lin(f"{b}.mlp.fc1", s.mlp, d), **_lin(f"{b}.mlp.fc2", d, s.mlp)}
    return shapes


def fusion_shapes(s: Sizes) -> dict:
    d = s.width
    shapes = {"cls_token": (1, 1, d), "pos_embed.weight": (512, d), **_ln("layer_norm", d)}
    for n in range(s.fusion_layers):
        b = f"encoder.layers.{n}"
        shapes |= {f"{b}.self_attn.in_proj_weight": (3 * d, d), f"{b}.self_attn.in_proj_bias": (3 * d,),
                   **_lin(f"{b}.self_attn.out_proj", d, d), **_lin(f"{b}.linear1", s.fusion_ffn, d),
                   **_lin(f"{b}.linear2", d, s.fusion_ffn), **_ln(f"{b}.norm1", d), **_ln(f"{b}.norm2", d)}
    return shapes


def decoder_shapes(s: Sizes) -> dict:
    t, e = s.text, "bert.bert.embeddings"
    shapes = {f"{e}.word_embeddings.weight": (s.vocab, t), f"{e}.position_embeddings.weight": (512, t),
              f"{e}.token_type_embeddings.weight": (2, t), **_ln(f"{e}.LayerNorm", t),
              "bert.cls.predictions.bias": (s.vocab,), **_lin("bert.cls.predictions.transform.dense", t, t),
              **_ln("bert.cls.predictions.transform.LayerNorm", t),
              "bert.cls.predictions.decoder.weight": (s.vocab, t)}
    for n in range(s.text_layers):
        b = f"bert.bert.encoder.layer.{n}"
        for part in ("attention", "crossattention"):
            for proj in ("query", "key", "value"):
                shapes |= _lin(f"{b}.{part}.self.{proj}", t, t)
            shapes |= {**_lin(f"{b}.{part}.output.dense", t, t), **_ln(f"{b}.{part}.output.LayerNorm", t)}
        shapes |= {**_lin(f"{b}.intermediate.dense", s.text_ffn, t), **_lin(f"{b}.output.dense", t, s.text_ffn),
                   **_ln(f"{b}.output.LayerNorm", t)}
    return shapes


def official_state_dict(s: Sizes, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random values under the official names, with pretraining-only extras to be ignored."""
    g = torch.Generator().manual_seed(seed)
    parts = {"vision_encoder_q": vit_shapes(s), "vision_fusion_q": fusion_shapes(s),
             "vision_to_text": {"weight": (s.text, s.width), "bias": (s.text,)},
             "text_decoder": decoder_shapes(s)}
    state = {}
    for prefix, shapes in parts.items():
        for name, shape in shapes.items():
            state[f"module.{prefix}.{name}"] = torch.randn(shape, generator=g) * 0.02
    tied = "module.text_decoder.bert.cls.predictions.decoder.weight"
    state[tied] = state["module.text_decoder.bert.bert.embeddings.word_embeddings.weight"]
    for key in ("module.vision_encoder_q.blocks.0.norm1.weight", "module.vision_encoder_q.norm.weight"):
        state[key] = 1.0 + state[key]
    state["module.vision_encoder_k.cls_token"] = torch.zeros(1, 1, s.width)
    state["module.vision_decoder.mask_token"] = torch.zeros(1, 1, 512)
    state["module.text_encoder_q.bert.embeddings.word_embeddings.weight"] = torch.zeros(4, s.text)
    state["module.queue"] = torch.zeros(s.width, 8)
    state["module.text_decoder.bert.bert.embeddings.position_ids"] = torch.arange(512)[None]
    return state


def write_vocab(path, size: int) -> None:
    tokens = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens += ["肺", "结", "节", "。"] + [f"w{i}" for i in range(size)]
    path.write_text("\n".join(tokens[:size]) + "\n", encoding="utf-8")
