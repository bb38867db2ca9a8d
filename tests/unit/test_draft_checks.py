"""A draft whose text and diagnosis heads disagree is flagged, in the review list and report.json."""

from __future__ import annotations

import numpy as np
import pytest

from app.draft_checks import disagreements

NORMAL = ["The lungs are clear.", "No pulmonary nodules.", "No pleural effusion.", "No ground-glass opacity."]
HEADS_NORMAL = {"covid_severity": {"CT-0": 0.95, "CT-1": 0.03, "CT-2": 0.01, "CT-3": 0.01},
                "nodule": {"absent": 0.9, "present": 0.1}, "effusion": {"absent": 0.97, "present": 0.03}}


def _heads(**present: float) -> dict:
    heads = {k: dict(v) for k, v in HEADS_NORMAL.items()}
    for head, p in present.items():
        if head == "covid_severity":
            heads[head] = {"CT-0": 1 - p, "CT-1": p, "CT-2": 0.0, "CT-3": 0.0}
        else:
            heads[head] = {"absent": 1 - p, "present": p}
    return heads


def test_text_and_heads_that_agree_raise_nothing():
    assert disagreements(NORMAL, HEADS_NORMAL) == []
    positive = ["A 9 mm solid nodule in the right upper lobe.", "Small left pleural effusion."]
    assert disagreements(positive, _heads(nodule=0.85, effusion=0.9)) == []


def test_a_confident_head_under_a_negative_sentence_is_flagged():
    found = disagreements(NORMAL, _heads(nodule=0.9))
    assert [(d.head, d.text_says_present) for d in found] == [("nodule", False)]
    assert "does not report a pulmonary nodule" in found[0].message and "90%" in found[0].message


def test_a_finding_in_the_text_that_its_head_rules_out_is_flagged():
    text = ["Bilateral peripheral ground-glass opacities.", "Moderate right pleural effusion."]
    found = {d.head: d for d in disagreements(text, _heads(effusion=0.05))}
    assert set(found) == {"effusion", "covid_severity"}  # CT-0 at 95 % under "ground-glass opacities"
    assert found["effusion"].text_says_present and "reports a pleural effusion" in found["effusion"].message


@pytest.mark.parametrize("p", [0.4, 0.5, 0.6])
def test_uncertain_heads_are_left_to_the_reader(p):
    assert disagreements(NORMAL, _heads(nodule=p)) == []


def test_heads_a_model_does_not_have_are_skipped():
    assert disagreements(["Large mass in the left lung."], {"other": {"absent": 0.1, "present": 0.9}}) == []


def test_the_check_reaches_the_review_list_and_report_json(monkeypatch):
    from app.drafting import ReportDraft
    from app.findings_review import review_items
    from inference.result import ModelInfo, ReportResult, Sentence, Timings

    sentences = [Sentence(t, "FINDINGS", 0, 1, np.ones(4), 0) for t in NORMAL]
    model = ModelInfo("m", "1", "m", "abc", "synthetic", False)
    result = ReportResult(" ".join(NORMAL), "", " ".join(NORMAL), sentences, _heads(nodule=0.92), model, "cpu",
                          [], Timings(), (1,), np.arange(4), (4, 8, 8))
    relevance = np.array([0.1, 0.2, 1.0, 0.3])  # the explanation's whole-report slice relevance
    monkeypatch.setattr(ReportResult, "report_relevance", property(lambda self: relevance))
    draft = ReportDraft("req", "1.2.3", "1.2.3.4", "abc", result)
    checks = [i for i in review_items(draft) if i.kind == "check"]
    assert len(checks) == 1 and "nodule classifier gives 92%" in checks[0].label
    assert checks[0].evidence_slice == 2
    assert draft.to_dict()["checks"] == [checks[0].label]
