"""Findings review items: negatives are not findings; verdicts need a reviewer."""

from __future__ import annotations

import pytest

from app.draft_checks import is_negative
from app.findings_review import ReviewItem, record_verdict


@pytest.mark.parametrize(
    ("text", "negative"),
    [("No pleural effusion.", True), ("There is no pulmonary nodule.", True),
     ("A 12 mm nodule in the right upper lobe.", False), ("Small left pleural effusion.", False)],
)
def test_explicit_negatives_are_not_listed_as_findings(text, negative):
    assert is_negative(text) is negative


def test_a_verdict_records_who_and_when_and_needs_a_name():
    item = ReviewItem("finding", "Nodule", 12, 0)
    with pytest.raises(ValueError, match="name"):
        record_verdict(item, "agree", "  ")
    with pytest.raises(ValueError):
        record_verdict(item, "maybe", "Dr A")
    done = record_verdict(item, "agree", "Dr A")
    assert (done.verdict, done.reviewer) == ("agree", "Dr A") and done.when.endswith("+00:00")


def test_each_diagnosis_says_how_far_its_head_can_be_trusted():
    from app.ai_service import head_note
    from inference.package import DiagnosisHead

    assert head_note(DiagnosisHead("nodule", ("absent", "present"))) == "uncalibrated probabilities"
    calibrated = DiagnosisHead("nodule", ("absent", "present"), 6.9,
                               {"auc": 0.571, "studies": 300, "data": "300 held-out phantoms", "seed": 1})
    assert head_note(calibrated) == "calibrated; AUC 0.57 on 300 held-out phantoms"
    severity = DiagnosisHead("covid_severity", ("CT-0", "CT-1"), 1.0, {"accuracy": 0.987, "studies": 300})
    assert head_note(severity) == "calibrated; accuracy 99% on 300 validation studies"


def test_the_review_list_shows_the_head_notes_beside_the_diagnoses():
    import numpy as np

    from app.drafting import ReportDraft
    from app.findings_review import review_items
    from inference.result import ModelInfo, ReportResult, Timings

    diagnosis = {"nodule": {"absent": 0.35, "present": 0.65}, "effusion": {"absent": 0.9, "present": 0.1}}
    result = ReportResult("", "", "", [], diagnosis, ModelInfo("m", "1", "m", "abc", "synthetic", False), "cpu",
                          [], Timings(), (1,), np.arange(4), (4, 8, 8))
    draft = ReportDraft("req", "1.2.3", "1.2.3.4", "abc", result)
    labels = [i.label for i in review_items(draft, {"nodule": "calibrated; AUC 0.57 on 300 phantoms"})
              if i.kind == "diagnosis"]
    assert labels == ["nodule: present (65%) \u2014 calibrated; AUC 0.57 on 300 phantoms",
                      "effusion: absent (90%)"]


def test_a_problem_of_the_series_comes_first_in_the_review_without_a_slice_to_jump_to():
    import numpy as np

    from app.drafting import ReportDraft
    from app.findings_review import review_items
    from inference.result import ModelInfo, ReportResult, Timings

    result = ReportResult("", "", "", [], {"nodule": {"absent": 0.9, "present": 0.1}},
                          ModelInfo("m", "1", "m", "abc", "synthetic", False), "cpu", [], Timings(), (1,),
                          np.arange(4), (4, 8, 8))
    gap = "gap of 20.00 mm between slices 30 and 31 of 61 (usual spacing 5.00 mm; about 3 slice(s) missing)"
    items = review_items(ReportDraft("req", "1.2.3", "1.2.3.4", "abc", result, series_problems=(gap,)))
    assert (items[0].kind, items[0].label, items[0].evidence_slice) == ("series", gap, None)
    assert [i.kind for i in items[1:]] == ["diagnosis"]
    assert not [i for i in review_items(ReportDraft("req", "1.2.3", "1.2.3.4", "abc", result)) if i.kind == "series"]
