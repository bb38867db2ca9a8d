"""The AI draft in the workstation: it appears, links sentences to slices, and never lands on the
wrong study; per-sentence accept / edit / delete work."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

pytestmark = [pytest.mark.ui, pytest.mark.slow]


@pytest.fixture
def window(qtbot, random_package, real_series_dir, tmp_path):
    from app.ai_service import AiService
    from app.report_service import ReportService
    from ui import workers
    from ui.main_window import MainWindow

    win = MainWindow(AiService(random_package, device="cpu"), ReportService(tmp_path / "reports.sqlite3", "tester"))
    qtbot.addWidget(win)
    win.resize(1600, 1000)
    win.open_paths([real_series_dir])
    qtbot.waitUntil(lambda: win.volume is not None, timeout=60_000)
    yield win
    win.cancel_draft()
    workers.shutdown()


def _wait_idle(qtbot):
    from ui import workers

    qtbot.waitUntil(lambda: workers.active_task_count() == 0, timeout=120_000)


def test_draft_appears_marked_as_ai_and_sentences_link_to_slices(qtbot, window):
    window.draft_report()
    assert window.report_panel.cancel_button.isEnabled()  # busy while drafting
    qtbot.waitUntil(lambda: window.draft is not None, timeout=120_000)
    _wait_idle(qtbot)
    panel = window.report_panel
    draft = window.draft
    assert draft.StudyInstanceUID == window.volume.StudyInstanceUID
    assert draft.SeriesInstanceUID == window.volume.SeriesInstanceUID
    assert panel.banner.isVisible() or not panel.isVisible()
    assert panel.banner.text().startswith("AI draft")
    assert "not for clinical use" in panel.model_label.text()
    # the random test package has no calibration: the diagnosis says its probabilities are raw
    assert "uncalibrated probabilities" in panel.diagnosis.text()
    assert panel.document.pending_review == len(draft.result.sentences) > 0
    # The first sentence was selected: the axial view shows its most relevant slice, with heat.
    first = draft.result.sentences[0]
    axial = window.viewer.views["axial"]
    qtbot.waitUntil(lambda: axial.heat is not None, timeout=30_000)  # computed off the GUI thread
    assert axial.index == first.most_relevant_slice
    assert 0 <= first.most_relevant_slice < window.volume.shape[0]
    assert axial.heat is not None and axial.heat.shape == window.volume.shape
    # The relevance strip beside the axial view shows where the AI looked for this sentence.
    assert axial.relevance is not None and len(axial.relevance) == window.volume.shape[0]
    assert int(np.argmax(axial.relevance)) == first.most_relevant_slice
    plain = axial.heat.copy()
    # Hiding the heatmap changes the pixels back to plain grey.
    window.controller.set_heat_visible(False)
    grey = axial.render_rgb()
    assert np.array_equal(grey[:, :, 0], grey[:, :, 2])
    window.controller.set_heat_visible(True)
    assert np.array_equal(axial.heat, plain)
    # Whole-report attention: the strip shows the report's relevance and the view jumps to its peak.
    window.controller.show_whole_report()
    report = window.draft.result.report_relevance
    assert np.array_equal(axial.relevance, report)
    assert axial.index == int(np.argmax(report))


def test_accept_edit_delete_change_the_document(qtbot, window):
    window.draft_report()
    qtbot.waitUntil(lambda: window.draft is not None, timeout=120_000)
    _wait_idle(qtbot)
    panel = window.report_panel
    n = len(panel.document.entries)
    panel.select_entry(0)
    panel.accept_current()
    assert panel.document.entries[0].status == "accepted"
    panel.edit_entry(0, "Edited by the radiologist.")
    assert panel.document.entries[0].status == "edited"
    assert "Edited by the radiologist." in panel.document.to_text()
    panel.select_entry(0)
    panel.delete_current()
    assert "Edited by the radiologist." not in panel.document.to_text()
    assert len(panel.document.entries) == n  # AI sentences are kept as deleted, not lost


def test_switching_study_mid_draft_never_shows_that_draft(qtbot, window, tmp_path):
    window.draft_report()
    window.open_paths([tmp_path])  # another (empty) study while the draft runs
    _wait_idle(qtbot)
    qtbot.wait(100)
    assert window.draft is None
    assert window.report_panel.document.entries == []
    assert window.viewer.views["axial"].heat is None


def test_findings_review_jumps_to_evidence_and_records_verdicts(qtbot, window, monkeypatch):
    from app.draft_checks import Disagreement

    # the draft's text and its nodule head disagree: the reader is told, in red, in two places
    monkeypatch.setattr("app.draft_checks.disagreements",
                        lambda sentences, diagnosis: [Disagreement("nodule", 0.93, False)])
    window.draft_report()
    qtbot.waitUntil(lambda: window.controller.status is not None, timeout=120_000)  # report stored
    _wait_idle(qtbot)
    panel = window.findings_panel
    diagnoses = [i for i, item in enumerate(panel.items) if item.kind == "diagnosis"]
    assert len(diagnoses) == len(window.draft.result.diagnosis) > 0
    checks = [item for item in panel.items if item.kind == "check"]
    assert [c.label for c in checks] == window.draft.checks and "93%" in checks[0].label
    assert "does not report a pulmonary nodule" in window.report_panel.diagnosis.text()
    assert "Check:" in panel.list.item(panel.items.index(checks[0])).text()
    row = diagnoses[0]
    panel.list.setCurrentRow(row)
    assert window.viewer.views["axial"].index == panel.items[row].evidence_slice
    panel.record("agree")
    assert panel.items[row].verdict is None  # no reviewer name: nothing recorded
    assert "name" in panel.message.text()
    panel.reviewer.setText("Dr. Reviewer")
    panel.record("disagree")
    assert panel.items[row].verdict == "disagree" and panel.items[row].reviewer == "Dr. Reviewer"
    assert panel.items[row].when
    _wait_idle(qtbot)
    # The verdict is in the report's audit trail: who, what, which finding.
    from app.reports import AuditAction

    store = window.controller.reports.store
    rows = [e for e in store.audit(window.controller.status.report_id) if e.action == AuditAction.REVIEWED_FINDING]
    assert [(e.who, e.details["verdict"], e.details["finding"]) for e in rows] == [
        ("Dr. Reviewer", "disagree", panel.items[row].label)]


def test_checks_follow_the_text_as_the_reader_edits_it(qtbot, window):
    from ui.report_panel import CHECK_MARK

    window.draft_report()
    qtbot.waitUntil(lambda: window.controller.status is not None, timeout=120_000)
    _wait_idle(qtbot)
    panel = window.report_panel
    for _ in range(2 - len(panel.document.visible())):
        panel.add_entry("FINDINGS", "Heart size is normal.")
    first, second = (i for i, _ in panel.document.visible()[:2])
    for index, _ in panel.document.visible()[2:]:  # only the two sentences this test writes
        panel.select_entry(index)
        panel.delete_current()
    panel.edit_entry(first, "No emphysema.")
    panel.edit_entry(second, "Moderate emphysema.")

    def shown(index):
        row = next(r for r in range(panel.sentences.count())
                   if panel.sentences.item(r).data(Qt.ItemDataRole.UserRole) == index)
        return panel.sentences.item(row)

    assert "both reports and denies emphysema" in panel.diagnosis.text()
    for index in (first, second):
        assert shown(index).text().startswith(CHECK_MARK)
        assert "denies emphysema" in shown(index).toolTip()
    panel.edit_entry(second, "Mild centrilobular emphysema.")  # still contradicts "No emphysema."
    assert "denies emphysema" in panel.diagnosis.text()
    panel.edit_entry(first, "Emphysema in both upper lobes.")  # the reader resolves it
    assert "emphysema" not in panel.diagnosis.text()
    assert not shown(first).text().startswith(CHECK_MARK) and not shown(second).toolTip()


def test_signing_over_an_open_check_asks_first_and_audits_it(qtbot, window, monkeypatch):
    from PySide6.QtWidgets import QInputDialog, QMessageBox

    from app.reports import AuditAction

    window.draft_report()
    qtbot.waitUntil(lambda: window.controller.status is not None, timeout=120_000)
    _wait_idle(qtbot)
    panel = window.report_panel
    panel.add_entry("FINDINGS", "No pleural effusion.")
    panel.add_entry("IMPRESSION", "Small left pleural effusion.")
    panel.accept_all()
    asked = []
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("Dr. Signer", True)))
    monkeypatch.setattr(QMessageBox, "question", staticmethod(
        lambda parent, title, text: asked.append(text) or QMessageBox.StandardButton.No))
    window.controller.sign()
    _wait_idle(qtbot)
    assert "denies a pleural effusion" in asked[0] and not panel.locked  # the reader chose to go back
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a: QMessageBox.StandardButton.Yes))
    window.controller.sign()
    qtbot.waitUntil(lambda: panel.locked, timeout=10_000)
    _wait_idle(qtbot)
    store = window.controller.reports.store
    signed = [e for e in store.audit(window.controller.status.report_id) if e.action == AuditAction.SIGNED]
    assert len(signed) == 1 and any("denies a pleural effusion" in c for c in signed[0].details["open_checks"])


def test_the_event_loop_keeps_running_during_load_and_inference(qtbot, window, real_series_dir):
    import time

    from PySide6.QtCore import QTimer

    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(20)
    start = time.perf_counter()
    window.open_paths([real_series_dir])  # headers + volume load in the background...
    qtbot.waitUntil(lambda: window.volume is not None, timeout=60_000)
    window.draft_report()  # ...then the model
    qtbot.waitUntil(lambda: window.draft is not None, timeout=120_000)
    _wait_idle(qtbot)
    timer.stop()
    elapsed = time.perf_counter() - start
    gaps = np.diff([start, *ticks])
    # The GUI thread was never blocked for long: the timer fired throughout.
    assert len(ticks) >= 0.3 * elapsed / 0.020
    assert gaps.max() < 1.0


def test_edits_are_autosaved_restored_in_a_new_window_and_signing_locks(qtbot, window, tmp_path, random_package,
                                                                         real_series_dir, monkeypatch):
    from PySide6.QtWidgets import QInputDialog

    from app.ai_service import AiService
    from app.report_service import ReportService
    from ui.main_window import MainWindow

    window.draft_report()
    qtbot.waitUntil(lambda: window.controller.status is not None, timeout=120_000)  # report created
    panel = window.report_panel
    panel.edit_entry(0, "Radiologist's own first sentence.")
    qtbot.waitUntil(lambda: "version 2" in panel.status_label.text(), timeout=10_000)  # autosaved
    _wait_idle(qtbot)
    expected = panel.document.to_text()

    second = MainWindow(AiService(random_package, device="cpu"), ReportService(tmp_path / "reports.sqlite3", "tester"))
    qtbot.addWidget(second)
    second.open_paths([real_series_dir])
    qtbot.waitUntil(lambda: second.report_panel.document.entries != [], timeout=60_000)
    assert second.report_panel.document.to_text() == expected
    assert "Restored" in second.report_panel.status_label.text()
    # Signing needs every AI sentence reviewed; then the report is locked.
    second.report_panel.accept_all()
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("Dr. Signer", True)))
    second.controller.sign()
    qtbot.waitUntil(lambda: second.report_panel.locked, timeout=10_000)
    assert not second.report_panel.banner.isVisible()
    assert "Signed" in second.report_panel.status_label.text()
    before = second.report_panel.document.to_text()
    second.report_panel.edit_entry(0, "Changed after signing.")
    assert second.report_panel.document.to_text() == before
    _wait_idle(qtbot)


def test_restored_text_from_another_model_is_flagged_when_a_new_draft_comes(qtbot, window, tmp_path,
                                                                           random_package, real_series_dir):
    from app.ai_service import AiService
    from app.report_service import ReportService
    from models.testing import make_random_package
    from ui.main_window import MainWindow

    window.draft_report()
    qtbot.waitUntil(lambda: window.controller.status is not None, timeout=120_000)
    _wait_idle(qtbot)
    other = make_random_package(tmp_path / "other-model", config="tiny", seed=1)
    for package, flagged in ((random_package, False), (other, True)):
        win = MainWindow(AiService(package, device="cpu"), ReportService(tmp_path / "reports.sqlite3", "tester"))
        qtbot.addWidget(win)
        win.open_paths([real_series_dir])
        qtbot.waitUntil(lambda w=win: "Restored" in w.report_panel.status_label.text(), timeout=60_000)
        restored = win.report_panel.document.to_text()
        win.draft_report()
        qtbot.waitUntil(lambda w=win: w.controller.draft is not None, timeout=120_000)
        label = win.report_panel.model_label.text()
        assert ("restored text is an AI draft by" in label) == flagged, label
        assert win.report_panel.document.to_text() == restored  # the restored text is never replaced
        win.cancel_draft()
        _wait_idle(qtbot)


def test_a_restored_report_can_start_over_from_a_new_draft(qtbot, window, tmp_path, real_series_dir, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from app.ai_service import AiService
    from app.report_service import ReportService
    from app.reports import AuditAction
    from models.testing import make_random_package
    from ui.main_window import MainWindow

    window.draft_report()
    qtbot.waitUntil(lambda: window.controller.status is not None, timeout=120_000)
    window.report_panel.edit_entry(0, "The reader's own sentence.")
    qtbot.waitUntil(lambda: "version 2" in window.report_panel.status_label.text(), timeout=10_000)
    _wait_idle(qtbot)
    old_id = window.controller.status.report_id
    other = make_random_package(tmp_path / "other-model", config="tiny", seed=1)
    win = MainWindow(AiService(other, device="cpu"), ReportService(tmp_path / "reports.sqlite3", "tester"))
    qtbot.addWidget(win)
    win.open_paths([real_series_dir])
    qtbot.waitUntil(lambda: "Restored" in win.report_panel.status_label.text(), timeout=60_000)
    panel = win.report_panel
    assert not panel.replace_button.isVisibleTo(panel)
    win.draft_report()
    qtbot.waitUntil(lambda: win.controller.draft is not None, timeout=120_000)
    _wait_idle(qtbot)
    assert "The reader's own sentence." in panel.document.to_text()  # nothing replaced unasked
    assert panel.replace_button.isVisibleTo(panel)
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a: QMessageBox.StandardButton.No))
    panel.replace_button.click()
    _wait_idle(qtbot)
    assert "The reader's own sentence." in panel.document.to_text()
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a: QMessageBox.StandardButton.Yes))
    panel.replace_button.click()
    qtbot.waitUntil(lambda: win.controller.status.report_id != old_id, timeout=10_000)
    new_text = [s.text for s in win.controller.draft.result.sentences]
    assert [e.text for _, e in panel.document.visible()] == new_text
    assert panel.document.pending_review == len(new_text)  # all AI again, awaiting review
    assert "restored text is an AI draft" not in panel.model_label.text()
    assert not panel.replace_button.isVisibleTo(panel)
    _wait_idle(qtbot)
    store = win.controller.reports.store
    replaced = [e for e in store.audit(old_id) if e.action == AuditAction.REPLACED]
    assert replaced and replaced[0].details["by_report"] == win.controller.status.report_id
    assert "The reader's own sentence." in store.version(old_id).sections["FINDINGS"] + store.version(
        old_id).sections["IMPRESSION"]
    win.cancel_draft()
    _wait_idle(qtbot)


def test_a_draft_on_a_series_with_missing_slices_says_so_beside_the_model(qtbot, window, gapped_series_dir):
    """The reader sees, beside the draft, that the series it was made on lacks slices in the middle."""
    window.open_paths([gapped_series_dir])
    qtbot.waitUntil(lambda: window.volume is not None and bool(window.volume.problems), timeout=60_000)
    _wait_idle(qtbot)
    window.draft_report()
    qtbot.waitUntil(lambda: window.draft is not None, timeout=120_000)
    _wait_idle(qtbot)
    label = window.report_panel.model_label.text()
    assert "Drafted on a series with a problem: gap of" in label and "3 slice(s) missing" in label
    assert window.draft.series_problems == window.volume.problems
    review = window.findings_panel.list  # the clinicians' review lists it first
    assert review.item(0).text().endswith(f"\u26a0 Series: {window.volume.problems[0]}")
