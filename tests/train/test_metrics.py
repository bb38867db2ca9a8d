"""Report, classification and pointing metrics on hand-made examples."""

from __future__ import annotations

import numpy as np
import pytest

from inference.explain import Explanation
from models.train import metrics
from models.train.evaluate import Tally, match_findings, score_findings, score_pointing, summarise

REF = "FINDINGS: A 6 mm solid nodule in the right upper lobe. No pleural effusion."


def test_bleu_is_one_for_identical_and_zero_for_unrelated_text():
    assert metrics.bleu([REF], [REF]) == pytest.approx(1.0)
    assert metrics.bleu(["completely different words here today"], [REF]) == 0.0
    partial = metrics.bleu(["FINDINGS: A 6 mm solid nodule in the left upper lobe. No pleural effusion."], [REF])
    assert 0.3 < partial < 1.0


def test_bleu_penalises_short_candidates():
    short = "FINDINGS: A 6 mm solid nodule in the right upper lobe."
    assert metrics.bleu([short], [REF]) < 0.8


def test_rouge_l_orders_candidates_by_overlap():
    assert metrics.rouge_l([REF], [REF]) == pytest.approx(1.0)
    near = metrics.rouge_l(["FINDINGS: A 6 mm nodule in the right upper lobe."], [REF])
    far = metrics.rouge_l(["Heart size is normal."], [REF])
    assert 0.0 <= far < near < 1.0


def test_cider_rewards_the_matching_report():
    refs = [REF, "FINDINGS: Small left pleural effusion. No pulmonary nodule.", "FINDINGS: The lungs are clear."]
    right = metrics.cider_d(refs, refs)
    shuffled = metrics.cider_d(refs[1:] + refs[:1], refs)
    assert right > 5.0 and shuffled < right / 3


def test_auc_perfect_reversed_and_tied():
    assert metrics.roc_auc([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]) == 1.0
    assert metrics.roc_auc([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0]) == 0.0
    assert metrics.roc_auc([0.5, 0.5], [1, 0]) == 0.5
    assert metrics.roc_auc([0.5, 0.5], [1, 1]) is None


def test_slice_and_box_hits_and_chance():
    assert metrics.slice_hit(9, [[10, 12]], margin=1) and not metrics.slice_hit(8, [[10, 12]], margin=1)
    assert metrics.slice_chance([[10, 12]], margin=1, count=50) == pytest.approx(5 / 50)
    assert metrics.box_hit(5, 5, [0, 0, 3, 3], grow=2) and not metrics.box_hit(6, 5, [0, 0, 3, 3], grow=2)
    assert metrics.box_chance([0, 0, 9, 9], grow=0, shape=(20, 20)) == pytest.approx(0.25)


def test_findings_pair_by_type_and_best_attributes():
    truth = [("nodule", "left", "LUL", "solid", "6-9 mm", None), ("nodule", "right", "RUL", "solid", "<6 mm", None)]
    predicted = [("nodule", "right", "RUL", "solid", "<6 mm", None), ("effusion", "left", None, None, None, "small")]
    pairs = match_findings(predicted, truth)
    assert pairs == [(predicted[0], truth[1])]


class _Result:
    """The parts of a ReportResult the pointing scorer reads, for a constructed case."""

    def __init__(self, explanation: Explanation, sentences, shape) -> None:
        self.explanation, self.sentences, self.volume_shape = explanation, sentences, shape
        self.original_indices = explanation.original_indices

    def slice_heatmap(self, z: int, sentence: int) -> np.ndarray:
        return self.explanation.slice_heatmap(z, self.sentences[sentence].slice_relevance)


def _constructed(peak_slice: int, peak_patch: tuple[int, int]) -> _Result:
    from inference.result import Sentence

    shape = (64, 112, 112)
    original = np.arange(0, 64, 2)
    cross = np.full((2, 4, 32), 0.01, dtype=np.float32)
    cross[:, :, peak_slice] = 1.0
    patches = np.full((32, 7, 7), 0.01, dtype=np.float32)
    patches[:, peak_patch[0], peak_patch[1]] = 1.0
    explanation = Explanation(cross, patches, original, shape)
    relevance = explanation.slice_relevance(0, 4)
    sentence = Sentence("A 12 mm solid nodule in the right upper lobe.", "FINDINGS", 0, 4, relevance,
                        int(np.argmax(relevance)))
    return _Result(explanation, [sentence], shape)


def test_pointing_on_a_constructed_case_with_a_7x7_patch_grid():
    finding = {"type": "nodule", "side": "right", "lobe": "RUL", "slice_range": [40, 42],
               "box": [36, 20, 44, 28]}  # columns 36..44, rows 20..28 -> patch (1, 2) of 16-pixel patches
    hit, miss = Tally(), Tally()
    score_pointing(hit, _constructed(20, (1, 2)), [finding])  # sampled slice 20 = original 40
    score_pointing(miss, _constructed(5, (5, 5)), [finding])
    assert hit.slice_hits == [True] and hit.plane_hits == [True]
    assert miss.slice_hits == [False] and miss.plane_hits == [False]
    assert 0 < hit.slice_chance[0] < 0.2 and 0 < hit.plane_chance[0] < 0.2


def test_findings_are_also_scored_per_type():
    """A researcher must see which finding type loses recall, not only the overall F1."""
    tally = Tally()
    truth = [
        {"type": "effusion", "side": "right", "severity": "small"},
        {"type": "emphysema", "severity": "mild"},
    ]
    score_findings(tally, "FINDINGS: Small right pleural effusion. A 6 mm solid nodule in the right "
                          "upper lobe. No emphysema.", truth)
    figures = summarise(tally)["finding_by_type"]
    assert figures["effusion"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "true": 1, "reported": 1}
    assert figures["nodule"]["precision"] == 0.0 and figures["nodule"]["reported"] == 1
    assert figures["emphysema"]["recall"] == 0.0 and figures["emphysema"]["true"] == 1


def test_each_studys_exact_counts_add_up_to_the_exact_f1():
    """The paired comparison of exact F1 resamples per-study counts whose F1 is the reported one."""
    from models.train.metrics import f1_interval

    tally = Tally()
    effusion = {"type": "effusion", "side": "right", "severity": "small"}
    score_findings(tally, "FINDINGS: Small right pleural effusion.", [effusion], "a")  # exact
    score_findings(tally, "FINDINGS: Large left pleural effusion. Mild centrilobular emphysema.",
                   [{**effusion, "side": "left"}], "b")  # type-level match, wrong grade; one invented
    figures = summarise(tally)
    assert figures["study_findings"] == {"a": [1, 0, 0], "b": [1, 1, 0]}
    assert figures["study_exact_findings"] == {"a": [1, 0, 0], "b": [0, 2, 1]}
    assert figures["exact_finding_f1"] == pytest.approx(2 * 1 / (3 + 2))  # 1 exact of 3 reported, 2 true
    low, high = f1_interval(list(figures["study_exact_findings"].values()))
    assert low <= figures["exact_finding_f1"] <= high and figures["exact_finding_f1_ci"] == [low, high]


def test_f1_interval_holds_the_f1_and_narrows_with_more_studies():
    """A researcher comparing two models must see how far the F1 could move with other studies."""
    from models.train.metrics import f1_interval

    rng = np.random.default_rng(1)
    few = np.stack([rng.integers(0, 4, 60), rng.integers(0, 2, 60), rng.integers(0, 3, 60)], axis=1)
    many = np.concatenate([few] * 10)
    f1 = 2 * few[:, 0].sum() / (2 * few[:, 0].sum() + few[:, 1].sum() + few[:, 2].sum())
    low, high = f1_interval(few)
    assert low < f1 < high
    wide, narrow = high - low, np.subtract(*f1_interval(many)[::-1])
    assert narrow < wide / 2
    assert f1_interval([[2, 0, 0]] * 5) == (1.0, 1.0)  # perfect on every study: no doubt


def test_paired_f1_difference_sees_a_consistent_small_gain_and_refuses_other_studies():
    from models.train.metrics import f1_difference

    rng = np.random.default_rng(2)
    base = np.stack([rng.integers(0, 4, 300), rng.integers(0, 2, 300), rng.integers(1, 4, 300)], axis=1)
    better = base + np.where(rng.random((300, 1)) < 0.2, [1, 0, -1], [0, 0, 0])  # one more found in 20 %
    diff, low, high = f1_difference(better, base)
    assert 0 < low < diff < high
    assert f1_difference(base, better)[2] < 0  # the other way round: clearly worse
    assert f1_difference(base, base) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="same studies"):
        f1_difference(base[:10], base)


def test_the_large_nodule_auc_leaves_out_studies_with_only_small_nodules():
    """A researcher asking whether the head finds nodules big enough to see gets that figure alone."""
    from models.train.evaluate import large_nodule_auc

    tally = Tally()
    for probability, size in ((0.9, 20.0), (0.2, 12.0), (0.95, 5.0), (0.1, 0.0), (0.3, 0.0)):
        tally.binary["nodule"].append((probability, int(size > 0)))
        tally.largest_nodule_mm.append(size)
    # 10 mm or more: 0.9 and 0.2 against 0.1 and 0.3 -> 3 of 4 pairs ordered; the 5 mm study is left out
    assert large_nodule_auc(tally) == pytest.approx(0.75)
    assert summarise(tally)["nodule_auc_10mm"] == pytest.approx(0.75)
