"""`medmpt-workstation --self-test`: checks a (frozen) install works: Qt, resources, default model, exports."""

from __future__ import annotations

import sys
from pathlib import Path

from app import __version__
from app.export_check import check_exports
from app.model_check import check_default_model


def run_self_test(app, log_path: Path) -> int:
    """Print one line per check; exit code 0 when every check passed."""
    from ui.main_window import MainWindow

    failures = 0
    window = MainWindow()
    window.show()
    app.processEvents()
    grabbed = window.grab()
    print(f"qt: {app.platformName()} window {grabbed.width()}x{grabbed.height()}")
    if grabbed.isNull():
        failures += 1
    window.close()
    print(f"version: {__version__}; log file: {log_path}")
    status, message = check_default_model()
    print(f"model: {message}")
    if status == "failed":
        failures += 1
    status, message = check_exports()
    print(f"exports: {message}")
    if status == "failed":
        failures += 1
    print("self-test: " + ("passed" if failures == 0 else f"FAILED ({failures})"))
    sys.stdout.flush()
    return 0 if failures == 0 else 1
