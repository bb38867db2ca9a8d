"""`medmpt bench infer`: analytic cost matches the reference; the CLI prints the comparison."""

from __future__ import annotations

import pytest

from app.cli import main
from models.bench_infer import vision_macs
from models.medmpt.config import get_config


def test_vision_cost_matches_the_published_figure():
    # Reference section 8: 17.56 G multiply-adds per slice, ~562 G per 32-slice scan.
    macs = vision_macs(get_config("paper"))
    assert round(macs / 32 / 1e9, 2) == 17.56
    assert round(macs / 1e9) == 562


@pytest.mark.slow
def test_bench_infer_prints_both_paths_side_by_side(capsys):
    code = main(["bench", "infer", "--config", "tiny", "--steps", "3", "--repeats", "1",
                 "--peak-tflops", "1.0"])
    out = capsys.readouterr().out
    assert code == 0
    for row in ("vision ms per scan", "decoder ms per token", "whole report ms"):
        line = next(line for line in out.splitlines() if line.startswith(row))
        assert len(line.split()) >= 6, line  # label, (a), (b), ratio
    assert "same tokens: yes" in out
    assert "% of peak 1 TFLOP/s" in out


@pytest.mark.slow
def test_bench_infer_times_the_fixed_shape_graphs_where_there_are_some(monkeypatch, capsys):
    """On a GPU, (c) runs the one-scan vision graph and decodes with the fixed-shape decoder
    (CUDA graphs); here their fp16 graphs stand in on the CPU, with the same buffers and
    bindings."""
    import models.bench_infer as bench
    from inference.ort_runtime import GraphSession, OrtModel

    build, open_model = bench.build_bench_package, OrtModel.open.__func__
    monkeypatch.setattr(bench, "build_bench_package", lambda c, s, f, fp16, **kw: build(c, s, f, True, **kw))

    def with_static(cls, package, device="auto", threads=None):
        model = open_model(cls, package, device, threads)
        model.static_decoder = GraphSession(package.graph_path("decoder_static", "fp16"), "cpu")
        model.fixed_vision = GraphSession(package.graph_path("vision", "fp16"), "cpu", fixed_dims={"batch": 1})
        return model

    monkeypatch.setattr(OrtModel, "open", classmethod(with_static))
    assert main(["bench", "infer", "--config", "tiny", "--steps", "5", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "(c) fixed-shape decoder, CUDA graphs off" in out
    assert "(c) vision, batch fixed at one scan (CUDA graph off): median" in out
    line = next(line for line in out.splitlines() if line.startswith("(c) ORT, fixed-shape decoder"))
    assert "ms per token" in line and "same tokens as (b): yes" in line
    assert "with the one-scan graph vision" in line
    # Packed copies, one copy per tensor, and the whole logits on the host, side by side.
    both = next(line for line in out.splitlines() if line.startswith("(c) a step's small inputs"))
    assert "normalised there" in both and "same tokens: yes" in both
    assert any(line.startswith("(c) of which the graph's replay alone") for line in out.splitlines())


def test_bench_infer_refuses_bad_arguments(capsys):
    assert main(["bench", "infer", "--steps", "0"]) == 2
    assert "--steps" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_infer_keeps_a_package_that_bench_report_drafts_with(tmp_path, real_series_dir, capsys):
    """The GPU figures chain the two benchmarks: bench infer exports the random `paper` package,
    bench report drafts the real series with it (scripts/device_bench.sh)."""
    from inference.package import load_package

    kept = tmp_path / "package"
    assert main(["bench", "infer", "--config", "tiny", "--steps", "2", "--repeats", "1",
                 "--keep-package", str(kept)]) == 0
    assert load_package(kept).manifest["name"] == "bench-tiny"  # complete, every SHA-256 checks
    capsys.readouterr()
    assert main(["bench", "report", str(real_series_dir), "--model", str(kept), "--device", "cpu",
                 "--runs", "1"]) == 0
    out = capsys.readouterr().out
    assert "device CPU (requested cpu)" in out
    assert "files -> draft with heatmaps, the model already loaded" in out
    assert main(["bench", "infer", "--steps", "1", "--keep-package", str(kept)]) == 2
    assert "is not an empty folder" in capsys.readouterr().err
    assert main(["bench", "infer", "--steps", "1", "--keep-package", str(kept / "manifest.json")]) == 2
    assert "is not an empty folder" in capsys.readouterr().err
