"""On a machine with a CUDA GPU: the fp16 CUDA path drafts the same report as the CPU path."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gpu


def test_cuda_draft_matches_cpu(random_package, small_ct):
    from inference.runtime import ReportRuntime

    cuda = ReportRuntime.load(random_package, device="cuda")
    assert cuda.device == "cuda", cuda.notices
    cpu = ReportRuntime.load(random_package, device="cpu")
    on_gpu, on_cpu = cuda.draft_sync(small_ct), cpu.draft_sync(small_ct)
    # fp16 on the GPU: the same diagnosis within 1e-2 and, for random weights, mostly the same text.
    for head, classes in on_cpu.diagnosis.items():
        for name, p in classes.items():
            assert abs(on_gpu.diagnosis[head][name] - p) < 1e-2
    agree = np.mean([a == b for a, b in zip(on_gpu.tokens, on_cpu.tokens, strict=False)])
    assert agree > 0.8


def test_cuda_graph_decoder_is_used_and_writes_what_the_dynamic_decoder_writes(random_package, small_ct, caplog):
    """The fixed-shape decoder and the one-scan vision graph open with CUDA graphs on, survive
    warm-up and two drafts (the captured graphs replayed), and the decoder writes the dynamic
    CUDA decoder's report."""
    from inference.runtime import ReportRuntime

    runtime = ReportRuntime.load(random_package, device="cuda")
    for graph in (runtime.model.static_decoder, runtime.model.fixed_vision):
        assert graph is not None and graph.cuda_graph, caplog.text
    first, second = runtime.draft_sync(small_ct), runtime.draft_sync(small_ct)
    assert runtime.model.static_decoder is not None, caplog.text  # never dropped
    assert runtime.model.fixed_vision is not None, caplog.text
    assert first.tokens == second.tokens
    runtime.model.drop_static_decoder("compare with the dynamic decoder")
    assert runtime.draft_sync(small_ct).tokens == first.tokens


def test_bundled_model_on_cuda_writes_the_cpu_report_on_the_demo_study(caplog):
    """What a workstation with a GPU runs: the bundled model's fp16 graphs, both captured as
    CUDA graphs, write the CPU's report on the demo study with its diagnosis to 1e-2."""
    from pathlib import Path

    from app.cli_report import load_series_volume
    from app.drafting import ct_input
    from inference.runtime import ReportRuntime

    repo = Path(__file__).resolve().parents[2]
    volume, _, _ = load_series_volume(str(repo / "resources" / "demo"), None)
    ct = ct_input(volume)
    package = repo / "models" / "packages" / "medmpt-tiny-phantom"
    cuda = ReportRuntime.load(package, device="cuda")
    assert cuda.device == "cuda", cuda.notices
    for graph in (cuda.model.static_decoder, cuda.model.fixed_vision):
        assert graph is not None and graph.cuda_graph, caplog.text
    on_gpu, on_cpu = cuda.draft_sync(ct), ReportRuntime.load(package, device="cpu").draft_sync(ct)
    for head, classes in on_cpu.diagnosis.items():
        for name, p in classes.items():
            assert abs(on_gpu.diagnosis[head][name] - p) < 1e-2, (head, name)
    assert on_gpu.tokens == on_cpu.tokens
