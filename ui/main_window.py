"""The workstation's main window: study browser, viewers, AI report panel, status bar.

Builds the widgets and menus, opens studies and loads series; the AI draft and the report
workflow live in ui/report_controller.py.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QIcon, QImage, QKeySequence, QPixmap
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
)

from app import __version__, viewing
from app.ai_service import AiService
from app.recent import recent_studies, remember_study
from app.report_service import ReportService
from app.study import StudyIndex, load_series_task, open_sources_task
from app.volume import Volume
from ui import workers
from ui.findings_panel import FindingsPanel
from ui.report_controller import ReportController
from ui.report_panel import ReportPanel
from ui.viewer_panel import ViewerPanel
from ui.volume_view import VolumeView

log = logging.getLogger(__name__)

SHORTCUTS = (
    ("Ctrl+O", "Open a DICOM folder"), ("Ctrl+Shift+O", "Open files, a zip or a DICOMDIR"),
    ("Up / Down, wheel", "Next / previous slice"), ("Page Up / Down", "10 slices"),
    ("1 2 3 4", "Lung, mediastinum, bone, abdomen window"), ("Right-drag", "Window / level"),
    ("Ctrl+wheel, middle-drag", "Zoom, pan"), ("R", "Reset zoom and pan"), ("M", "Measure distance (toggle)"),
    ("C", "Cine (toggle)"), ("Ctrl+D", "Draft report"),
    ("Esc", "Cancel the draft"), ("A", "Accept the selected AI sentence"), ("Shift+A", "Accept all"),
    ("F2", "Edit the selected sentence"), ("Del", "Delete the selected sentence"),
    ("Ctrl+N", "Add a sentence"), ("W", "Whole-report attention"), ("H", "Show / hide the heatmap"), ("F1", "This list"),
)


class MainWindow(QMainWindow):
    """Top-level window. Holds no logic: gathers input, starts app tasks, shows results."""

    study_opened = Signal(object)  # StudyIndex

    def __init__(self, ai: AiService | None = None, reports: ReportService | None = None,
                 ai_enabled: bool = True) -> None:
        """`ai_enabled=False` (reader-study unassisted arm) hides every AI element: draft actions,
        model label, banner, diagnosis, findings review, heatmap controls and 3-D heat."""
        super().__init__()
        self.ai_enabled = ai_enabled
        self.ai = ai if ai is not None else AiService()
        self.setWindowTitle(f"MedMPT Workstation {__version__}")
        self.resize(1600, 1000)
        self.setAcceptDrops(True)
        self._open_handle: workers.TaskHandle | None = None
        self._load_handle: workers.TaskHandle | None = None
        self._generation = 0
        self.study: StudyIndex | None = None
        self.volume: Volume | None = None
        self._build_central()
        self._build_series_dock()
        self._build_report_dock()
        self.controller = ReportController(
            self, self.ai, reports if reports is not None else ReportService(),
            self.viewer, self.report_panel, self.findings_panel)
        self.controller.message.connect(lambda text: self.statusBar().showMessage(text, 10_000))
        self.controller.heat_changed.connect(self._update_volume_view)
        self.controller.ai_enabled = ai_enabled
        self.report_panel.set_ai_enabled(ai_enabled)
        self._build_menus()
        self._build_status(self.ai.package_caption())
        self.model_label.setVisible(ai_enabled)

    # ------------------------------------------------------------------ delegation
    @property
    def draft(self):
        return self.controller.draft

    @property
    def auto_draft(self) -> bool:
        return self.controller.auto_draft

    @auto_draft.setter
    def auto_draft(self, value: bool) -> None:
        self.controller.auto_draft = value
        if hasattr(self, "auto_draft_action"):
            self.auto_draft_action.setChecked(value)

    def draft_report(self) -> None:
        self.controller.draft_report()

    def cancel_draft(self) -> None:
        self.controller.cancel_draft()

    def preload_model(self) -> None:
        self.controller.preload_model()

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
        self.series_list.setIconSize(QSize(64, 64))
        self.series_list.setWordWrap(True)  # a long description wraps instead of hiding behind a scroll bar
        self.series_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
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
        self.report_panel.opacity_changed.connect(self._on_report_panel_opacity_changed)
        self.findings_panel = FindingsPanel()
        self.right_tabs = QTabWidget()
        self.right_tabs.addTab(self.report_panel, "Report")
        if self.ai_enabled:
            self.right_tabs.addTab(self.findings_panel, "Findings review")
        else:  # kept (the controller fills it) but never shown; owned by the window, so it goes with it
            self.findings_panel.setParent(self.right_tabs)
            self.findings_panel.setVisible(False)
        dock = QDockWidget("AI report" if self.ai_enabled else "Report", self)
        dock.setObjectName("reportDock")
        dock.setWidget(self.right_tabs)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        dock.setMinimumWidth(420)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)

    def _add_actions(self, menu, entries) -> list[QAction]:
        actions = []
        for text, key, slot in entries:
            action = QAction(text, self, shortcut=key)
            action.triggered.connect(slot)
            menu.addAction(action)
            actions.append(action)
        return actions

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._add_actions(file_menu, (
            ("Open &folder\u2026", QKeySequence.StandardKey.Open, self._on_open_folder_triggered),
            ("Open f&iles, zip or DICOMDIR\u2026", "Ctrl+Shift+O", self._on_open_files_triggered),
        ))
        self.recent_menu = file_menu.addMenu("&Recent studies")
        self.recent_menu.aboutToShow.connect(self._on_recent_menu_about_to_show)
        file_menu.addSeparator()
        self._add_actions(file_menu, (("&Quit", QKeySequence.StandardKey.Quit, self.close),))
        view_menu = self.menuBar().addMenu("&View")
        self._add_actions(view_menu, [
            (f"{p.name} window", p.key, lambda _=False, name=p.name: self.viewer.apply_preset(name))
            for p in viewing.window_presets()
        ])
        view_menu.addSeparator()
        measure = QAction("&Measure distance", self, shortcut="M", checkable=True)
        measure.toggled.connect(lambda on: self.viewer.set_tool("measure" if on else "crosshair"))
        cine = QAction("&Cine", self, shortcut="C", checkable=True)
        cine.triggered.connect(lambda: cine.setChecked(self.viewer.toggle_cine()))
        view_menu.addActions([measure, cine])
        if self.ai_enabled:
            heat_action = QAction("Show &heatmap", self, shortcut="H", checkable=True, checked=True)
            heat_action.toggled.connect(self.controller.set_heat_visible)
            view_menu.addAction(heat_action)
        panel, controller = self.report_panel, self.controller
        report_menu = self.menuBar().addMenu("&Report")
        self._report_actions: list[tuple[QAction, object]] = []  # each with the panel button it mirrors
        if self.ai_enabled:
            ai_actions = self._add_actions(report_menu, (
                ("&Draft report", "Ctrl+D", controller.draft_report), ("&Cancel draft", "Esc", controller.cancel_draft),
                ("&Whole-report attention", "W", controller.show_whole_report),
            ))
            self._report_actions += zip(ai_actions, (panel.draft_button, panel.cancel_button, panel.whole_button), strict=True)
            auto = QAction("Draft &automatically on open", self, checkable=True, checked=controller.auto_draft)
            auto.toggled.connect(lambda on: setattr(controller, "auto_draft", on))
            report_menu.addAction(auto)
            self.auto_draft_action = auto
        edit_actions = self._add_actions(report_menu, (
            ("&Accept sentence", "A", panel.accept_current), ("Accept a&ll", "Shift+A", panel.accept_all),
            ("&Edit sentence", "F2", panel.edit_current), ("De&lete sentence", "Del", panel.delete_current),
            ("Add &sentence", "Ctrl+N", panel.add_sentence),
            ("&Sign report\u2026", "Ctrl+Shift+S", panel.sign_requested.emit),  # the panel's sign route
        ))
        self._report_actions += zip(edit_actions, (*panel.edit_buttons, panel.sign_button), strict=True)
        panel.buttons_updated.connect(self._sync_report_actions)
        self._sync_report_actions()
        self._add_actions(self.menuBar().addMenu("&Help"), (
            ("&Keyboard shortcuts", "F1", self._on_shortcuts_triggered),
            ("&About", "", self._on_about_triggered),
        ))

    def _sync_report_actions(self) -> None:
        """A menu entry or shortcut is possible exactly when its button in the report panel is."""
        for action, button in self._report_actions:
            action.setEnabled(button.isEnabled())

    def _build_status(self, model_label: str) -> None:
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(240)
        self.progress.setVisible(False)
        self.model_label = QLabel(model_label)
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
        self._show_volume(None)
        for path in paths[:1]:
            remember_study(path)
        self._open_handle = self._start_io(
            lambda cancel: open_sources_task(paths, cancel), "Opening the study",
            lambda index: self._on_open_finished(generation, index))
        self.statusBar().showMessage("Reading DICOM headers\u2026")

    def close_study(self) -> None:
        """Forget the shown study: pending open / load / draft results are dropped (reader study)."""
        for handle in (self._open_handle, self._load_handle):
            if handle is not None:
                handle.cancel()
        self._generation += 1
        self.study = None
        self._show_volume(None)

    def _on_open_finished(self, generation: int, index: StudyIndex) -> None:
        self.progress.setVisible(False)
        if generation != self._generation:
            return  # a newer study was opened meanwhile: never show this one
        self.study = index
        self.series_list.clear()
        for row in index.series_rows():
            item = QListWidgetItem(row.title)
            thumb = index.thumbnails.get(row.series_uid)
            if thumb is not None:
                image = QImage(thumb.data, thumb.shape[1], thumb.shape[0], thumb.shape[1], QImage.Format.Format_Grayscale8)
                item.setIcon(QIcon(QPixmap.fromImage(image.copy())))
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
        self._generation += 1
        generation, study = self._generation, self.study
        self._show_volume(None)
        self._load_handle = self._start_io(
            lambda cancel: load_series_task(study, series_key, cancel), "Loading the series",
            lambda volume: self._on_load_finished(generation, volume))

    def _start_io(self, factory, what: str, on_finished) -> workers.TaskHandle:
        """A DICOM task with the status-bar progress and error reporting every such task shares."""
        handle = workers.start_task(
            factory, what.lower(), on_progress=self._on_task_progressed, on_finished=on_finished,
            on_error=lambda exc: self._on_task_errored(what, exc),
            on_cancelled=lambda: self.progress.setVisible(False),
        )
        self.progress.setVisible(True)
        return handle

    def _on_load_finished(self, generation: int, volume: Volume) -> None:
        self.progress.setVisible(False)
        if generation != self._generation:
            return  # the user opened another study or series meanwhile
        self._show_volume(volume)
        self.central.setCurrentWidget(self.view_tabs)
        z, y, x = volume.shape
        sz, sy, sx = volume.spacing
        message = f"Loaded {z} x {y} x {x} voxels, {sx:.2f} x {sy:.2f} x {sz:.2f} mm"
        if volume.problems:
            message += f"  \u26a0 {'; '.join(volume.problems)}"
        self.statusBar().showMessage(message)

    def _show_volume(self, volume: Volume | None) -> None:
        self.volume = volume
        self.viewer.set_volume(volume)
        self.controller.set_volume(volume)
        self._update_volume_view()

    def _update_volume_view(self) -> None:
        """Render the 3-D view only while its tab is shown, and only when its data changed."""
        if self.view_tabs.currentWidget() is not self.volume_view:
            return
        heat = self.controller.heat if self.controller.heat_visible and self.ai_enabled else None
        state = (id(self.volume), id(heat))
        if state != self._volume_view_state:
            self._volume_view_state = state
            self.volume_view.set_volume(self.volume, heat)

    # ------------------------------------------------------------------ slots
    def _on_series_list_item_activated(self, item: QListWidgetItem) -> None:
        self.load_series(item.data(Qt.ItemDataRole.UserRole))

    def _on_task_progressed(self, progress) -> None:
        self.progress.setValue(int(progress.fraction * 100))
        if progress.message:
            self.statusBar().showMessage(progress.message)

    def _on_task_errored(self, what: str, exc: Exception) -> None:
        self.progress.setVisible(False)
        QMessageBox.warning(self, "MedMPT Workstation", f"{what} failed: {exc}")

    def _on_report_panel_opacity_changed(self, opacity: float) -> None:
        for view in self.viewer.views.values():
            view.heat_opacity = opacity
            view.refresh()

    def _on_recent_menu_about_to_show(self) -> None:
        self.recent_menu.clear()
        items = recent_studies()
        if not items:
            self.recent_menu.addAction("(none yet)").setEnabled(False)
        for item in items:
            action = self.recent_menu.addAction(f"{item['path']}  \u2014 {item['opened'][:16].replace('T', ' ')}")
            action.triggered.connect(lambda _=False, path=item["path"]: self.open_paths([Path(path)]))

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

    def _on_shortcuts_triggered(self) -> None:
        ai_only = ("Draft report", "Cancel the draft", "Show / hide the heatmap", "Whole-report attention")
        shown = [(k, v) for k, v in SHORTCUTS if self.ai_enabled or v not in ai_only]
        rows = "".join(f"<tr><td><b>{k}</b></td><td>{v}</td></tr>" for k, v in shown)
        QMessageBox.information(self, "Keyboard shortcuts", f"<table cellpadding=3>{rows}</table>")

    def _on_about_triggered(self) -> None:
        model = f"\n{self.model_label.text()}" if self.ai_enabled else ""
        QMessageBox.about(self, "About", f"MedMPT Workstation {__version__}{model}")

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt name)
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            self.open_paths(paths)

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self.controller.flush_autosave()
        self.controller.cancel_draft()
        workers.shutdown()
        super().closeEvent(event)
