"""The training inputs are exactly the runtime's preprocessing of the same phantom volume."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from inference.preprocess import preprocess  # noqa: E402
from models.export.package import PREPROCESSING  # noqa: E402
from models.phantoms.case import make_case  # noqa: E402
from models.train.data import (  # noqa: E402
    StudyCache,
    ct_input,
    grey_to_pixels,
    input_grey,
    render_case,
    render_slab,
)
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
    grey = np.stack([input_grey(np.asarray(g), "windows") for g in cache.pixels])
    batch = make_batch(grey, records, targets, pad=0)
    for row, record in enumerate(records):
        case = render_case(record.seed, size=record.size)
        expected = preprocess(ct_input(case), PREPROCESSING)
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


def test_a_cache_opened_again_leaves_its_seed_list_alone(tmp_path):
    """Render workers open the cache side by side: one rewriting seeds.json while another reads it
    once crashed a 3,000-phantom render half way. Opening an existing cache must not rewrite it,
    and a new one's list is written whole (no partial file left behind)."""
    folder = tmp_path / "cache"
    StudyCache(folder, [1, 2])
    seeds = folder / "seeds.json"
    before = seeds.stat().st_mtime_ns
    seeds.chmod(0o444)  # a rewrite would now fail (as root it would not: compare the time too)
    try:
        StudyCache(folder, [1, 2])
    finally:
        seeds.chmod(0o644)
    assert seeds.stat().st_mtime_ns == before
    assert sorted(p.name for p in folder.iterdir()) == ["done.u8", "pixels.u8", "seeds.json"]


def test_cache_refuses_renders_of_an_older_recipe(tmp_path):
    """A training run must never silently reuse phantoms rendered the old way (10 mm slabs)."""
    folder = tmp_path / "cache"
    folder.mkdir()
    (folder / "seeds.json").write_text("[1, 2]")  # the layout before recipes were recorded
    with pytest.raises(ValueError, match="older recipe"):
        StudyCache(folder, [1, 2])


@pytest.mark.parametrize("windows", [None, 4])
def test_cache_refuses_a_folder_of_an_older_window_layout(tmp_path, windows):
    """A cache written before the ground-glass window (three windows a slice, no count recorded) or
    the slab window (four) was cached would be read with the wrong layout: refused, not misread."""
    import json

    from models.train.config import RENDER_RECIPE

    folder = tmp_path / "cache"
    folder.mkdir()
    found = {"recipe": RENDER_RECIPE, "seeds": [1, 2]} | ({"windows": windows} if windows else {})
    (folder / "seeds.json").write_text(json.dumps(found))
    with pytest.raises(ValueError, match="older recipe"):
        StudyCache(folder, [1, 2])


def _nodule_peak_hu(case) -> list[tuple[float, float]]:
    """(size mm, brightest HU inside the box on the nodule's slices) of each nodule."""
    peaks = []
    for f in case.findings:
        if f.type == "nodule":
            z0, z1 = f.slice_range
            x0, y0, x1, y1 = (int(v) for v in f.box)
            peaks.append((f.size_mm, float(case.hu[z0 : z1 + 1, y0 : y1 + 1, x0 : x1 + 1].max())))
    return peaks


def test_training_slices_are_thin_slices_spread_over_the_chest():
    """32 slices over the whole chest, each as thin as a clinical slice, so a small nodule shows
    at nearly full contrast instead of being averaged away in a 10 mm slab."""
    seed = next(s for s in range(100) if render_slab(s) <= 2.0 and any(
        size < 8 for size, _ in _nodule_peak_hu(render_case(s, size=96))))
    thin = render_case(seed, size=96)
    slab = make_case(seed, size=96, num_slices=32)  # the same phantom as 32 contiguous slabs
    assert thin.hu.shape[0] == 32 and thin.geometry.slice_thickness > 7.0  # covers the chest
    small = [(t, s) for t, s in zip(_nodule_peak_hu(thin), _nodule_peak_hu(slab), strict=True) if t[0] < 8]
    assert small and all(t[1] > s[1] + 100 for t, s in small), small
