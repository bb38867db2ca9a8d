"""End to end with a random-weight package: load, draft, explain, fall back, cancel."""

from __future__ import annotations

import hashlib
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from inference.errors import CancelledError, PackageError
from inference.preprocess import CTInput
from inference.runtime import ReportRuntime


@pytest.fixture(scope="module")
def drafted(cpu_runtime: ReportRuntime, small_ct: CTInput):
    progress = []
    result = cpu_runtime.draft_sync(small_ct, on_progress=progress.append)
    return result, progress


def test_a_report_is_drafted_with_sentences_inside_the_volume(drafted, small_ct: CTInput) -> None:
    result, _ = drafted
    assert len(result.tokens) > 0 and result.text.strip()
    assert result.sentences, "the decoded text gave no sentence"
    depth = small_ct.hu.shape[0]
    for sentence in result.sentences:
        assert sentence.slice_relevance.shape == (depth,)
        assert 0 <= sentence.most_relevant_slice < depth
        assert sentence.slice_relevance[sentence.most_relevant_slice] == pytest.approx(1.0)
        assert 0 <= sentence.token_start <= sentence.token_end <= len(result.tokens)
    assert set(result.original_indices.tolist()) <= set(range(depth))


def test_heatmaps_have_the_ct_shape(drafted, small_ct: CTInput) -> None:
    result, _ = drafted
    whole = result.heatmap_volume()
    first = result.heatmap_volume(0)
    for volume in (whole, first):
        assert volume.shape == small_ct.hu.shape and volume.dtype == np.float32
        assert volume.min() >= 0.0 and volume.max() <= 1.0 and volume.max() > 0.0
    assert result.heatmap_volume(0) is first  # computed once, then reused


def test_the_viewers_uint8_heatmaps_equal_the_float_ones_and_are_not_kept(drafted) -> None:
    from inference.explain import relevance_to_uint8

    result, _ = drafted
    kept = dict(result._volumes)
    for sentence in (None, *range(len(result.sentences))):
        shown = result.heatmap_uint8(sentence)
        assert shown.dtype == np.uint8
        np.testing.assert_array_equal(shown, relevance_to_uint8(result.heatmap_volume(sentence)))
        result._volumes.clear()  # the float volumes of this check only
    result._volumes.update(kept)
    before = len(result._volumes)
    result.heatmap_uint8(0)
    assert len(result._volumes) == before  # the viewer's path keeps no float32 volume


def test_diagnosis_provenance_and_progress(drafted, random_package: Path) -> None:
    result, progress = drafted
    assert set(result.diagnosis) == {"covid_severity", "nodule", "effusion"}
    for probabilities in result.diagnosis.values():
        assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    assert list(result.diagnosis["covid_severity"]) == ["CT-0", "CT-1", "CT-2", "CT-3"]
    manifest_hash = hashlib.sha256((random_package / "manifest.json").read_bytes()).hexdigest()
    assert result.model.model_hash == manifest_hash
    assert "not for clinical use" in result.model.label
    assert result.device == "cpu"
    fractions = [p.fraction for p in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert sum(p.stage == "decode" for p in progress) >= len(result.tokens)
    assert [p.text for p in progress if p.stage == "decode"][-1] == result.text  # streamed text
    assert result.timings.vision_ms > 0 and result.timings.decode_ms > 0
    assert result.to_dict()["model"]["hash"] == manifest_hash


def test_same_scan_gives_the_same_report(cpu_runtime: ReportRuntime, drafted, small_ct: CTInput) -> None:
    again = cpu_runtime.draft_sync(small_ct)
    assert again.text == drafted[0].text


def test_cuda_request_without_a_gpu_falls_back_to_cpu(random_package: Path, small_ct: CTInput, capsys) -> None:
    import inference.ort_runtime

    inference.ort_runtime._preloaded.clear()  # look for the CUDA libraries again, in this test
    runtime = ReportRuntime.load(random_package, device="cuda", warmup=False)
    if runtime.device == "cuda":
        pytest.skip("a working CUDA GPU is present: no fallback to observe")
    assert runtime.notices and "CPU" in runtime.notices[0]
    # Looking for CUDA libraries (onnxruntime.preload_dlls prints what it misses) stays in the log.
    assert capsys.readouterr().out == ""
    result = runtime.draft_sync(small_ct)
    assert result.device == "cpu" and result.notices == runtime.notices
    assert result.text.strip()


def test_gpu_failure_during_a_draft_retries_on_cpu(random_package: Path, small_ct: CTInput) -> None:
    runtime = ReportRuntime.load(random_package, device="cpu", warmup=False)
    runtime.model.device = "cuda"  # pretend the sessions are on a GPU that runs out of memory
    vision = runtime.model.vision

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("CUDA failure 2: out of memory")

    vision.run = out_of_memory
    result = runtime.draft_sync(small_ct)
    assert result.device == "cpu" and result.text.strip()
    assert any("switched to CPU" in n for n in result.notices)


@pytest.mark.parametrize("k", [1, 5])
def test_cancel_at_token_k_stops_within_one_token(cpu_runtime: ReportRuntime, small_ct: CTInput, k: int) -> None:
    cancel = threading.Event()
    tokens_seen = []

    def on_progress(progress) -> None:
        if progress.stage == "decode":
            tokens_seen.append(progress.tokens)
            if progress.tokens == k:
                cancel.set()

    with pytest.raises(CancelledError) as caught:
        cpu_runtime.draft_sync(small_ct, cancel=cancel, on_progress=on_progress)
    assert max(tokens_seen) <= k + 1
    assert caught.value.tokens_generated <= k + 1


def test_cancel_during_the_vision_run_terminates_it(cpu_runtime: ReportRuntime, small_ct: CTInput) -> None:
    cancel = threading.Event()
    timers: list[threading.Timer] = []
    stages = []

    def on_progress(progress) -> None:
        stages.append(progress.stage)
        if progress.stage == "vision":  # the run starts now and lasts far longer than 50 ms
            timers.append(threading.Timer(0.05, cancel.set))
            timers[-1].start()

    try:
        with pytest.raises(CancelledError) as caught:
            cpu_runtime.draft_sync(small_ct, cancel=cancel, on_progress=on_progress)
    finally:
        for timer in timers:
            timer.join()
    assert "decode" not in stages and caught.value.tokens_generated == 0
    assert "during a model run" in str(caught.value)  # the run itself was cut short
    assert cpu_runtime.draft_sync(small_ct).text  # the runtime still works afterwards


def test_a_vision_run_can_be_terminated_from_another_thread(cpu_runtime: ReportRuntime) -> None:
    pixels = np.zeros((1, 32, 3, 224, 224), dtype=np.float32)
    vision = cpu_runtime.model.vision
    timer = threading.Timer(0.05, vision.terminate)
    timer.start()
    try:
        with pytest.raises(CancelledError):
            for _ in range(20):  # a run takes far longer than 50 ms on CPU; 20 to be sure
                vision.run({"pixel_values": pixels})
    finally:
        timer.join()
    assert "slice_tokens" in vision.run({"pixel_values": pixels})  # the session still works


def test_tampered_package_is_refused_naming_the_file(random_package: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(random_package, tmp_path / "pkg"))
    data = bytearray((copy / "vision.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / "vision.onnx").write_bytes(bytes(data))
    with pytest.raises(PackageError, match=r"vision\.onnx"):
        ReportRuntime.load(copy, device="cpu")


def test_io_binding_path_gives_the_same_tokens(random_package: Path, cpu_runtime: ReportRuntime,
                                               drafted, small_ct: CTInput) -> None:
    # The CUDA path binds inputs and pins the cross-attention K/V; exercise that code on CPU.
    runtime = ReportRuntime.load(random_package, device="cpu", warmup=False)
    runtime.model.vision.use_binding = runtime.model.decoder.use_binding = True
    assert runtime.draft_sync(small_ct).tokens == drafted[0].tokens


def test_package_with_a_wrong_graph_is_refused_clearly(random_package: Path, tmp_path: Path) -> None:
    import json

    copy = Path(shutil.copytree(random_package, tmp_path / "pkg"))
    shutil.copyfile(copy / "decoder.onnx", copy / "vision.onnx")  # right hash, wrong graph
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"]["vision.onnx"] = hashlib.sha256((copy / "vision.onnx").read_bytes()).hexdigest()
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PackageError, match="vision graph .* lacks pixel_values"):
        ReportRuntime.load(copy, device="cpu", warmup=False)
