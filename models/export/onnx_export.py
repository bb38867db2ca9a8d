"""Export MedMPT's vision and decoder-step graphs to ONNX (fp32) and convert them to fp16.

Uses the TorchScript-based `torch.onnx.export(dynamo=False)`, which keeps the KV-cache
lengths dynamic. Must not import app, ui or inference.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import onnx
import onnx_ir
import torch
from onnx_ir.passes.common import TopologicalSortPass
from onnxruntime.transformers.float16 import convert_float_to_float16
from onnxruntime.transformers.optimizer import optimize_model

from models.export.fused_vision import fused_attention
from models.medmpt.model import MedMPTReportModel, VisionGraph, decoder_step, static_decoder_step

OPSET = 17
DECODER_INPUTS = ["input_ids", "past_keys", "past_values", "cross_keys", "cross_values"]
DECODER_OUTPUTS = ["logits", "present_keys", "present_values", "cross_attention"]
STATIC_DECODER_INPUTS = ["input_ids", "position", "beam_index", "cache_keys", "cache_values",
                         "cross_keys", "cross_values"]
STATIC_DECODER_OUTPUTS = ["logits", "next_cache_keys", "next_cache_values", "cross_attention",
                          "top_logprobs", "top_ids"]
# Kept in float32 inside fp16 graphs (inputs/outputs stay float16): numerically sensitive ops.
# Not Softmax or ReduceMean: ONNX Runtime's CUDA kernels accumulate in float32 themselves, and
# two Casts around each cost more than the operator (H200, 2026-11-27: README, "On a GPU").
# LogSoftmax and TopK: the fixed-shape decoder's log-probabilities, summed over a whole report.
FP16_KEEP_FP32 = ["LayerNormalization", "Pow", "Sqrt", "Erf", "Range", "LogSoftmax", "TopK"]
# Float32 inputs and outputs of the fp16 graphs. The vision input is 19 MB of pixels: casting it
# on the host costs more than the whole fp16 vision run on a GPU, so the graph casts it on the
# device. The fixed-shape decoder's best log-probabilities are summed over a whole report.
FP16_FLOAT32_IO = {"vision": ("pixel_values",), "decoder": (),
                  "decoder_static": ("top_logprobs",)}


def _export(module, args, path: Path, inputs, outputs, dynamic_axes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape-derived Python ints
        torch.onnx.export(
            module, args, str(path), input_names=inputs, output_names=outputs,
            dynamic_axes=dynamic_axes, opset_version=OPSET, dynamo=False, do_constant_folding=True,
        )
    onnx.checker.check_model(str(path))
    return path


def export_vision(model: MedMPTReportModel, path: Path, graph: VisionGraph | None = None) -> Path:
    """Write the vision graph: pixel_values (B, S, 3, H, W) -> per-scan outputs (`graph`: another
    module with VisionGraph's outputs, e.g. a layout under test in scripts/graph_variants.py)."""
    config = model.config
    graph = (graph or VisionGraph(model)).eval()
    pixels = torch.zeros(1, config.num_slices, 3, config.image_size, config.image_size)
    outputs = graph.output_names()
    axes = {"pixel_values": {0: "batch"}}
    for name in outputs:
        axes[name] = {1: "batch"} if name.startswith("cross_") else {0: "batch"}
    # Fused attention wherever no block's full attention probabilities are needed.
    fused = fused_attention(model) if config.patch_relevance == "cls-attention" else contextlib.nullcontext()
    with fused:
        return _export(graph, (pixels,), path, ["pixel_values"], outputs, axes)


def export_decoder(model: MedMPTReportModel, path: Path) -> Path:
    """Write the decoder-step graph with stacked KV cache (dynamic batch, past and new length)."""
    config = model.config
    layers, heads, dh = config.text_layers, config.text_heads, config.text_head_dim
    batch, past, steps = 2, 3, 2
    ids = torch.full((batch, steps), 5, dtype=torch.long)
    cache = torch.zeros(layers, batch, heads, past, dh)
    cross = torch.zeros(layers, batch, heads, config.num_slices, dh)
    axes = {
        "input_ids": {0: "batch", 1: "new"},
        "past_keys": {1: "batch", 3: "past"}, "past_values": {1: "batch", 3: "past"},
        "cross_keys": {1: "batch"}, "cross_values": {1: "batch"},
        "logits": {0: "batch", 1: "new"},
        "present_keys": {1: "batch", 3: "total"}, "present_values": {1: "batch", 3: "total"},
        "cross_attention": {0: "batch", 2: "new"},
    }
    return _export(decoder_step(model), (ids, cache, cache, cross, cross), path,
                   DECODER_INPUTS, DECODER_OUTPUTS, axes)


def export_decoder_static(model: MedMPTReportModel, path: Path, batch: int, capacity: int) -> Path:
    """Write the fixed-shape decoder step (docs/model-package.md, "decoder_static"): `batch`
    beams, a KV cache of `capacity` slots. No dynamic axis, so ONNX Runtime can capture the
    step as one CUDA graph and replay it at every token."""
    config = model.config
    layers, heads, dh = config.text_layers, config.text_heads, config.text_head_dim
    ids = torch.full((batch, 1), 5, dtype=torch.long)
    position = torch.zeros(1, dtype=torch.long)
    beam_index = torch.zeros(batch, dtype=torch.long)
    cache = torch.zeros(layers, batch, heads, capacity, dh)
    cross = torch.zeros(layers, batch, heads, config.num_slices, dh)
    return _export(static_decoder_step(model), (ids, position, beam_index, cache, cache, cross, cross),
                   path, STATIC_DECODER_INPUTS, STATIC_DECODER_OUTPUTS, {})


def convert_fp16(src: Path, dst: Path, keep_float32: tuple[str, ...] = (),
                 fuse: tuple[int, int] | None = None) -> Path:
    """fp16 copy of an fp32 graph: float16 in and out except the inputs/outputs named in
    `keep_float32` (the graph casts them itself); sensitive ops computed in float32.

    With `fuse` (heads, width), ONNX Runtime's transformer fusions run first
    (SkipLayerNormalization, BiasGelu): the fp16 graphs run on CUDA, where a decoder step is
    bound by kernel launches, and ONNX Runtime did not fuse these at load time in the converted
    graph, whose Casts sit between the operators (H200 profile; `paper` decoder: 992 nodes, 181
    Casts -> 513 nodes, 37 Casts)."""
    model = onnx.load(str(src))
    keep = list(keep_float32) or False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fuse:
            heads, width = fuse
            fused = optimize_model(model, model_type="bert", num_heads=heads, hidden_size=width,
                                   opt_level=0, use_gpu=True)
            fused.convert_float_to_float16(use_symbolic_shape_infer=True, keep_io_types=keep,
                                           op_block_list=FP16_KEEP_FP32)
            half = _one_cast_per_tensor(fused.model)
            if not any(o.domain == "com.microsoft" for o in half.opset_import):
                half.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
        else:
            half = convert_float_to_float16(model, keep_io_types=keep, op_block_list=FP16_KEEP_FP32)
    # The converter appends its Cast nodes out of order; the ONNX checker wants a sorted graph.
    ir_model = onnx_ir.from_proto(half)
    TopologicalSortPass()(ir_model)
    onnx.save(onnx_ir.to_proto(ir_model), str(dst))
    onnx.checker.check_model(str(dst))
    return Path(dst)


def _one_cast_per_tensor(model: onnx.ModelProto) -> onnx.ModelProto:
    """The converter casts a float16 initializer back to float32 once per float32 consumer, each
    time under the same node and output name, which ONNX Runtime refuses; keep the first."""
    made: set[tuple[str, ...]] = set()
    nodes = []
    for node in model.graph.node:
        if node.op_type == "Cast" and tuple(node.output) in made:
            continue
        made.add(tuple(node.output))
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model
