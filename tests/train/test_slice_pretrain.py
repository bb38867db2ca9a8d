"""Stage zero: per-slice labels follow the ground truth, and the slice encoder learns from them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from models.train.config import TrainSettings  # noqa: E402
from models.train.data import StudyRecord  # noqa: E402
from models.train.slice_pretrain import SLICE_LABELS, slice_labels  # noqa: E402


def _record(findings: list[dict], severity: int = 0) -> StudyRecord:
    return StudyRecord(index=0, seed=0, size=128, report="", severity=severity, nodule=0, effusion=0,
                       original_indices=[0, 2, 4, 6, 8], volume_shape=[10, 128, 128], findings=findings)


def test_slice_labels_mark_only_the_slices_a_finding_reaches():
    record = _record([
        {"type": "nodule", "side": "left", "slice_range": [4, 4]},
        {"type": "effusion", "side": "both", "slice_range": [0, 2]},
        {"type": "covid", "side": "both", "slice_range": [5, 9]},
    ], severity=2)
    labels, severity = slice_labels(record)
    column = {name: labels[:, i].tolist() for i, name in enumerate(SLICE_LABELS)}
    assert column["nodule"] == [0, 0, 1, 0, 0] and column["nodule_left"] == [0, 0, 1, 0, 0]
    assert column["nodule_right"] == [0] * 5
    assert column["effusion_left"] == column["effusion_right"] == [1, 1, 0, 0, 0]
    assert column["covid"] == [0, 0, 0, 1, 1]
    assert severity.tolist() == [0, 0, 0, 2, 2]  # the study's grade only where the opacity is
    assert column["cardiomegaly"] == column["emphysema"] == [0] * 5


def test_a_normal_study_has_no_positive_slice():
    labels, severity = slice_labels(_record([]))
    assert labels.sum() == 0 and severity.sum() == 0


class _Trainer:
    """The parts of models.train.loop.Trainer that stage zero uses, over two rendered phantoms."""

    def __init__(self, studies, model):
        self.model = model
        self.records = {r.index: r for _, r, _ in studies}
        self.settings = TrainSettings(seed=0)
        grey = np.stack([g for g, _, _ in studies])
        self.cache = type("Cache", (), {"pixels": grey})()
        self.pretrain = {}

    def _available(self):
        return sorted(self.records)


@pytest.mark.slow
def test_stage_zero_trains_only_the_slice_encoder_and_lowers_its_losses(small_studies, report_tokenizer):
    from models.medmpt.model import build_model
    from models.train.config import phantom_config
    from models.train.slice_pretrain import PretrainSettings, SlicePool, pretrain_slices

    config = replace(phantom_config(report_tokenizer.get_vocab_size()), vision_width=32, vision_depth=1,
                     vision_heads=2, vision_mlp=64, fusion_layers=1, fusion_heads=2, fusion_ffn=64,
                     text_width=32, text_layers=1, text_heads=2, text_ffn=64)
    torch.manual_seed(0)
    trainer = _Trainer(small_studies, build_model(config, seed=0))
    pool = SlicePool(trainer)
    assert len(pool) == 2 * config.num_slices
    settings = PretrainSettings(steps=12, batch_size=len(pool), focal_share=0.0, lr=3e-3, warmup_steps=1,
                                paste_share=0.0)
    decoder_before = {k: v.clone() for k, v in trainer.model.text_decoder.state_dict().items()}
    encoder_before = {k: v.clone() for k, v in trainer.model.vision_encoder_q.state_dict().items()}
    history = pretrain_slices(trainer, settings, log=lambda _: None)

    assert len(history) == 12 and trainer.pretrain["steps"] == 12
    for term in ("loss", "labels", "patches"):
        assert np.mean([h[term] for h in history[-3:]]) < np.mean([h[term] for h in history[:3]]), term
    assert any(not torch.equal(v, trainer.model.vision_encoder_q.state_dict()[k]) for k, v in encoder_before.items())
    assert all(torch.equal(v, trainer.model.text_decoder.state_dict()[k]) for k, v in decoder_before.items())


def test_pasted_nodules_are_labelled_on_their_slice_and_patches(small_studies, report_tokenizer):
    """Stage zero's batches with nodules pasted in: each changed slice says nodule (and its side)
    and its patch mask covers the change; unchanged slices keep their own labels; the cache is
    never written."""
    from models.medmpt.model import build_model
    from models.train.config import phantom_config
    from models.train.slice_pretrain import SlicePool

    trainer = _Trainer(small_studies, build_model(phantom_config(report_tokenizer.get_vocab_size()), seed=0))
    pool = SlicePool(trainer)
    cache_before = trainer.cache.pixels.copy()
    rows = np.arange(len(pool))
    plain = pool.batch(rows)
    pasted = pool.batch(rows, np.random.default_rng(0), paste_share=1.0)
    assert np.array_equal(trainer.cache.pixels, cache_before)
    changed = (pasted["pixels"] != plain["pixels"]).any(dim=1).numpy()  # (N, H, W)
    hit = changed.reshape(len(rows), -1).any(axis=1)
    assert hit.sum() >= 8, "most slices through the lungs get a nodule"
    nodule, left, right = (SLICE_LABELS.index(n) for n in ("nodule", "nodule_left", "nodule_right"))
    grid = trainer.model.config.grid
    for j in np.flatnonzero(hit):
        assert pasted["labels"][j, nodule] == 1 and pasted["labels"][j, left] + pasted["labels"][j, right] >= 1
        ys, xs = np.nonzero(changed[j])
        r, c = int(ys.mean() * grid / changed.shape[1]), int(xs.mean() * grid / changed.shape[2])
        assert pasted["masks"][j, 0, r, c] == 1, "the patch holding the nodule is marked"
    for j in np.flatnonzero(~hit):
        assert torch.equal(pasted["labels"][j], plain["labels"][j])
        assert torch.equal(pasted["masks"][j], plain["masks"][j])


def test_with_neighbour_channels_each_slice_sees_its_neighbours_and_a_pasted_nodule_stays_on_its_slice(
        small_studies, report_tokenizer):
    """MedMPTConfig.input_channels "lung-neighbours": stage zero's single slices, whole studies and
    stage two's studies all carry the input the runtime would make (the lung window of the
    neighbouring sampled slices in the second channel), and a nodule pasted into one slice is
    absent from its neighbours' channel, as a small nodule is."""
    from models.medmpt.model import build_model
    from models.train.config import phantom_config
    from models.train.data import grey_to_pixels, input_grey
    from models.train.slice_pretrain import SlicePool

    config = phantom_config(report_tokenizer.get_vocab_size(), input_channels="lung-neighbours")
    trainer = _Trainer(small_studies, build_model(config, seed=0))
    pool = SlicePool(trainer)
    rows = np.arange(len(pool))
    want = np.concatenate([input_grey(g, "lung-neighbours") for g in trainer.cache.pixels])
    assert torch.equal(pool.batch(rows)["pixels"], grey_to_pixels(torch.from_numpy(want)))
    assert torch.equal(pool.study_batch(np.array([0, 1]), np.random.default_rng(0), 0.0)["pixels"],
                       grey_to_pixels(torch.from_numpy(want)))
    plain = pool.batch(rows)["pixels"]
    pasted = pool.batch(rows, np.random.default_rng(0), paste_share=1.0)["pixels"]
    changed = (pasted != plain).flatten(2).any(-1)  # (slices, channels)
    assert changed[:, 0].sum() >= 8  # nodules pasted into the lung window ...
    assert not changed[:, 1].any()  # ... but not into the neighbours' channel of their own slice


def test_the_study_loss_punishes_the_most_nodule_like_slice_of_a_study_without_nodules():
    """Multiple-instance loss: a nodule-free study is judged by its highest-scoring slice, so only
    that slice is pushed down; a study with a nodule on one slice is fine once any slice scores."""
    from models.train.slice_pretrain import study_loss

    logits = torch.tensor([-5.0, 4.0, -5.0, -5.0, 3.0, -5.0], requires_grad=True)  # 2 studies of 3 slices
    labels = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 1.0])  # study 1: nodule on its last slice
    loss = study_loss(logits, labels, studies=2)
    loss.backward()
    assert loss.item() > 1.0  # the first study looks like it holds a nodule: a false positive
    assert logits.grad[1] > 0 and logits.grad[[0, 2]].abs().sum() == 0  # only its top slice goes down
    assert logits.grad[4] < 0  # the second study's best slice goes up (it holds a nodule)
    quiet = study_loss(torch.tensor([-5.0, -4.0, -5.0]), torch.zeros(3), studies=1)
    assert quiet.item() < 0.05


def test_whole_study_batches_keep_slice_order_and_paste_into_one_slice(small_studies, report_tokenizer):
    from models.medmpt.model import build_model
    from models.train.config import phantom_config
    from models.train.slice_pretrain import SlicePool

    trainer = _Trainer(small_studies, build_model(phantom_config(report_tokenizer.get_vocab_size()), seed=0))
    pool = SlicePool(trainer)
    nodule = SLICE_LABELS.index("nodule")
    plain = pool.study_batch(np.array([1, 0]), np.random.default_rng(0), paste_share=0.0)
    assert plain["pixels"].shape[0] == 2 * pool.slices
    assert torch.equal(plain["labels"], torch.from_numpy(np.concatenate([pool.labels[pool.slices:],
                                                                         pool.labels[:pool.slices]])))
    pasted = pool.study_batch(np.array([0, 1]), np.random.default_rng(1), paste_share=1.0)
    for k in range(2):
        rows = slice(k * pool.slices, (k + 1) * pool.slices)
        changed = (pasted["pixels"][rows] != pool.batch(np.arange(pool.slices) + k * pool.slices)["pixels"])
        changed_slices = changed.flatten(1).any(1)
        assert changed_slices.sum() == 1, "one slice of each study gets the nodule"
        assert pasted["labels"][rows][changed_slices, nodule] == 1


@pytest.mark.slow
def test_stage_zero_from_a_trained_encoder_holds_it_still_while_the_heads_learn(small_studies, report_tokenizer):
    """Going on from a package's encoder: the first `probe_steps` train the new heads alone (the
    encoder is not pushed around by untrained heads), then the encoder learns too, whole studies
    and their study-level loss included."""
    from models.medmpt.model import build_model
    from models.train.config import phantom_config
    from models.train.slice_pretrain import PretrainSettings, pretrain_slices

    config = replace(phantom_config(report_tokenizer.get_vocab_size()), vision_width=32, vision_depth=1,
                     vision_heads=2, vision_mlp=64, fusion_layers=1, fusion_heads=2, fusion_ffn=64,
                     text_width=32, text_layers=1, text_heads=2, text_ffn=64)
    trainer = _Trainer(small_studies, build_model(config, seed=0))
    before = {k: v.clone() for k, v in trainer.model.vision_encoder_q.state_dict().items()}
    held = PretrainSettings(steps=3, batch_size=config.num_slices + 4, whole_studies=1, probe_steps=3,
                            warmup_steps=1, paste_share=0.0)
    history = pretrain_slices(trainer, held, log=lambda _: None)
    assert all(torch.equal(v, trainer.model.vision_encoder_q.state_dict()[k]) for k, v in before.items())
    assert all("study" in h for h in history) and trainer.pretrain["whole_studies"] == 1
    pretrain_slices(trainer, replace(held, probe_steps=1), log=lambda _: None)
    assert any(not torch.equal(v, trainer.model.vision_encoder_q.state_dict()[k]) for k, v in before.items())
    with pytest.raises(ValueError, match="whole studies need a batch"):
        pretrain_slices(trainer, replace(held, batch_size=8), log=lambda _: None)
