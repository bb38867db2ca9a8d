"""A series with missing slices: the views stack the slices at the usual spacing, but coordinates
and measurements must still be where the slices were acquired (a reader measuring across the gap
would otherwise get a distance 15 mm short)."""

from __future__ import annotations

import numpy as np
import pytest

from app.viewing import distance_mm
from app.volume import Volume

SPACING = 5.0


def _volume(z_mm: list[float]) -> Volume:
    positions = np.array([[-100.0, -120.0, -300.0 + z] for z in z_mm])
    return Volume(np.zeros((len(z_mm), 8, 8), np.int16), (SPACING, 0.8, 0.8), tuple(positions[0]), np.eye(3),
                  slice_positions=positions)


def test_a_regular_series_keeps_index_times_spacing():
    volume = _volume([0.0, 5.0, 10.0, 15.0, 20.0])
    assert volume.slice_offsets_mm is None and volume.gaps == []
    np.testing.assert_allclose(volume.index_to_lps((3.0, 2.0, 1.0)), [-100.0 + 0.8, -120.0 + 1.6, -285.0])


def test_across_a_gap_coordinates_and_distances_follow_the_acquired_positions():
    z_mm = [0.0, 5.0, 10.0, 30.0, 35.0]  # slices at 15, 20 and 25 mm are missing
    volume = _volume(z_mm)
    assert volume.gaps == [(2, pytest.approx(20.0))]
    for k, z in enumerate(z_mm):  # every slice sits where it was acquired
        np.testing.assert_allclose(volume.index_to_lps((k, 0.0, 0.0)), [-100.0, -120.0, -300.0 + z])
    assert volume.index_to_lps((2.5, 0, 0))[2] == pytest.approx(-300.0 + 20.0)  # half way across the gap
    assert volume.index_to_lps((6.0, 0, 0))[2] == pytest.approx(-300.0 + 45.0)  # beyond the last: usual spacing
    # a measurement from the first to the last slice is 35 mm, not 4 x 5 = 20 mm
    assert distance_mm(volume, (0, 4, 4), (4, 4, 4)) == pytest.approx(35.0)
    points = np.array([[0.0, 1.0, 2.0], [2.7, 3.0, 4.0], [4.0, 7.0, 0.5], [-1.0, 0.0, 0.0], [5.5, 2.0, 2.0]])
    np.testing.assert_allclose(volume.lps_to_index(volume.index_to_lps(points)), points, atol=1e-9)
    assert volume.slice_index_of(volume.index_to_lps((3.0, 0, 0))) == 3


def test_the_model_input_knows_where_the_slices_were_acquired():
    from app.drafting import ct_input

    assert ct_input(_volume([0.0, 5.0, 10.0, 15.0])).z_offsets_mm is None  # evenly spaced: the reference rule
    gapped = ct_input(_volume([0.0, 5.0, 10.0, 30.0, 35.0]))
    np.testing.assert_allclose(gapped.z_offsets_mm, [0.0, 5.0, 10.0, 30.0, 35.0])


def test_evenly_spaced_planes_leave_a_gap_empty_and_change_nothing_else():
    # what the 3-D view shows: planes every 5 mm where the slices were acquired
    assert _volume([0.0, 5.0, 10.0, 15.0]).uniform_z_sources().tolist() == [0, 1, 2, 3]
    assert _volume([0.0, 5.0, 10.0, 30.0, 35.0]).uniform_z_sources().tolist() == [0, 1, 2, -1, -1, -1, 3, 4]
    # uneven by 2 % (not a gap): every plane shows a slice, each its nearest
    assert _volume([0.0, 5.1, 10.0, 15.1, 20.0]).uniform_z_sources().tolist() == [0, 1, 2, 3, 4]
    # one 7 mm step, under GAP_FACTOR: no empty plane either
    assert -1 not in _volume([0.0, 5.0, 12.0, 17.0, 22.0]).uniform_z_sources()
