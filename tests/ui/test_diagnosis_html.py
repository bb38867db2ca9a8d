"""The diagnosis under the draft: most likely class first, near-zero classes named together in
the head's order, each head's note in grey."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.ui


def test_near_zero_classes_are_named_together_in_the_head_s_order():
    from ui.report_controller import diagnosis_html

    text = diagnosis_html({"covid_severity": {"CT-0": 0.996, "CT-1": 0.0004, "CT-2": 0.0001, "CT-3": 0.0035},
                           "nodule": {"absent": 0.31, "present": 0.69}},
                          notes={"nodule": "calibrated; AUC 0.59 on 300 held-out phantoms"})
    assert "CT-0 100%, CT-1/CT-2/CT-3 &lt; 1%" in text  # escaped: the label shows "< 1%"
    assert "present 69%, absent 31%" in text
    assert "calibrated; AUC 0.59 on 300 held-out phantoms" in text
