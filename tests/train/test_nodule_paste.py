"""Pasted training nodules: inside the lung, on the right side, with nodule density, and labelled."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("scipy")

from models.phantoms.lesion_paint import NODULE_HU  # noqa: E402
from models.phantoms.truth import LOBE_CODES, LOBE_SIDE  # noqa: E402
from models.train.nodule_paste import box_patches, grey_of, lung_mask, paste_nodule  # noqa: E402
from models.train.targets import patch_targets  # noqa: E402


@pytest.fixture(scope="module")
def studies():
    """Two phantoms at a training matrix (160; lungs, gas and airways as sharp as in training)."""
    from models.train.data import render_study

    return [render_study(seed, index=i, size=160) for i, seed in enumerate((1, 7))]


def _lung_slices(studies):
    """(grey (3, 224, 224), lobe labels at 224 (nearest)) of sampled slices showing lung."""
    for grey, record, case in studies:
        size = case.lobes.shape[-1]
        pick = np.clip(((np.arange(224) + 0.5) * size / 224).astype(int), 0, size - 1)
        for s, k in enumerate(record.original_indices):
            lobes = case.lobes[k][np.ix_(pick, pick)]
            if (lobes > 0).sum() > 2000:
                yield grey[s], lobes


def test_pasted_nodules_lie_in_the_lung_on_the_side_they_are_labelled_with(studies):
    seen = {"left": 0, "right": 0}
    rng = np.random.default_rng(3)
    for grey, lobes in _lung_slices(studies):
        before, work = grey.copy(), grey.copy()
        pasted = paste_nodule(work, rng)
        if pasted is None:
            assert np.array_equal(work, before), "a slice no nodule fits in is left alone"
            continue
        changed = np.any(work != before, axis=0)
        assert changed.any(), "a pasted nodule changes the slice"
        lung = lung_mask(before[0])
        assert not (changed & ~lung).any(), "nothing outside the lung is touched"
        x0, y0, x1, y1 = pasted.box
        assert x0 <= pasted.column <= x1 and y0 <= pasted.row <= y1
        lobe = int(lobes[pasted.row, pasted.column])
        assert lobe > 0, "the centre lies in a lobe of the phantom"
        assert LOBE_SIDE[LOBE_CODES[lobe - 1]] == pasted.side, "patient left is image right"
        seen[pasted.side] += 1
        if sum(seen.values()) >= 12:
            break
    assert seen["left"] and seen["right"], seen


def test_a_pasted_solid_nodule_shows_solid_density_in_every_window(studies):
    grey, _ = next(iter(_lung_slices(studies)))
    for seed in range(200):
        work = grey.copy()
        pasted = paste_nodule(work, np.random.default_rng(seed))
        if pasted is not None and pasted.subtype == "solid" and pasted.box[2] - pasted.box[0] >= 4:
            break
    else:
        pytest.fail("no solid nodule of 4 pixels or more in 200 tries")
    whole = NODULE_HU["solid"][0]
    for channel in range(3):
        centre = float(work[channel, pasted.row - 1 : pasted.row + 2, pasted.column - 1 : pasted.column + 2].mean())
        assert abs(centre - grey_of(whole, channel)) < 12 * (1 + 2 * (channel == 2)), channel
    assert work[0, pasted.row, pasted.column] > grey[0, pasted.row, pasted.column] + 60, "brighter than lung"


def test_a_slice_without_lung_is_left_alone():
    soft = np.zeros((3, 224, 224), dtype=np.uint8)
    for channel in range(3):
        soft[channel] = int(grey_of(40.0, channel))
    before = soft.copy()
    assert paste_nodule(soft, np.random.default_rng(0)) is None
    assert np.array_equal(soft, before)


def test_the_patch_mask_of_a_pasted_box_matches_the_training_targets():
    box = (100, 60, 118, 71)
    finding = {"slice_boxes": [[5, *box]]}
    expected = patch_targets([finding], np.array([5]), 224, 7)[0][0]
    assert np.array_equal(box_patches(box, 224, 7), expected)
