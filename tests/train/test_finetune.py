"""Stage two trains the report side on frozen slice embeddings, optionally with slice labels."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from models.train.config import TrainSettings  # noqa: E402
from models.train.data import input_grey  # noqa: E402
from models.train.finetune import finetune, label_pos_weight, study_slice_labels  # noqa: E402
from models.train.slice_pretrain import SLICE_LABELS  # noqa: E402
from models.train.step import make_batch  # noqa: E402
from models.train.targets import study_targets  # noqa: E402


class _Trainer:
    """The parts of models.train.loop.Trainer that stage two uses, over two rendered phantoms."""

    def __init__(self, studies, model, tokenizer, work):
        self.model, self.tokenizer, self.work, self.step = model, tokenizer, work, 0
        self.records = {r.index: r for _, r, _ in studies}
        self.grey = {r.index: g for g, r, _ in studies}
        self.settings = TrainSettings(seed=0)
        self.finetune = {}

    def _available(self):
        return sorted(self.records)

    def _targets(self, index):
        return study_targets(self.records[index], self.tokenizer, self.model.config.grid)

    def batch_of(self, indices):
        grey = np.stack([input_grey(self.grey[i], self.model.config.input_channels) for i in indices])
        return make_batch(grey, [self.records[i] for i in indices],
                          [self._targets(i) for i in indices], self.model.config.pad_token_id)


def _small_model(tokenizer):
    from models.medmpt.model import build_model
    from models.train.config import phantom_config

    config = replace(phantom_config(tokenizer.get_vocab_size()), vision_width=32, vision_depth=1, vision_heads=2,
                     vision_mlp=64, fusion_layers=1, fusion_heads=2, fusion_ffn=64, text_width=32, text_layers=1,
                     text_heads=2, text_ffn=64)
    return build_model(config, seed=0)


def test_rare_slice_labels_weigh_more_but_never_without_bound():
    labels = np.zeros((10, 32, 2), dtype=np.float32)
    labels[:, :16, 0] = 1.0  # half the slices
    labels[0, 0, 1] = 1.0  # one slice in 320
    weight = label_pos_weight(labels)
    assert weight[0] == pytest.approx(1.0) and weight[1] == pytest.approx(20.0)


@pytest.mark.slow
def test_stage_two_with_slice_labels_learns_them_and_leaves_the_encoder_alone(small_studies, report_tokenizer,
                                                                              tmp_path):
    torch.manual_seed(0)
    trainer = _Trainer(small_studies, _small_model(report_tokenizer), report_tokenizer, tmp_path)
    truth = study_slice_labels([trainer.records[i] for i in trainer._available()])
    assert truth.shape == (2, 32, len(SLICE_LABELS)) and truth.sum() > 0  # the phantoms have findings
    encoder_before = {k: v.clone() for k, v in trainer.model.vision_encoder_q.state_dict().items()}
    history = finetune(trainer, 100, batch_size=2, lr=3e-3, slice_label_weight=1.0, log=lambda _: None)

    first, last = np.mean([h["slice_labels"] for h in history[:3]]), np.mean([h["slice_labels"] for h in history[-3:]])
    assert last < 0.5 * first
    assert trainer.finetune["slice_label_weight"] == 1.0 and "slice_labels" in trainer.finetune["final"]
    assert all(torch.equal(v, trainer.model.vision_encoder_q.state_dict()[k]) for k, v in encoder_before.items())

    plain = _Trainer(small_studies, _small_model(report_tokenizer), report_tokenizer, tmp_path / "plain")
    plain.work.mkdir()
    seen = []
    dropouts = [m for m in plain.model.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts and all(m.p == 0.0 for m in dropouts)  # the phantom configuration's
    dropouts[0].register_forward_pre_hook(lambda module, args: seen.append(module.p))
    history = finetune(plain, 2, batch_size=2, dropout=0.25, log=lambda _: None)
    assert "slice_labels" not in history[0] and plain.finetune["slice_label_weight"] == 0.0
    assert seen and set(seen) == {0.25} and plain.finetune["dropout"] == 0.25  # while training
    assert all(m.p == 0.0 for m in dropouts)  # and the configuration's again afterwards
    assert not plain.model.training  # left in eval mode: dropout off for export and evaluation
