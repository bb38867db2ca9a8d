"""Preprocessing turns a HU volume into the model input the reference expects."""

from __future__ import annotations

import numpy as np
import pytest

from inference.errors import InputError
from inference.preprocess import DEFAULT_PREPROCESSING, CTInput, preprocess
from inference.resize import linear_weights, resize_stack


def _expected_value(hu: float, width: float, level: float) -> float:
    low, high = level - width / 2, level + width / 2
    grey = np.floor((min(max(hu, low), high) - low) / (high - low) * 255)
    return (grey / 255 - 0.5) / 0.5


def test_input_has_model_shape_and_range(small_ct: CTInput) -> None:
    prepared = preprocess(small_ct)
    assert prepared.pixel_values.shape == (1, 32, 3, 224, 224)
    assert prepared.pixel_values.dtype == np.float32
    assert prepared.pixel_values.min() >= -1.0 and prepared.pixel_values.max() <= 1.0
    assert prepared.volume_shape == small_ct.hu.shape


@pytest.mark.parametrize("hu", [-1200.0, -400.0, 0.0, 45.0, 600.0])
def test_each_channel_is_its_window(hu: float) -> None:
    prepared = preprocess(CTInput(np.full((8, 20, 30), hu, dtype=np.float32), 5.0))
    for channel, window in enumerate(DEFAULT_PREPROCESSING["windows"]):
        expected = _expected_value(hu, window["width"], window["level"])
        assert np.allclose(prepared.pixel_values[0, :, channel], expected, atol=1e-6), window["name"]


def test_slices_follow_the_index_map_inferior_to_superior() -> None:
    # Each original slice holds its own index as HU; the model input must show them in order.
    hu = np.broadcast_to(np.arange(70, dtype=np.float32)[:, None, None] * 3 - 100, (70, 16, 16)).copy()
    prepared = preprocess(CTInput(hu, 5.0))
    lung = prepared.pixel_values[0, :, 0, 0, 0]
    expected = [_expected_value(3 * i - 100, 1500, -400) for i in prepared.original_indices]
    assert np.allclose(lung, expected, atol=1e-6)
    assert np.all(np.diff(prepared.original_indices) > 0)


def test_superior_first_array_is_fed_inferior_to_superior() -> None:
    hu = np.broadcast_to(np.arange(70, dtype=np.float32)[:, None, None] * 3 - 100, (70, 16, 16)).copy()
    upward = preprocess(CTInput(hu, 5.0))
    downward = preprocess(CTInput(hu[::-1].copy(), 5.0, superior_first=True))
    assert np.array_equal(upward.pixel_values, downward.pixel_values)
    assert (downward.original_indices == 69 - upward.original_indices).all()


def test_thin_slices_map_back_through_z_resampling() -> None:
    hu = np.zeros((256, 8, 8), dtype=np.int16)  # 1.25 mm: 64 slices at 5 mm, then every 2nd
    prepared = preprocess(CTInput(hu, 1.25))
    assert prepared.original_indices.tolist() == list(range(0, 256, 8))


def test_resize_keeps_constants_and_a_centred_square() -> None:
    image = np.zeros((1, 512, 512), dtype=np.float32)
    image[0, 128:384, 128:384] = 100.0
    small = resize_stack(image, (224, 224))
    assert small.shape == (1, 224, 224)
    assert np.isclose(small[0, 112, 112], 100.0) and np.isclose(small[0, 5, 5], 0.0)
    # symmetric input, symmetric output: pixel centres are aligned
    assert np.allclose(small[0], small[0, ::-1, ::-1], atol=1e-4)
    assert np.allclose(linear_weights(300, 224).sum(axis=1), 1.0)


def test_nan_pixels_do_not_poison_the_input() -> None:
    hu = np.zeros((4, 16, 16), dtype=np.float32)
    hu[:, 3, 3] = np.nan
    assert np.isfinite(preprocess(CTInput(hu, 5.0)).pixel_values).all()


@pytest.mark.parametrize("ct, message", [
    (CTInput(np.zeros((16, 16), np.int16), 5.0), "3-D"),
    (CTInput(np.zeros((4, 16, 16), np.int16), 0.0), "spacings"),
    (CTInput(np.zeros((4, 16, 16), np.int16), 5.0, (float("nan"), 1.0)), "spacings"),
    (CTInput(np.zeros((4, 16, 16), bool), 5.0), "real numbers"),
])
def test_bad_volumes_are_refused_clearly(ct: CTInput, message: str) -> None:
    with pytest.raises(InputError, match=message):
        preprocess(ct)


def test_banded_resize_equals_the_full_filter_matrices() -> None:
    images = np.random.default_rng(1).normal(size=(3, 300, 260)).astype(np.float32)
    dense = linear_weights(300, 224) @ images @ linear_weights(260, 224).T
    assert np.allclose(resize_stack(images, (224, 224)), dense, atol=1e-3)


def test_slice_offsets_place_a_gapped_series_and_follow_superior_first() -> None:
    """A series missing 4 slices: the 32 slices are sampled over its true extent, the same
    whether the array runs up or down, and every index refers to the array as given."""
    offsets = np.array([*np.arange(30) * 5.0, *(170.0 + np.arange(30) * 5.0)])  # gap of 25 mm
    hu = np.broadcast_to(np.arange(60, dtype=np.float32)[:, None, None] * 3 - 100, (60, 16, 16)).copy()
    upward = preprocess(CTInput(hu, 5.0, z_offsets_mm=offsets))
    stacked = preprocess(CTInput(hu, 5.0))
    assert upward.original_indices.tolist() != stacked.original_indices.tolist()
    sampled = upward.original_indices.tolist()
    assert any(sampled.count(k) >= 2 for k in (29, 30))  # the gap's neighbours bridge it
    downward = preprocess(CTInput(hu[::-1].copy(), 5.0, superior_first=True,
                                  z_offsets_mm=offsets[-1] - offsets[::-1]))
    assert np.array_equal(upward.pixel_values, downward.pixel_values)
    assert (downward.original_indices == 59 - upward.original_indices).all()
    with pytest.raises(InputError, match="increasing distances"):
        preprocess(CTInput(hu, 5.0, z_offsets_mm=offsets[::-1]))
