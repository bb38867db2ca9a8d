"""The report panel: AI banner and model label, draft/cancel, sentence editor, diagnosis.

Thin: the document logic is app.report_document; this widget shows it and forwards actions.
AI sentences awaiting review are amber and marked "AI"; accepted or edited ones look human.
Sentences a check concerns (app.draft_checks: the text against the diagnosis heads or itself)
are red and marked with a warning sign, with the check as their tooltip.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.report_document import SECTIONS, ReportDocument

AI_BANNER = "AI draft \u2014 requires radiologist review"
AI_COLOUR = QColor("#f0b44c")
HUMAN_COLOUR = QColor("#e4e6e8")
CHECK_COLOUR = "#c0392b"
NOTE_COLOUR = "#9aa0a6"  # secondary text (e.g. how far a diagnosis head can be trusted)
CHECK_MARK = "\u26a0 "
MARKS = {"ai": "AI \u25b8 ", "accepted": "\u2713 ", "edited": "\u270e ", "human": ""}


HEATMAP_MEANING = (
    "Which slices light up comes from this sentence: the report decoder's attention over the 32 "
    "sampled slices while it wrote it.\nWhere on a slice comes from the slice encoder: where it "
    "looked on that slice, the same for every sentence (as in MedMPT). On a slice holding two "
    "findings the map can favour the other one.\nShows where the model looked, not proof of a finding."
)


class ReportPanel(QWidget):
    """Signals carry entry indices into `document.entries`."""

    draft_requested = Signal()
    replace_requested = Signal()  # start the report over from the newest AI draft
    cancel_requested = Signal()
    entry_selected = Signal(int)
    entry_accepted = Signal(int)
    sign_requested = Signal()
    whole_report_requested = Signal()
    amend_requested = Signal()
    document_changed = Signal()
    edited = Signal(str)  # a reader action on the report: accept, accept_all, edit, delete, add
    opacity_changed = Signal(float)
    buttons_updated = Signal()  # which actions are possible changed (menus mirror the buttons)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = ReportDocument()
        layout = QVBoxLayout(self)
        self.banner = QLabel(AI_BANNER)
        self.banner.setObjectName("aiBanner")
        self.banner.setVisible(False)
        self.model_label = QLabel("No model loaded")
        self.model_label.setObjectName("modelLabel")
        self.model_label.setWordWrap(True)
        self.status_label = QLabel("")
        self.status_label.setObjectName("reportStatus")
        self.status_label.setWordWrap(True)
        self.locked = False
        self.series_open = False  # nothing to draft, edit or sign until a series is shown
        self.busy = False
        self.ai_enabled = True
        self.flags: dict[int, list[str]] = {}  # entry index -> the checks that concern it
        layout.addWidget(self.banner)
        layout.addWidget(self.model_label)
        layout.addWidget(self.status_label)
        layout.addLayout(self._draft_row())
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        layout.addWidget(self.progress)
        self.sentences = QListWidget()
        self.sentences.setObjectName("sentenceList")
        self.sentences.setWordWrap(True)
        self.sentences.currentItemChanged.connect(self._on_sentences_current_changed)
        self.sentences.itemDoubleClicked.connect(lambda _item: self.edit_current())
        layout.addWidget(self.sentences, 3)
        layout.addLayout(self._edit_row())
        layout.addLayout(self._sign_row())
        layout.addLayout(self._opacity_row())
        self.diagnosis = QLabel("")
        self.diagnosis.setObjectName("diagnosisLabel")
        self.diagnosis.setWordWrap(True)
        self.diagnosis.setTextFormat(Qt.TextFormat.RichText)
        # Wrapped labels take the panel's width rather than set it: long checks or notes must not
        # widen the report dock and squeeze the images.
        for label in (self.model_label, self.status_label, self.diagnosis):
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout.addWidget(self.diagnosis, 1)
        self._update_buttons()

    def _draft_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.draft_button = QPushButton("Draft report")
        self.draft_button.setToolTip("Ctrl+D")
        self.draft_button.clicked.connect(self.draft_requested)
        self.replace_button = QPushButton("Use new draft")
        self.replace_button.setToolTip("Start this report over from the new AI draft; the current text is kept in "
                                       "the report's history")
        self.replace_button.setVisible(False)
        self.replace_button.clicked.connect(self.replace_requested)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_requested)
        row.addWidget(self.draft_button)
        row.addWidget(self.replace_button)
        row.addWidget(self.cancel_button)
        return row

    def _edit_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self._edit_buttons: list[QPushButton] = []
        for label, tip, slot in (
            ("Accept", "A", self.accept_current),
            ("Accept all", "Shift+A", self.accept_all),
            ("Edit", "F2", self.edit_current),
            ("Delete", "Del", self.delete_current),
            ("Add\u2026", "Ctrl+N", self.add_sentence),
        ):
            button = QPushButton(label)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            row.addWidget(button)
            self._edit_buttons.append(button)
        return row

    def _sign_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.sign_button = QPushButton("Sign report\u2026")
        self.sign_button.clicked.connect(self.sign_requested)
        self.amend_button = QPushButton("Amend\u2026")
        self.amend_button.clicked.connect(self.amend_requested)
        row.addWidget(self.sign_button)
        row.addWidget(self.amend_button)
        return row

    def set_locked(self, locked: bool) -> None:
        """A signed report is read-only until amended."""
        self.locked = locked
        if locked:
            self.replace_button.setVisible(False)
        self._update_buttons()
        self.refresh()

    def set_series_open(self, series_open: bool) -> None:
        """With no series shown there is nothing to draft, edit, sign or show a heatmap of."""
        self.series_open = series_open
        self._update_buttons()

    @property
    def editable(self) -> bool:
        return self.series_open and not self.locked

    def _update_buttons(self) -> None:
        for button in self._edit_buttons:
            button.setEnabled(self.editable)
        self.sign_button.setEnabled(self.editable)
        self.amend_button.setEnabled(self.series_open and self.locked)
        self.draft_button.setEnabled(self.series_open and not self.busy)
        self.cancel_button.setEnabled(self.busy)
        self.whole_button.setEnabled(self.series_open)
        self.buttons_updated.emit()

    @property
    def edit_buttons(self) -> tuple[QPushButton, ...]:
        """Accept, Accept all, Edit, Delete, Add, in this order."""
        return tuple(self._edit_buttons)

    def _opacity_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.opacity_label = QLabel("Heatmap opacity")
        row.addWidget(self.opacity_label)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(45)
        self.opacity.valueChanged.connect(lambda v: self.opacity_changed.emit(v / 100.0))
        row.addWidget(self.opacity)
        legend = QLabel("low \u25a0\u25a0\u25a0 high")
        legend.setStyleSheet("color: qlineargradient(x1:0, y1:0, x2:1, y2:0, stop:0 #800000, stop:1 #ffff80);")
        for widget in (self.opacity_label, legend):
            widget.setToolTip(HEATMAP_MEANING)
        row.addWidget(legend)
        self.whole_button = whole = QPushButton("Whole report")
        whole.setToolTip("Show where the AI looked for the whole report")
        whole.clicked.connect(self.whole_report_requested)
        row.addWidget(whole)
        self._ai_widgets = [self.opacity_label, self.opacity, legend, whole]
        return row

    def set_ai_enabled(self, enabled: bool) -> None:
        """Without AI (reader-study unassisted arm) no AI element is shown: banner, model label,
        draft / cancel buttons, heatmap opacity, diagnosis."""
        self.ai_enabled = enabled
        for widget in (self.model_label, self.draft_button, self.cancel_button, self.diagnosis,
                       *self._ai_widgets):
            widget.setVisible(enabled)
        if not enabled:
            self.replace_button.setVisible(False)
        if not enabled:
            self.diagnosis.setText("")
        self.refresh()

    # ------------------------------------------------------------------ state
    def set_busy(self, busy: bool, fraction: float = 0.0, message: str = "") -> None:
        self.progress.setVisible(busy)
        self.progress.setValue(int(fraction * 100))
        self.progress.setFormat(message or "%p%")
        self.busy = busy
        self._update_buttons()

    def set_document(self, document: ReportDocument, diagnosis_html: str = "") -> None:
        self.document = document
        self.flags = {}
        self.diagnosis.setText(diagnosis_html)
        self.refresh()

    def set_flags(self, flags: dict[int, list[str]]) -> None:
        """Mark the entries the current checks concern (entry index -> check messages)."""
        if flags != self.flags:
            self.flags = flags
            self.refresh()

    def clear(self) -> None:
        self.status_label.setText("")
        self.replace_button.setVisible(False)
        self.set_locked(False)
        self.set_document(ReportDocument())

    def refresh(self) -> None:
        current = self.current_entry()
        self.sentences.blockSignals(True)
        self.sentences.clear()
        for section in SECTIONS:
            header = QListWidgetItem(section)
            header.setFlags(Qt.ItemFlag.NoItemFlags)
            font = QFont()
            font.setBold(True)
            header.setFont(font)
            self.sentences.addItem(header)
            for index, entry in self.document.visible():
                if entry.section != section:
                    continue
                flags = self.flags.get(index, []) if self.ai_enabled else []
                item = QListWidgetItem((CHECK_MARK if flags else "") + MARKS[entry.status] + entry.text)
                item.setData(Qt.ItemDataRole.UserRole, index)
                colour = QColor(CHECK_COLOUR) if flags else AI_COLOUR if entry.needs_review else HUMAN_COLOUR
                item.setForeground(QBrush(colour))
                if flags:
                    item.setToolTip("\n".join(flags))
                if entry.needs_review:
                    font = QFont()
                    font.setItalic(True)
                    item.setFont(font)
                self.sentences.addItem(item)
                if index == current:
                    self.sentences.setCurrentItem(item)
        self.sentences.blockSignals(False)
        self.banner.setVisible(self.ai_enabled and not self.locked and any(e.origin == "ai" for e in self.document.entries))

    def current_entry(self) -> int | None:
        item = self.sentences.currentItem()
        if item is None:
            return None
        value = item.data(Qt.ItemDataRole.UserRole)
        return int(value) if value is not None else None

    def select_entry(self, index: int) -> None:
        for row in range(self.sentences.count()):
            if self.sentences.item(row).data(Qt.ItemDataRole.UserRole) == index:
                self.sentences.setCurrentRow(row)
                return

    # ------------------------------------------------------------------ actions
    def accept_current(self) -> None:
        index = self.current_entry()
        if index is not None and self.document.entries[index].needs_review:
            self._change(lambda i: self.document.accept(i))
            self.entry_accepted.emit(index)
            self.edited.emit("accept")

    def accept_all(self) -> None:
        if not self.editable:
            return
        pending = [i for i, e in enumerate(self.document.entries) if e.needs_review]
        self.document.accept_all()
        self.refresh()
        self.document_changed.emit()
        for index in pending:
            self.entry_accepted.emit(index)
        if pending:
            self.edited.emit("accept_all")

    def delete_current(self) -> None:
        if self.current_entry() is not None and self.editable:
            self._change(lambda i: self.document.delete(i))
            self.edited.emit("delete")

    def edit_current(self) -> None:
        index = self.current_entry()
        if index is None or not self.editable:
            return
        text, ok = QInputDialog.getMultiLineText(self, "Edit sentence", "Sentence:", self.document.entries[index].text)
        if ok:
            self.edit_entry(index, text)

    def edit_entry(self, index: int, text: str) -> None:
        if not self.editable:
            return
        before = list(self.document.entries)
        self.document.edit(index, text)
        self.refresh()
        self.document_changed.emit()
        if self.document.entries != before:
            self.edited.emit("edit")

    def add_sentence(self) -> None:
        if not self.editable:
            return
        section, ok = QInputDialog.getItem(self, "Add sentence", "Section:", list(SECTIONS), 0, False)
        if not ok:
            return
        text, ok = QInputDialog.getMultiLineText(self, "Add sentence", "Sentence:")
        if ok:
            self.add_entry(section, text)

    def add_entry(self, section: str, text: str) -> None:
        """Add a reader's own sentence at the end of `section` (ignored when blank, locked or
        with no series shown)."""
        if not self.editable or not text.strip():
            return
        self.document.add(section, text)
        self.refresh()
        self.document_changed.emit()
        self.edited.emit("add")

    def _change(self, action) -> None:
        index = self.current_entry()
        if index is None or not self.editable:
            return
        action(index)
        self.refresh()
        self.document_changed.emit()

    def _on_sentences_current_changed(self, current: QListWidgetItem | None, _previous) -> None:
        if current is not None and current.data(Qt.ItemDataRole.UserRole) is not None:
            self.entry_selected.emit(int(current.data(Qt.ItemDataRole.UserRole)))
