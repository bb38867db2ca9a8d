"""Study mode in the workstation: simulated readers (pytest-qt, controlled clock) complete a small
crossover study; the unassisted arm never shows AI content; a stopped session resumes."""

from __future__ import annotations

import re

import pytest

from app.reader_study.outputs import collect

from .helpers import FakeClock, make_protocol

pytestmark = [pytest.mark.ui, pytest.mark.slow]
AI_WORDS = re.compile(r"\bAI\b|draft|heat|model|diagnos|findings review|medmpt|relevan", re.IGNORECASE)


@pytest.fixture(scope="module")
def phantom_cases(tmp_path_factory):
    from app.dicom.synthetic import SeriesSpec, write_series

    root = tmp_path_factory.mktemp("cases")
    paths = []
    for i in range(2):
        write_series(root / f"case{i}", SeriesSpec(count=20, rows=64, columns=64, PatientID=f"SYN{i}"))
        paths.append(root / f"case{i}")
    return paths


@pytest.fixture
def ai(random_package):
    from app.ai_service import AiService

    return AiService(random_package, device="cpu")


def visible_texts(window) -> list[str]:
    """Every text the reader can see: labels, buttons, lists, tabs, dock titles, menus, status bar."""
    from PySide6.QtWidgets import (
        QAbstractButton,
        QDockWidget,
        QLabel,
        QListWidget,
        QMenu,
        QTabBar,
        QWidget,
    )

    texts = []
    for widget in window.findChildren(QWidget):
        if not widget.isVisible():
            continue
        texts.append(widget.toolTip())
        if isinstance(widget, QLabel | QAbstractButton):
            texts.append(widget.text())
        elif isinstance(widget, QListWidget):
            texts += [widget.item(i).text() for i in range(widget.count())]
        elif isinstance(widget, QTabBar):
            texts += [widget.tabText(i) for i in range(widget.count()) if widget.isTabVisible(i)]
        elif isinstance(widget, QDockWidget):
            texts.append(widget.windowTitle())
    menus = [a.menu() for a in window.workstation.menuBar().actions() if a.menu() is not None]
    for menu in menus:
        texts.append(menu.title())
        texts += [a.text() for a in menu.actions() if a.isVisible()]
        texts += [m.title() for m in menu.findChildren(QMenu)]
    texts.append(window.workstation.statusBar().currentMessage())
    texts.append(window.workstation.windowTitle() if window.workstation.isWindow() else "")
    return [t for t in texts if t]


def _open(qtbot, protocol, reader, session, ai, root, clock):
    from ui.study_window import StudyWindow

    window = StudyWindow(protocol, reader, session, ai, root, clock)
    qtbot.addWidget(window)
    window.show()
    return window


def _wait_ready(qtbot, window):
    from ui import workers

    qtbot.waitUntil(lambda: window.ready, timeout=120_000)
    qtbot.waitUntil(lambda: workers.active_task_count() == 0, timeout=60_000)


def _read_case(qtbot, window, clock, seen_unassisted: list[str]):
    _wait_ready(qtbot, window)
    case, ws = window.current, window.workstation
    panel = ws.report_panel
    assert window.progress_label.text() == f"Case {case.position} of {len(window.schedule)}"
    assert not any("assisted" in t.lower() for t in visible_texts(window))  # the arm is never named
    if case.arm == "ai_assisted":
        assert ws.draft is not None and panel.document.pending_review > 0  # auto-drafted on opening
        assert any(AI_WORDS.search(t) for t in visible_texts(window))  # the walk does see AI content
        clock.advance(30)
        panel.edit_entry(0, "A reader's own sentence.")
        clock.advance(10)
        pending = panel.document.pending_review
        window.sign_case()  # refused: AI sentences unreviewed, or the questions unanswered
        assert window.current == case and window.message.text()
        assert ("AI sentence" in window.message.text()) == (pending > 0)
        panel.accept_all()
    else:
        texts = visible_texts(window)
        leaks = [t for t in texts if AI_WORDS.search(t)]
        assert leaks == [], f"AI content visible in the unassisted arm: {leaks}"
        assert ws.draft is None and panel.document.entries == []
        assert all(v.heat is None and v.relevance is None for v in ws.viewer.views.values())
        seen_unassisted.append(case.case_id)
        clock.advance(60)
        panel.add_entry("FINDINGS", "No pulmonary nodule.")
    clock.advance(5)
    window.answers["confidence"].setValue(4)
    window.answers["suspicion"].setValue(2)
    window.sign_case()


def test_simulated_readers_complete_a_crossover_study(qtbot, phantom_cases, ai, tmp_path):
    protocol = make_protocol(phantom_cases)
    root, clock = tmp_path / "logs", FakeClock()
    seen_unassisted: list[str] = []
    for reader in protocol.readers:
        for session in (1, 2):
            window = _open(qtbot, protocol, reader, session, ai, root, clock)
            for _ in protocol.cases:
                _read_case(qtbot, window, clock, seen_unassisted)
            assert window.done_label.isVisible() and window.current is None
            window.close()
    assert sorted(seen_unassisted) == ["c1", "c1", "c2", "c2"]  # each case unassisted once per reader
    rows, edits = collect(protocol, root)
    assert len(rows) == 8 and all(r["signed"] for r in rows)
    for row in rows:
        expected = (45.0, 30.0) if row["arm"] == "ai_assisted" else (65.0, 60.0)
        assert (row["active_s"], row["first_edit_s"]) == pytest.approx(expected)
        assert row["answer_confidence"] == 4
    ai_rows = [r for r in rows if r["arm"] == "ai_assisted"]
    assert all(r["edited"] == 1 and r["char_distance"] > 0 for r in ai_rows)
    assert all(r["kept"] == r["ai_sentences"] - 1 for r in ai_rows)


def test_a_stopped_session_resumes_with_its_text_and_timings(qtbot, phantom_cases, ai, tmp_path):
    protocol = make_protocol(phantom_cases, readers=("R1",))
    root, clock = tmp_path / "logs", FakeClock()
    window = _open(qtbot, protocol, "R1", 1, ai, root, clock)
    _wait_ready(qtbot, window)
    first = window.current
    clock.advance(20)
    window.workstation.report_panel.add_entry("IMPRESSION", "Resume check.")
    text = window.workstation.report_panel.document.to_text()
    window.close()  # "Stop for now"
    clock.advance(3600)
    window = _open(qtbot, protocol, "R1", 1, ai, root, clock)
    _wait_ready(qtbot, window)
    assert window.current == first  # the same case, not the next one
    panel = window.workstation.report_panel
    assert panel.document.to_text() == text  # the reader's text is back
    panel.accept_all()
    clock.advance(10)
    window.answers["confidence"].setValue(3)
    window.answers["suspicion"].setValue(3)
    window.sign_case()
    _wait_ready(qtbot, window)
    assert window.current != first and window.progress_label.text() == "Case 2 of 2"
    window.close()
    row = next(r for r in collect(protocol, root)[0] if r["case_id"] == first.case_id)
    assert row["signed"] and row["total_s"] == pytest.approx(30.0)  # the hour away is not counted
    assert row["first_edit_s"] == pytest.approx(20.0)
