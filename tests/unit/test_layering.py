"""The layering rules of docs/architecture.md hold, and breaking one fails (import-linter)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("app", "ui", "inference", "models", "resources")
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT), str(root / "pyproject.toml"), "--no-cache", "--no-logo"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )


def _copy_tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    root.mkdir()
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    ignore = shutil.ignore_patterns("__pycache__", "*.onnx", "*.dcm", "packages", "demo")
    for package in PACKAGES:
        shutil.copytree(REPO / package, root / package, ignore=ignore)
    return root


def test_the_real_tree_keeps_every_layering_contract():
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("inference/_bad.py", "import PySide6\n", "inference is free of Qt"),
        ("inference/_bad.py", "import pydicom\n", "inference is free of Qt"),
        ("app/_bad.py", "import ui.main_window\n", "Layers: ui -> app -> inference"),
        ("app/_bad.py", "import vtk\n", "app is Qt-free and VTK-free"),
        ("ui/_bad.py", "from inference import __doc__\n", "ui talks to app services"),
        ("app/_bad.py", "import models\n", "Nothing at run time imports models/"),
        ("ui/_bad.py", "import SimpleITK\n", "DICOM libraries live only in app.dicom"),
        ("app/_bad.py", "import pydicom\n", "DICOM libraries live only in app.dicom"),
        ("inference/_bad.py", "import onnxruntime\n", "ONNX Runtime lives only in inference.ort_runtime"),
    ],
)
def test_breaking_a_layering_rule_fails(tmp_path, module, line, contract):
    root = _copy_tree(tmp_path)
    (root / module).write_text(line)
    result = _lint(root)
    assert result.returncode != 0, "import-linter accepted a forbidden import: " + line
    assert contract in result.stdout
    assert "BROKEN" in result.stdout
