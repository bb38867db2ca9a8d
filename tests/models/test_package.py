"""The random tiny package follows docs/model-package.md: files, manifest, graph signatures."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from tokenizers import Tokenizer

MANIFEST_KEYS = {
    "format", "name", "version", "display_name", "clinical_use", "label", "intended_use",
    "licence", "provenance", "architecture", "preprocessing", "tokens", "generation",
    "diagnosis", "graphs", "opset", "files",
}


def test_package_has_every_file_pinned_by_sha256(tiny_package, manifest):
    assert MANIFEST_KEYS <= set(manifest)
    assert manifest["format"] == "medmpt-package/1"
    on_disk = {p.name for p in tiny_package.iterdir()} - {"manifest.json"}
    assert set(manifest["files"]) == on_disk
    assert {"tokenizer.json", "vision.onnx", "vision.fp16.onnx", "decoder.onnx",
            "decoder.fp16.onnx", "MODEL_CARD.md"} <= on_disk
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((tiny_package / name).read_bytes()).hexdigest() == digest, name


def test_random_package_says_it_is_for_tests_only(tiny_package, manifest):
    assert manifest["clinical_use"] is False
    assert "random weights, for tests only" in manifest["label"]
    assert "random weights, for tests only" in (tiny_package / "MODEL_CARD.md").read_text()


def test_manifest_tokens_match_the_tokenizer(tiny_package, manifest):
    tokenizer = Tokenizer.from_file(str(tiny_package / "tokenizer.json"))
    tokens = manifest["tokens"]
    assert tokenizer.id_to_token(tokens["bos"]) == "[CLS]"
    assert tokenizer.id_to_token(tokens["eos"]) == "[SEP]"
    assert tokenizer.id_to_token(tokens["pad"]) == "[PAD]"
    assert tokenizer.get_vocab_size() <= manifest["architecture"]["vocab_size"]


def _signature(session) -> dict:
    return {v.name: (v.type, v.shape) for v in [*session.get_inputs(), *session.get_outputs()]}


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_graphs_have_the_documented_names_dtypes_and_opset(tiny_package, manifest, sessions, precision):
    kind = "tensor(float)" if precision == "fp32" else "tensor(float16)"
    vision = _signature(sessions[manifest["graphs"]["vision"][precision]])
    decoder = _signature(sessions[manifest["graphs"]["decoder"][precision]])
    heads = [f"diag_{h['name']}" for h in manifest["diagnosis"]]
    expected_vision = ["pixel_values", "slice_tokens", "scan_embedding", *heads,
                       "patch_relevance", "cross_keys", "cross_values"]
    assert sorted(vision) == sorted(expected_vision)
    # The pixels go in as float32 even to the fp16 graph, which casts them on the device: a
    # host-side cast of 19 MB would cost more than the GPU's whole fp16 vision run.
    assert vision["pixel_values"][0] == "tensor(float)"
    assert all(vision[name][0] == kind for name in expected_vision if name != "pixel_values")
    assert sorted(decoder) == sorted(["input_ids", "past_keys", "past_values", "cross_keys",
                                      "cross_values", "logits", "present_keys",
                                      "present_values", "cross_attention"])
    assert decoder["input_ids"][0] == "tensor(int64)"
    assert all(t == kind for name, (t, _) in decoder.items() if name != "input_ids")
    assert isinstance(decoder["past_keys"][1][3], str)  # the past length is a dynamic axis
    path = tiny_package / manifest["graphs"]["decoder"][precision]
    opset = {o.domain: o.version for o in onnx.load(str(path)).opset_import}
    assert opset[""] >= 17 and manifest["opset"] >= 17


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_vision_graph_builds_no_identity_matrix_at_run_time(tiny_package, manifest, precision):
    # The rollout's identity is a constant. Built from the attention maps' shape it was
    # ConstantOfShape + EyeLike per layer: EyeLike runs on the CPU even in a CUDA session, so
    # every layer copied a tensor to the host (12 copies a scan for `paper`, seen on an H200).
    graph = onnx.load(str(tiny_package / manifest["graphs"]["vision"][precision])).graph
    assert "EyeLike" not in {node.op_type for node in graph.node}


@pytest.mark.parametrize("kind", ["vision", "decoder"])
def test_fp16_graphs_are_fused_for_the_gpu(tiny_package, manifest, kind, tmp_path):
    # On CUDA a decoder step is bound by kernel launches (H200 profile: ~600 a step, 91 of them
    # Casts): the fp16 graphs carry ONNX Runtime's fused transformer operators and few Casts.
    from models.export.onnx_export import FP16_FLOAT32_IO, convert_fp16

    def ops(path):
        graph = onnx.load(str(path)).graph
        return [node.op_type for node in graph.node if node.op_type not in ("Constant", "Identity")]

    plain = convert_fp16(tiny_package / manifest["graphs"][kind]["fp32"], tmp_path / "plain.onnx",
                         FP16_FLOAT32_IO[kind])
    fused, unfused = ops(tiny_package / manifest["graphs"][kind]["fp16"]), ops(plain)
    assert "SkipLayerNormalization" in fused and "BiasGelu" in fused
    assert len(fused) < 0.7 * len(unfused)
    assert fused.count("Cast") < 0.4 * unfused.count("Cast")


@pytest.mark.parametrize("kind", ["vision", "decoder", "decoder_static"])
def test_fp16_graphs_run_attention_softmax_in_half_precision(tiny_package, manifest, kind):
    # Softmax and the heads' mean kept in float32 cost two Casts each, the most expensive
    # operator of the `paper` vision graph on an H200 (2 ms of 10.6 a scan, 49 Casts). ONNX
    # Runtime's CUDA softmax accumulates in float32 itself, so they now run in float16: measured
    # side by side, the CUDA-graph decoder step 1.09 against 1.13 ms.
    graph = onnx.load(str(tiny_package / manifest["graphs"][kind]["fp16"])).graph
    made_by = {out: node.op_type for node in graph.node for out in node.output}
    for node in graph.node:
        if node.op_type in ("Softmax", "ReduceMean"):
            assert made_by.get(node.input[0]) != "Cast", f"{node.op_type} {node.name} runs in float32"
    assert sum(node.op_type == "Cast" for node in graph.node) <= 8


def test_the_cuda_graph_decoder_moves_no_data_to_split_or_join_heads(tiny_package, manifest):
    # One token a step, so heads split and join by reshapes: the `paper` step had 36 Transpose
    # kernels (H200 profile). What is left transposes a matrix product's second operand, which
    # ONNX Runtime folds into the product (FusedMatMul) when it loads the graph.
    graph = onnx.load(str(tiny_package / manifest["graphs"]["decoder_static"]["fp16"])).graph
    consumers = {}
    for node in graph.node:
        for position, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node.op_type, position))
    transposes = [node for node in graph.node if node.op_type == "Transpose"]
    for node in transposes:
        assert consumers[node.output[0]] == [("MatMul", 1)], (node.name, consumers[node.output[0]])
    assert len(transposes) == 2 * manifest["architecture"]["text_layers"]  # self and cross keys


def test_the_cuda_graph_decoder_reorders_its_cache_once_not_per_layer(tiny_package, manifest):
    # Every Gather is a kernel in the replayed step: the beam reorder runs once over the whole
    # cache (keys, values) and the layers are split apart, instead of a Gather per layer to pick
    # it and another to reorder it (38 Gathers in the `paper` step, 5 now).
    graph = onnx.load(str(tiny_package / manifest["graphs"]["decoder_static"]["fp16"])).graph
    inputs_of = {name: node for node in graph.node for name in node.output}
    gathers = [node for node in graph.node if node.op_type == "Gather"]
    reorders = [node for node in gathers if node.input[1] == "beam_index"]
    assert sorted(node.input[0] for node in reorders) == ["cache_keys", "cache_values"]
    layers = manifest["architecture"]["text_layers"]
    splits = [node for node in graph.node if node.op_type == "Split" and len(node.output) == layers]
    assert sorted(node.input[0] for node in splits if node.input[0].startswith("cross_")) == [
        "cross_keys", "cross_values"]
    assert len(splits) == 4
    assert len(gathers) <= 5, [(node.name, node.input) for node in gathers]
    assert all(inputs_of.get(node.input[0]) is None or inputs_of[node.input[0]].op_type != "Gather"
               for node in gathers)


def test_the_cuda_graph_decoder_computes_q_k_v_in_one_product_with_the_scale_in_the_weights(tiny_package,
                                                                                              manifest):
    # A step is bound by kernel launches: per layer one product for the self-attention's q, k
    # and v (split in three after), and no division of the scores (1 / sqrt(dh) is in the query
    # weights): 30 kernels fewer in the `paper` step (213 -> 183 besides reshapes).
    graph = onnx.load(str(tiny_package / manifest["graphs"]["decoder_static"]["fp16"])).graph
    arch = manifest["architecture"]
    layers, width = arch["text_layers"], arch["text_width"]
    assert not [node for node in graph.node if node.op_type == "Div"]
    qkv = [node for node in graph.node if node.op_type == "Split" and len(node.output) == 3]
    assert len(qkv) == layers
    shapes = {init.name: tuple(init.dims) for init in graph.initializer}
    products = [shapes.get(node.input[1]) for node in graph.node if node.op_type == "MatMul"]
    assert products.count((width, 3 * width)) == layers
    assert products.count((width, width)) == 3 * layers + 1  # self-attention out, cross query and out; LM head


def test_vision_outputs_have_documented_shapes(manifest, vision_ort):
    arch = manifest["architecture"]
    layers, heads = arch["text_layers"], arch["text_heads"]
    dh = arch["text_width"] // heads
    assert vision_ort["slice_tokens"].shape == (1, 32, arch["vision_width"])
    assert vision_ort["scan_embedding"].shape == (1, arch["vision_width"])
    assert vision_ort["cross_keys"].shape == (layers, 1, heads, 32, dh)
    assert vision_ort["patch_relevance"].shape == (1, 32, 14, 14)
    np.testing.assert_allclose(vision_ort["patch_relevance"].sum(axis=(2, 3)), 1.0, atol=1e-5)
    for head in manifest["diagnosis"]:
        probs = vision_ort[f"diag_{head['name']}"]
        assert probs.shape == (1, len(head["classes"]))
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_the_runtime_accepts_the_package(tiny_package):
    from inference.package import load_package

    package = load_package(tiny_package)
    assert package.graph_path("decoder", "fp16").name == "decoder.fp16.onnx"
    assert [h.name for h in package.diagnosis_heads] == ["covid_severity", "nodule", "effusion"]


def test_exporting_into_a_foreign_folder_is_refused(tmp_path):
    from models.testing import make_random_package

    (tmp_path / "report.docx").write_text("someone's file")
    with pytest.raises(FileExistsError, match="not part of a package"):
        make_random_package(tmp_path)
    assert (tmp_path / "report.docx").exists()


def test_refreshing_an_older_packages_fp16_graphs_keeps_it_verifiable(tiny_package, tmp_path):
    import shutil

    import onnxruntime as ort

    from inference.package import load_package
    from models.export.onnx_export import convert_fp16
    from models.export.package import refresh_fp16_graphs, sha256_file

    folder = Path(shutil.copytree(tiny_package, tmp_path / "package"))
    manifest_path = folder / "manifest.json"
    old = json.loads(manifest_path.read_text(encoding="utf-8"))
    convert_fp16(folder / "vision.onnx", folder / "vision.fp16.onnx")  # as written before: fp16 pixels, unfused
    old["files"]["vision.fp16.onnx"] = sha256_file(folder / "vision.fp16.onnx")
    manifest_path.write_text(json.dumps(old), encoding="utf-8")

    assert refresh_fp16_graphs(folder) == ["decoder.fp16.onnx", "vision.fp16.onnx"]
    new = load_package(folder).manifest  # every file's SHA-256 checks
    assert {n: new["files"][n] for n in ("vision.onnx", "decoder.onnx")} == {
        n: old["files"][n] for n in ("vision.onnx", "decoder.onnx")}
    session = ort.InferenceSession(str(folder / "vision.fp16.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(float)"
    assert "SkipLayerNormalization" in {n.op_type for n in onnx.load(str(folder / "decoder.fp16.onnx")).graph.node}
    assert not list(folder.glob("*.new")) and not list(folder.glob("*.tmp"))
