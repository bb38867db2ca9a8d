"""The bundled model's fp16 graphs (what a CUDA GPU runs) agree with its fp32 graphs (what the CPU
runs) on the demo study: same diagnosis to 1e-2, same report. Checked on the CPU, with the IO
binding and float16 cache the CUDA path uses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "models" / "packages" / "medmpt-tiny-phantom"
DEMO = REPO / "resources" / "demo"


@pytest.fixture(scope="module")
def both():
    from app.cli_report import load_series_volume
    from app.drafting import ct_input
    from inference.decoder_step import KVCacheStep
    from inference.generation import beam_search
    from inference.ort_runtime import GraphSession
    from inference.package import load_package
    from inference.preprocess import preprocess

    package = load_package(PACKAGE)
    volume, _, _ = load_series_volume(str(DEMO), None)
    pixels = preprocess(ct_input(volume), package.preprocessing).pixel_values
    tokens = package.manifest["tokens"]
    results = {}
    for precision in ("fp32", "fp16"):
        vision = GraphSession(package.graph_path("vision", precision), "cpu", threads=2)
        decoder = GraphSession(package.graph_path("decoder", precision), "cpu", threads=2)
        vision.use_binding = decoder.use_binding = precision == "fp16"
        out = vision.run({"pixel_values": pixels})
        search = beam_search(KVCacheStep(decoder, out["cross_keys"], out["cross_values"]),
                             tokens["bos"], tokens["eos"], 2, 120)
        while True:
            try:
                next(search)
            except StopIteration as stop:
                results[precision] = (out, stop.value.tokens)
                break
    return results


def test_fp16_graphs_give_the_same_diagnosis_and_relevance(both):
    full, half = both["fp32"][0], both["fp16"][0]
    for name in full:
        if name.startswith("diag_") or name == "patch_relevance":
            np.testing.assert_allclose(half[name], full[name], rtol=0, atol=1e-2, err_msg=name)
        else:  # embeddings and cross-attention keys/values: within 1 % of their range
            assert np.abs(half[name] - full[name]).max() <= 0.01 * np.abs(full[name]).max(), name


def test_fp16_graphs_write_the_same_report(both):
    assert len(both["fp32"][1]) > 10
    assert both["fp16"][1] == both["fp32"][1]


def test_bundled_fp16_graphs_are_the_gpu_form():
    import onnx
    import onnxruntime as ort

    vision = ort.InferenceSession(str(PACKAGE / "vision.fp16.onnx"), providers=["CPUExecutionProvider"])
    assert vision.get_inputs()[0].type == "tensor(float)"  # pixels cast on the device
    decoder = onnx.load(str(PACKAGE / "decoder.fp16.onnx")).graph
    assert "SkipLayerNormalization" in {node.op_type for node in decoder.node}
