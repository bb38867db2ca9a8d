"""The fixed-shape decoder (CUDA graphs on a GPU) writes what the dynamic decoder writes.

Checked on the CPU with the bundled model's fp16 graphs and the demo study: the same fixed
buffers, bound once and swapped every step, that a GPU replays as captured CUDA graphs. A
failing fixed-shape decoder must cost nothing but its speed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inference.decoder_step import STATIC_CACHE_SWAP, STATIC_PACKED_INPUTS, STATIC_PACKED_OUTPUTS

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "models" / "packages" / "medmpt-tiny-phantom"
DEMO = REPO / "resources" / "demo"


def _decode(step, tokens, beams=2, max_steps=120):
    from inference.generation import beam_search

    search = beam_search(step, tokens["bos"], tokens["eos"], beams, max_steps)
    while True:
        try:
            next(search)
        except StopIteration as stop:
            return stop.value


@pytest.fixture(scope="module")
def setup():
    from app.cli_report import load_series_volume
    from app.drafting import ct_input
    from inference.ort_runtime import FixedBinding, GraphSession
    from inference.package import load_package
    from inference.preprocess import preprocess

    package = load_package(PACKAGE)
    volume, _, _ = load_series_volume(str(DEMO), None)
    pixels = preprocess(ct_input(volume), package.preprocessing).pixel_values
    vision = GraphSession(package.graph_path("vision", "fp16"), "cpu", threads=2)
    vision.use_binding = True
    decoder = GraphSession(package.graph_path("decoder", "fp16"), "cpu", threads=2)
    decoder.use_binding = True
    static = GraphSession(package.graph_path("decoder_static", "fp16"), "cpu", threads=2)
    return package, vision.run({"pixel_values": pixels}), decoder, FixedBinding(static, STATIC_CACHE_SWAP, STATIC_PACKED_INPUTS, STATIC_PACKED_OUTPUTS), volume


def test_the_package_pins_a_fixed_shape_decoder_for_the_search():
    from inference.package import load_package

    package = load_package(PACKAGE)
    assert package.manifest["graphs"]["decoder_static"] == {"fp16": "decoder_static.fp16.onnx"}
    assert "decoder_static.fp16.onnx" in package.manifest["files"]


def test_fixed_shape_decoder_writes_the_same_report_with_the_same_attention(setup):
    from inference.decoder_step import KVCacheStep, StaticKVCacheStep

    package, out, decoder, fixed, _ = setup
    tokens = package.manifest["tokens"]
    dynamic = _decode(KVCacheStep(decoder, out["cross_keys"], out["cross_values"]), tokens)
    step = StaticKVCacheStep(fixed, out["cross_keys"], out["cross_values"])
    assert (step.batch, step.capacity) == (2, 120)
    assert step.top_k == 5  # each beam's five best log-probabilities: the search reads those, not the logits
    static = _decode(step, tokens)
    assert len(dynamic.tokens) > 10
    assert static.tokens == dynamic.tokens
    assert static.score == pytest.approx(dynamic.score, abs=1e-2)
    np.testing.assert_allclose(static.cross_attention, dynamic.cross_attention, atol=2e-3)
    # The buffers are reused: a second report (after reset) is the same again, and greedy
    # decoding (one beam, padded to the graph's two) agrees with the dynamic decoder too.
    assert _decode(step, tokens).tokens == dynamic.tokens
    greedy = _decode(KVCacheStep(decoder, out["cross_keys"], out["cross_values"]), tokens, beams=1)
    assert _decode(step, tokens, beams=1).tokens == greedy.tokens


def test_stale_values_in_the_cache_do_not_reach_the_next_report(setup):
    from inference.decoder_step import KVCacheStep, StaticKVCacheStep

    package, out, decoder, fixed, _ = setup
    tokens = package.manifest["tokens"]
    step = StaticKVCacheStep(fixed, out["cross_keys"], out["cross_values"])
    for name in STATIC_CACHE_SWAP:  # as if a failed run had left NaN in both buffers
        fixed.set(name, np.full(fixed.shapes[name], np.nan, np.float16))
        fixed.run()
    dynamic = _decode(KVCacheStep(decoder, out["cross_keys"], out["cross_values"]), tokens)
    assert _decode(step, tokens).tokens == dynamic.tokens


class _Counting:
    """Stands in for a packed buffer's OrtValue and counts the transfers through it."""

    def __init__(self, value):
        self.value, self.copies = value, 0

    def update_inplace(self, array):
        self.copies += 1
        self.value.update_inplace(array)

    def numpy(self):
        self.copies += 1
        return self.value.numpy()


def test_a_step_s_small_tensors_go_in_at_once_and_come_out_at_once_with_the_same_values(setup):
    # On a GPU every transfer waits for the device: a step copies its three small inputs in with
    # one transfer and its best log-probabilities, their ids and the cross-attention out with one.
    from inference.decoder_step import StaticKVCacheStep
    from inference.ort_runtime import FixedBinding, GraphSession

    # Its own session and buffers, not the module's shared binding: in one CI run of the whole
    # suite (1 of 3) the two disagreed after the earlier tests here had used that binding; never
    # reproduced since (15 runs of this module, 300 searches in one process).
    package, out, _, _, _ = setup
    graph = GraphSession(package.graph_path("decoder_static", "fp16"), "cpu", threads=2)
    packed = FixedBinding(graph, STATIC_CACHE_SWAP, STATIC_PACKED_INPUTS, STATIC_PACKED_OUTPUTS)
    plain = FixedBinding(graph, STATIC_CACHE_SWAP, first_graph_id=3)
    steps = [StaticKVCacheStep(b, out["cross_keys"], out["cross_values"]) for b in (packed, plain)]
    packed._packed_in, packed._packed_out = _Counting(packed._packed_in), _Counting(packed._packed_out)
    last = np.full((2, 1), package.manifest["tokens"]["bos"])
    for position in range(4):
        (p_top, p_ids, p_cross), (u_top, u_ids, u_cross) = (s.step_top(last) for s in steps)
        np.testing.assert_array_equal(p_ids, u_ids)
        np.testing.assert_array_equal(p_top, u_top)
        np.testing.assert_array_equal(p_cross, u_cross)
        assert p_top.dtype == np.float32 and p_ids.dtype == np.int64 and p_cross.shape == (2, 2, 32)
        last = p_ids[:, :1]
        for s in steps:
            s.reorder(np.array([1, 0]) if position % 2 else np.array([0, 0]))
    assert (packed._packed_in.copies, packed._packed_out.copies) == (4, 4)
    logits = packed.get_many(["logits", "cross_attention"])
    np.testing.assert_array_equal(logits["logits"], plain.get("logits"))


@pytest.mark.parametrize(("slot", "graph", "precision", "fixed_dims", "logged"), [
    ("static_decoder", "decoder_static", "fp16", None, "fixed-shape decoder failed"),
    ("fixed_vision", "vision", "fp32", {"batch": 1}, "one-scan vision graph failed"),
])
def test_a_failing_cuda_graph_is_dropped_and_the_draft_still_made(setup, caplog, slot, graph, precision,
                                                                   fixed_dims, logged):
    """As on a GPU: the CUDA sessions (here CPU sessions standing in) with a fixed-shape graph
    whose runs fail. The draft goes on with the ordinary graph, on the same device."""
    from app.drafting import ct_input
    from inference.ort_runtime import GraphSession
    from inference.runtime import ReportRuntime

    package, _, _, _, volume = setup
    runtime = ReportRuntime.load(PACKAGE, device="cpu", warmup=False)
    expected = runtime.draft_sync(ct_input(volume)).text

    class Broken(GraphSession):
        def run_bound(self, binding, graph_id):
            raise RuntimeError("CUDA graph capture failed (simulated)")

    runtime.model.device = "cuda"
    setattr(runtime.model, slot, Broken(package.graph_path(graph, precision), "cpu", fixed_dims=fixed_dims))
    assert runtime.draft_sync(ct_input(volume)).text == expected
    assert getattr(runtime.model, slot) is None and runtime.model.device == "cuda"
    assert logged in caplog.text


def test_the_fixed_shape_decoder_is_opened_only_where_it_can_run(monkeypatch, caplog):
    """No CUDA here: opening it fails, with and without CUDA graphs, and the runtime goes on
    without it; MEDMPT_CUDA_GRAPHS=0 turns it off (to compare the two decoders on a GPU)."""
    import logging

    from inference.ort_runtime import _static_decoder
    from inference.package import load_package

    package = load_package(PACKAGE)
    with caplog.at_level(logging.INFO, logger="inference.ort_runtime"):
        assert _static_decoder(package, threads=1) is None
    assert "CUDA graphs on) not opened" in caplog.text and "CUDA graphs off) not opened" in caplog.text
    caplog.clear()
    monkeypatch.setenv("MEDMPT_CUDA_GRAPHS", "0")
    with caplog.at_level(logging.INFO, logger="inference.ort_runtime"):
        assert _static_decoder(package, threads=1) is None
    assert "CUDA graphs turned off" in caplog.text


def test_one_scan_vision_graph_gives_the_ordinary_session_s_outputs(setup):
    """On CUDA the vision graph also runs as one replayed CUDA graph: a second session with the
    batch fixed at one scan, so every shape is known at load. Same graph, the same outputs
    within fp16 rounding (the fp16 graphs' tolerance against fp32)."""
    from app.drafting import ct_input
    from inference.ort_runtime import FixedBinding, GraphSession
    from inference.preprocess import preprocess

    package, out, _, _, volume = setup
    pixels = preprocess(ct_input(volume), package.preprocessing).pixel_values
    fixed = GraphSession(package.graph_path("vision", "fp16"), "cpu", threads=2, fixed_dims={"batch": 1})
    assert fixed.session.get_inputs()[0].shape == [1, 32, 3, 224, 224]
    binding = FixedBinding(fixed, {})
    for _ in range(2):  # the same buffers, run again
        binding.set("pixel_values", pixels)
        binding.run()
        got = binding.outputs()
        assert set(got) == set(out)
        for name in out:  # ONNX Runtime fuses the fixed-shape graph its own way: fp16 rounding
            if name.startswith("diag_") or name == "patch_relevance":
                np.testing.assert_allclose(got[name], out[name], rtol=0, atol=1e-2, err_msg=name)
            else:
                assert np.abs(got[name] - out[name]).max() <= 0.01 * np.abs(out[name]).max(), name


def test_graphs_unfit_for_fixed_buffers_are_dropped_and_the_draft_still_made(setup, caplog):
    """A package's optional graphs may be wrong (here: graphs with dynamic axes or other inputs
    stand in for them): the draft must not fail for that."""
    from app.drafting import ct_input
    from inference.ort_runtime import GraphSession
    from inference.runtime import ReportRuntime

    package, _, _, _, volume = setup
    runtime = ReportRuntime.load(PACKAGE, device="cpu", warmup=False)
    expected = runtime.draft_sync(ct_input(volume)).text
    runtime.model.device = "cuda"
    runtime.model.static_decoder = GraphSession(package.graph_path("decoder", "fp16"), "cpu")
    runtime.model.fixed_vision = GraphSession(package.graph_path("decoder", "fp32"), "cpu")
    assert runtime.draft_sync(ct_input(volume)).text == expected
    assert runtime.model.static_decoder is None and runtime.model.fixed_vision is None
    assert "has no fixed shape" in caplog.text
