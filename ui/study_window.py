"""Reader-study mode: presents one case at a time in its assigned arm, reusing MainWindow.

The reader sees only "Case k of n"; the unassisted arm uses MainWindow(ai_enabled=False) (no AI
element anywhere), the AI-assisted arm auto-drafts on opening. Every event goes to the session's
fsync'd log through app.reader_study.timing, so a stop or a crash loses nothing.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.ai_service import AiService
from app.reader_study.eventlog import EventLog, session_log_path
from app.reader_study.protocol import Protocol
from app.reader_study.schedule import ScheduledCase, schedule_for
from app.reader_study.timing import CaseRecord, Clock, SessionRecorder, document_from_json, replay
from app.report_service import ReportService
from ui import workers
from ui.main_window import MainWindow

log = logging.getLogger(__name__)
ACTIVITY_EVENTS = {QEvent.Type.KeyPress, QEvent.Type.MouseButtonPress, QEvent.Type.Wheel}


class StudyWindow(QMainWindow):
    """One reader's session of a study."""

    def __init__(self, protocol: Protocol, reader: str, session: int, ai: AiService,
                 root: Path | None = None, clock: Clock = time.time) -> None:
        super().__init__()
        self.protocol, self.reader, self.session, self.ai = protocol, reader, session, ai
        self.schedule = schedule_for(protocol, reader, session)
        path = session_log_path(protocol.study_id, reader, session, root)
        self.log = EventLog(path)
        self._previous: dict[str, CaseRecord] = replay(self.log.read())
        self.reports = ReportService(path.with_suffix(".reports.sqlite3"), reader)
        self.recorder = SessionRecorder(self.log, clock)
        self.recorder.session_started(reader, session, resumed=bool(self._previous))
        self.current: ScheduledCase | None = None
        self.workstation: MainWindow | None = None
        self._ready_logged = False
        self._retired: list[MainWindow] = []
        self._closed = False
        self.setWindowTitle(f"Reader study {protocol.study_id}: {reader}, session {session}")
        self.resize(1600, 1000)
        self._build()
        self._reaper = QTimer(self)
        self._reaper.setInterval(500)
        self._reaper.timeout.connect(self._reap)
        QApplication.instance().installEventFilter(self)
        QApplication.instance().applicationStateChanged.connect(self._on_application_state_changed)
        self.next_case()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        bar = QHBoxLayout()
        self.progress_label = QLabel("")
        self.progress_label.setObjectName("studyProgress")
        bar.addWidget(self.progress_label)
        self.answers: dict[str, QSpinBox] = {}
        for question in self.protocol.questions:
            bar.addWidget(QLabel(question.text))
            box = QSpinBox()
            box.setRange(question.minimum - 1, question.maximum)
            box.setSpecialValueText("\u2014")  # unanswered
            box.valueChanged.connect(lambda v, q=question: self._on_answer_changed(q.question_id, q.minimum, v))
            self.answers[question.question_id] = box
            bar.addWidget(box)
        bar.addStretch(1)
        self.message = QLabel("")
        self.message.setObjectName("studyMessage")
        bar.addWidget(self.message)
        self.sign_button = QPushButton("Sign and next case")
        self.sign_button.clicked.connect(self.sign_case)
        self.stop_button = QPushButton("Stop for now")
        self.stop_button.clicked.connect(self.close)
        bar.addWidget(self.sign_button)
        bar.addWidget(self.stop_button)
        central = QWidget()
        self.layout_ = QVBoxLayout(central)
        self.layout_.addLayout(bar)
        self.done_label = QLabel("Session complete: thank you. You may close this window.")
        self.done_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.done_label.setVisible(False)
        self.layout_.addWidget(self.done_label, 1)
        self.setCentralWidget(central)

    @property
    def ready(self) -> bool:
        """The current case is shown (images and, in the AI arm, the draft) and timing runs."""
        return self._ready_logged

    # ------------------------------------------------------------------ cases
    def next_case(self) -> None:
        """Open the first scheduled case not signed yet (or show that the session is complete)."""
        signed = {cid for cid, record in self._previous.items() if record.signed}
        remaining = [c for c in self.schedule if c.case_id not in signed]
        if not remaining:
            self.current = None
            self.progress_label.setText(f"All {len(self.schedule)} cases done")
            self.done_label.setVisible(True)
            self.sign_button.setEnabled(False)
            return
        self._open(remaining[0])

    def _open(self, case: ScheduledCase) -> None:
        self.current, self._ready_logged = case, False
        record = self._previous.get(case.case_id)
        self.progress_label.setText(f"Case {case.position} of {len(self.schedule)}")
        self.message.setText("Loading\u2026")
        for question_id, box in self.answers.items():
            box.blockSignals(True)
            box.setValue(record.answers.get(question_id, box.minimum()) if record else box.minimum())
            box.blockSignals(False)
        self.recorder.open_case(case, resumed=record is not None)
        ai_arm = case.arm == "ai_assisted"
        window = MainWindow(self.ai, self.reports, ai_enabled=ai_arm)
        window.setWindowFlags(Qt.WindowType.Widget)
        window.auto_draft = ai_arm
        window.report_panel.sign_requested.disconnect()
        window.report_panel.sign_requested.connect(self.sign_case)
        window.report_panel.edited.connect(self._on_panel_edited)
        window.controller.report_ready.connect(self._on_controller_report_ready)
        self.workstation = window
        self.layout_.addWidget(window, 1)
        window.open_paths([case.path])

    def _on_controller_report_ready(self) -> None:
        window, case = self.workstation, self.current
        if window is None or case is None or self._ready_logged:
            return
        record = self._previous.get(case.case_id)
        draft = window.controller.draft
        if draft is not None and (record is None or record.draft is None):
            sentences = draft.section_texts
            self.recorder.draft_shown(sentences)
            self._previous.setdefault(case.case_id, CaseRecord(case.case_id)).draft = sentences
        if record is not None and record.entries is not None:  # resumed: the reader's latest text
            window.report_panel.set_document(document_from_json(record.entries))
        self._ready_logged = True
        self.message.setText("")
        self.recorder.ready()

    def _on_panel_edited(self, action: str) -> None:
        if self.workstation is not None and self._ready_logged:
            self.recorder.edit(action, self.workstation.report_panel.document)

    def _on_answer_changed(self, question_id: str, minimum: int, value: int) -> None:
        if self.current is not None and value >= minimum:
            self.recorder.answer(question_id, value)
            self._previous.setdefault(self.current.case_id, CaseRecord(self.current.case_id)).answers[question_id] = value

    # ------------------------------------------------------------------ sign
    def sign_problem(self) -> str:
        """Why the case cannot be signed yet ("" when it can)."""
        if self.current is None or self.workstation is None or not self._ready_logged:
            return "The case is still loading."
        document = self.workstation.report_panel.document
        if document.pending_review:
            return f"{document.pending_review} AI sentence(s) still need review."
        if not any(e.visible and e.text.strip() for e in document.entries):
            return "The report is empty."
        missing = [q.text for q in self.protocol.questions if self.answers[q.question_id].value() < q.minimum]
        return f"Please answer: {missing[0]}" if missing else ""

    def sign_case(self) -> None:
        problem = self.sign_problem()
        if problem:
            self.message.setText(problem)
            return
        case, window = self.current, self.workstation
        self.recorder.signed(window.report_panel.document)
        record = self._previous.setdefault(case.case_id, CaseRecord(case.case_id))
        record.signed = True
        self._retire(window)
        self.message.setText("")
        self.next_case()

    def _retire(self, window: MainWindow) -> None:
        """Drop a case's window: its pending results are discarded, it is deleted once idle."""
        window.controller.flush_autosave()
        window.cancel_draft()
        window.close_study()
        window.hide()
        self.layout_.removeWidget(window)
        self.workstation = None
        self._retired.append(window)
        self._reaper.start()

    def _reap(self) -> None:
        if workers.active_task_count() == 0:
            for window in self._retired:
                window.deleteLater()
            self._retired.clear()
            self._reaper.stop()

    # ------------------------------------------------------------------ focus, activity, close
    def set_focused(self, focused: bool) -> None:
        self.recorder.focus(focused)

    def _on_application_state_changed(self, state) -> None:
        self.set_focused(state == Qt.ApplicationState.ApplicationActive)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt name)
        if event.type() in ACTIVITY_EVENTS and self._ready_logged:
            self.recorder.activity()
        return False

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        """Stop for now: the log keeps everything; `medmpt study run` again resumes."""
        if self._closed:
            super().closeEvent(event)
            return
        self._closed = True
        app = QApplication.instance()
        app.removeEventFilter(self)
        app.applicationStateChanged.disconnect(self._on_application_state_changed)
        self.recorder.suspended()
        if self.workstation is not None:
            self._retire(self.workstation)
        workers.shutdown()
        self._reap()
        super().closeEvent(event)


def main(protocol: Protocol, reader: str, session: int, model_dir: Path | None, device: str,
         root: Path | None) -> int:
    """Run one reader's session (called by `medmpt study run`)."""
    from resources.loader import read_text

    app = QApplication.instance() or QApplication([])
    app.setApplicationName("MedMPT reader study")
    app.setStyleSheet(read_text("styles", "dark.qss"))
    window = StudyWindow(protocol, reader, session, AiService(model_dir, device=device), root)
    window.show()
    return app.exec()
