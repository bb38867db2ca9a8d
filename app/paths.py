"""Where the workstation keeps its files: user data, logs, bundled models. Must not import Qt."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import platformdirs

APP_NAME = "medmpt-workstation"
APP_AUTHOR = "medmpt"
DEFAULT_MODEL_NAME = "medmpt-tiny-phantom"


def user_data_dir() -> Path:
    override = os.environ.get("MEDMPT_DATA_DIR")
    if override:
        return Path(override)
    return Path(platformdirs.user_data_dir(APP_NAME, APP_AUTHOR))


def user_log_dir() -> Path:
    override = os.environ.get("MEDMPT_LOG_DIR")
    if override:
        return Path(override)
    return Path(platformdirs.user_log_dir(APP_NAME, APP_AUTHOR))


def _packages_root() -> Path | None:
    """The folder holding packaged models, without importing the torch-side `models` package."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "models" / "packages"
    spec = importlib.util.find_spec("models")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "packages"


def default_model_dir() -> Path | None:
    """The bundled default model package, or MEDMPT_MODEL_DIR when set; None if absent."""
    override = os.environ.get("MEDMPT_MODEL_DIR")
    if override:
        return Path(override)
    root = _packages_root()
    if root is None:
        return None
    candidate = root / DEFAULT_MODEL_NAME
    return candidate if (candidate / "manifest.json").is_file() else None


def demo_study_dir() -> Path | None:
    """The bundled demo study (a synthetic phantom series), if present."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    base = Path(frozen_root) if frozen_root else Path(__file__).resolve().parent.parent
    candidate = base / "resources" / "demo"
    return candidate if candidate.is_dir() and any(candidate.iterdir()) else None
