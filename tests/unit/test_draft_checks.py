"""A draft whose text and diagnosis heads disagree is flagged, in the review list and report.json."""

from __future__ import annotations

import numpy as np
import pytest

from app.draft_checks import contradictions, disagreements, is_negative

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


F, IMP = "FINDINGS", "IMPRESSION"
# A draft the bundled phantom model wrote for the shared real series (session 4): its impression
# reports the emphysema its findings deny.
SELF_CONTRADICTING = [
    (F, "There is a 10 mm solid nodule in the left lower lobe."), (F, "A 10 mm solid nodule in the right middle lobe."),
    (F, "A small pleural effusion on the right."), (F, "No ground-glass opacity or consolidation."),
    (F, "No emphysema."), (F, "Heart size is normal."),
    (IMP, "Pulmonary nodules in the left lower lobe and right middle lobe."), (IMP, "Moderate emphysema."),
    (IMP, "Right pleural effusion."),
]


def test_a_finding_both_reported_and_denied_is_flagged_once_quoting_both_sentences():
    found = contradictions(SELF_CONTRADICTING)
    assert [c.finding for c in found] == ["emphysema"]
    assert '"Moderate emphysema." / "No emphysema."' in found[0].message
    heart = contradictions([(F, "The heart is enlarged."), (IMP, "Heart size is normal.")])
    assert [c.finding for c in heart] == ["cardiomegaly"]
    covid = contradictions([(F, "A 12 mm ground-glass nodule in the left upper lobe."),
                            (F, "No ground-glass opacity or consolidation."),
                            (IMP, "Pulmonary nodule in the left upper lobe."), (IMP, "Mild COVID-19 pneumonia pattern, CT-1.")])
    assert [c.finding for c in covid] == ["opacity"] and "COVID-19 pneumonia" in covid[0].message


def test_a_consistent_draft_raises_nothing():
    consistent = [(s, t) for s, t in SELF_CONTRADICTING if t != "Moderate emphysema."]
    assert contradictions(consistent) == []
    normal = [(F, t) for t in NORMAL] + [(F, "Heart size is normal."), (IMP, "No acute cardiopulmonary abnormality.")]
    assert contradictions(normal) == []
    # a pericardial effusion is not a pleural one; bilateral covers both sides
    assert contradictions([(F, "Small bilateral pleural effusions."), (F, "No pericardial effusion."),
                           (IMP, "Left pleural effusion.")]) == []


def test_an_impression_beyond_its_findings_is_flagged_with_the_lobe_or_side():
    new_lobe = contradictions([(F, "A 6 mm solid nodule in the left upper lobe."),
                               (IMP, "Pulmonary nodules in the left upper lobe and right lower lobe.")])
    assert len(new_lobe) == 1 and "in the right lower lobe" in new_lobe[0].message
    other_side = contradictions([(F, "A small pleural effusion on the right."), (IMP, "Left pleural effusion.")])
    assert len(other_side) == 1 and "pleural effusion on the left" in other_side[0].message
    unseen = contradictions([(F, "No pleural effusion."), (F, "Mild emphysema."), (IMP, "Cardiomegaly.")])
    assert [c.finding for c in unseen] == ["cardiomegaly"] and "findings do not describe" in unseen[0].message
    # an impression alone (no findings section) is not compared with anything
    assert contradictions([(IMP, "Cardiomegaly.")]) == []


def test_normal_heart_sentences_are_negatives_so_the_review_list_skips_them():
    assert is_negative("Heart size is normal.") and is_negative("The heart is normal in size.")
    assert not is_negative("The heart is enlarged.")


def test_self_contradictions_reach_the_draft_checks_after_the_head_checks():
    from app.drafting import ReportDraft
    from inference.result import ModelInfo, ReportResult, Sentence, Timings

    sentences = [Sentence(t, s, 0, 1, np.ones(4), 0) for s, t in SELF_CONTRADICTING]
    model = ModelInfo("m", "1", "m", "abc", "synthetic", False)
    heads = _heads(nodule=0.95, effusion=0.9)
    heads["covid_severity"] = {"CT-0": 0.98, "CT-1": 0.02, "CT-2": 0.0, "CT-3": 0.0}
    result = ReportResult("", "", "", sentences, heads, model, "cpu", [], Timings(), (1,), np.arange(4), (4, 8, 8))
    checks = ReportDraft("req", "1.2.3", "1.2.3.4", "abc", result).checks
    assert len(checks) == 1 and "both reports and denies emphysema" in checks[0]


def test_each_check_names_the_sentences_it_concerns():
    from app.draft_checks import report_checks

    found = report_checks(SELF_CONTRADICTING, _heads(nodule=0.1, effusion=0.9))
    by_text = {c.message.split(",")[0]: [SELF_CONTRADICTING[i][1] for i in c.sentences] for c in found}
    assert by_text == {
        "Check: the draft reports a pulmonary nodule": [t for _, t in SELF_CONTRADICTING if "odule" in t],
        'Check: the draft both reports and denies emphysema ("Moderate emphysema." / "No emphysema."). '
        "Correct one of them before accepting.": ["Moderate emphysema.", "No emphysema."],
    }
    missed = report_checks([(F, "No pulmonary nodules."), (F, "No pleural effusion.")], _heads(nodule=0.9))
    assert [c.sentences for c in missed] == [(0,)]  # the sentence that denies what the head sees
    beyond = report_checks([(F, "A small pleural effusion on the right."), (IMP, "Nodule in the left upper lobe."),
                            (IMP, "Left pleural effusion.")], {})
    assert [c.sentences for c in beyond] == [(1,), (2,)]


def test_a_lobe_listed_twice_is_a_glitch_the_reader_must_correct():
    # the bundled model's impression for the shared real series (session 6)
    draft = [(F, "There is a 8 mm calcified nodule in the left lower lobe."),
             (F, "There is a 9 mm calcified nodule in the left upper lobe."),
             (IMP, "Pulmonary nodules in the left upper lobe and left upper lobe.")]
    found = contradictions(draft)
    assert [c.sentences for c in found] == [(2,)]
    assert "names the left upper lobe twice" in found[0].message
    assert "the findings also name the left lower lobe" in found[0].message
    # two nodules in one lobe, each its own phrase, and a list of two lobes are fine
    assert contradictions([(F, "A 5 mm nodule in the left upper lobe and a 7 mm nodule in the left upper lobe."),
                           (IMP, "Two nodules in the left upper lobe.")]) == []
    assert contradictions(draft[:2] + [(IMP, "Pulmonary nodules in the left upper lobe and left lower lobe.")]) == []


def test_a_sentence_stopped_after_its_size_is_flagged_once_naming_each():
    from app.draft_checks import report_checks

    # the bundled model's draft for the shared real series (session 19)
    draft = [(F, "There is an 8 mm calcified nodule in the left lower lobe."),
             (F, "There is a 25 mm solid nodule in the left upper lobe."),
             (F, "There is a 9 mm."), (F, "There is a 9 mm."), (F, "There is no pleural effusion."),
             (IMP, "Pulmonary nodules in the left lower lobe and left upper lobe.")]
    found = report_checks(draft, _heads(nodule=0.99))
    assert [c.sentences for c in found] == [(2, 3)]
    assert found[0].message.startswith('Check: "There is a 9 mm." / "There is a 9 mm." gives a size but names no')
    # a reader's own phrasing of sizes is left alone
    written = [(F, "The nodule measures 9 mm."), (F, "A 12 mm nodule in the right upper lobe."),
               (F, "Small effusion, about 2 cm deep."), (IMP, "Nodule of 9 mm.")]
    assert report_checks(written, _heads(nodule=0.9, effusion=0.9)) == []
