"""`medmpt-workstation`: the GUI entry point and composition root (builds the window)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from app import __version__, paths
from app.logging_setup import configure_logging

log = logging.getLogger(__name__)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="medmpt-workstation", description="MedMPT chest CT workstation")
    parser.add_argument("path", nargs="*", type=Path, help="DICOM folder, files, zip or DICOMDIR to open")
    parser.add_argument("--version", action="version", version=f"medmpt-workstation {__version__}")
    parser.add_argument("--demo", action="store_true", help="open the bundled demo study")
    parser.add_argument("--screenshot", type=Path, metavar="PNG",
                        help="render the window off-screen to PNG (after opening PATH) and exit")
    parser.add_argument("--draft", action="store_true", help="draft the report as soon as the series is shown")
    parser.add_argument("--model", type=Path, help="model package folder (default: the bundled model)")
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto", help="where the model runs")
    parser.add_argument("--size", default="1600x1000", help="window size for --screenshot (WxH)")
    parser.add_argument("--tab", choices=("slices", "3d"), default="slices",
                        help="view tab shown in the --screenshot (3d: the volume rendering with the heatmap)")
    parser.add_argument("--panel", choices=("report", "findings"), default="report",
                        help="right-hand tab shown in the --screenshot (findings: the clinicians' findings review)")
    parser.add_argument("--self-test", action="store_true",
                        help="start Qt off-screen, load the default model if present, exit 0 when healthy")
    return parser.parse_args(argv)


def _wait_for_tasks(app, timeout_s: float = 120.0) -> None:
    from ui import workers

    deadline = time.monotonic() + timeout_s
    idle_since = None
    while time.monotonic() < deadline:
        app.processEvents()
        if workers.active_task_count():
            idle_since = None
        elif idle_since is None:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > 0.5:  # idle, and results delivered: a finished task may start another
            return
        time.sleep(0.01)
    log.warning("tasks still running after %.0f s; taking the screenshot anyway", timeout_s)


def main(argv: list[str] | None = None) -> int:
    code = _run(argv)
    if getattr(sys, "frozen", False):
        # In the PyInstaller bundle a C extension's refcount bug can abort the interpreter's final
        # garbage collection after a clean run; everything is saved and flushed by now, so leave
        # without it. (Not seen outside the bundle, where the normal exit is kept.)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _run(argv: list[str] | None) -> int:
    args = _parse(list(sys.argv[1:] if argv is None else argv))
    headless = args.screenshot is not None or args.self_test
    if headless:
        if not os.environ.get("QT_QPA_PLATFORM"):
            os.environ["QT_QPA_PLATFORM"] = "offscreen"
    log_path = configure_logging()
    log.info("medmpt-workstation %s starting (headless=%s)", __version__, headless)

    from PySide6.QtWidgets import QApplication

    from resources.loader import read_text
    from ui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("MedMPT Workstation")
    app.setStyleSheet(read_text("styles", "dark.qss"))
    if args.self_test:
        from ui.self_test import run_self_test

        return run_self_test(app, log_path)

    from app.ai_service import AiService
    from app.dicom import warm_up_header_workers

    if not headless:
        warm_up_header_workers()  # first opens of large folders read headers on every core
    window = MainWindow(AiService(args.model, args.device))
    window.auto_draft = args.draft
    window.preload_model()  # verified and warm before the first study is opened
    open_paths = list(args.path)
    if args.demo and not open_paths:
        demo = paths.demo_study_dir()
        if demo is None:
            print("medmpt-workstation: no bundled demo study found; opening an empty window", file=sys.stderr)
        else:
            open_paths = [demo]
    if args.screenshot is not None:
        width, height = (int(v) for v in args.size.lower().split("x"))
        window.resize(width, height)
    window.show()
    if open_paths:
        window.open_paths(open_paths)
    if args.screenshot is not None:
        _wait_for_tasks(app)
        if args.tab == "3d":
            window.view_tabs.setCurrentWidget(window.volume_view)
            _wait_for_tasks(app)
            window.volume_view.render_image()  # the still frame, whatever the resize timers did
        if args.panel == "findings":
            window.right_tabs.setCurrentWidget(window.findings_panel)
            _wait_for_tasks(app)
        image = window.grab()
        args.screenshot.parent.mkdir(parents=True, exist_ok=True)
        ok = image.save(str(args.screenshot))
        window.close()
        print(f"screenshot written to {args.screenshot}" if ok else f"could not write {args.screenshot}")
        return 0 if ok else 1
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
