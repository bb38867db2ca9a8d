"""The `lung-neighbours` input channel (MedMPTConfig.input_channels): the wide window's place holds
the lung window of the neighbouring sampled slices, so the slice encoder can tell a nodule (on
one slice) from a vessel in cross-section (on the next slices too), as a reader does by scrolling.

What a user would notice: a package trained on it must get, from the workstation's own
preprocessing of a CT, exactly the input it trained on (else its drafts silently degrade); it
must say so in its manifest, so an older runtime or a training run cannot mistake it for the
reference's three windows; and a bad spec must be refused by name.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from inference.errors import InputError
from inference.preprocess import CTInput, neighbour_max, preprocess
from models.export.package import PREPROCESSING, preprocessing_spec

torch = pytest.importorskip("torch")

from models.medmpt.config import INPUT_CHANNELS  # noqa: E402
from models.testing import make_random_package, random_model_and_tokenizer  # noqa: E402
from models.train.data import ct_input, input_grey, needs_neighbours, pixels_to_grey, render_study  # noqa: E402
from models.train.encoder_from_package import load_slice_encoder  # noqa: E402


def test_the_neighbour_maximum_takes_the_slices_before_and_after():
    stack = np.array([[0.0], [5.0], [1.0], [3.0], [2.0]])
    assert neighbour_max(stack).ravel().tolist() == [5.0, 1.0, 5.0, 2.0, 3.0]  # ends: their one neighbour
    assert neighbour_max(stack[:1]).ravel().tolist() == [0.0]


def test_the_runtime_shows_a_dot_on_one_slice_only_in_its_neighbours_channel():
    hu = np.full((40, 64, 64), -850.0, dtype=np.float32)  # lung
    hu[:, 20:24, 40:44] = 40.0  # a vessel running through every slice
    ct = CTInput(hu, z_spacing_mm=5.0)
    spec = preprocessing_spec("lung-neighbours")
    sampled = preprocess(ct, PREPROCESSING).original_indices
    j = 10  # a sampled slice well inside
    hu[sampled[j], 5:9, 5:9] = 40.0  # a "nodule" on that one slice only
    got = preprocess(CTInput(hu, z_spacing_mm=5.0), spec).pixel_values[0]
    plain = preprocess(CTInput(hu, z_spacing_mm=5.0), PREPROCESSING).pixel_values[0]
    lung, neighbours = got[:, 0], got[:, 1]
    np.testing.assert_array_equal(lung, plain[:, 0])  # the lung and mediastinal windows are unchanged
    np.testing.assert_array_equal(got[:, 2], plain[:, 2])
    nodule, background, vessel = (26, 26), (200, 100), (slice(75, 90), slice(145, 160))
    assert lung[j][nodule] > lung[j][background]  # the nodule is on its slice ...
    assert neighbours[j][nodule] == lung[j][background]  # ... not beside it: lung in its neighbours
    assert neighbours[j - 1][nodule] == neighbours[j + 1][nodule] == lung[j][nodule]  # theirs show it
    np.testing.assert_array_equal(neighbours[j][vessel], lung[j][vessel])  # the vessel is on every slice


@pytest.mark.parametrize("channels", INPUT_CHANNELS)
def test_training_input_is_bit_identical_to_the_runtimes_preprocessing_of_the_phantom(channels):
    grey, _, case = render_study(5, size=192)  # cached: the reference's three windows, ground glass, slab
    assert grey.shape[1] == 5
    want = pixels_to_grey(preprocess(ct_input(case), preprocessing_spec(channels)).pixel_values[0])
    got = input_grey(grey, channels)
    assert got.shape == want.shape and got.shape[1] == 3
    np.testing.assert_array_equal(got, want)
    assert np.array_equal(got[:, 1], grey[:, 1]) == (channels == "windows")  # the wide window or the neighbours
    assert np.array_equal(got[:, 1], grey[:, 4]) == (channels == "lung-slab")  # or the slab
    assert np.array_equal(got[:, 2], grey[:, 3]) == (channels == "neighbours-ground-glass")
    assert needs_neighbours(channels) == (channels in ("lung-neighbours", "neighbours-ground-glass"))


def test_the_ground_glass_window_shows_a_ground_glass_nodule_the_mediastinal_window_cannot():
    hu = np.full((40, 64, 64), -850.0, dtype=np.float32)  # lung
    hu[:, 30:36, 30:36] = -620.0  # ground glass (the phantoms' ground-glass nodule)
    ct = CTInput(hu, z_spacing_mm=5.0)
    plain = preprocess(ct, preprocessing_spec("lung-neighbours")).pixel_values[0]
    glass = preprocess(ct, preprocessing_spec("neighbours-ground-glass")).pixel_values[0]
    inside, lung = (10, slice(None), 116, 116), (10, slice(None), 20, 20)  # (slice, channels, row, column)
    np.testing.assert_array_equal(glass[:, :2], plain[:, :2])  # the lung and neighbours channels are unchanged
    plain_contrast, glass_contrast = plain[inside] - plain[lung], glass[inside] - glass[lung]
    assert plain_contrast[2] == 0  # the mediastinal window: both black
    assert glass_contrast[2] > 2 * plain_contrast[0] > 0  # 2.5x the lung window's contrast


def test_an_unknown_slice_source_or_channel_set_is_refused_by_name():
    spec = preprocessing_spec("lung-neighbours")
    spec["windows"][1]["slices"] = "slab-mip"
    with pytest.raises(InputError, match="unsupported slices 'slab-mip' in window 'lung-neighbours'"):
        preprocess(CTInput(np.zeros((8, 16, 16), dtype=np.int16), 5.0), spec)
    with pytest.raises(ValueError, match="unknown input channels 'rgb'"):
        preprocessing_spec("rgb")


@pytest.fixture(scope="module")
def neighbour_package(tmp_path_factory):
    return make_random_package(tmp_path_factory.mktemp("neighbours"), "tiny", seed=0, fp16=False,
                               input_channels="lung-neighbours")


def test_the_package_names_its_channels_and_its_encoder_goes_only_into_a_model_of_the_same_kind(
        neighbour_package, random_package, tmp_path):
    manifest = json.loads((neighbour_package / "manifest.json").read_text())
    assert manifest["architecture"]["input_channels"] == "lung-neighbours"
    assert manifest["preprocessing"]["windows"][1] == {"name": "lung-neighbours", "width": 1500, "level": -400,
                                                       "slices": "neighbours-max"}
    same, _ = random_model_and_tokenizer("tiny", seed=1, input_channels="lung-neighbours")
    assert load_slice_encoder(same, neighbour_package)["package"] == "medmpt-tiny-random"
    plain, _ = random_model_and_tokenizer("tiny", seed=1)
    with pytest.raises(ValueError, match="input_channels lung-neighbours, this training run windows"):
        load_slice_encoder(plain, neighbour_package)
    # a package written before the field existed shows the reference's windows
    old = tmp_path / "old"
    shutil.copytree(random_package, old)
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["architecture"]["input_channels"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="input_channels windows, this training run lung-neighbours"):
        load_slice_encoder(same, old)
