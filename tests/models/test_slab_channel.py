"""The `lung-slab` input channel (MedMPTConfig.input_channels): the wide window's place holds the
lung window of a thin slab around each sampled slice, the brightest of the slice and the two
original slices a third of the way towards the sampled slices below and above. In that thin-slab
maximum intensity projection a vessel is a tube and a nodule stays round, and a nodule lying
between two sampled slices still shows, as radiologists read thin-slab MIPs for nodules.

What a user would notice: a package trained on it must get, from the workstation's own
preprocessing of a real thin-slice series, exactly what it trained on from phantoms rendered with
those planes (else its drafts silently degrade), and the package must say what it shows.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from inference.errors import InputError
from inference.preprocess import CTInput, preprocess, third_plane_indices, window_normalise
from models.export.package import PREPROCESSING, SLAB_WINDOW, preprocessing_spec

SPEC = preprocessing_spec("lung-slab")


def test_the_third_planes_lie_a_third_of_the_way_to_the_sampled_slices_around():
    positions = np.arange(100) * 1.0  # a 1 mm series
    chosen = np.array([10, 19, 31, 31, 40])  # uneven, and one slice chosen twice
    planes = third_plane_indices(positions, chosen)
    assert planes[1].tolist() == [16, 23]  # 19 - 9/3, 19 + 12/3
    assert planes[0].tolist() == [7, 13]  # the first slice: its one gap on both sides
    assert planes[-1].tolist() == [37, 43]  # and the last
    assert planes[2].tolist() == [27, 31] and planes[3].tolist() == [31, 34]  # a repeat is its own neighbour
    assert third_plane_indices(positions, np.array([3, 4])).tolist() == [[3, 3], [4, 4]]  # ties: nearer
    assert third_plane_indices(positions, np.array([0, 99])).tolist() == [[0, 33], [66, 99]]  # clipped
    assert third_plane_indices(positions, np.array([5])).tolist() == [[5, 5]]


def _series_with_planes():
    """A random 96-slice series, 5/3 mm apart, and the 32 slices 5 mm apart that the model samples
    out of it with each one's planes a third of the way to the next: as the phantoms are rendered."""
    vol = np.random.default_rng(0).uniform(-1000, 200, (96, 32, 32)).astype(np.float32)
    thirds = np.stack([vol[np.maximum(np.arange(32) * 3 - 1, 0)], vol[np.arange(32) * 3 + 1]], axis=1)
    thirds[0, 0] = vol[0]  # below the first slice the series holds nothing: the slice itself
    return vol, vol[0::3], thirds


def test_a_series_gives_the_same_input_as_its_sampled_slices_with_their_planes():
    vol, sampled, thirds = _series_with_planes()
    series = preprocess(CTInput(vol, 5.0 / 3.0), SPEC)
    assert series.original_indices.tolist() == list(range(0, 96, 3))
    phantom = preprocess(CTInput(sampled, 5.0, third_planes=thirds), SPEC)
    np.testing.assert_array_equal(series.pixel_values, phantom.pixel_values)
    np.testing.assert_array_equal(series.pixel_values[:, :, [0, 2]],
                                  preprocess(CTInput(vol, 5.0 / 3.0), PREPROCESSING).pixel_values[:, :, [0, 2]])
    flipped = preprocess(CTInput(vol[::-1], 5.0 / 3.0, superior_first=True), SPEC)  # stored head first
    np.testing.assert_array_equal(flipped.pixel_values, series.pixel_values)
    assert (flipped.original_indices == 95 - series.original_indices).all()
    with pytest.raises(InputError, match="third planes must be"):
        preprocess(CTInput(sampled, 5.0, third_planes=thirds[:, :1]), SPEC)


def test_a_nodule_between_sampled_slices_shows_in_the_slab_and_a_slanting_vessel_is_a_streak():
    hu = np.full((200, 64, 64), -850.0, dtype=np.float32)  # a 1 mm series of lung
    hu[:, 4:8, 56:60] = 40.0  # a vessel running straight through every slice
    for z in range(200):  # a vessel slanting across, one pixel per slice
        hu[z, 40:43, z % 64: z % 64 + 3] = 40.0
    sampled = preprocess(CTInput(hu, 1.0), SPEC).original_indices  # 5 or 10 mm apart
    j = int(np.flatnonzero(np.diff(sampled) == 10)[2])
    above = int(third_plane_indices(np.arange(200.0), sampled)[j, 1])
    assert above == sampled[j] + 3
    hu[above - 1 : above + 2, 18:23, 18:23] = 40.0  # a 3 mm nodule on none of the sampled slices
    got = preprocess(CTInput(hu, 1.0), SPEC).pixel_values[0]
    lung, slab = got[:, 0], got[:, 1]
    scale = 224 / 64
    nodule, background = (int(20 * scale), int(20 * scale)), (int(30 * scale), int(30 * scale))
    assert lung[j][nodule] == lung[j][background]  # the slice itself misses the nodule ...
    assert slab[j][nodule] > slab[j][background] == lung[j][background]  # ... its slab shows it
    assert (lung[:, nodule[0], nodule[1]] == lung[j][background]).all()  # as no sampled slice does
    straight = (slice(int(4 * scale) + 2, int(8 * scale) - 2), slice(int(56 * scale) + 2, int(60 * scale) - 2))
    np.testing.assert_array_equal(slab[j][straight], lung[j][straight])  # a straight vessel: as on its slice
    row = int(41.5 * scale)
    bright = lung[j][background] + 0.5
    assert (slab[j][row] > bright).sum() > 1.8 * (lung[j][row] > bright).sum()  # slanting: a longer streak


def test_a_slab_window_without_its_planes_is_refused_by_name():
    images = np.zeros((2, 8, 8), dtype=np.float32)
    with pytest.raises(InputError, match="window 'lung-slab' shows a slab: its planes are needed"):
        window_normalise(images, SPEC)


torch = pytest.importorskip("torch")


def test_third_planes_leave_the_phantom_itself_unchanged():
    from models.phantoms.case import make_case

    plain = make_case(7, size=96, num_slices=12)
    with_planes = make_case(7, size=96, num_slices=12, third_planes=True)
    np.testing.assert_array_equal(with_planes.hu, plain.hu)
    assert with_planes.report == plain.report and with_planes.third_planes.shape == (12, 2, 96, 96)
    assert plain.third_planes is None
    lungs = plain.lobes > 0  # the planes are the same anatomy, a few mm away
    for side in (0, 1):
        assert abs(float(with_planes.third_planes[:, side][lungs].mean() - plain.hu[lungs].mean())) < 60
        assert not np.array_equal(with_planes.third_planes[:, side], plain.hu)


def test_a_slab_package_names_its_window_and_drafts_on_the_runtime(tmp_path):
    from inference.runtime import ReportRuntime
    from models.testing import make_random_package

    package = make_random_package(tmp_path / "slab", "tiny", seed=0, fp16=False, input_channels="lung-slab")
    manifest = json.loads((package / "manifest.json").read_text())
    assert manifest["architecture"]["input_channels"] == "lung-slab"
    assert manifest["preprocessing"]["windows"][1] == SLAB_WINDOW
    vol, _, _ = _series_with_planes()
    result = ReportRuntime.load(package, device="cpu", warmup=False).draft_sync(CTInput(vol, 5.0 / 3.0))
    assert result.text and result.sentences
