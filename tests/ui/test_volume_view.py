"""The 3-D view renders the CT off-screen and shows the heatmap as a coloured volume."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

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
    body = plain[plain.max(axis=-1) > 40].astype(int)
    assert abs(body[:, 0].mean() - body[:, 2].mean()) < 25  # in greys: the heatmap's colours stand out
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


def test_rays_per_frame_stay_within_budget_and_small_views_get_one_ray_per_pixel():
    from ui.volume_view import MOVING_RAYS, STILL_RAYS, sample_distances

    assert sample_distances(300, 300, moving=False) == (1.0, 1.0)
    for moving, budget in ((False, STILL_RAYS), (True, MOVING_RAYS)):
        step, _ = sample_distances(900, 800, moving)
        assert (900 / step) * (800 / step) <= budget * 1.0001
    assert sample_distances(900, 800, True)[0] > sample_distances(900, 800, False)[0]


def test_dragging_renders_coarse_frames_then_the_still_frame(qtbot):
    from PySide6.QtCore import QPoint

    from ui.volume_view import SETTLE_MS, VolumeView

    view = VolumeView()
    qtbot.addWidget(view)
    view.resize(900, 800)
    view.set_volume(_phantom())
    assert view.last_frame[0] == "still"
    camera = view.renderer.GetActiveCamera()
    before = camera.GetPosition()
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(400, 400))
    for x in range(410, 500, 10):
        qtbot.mouseMove(view, QPoint(x, 400))
    qtbot.waitUntil(lambda: view.last_frame[0] == "moving", timeout=5_000)
    assert view.last_frame[1] >= 4.0  # about a quarter of the rays per side of a still frame
    assert camera.GetPosition() != before  # the drag rotated the camera
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(490, 400))
    qtbot.waitUntil(lambda: view.last_frame[0] == "still", timeout=SETTLE_MS + 10_000)
    assert view.last_frame[1] == 2.0


def test_orientation_letters_follow_the_camera_and_the_volume_s_direction(qtbot):
    from app.volume import Volume
    from ui.volume_view import VolumeView

    view = VolumeView()
    qtbot.addWidget(view)
    view.resize(300, 300)
    view.set_volume(_phantom())
    assert view.labels() == ("R", "L", "S", "I")  # seen from the front, as a radiograph
    view.renderer.GetActiveCamera().Azimuth(90)  # walk round to the patient's side
    left, right, top, bottom = view.labels()
    assert {left, right} == {"A", "P"} and (top, bottom) == ("S", "I")
    # a prone patient (columns run right to left, rows back to front) and one scanned feet first
    # (slices run head to foot) also open seen from the front, head up
    base = _phantom()
    for direction in (np.diag([-1.0, -1.0, 1.0]), np.diag([-1.0, 1.0, -1.0])):
        view.set_volume(Volume(base.voxels, base.spacing, base.origin, direction))
        assert view.labels() == ("R", "L", "S", "I")
        view.renderer.GetActiveCamera().Azimuth(180)  # walk round: the back, patient's left on the left
        assert view.labels() == ("L", "R", "S", "I")


def test_resizing_renders_coarse_frames_then_a_still_frame_at_the_new_size(qtbot):
    from ui.volume_view import SETTLE_MS, VolumeView

    view = VolumeView()
    qtbot.addWidget(view)
    view.resize(400, 400)
    view.show()
    qtbot.waitExposed(view)
    view.set_volume(_phantom())
    for width in (500, 600, 700, 900):  # a splitter being dragged
        view.resize(width, 800)
    qtbot.waitUntil(lambda: view.last_frame[0] == "moving", timeout=5_000)
    qtbot.waitUntil(lambda: view.last_frame[0] == "still", timeout=SETTLE_MS + 10_000)
    assert view._buffer.shape == (800, 900, 3)  # the picture shown was cast at the new size


def test_a_gap_in_the_series_shows_as_a_gap_in_3d_not_as_anatomy_pulled_together(qtbot):
    """Six slices missing (30 mm): the 3-D view places the rest where they were acquired, so the
    gap is an empty band of its true height; stacked evenly the body was 30 mm short with no sign
    of the gap."""
    from app.volume import Volume
    from ui.volume_view import VolumeView

    whole = _phantom()  # 40 slices 5 mm apart, seen from the front, head up
    kept = [k for k in range(40) if not 18 <= k < 24]
    positions = np.array([[-64.0, -64.0, 5.0 * k] for k in kept])
    gapped = Volume(whole.voxels[kept], whole.spacing, whole.origin, np.eye(3), slice_positions=positions)
    stacked = Volume(whole.voxels[kept], whole.spacing, whole.origin, np.eye(3))  # no positions: even

    view = VolumeView()
    qtbot.addWidget(view)
    view.resize(300, 300)

    def body_rows(volume):
        view.set_volume(volume)
        dims = view.volume_actor.GetMapper().GetInput().GetDimensions()
        image = view.render_image().max(axis=-1)
        lit = (image[:, 120:180] > 40).mean(axis=1) > 0.5  # the cylinder's middle columns
        return dims[2], np.flatnonzero(lit)

    planes, rows = body_rows(gapped)
    assert planes == 40  # 34 slices in 40 planes: the gap's 6 are empty
    assert np.diff(rows).max() >= 8  # an empty band across the body
    planes, even_rows = body_rows(stacked)
    assert planes == 34 and np.diff(even_rows).max() <= 2  # the old picture: no band
    band = np.diff(rows).max() / (rows[-1] - rows[0])
    assert 0.08 < band < 0.25  # 30 of 195 mm
