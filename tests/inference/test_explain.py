"""Attention becomes slice relevance and heatmaps aligned with the original CT."""

from __future__ import annotations

import numpy as np

from inference.explain import Explanation, relevance_to_uint8, to_original_slices
from inference.slices import sample_slice_indices


def _uniform_patches() -> np.ndarray:
    return np.full((32, 14, 14), 1 / 196, dtype=np.float32)


def test_attention_on_one_model_slice_points_at_its_original_slice() -> None:
    original = sample_slice_indices(100)
    attention = np.full((2, 3, 32), 0.01, dtype=np.float32)
    attention[:, :, 20] = 0.9
    explanation = Explanation(attention, _uniform_patches(), original, (100, 64, 48))
    relevance = explanation.slice_relevance()
    assert relevance.shape == (100,)
    assert int(np.argmax(relevance)) == original[20]
    assert relevance.max() == 1.0 and relevance.min() >= 0.0


def test_skipped_slices_are_interpolated_between_sampled_neighbours() -> None:
    original = np.arange(0, 64, 2)  # 64 slices: odd ones were not sampled
    sampled = np.zeros(32)
    sampled[10], sampled[11] = 1.0, 0.5  # originals 20 and 22
    relevance = to_original_slices(sampled, original, 64)
    assert np.isclose(relevance[20], 1.0) and np.isclose(relevance[22], 0.5)
    assert np.isclose(relevance[21], 0.75)
    assert relevance[63] == relevance[62]  # held beyond the last sampled slice


def test_repeated_slices_of_a_short_series_add_up() -> None:
    original = sample_slice_indices(5)  # slices 0 and 2 appear 7 times, others 6
    relevance = to_original_slices(np.ones(32), original, 5)
    assert np.allclose(relevance, np.bincount(original) / 7)


def test_patch_peak_lands_in_the_right_part_of_the_slice() -> None:
    original = sample_slice_indices(40)
    patches = np.zeros((32, 14, 14), dtype=np.float32)
    patches[:, 2, 11] = 1.0  # upper right patch
    attention = np.ones((1, 4, 32), dtype=np.float32) / 32
    explanation = Explanation(attention, patches, original, (40, 280, 140))
    volume = explanation.heatmap_volume()
    assert volume.shape == (40, 280, 140) and volume.dtype == np.float32
    assert 0.0 <= volume.min() and volume.max() <= 1.0
    y, x = np.unravel_index(np.argmax(volume[5]), volume[5].shape)
    assert 2 * 20 <= y < 3 * 20 and 11 * 10 <= x < 12 * 10
    assert np.allclose(explanation.slice_heatmap(5, explanation.slice_relevance()), volume[5])


def test_a_sentence_without_tokens_gives_zero_relevance() -> None:
    explanation = Explanation(np.ones((1, 3, 32), np.float32), _uniform_patches(),
                              sample_slice_indices(32), (32, 16, 16))
    assert not explanation.slice_relevance(2, 2).any()
    assert not explanation.heatmap_volume(2, 2).any()


def test_the_shown_heatmap_stays_in_range_for_odd_patch_relevance() -> None:
    # Negative and uneven patch values (a converted model's graph could give them): the viewer's
    # uint8 heatmap still equals the float heatmap's, and both stay within 0..1 / 0..255.
    rng = np.random.default_rng(5)
    patches = rng.normal(0.0, 1.0, (32, 14, 14)).astype(np.float32)
    attention = rng.random((2, 6, 32)).astype(np.float32)
    explanation = Explanation(attention, patches, sample_slice_indices(50), (50, 70, 90))
    for start, end in ((0, None), (1, 4)):
        volume = explanation.heatmap_volume(start, end)
        assert 0.0 <= volume.min() and volume.max() <= 1.0
        np.testing.assert_array_equal(explanation.heatmap_uint8(start, end), relevance_to_uint8(volume))
