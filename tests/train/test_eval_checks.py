"""`medmpt eval` scores the workstation's draft checks: is the flagged head right?"""

from __future__ import annotations

import numpy as np

from inference.result import ModelInfo, ReportResult, Sentence, Timings
from models.cli_eval import format_figures
from models.train.evaluate import Tally, score_checks, summarise


def _result(sentences: list[tuple[str, str]], nodule: float) -> ReportResult:
    heads = {"nodule": {"absent": 1 - nodule, "present": nodule}, "effusion": {"absent": 0.95, "present": 0.05},
             "covid_severity": {"CT-0": 0.97, "CT-1": 0.01, "CT-2": 0.01, "CT-3": 0.01}}
    model = ModelInfo("m", "1", "m", "abc", "synthetic", False)
    return ReportResult("", "", "", [Sentence(t, s, 0, 1, np.ones(4), 0) for s, t in sentences], heads, model, "cpu",
                        [], Timings(), (1,), np.arange(4), (4, 8, 8))


def test_head_checks_are_scored_against_the_truth_and_contradictions_counted():
    tally = Tally()
    says_none = [("FINDINGS", "No pulmonary nodule."), ("FINDINGS", "No pleural effusion."),
                 ("IMPRESSION", "Normal CT of the chest.")]
    score_checks(tally, _result(says_none, 0.9), {"nodule"})  # head right: a nodule was missed
    score_checks(tally, _result(says_none, 0.9), set())  # head wrong: a false alarm
    score_checks(tally, _result(says_none, 0.1), set())  # nothing to flag
    contradicting = [("FINDINGS", "No emphysema."), ("IMPRESSION", "Mild emphysema.")]
    score_checks(tally, _result(contradicting, 0.1), {"emphysema"})
    stopped = [("FINDINGS", "There is a 9 mm."), ("FINDINGS", "No pleural effusion.")]
    score_checks(tally, _result(stopped, 0.1), set())  # a sentence stopped after its size
    figures = summarise(tally)["checks"]
    assert figures == {"drafts_flagged": 4, "self_contradictions": 1, "unfinished_drafts": 1,
                       "head_checks": {"nodule": [1, 2]}}
    table = format_figures({**_EMPTY, "checks": figures}, "m", "d")
    assert "| 4 / 1 / 1 | head checks where the head was right: nodule 1/2 |" in table


_EMPTY = summarise(Tally())


def test_recall_is_counted_by_nodule_size_and_by_grade():
    from models.train.evaluate import score_findings

    tally = Tally()
    truth = [{"type": "nodule", "side": "right", "lobe": "RUL", "subtype": "solid", "size_mm": 24.6},
             {"type": "nodule", "side": "left", "lobe": "LLL", "subtype": "solid", "size_mm": 4.8},
             {"type": "effusion", "side": "left", "severity": "small"},
             {"type": "emphysema", "severity": "severe"}]
    score_findings(tally, "FINDINGS: A 25 mm solid nodule in the right upper lobe. Severe centrilobular emphysema "
                          "in the upper lobes. No pleural effusion. IMPRESSION: Pulmonary nodule in the right upper "
                          "lobe. Severe emphysema.", truth)
    classes = summarise(tally)["recall_by_class"]
    assert classes == {"effusion": {"small": [0, 1]}, "emphysema": {"severe": [1, 1]},
                       "nodule": {"<6 mm": [0, 1], ">=20 mm": [1, 1]}}
    assert list(classes["nodule"]) == ["<6 mm", ">=20 mm"]  # smallest first
    table = format_figures({**_EMPTY, "recall_by_class": classes}, "m", "d")
    assert "| nodule: found by size | <6 mm 0/1, >=20 mm 1/1 |" in table
    assert "| effusion: found by grade | small 0/1 |" in table


def test_nodules_of_10_mm_or_more_are_counted_by_subtype():
    """A reader must see which kinds of large nodule the model misses (a faint ground-glass one
    is not a solid one)."""
    from models.train.evaluate import score_findings

    tally = Tally()
    truth = [{"type": "nodule", "side": "right", "lobe": "RUL", "subtype": "solid", "size_mm": 24.6},
             {"type": "nodule", "side": "left", "lobe": "LUL", "subtype": "ground-glass", "size_mm": 18.0},
             {"type": "nodule", "side": "left", "lobe": "LLL", "subtype": "solid", "size_mm": 4.8}]
    score_findings(tally, "FINDINGS: A 25 mm solid nodule in the right upper lobe. IMPRESSION: Pulmonary nodule "
                          "in the right upper lobe.", truth)
    large = summarise(tally)["large_nodules_by_subtype"]
    assert large == {"ground-glass": [0, 1], "solid": [1, 1]}  # the 5 mm one is not counted
    table = format_figures({**_EMPTY, "large_nodules_by_subtype": large}, "m", "d")
    assert "| nodules of 10 mm or more: found by subtype | ground-glass 0/1, solid 1/1 |" in table
