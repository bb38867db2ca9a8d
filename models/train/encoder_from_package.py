"""Read a package's trained slice encoder back into torch, so a new report stage trains on it.

Stage zero (the slice encoder alone) is most of a CPU training run; the later stages are cheap.
When only the report side changes (the report writer's wording, the decoder's recipe), the
slice encoder of an existing package is taken as it is: its weights are read from the
package's fp32 vision graph, each named after the module scope of the node that reads it. The package is verified
(every file's SHA-256) first. Must not import app or ui.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from inference.package import load_package
from models.medmpt.config import MedMPTConfig
from models.medmpt.model import MedMPTReportModel

PREFIX = "model.vision_encoder_q."
SCOPE = "/vision_encoder_q/"
SHAPE_FIELDS = ("image_size", "patch_size", "patch_stem", "input_channels", "vision_width", "vision_depth",
                "vision_heads", "vision_mlp")
# packages written before the fields existed
DEFAULTS = {"patch_stem": MedMPTConfig.patch_stem, "input_channels": MedMPTConfig.input_channels}


def slice_encoder_weights(vision_graph: Path) -> dict[str, torch.Tensor]:
    """State dict of `vision_encoder_q` read from an fp32 vision graph.

    Each weight is named after the module scope of the node that reads it
    (`/vision_encoder_q/blocks.0/attn/qkv/MatMul` reads `blocks.0.attn.qkv.weight`, transposed),
    not after the initialiser: the exporter names MatMul weights `onnx::MatMul_N` and shares one
    initialiser, through Identity nodes, between equal tensors (an untrained model's LayerNorms).
    """
    graph = onnx.load(str(vision_graph)).graph
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:  # a shared initialiser reaches its other readers through Identity
        if node.op_type == "Identity" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]]
    state: dict[str, np.ndarray] = {}
    for node in graph.node:
        _, found, path = node.name.partition(SCOPE)
        if not found:
            continue
        scopes = path.split("/")[:-1]  # a Sequential adds its own scope: stem/stem.0 is stem.0
        module = ".".join(p for i, p in enumerate(scopes)
                          if not (i + 1 < len(scopes) and scopes[i + 1].startswith(p + ".")))
        for position, name in enumerate(node.input):
            if name not in values:
                continue
            if node.op_type in ("Conv", "LayerNormalization") and position in (1, 2):
                state[f"{module}.{'weight' if position == 1 else 'bias'}"] = values[name]
            elif node.op_type == "MatMul" and position == 1:
                state[f"{module}.weight"] = values[name].T  # x @ W is nn.Linear with weight W.T
            elif node.op_type == "Add" and module:
                state[f"{module}.bias"] = values[name]
            elif name.startswith(PREFIX):  # the module's own parameters: cls_token, pos_embed
                state[name[len(PREFIX):]] = values[name]
    return {name: torch.from_numpy(np.array(value, copy=True)) for name, value in state.items()}


def load_slice_encoder(model: MedMPTReportModel, package: Path) -> dict:
    """Put the slice encoder of `package` into `model`; returns where it came from (for the card).

    Raises PackageError for a package that fails verification and ValueError when the package's
    encoder has another shape or a weight cannot be found, naming the field or weight.
    """
    verified = load_package(package)
    architecture = verified.manifest["architecture"]
    for field in SHAPE_FIELDS:
        ours, theirs = getattr(model.config, field), architecture.get(field, DEFAULTS.get(field))
        if theirs != ours:
            raise ValueError(f"{package}: the package's slice encoder has {field} {theirs}, this training run {ours}")
    graph = verified.graph_path("vision", "fp32")
    state = slice_encoder_weights(graph)
    expected = model.vision_encoder_q.state_dict()
    missing = sorted(set(expected) - set(state))
    if missing:
        raise ValueError(f"{graph.name}: no weight found for slice encoder parameter {missing[0]}"
                         + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    for name, tensor in expected.items():
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise ValueError(f"{graph.name}: slice encoder parameter {name} has shape "
                             f"{tuple(state[name].shape)}, expected {tuple(tensor.shape)}")
    model.vision_encoder_q.load_state_dict({name: state[name] for name in expected})
    return {"package": verified.name, "version": verified.version, "model_hash": verified.model_hash,
            "vision_sha256": verified.manifest["files"][graph.name],
            "card_stage_zero": _card_stage_zero(verified.root / "MODEL_CARD.md")}


def _card_stage_zero(card: Path) -> str:
    """The source card's line on how its slice encoder was trained ('' when it has none)."""
    text = card.read_text(encoding="utf-8") if card.is_file() else ""
    for pattern in (r"^- Stage zero[^\n]*", r"^- Slice encoder taken from[^\n]*"):
        found = re.search(pattern, text, flags=re.MULTILINE)
        if found:
            return found.group(0)[2:]
    return ""
