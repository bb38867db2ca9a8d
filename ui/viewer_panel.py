"""Three linked views (axial large, coronal and sagittal) sharing one crosshair and window."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QGridLayout, QWidget

from app import viewing
from app.volume import Volume
from ui.slice_view import SliceView


class ViewerPanel(QWidget):
    """Owns the three SliceViews; a click in one moves the crosshair in all."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("viewerPanel")
        self.views = {plane: SliceView(plane) for plane in viewing.PLANES}
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.views["axial"], 0, 0, 2, 1)
        layout.addWidget(self.views["coronal"], 0, 1)
        layout.addWidget(self.views["sagittal"], 1, 1)
        layout.setColumnStretch(0, 2)
        layout.setColumnStretch(1, 1)
        for view in self.views.values():
            view.position_picked.connect(self._on_view_position_picked)
            view.slice_changed.connect(self._on_view_slice_changed)
            view.window_dragged.connect(self._on_view_window_dragged)
        self.cine = QTimer(self)
        self.cine.timeout.connect(self._on_cine_timeout)

    def toggle_cine(self, fps: float = 12.0) -> bool:
        """Play the axial slices (bouncing between the ends); returns whether it now plays."""
        if self.cine.isActive():
            self.cine.stop()
        elif self.views["axial"].volume is not None:
            self._cine_step = 1
            self.cine.start(int(1000 / fps))
        return self.cine.isActive()

    def _on_cine_timeout(self) -> None:
        axial = self.views["axial"]
        count = axial.volume.shape[0] if axial.volume is not None else 0
        if count < 2:
            self.cine.stop()
            return
        nxt = axial.index + self._cine_step
        if not 0 <= nxt < count:
            self._cine_step = -self._cine_step
            nxt = axial.index + self._cine_step
        axial.set_index(nxt)

    def set_tool(self, tool: str) -> None:
        """"crosshair" (click moves the crosshair) or "measure" (drag measures a distance)."""
        for view in self.views.values():
            view.tool = tool

    def _on_view_window_dragged(self, width: float, level: float) -> None:
        for view in self.views.values():
            if (view.window.width, view.window.level) != (width, level):
                view.set_window(width, level)

    def set_volume(self, volume: Volume | None) -> None:
        self.cine.stop()
        for view in self.views.values():
            view.set_volume(volume)
            view.measurements.clear()
            view.reset_view()

    def set_heat(self, heat: np.ndarray | None) -> None:
        for view in self.views.values():
            view.set_heat(heat)

    def set_relevance(self, relevance: np.ndarray | None) -> None:
        """Where the AI looked, per axial slice (0..1), shown beside the axial view."""
        self.views["axial"].set_relevance(relevance)

    def apply_preset(self, name: str) -> None:
        p = viewing.preset(name)
        for view in self.views.values():
            view.set_window(p.width, p.level)

    def go_to_slice(self, z: int) -> None:
        """Show axial slice z (e.g. a sentence's most relevant slice) in every view."""
        axial = self.views["axial"]
        axial.set_index(z)

    def _on_view_position_picked(self, z: int, y: int, x: int) -> None:
        for view in self.views.values():
            view.set_cursor((z, y, x))

    def _on_view_slice_changed(self, plane: str, index: int) -> None:
        zyx = self.views[plane].cursor_zyx
        for other, view in self.views.items():
            if other != plane:
                view.set_cursor(zyx)
