"""Viewer tools: zoom, pan, right-drag window/level, distance measurement in mm, cine."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

pytestmark = pytest.mark.ui


@pytest.fixture
def panel(qtbot):
    from app.volume import Volume
    from ui.viewer_panel import ViewerPanel

    hu = np.tile(np.linspace(-1000, 1000, 100, dtype=np.float32).astype(np.int16), (20, 100, 1))
    volume = Volume(hu, (2.5, 0.5, 0.5), (0.0, 0.0, 0.0), np.eye(3))
    widget = ViewerPanel()
    qtbot.addWidget(widget)
    widget.resize(900, 600)
    widget.show()
    widget.set_volume(volume)
    qtbot.waitExposed(widget)
    return widget


def test_ctrl_wheel_zooms_and_r_resets(qtbot, panel):
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    axial = panel.views["axial"]
    before = axial.image_rect().width()
    centre = QPointF(axial.width() / 2, axial.height() / 2)
    event = QWheelEvent(centre, axial.mapToGlobal(centre), QPoint(0, 0), QPoint(0, 120),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.ControlModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(axial, event)
    assert axial.image_rect().width() > before * 1.1
    assert axial.index == 10  # zooming did not scroll
    qtbot.keyClick(axial, Qt.Key.Key_R)
    assert axial.image_rect().width() == pytest.approx(before)


def test_right_drag_changes_window_in_every_view(qtbot, panel):
    axial = panel.views["axial"]
    width, level = axial.window.width, axial.window.level
    start = axial.rect().center()
    qtbot.mousePress(axial, Qt.MouseButton.RightButton, pos=start)
    qtbot.mouseMove(axial, start + QPoint(60, 30))
    qtbot.mouseRelease(axial, Qt.MouseButton.RightButton, pos=start + QPoint(60, 30))
    assert axial.window.width > width and axial.window.level > level
    assert panel.views["coronal"].window == axial.window  # linked


def test_measure_tool_reports_millimetres(qtbot, panel):
    from app.viewing import distance_mm

    panel.set_tool("measure")
    axial = panel.views["axial"]
    rect = axial.image_rect()
    a = QPoint(int(rect.left() + rect.width() * 0.2), int(rect.center().y()))
    b = QPoint(int(rect.left() + rect.width() * 0.8), int(rect.center().y()))
    qtbot.mousePress(axial, Qt.MouseButton.LeftButton, pos=a)
    qtbot.mouseMove(axial, b)
    qtbot.mouseRelease(axial, Qt.MouseButton.LeftButton, pos=b)
    assert len(axial.measurements) == 1
    index, p, q = axial.measurements[0]
    assert index == axial.index
    # 60 % of 100 columns at 0.5 mm = 30 mm (within a pixel of mouse rounding)
    assert distance_mm(axial.volume, p, q) == pytest.approx(30.0, abs=1.0)


def test_cine_plays_through_the_slices(qtbot, panel):
    axial = panel.views["axial"]
    seen = set()
    axial.slice_changed.connect(lambda _plane, index: seen.add(index))
    assert panel.toggle_cine(fps=100)
    qtbot.waitUntil(lambda: len(seen) >= 5, timeout=5000)
    assert not panel.toggle_cine()


def test_coronal_and_sagittal_views_mark_where_slices_are_missing(qtbot, panel):
    """The views stack the slices at the usual spacing, so a gap must be drawn where it lies."""
    from PySide6.QtGui import QColor

    from app.volume import Volume
    from ui.slice_view import GAP_COLOUR

    def orange_rows(view) -> set[int]:
        image = view.grab().toImage()
        want = QColor(GAP_COLOUR)
        rows = set()
        for y in range(image.height()):
            for x in range(0, image.width(), 3):
                c = image.pixelColor(x, y)
                if abs(c.red() - want.red()) < 30 and abs(c.green() - want.green()) < 30 and c.blue() < 80:
                    rows.add(y)
                    break
        return rows

    assert not orange_rows(panel.views["coronal"])  # an even series: no mark
    hu = np.zeros((20, 100, 100), np.int16)
    z_mm = [2.5 * k if k < 10 else 2.5 * k + 15.0 for k in range(20)]  # 15 mm missing after slice 10
    positions = np.array([[0.0, 0.0, z] for z in z_mm])
    panel.set_volume(Volume(hu, (2.5, 0.5, 0.5), (0.0, 0.0, 0.0), np.eye(3), slice_positions=positions))
    for name in ("coronal", "sagittal"):
        view = panel.views[name]
        rows = orange_rows(view)
        assert rows, f"no gap mark on the {name} view"
        expected = view._widget_point((9.5, 50, 50)).y()  # between slices 10 and 11 (1-based)
        assert min(abs(r - expected) for r in rows) <= 2
    assert not orange_rows(panel.views["axial"])
