"""Opening a model package for the model-side commands (`medmpt eval`, `medmpt calibrate`).

Must not import ui.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


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
