"""A package whose in-plane heatmap is the last block's CLS attention (`patch_relevance =
"cls-attention"`) instead of the attention rollout.

What a user would notice: such a package must show the heatmap it says it shows (its manifest
names the method), run in ONNX Runtime as in torch, in fp16 too, and its vision graph must run
each block's attention as one fused operator, which is what makes it fast on a GPU; packages
written before the field existed keep the rollout; an unknown method is refused by name.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from models.medmpt.config import get_config  # noqa: E402
from models.medmpt.model import build_model  # noqa: E402
from models.medmpt.vision import attention_rollout, cls_attention, patch_relevance  # noqa: E402
from models.testing import make_random_package, random_model_and_tokenizer  # noqa: E402
from models.train.encoder_from_package import load_slice_encoder  # noqa: E402


@pytest.fixture(scope="module")
def cls_package(tmp_path_factory):
    return make_random_package(tmp_path_factory.mktemp("cls-attention"), "tiny", seed=0,
                               patch_relevance="cls-attention")


@pytest.fixture(scope="module")
def pixels():
    return np.random.default_rng(3).uniform(-1, 1, size=(1, 32, 3, 224, 224)).astype(np.float32)


def _run(path, pixels):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"pixel_values": pixels}), strict=True))


def test_cls_attention_is_the_last_blocks_cls_row_and_differs_from_the_rollout():
    model = build_model(get_config("tiny"), seed=0)
    x = torch.from_numpy(np.random.default_rng(1).uniform(-1, 1, (4, 3, 224, 224)).astype(np.float32))
    with torch.no_grad():
        _, maps = model.vision_encoder_q(x)
    got = patch_relevance(maps, "cls-attention")
    want = maps[-1].mean(dim=1)[:, 0, 1:]
    torch.testing.assert_close(got, want / want.sum(-1, keepdim=True))
    torch.testing.assert_close(got.sum(-1), torch.ones(4))
    torch.testing.assert_close(cls_attention(maps[-1][:, :, :1]), got)  # the CLS row alone suffices
    assert not torch.allclose(got, attention_rollout(maps), atol=1e-4)
    with pytest.raises(ValueError, match="unknown patch relevance 'gradcam'"):
        patch_relevance(maps, "gradcam")


def test_the_package_names_its_heatmap_and_runs_as_in_torch(cls_package, pixels):
    manifest = json.loads((cls_package / "manifest.json").read_text())
    assert manifest["architecture"]["patch_relevance"] == "cls-attention"
    model, _ = random_model_and_tokenizer("tiny", seed=0, patch_relevance="cls-attention")
    got = _run(cls_package / "vision.onnx", pixels)
    with torch.no_grad():
        want = {k: v.numpy() for k, v in model.eval().encode(torch.from_numpy(pixels)).items() if k in got}
    assert {"slice_tokens", "scan_embedding", "patch_relevance"} <= want.keys()
    for name, value in want.items():
        assert np.abs(got[name] - value).max() <= 1e-4, name
    np.testing.assert_allclose(got["patch_relevance"].sum(axis=(2, 3)), 1.0, atol=1e-5)
    half = _run(cls_package / "vision.fp16.onnx", pixels)
    for name in ("patch_relevance", "diag_nodule"):
        assert np.abs(half[name] - got[name]).max() <= 1e-2, name


def test_its_vision_graph_fuses_every_blocks_attention(cls_package):
    config = get_config("tiny")
    for name in ("vision.onnx", "vision.fp16.onnx"):
        nodes = onnx.load(str(cls_package / name)).graph.node
        fused = [n for n in nodes if n.op_type == "MultiHeadAttention"]
        assert len(fused) == config.vision_depth, name
        # softmaxes left: the last block's CLS row, the fusion encoder's layers, the heads
        in_encoder = [n for n in nodes if n.op_type == "Softmax" and "vision_encoder_q" in n.name]
        assert len(in_encoder) == 1, (name, [n.name for n in in_encoder])


def test_a_rollout_package_keeps_explicit_attention(random_package):
    manifest = json.loads((random_package / "manifest.json").read_text())
    assert manifest["architecture"]["patch_relevance"] == "rollout"
    nodes = onnx.load(str(random_package / "vision.onnx")).graph.node
    assert not any(n.op_type == "MultiHeadAttention" for n in nodes)


def test_its_slice_encoder_is_read_back_whole(cls_package):
    source, _ = random_model_and_tokenizer("tiny", seed=0, patch_relevance="cls-attention")
    target, _ = random_model_and_tokenizer("tiny", seed=1, patch_relevance="cls-attention")
    load_slice_encoder(target, cls_package)
    theirs, ours = source.vision_encoder_q.state_dict(), target.vision_encoder_q.state_dict()
    assert set(theirs) == set(ours)
    for name in theirs:
        assert torch.equal(theirs[name], ours[name]), name


def test_a_rollout_package_is_copied_as_a_cls_attention_one_for_comparison(random_package, pixels, tmp_path):
    """scripts/cls_attention_package.py: the copy loads (every hash renewed), says which heatmap
    it shows, and shows the same model's CLS attention; everything else is unchanged."""
    import importlib.util
    from pathlib import Path

    from inference.package import load_package

    script = Path(__file__).resolve().parents[2] / "scripts" / "cls_attention_package.py"
    spec = importlib.util.spec_from_file_location("cls_attention_package", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "copy"
    module.main(random_package, out)
    package = load_package(out)
    assert package.manifest["architecture"]["patch_relevance"] == "cls-attention"
    model, _ = random_model_and_tokenizer("tiny", seed=0, patch_relevance="cls-attention")
    with torch.no_grad():
        want = model.eval().encode(torch.from_numpy(pixels))["patch_relevance"].numpy()
    got, before = _run(out / "vision.onnx", pixels), _run(random_package / "vision.onnx", pixels)
    assert np.abs(got["patch_relevance"] - want).max() <= 1e-5
    assert np.abs(before["patch_relevance"] - want).max() > 1e-3  # it was the rollout
    for name in before:
        if name != "patch_relevance":
            np.testing.assert_array_equal(got[name], before[name], err_msg=name)
    with pytest.raises(SystemExit, match="already shows cls-attention"):
        module.main(out, tmp_path / "again")
