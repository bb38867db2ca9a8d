"""The workstation's main window: study browser, viewer area, AI draft panel, status bar."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app import __version__
from app import viewing
from app.ai_service import AiService, heat_uint8_task
from app.drafting import ReportDraft
from app.findings_review import review_items
from app.report_document import ReportDocument
from app.study import StudyIndex, load_series_task, open_sources_task
from app.volume import Volume
from ui import workers
from ui.findings_panel import FindingsPanel
from ui.report_panel import ReportPanel
from ui.viewer_panel import ViewerPanel
from ui.volume_view import VolumeView

log = logging.getLogger(__name__)

SHORTCUTS = (
    ("Ctrl+O", "Open a DICOM folder"), ("Ctrl+Shift+O", "Open files, a zip or a DICOMDIR"),
    ("Up / Down, wheel", "Next / previous slice"), ("Page Up / Down", "10 slices"),
    ("1 2 3 4", "Lung, mediastinum, bone, abdomen window"), ("Ctrl+D", "Draft report"),
    ("Esc", "Cancel the draft"), ("A", "Accept the selected AI sentence"), ("Shift+A", "Accept all"),
    ("F2", "Edit the selected sentence"), ("Del", "Delete the selected sentence"),
    ("H", "Show / hide the heatmap"), ("F1", "This list"),
)


class MainWindow(QMainWindow):
    """Top-level window. Holds no logic: gathers input, starts app tasks, shows results."""

    study_opened = Signal(object)  # StudyIndex

    def __init__(self, ai: AiService | None = None) -> None:
        super().__init__()
        self.ai = ai if ai is not None else AiService()
        self.draft: ReportDraft | None = None
        self._draft_handle: workers.TaskHandle | None = None
        self._heat_handle: workers.TaskHandle | None = None
        self.heat_visible = True
        self.auto_draft = False  # draft as soon as a series is shown
        self.setWindowTitle(f"MedMPT Workstation {__version__}")
        self.resize(1440, 900)
        self.setAcceptDrops(True)
        self._open_handle: workers.TaskHandle | None = None
        self._load_handle: workers.TaskHandle | None = None
        self._generation = 0
        self.study: StudyIndex | None = None
        self.volume: Volume | None = None
        self._build_central()
        self._build_series_dock()
        self._build_report_dock()
        self._build_menus()
        self._build_status(self.ai.package_caption())

    # ------------------------------------------------------------------ layout
    def _build_central(self) -> None:
        self.viewer_placeholder = QLabel("Open a CT study: File \u25b8 Open folder\u2026 (Ctrl+O) or drop it here")
        self.viewer_placeholder.setObjectName("viewerPlaceholder")
        self.viewer_placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.viewer = ViewerPanel()
        self.volume_view = VolumeView()
        self.view_tabs = QTabWidget()
        self.view_tabs.addTab(self.viewer, "Slices")
        self.view_tabs.addTab(self.volume_view, "3D")
        self.view_tabs.currentChanged.connect(lambda _index: self._update_volume_view())
        self._volume_view_state: tuple[int, int] | None = None
        self.central = QStackedWidget()
        self.central.addWidget(self.viewer_placeholder)
        self.central.addWidget(self.view_tabs)
        self.setCentralWidget(self.central)

    def _build_series_dock(self) -> None:
        self.series_list = QListWidget()
        self.series_list.setObjectName("seriesList")
        self.series_list.itemActivated.connect(self._on_series_list_item_activated)
        dock = QDockWidget("Series", self)
        dock.setObjectName("seriesDock")
        dock.setWidget(self.series_list)
        dock.setMinimumWidth(300)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)

    def _build_report_dock(self) -> None:
        self.report_panel = ReportPanel()
        self.report_panel.model_label.setText(self.ai.package_caption())
        self.report_panel.draft_requested.connect(self.draft_report)
        self.report_panel.cancel_requested.connect(self.cancel_draft)
        self.report_panel.entry_selected.connect(self._on_report_panel_entry_selected)
        self.report_panel.opacity_changed.connect(self._on_report_panel_opacity_changed)
        self.findings_panel = FindingsPanel()
        self.findings_panel.evidence_requested.connect(self._on_findings_panel_evidence_requested)
        self.right_tabs = QTabWidget()
        self.right_tabs.addTab(self.report_panel, "Report")
        self.right_tabs.addTab(self.findings_panel, "Findings review")
        dock = QDockWidget("AI report", self)
        dock.setObjectName("reportDock")
        dock.setWidget(self.right_tabs)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        dock.setMinimumWidth(420)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        open_folder = QAction("Open &folder\u2026", self, shortcut=QKeySequence.StandardKey.Open)
        open_folder.triggered.connect(self._on_open_folder_triggered)
        open_files = QAction("Open f&iles, zip or DICOMDIR\u2026", self, shortcut="Ctrl+Shift+O")
        open_files.triggered.connect(self._on_open_files_triggered)
        quit_action = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        for action in (open_folder, open_files):
            file_menu.addAction(action)
        file_menu.addSeparator()
        file_menu.addAction(quit_action)
        view_menu = self.menuBar().addMenu("&View")
        for p in viewing.window_presets():
            action = QAction(f"{p.name} window", self, shortcut=p.key)
            action.triggered.connect(lambda _=False, name=p.name: self.viewer.apply_preset(name))
            view_menu.addAction(action)
        heat_action = QAction("Show &heatmap", self, shortcut="H", checkable=True, checked=True)
        heat_action.toggled.connect(self._on_heat_action_toggled)
        view_menu.addAction(heat_action)
        report_menu = self.menuBar().addMenu("&Report")
        panel = self.report_panel
        for text, key, slot in (
            ("&Draft report", "Ctrl+D", self.draft_report), ("&Cancel draft", "Esc", self.cancel_draft),
            ("&Accept sentence", "A", panel.accept_current), ("Accept a&ll", "Shift+A", panel.accept_all),
            ("&Edit sentence", "F2", panel.edit_current), ("De&lete sentence", "Del", panel.delete_current),
            ("Add &sentence", "Ctrl+N", panel.add_sentence),
        ):
            action = QAction(text, self, shortcut=key)
            action.triggered.connect(slot)
            report_menu.addAction(action)
        help_menu = self.menuBar().addMenu("&Help")
        keys = QAction("&Keyboard shortcuts", self, shortcut="F1")
        keys.triggered.connect(self._on_shortcuts_triggered)
        help_menu.addAction(keys)
        about = QAction("&About", self)
        about.triggered.connect(self._on_about_triggered)
        help_menu.addAction(about)

    def _build_status(self, model_label: str | None) -> None:
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(240)
        self.progress.setVisible(False)
        self.model_label = QLabel(model_label or "No model loaded")
        self.model_label.setObjectName("modelLabel")
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.model_label)

    # ------------------------------------------------------------------ opening
    def open_paths(self, paths: list[Path]) -> None:
        """Index `paths` in the background; the newest request wins, older results are dropped."""
        if self._open_handle is not None:
            self._open_handle.cancel()
        self._generation += 1
        generation = self._generation
        self.volume = None
        self._last_heat = None
        self.viewer.set_volume(None)
        self.viewer.set_relevance(None)
        self.volume_view.set_volume(None)
        self._volume_view_state = None
        self.cancel_draft()
        self.draft = None
        self.report_panel.clear()
        self.findings_panel.set_items([])
        self._open_handle = workers.start_task(
            lambda cancel: open_sources_task(paths, cancel),
            "open study",
            on_progress=self._on_task_progressed,
            on_finished=lambda index: self._on_open_finished(generation, index),
            on_error=lambda exc: self._on_task_errored("Opening the study", exc),
            on_cancelled=lambda: self.progress.setVisible(False),
        )
        self.progress.setVisible(True)
        self.statusBar().showMessage("Reading DICOM headers\u2026")

    def _on_open_finished(self, generation: int, index: StudyIndex) -> None:
        self.progress.setVisible(False)
        if generation != self._generation:
            return  # a newer study was opened meanwhile: never show this one
        self.study = index
        self.series_list.clear()
        for row in index.series_rows():
            item = QListWidgetItem(row.title)
            item.setToolTip(row.details)
            item.setData(Qt.ItemDataRole.UserRole, row.series_uid)
            self.series_list.addItem(item)
            if row.chosen:
                self.series_list.setCurrentItem(item)
        self.viewer_placeholder.setText(index.summary())
        self.central.setCurrentWidget(self.viewer_placeholder)
        self.statusBar().showMessage(index.choice_reason, 10_000)
        self.study_opened.emit(index)
        if index.choice.series is not None:
            self.load_series(index.choice.series.key)

    def load_series(self, series_key: str) -> None:
        """Load a series of the current study in the background and show it in the viewer."""
        if self.study is None:
            return
        if self._load_handle is not None:
            self._load_handle.cancel()
        generation, study = self._generation, self.study
        self._load_handle = workers.start_task(
            lambda cancel: load_series_task(study, series_key, cancel),
            "load series",
            on_progress=self._on_task_progressed,
            on_finished=lambda volume: self._on_load_finished(generation, volume),
            on_error=lambda exc: self._on_task_errored("Loading the series", exc),
            on_cancelled=lambda: self.progress.setVisible(False),
        )
        self.progress.setVisible(True)

    def _on_load_finished(self, generation: int, volume: Volume) -> None:
        self.progress.setVisible(False)
        if generation != self._generation:
            return  # the user opened another study meanwhile
        self.volume = volume
        self.viewer.set_volume(volume)
        self._last_heat = None
        self.central.setCurrentWidget(self.view_tabs)
        self._update_volume_view()
        z, y, x = volume.shape
        sz, sy, sx = volume.spacing
        message = f"Loaded {z} x {y} x {x} voxels, {sx:.2f} x {sy:.2f} x {sz:.2f} mm"
        if volume.problems:
            message += f"  \u26a0 {'; '.join(volume.problems)}"
        self.statusBar().showMessage(message)
        if self.auto_draft:
            self.draft_report()

    def _on_series_list_item_activated(self, item: QListWidgetItem) -> None:
        self.load_series(item.data(Qt.ItemDataRole.UserRole))

    def _on_task_progressed(self, progress) -> None:
        self.progress.setValue(int(progress.fraction * 100))
        if progress.message:
            self.statusBar().showMessage(progress.message)

    def _on_task_errored(self, what: str, exc: Exception) -> None:
        self.progress.setVisible(False)
        QMessageBox.warning(self, "MedMPT Workstation", f"{what} failed: {exc}")

    # ------------------------------------------------------------------ AI draft
    def draft_report(self) -> None:
        """Draft a report for the shown series on the inference thread."""
        if self.volume is None:
            self.statusBar().showMessage("Open a CT series first", 5000)
            return
        if not self.ai.available:
            QMessageBox.information(self, "MedMPT Workstation", self.ai.package_caption())
            return
        self.cancel_draft()
        generation, volume, ai = self._generation, self.volume, self.ai
        self.report_panel.set_busy(True, 0.0, "Starting\u2026")
        self._draft_handle = workers.start_task(
            lambda cancel: ai.draft_task(volume, cancel), "draft report", pool="inference",
            on_progress=lambda p: self.report_panel.set_busy(True, p.fraction, p.message),
            on_finished=lambda draft: self._on_draft_finished(generation, draft),
            on_error=lambda exc: (self.report_panel.set_busy(False), self._on_task_errored("Drafting the report", exc)),
            on_cancelled=lambda: (self.report_panel.set_busy(False), self.statusBar().showMessage("Draft cancelled", 5000)),
        )

    def cancel_draft(self) -> None:
        if self._draft_handle is not None and not self._draft_handle.done.is_set():
            self._draft_handle.cancel()

    def _on_draft_finished(self, generation: int, draft: ReportDraft) -> None:
        self.report_panel.set_busy(False)
        if generation != self._generation or self.volume is None or not draft.matches(self.volume):
            log.info("dropped draft %s: it belongs to a study that is no longer shown", draft.request_id)
            return
        self.draft = draft
        result = draft.result
        document = ReportDocument.from_ai_sentences([(s.section, s.text) for s in result.sentences])
        self.report_panel.set_document(document, _diagnosis_html(result.diagnosis))
        self.findings_panel.set_items(review_items(draft))
        summary = self.ai.summary
        if summary is not None:
            caption = summary.caption + "".join(f"\n\u26a0 {n}" for n in summary.notices)
            self.report_panel.model_label.setText(caption)
            self.model_label.setText(summary.caption)
        self.statusBar().showMessage(
            f"Draft ready in {result.timings.total_ms:.0f} ms ({len(result.sentences)} sentences)", 10_000)
        if result.sentences:
            self.report_panel.select_entry(0)

    def _on_report_panel_entry_selected(self, index: int) -> None:
        entry = self.report_panel.document.entries[index]
        draft = self.draft
        if draft is None or entry.ai_index is None or entry.ai_index >= len(draft.result.sentences):
            return
        sentence = draft.result.sentences[entry.ai_index]
        self.viewer.set_relevance(sentence.slice_relevance)
        self.viewer.go_to_slice(sentence.most_relevant_slice)
        self.show_heat(entry.ai_index)

    def _on_findings_panel_evidence_requested(self, index: int) -> None:
        item = self.findings_panel.items[index]
        if self.draft is None or item.evidence_slice is None:
            return
        relevance = (self.draft.result.sentences[item.sentence].slice_relevance if item.sentence is not None
                     else self.draft.result.report_relevance)
        self.viewer.set_relevance(relevance)
        self.viewer.go_to_slice(item.evidence_slice)
        self.show_heat(item.sentence)

    def show_heat(self, sentence: int | None) -> None:
        """Compute (off the GUI thread) and overlay the heatmap of a sentence or the whole report."""
        draft, generation = self.draft, self._generation
        if draft is None:
            return
        if self._heat_handle is not None:
            self._heat_handle.cancel()
        self._heat_handle = workers.start_task(
            lambda cancel: heat_uint8_task(draft, sentence, cancel), "heatmap",
            on_finished=lambda heat: self._on_heat_finished(generation, draft, heat),
            on_error=lambda exc: self._on_task_errored("Computing the heatmap", exc),
        )

    def _on_heat_finished(self, generation: int, draft: ReportDraft, heat) -> None:
        if generation != self._generation or draft is not self.draft or self.volume is None:
            return
        if heat.shape != self.volume.shape:
            return  # never overlay a heatmap on a volume it was not computed for
        self.viewer.set_heat(heat if self.heat_visible else None)
        self._last_heat = heat
        self._update_volume_view()

    def _on_heat_action_toggled(self, visible: bool) -> None:
        self.heat_visible = visible
        self.viewer.set_heat(getattr(self, "_last_heat", None) if visible else None)
        self._update_volume_view()

    def _update_volume_view(self) -> None:
        """Render the 3-D view only while its tab is shown, and only when its data changed."""
        if self.view_tabs.currentWidget() is not self.volume_view:
            return
        heat = getattr(self, "_last_heat", None) if self.heat_visible else None
        state = (id(self.volume), id(heat))
        if state != self._volume_view_state:
            self._volume_view_state = state
            self.volume_view.set_volume(self.volume, heat)

    def _on_report_panel_opacity_changed(self, opacity: float) -> None:
        for view in self.viewer.views.values():
            view.heat_opacity = opacity
            view.refresh()

    def _on_shortcuts_triggered(self) -> None:
        rows = "".join(f"<tr><td><b>{k}</b></td><td>{v}</td></tr>" for k, v in SHORTCUTS)
        QMessageBox.information(self, "Keyboard shortcuts", f"<table cellpadding=3>{rows}</table>")

    # ------------------------------------------------------------------ slots
    def _on_open_folder_triggered(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a DICOM folder")
        if folder:
            self.open_paths([Path(folder)])

    def _on_open_files_triggered(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open DICOM files, a zip or a DICOMDIR", "", "DICOM (*.dcm *.zip DICOMDIR *);;All files (*)"
        )
        if files:
            self.open_paths([Path(f) for f in files])

    def _on_about_triggered(self) -> None:
        QMessageBox.about(self, "About", f"MedMPT Workstation {__version__}\n{self.model_label.text()}")

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt name)
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            self.open_paths(paths)

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self.cancel_draft()
        workers.shutdown()
        super().closeEvent(event)


def _diagnosis_html(diagnosis: dict[str, dict[str, float]]) -> str:
    """Diagnosis probabilities as a small HTML table, most likely class first per head."""
    rows = []
    for head, classes in diagnosis.items():
        ranked = sorted(classes.items(), key=lambda kv: -kv[1])
        cells = ", ".join(f"{name} {p:.0%}" for name, p in ranked)
        rows.append(f"<tr><td><b>{head.replace('_', ' ')}</b></td><td>{cells}</td></tr>")
    return f"<b>AI diagnosis</b><table cellpadding=2>{''.join(rows)}</table>" if rows else ""
