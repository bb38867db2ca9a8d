"""One 2-D view (axial, coronal or sagittal) of a Volume: window/level, heatmap, crosshair, labels.

Thin: the pixel maths lives in app.viewing; this widget only paints and forwards input.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QApplication, QWidget

from app import viewing
from app.volume import Volume

# Screen-edge labels (left, right, top, bottom) in radiological convention (patient's right on
# the viewer's left). LPS: x grows to the patient's left, y to posterior, z to superior.
ORIENTATION_LABELS = {
    "axial": ("R", "L", "A", "P"),
    "coronal": ("R", "L", "S", "I"),
    "sagittal": ("A", "P", "S", "I"),
}
GAP_COLOUR = "#ff8c1a"  # orange: where a coronal or sagittal view jumps over missing slices


class SliceView(QWidget):
    """Shows one plane; emits `position_picked` (z, y, x voxel) when the user clicks."""

    position_picked = Signal(int, int, int)
    slice_changed = Signal(str, int)
    window_dragged = Signal(float, float)  # width, level chosen by right-dragging

    def __init__(self, plane: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plane = plane
        self.setObjectName(f"view_{plane}")
        self.setMinimumSize(160, 160)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.WheelFocus)
        self.volume: Volume | None = None
        self.heat: np.ndarray | None = None  # uint8 (Z, Y, X) relevance, or None
        self.heat_opacity = 0.45
        self.window = viewing.preset("Mediastinum")
        self.index = 0
        self.cursor_zyx = (0, 0, 0)
        self._image: QImage | None = None
        self._buffer: np.ndarray | None = None
        self.status_text = ""
        self.relevance: np.ndarray | None = None  # (Z,) where the AI looked, axial view only
        self.zoom = 1.0
        self.pan = QPointF(0.0, 0.0)
        self.tool = "crosshair"  # or "measure"
        self.measurements: list[tuple[int, tuple[float, ...], tuple[float, ...]]] = []  # (index, zyx, zyx)
        self._drag_start: QPointF | None = None
        self._drag_button = Qt.MouseButton.NoButton
        self._measuring: tuple[tuple[float, ...], tuple[float, ...]] | None = None

    # ------------------------------------------------------------------ model
    def set_volume(self, volume: Volume | None) -> None:
        self.volume = volume
        self.heat = None
        if volume is not None:
            self.cursor_zyx = tuple(n // 2 for n in volume.shape)  # type: ignore[assignment]
            self.index = self._index_from_cursor()
        self.refresh()

    def set_heat(self, heat: np.ndarray | None) -> None:
        self.heat = heat
        self.refresh()

    def set_relevance(self, relevance: np.ndarray | None) -> None:
        """Show per-slice relevance (0..1 over the volume's slices) as a strip on the right edge."""
        self.relevance = relevance
        self.update()

    def set_window(self, width: float, level: float) -> None:
        self.window = viewing.WindowPreset("custom", "", width, level)
        self.refresh()

    def set_cursor(self, zyx: tuple[int, int, int]) -> None:
        self.cursor_zyx = zyx
        self.index = self._index_from_cursor()
        self.refresh()

    def set_index(self, index: int) -> None:
        if self.volume is None:
            return
        count = viewing.plane_count(self.volume, self.plane)
        self.index = int(min(max(index, 0), count - 1))
        z, y, x = self.cursor_zyx
        self.cursor_zyx = {"axial": (self.index, y, x), "coronal": (z, self.index, x),
                           "sagittal": (z, y, self.index)}[self.plane]
        self.refresh()
        self.slice_changed.emit(self.plane, self.index)

    def _index_from_cursor(self) -> int:
        return self.cursor_zyx[{"axial": 0, "coronal": 1, "sagittal": 2}[self.plane]]

    # ------------------------------------------------------------------ rendering
    def _layers(self) -> tuple[np.ndarray, np.ndarray | None]:
        grey = viewing.apply_window(
            viewing.plane_slice(self.volume.voxels, self.plane, self.index),
            self.window.width, self.window.level,
        )
        heat = None if self.heat is None else viewing.plane_slice(self.heat, self.plane, self.index)
        return np.ascontiguousarray(grey), heat

    def render_rgb(self) -> np.ndarray | None:
        """The displayed slice as (H, W, 3) uint8, before scaling to the widget."""
        if self.volume is None:
            return None
        grey, heat = self._layers()
        return viewing.compose_rgb(grey, heat, self.heat_opacity)

    def refresh(self) -> None:
        """Recompute the slice image (grey, or ARGB with the heatmap) and schedule a paint."""
        if self.volume is None:
            self._image = None
        else:
            hu = viewing.plane_slice(self.volume.voxels, self.plane, self.index)
            if self.heat is None or self.heat_opacity <= 0:
                self._buffer = viewing.apply_window_argb(hu, self.window.width, self.window.level)
            else:
                grey, heat = self._layers()
                self._buffer = viewing.compose_argb(grey, np.ascontiguousarray(heat), self.heat_opacity)
            h, w = self._buffer.shape
            self._image = QImage(self._buffer.data, w, h, 4 * w, QImage.Format.Format_RGB32)
        self.update()

    def image_rect(self) -> QRectF:
        """Where the slice is drawn: centred, aspect-correct in millimetres."""
        if self._image is None or self.volume is None:
            return QRectF()
        row_mm, col_mm = viewing.plane_pixel_size(self.volume, self.plane)
        width_mm = self._image.width() * col_mm
        height_mm = self._image.height() * row_mm
        scale = min(self.width() / width_mm, self.height() / height_mm) * self.zoom
        w, h = width_mm * scale, height_mm * scale
        return QRectF((self.width() - w) / 2 + self.pan.x(), (self.height() - h) / 2 + self.pan.y(), w, h)

    def reset_view(self) -> None:
        self.zoom, self.pan = 1.0, QPointF(0.0, 0.0)
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt name)
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#000000"))
        if self._image is None:
            painter.end()
            return
        target = self.image_rect()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        painter.drawImage(target, self._image)
        self._paint_crosshair(painter, target)
        self._paint_gaps(painter, target)
        self._paint_measurements(painter)
        self._paint_labels(painter)
        self._paint_relevance_strip(painter)
        painter.end()

    def _paint_crosshair(self, painter: QPainter, target: QRectF) -> None:
        centre = self._widget_point(self.cursor_zyx)
        x, y = centre.x(), centre.y()
        painter.setPen(QPen(QColor(80, 200, 255, 140), 1))
        painter.drawLine(QPointF(target.left(), y), QPointF(target.right(), y))
        painter.drawLine(QPointF(x, target.top()), QPointF(x, target.bottom()))

    def _paint_gaps(self, painter: QPainter, target: QRectF) -> None:
        """On coronal and sagittal views, a dashed line where slices are missing: the view stacks
        the slices at the usual spacing, so the reader must see where the series jumps."""
        if self.plane == "axial":
            return
        painter.setPen(QPen(QColor(GAP_COLOUR), 1, Qt.PenStyle.DashLine))
        for k, mm in self.volume.gaps:
            y = self._widget_point((k + 0.5, *self.cursor_zyx[1:])).y()
            painter.drawLine(QPointF(target.left(), y), QPointF(target.right(), y))
            painter.drawText(QPointF(target.left() + 24, y - 3), f"gap {mm:.0f} mm")  # clear of the R/A label

    def _paint_labels(self, painter: QPainter) -> None:
        painter.setPen(QColor("#e0c060"))
        left, right, top, bottom = ORIENTATION_LABELS[self.plane]
        w, h = self.width(), self.height()
        painter.drawText(6, h // 2, left)
        painter.drawText(w - 14, h // 2, right)
        painter.drawText(w // 2, 16, top)
        painter.drawText(w // 2, h - 6, bottom)
        count = viewing.plane_count(self.volume, self.plane)
        painter.setPen(QColor("#c8c8c8"))
        painter.drawText(6, 16, f"{self.plane.capitalize()} {self.index + 1}/{count}")
        painter.drawText(6, 32, f"W {self.window.width:.0f} L {self.window.level:.0f}")
        if self.status_text:
            painter.drawText(6, h - 8, self.status_text)

    def _paint_measurements(self, painter: QPainter) -> None:
        lines = [(a, b) for index, a, b in self.measurements if index == self.index]
        if self._measuring is not None:
            lines.append(self._measuring)
        painter.setPen(QPen(QColor("#7CFC00"), 1.5))
        for a, b in lines:
            pa, pb = self._widget_point(a), self._widget_point(b)
            painter.drawLine(pa, pb)
            painter.drawText(pb + QPointF(6, -6), f"{viewing.distance_mm(self.volume, a, b):.1f} mm")

    def _widget_point(self, zyx: tuple[float, ...]) -> QPointF:
        """Widget position of a fractional voxel position on this plane."""
        target = self.image_rect()
        col, row = self._image_position(zyx)
        return QPointF(target.left() + (col + 0.5) / self._image.width() * target.width(),
                       target.top() + (row + 0.5) / self._image.height() * target.height())

    def _fractional_voxel(self, point: QPointF) -> tuple[float, float, float]:
        target = self.image_rect()
        col = (point.x() - target.left()) / target.width() * self._image.width() - 0.5
        row = (point.y() - target.top()) / target.height() * self._image.height() - 0.5
        return self._voxel_from_image(col, row, float(self.index))

    def _image_position(self, zyx: tuple[float, ...]) -> tuple[float, float]:
        """(column, row) in this plane's displayed image of a voxel position (z, y, x)."""
        z, y, x = zyx
        nz = self.volume.shape[0]
        return {"axial": (x, y), "coronal": (x, nz - 1 - z), "sagittal": (y, nz - 1 - z)}[self.plane]

    def _voxel_from_image(self, col, row, index):
        """Voxel position (z, y, x) of (column, row) in the displayed image; inverse of _image_position."""
        nz = self.volume.shape[0]
        if self.plane == "axial":
            return (index, row, col)
        if self.plane == "coronal":
            return (nz - 1 - row, index, col)
        return (nz - 1 - row, col, index)

    STRIP_WIDTH = 12

    def strip_rect(self) -> QRectF:
        return QRectF(self.width() - self.STRIP_WIDTH - 2, 40, self.STRIP_WIDTH, max(self.height() - 80, 10))

    def _paint_relevance_strip(self, painter: QPainter) -> None:
        """Relevance per slice, superior at the top, with the current slice marked."""
        if self.plane != "axial" or self.relevance is None or len(self.relevance) == 0:
            return
        rect = self.strip_rect()
        count = len(self.relevance)
        colours = viewing.heat_colormap()
        row_h = rect.height() / count
        for z, value in enumerate(self.relevance):
            r, g, b = colours[int(np.clip(value, 0, 1) * 255)]
            top = rect.top() + (count - 1 - z) * row_h
            painter.fillRect(QRectF(rect.left(), top, rect.width(), row_h + 0.5), QColor(int(r), int(g), int(b)))
        marker = rect.top() + (count - 1 - self.index + 0.5) * row_h
        painter.setPen(QPen(QColor("#40c0ff"), 2))
        painter.drawLine(QPointF(rect.left() - 4, marker), QPointF(rect.right(), marker))

    # ------------------------------------------------------------------ input
    def voxel_at(self, point: QPointF) -> tuple[int, int, int] | None:
        target = self.image_rect()
        if self._image is None or not target.contains(point):
            return None
        col = int((point.x() - target.left()) / target.width() * self._image.width())
        row = int((point.y() - target.top()) / target.height() * self._image.height())
        return self._voxel_from_image(col, row, self.index)

    def wheelEvent(self, event) -> None:  # noqa: N802 (Qt name)
        step = 1 if event.angleDelta().y() > 0 else -1
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom = float(min(max(self.zoom * (1.15 if step > 0 else 1 / 1.15), 0.25), 16.0))
            self.update()
            return
        self.set_index(self.index + step)

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt name)
        steps = {Qt.Key.Key_Up: 1, Qt.Key.Key_Down: -1, Qt.Key.Key_PageUp: 10, Qt.Key.Key_PageDown: -10}
        if event.key() in steps:
            self.set_index(self.index + steps[event.key()])
        elif event.key() == Qt.Key.Key_R:
            self.reset_view()
        else:
            super().keyPressEvent(event)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if self._drag_start is not None and self.volume is not None:
            self._drag(event.position())
        zyx = self.voxel_at(event.position())
        if zyx is None or self.volume is None:
            self.status_text = ""
        else:
            hu = float(self.volume.voxels[zyx])
            lps = self.volume.index_to_lps(zyx)
            self.status_text = f"{hu:.0f} HU  ({lps[0]:.1f}, {lps[1]:.1f}, {lps[2]:.1f}) mm LPS"
        self.update()

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if self.relevance is not None and self.plane == "axial" and self.strip_rect().contains(event.position()):
            rect = self.strip_rect()
            count = len(self.relevance)
            self.set_index(count - 1 - int((event.position().y() - rect.top()) / rect.height() * count))
            return
        self._drag_start, self._drag_button = event.position(), event.button()
        zyx = self.voxel_at(event.position())
        if zyx is None or event.button() != Qt.MouseButton.LeftButton:
            return
        if self.tool == "measure":
            start = self._fractional_voxel(event.position())
            self._measuring = (start, start)
        elif not event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.position_picked.emit(*zyx)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if self._measuring is not None:
            a, b = self._measuring
            if a != b:
                self.measurements.append((self.index, a, b))
            self._measuring = None
            self.update()
        self._drag_start, self._drag_button = None, Qt.MouseButton.NoButton

    def _drag(self, position: QPointF) -> None:
        """Right-drag: window/level; middle or Shift+left drag: pan; measure tool: the line."""
        delta = position - self._drag_start
        button = self._drag_button
        if button == Qt.MouseButton.RightButton:
            width, level = viewing.drag_window(self.window.width, self.window.level, delta.x(), delta.y())
            self._drag_start = position
            self.set_window(width, level)
            self.window_dragged.emit(width, level)
        elif button == Qt.MouseButton.MiddleButton or (
                button == Qt.MouseButton.LeftButton and self.tool != "measure" and self._measuring is None
                and QApplication.keyboardModifiers() & Qt.KeyboardModifier.ShiftModifier):
            self.pan += delta
            self._drag_start = position
            self.update()
        elif self._measuring is not None:
            self._measuring = (self._measuring[0], self._fractional_voxel(position))
