"""Graph variants timed side by side on one device (a GPU aid): the vision graph exported four
ways, and the fixed-shape decoder step laid out four ways (now, and three earlier layouts).

    PYTHONPATH=. python3 scripts/graph_variants.py paper|tiny cuda|cpu [REPEATS]

The slice encoder's arithmetic is the same in the first three; they differ in how the ONNX
graph lays it out, which is what a GPU pays for between the matrix products (H200 profile,
docs/measurements/h200-2026-11-27/run1/profile.txt: Transpose, Gather, Add, ReduceMean):
  now       the exporter's graph (models.medmpt.model.VisionGraph): one qkv product, split by
            Gather after a 5-D permute;
  split     q, k and v from three products (no Gather, no 5-D permute);
  mha       split, and each block's attention output from ONNX Runtime's fused
            MultiHeadAttention (com.microsoft; flash or memory-efficient attention on CUDA); the
            attention probabilities the rollout needs are computed beside it (the last block:
            only its CLS row, all the rollout reads of it);
  cls-only  mha without the rollout: the relevance is the last block's CLS attention alone.
            Not the same explanation; it shows what the rollout costs;
  cls-attention  what the exporter writes for a package with that relevance (q, k, v split
            from one product; models.export.fused_vision).
For each: graph nodes (fp16, after ONNX Runtime's fusions), the largest difference of every
output from `now` (fp32 graphs on the CPU), and the fp16 graph's median ms per 32-slice scan
with its batch fixed at one scan, the pixels already on the device and, on CUDA, replayed as a
CUDA graph (as the workstation runs it); then a torch reference. The decoder part exports the
fixed-shape step four ways from the same weights (now; q, k and v from three products, as
before 2026-11-28; that and each layer's cache gathered apart, as before 2026-11-27 evening;
that and heads split by transposes, as before e52bad8) and replays
each 120 times on its own buffers (CUDA graphs on CUDA): ms per step and the largest logit
difference. Prints only; asserts nothing.
"""

from __future__ import annotations

import collections
import math
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch.nn import functional as F

from inference.decoder_step import STATIC_CACHE_SWAP
from inference.ort_runtime import FixedBinding, GraphSession
from models.export.fused_vision import FusedAttention
from models.export.onnx_export import (
    FP16_FLOAT32_IO,
    convert_fp16,
    export_decoder_static,
    export_vision,
)
from models.medmpt.decoder import DecoderStep, StaticDecoderStep, cross_keys_values
from models.medmpt.model import VisionGraph, build_model
from models.medmpt.vision import cls_attention


def _heads(x: torch.Tensor, n: int, t: int, heads: int) -> torch.Tensor:
    return x.reshape(n, t, heads, x.shape[-1] // heads).transpose(1, 2)


def split_qkv(model) -> None:
    """Give each block q, k and v weights apart, as plain tensors taken before tracing: the
    tracer makes them initializers (no Slice or Gather of the packed weight in the graph)."""
    with torch.no_grad():
        for block in model.vision_encoder_q.blocks:
            w, b = block.attn.qkv.weight, block.attn.qkv.bias
            block.attn.__dict__["_split"] = list(zip(w.clone().chunk(3), b.clone().chunk(3), strict=True))


def _qkv(attn, x: torch.Tensor):
    return [F.linear(x, w, b) for w, b in attn.__dict__["_split"]]


def _split_block(block, tokens, variant: str, last: bool):
    """One pre-norm block, q, k and v apart -> (tokens, attention probabilities)."""
    attn, heads = block.attn, block.attn.heads
    n, t, d = tokens.shape
    q, k, v = _qkv(attn, block.norm1(tokens))
    scale = 1.0 / math.sqrt(d // heads)
    qh, kh = _heads(q, n, t, heads), _heads(k, n, t, heads)
    if variant == "split":
        weights = torch.softmax(qh @ kh.transpose(-2, -1) * scale, dim=-1)
        out = (weights @ _heads(v, n, t, heads)).transpose(1, 2).reshape(n, t, d)
    else:
        out = FusedAttention.apply(q, k, v, heads)
        if last:  # the rollout reads only the CLS row of the last block
            weights = torch.softmax(qh[:, :, :1] @ kh.transpose(-2, -1) * scale, dim=-1)
        elif variant == "mha":
            weights = torch.softmax(qh @ kh.transpose(-2, -1) * scale, dim=-1)
        else:
            weights = None
    tokens = tokens + attn.proj(out)
    return tokens + block.mlp(block.norm2(tokens)), weights


def _rollout(maps: list[torch.Tensor], tokens: int) -> torch.Tensor:
    """models.medmpt.vision.attention_rollout, with the last map given as its CLS row only.
    `tokens` must be a Python int (the config's), so the identity is a constant of the graph,
    not an EyeLike that ONNX Runtime runs on the CPU."""
    identity = torch.eye(tokens, dtype=maps[-1].dtype)
    row = 0.5 * maps[-1].mean(dim=1)[:, 0] + 0.5 * identity[0]
    row = row / row.sum(dim=-1, keepdim=True)
    for weights in reversed(maps[:-1]):
        mixed = 0.5 * weights.mean(dim=1) + 0.5 * identity
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        row = torch.bmm(row.unsqueeze(1), mixed).squeeze(1)
    patches = row[:, 1:]
    return patches / patches.sum(dim=-1, keepdim=True)


class VariantVisionGraph(VisionGraph):
    """VisionGraph with the slice encoder laid out as `variant` (split, mha, cls-only)."""

    def __init__(self, model, variant: str) -> None:
        super().__init__(model)
        self.variant = variant

    def forward(self, pixel_values: torch.Tensor):
        model, config = self.model, self.model.config
        b, s = pixel_values.shape[:2]
        encoder = model.vision_encoder_q
        x = pixel_values.reshape(b * s, *pixel_values.shape[2:])
        tokens = encoder.patch_embed(x)
        n = tokens.shape[0]
        tokens = torch.cat([encoder.cls_token.expand(n, -1, -1), tokens], dim=1) + encoder.pos_embed
        maps = []
        for i, block in enumerate(encoder.blocks):
            tokens, weights = _split_block(block, tokens, self.variant, i == len(encoder.blocks) - 1)
            maps.append(weights)
        slice_embeddings = encoder.norm(tokens)[:, 0]
        scan, slice_tokens = model.vision_fusion_q(slice_embeddings.reshape(b, s, -1))
        if self.variant == "cls-only":
            relevance = cls_attention(maps[-1])
        else:
            relevance = _rollout(maps, config.grid * config.grid + 1)
        relevance = relevance.reshape(b, s, config.grid, config.grid)
        keys, values = cross_keys_values(model.text_decoder, model.vision_to_text(slice_tokens))
        probs = [torch.softmax(head(scan), dim=-1) for head in model.diagnosis_heads.values()]
        return (slice_tokens, scan, *probs, relevance, keys, values)


def export_variant(model, variant: str, path: Path) -> Path:
    if variant == "now":
        return export_vision(model, path)
    if variant == "cls-attention":  # the exporter's graph for such packages (models.export.fused_vision)
        config = replace(model.config, patch_relevance="cls-attention")
        same = build_model(config, seed=None)
        same.load_state_dict(model.state_dict())
        return export_vision(same.eval(), path)
    split_qkv(model)
    return export_vision(model, path, VariantVisionGraph(model, variant))


def runtime_nodes(path: Path, device: str) -> str:
    """Nodes ONNX Runtime runs for the graph after its optimisations, batch fixed at one scan."""
    options = ort.SessionOptions()
    options.add_free_dimension_override_by_name("batch", 1)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(path.with_suffix(".optimized.onnx"))
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
    ort.InferenceSession(str(path), options, providers=providers)
    ops = collections.Counter(n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node)
    top = ", ".join(f"{op} {count}" for op, count in ops.most_common(8))
    return f"{sum(ops.values())} run ({top})"


def timed(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def torch_reference(model, pixels: np.ndarray, device: str, repeats: int) -> None:
    """The same model in torch fp16 autocast: as exported (explicit attention, rollout) and with
    fused attention and the last block's CLS row only (cls-only)."""
    if device != "cuda":
        return
    model = model.to(device)
    split_qkv(model)  # again, on the device
    x = torch.from_numpy(pixels).to(device)
    for name, graph in (("torch now", VisionGraph(model)), ("torch cls-only", VariantVisionGraph(model, "cls-only"))):
        def run(graph=graph):
            with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16):
                graph(x)
            torch.cuda.synchronize()
        print(f"{name:14s} {timed(run, repeats):8.2f} ms/scan (fp16 autocast, eager)", flush=True)
    model.to("cpu")


# Nodes that launch no kernel (constants, and views of a buffer in ONNX Runtime).
NO_KERNEL = ("Constant", "Identity", "Reshape", "Squeeze", "Unsqueeze")


def _layer_by_layer(stacked: torch.Tensor) -> list[torch.Tensor]:
    return [stacked[index] for index in range(stacked.shape[0])]  # a Gather per layer


def _reordered_layer_by_layer(self, cache: torch.Tensor, beam_index: torch.Tensor) -> list[torch.Tensor]:
    return [layer.index_select(0, beam_index) for layer in _layer_by_layer(cache)]  # and one more each


def decoder_ab(model, tmp: Path, device: str, repeats: int) -> None:
    """Fixed-shape decoder step: now (q, k, v from one product with the scale in the query
    weights, heads by reshapes, the cache reordered once for all layers and split), against q, k
    and v from three products and the scores divided (before 2026-11-28), that with each layer's
    cache gathered apart too (before 2026-11-27 evening), and with heads split by transposes too
    (before e52bad8). Each layout keeps the earlier ones' changes."""
    cfg = model.config
    results = {}
    for name in ("now", "qkv-apart", "layer-gathers", "transposes"):
        if name == "qkv-apart":  # as before 2026-11-28
            StaticDecoderStep._self_qkv, StaticDecoderStep._cross_query = DecoderStep._self_qkv, DecoderStep._cross_query
        if name == "layer-gathers":  # as before 2026-11-27 (evening)
            StaticDecoderStep._layers_of = staticmethod(_layer_by_layer)
            StaticDecoderStep._reordered_layers = _reordered_layer_by_layer
        if name == "transposes":
            StaticDecoderStep._split, StaticDecoderStep._join = DecoderStep._split, DecoderStep._join
        fp32 = export_decoder_static(model, tmp / f"static-{name}.onnx", batch=2, capacity=120)
        fp16 = convert_fp16(fp32, tmp / f"static-{name}.fp16.onnx", FP16_FLOAT32_IO["decoder_static"],
                            fuse=(cfg.text_heads, cfg.text_width))
        graph = GraphSession(fp16, device, cuda_graph=device == "cuda")
        fixed = FixedBinding(graph, STATIC_CACHE_SWAP)
        rng = np.random.default_rng(1)
        for meta in graph.session.get_inputs():
            if meta.name in ("cross_keys", "cross_values"):
                fixed.set(meta.name, rng.normal(0, 1, meta.shape))
        fixed.set("input_ids", np.full((2, 1), 5))
        fixed.set("beam_index", np.arange(2))
        logits = []

        def step(fixed=fixed, position=[0]):  # noqa: B006 - a counter across calls
            fixed.set("position", np.array([position[0] % 120]))
            fixed.run()
            position[0] += 1

        for _ in range(3):
            step()
        logits.append(fixed.get("logits"))
        ms = [timed(step, 120) for _ in range(max(1, repeats // 10))]
        results[name] = (statistics.median(ms), logits[0], sum(
            node.op_type not in NO_KERNEL for node in onnx.load(str(fp16)).graph.node))
        graph.terminate()
        del fixed, graph
    base = results["now"][1]
    for name, (ms, logits, nodes) in results.items():
        print(f"decoder_static {name:13s} {ms:6.3f} ms/step (120-step replays)  {nodes} nodes besides reshapes  "
              f"logits vs now {float(np.abs(logits - base).max()):.2e}", flush=True)


def main() -> None:
    config, device = sys.argv[1], sys.argv[2]
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    model = build_model(config, seed=0)
    cfg = model.config
    tmp = Path(tempfile.mkdtemp())
    pixels = np.random.default_rng(0).uniform(-1, 1, (1, cfg.num_slices, 3, cfg.image_size, cfg.image_size))
    pixels = pixels.astype(np.float32)
    reference = None
    print(f"{config} vision, {device}: {ort.__version__}", flush=True)
    for variant in ("now", "split", "mha", "cls-only", "cls-attention"):
        try:
            start = time.perf_counter()
            fp32 = export_variant(model, variant, tmp / f"{variant}.onnx")
            fp16 = convert_fp16(fp32, tmp / f"{variant}.fp16.onnx", ("pixel_values",),
                                fuse=(cfg.vision_heads, cfg.vision_width))
            made = time.perf_counter() - start
            cpu = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
            names = [o.name for o in cpu.get_outputs()]
            outs = dict(zip(names, cpu.run(None, {"pixel_values": pixels}), strict=True))
            if reference is None:
                reference = outs
            diff = {n: float(np.abs(outs[n] - reference[n]).max()) for n in names}
            worst = max((k for k in diff if k != "patch_relevance"), key=diff.get)
            nodes = len(onnx.load(str(fp16)).graph.node)
            graph = GraphSession(fp16, device, cuda_graph=device == "cuda", fixed_dims={"batch": 1})
            fixed = FixedBinding(graph, {})
            fixed.set("pixel_values", pixels)
            ms = timed(fixed.run, repeats)
            half = fixed.outputs()
            half_diff = max(float(np.abs(half[n] - outs[n]).max()) for n in names)
            print(f"{variant:9s} {ms:8.2f} ms/scan (fp16, median of {repeats})  {nodes:4d} nodes  "
                  f"vs now (fp32): relevance {diff['patch_relevance']:.2e}, other outputs {diff[worst]:.2e} "
                  f"({worst}); fp16 vs fp32 {half_diff:.2e}; export {made:.0f} s", flush=True)
            graph.terminate()
            del fixed, graph
            print(f"          nodes: {runtime_nodes(fp16, device)}", flush=True)
        except Exception as exc:  # noqa: BLE001 - report and go on to the next variant
            print(f"{variant:9s} failed: {type(exc).__name__}: {str(exc)[:300]}", flush=True)
    for part in (decoder_ab, torch_reference):
        try:
            part(model, tmp if part is decoder_ab else pixels, device, repeats)
        except Exception as exc:  # noqa: BLE001
            print(f"{part.__name__} failed: {type(exc).__name__}: {str(exc)[:300]}", flush=True)


if __name__ == "__main__":
    main()
