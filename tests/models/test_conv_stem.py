"""A slice encoder with a convolutional stem (config `patch_stem="conv"`) instead of the paper's
patch projection.

What a user would notice: a package whose slice encoder starts with convolutions must run in ONNX
Runtime exactly as it trained (same embeddings, same in-plane heatmaps on the same 14 x 14 grid),
say in its manifest which stem it has, and a training run must take its encoder back only into a
model of the same kind.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from models.medmpt.config import get_config  # noqa: E402
from models.medmpt.vision import PatchEmbed  # noqa: E402
from models.testing import make_random_package, random_model_and_tokenizer  # noqa: E402
from models.train.encoder_from_package import load_slice_encoder  # noqa: E402


@pytest.fixture(scope="module")
def conv_package(tmp_path_factory):
    return make_random_package(tmp_path_factory.mktemp("conv-stem"), "tiny", seed=0, fp16=False, patch_stem="conv")


def test_the_conv_stem_gives_the_papers_token_grid_and_sees_beyond_its_patch():
    config = get_config("tiny", patch_stem="conv")
    embed = PatchEmbed(config).eval()
    image = torch.zeros(1, 3, 224, 224)
    assert embed(image).shape == (1, 14 * 14, config.vision_width)
    # a dot at the right edge of patch (0, 0) also reaches the token of patch (0, 1): the stem's
    # fields overlap, so an object on a patch border is not cut in two
    dotted = image.clone()
    dotted[0, :, 3, 15] = 1.0
    with torch.no_grad():
        assert not torch.allclose(embed(image)[0, 1], embed(dotted)[0, 1])
        linear = PatchEmbed(get_config("tiny")).eval()
        assert torch.allclose(linear(image)[0, 1], linear(dotted)[0, 1])


def test_an_unknown_stem_or_patch_size_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown patch stem 'resnet'"):
        PatchEmbed(get_config("tiny", patch_stem="resnet"))
    with pytest.raises(ValueError, match="power of two, not 14"):
        PatchEmbed(get_config("tiny", patch_stem="conv", patch_size=14, image_size=224))


def test_a_conv_stem_package_runs_in_onnx_runtime_as_in_torch(conv_package):
    manifest = json.loads((conv_package / "manifest.json").read_text())
    assert manifest["architecture"]["patch_stem"] == "conv"
    model, _ = random_model_and_tokenizer("tiny", seed=0, patch_stem="conv")
    pixels = np.random.default_rng(5).uniform(-1, 1, size=(1, 32, 3, 224, 224)).astype(np.float32)
    session = ort.InferenceSession(str(conv_package / "vision.onnx"), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    got = dict(zip(names, session.run(None, {"pixel_values": pixels}), strict=True))
    with torch.no_grad():
        want = {k: v.numpy() for k, v in model.eval().encode(torch.from_numpy(pixels)).items() if k in got}
    assert {"slice_tokens", "patch_relevance"} <= want.keys()
    for name, value in want.items():
        assert np.abs(got[name] - value).max() <= 1e-4, name
    assert got["patch_relevance"].shape == (1, 32, 14, 14)


def test_a_conv_stem_encoder_is_read_back_whole_and_only_into_a_conv_stem_model(conv_package):
    source, _ = random_model_and_tokenizer("tiny", seed=0, patch_stem="conv")
    target, _ = random_model_and_tokenizer("tiny", seed=1, patch_stem="conv")
    load_slice_encoder(target, conv_package)
    theirs, ours = source.vision_encoder_q.state_dict(), target.vision_encoder_q.state_dict()
    assert any(name.startswith("patch_embed.stem.") for name in ours)
    assert set(theirs) == set(ours)
    for name in theirs:
        assert torch.equal(theirs[name], ours[name]), name

    linear, _ = random_model_and_tokenizer("tiny", seed=1)
    with pytest.raises(ValueError, match="patch_stem conv, this training run linear"):
        load_slice_encoder(linear, conv_package)


def test_a_package_from_before_the_stem_field_is_read_as_the_papers_linear_projection(random_package, tmp_path):
    import shutil

    package = tmp_path / "old"
    shutil.copytree(random_package, package)
    manifest = json.loads((package / "manifest.json").read_text())
    del manifest["architecture"]["patch_stem"]
    (package / "manifest.json").write_text(json.dumps(manifest))
    linear, _ = random_model_and_tokenizer("tiny", seed=1)
    assert load_slice_encoder(linear, package)["package"] == "medmpt-tiny-random"
    conv, _ = random_model_and_tokenizer("tiny", seed=1, patch_stem="conv")
    with pytest.raises(ValueError, match="patch_stem linear, this training run conv"):
        load_slice_encoder(conv, package)
