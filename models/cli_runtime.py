"""What the model-side commands `medmpt eval` and `medmpt calibrate` share: the model package
they open and the phantom studies they read (a folder from `medmpt phantom make`, or held-out
phantoms rendered from a seed). Must not import ui.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_source_arguments(parser: argparse.ArgumentParser, default_seed: int, seed_help: str) -> None:
    """DATA, --model, --generate N, --seed S, --cache, --device."""
    parser.add_argument("data", type=Path, nargs="?", help="phantom folder (from `medmpt phantom make`)")
    parser.add_argument("--model", type=Path, default=None, help="model package folder (default: the bundled one)")
    parser.add_argument("--generate", type=int, default=None, metavar="N",
                        help="render N held-out phantoms (seeds never used in training) instead of reading DATA")
    parser.add_argument("--seed", type=int, default=default_seed, help=f"held-out seed for --generate (0..999; {seed_help})")
    parser.add_argument("--cache", type=Path, default=None,
                        help="keep generated phantoms in this folder and reuse them on later runs")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))


def source_problem(args: argparse.Namespace, least: int = 1) -> str | None:
    """Why the studies named by `add_source_arguments` cannot be read (None when they can)."""
    if (args.generate is None) == (args.data is None):
        return "give a phantom folder DATA or --generate N (not both)"
    if args.generate is not None and args.generate < least:
        return f"--generate needs at least {least} studies" if least > 1 else "--generate needs a positive number of studies"
    if args.data is not None and not args.data.is_dir():
        return f"{args.data} is not a folder"
    if not 0 <= args.seed < 1000:
        return f"--seed must be in 0..999, got {args.seed}"
    return None


def open_runtime(model: Path | None, device: str, command: str) -> tuple[Path, Any] | None:
    """(package folder, ReportRuntime) for `model` (default: the bundled package) on `device`;
    None after saying on stderr, as `medmpt COMMAND`, why it cannot be opened."""
    from inference.errors import InferenceError
    from inference.runtime import ReportRuntime

    if model is None:
        from app.paths import default_model_dir

        model = default_model_dir()
    if model is None:
        print(f"medmpt {command}: no model package given and none bundled (--model DIR)", file=sys.stderr)
        return None
    try:
        return Path(model), ReportRuntime.load(model, device=device)
    except (InferenceError, OSError, ValueError) as exc:
        print(f"medmpt {command}: cannot load the model package {model}: {exc}", file=sys.stderr)
        return None
