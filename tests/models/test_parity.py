"""ONNX Runtime graphs reproduce the torch model: embeddings, logits, attention, greedy text."""

from __future__ import annotations

import numpy as np
import torch

from inference.generation import log_softmax
from models.medmpt.generate import greedy_full_prefix

from .conftest import open_session

FP32_TOL = 1e-4
FP16_TOL = 1e-2


def test_vision_graph_matches_torch(vision_ort, vision_torch, tiny_model):
    for name in ("slice_tokens", "scan_embedding", "patch_relevance"):
        np.testing.assert_allclose(vision_ort[name], vision_torch[name].numpy(), rtol=0, atol=FP32_TOL)
    for name, logits in vision_torch["diagnosis_logits"].items():
        probs = torch.softmax(logits, -1).numpy()
        np.testing.assert_allclose(vision_ort[f"diag_{name}"], probs, rtol=0, atol=FP32_TOL)


def _decode(session, ids, past_k, past_v, vision):
    dtype = session.get_inputs()[1].type == "tensor(float16)" and np.float16 or np.float32
    feeds = {"input_ids": ids, "past_keys": past_k.astype(dtype), "past_values": past_v.astype(dtype),
             "cross_keys": vision["cross_keys"].astype(dtype),
             "cross_values": vision["cross_values"].astype(dtype)}
    return [out.astype(np.float32) for out in session.run(None, feeds)]


def _empty_cache(vision):
    layers, batch, heads, _, dh = vision["cross_keys"].shape
    return np.zeros((layers, batch, heads, 0, dh), np.float32)


def test_decoder_prefill_matches_torch_logits_and_cross_attention(sessions, vision_ort, vision_torch, tiny_model):
    ids = np.array([[2, 17, 40, 9, 33, 5]], dtype=np.int64)
    empty = _empty_cache(vision_ort)
    logits, keys, _, cross = _decode(sessions["decoder.onnx"], ids, empty, empty, vision_ort)
    with torch.no_grad():
        ref = tiny_model.text_decoder(torch.from_numpy(ids), vision_torch["memory"], output_attentions=True)
    np.testing.assert_allclose(logits, ref.logits.numpy(), rtol=0, atol=FP32_TOL)
    torch_cross = torch.stack([a.mean(dim=1) for a in ref.cross_attentions], dim=1).numpy()
    np.testing.assert_allclose(cross, torch_cross, rtol=0, atol=FP32_TOL)
    assert keys.shape[3] == ids.shape[1]


def test_incremental_steps_with_cache_equal_one_prefill(sessions, vision_ort):
    ids = np.array([[2, 17, 40, 9]], dtype=np.int64)
    empty = _empty_cache(vision_ort)
    full, *_ = _decode(sessions["decoder.onnx"], ids, empty, empty, vision_ort)
    past_k = past_v = empty
    for t in range(ids.shape[1]):
        logits, past_k, past_v, _ = _decode(sessions["decoder.onnx"], ids[:, t : t + 1], past_k, past_v, vision_ort)
        np.testing.assert_allclose(logits[:, 0], full[:, t], rtol=0, atol=FP32_TOL)
    assert past_k.shape[3] == ids.shape[1]


def _ort_greedy(session, vision, bos, steps):
    past_k = past_v = _empty_cache(vision)
    token, tokens = bos, []
    for _ in range(steps):
        logits, past_k, past_v, _ = _decode(session, np.array([[token]], np.int64), past_k, past_v, vision)
        token = int(logits[0, -1].argmax())
        tokens.append(token)
    return tokens


def test_kv_cache_greedy_in_ort_gives_the_torch_full_prefix_tokens(sessions, vision_ort, vision_torch, tiny_model):
    steps = 30
    ort_tokens = _ort_greedy(sessions["decoder.onnx"], vision_ort, bos=2, steps=steps)
    torch_tokens = greedy_full_prefix(tiny_model, vision_torch["memory"], bos=2, steps=steps)
    assert ort_tokens == torch_tokens
    assert len(set(ort_tokens)) > 1  # a degenerate one-token loop would prove little


def test_batched_scans_give_the_same_outputs_as_single_scans(sessions, pixels, vision_ort):
    batch = np.concatenate([pixels, -pixels])
    session = sessions["vision.onnx"]
    out = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"pixel_values": batch}), strict=True))
    np.testing.assert_allclose(out["scan_embedding"][:1], vision_ort["scan_embedding"], atol=FP32_TOL)
    np.testing.assert_allclose(out["cross_keys"][:, :1], vision_ort["cross_keys"], atol=FP32_TOL)
    assert not np.allclose(out["scan_embedding"][0], out["scan_embedding"][1])


def test_fp16_vision_graph_stays_within_1e_2(sessions, pixels, vision_ort):
    session = sessions["vision.fp16.onnx"]
    names = [o.name for o in session.get_outputs()]
    outputs = session.run(names, {"pixel_values": pixels})  # float32 in: the graph casts
    for name, value in zip(names, outputs, strict=True):
        assert value.dtype == np.float16, name
        np.testing.assert_allclose(value.astype(np.float32), vision_ort[name], rtol=0, atol=FP16_TOL, err_msg=name)


def test_fp16_decoder_stays_within_1e_2(sessions, vision_ort):
    ids = np.array([[2, 17, 40, 9, 33]], dtype=np.int64)
    empty = _empty_cache(vision_ort)
    full = _decode(sessions["decoder.onnx"], ids, empty, empty, vision_ort)
    half = _decode(sessions["decoder.fp16.onnx"], ids, empty, empty, vision_ort)
    for name, a, b in zip(("logits", "keys", "values", "cross_attention"), half, full, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=FP16_TOL, err_msg=name)


def test_runtime_beam_search_over_ort_matches_the_torch_published_algorithm(tiny_package, vision_ort, vision_torch, tiny_model):
    from inference.decoder_step import KVCacheStep
    from inference.generation import beam_search
    from inference.ort_runtime import OrtModel
    from inference.package import load_package
    from models.medmpt.generate import beam_full_prefix

    runtime = OrtModel.open(load_package(tiny_package), device="cpu", threads=2)
    step = KVCacheStep(runtime.decoder, vision_ort["cross_keys"], vision_ort["cross_values"])
    generator = beam_search(step, bos=2, eos=3, beams=2, max_steps=25)
    while True:
        try:
            next(generator)
        except StopIteration as stop:
            result = stop.value
            break
    tokens, steps = beam_full_prefix(tiny_model, vision_torch["memory"], bos=2, eos=3, beams=2, max_steps=25)
    assert list(result.tokens) == tokens and result.steps == steps
    assert all(a != b for a, b in zip(tokens, tokens[1:], strict=False))  # no immediate repetition


def test_fp16_kv_cache_stays_float16_between_steps_and_matches_fp32(tiny_package, vision_ort):
    """On CUDA the decoder runs the fp16 graph: its cache is fed back as float16 (no host cast
    each step) and the step function gives the fp32 graph's logits within 1e-2."""
    from inference.decoder_step import KVCacheStep
    from inference.ort_runtime import GraphSession

    steps = {}
    for precision, name in (("fp32", "decoder.onnx"), ("fp16", "decoder.fp16.onnx")):
        session = GraphSession(tiny_package / name, "cpu", threads=2)
        session.use_binding = precision == "fp16"  # the IO-binding path CUDA takes
        steps[precision] = KVCacheStep(session, vision_ort["cross_keys"], vision_ort["cross_values"])
    ids = np.array([[2], [2]], dtype=np.int64)
    for token in (17, 40, 9):
        (full, _), (half, _) = (steps[p].step(ids) for p in ("fp32", "fp16"))
        np.testing.assert_allclose(half, full, rtol=0, atol=FP16_TOL)
        for step in steps.values():
            step.reorder(np.array([1, 0]))
        ids = np.array([[token], [token + 1]], dtype=np.int64)
    assert steps["fp16"]._past[0].dtype == np.float16
    assert steps["fp32"]._past[0].dtype == np.float32
    assert steps["fp16"]._past[0].shape[3] == 3  # three tokens cached


def test_bound_kv_cache_stays_on_the_device_until_the_beams_swap(tiny_package, vision_ort):
    """Under IO binding (the CUDA path, exercised here on the CPU) the cache is fed back from one
    step to the next without a host copy while the beams keep their order, and comes to the host
    to be reordered when they swap; the logits equal the plain path's at every step."""
    from inference.decoder_step import KVCacheStep
    from inference.ort_runtime import DeviceTensor, GraphSession

    steps = {}
    for bound in (False, True):
        session = GraphSession(tiny_package / "decoder.onnx", "cpu", threads=2)
        session.use_binding = bound
        steps[bound] = KVCacheStep(session, vision_ort["cross_keys"], vision_ort["cross_values"])
    ids = np.array([[2]], dtype=np.int64)
    where = []
    for order in ([0, 0], [0, 1], [0, 1], [1, 0], [0, 1]):
        (plain, _), (bound, _) = (steps[b].step(ids) for b in (False, True))
        np.testing.assert_allclose(bound, plain, rtol=0, atol=1e-6)
        for step in steps.values():
            step.reorder(np.array(order))
        where.append(isinstance(steps[True]._past[0], DeviceTensor))
        ids = np.array([[17], [40]], dtype=np.int64)
    assert where == [False, True, True, False, True]
    assert all(isinstance(p, np.ndarray) for p in steps[False]._past)


def test_fixed_shape_decoder_matches_the_dynamic_decoder_step_by_step(tmp_path, tiny_package, tiny_model, sessions, vision_ort):
    """The fixed-shape decoder (for CUDA graphs) against the dynamic one: the beam reorder as an
    input, the cache slots after the position masked. fp32 within 1e-4, the package's fp16
    graph within 1e-2, at every step of a search whose beams swap."""
    from models.export.onnx_export import export_decoder_static

    capacity = 8
    static = open_session(export_decoder_static(tiny_model, tmp_path / "static.onnx", 2, capacity))
    half = open_session(tiny_package / "decoder_static.fp16.onnx")
    dynamic = sessions["decoder.onnx"]
    cross = {n: np.repeat(vision_ort[n], 2, axis=1) for n in ("cross_keys", "cross_values")}
    layers, _, heads, _, dh = cross["cross_keys"].shape
    past = np.zeros((layers, 2, heads, 0, dh), np.float32)
    cache = {"cache_keys": np.zeros((layers, 2, heads, capacity, dh), np.float32)}
    cache["cache_values"] = cache["cache_keys"].copy()
    cache_half = {k: np.zeros((layers, 2, heads, 120, dh), np.float16) for k in cache}
    keys = values = past
    rng = np.random.default_rng(3)
    for position, order in enumerate(([0, 0], [0, 0], [1, 0], [1, 1], [0, 1], [1, 0])):
        ids = np.full((2, 1), 2) if position == 0 else rng.integers(4, 200, (2, 1))
        order = np.array(order)
        keys, values = keys[:, order], values[:, order]
        logits, keys, values, attention = dynamic.run(None, {"input_ids": ids, "past_keys": keys,
                                                             "past_values": values, **cross})
        feeds = {"input_ids": ids, "position": np.array([position]), "beam_index": order, **cross}
        s_logits, s_keys, s_values, s_attention, top_logprobs, top_ids = static.run(None, {**feeds, **cache})
        cache = {"cache_keys": s_keys, "cache_values": s_values}
        np.testing.assert_allclose(s_logits, logits, rtol=0, atol=1e-4)
        # Each beam's five best log-probabilities, best first, as the search would rank them.
        logprobs = log_softmax(logits[:, -1])
        np.testing.assert_array_equal(top_ids, np.argsort(-logprobs, axis=1, kind="stable")[:, :5])
        np.testing.assert_allclose(top_logprobs, np.take_along_axis(logprobs, top_ids, 1), rtol=0, atol=1e-4)
        np.testing.assert_allclose(s_attention, attention, rtol=0, atol=1e-4)
        np.testing.assert_allclose(s_keys[:, :, :, : position + 1], keys, rtol=0, atol=1e-5)
        h_feeds = {**feeds, **{k: v.astype(np.float16) for k, v in cross.items()}, **cache_half}
        h_logits, h_keys, h_values, _, h_top, h_ids = half.run(None, h_feeds)
        cache_half = {"cache_keys": h_keys, "cache_values": h_values}
        np.testing.assert_allclose(h_logits.astype(np.float32), logits, rtol=0, atol=FP16_TOL)
        # The fp16 graph normalises its own float16 logits in float32.
        assert h_top.dtype == np.float32
        np.testing.assert_allclose(h_top, np.take_along_axis(log_softmax(h_logits[:, -1]), h_ids, 1), rtol=0, atol=1e-5)
