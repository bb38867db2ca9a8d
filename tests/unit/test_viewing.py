"""Display maths: planes come from the right place, window/level and heatmap blend are right."""

from __future__ import annotations

import numpy as np
import pytest

from app import viewing
from app.volume import Volume


def _volume() -> Volume:
    voxels = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    return Volume(voxels=voxels, spacing=(5.0, 0.8, 0.7), origin=(0.0, 0.0, 0.0), direction=np.eye(3))


def test_planes_show_head_up_and_the_right_voxels():
    v = _volume()
    assert np.array_equal(viewing.plane_slice(v.voxels, "axial", 2), v.voxels[2])
    coronal = viewing.plane_slice(v.voxels, "coronal", 3)
    assert coronal.shape == (4, 6)
    assert np.array_equal(coronal[0], v.voxels[3, 3, :])  # top row = most superior slice
    sagittal = viewing.plane_slice(v.voxels, "sagittal", 1)
    assert np.array_equal(sagittal[-1], v.voxels[0, :, 1])  # bottom row = most inferior slice
    assert viewing.plane_pixel_size(v, "coronal") == (5.0, 0.7)


@pytest.mark.parametrize("name", ["Lung", "Mediastinum", "Bone", "Abdomen"])
def test_window_maps_the_preset_range_to_black_and_white(name):
    p = viewing.preset(name)
    low, high = p.level - p.width / 2, p.level + p.width / 2
    hu = np.array([[low - 100, low, p.level, high, high + 100]], dtype=np.int16)
    grey = viewing.apply_window(hu, p.width, p.level)
    assert grey[0, 0] == 0 and grey[0, 1] == 0
    assert 126 <= grey[0, 2] <= 129
    assert grey[0, 3] == 255 and grey[0, 4] == 255
    # float volumes (non-integer rescale) give the same picture
    assert np.array_equal(viewing.apply_window(hu.astype(np.float32), p.width, p.level), grey)


def test_heatmap_tints_only_where_relevant_and_respects_opacity():
    grey = np.full((2, 2), 100, dtype=np.uint8)
    heat = np.array([[0.1, 1.0], [0.5, 0.0]], dtype=np.float32)
    rgb = viewing.compose_rgb(grey, heat, opacity=0.5)
    assert tuple(rgb[0, 0]) == (100, 100, 100)  # faint relevance (below the floor): untouched
    assert rgb[0, 1, 0] > 150 and rgb[0, 1, 2] > 150  # full relevance: towards white-hot
    assert tuple(viewing.compose_rgb(grey, heat, opacity=0.0)[0, 1]) == (100, 100, 100)
    assert rgb[1, 0, 0] > rgb[1, 0, 2]  # half relevance: red-orange


def test_argb_window_matches_the_grey_window():
    hu = np.random.default_rng(1).integers(-1100, 2000, (64, 64)).astype(np.int16)
    grey = viewing.apply_window(hu, 1500, -600)
    argb = viewing.apply_window_argb(hu, 1500, -600)
    for shift in (0, 8, 16):
        assert np.array_equal((argb >> shift) & 0xFF, grey)
    assert np.array_equal(viewing.apply_window_argb(hu.astype(np.float32), 1500, -600), argb)
