"""Supervision targets: finding sentences point at their slices, boxes at their patches."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from models.phantoms.corpus import report_corpus  # noqa: E402
from models.train.targets import mentions, patch_targets, slice_mask, study_targets  # noqa: E402


def test_tokenizer_round_trips_reports_for_the_parser(report_tokenizer):
    for report in report_corpus(200, 99):
        ids = report_tokenizer.encode(report).ids
        assert len(ids) <= 120
        assert report_tokenizer.decode(ids, skip_special_tokens=True) == report


def test_finding_sentence_tokens_target_the_finding_slices(small_studies, report_tokenizer):
    for _, record, _ in small_studies:
        targets = study_targets(record, report_tokenizer, grid=7)
        located = [f for f in record.findings if f["slice_range"]]
        assert targets.token_supervised.any() == bool(located)
        oi = np.asarray(record.original_indices)
        lows = min(f["slice_range"][0] for f in located)
        highs = max(f["slice_range"][1] for f in located)
        chosen = oi[targets.token_slices[targets.token_supervised].any(axis=0)]
        assert chosen.min() >= lows - 2 and chosen.max() <= highs + 2


def test_slice_mask_falls_back_to_the_nearest_sampled_slice():
    oi = np.array([0, 2, 4, 6])
    assert slice_mask([[2, 4]], oi).tolist() == [False, True, True, False]
    assert slice_mask([[3, 3]], oi).tolist() == [False, True, True, False]


def test_patch_target_covers_the_box():
    finding = {"type": "nodule", "slice_boxes": [[5, 100, 10, 120, 30]]}
    masks, has = patch_targets([finding], np.array([4, 5, 5, 6]), size=224, grid=7)
    assert has.tolist() == [False, True, True, False]
    assert masks[1, 0, 3] == 1.0 and masks[1].sum() == 1.0  # rows 10..30, columns 100..120 -> patch (0, 3)


def test_mentions_reads_side_lobe_and_negation():
    nodule = {"type": "nodule", "lobe": "RUL", "side": "right"}
    assert mentions("A 6 mm solid nodule in the right upper lobe.", nodule)
    assert not mentions("A 6 mm solid nodule in the left upper lobe.", nodule)
    assert not mentions("No pulmonary nodule.", nodule)
    effusion = {"type": "effusion", "side": "left"}
    assert mentions("Small bilateral pleural effusions.", effusion)
    assert not mentions("There is no pleural effusion.", effusion)
