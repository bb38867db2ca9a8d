"""`medmpt bench report PATH`: files on disk to a finished draft with heatmaps, stage by stage.

Runs the whole chain N times (index + load the series, load the model, preprocess, vision,
decode, explain, and the uint8 heatmap volumes the viewer shows, for the report and every
sentence), then a second draft with the sessions already open (the next study), and prints the
median and range of each stage. Prints figures only; asserts nothing. Must not import Qt or torch.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from app.cli_report import load_series_volume, resolve_model_dir
from app.drafting import draft_report_task
from app.tasks import run_sync

STAGES = ("series_load", "model_load", "preprocess", "vision", "decode", "explain", "heatmaps", "total",
          "warm_draft")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", help="folder, DICOM files, .zip or DICOMDIR")
    parser.add_argument("--series", metavar="UID", help="SeriesInstanceUID instead of the automatic choice")
    parser.add_argument("--model", metavar="DIR", type=Path, help="model package folder (default: the bundled model)")
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    parser.add_argument("--runs", type=int, default=3, help="how many end-to-end runs (median reported)")


def one_run(path: str, series: str | None, model_dir: Path, device: str) -> tuple[dict[str, float], str, int]:
    """Milliseconds per stage for one cold end-to-end run; also the device and token count."""
    from inference.runtime import ReportRuntime

    t0 = time.perf_counter()
    volume, _, _ = load_series_volume(path, series)
    t1 = time.perf_counter()
    runtime = ReportRuntime.load(model_dir, device=device)
    t2 = time.perf_counter()
    draft = run_sync(draft_report_task(volume, runtime))
    t3 = time.perf_counter()
    result = draft.result
    result.heatmap_uint8()  # the viewer's form, for the report and every sentence
    for index in range(len(result.sentences)):
        result.heatmap_uint8(index)
    t4 = time.perf_counter()
    run_sync(draft_report_task(volume, runtime))  # the next study: sessions already open
    t5 = time.perf_counter()
    timings = result.timings
    ms = {"series_load": 1000 * (t1 - t0), "model_load": 1000 * (t2 - t1),
          "preprocess": timings.preprocess_ms, "vision": timings.vision_ms, "decode": timings.decode_ms,
          "explain": timings.explain_ms, "heatmaps": 1000 * (t4 - t3), "total": 1000 * (t4 - t0),
          "warm_draft": 1000 * (t5 - t4)}
    return ms, runtime.device, len(result.tokens)


def run(args: argparse.Namespace) -> int:
    model_dir = resolve_model_dir(args.model)
    if model_dir is None:
        print("medmpt bench report: no model package is bundled yet; pass --model DIR.", file=sys.stderr)
        return 2
    if args.runs < 1:
        print("medmpt bench report: --runs must be at least 1", file=sys.stderr)
        return 2
    runs = []
    try:
        for _ in range(args.runs):
            ms, device, tokens = one_run(args.path, args.series, model_dir, args.device)
            runs.append(ms)
    except Exception as exc:  # a benchmark reports, never crashes
        print(f"medmpt bench report: {exc}", file=sys.stderr)
        return 1
    print(f"report benchmark: {args.runs} run(s), device {device.upper()} (requested {args.device}), "
          f"{tokens} tokens, model {model_dir.name}")
    print(f"{'stage':<12} {'median ms':>10} {'min ms':>10} {'max ms':>10} {'share':>7}")
    total = statistics.median(r["total"] for r in runs)
    for stage in STAGES:
        values = [r[stage] for r in runs]
        median = statistics.median(values)
        share = f"{100 * median / total:6.1f}%" if stage not in ("total", "warm_draft") and total else ""
        print(f"{stage:<12} {median:>10.1f} {min(values):>10.1f} {max(values):>10.1f} {share:>7}")
    loaded = statistics.median(r["total"] - r["model_load"] for r in runs)
    print(f"files -> draft with heatmaps, the model already loaded (the workstation loads it at launch): {loaded:.1f} ms")
    warm = statistics.median(r["warm_draft"] for r in runs)
    cold = statistics.median(r["total"] - r["heatmaps"] for r in runs)
    print(f"cold (files -> draft) / warm (draft with open sessions): {cold / warm:.1f}x")
    return 0
