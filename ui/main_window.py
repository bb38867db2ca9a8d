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
    QVBoxLayout,
    QWidget,
)

from app import __version__
from app import viewing
from app.study import StudyIndex, load_series_task, open_sources_task
from app.volume import Volume
from ui import workers
from ui.viewer_panel import ViewerPanel

log = logging.getLogger(__name__)

AI_BANNER = "AI draft \u2014 requires radiologist review"


class MainWindow(QMainWindow):
    """Top-level window. Holds no logic: gathers input, starts app tasks, shows results."""

    study_opened = Signal(object)  # StudyIndex

    def __init__(self, model_label: str | None = None) -> None:
        super().__init__()
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
        self._build_status(model_label)

    # ------------------------------------------------------------------ layout
    def _build_central(self) -> None:
        self.viewer_placeholder = QLabel("Open a CT study: File \u25b8 Open folder\u2026 (Ctrl+O) or drop it here")
        self.viewer_placeholder.setObjectName("viewerPlaceholder")
        self.viewer_placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.viewer = ViewerPanel()
        self.central = QStackedWidget()
        self.central.addWidget(self.viewer_placeholder)
        self.central.addWidget(self.viewer)
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
        panel = QWidget()
        layout = QVBoxLayout(panel)
        self.ai_banner = QLabel(AI_BANNER)
        self.ai_banner.setObjectName("aiBanner")
        self.ai_banner.setVisible(False)
        self.report_placeholder = QLabel("No report yet.")
        self.report_placeholder.setWordWrap(True)
        layout.addWidget(self.ai_banner)
        layout.addWidget(self.report_placeholder, 1)
        dock = QDockWidget("Report", self)
        dock.setObjectName("reportDock")
        dock.setWidget(panel)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        dock.setMinimumWidth(380)
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
        help_menu = self.menuBar().addMenu("&Help")
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
        self.viewer.set_volume(None)
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
        self.central.setCurrentWidget(self.viewer)
        z, y, x = volume.shape
        sz, sy, sx = volume.spacing
        message = f"Loaded {z} x {y} x {x} voxels, {sx:.2f} x {sy:.2f} x {sz:.2f} mm"
        if volume.problems:
            message += f"  \u26a0 {'; '.join(volume.problems)}"
        self.statusBar().showMessage(message)

    def _on_series_list_item_activated(self, item: QListWidgetItem) -> None:
        self.load_series(item.data(Qt.ItemDataRole.UserRole))

    def _on_task_progressed(self, progress) -> None:
        self.progress.setValue(int(progress.fraction * 100))
        if progress.message:
            self.statusBar().showMessage(progress.message)

    def _on_task_errored(self, what: str, exc: Exception) -> None:
        self.progress.setVisible(False)
        QMessageBox.warning(self, "MedMPT Workstation", f"{what} failed: {exc}")

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
        workers.shutdown()
        super().closeEvent(event)
