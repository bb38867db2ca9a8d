"""`medmpt bench KIND ...`: dispatches to one benchmark module per kind, imported on use.

Each benchmark module exposes `add_arguments(parser)` and `run(args) -> int`, like a command.
Benchmarks print figures and ratios measured side by side in one run; they assert nothing.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# kind -> (module, help, needs the 'train' extra)
BENCHMARKS: dict[str, tuple[str, str, bool]] = {
    "load": ("app.dicom.bench_load", "DICOM series loading vs SimpleITK, pydicom and raw reads", False),
    "infer": ("models.bench_infer", "published torch algorithm vs our ONNX Runtime path", True),
    "report": ("app.bench_report", "files on disk to finished draft with heatmaps", False),
    "view": ("ui.bench_view", "first slice and per-slice render time in the viewer", False),
    "autosave": ("app.reports.bench_autosave", "report store autosave and reopen latency, synchronous FULL vs NORMAL", False),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=sorted(BENCHMARKS), help="which benchmark")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="the benchmark's own arguments")


def run(args: argparse.Namespace) -> int:
    module_name, help_text, needs_train = BENCHMARKS[args.kind]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = " Install the 'train' extra: pip install -e '.[train]'." if needs_train else ""
        print(f"medmpt bench {args.kind}: cannot load ({exc}).{hint}", file=sys.stderr)
        return 3
    parser = argparse.ArgumentParser(prog=f"medmpt bench {args.kind}", description=help_text)
    module.add_arguments(parser)
    return int(module.run(parser.parse_args(args.rest)) or 0)
