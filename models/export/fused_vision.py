"""The slice encoder's attention as one fused operator in the exported vision graph.

With `patch_relevance = "cls-attention"` the vision graph needs no block's full attention
probabilities, only the last block's CLS row. Each block's attention then exports as ONNX
Runtime's MultiHeadAttention (com.microsoft; flash or memory-efficient attention on CUDA, no
(32 x heads x 197 x 197) probabilities written, no head Transposes), and the last block also
computes its CLS row apart. The `paper` vision graph on an H200: 4.3 ms a scan against 7.9 ms
with the rollout's explicit attention (docs/measurements/h200-2026-11-27b). Used only while
exporting: `fused_attention(model)` swaps the blocks' attention for the export and restores it;
the module tree, and so the weights' scope names (models.train.encoder_from_package), stay the
same. Must not import app, ui or inference.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator

import torch
from torch.nn import functional as F

from models.medmpt.model import MedMPTReportModel


class FusedAttention(torch.autograd.Function):
    """softmax(q k^T / sqrt(dh)) v on (N, T, D) q, k, v; exported as one MultiHeadAttention."""

    @staticmethod
    def forward(ctx, q, k, v, heads: int):  # noqa: ARG004 - autograd's signature
        n, t, d = q.shape
        split = [x.reshape(n, t, heads, d // heads).transpose(1, 2) for x in (q, k, v)]
        return F.scaled_dot_product_attention(*split).transpose(1, 2).reshape(n, t, d)

    @staticmethod
    def symbolic(g, q, k, v, heads: int):
        out = g.op("com.microsoft::MultiHeadAttention", q, k, v, num_heads_i=heads)
        out.setType(q.type())
        return out


def _fused_forward(self, x: torch.Tensor, cls_row: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """ViTAttention.forward with fused attention; the CLS row of the probabilities if `cls_row`."""
    n, t, d = x.shape
    q, k, v = self.qkv(x).chunk(3, dim=-1)
    out = FusedAttention.apply(q, k, v, self.heads)
    weights = None
    if cls_row:
        dh = d // self.heads
        first = q[:, :1].reshape(n, 1, self.heads, dh).transpose(1, 2)
        keys = k.reshape(n, t, self.heads, dh).transpose(1, 2)
        weights = torch.softmax(first @ keys.transpose(-2, -1) / math.sqrt(dh), dim=-1)
    return self.proj(out), weights


@contextlib.contextmanager
def fused_attention(model: MedMPTReportModel) -> Iterator[None]:
    """Within: the slice encoder's blocks attend through FusedAttention and return attention
    weights for the last block's CLS row only (what `cls-attention` relevance reads)."""
    if model.config.patch_relevance != "cls-attention":
        raise ValueError("fused attention leaves only the last block's CLS attention: "
                         f"it cannot give {model.config.patch_relevance!r} relevance")
    blocks = list(model.vision_encoder_q.blocks)
    for index, block in enumerate(blocks):
        cls_row = index == len(blocks) - 1
        block.attn.forward = functools.partial(_fused_forward, block.attn, cls_row=cls_row)
    try:
        yield
    finally:
        for block in blocks:
            del block.attn.forward  # the class's forward again
