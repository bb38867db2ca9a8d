"""onnxruntime has one home in inference (architecture rule 4), and device names are checked."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import inference
from inference.errors import InferenceError


def _imports_onnxruntime(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "onnxruntime" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "onnxruntime":
            return True
    return False


def test_only_ort_runtime_imports_onnxruntime() -> None:
    root = Path(inference.__file__).parent
    importers = sorted(p.name for p in root.rglob("*.py") if _imports_onnxruntime(p))
    assert importers == ["ort_runtime.py"]


def test_unknown_device_is_refused_with_the_choices(random_package: Path) -> None:
    from inference.runtime import ReportRuntime

    with pytest.raises(InferenceError, match="auto, cuda, cpu"):
        ReportRuntime.load(random_package, device="gpu", warmup=False)
