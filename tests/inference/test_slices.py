"""The 32-slice rule and z resampling decide which CT slices the model sees."""

from __future__ import annotations

import numpy as np
import pytest

from inference.slices import sample_slice_indices, z_resample_map


@pytest.mark.parametrize("count", range(1, 401))
def test_rule_gives_32_valid_ordered_indices(count: int) -> None:
    indices = sample_slice_indices(count)
    assert indices.shape == (32,)
    assert indices.min() >= 0 and indices.max() < count
    assert np.all(np.diff(indices) >= 0)
    if count > 32:
        stride = count // 32
        assert indices[0] == 0
        assert np.all(indices % stride == 0)  # every k-th slice from index 0
        assert len(np.unique(indices)) == 32  # no slice twice
    elif count < 32:
        repeats = np.bincount(indices, minlength=count)
        base = 32 // count
        assert set(repeats.tolist()) <= {base, base + 1}
        assert int((repeats == base + 1).sum()) == 32 - count * base
    else:
        assert indices.tolist() == list(range(32))


def test_hand_checked_cases_from_the_rule_text() -> None:
    # 64 slices: k = 2, exactly 32 even slices.
    assert sample_slice_indices(64).tolist() == list(range(0, 64, 2))
    # 100 slices: k = 3 gives 34 indices; r = 2 removed at spacing 34 // 2 = 17 from the end:
    # positions 33 and 16 of the strided list, i.e. slices 99 and 48.
    expected = [i for i in range(0, 100, 3) if i not in (99, 48)]
    assert sample_slice_indices(100).tolist() == expected
    # 63 slices: k = 1 gives 63; r = 31 at spacing 2 from the end: positions 62, 60, ..., 2.
    assert sample_slice_indices(63).tolist() == [0, 1] + list(range(3, 63, 2))
    # 5 slices: 6 copies each, r = 2 extra copies to slices i % (5 // 2) == 0: slices 0 and 2.
    assert np.bincount(sample_slice_indices(5)).tolist() == [7, 6, 7, 6, 6]
    # 1 slice: 32 copies of it.
    assert sample_slice_indices(1).tolist() == [0] * 32
    # 31 slices: one extra copy, to slice 0.
    assert np.bincount(sample_slice_indices(31)).tolist() == [2] + [1] * 30


def test_zero_slices_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one slice"):
        sample_slice_indices(0)


def test_5mm_series_is_not_resampled() -> None:
    assert z_resample_map(64, 5.0, 5.0).tolist() == list(range(64))


def test_thin_slices_are_resampled_to_5mm_by_nearest_original() -> None:
    # 1.25 mm slices: every 4th original slice is 5 mm apart.
    mapping = z_resample_map(256, 1.25, 5.0)
    assert mapping.tolist() == list(range(0, 256, 4))
    # 2 mm slices: positions 0, 5, 10 mm -> originals 0, 2.5 -> 3 (half up), 5.
    assert z_resample_map(10, 2.0, 5.0).tolist() == [0, 3, 5, 8]


def test_thick_slices_are_repeated_and_stay_in_range() -> None:
    mapping = z_resample_map(10, 10.0, 5.0)
    assert len(mapping) == 20
    assert mapping.max() == 9 and np.all(np.diff(mapping) >= 0)


def test_bad_spacing_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        z_resample_map(10, 0.0, 5.0)


@pytest.mark.parametrize("spacing", [0.625, 1.0, 1.25, 2.0, 3.0, 5.0, 7.5, 10.0])
def test_evenly_spaced_offsets_give_the_reference_map(spacing) -> None:
    for count in (1, 2, 7, 31, 64, 150, 400):
        offsets = np.arange(count) * spacing
        assert z_resample_map(count, spacing, 5.0, offsets).tolist() == z_resample_map(count, spacing, 5.0).tolist()


def test_a_gap_is_bridged_by_its_neighbours_not_closed_up() -> None:
    # 5 mm slices at 0..45 mm and 70..95 mm: 4 slices (50..65 mm) missing after index 9
    offsets = np.array([*np.arange(10) * 5.0, *(70.0 + np.arange(6) * 5.0)])
    mapping = z_resample_map(16, 5.0, 5.0, offsets)
    assert len(mapping) == 20  # the true 100 mm, not the 80 mm of 16 stacked slices
    assert mapping[:10].tolist() == list(range(10))
    assert mapping[10:14].tolist() == [9, 9, 10, 10]  # 50, 55 -> 45 mm; 60 (tie -> later), 65 -> 70 mm
    assert mapping[14:].tolist() == list(range(10, 16))
    with pytest.raises(ValueError, match="increasing"):
        z_resample_map(3, 5.0, 5.0, np.array([0.0, 5.0, 5.0]))
