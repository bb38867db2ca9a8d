"""The MedMPT report model (slice encoder, fusion, projection, decoder, diagnosis heads) in torch.

Attribute names match the official checkpoint (`vision_encoder_q`, `vision_fusion_q`,
`vision_to_text`, `text_decoder`). `VisionGraph` and `DecoderStep` are the two exported graphs.
Must not import app, ui or inference.
"""

from __future__ import annotations

import torch
from torch import nn

from models.medmpt.config import MedMPTConfig, get_config
from models.medmpt.decoder import DecoderStep, StaticDecoderStep, TextDecoder, cross_keys_values
from models.medmpt.vision import SliceEncoder, SliceFusion, patch_relevance

REPORT_PREFIXES = ("vision_encoder_q.", "vision_fusion_q.", "vision_to_text.", "text_decoder.")


class DiagnosisMLP(nn.Sequential):
    """Scan embedding -> Linear -> ReLU -> Linear -> class logits."""

    def __init__(self, width: int, classes: int) -> None:
        super().__init__(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, classes))


class MedMPTReportModel(nn.Module):
    """Report model plus diagnosis heads; `encode` runs the vision side, `decoder` the text."""

    def __init__(self, config: MedMPTConfig) -> None:
        super().__init__()
        self.config = config
        self.vision_encoder_q = SliceEncoder(config)
        self.vision_fusion_q = SliceFusion(config)
        self.vision_to_text = nn.Linear(config.vision_width, config.text_width)
        self.text_decoder = TextDecoder(config)
        self.diagnosis_heads = nn.ModuleDict(
            {head.name: DiagnosisMLP(config.vision_width, len(head.classes)) for head in config.heads}
        )

    def encode(self, pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, S, 3, H, W) -> slice tokens, scan embedding, memory, patch relevance, head logits."""
        b, s = pixel_values.shape[:2]
        flat = pixel_values.reshape(b * s, *pixel_values.shape[2:])
        slice_embeddings, maps = self.vision_encoder_q(flat)
        scan, tokens = self.vision_fusion_q(slice_embeddings.reshape(b, s, -1))
        grid = self.config.grid
        relevance = patch_relevance(maps, self.config.patch_relevance, tokens=grid * grid + 1).reshape(b, s, grid, grid)
        logits = {name: head(scan) for name, head in self.diagnosis_heads.items()}
        return {"slice_tokens": tokens, "scan_embedding": scan, "memory": self.vision_to_text(tokens),
                "patch_relevance": relevance, "diagnosis_logits": logits}

    def report_parameter_count(self) -> int:
        """Parameters of ViT + fusion + projection + decoder (tied LM head counted once)."""
        seen: dict[int, int] = {}
        for name, parameter in self.named_parameters():
            if name.startswith(REPORT_PREFIXES):
                seen[id(parameter)] = parameter.numel()
        return sum(seen.values())


class VisionGraph(nn.Module):
    """The exported vision graph: pixels -> all per-scan outputs of docs/model-package.md."""

    def __init__(self, model: MedMPTReportModel) -> None:
        super().__init__()
        self.model = model

    def output_names(self) -> list[str]:
        diag = [f"diag_{name}" for name in self.model.diagnosis_heads]
        return ["slice_tokens", "scan_embedding", *diag, "patch_relevance", "cross_keys", "cross_values"]

    def forward(self, pixel_values: torch.Tensor):
        out = self.model.encode(pixel_values)
        keys, values = cross_keys_values(self.model.text_decoder, out["memory"])
        probs = [torch.softmax(logit, dim=-1) for logit in out["diagnosis_logits"].values()]
        return (out["slice_tokens"], out["scan_embedding"], *probs, out["patch_relevance"], keys, values)


def build_model(config: MedMPTConfig | str = "tiny", seed: int | None = 0) -> MedMPTReportModel:
    """A report model in eval mode with seeded random weights."""
    if isinstance(config, str):
        config = get_config(config)
    if seed is not None:
        torch.manual_seed(seed)
    return MedMPTReportModel(config).eval()


def decoder_step(model: MedMPTReportModel) -> DecoderStep:
    """The exported decoder-step module (shares the model's weights)."""
    return DecoderStep(model.text_decoder).eval()


def static_decoder_step(model: MedMPTReportModel) -> StaticDecoderStep:
    """The exported fixed-shape decoder-step module for CUDA graphs (shares the weights)."""
    return StaticDecoderStep(model.text_decoder).eval()
