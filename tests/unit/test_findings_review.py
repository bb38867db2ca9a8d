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
