"""The 3-D view renders the CT off-screen and shows the heatmap as a coloured volume."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.ui


def _phantom():
    from app.volume import Volume

    z, y, x = np.mgrid[0:40, 0:64, 0:64]
    hu = np.full((40, 64, 64), -1000, np.int16)
    hu[((y - 32) ** 2 + (x - 32) ** 2) < 26 ** 2] = 40  # soft-tissue cylinder
    hu[((y - 40) ** 2 + (x - 32) ** 2) < 4 ** 2] = 700  # a bone rod (spine)
    return Volume(hu, (5.0, 2.0, 2.0), (-64.0, -64.0, 0.0), np.eye(3))


def test_volume_renders_and_heat_adds_colour_where_it_is(qtbot):
    from ui.volume_view import VolumeView

    view = VolumeView()
    qtbot.addWidget(view)
    view.resize(240, 240)
    volume = _phantom()
    view.set_volume(volume)
    plain = view.render_image()
    assert plain is not None and plain.shape == (240, 240, 3)
    assert plain.max() > 60  # the body is visible against the dark background
    heat = np.zeros(volume.shape, np.uint8)
    heat[15:25, 20:44, 8:24] = 255  # a hot region on the patient's right
    view.set_volume(volume, heat)
    hot = view.render_image()
    redder = (hot[:, :, 0].astype(int) - hot[:, :, 2]) - (plain[:, :, 0].astype(int) - plain[:, :, 2])
    changed = np.argwhere(redder > 40)
    assert len(changed) > 50
    # Seen from the front, the patient's right is on the viewer's left.
    assert changed[:, 1].mean() < 120


def test_no_volume_shows_a_hint_not_a_crash(qtbot):
    from ui.volume_view import VolumeView

    view = VolumeView()
    qtbot.addWidget(view)
    view.set_volume(None)
    assert view.render_image() is None
    view.grab()  # paints the hint
