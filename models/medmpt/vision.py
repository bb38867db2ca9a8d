"""MedMPT vision side in torch: ViT slice encoder with explicit attention, rollout, slice fusion.

Parameter names follow the official checkpoint (timm-style ViT, nn.TransformerEncoder-style
fusion) so a converted state dict loads without renaming. Must not import app, ui or inference.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from models.medmpt.config import MedMPTConfig


def sincos_pos_embed_2d(width: int, grid: int) -> torch.Tensor:
    """2-D sine-cosine position table (1 + grid*grid, width) with a zero CLS row (MAE style)."""
    quarter = width // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    coords = torch.arange(grid, dtype=torch.float64)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    parts = []
    for axis in (xx.reshape(-1), yy.reshape(-1)):
        angles = axis[:, None] * omega[None, :]
        parts += [torch.sin(angles), torch.cos(angles)]
    table = torch.cat(parts, dim=1)
    table = F.pad(table, (0, width - table.shape[1]))
    return torch.cat([torch.zeros(1, width, dtype=torch.float64), table]).float()


STEM_CHANNELS = (16, 32, 64, 128, 256)  # of the convolutional stem's stride-2 stages, in order


class PatchEmbed(nn.Module):
    """Image -> patch tokens (N, grid * grid, D).

    `patch_stem` "linear": the paper's non-overlapping projection (conv kernel = stride = patch
    size). "conv": log2(patch size) 3 x 3 stride-2 convolutions with GELU (STEM_CHANNELS), then
    a 1 x 1 projection to the width: each token then sees a slightly larger, overlapping field
    and the stem's filters find small round objects wherever they lie in the patch.
    """

    def __init__(self, config: MedMPTConfig) -> None:
        super().__init__()
        if config.patch_stem == "linear":
            self.stem = None
            self.proj = nn.Conv2d(3, config.vision_width, config.patch_size, config.patch_size)
            return
        if config.patch_stem != "conv":
            raise ValueError(f"unknown patch stem {config.patch_stem!r} (linear or conv)")
        stages = int(math.log2(config.patch_size))
        if 2 ** stages != config.patch_size or stages > len(STEM_CHANNELS):
            raise ValueError(f"a convolutional stem needs a patch size of 2 .. {2 ** len(STEM_CHANNELS)}, "
                             f"a power of two, not {config.patch_size}")
        layers: list[nn.Module] = []
        channels = 3
        for out in STEM_CHANNELS[:stages]:
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1), nn.GELU()]
            channels = out
        self.stem = nn.Sequential(*layers)
        self.proj = nn.Conv2d(channels, config.vision_width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stem is not None:
            x = self.stem(x)
        return self.proj(x).flatten(2).transpose(1, 2)


class ViTAttention(nn.Module):
    """Multi-head self-attention with a fused qkv projection; returns the softmax weights too."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width, bias=True)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, t, d = x.shape
        qkv = self.qkv(x).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // self.heads), dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(n, t, d)
        return self.proj(out), weights


class Mlp(nn.Module):
    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class ViTBlock(nn.Module):
    """Pre-norm transformer block (LayerNorm eps from the config)."""

    def __init__(self, config: MedMPTConfig) -> None:
        super().__init__()
        width = config.vision_width
        self.norm1 = nn.LayerNorm(width, eps=config.vision_eps)
        self.attn = ViTAttention(width, config.vision_heads)
        self.norm2 = nn.LayerNorm(width, eps=config.vision_eps)
        self.mlp = Mlp(width, config.vision_mlp)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        attended, weights = self.attn(self.norm1(x))
        x = x + attended
        return x + self.mlp(self.norm2(x)), weights


class SliceEncoder(nn.Module):
    """ViT applied to single slices: (N, 3, H, W) -> final-normed CLS (N, D) and attention maps."""

    def __init__(self, config: MedMPTConfig) -> None:
        super().__init__()
        width = config.vision_width
        self.patch_embed = PatchEmbed(config)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        table = sincos_pos_embed_2d(width, config.grid)
        self.pos_embed = nn.Parameter(table.unsqueeze(0))
        self.blocks = nn.ModuleList(ViTBlock(config) for _ in range(config.vision_depth))
        self.norm = nn.LayerNorm(width, eps=config.vision_eps)
        nn.init.normal_(self.cls_token, std=0.02)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        tokens, maps = self.all_tokens(x)
        return tokens[:, 0], maps

    def all_tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Final-normed CLS and patch tokens (N, 1 + P, D) and each block's attention weights."""
        tokens = self.patch_embed(x)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        tokens = torch.cat([cls, tokens], dim=1) + self.pos_embed
        maps = []
        for block in self.blocks:
            tokens, weights = block(tokens)
            maps.append(weights)
        return self.norm(tokens), maps


def attention_rollout(maps: list[torch.Tensor], tokens: int | None = None) -> torch.Tensor:
    """CLS-row attention rollout (Abnar & Zuidema 2020) over patches: (N, P), rows sum to 1.

    Each layer's head-averaged attention is mixed with the identity (residual path) and
    renormalised; only the CLS row of the product is propagated, from the last layer down.
    `tokens` (1 + patches), when given, makes the identity a constant of an exported graph;
    taken from the maps' shape it becomes ConstantOfShape + EyeLike per layer, which ONNX
    Runtime runs on the CPU even in a CUDA session, a device-to-host copy each.
    """
    row = None
    size = maps[0].shape[-1] if tokens is None else tokens
    identity = torch.eye(size, dtype=maps[0].dtype, device=maps[0].device)
    for weights in reversed(maps):
        mixed = 0.5 * weights.mean(dim=1) + 0.5 * identity
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        row = mixed[:, 0] if row is None else torch.bmm(row.unsqueeze(1), mixed).squeeze(1)
    patches = row[:, 1:]
    return patches / patches.sum(dim=-1, keepdim=True)


def cls_attention(last_map: torch.Tensor) -> torch.Tensor:
    """The last block's CLS attention over patches, heads averaged: (N, P), rows sum to 1.
    `last_map` (N, heads, Q, 1 + P) needs only its CLS row (Q may be 1)."""
    patches = last_map.mean(dim=1)[:, 0, 1:]
    return patches / patches.sum(dim=-1, keepdim=True)


def patch_relevance(maps: list[torch.Tensor], method: str, tokens: int | None = None) -> torch.Tensor:
    """Each slice's in-plane relevance (N, P) by `method` (MedMPTConfig.patch_relevance)."""
    if method == "rollout":
        return attention_rollout(maps, tokens)
    if method == "cls-attention":
        return cls_attention(maps[-1])
    raise ValueError(f"unknown patch relevance {method!r} (rollout or cls-attention)")


class FusionSelfAttention(nn.Module):
    """Multi-head self-attention with nn.MultiheadAttention's parameter names (in_proj_*)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        qkv = qkv.reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        weights = torch.softmax(qkv[0] @ qkv[1].transpose(-2, -1) / math.sqrt(d // self.heads), -1)
        return self.out_proj((weights @ qkv[2]).transpose(1, 2).reshape(n, t, d))


class FusionLayer(nn.Module):
    """Post-norm encoder layer, ReLU FFN (nn.TransformerEncoderLayer's names and default eps)."""

    def __init__(self, config: MedMPTConfig) -> None:
        super().__init__()
        width = config.vision_width
        self.self_attn = FusionSelfAttention(width, config.fusion_heads)
        self.linear1 = nn.Linear(width, config.fusion_ffn)
        self.linear2 = nn.Linear(config.fusion_ffn, width)
        self.norm1 = nn.LayerNorm(width, eps=1e-5)
        self.norm2 = nn.LayerNorm(width, eps=1e-5)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.dropout(self.self_attn(x)))
        return self.norm2(x + self.dropout(self.linear2(self.dropout(F.relu(self.linear1(x))))))


class FusionStack(nn.Module):
    def __init__(self, config: MedMPTConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(FusionLayer(config) for _ in range(config.fusion_layers))


class SliceFusion(nn.Module):
    """Scan-level encoder: (B, S, D) slice embeddings -> scan embedding (B, D), slice tokens."""

    def __init__(self, config: MedMPTConfig) -> None:
        super().__init__()
        width = config.vision_width
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Embedding(config.fusion_positions, width)
        self.layer_norm = nn.LayerNorm(width, eps=config.fusion_eps)
        self.dropout = nn.Dropout(config.dropout)
        self.encoder = FusionStack(config)
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.pos_embed.weight, std=0.02)

    def forward(self, slices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cls = self.cls_token.expand(slices.shape[0], -1, -1)
        tokens = torch.cat([cls, slices], dim=1)
        tokens = tokens + self.pos_embed.weight[: tokens.shape[1]].unsqueeze(0)
        tokens = self.dropout(self.layer_norm(tokens))
        for layer in self.encoder.layers:
            tokens = layer(tokens)
        return tokens[:, 0], tokens[:, 1:]
