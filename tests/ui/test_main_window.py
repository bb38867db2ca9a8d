"""The workstation window opens, lists a real series, and renders itself to a PNG off-screen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ui

from app import __version__  # noqa: E402

BIN = Path(sys.executable).parent


def _run(*args: str, timeout: int = 180) -> subprocess.CompletedProcess[str]:
    env = {"QT_QPA_PLATFORM": "offscreen"}
    import os

    return subprocess.run(
        [str(BIN / "medmpt-workstation"), *args], capture_output=True, text=True,
        timeout=timeout, env={**os.environ, **env},
    )


def test_version_flag():
    result = _run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"medmpt-workstation {__version__}"


def test_screenshot_of_the_empty_window_is_a_real_picture(tmp_path):
    from PySide6.QtGui import QImage

    out = tmp_path / "empty.png"
    result = _run("--screenshot", str(out), "--size", "1440x900")
    assert result.returncode == 0, result.stderr
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1440, 900)
    # Dark theme: the window is mostly dark, and not one flat colour (menus, docks, text drawn).
    samples = [image.pixelColor(x, y) for x in range(0, 1440, 37) for y in range(0, 900, 29)]
    assert len({c.name() for c in samples}) > 3
    lightness = sorted(c.lightness() for c in samples)
    assert lightness[len(lightness) // 2] < 60


def test_screenshot_can_show_the_findings_review_instead_of_the_report(tmp_path):
    """Reviewers see the clinicians' tab with `--panel findings`: only the right-hand dock changes."""
    from PySide6.QtGui import QImage

    shots = {}
    for panel in ("report", "findings"):
        shots[panel] = tmp_path / f"{panel}.png"
        result = _run("--screenshot", str(shots[panel]), "--size", "1440x900", "--panel", panel)
        assert result.returncode == 0, result.stderr
    report, findings = QImage(str(shots["report"])), QImage(str(shots["findings"]))

    def differing(x0: int, x1: int) -> int:
        return sum(report.pixelColor(x, y) != findings.pixelColor(x, y)
                   for x in range(x0, x1, 7) for y in range(0, 900, 7))

    assert differing(1100, 1440) > 50  # the dock shows another tab
    assert differing(0, 900) == 0  # the viewer is untouched


def test_opening_the_real_series_lists_it_and_preselects_it(qtbot, real_series_dir):
    from ui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    window.open_paths([real_series_dir])
    qtbot.waitUntil(lambda: window.series_list.count() == 1, timeout=30_000)
    item = window.series_list.item(0)
    assert "64 images" in item.text()
    assert window.series_list.currentItem() is item  # the model's choice is preselected
    # the whole title is readable in the dock's width: two lines, nothing behind a scroll bar
    window.resize(1600, 1000)
    window.show()
    qtbot.waitExposed(window)
    lines = item.text().splitlines()
    assert lines[0] == "CT 5mm" and lines[1] == "64 images, 512x512, 5.00 mm"
    assert window.series_list.horizontalScrollBar().maximum() == 0
    assert window.study is not None
    assert window.study.choice.series is not None


def test_a_newer_open_wins_over_an_older_one(qtbot, real_series_dir, tmp_path):
    from ui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    window.open_paths([real_series_dir])
    window.open_paths([tmp_path])  # empty folder, opened second: it must be what is shown
    qtbot.waitUntil(lambda: window.study is not None, timeout=30_000)
    qtbot.wait(200)
    from ui import workers

    qtbot.waitUntil(lambda: workers.active_task_count() == 0, timeout=30_000)
    assert window.series_list.count() == 0
    assert window.study.index.series == []


def test_series_list_shows_a_thumbnail_and_the_study_is_remembered(qtbot, real_series_dir):
    from app.recent import recent_studies
    from ui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    window.open_paths([real_series_dir])
    qtbot.waitUntil(lambda: window.series_list.count() == 1, timeout=30_000)
    assert not window.series_list.item(0).icon().isNull()
    assert recent_studies()[0]["path"] == str(real_series_dir.resolve())
    window._on_recent_menu_about_to_show()
    assert str(real_series_dir.resolve()) in window.recent_menu.actions()[0].text()
    from ui import workers

    qtbot.waitUntil(lambda: workers.active_task_count() == 0, timeout=30_000)


def test_long_checks_and_notes_do_not_widen_the_report_dock(qtbot):
    from PySide6.QtWidgets import QDockWidget

    from ui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    window.resize(1600, 1000)
    window.show()
    qtbot.waitExposed(window)
    dock = window.findChild(QDockWidget, "reportDock")
    before = dock.width()
    check = "\u26a0 Check: the impression names the left upper lobe twice in one list. " * 12
    window.report_panel.diagnosis.setText(f"<b>AI diagnosis</b><p>{check}</p>")
    window.report_panel.model_label.setText("A model caption that goes on and on " * 8)
    qtbot.wait(50)
    assert dock.width() == before  # the text wraps; the images keep their room


def test_nothing_can_be_drafted_edited_or_signed_before_a_series_is_shown(qtbot, tmp_path):
    """A sentence typed with no series open would belong to no study: the actions wait for one."""
    from app.dicom.synthetic import SeriesSpec, write_series
    from app.report_service import ReportService
    from ui import workers
    from ui.main_window import MainWindow

    window = MainWindow(reports=ReportService(tmp_path / "reports.sqlite3", "tester"))
    qtbot.addWidget(window)
    panel = window.report_panel
    actions = [panel.draft_button, panel.sign_button, panel.whole_button, *panel.edit_buttons]
    assert not any(button.isEnabled() for button in actions)
    report_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Report")
    entries = {a.text().replace("&", ""): a for a in report_menu.actions() if not a.isSeparator()}
    needs_series = ["Draft report", "Whole-report attention", "Accept sentence", "Accept all",
                    "Edit sentence", "Delete sentence", "Add sentence", "Sign report\u2026"]
    assert not any(entries[name].isEnabled() for name in needs_series)  # greyed out, shortcuts inert
    assert not entries["Cancel draft"].isEnabled()
    panel.add_entry("FINDINGS", "Typed before any study was open.")  # also the Ctrl+N route
    assert not panel.document.entries

    write_series(tmp_path / "ct", SeriesSpec(count=24))
    window.controller.auto_draft = False
    window.open_paths([tmp_path / "ct"])
    qtbot.waitUntil(lambda: window.volume is not None, timeout=60_000)
    qtbot.waitUntil(lambda: workers.active_task_count() == 0, timeout=60_000)
    assert all(button.isEnabled() for button in actions)
    assert not panel.amend_button.isEnabled() and not panel.cancel_button.isEnabled()
    assert all(entries[name].isEnabled() for name in needs_series)
    assert not entries["Cancel draft"].isEnabled()  # nothing is drafting
    panel.add_entry("FINDINGS", "No pleural effusion.")
    assert [e.text for e in panel.document.entries] == ["No pleural effusion."]
    workers.shutdown()


def test_the_heatmap_legend_says_what_a_sentence_heatmap_is(qtbot):
    """A reader who sees an effusion sentence light up a nodule on its slice can find out why."""
    from ui.report_panel import ReportPanel

    panel = ReportPanel()
    qtbot.addWidget(panel)
    tip = panel.opacity_label.toolTip()
    assert "32 sampled slices" in tip and "the same for every sentence" in tip
    assert "not proof of a finding" in tip


def test_a_closed_window_leaves_no_widget_behind_in_either_arm(qtbot, tmp_path):
    """The reader study opens one window per case and deletes it after. The unassisted arm's
    hidden findings panel used to have no parent: every case left one behind, and leftover
    widgets crashed the process at exit (segmentation fault after the last test)."""
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    from app.report_service import ReportService
    from ui.main_window import MainWindow

    app = QApplication.instance()
    before = set(map(id, app.topLevelWidgets()))
    for ai_enabled in (True, False):
        window = MainWindow(reports=ReportService(tmp_path / f"{ai_enabled}.sqlite3", "tester"), ai_enabled=ai_enabled)
        window.close()
        window.deleteLater()
    app.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    left = [type(w).__name__ for w in app.topLevelWidgets() if id(w) not in before]
    assert left == []
