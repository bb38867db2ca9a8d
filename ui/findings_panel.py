"""Findings review for clinicians: AI findings and diagnoses, jump to evidence, agree/disagree."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.findings_review import ReviewItem, record_verdict
from ui.report_panel import CHECK_COLOUR

VERDICT_MARKS = {None: "\u25cb ", "agree": "\u2714 agree \u2014 ", "disagree": "\u2718 disagree \u2014 "}


class FindingsPanel(QWidget):
    evidence_requested = Signal(int)  # item index
    verdict_recorded = Signal(int)  # item index

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.items: list[ReviewItem] = []
        layout = QVBoxLayout(self)
        name_row = QHBoxLayout()
        name_row.addWidget(QLabel("Reviewer"))
        self.reviewer = QLineEdit()
        self.reviewer.setPlaceholderText("your name (required to record a verdict)")
        name_row.addWidget(self.reviewer)
        layout.addLayout(name_row)
        self.list = QListWidget()
        self.list.setObjectName("findingsList")
        self.list.setWordWrap(True)
        self.list.currentRowChanged.connect(self._on_list_current_row_changed)
        layout.addWidget(self.list, 1)
        buttons = QHBoxLayout()
        for text, slot in (("Show evidence", self._on_evidence_clicked),
                           ("Agree", lambda: self.record("agree")),
                           ("Disagree", lambda: self.record("disagree"))):
            button = QPushButton(text)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        layout.addWidget(self.message)

    def set_items(self, items: list[ReviewItem]) -> None:
        self.items = list(items)
        self.refresh()

    def refresh(self) -> None:
        row = self.list.currentRow()
        self.list.blockSignals(True)
        self.list.clear()
        for item in self.items:
            prefix = {"finding": "Finding: ", "diagnosis": "Diagnosis: ",
                      "series": "\u26a0 Series: "}.get(item.kind, "\u26a0 ")
            entry = QListWidgetItem(f"{VERDICT_MARKS[item.verdict]}{prefix}{item.label}")
            if item.kind in ("check", "series"):
                entry.setForeground(QColor(CHECK_COLOUR))
            entry.setToolTip(f"Evidence: slice {item.evidence_slice + 1}" if item.evidence_slice is not None else "")
            self.list.addItem(entry)
        self.list.setCurrentRow(min(max(row, 0), self.list.count() - 1) if self.list.count() else -1)
        self.list.blockSignals(False)

    def record(self, verdict: str) -> None:
        row = self.list.currentRow()
        if row < 0:
            return
        try:
            self.items[row] = record_verdict(self.items[row], verdict, self.reviewer.text())
        except ValueError as exc:
            self.message.setText(str(exc))
            return
        self.message.setText("")
        self.refresh()
        self.verdict_recorded.emit(row)

    def _on_evidence_clicked(self) -> None:
        row = self.list.currentRow()
        if row >= 0:
            self.evidence_requested.emit(row)

    def _on_list_current_row_changed(self, row: int) -> None:
        if row >= 0:
            self.evidence_requested.emit(row)
