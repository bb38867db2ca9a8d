"""The viewer shows the right slices of the real series; presets and scrolling change the pixels."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.ui


@pytest.fixture(scope="module")
def real_volume(real_series_dir):
    from app.study import load_series_task, open_sources_task
    from app.tasks import run_sync

    study = run_sync(open_sources_task([real_series_dir]))
    return run_sync(load_series_task(study))


def test_three_views_show_the_slices_under_the_crosshair(qtbot, real_volume):
    from app import viewing
    from ui.viewer_panel import ViewerPanel

    panel = ViewerPanel()
    qtbot.addWidget(panel)
    panel.set_volume(real_volume)
    panel.views["axial"].position_picked.emit(40, 200, 300)
    p = viewing.preset("Mediastinum")
    expected = {
        "axial": real_volume.voxels[40],
        "coronal": real_volume.voxels[::-1, 200, :],
        "sagittal": real_volume.voxels[::-1, :, 300],
    }
    for plane, view in panel.views.items():
        rgb = view.render_rgb()
        grey = viewing.apply_window(np.ascontiguousarray(expected[plane]), p.width, p.level)
        assert np.array_equal(rgb[:, :, 0], grey), plane


def test_a_preset_changes_the_pixels_as_expected(qtbot, real_volume):
    from ui.viewer_panel import ViewerPanel

    panel = ViewerPanel()
    qtbot.addWidget(panel)
    panel.set_volume(real_volume)
    axial = panel.views["axial"]
    lungs = real_volume.voxels[axial.index] < -600  # aerated lung
    soft = panel.views["axial"].render_rgb()[:, :, 0]
    panel.apply_preset("Lung")
    lung = panel.views["axial"].render_rgb()[:, :, 0]
    # Mediastinal window: lung is black; lung window: lung parenchyma becomes visible grey.
    assert soft[lungs].mean() < 5
    assert lung[lungs].mean() > 10


def test_scrolling_moves_the_axial_slice_and_the_other_views_follow(qtbot, real_volume):
    from ui.viewer_panel import ViewerPanel

    panel = ViewerPanel()
    qtbot.addWidget(panel)
    panel.set_volume(real_volume)
    axial = panel.views["axial"]
    start = axial.index
    axial.set_index(start + 5)
    assert axial.index == start + 5
    assert panel.views["coronal"].cursor_zyx[0] == start + 5
    axial.set_index(10_000)
    assert axial.index == real_volume.shape[0] - 1  # clamped, never out of range
