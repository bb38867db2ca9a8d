"""The training inputs are exactly the runtime's preprocessing of the same phantom volume."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from inference.preprocess import preprocess  # noqa: E402
from models.phantoms.case import make_case  # noqa: E402
from models.train.data import SPEC, StudyCache, ct_input, grey_to_pixels  # noqa: E402
from models.train.step import make_batch  # noqa: E402
from models.train.targets import study_targets  # noqa: E402


@pytest.mark.slow
def test_cached_batch_pixels_equal_runtime_preprocessing(tmp_path, report_tokenizer):
    seeds = [11, 12]
    cache = StudyCache(tmp_path / "cache", seeds)
    cache.fill(workers=1, log=lambda _: None)
    records = cache.records()
    assert [r.seed for r in records] == seeds
    targets = [study_targets(r, report_tokenizer, grid=7) for r in records]
    batch = make_batch(np.asarray(cache.pixels), records, targets, pad=0)
    for row, record in enumerate(records):
        case = make_case(record.seed, size=record.size, num_slices=32)
        expected = preprocess(ct_input(case), SPEC)
        assert np.array_equal(batch.pixels[row].numpy(), expected.pixel_values[0])
        assert record.original_indices == expected.original_indices.tolist()


def test_grey_levels_restore_every_window_value():
    grey = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 1, 16, 16)
    pixels = grey_to_pixels(grey)
    assert float(pixels.min()) == -1.0 and float(pixels.max()) == 1.0
    assert torch.unique(pixels).numel() == 256


def test_cache_refuses_other_seeds(tmp_path):
    StudyCache(tmp_path / "cache", [1, 2])
    with pytest.raises(ValueError, match="other phantom seeds"):
        StudyCache(tmp_path / "cache", [3, 4])
