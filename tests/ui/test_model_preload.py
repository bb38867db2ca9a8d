"""The workstation verifies and warms up its model at launch, so the first study's draft does
not wait for it (for the `paper` model on a GPU: 1.6 s of a 1.9 s first draft)."""

from __future__ import annotations

import shutil

import pytest

pytestmark = [pytest.mark.ui, pytest.mark.slow]


@pytest.fixture
def make_window(qtbot, tmp_path):
    from app.ai_service import AiService
    from app.report_service import ReportService
    from ui import workers
    from ui.main_window import MainWindow

    def make(package, ai_enabled=True):
        win = MainWindow(AiService(package, device="cpu"), ReportService(tmp_path / "reports.sqlite3", "tester"),
                         ai_enabled=ai_enabled)
        qtbot.addWidget(win)
        return win

    yield make
    workers.shutdown()


def test_the_model_is_ready_before_the_first_study_and_the_draft_does_not_load_it(
        qtbot, make_window, random_package, real_series_dir, monkeypatch):
    import app.ai_service

    loads = []
    load = app.ai_service.ReportRuntime.load
    monkeypatch.setattr(app.ai_service.ReportRuntime, "load",
                        staticmethod(lambda *args, **kwargs: (loads.append(args), load(*args, **kwargs))[1]))
    window = make_window(random_package)
    window.preload_model()
    assert "Loading" in window.report_panel.model_label.text()
    qtbot.waitUntil(lambda: window.ai.summary is not None, timeout=60_000)
    qtbot.waitUntil(lambda: "on CPU" in window.report_panel.model_label.text(), timeout=10_000)
    assert "Loading" not in window.report_panel.model_label.text()
    assert len(loads) == 1

    window.open_paths([real_series_dir])
    qtbot.waitUntil(lambda: window.volume is not None, timeout=60_000)
    window.draft_report()
    qtbot.waitUntil(lambda: window.draft is not None, timeout=120_000)
    assert len(loads) == 1  # the draft used the model loaded at launch


def test_a_tampered_package_is_reported_beside_the_model_at_launch(qtbot, make_window, random_package, tmp_path):
    package = shutil.copytree(random_package, tmp_path / "package")
    graph = package / "decoder.onnx"
    graph.write_bytes(graph.read_bytes()[:-10] + b"0123456789")
    window = make_window(package)
    window.preload_model()
    qtbot.waitUntil(lambda: "Not loaded" in window.report_panel.model_label.text(), timeout=60_000)
    assert "decoder.onnx" in window.report_panel.model_label.text()
    assert window.ai.summary is None  # drafting later tries again and says why it fails


def test_the_unassisted_arm_loads_no_model(make_window, random_package):
    from ui import workers

    window = make_window(random_package, ai_enabled=False)
    window.preload_model()
    assert workers.active_task_count() == 0 and window.ai.summary is None
