"""Copy a rollout package as one whose heatmap is the last block's CLS attention, to compare the
two heatmaps on the same model (no torch weights needed: its fp32 vision graph already computes
every block's attention probabilities).

    python scripts/cls_attention_package.py PACKAGE OUT
    medmpt eval --generate 300 --seed 0 --model OUT      # against the same command on PACKAGE

The copy's `patch_relevance` output becomes the head-averaged CLS row of the last slice-encoder
block's attention over the patches, renormalised (models.medmpt.vision.cls_attention); the
rollout's nodes are removed; the fp16 graphs are derived again from the fp32 ones; the manifest
says `"patch_relevance": "cls-attention"` and every hash is renewed. Its vision graph keeps
explicit attention (a package exported with that relevance fuses it: models/export/fused_vision.py),
so the copy is for comparing heatmaps, not GPU timings.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from models.export.package import refresh_fp16_graphs, replace_manifest, sha256_file

OUTPUT = "patch_relevance"


def rewire(graph: onnx.GraphProto, depth: int, slices: int, grid: int) -> None:
    """Make OUTPUT the last block's CLS attention; drop the nodes nothing reads any more."""
    name = f"/vision_encoder_q/blocks.{depth - 1}/attn/Softmax"
    softmax = next((n for n in graph.node if n.name == name), None)
    if softmax is None:
        raise ValueError(f"the vision graph has no node {name}: not an explicit-attention graph of this exporter")
    for node in graph.node:  # the rollout's result becomes an unused tensor
        node.output[:] = [o if o != OUTPUT else "rollout_unused" for o in node.output]

    def const(tag: str, values: list[int]) -> str:
        graph.initializer.append(numpy_helper.from_array(np.asarray(values, np.int64), f"cls_attention/{tag}"))
        return f"cls_attention/{tag}"

    p = softmax.output[0]  # (N, heads, T, T)
    graph.node.extend([
        helper.make_node("ReduceMean", [p], ["cls_attention/mean"], axes=[1], keepdims=0),
        helper.make_node("Slice", ["cls_attention/mean", const("row0", [0]), const("row1", [1]), const("ax1", [1])],
                         ["cls_attention/row"]),
        helper.make_node("Slice", ["cls_attention/row", const("col0", [1]), const("end", [2**62]), const("ax2", [2])],
                         ["cls_attention/patches"]),
        helper.make_node("ReduceSum", ["cls_attention/patches", const("sumax", [2])], ["cls_attention/sum"], keepdims=1),
        helper.make_node("Div", ["cls_attention/patches", "cls_attention/sum"], ["cls_attention/normed"]),
        helper.make_node("Reshape", ["cls_attention/normed", const("shape", [-1, slices, grid, grid])], [OUTPUT]),
    ])
    needed = {o.name for o in graph.output}
    kept = []
    for node in reversed(graph.node):  # the graph is in topological order
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(i for i in node.input if i)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    used = [t for t in graph.initializer if t.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(used)


def main(source: Path, out: Path) -> None:
    if not (source / "manifest.json").is_file():
        raise SystemExit(f"no model package at {source} (no manifest.json)")
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} is not empty")
    manifest = json.loads((source / "manifest.json").read_text(encoding="utf-8"))
    arch = manifest["architecture"]
    if arch.get("patch_relevance", "rollout") != "rollout":
        raise SystemExit(f"{source.name} already shows {arch['patch_relevance']}")
    shutil.copytree(source, out, dirs_exist_ok=True)
    vision = out / manifest["graphs"]["vision"]["fp32"]
    model = onnx.load(str(vision))
    rewire(model.graph, int(arch["vision_depth"]), int(arch["num_slices"]), int(arch["image_size"]) // int(arch["patch_size"]))
    onnx.checker.check_model(model)
    onnx.save(model, str(vision))
    arch["patch_relevance"] = "cls-attention"
    manifest["provenance"] += "; heatmap changed to the last block's CLS attention by scripts/cls_attention_package.py"
    manifest["files"][vision.name] = sha256_file(vision)
    replace_manifest(out, manifest)
    refresh_fp16_graphs(out)
    print(f"wrote {out}: {manifest['name']} with the last block's CLS attention as its heatmap")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
